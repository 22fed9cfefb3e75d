/**
 * The client side of the bulk channel (bulk.ts): a pool of TLS 1.3 sockets per peer, each keyed with a
 * ticket fetched over libp2p, carrying pipelined requests whose responses come back in order. Wire
 * format: bulk-wire.ts.
 */
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls'
import type { PeerId, Stream } from '@libp2p/interface'
import { type Clock, systemClock } from '../common/clock.ts'
import { NodusError } from '../common/errors.ts'
import type { BulkOptions } from './bulk-options.ts'
import {
  BULK_PROTOCOL,
  CIPHERS,
  FrameParser,
  isTicket,
  MAX_TICKET_BYTES,
  parseTicketJson,
  reportPeerError,
} from './bulk-wire.ts'
import { encodeVarint, StreamReader } from './stream-io.ts'

/** The client's reused socket read buffer (TLS records are at most 16 KiB of plaintext). */
const READ_BUFFER_BYTES = 64 * 1024

/** Connects in progress above which {@link BulkClient.warm} starts no other. */
const MAX_WARMING = 64

/** A response as the client receives it. */
export interface BulkResponse {
  header: Uint8Array
  body: Uint8Array
}

/** What the client side needs from libp2p and the node. */
export interface BulkClientDeps {
  /** Open a stream to `peer` (over an existing connection when there is one). */
  dialProtocol(peer: PeerId, protocol: string, options: { signal: AbortSignal }): Promise<Stream>
  /** The IP address of the live libp2p connection to `peer`, if any (the bulk socket goes there). */
  remoteHost(peer: PeerId): string | undefined
  logger: { debug(obj: object, msg?: string): void }
  /** A peer's input broke the channel (the error carries its `peerAction`); the socket is closed. */
  onPeerError?: ((peer: PeerId, err: NodusError) => void) | undefined
  /** Source of the retry-after time of a failed connect; defaults to the system clock. */
  clock?: Clock | undefined
}

/** Resolve when `p` settles (either way), after `ms`, or reject when `signal` aborts. */
async function waitFor(p: Promise<unknown>, ms: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted()
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  try {
    await Promise.race([
      p.then(
        () => {},
        () => {},
      ),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms)
      }),
      new Promise<void>((_resolve, reject) => {
        onAbort = () => reject(signal.reason)
        signal.addEventListener('abort', onAbort, { once: true })
      }),
    ])
  } finally {
    clearTimeout(timer)
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}

/** The client's pool of sockets per peer. */
export class BulkClient {
  readonly #deps: BulkClientDeps
  readonly #options: BulkOptions
  readonly #clock: Clock
  readonly #pools = new Map<string, ClientSocket[]>()
  readonly #connecting = new Map<string, Promise<unknown>>()
  /** When each connect in #connecting started (performance.now()): requests wait only until start + keyingWaitMs. */
  readonly #connectStarted = new Map<string, number>()
  readonly #unavailableUntil = new Map<string, number>()
  #stopped = false

  constructor(deps: BulkClientDeps, options: BulkOptions) {
    this.#deps = deps
    this.#options = options
    this.#clock = deps.clock ?? systemClock
  }

  /** Outbound sockets open. */
  get sockets(): number {
    let outbound = 0
    for (const pool of this.#pools.values()) outbound += pool.length
    return outbound
  }

  /** Close every socket; pending requests fail with STREAM_CLOSED. */
  stop(): void {
    this.#stopped = true
    for (const pool of this.#pools.values()) for (const s of pool) s.close()
    this.#pools.clear()
  }

  /** See {@link BulkChannel.request} (bulk.ts). */
  async request(
    peer: PeerId,
    header: Uint8Array,
    body: Uint8Array,
    signal: AbortSignal,
  ): Promise<BulkResponse> {
    let socket = this.#socketFor(peer)
    if (socket === undefined) {
      const key = peer.toString()
      const connecting = this.#connecting.get(key)
      // Wait at most keyingWaitMs after the connect began, however many requests arrive meanwhile: a
      // peer whose listener never answers (a firewall dropping packets) costs one wait, not one each.
      const left = (this.#connectStarted.get(key) ?? 0) + this.#options.keyingWaitMs - performance.now()
      if (connecting !== undefined && left > 0) {
        await waitFor(connecting, left, signal)
        socket = this.#socketFor(peer)
      }
    }
    if (socket === undefined) {
      throw new NodusError('BULK_UNAVAILABLE', `bulk channel to ${peer.toString()} is connecting`, {
        details: { peer: peer.toString() },
      })
    }
    return socket.request(header, body, signal)
  }

  /** True when a socket to `peer` is open (keyed): a request goes out at once, with no keying wait. */
  isOpen(peer: PeerId): boolean {
    return (this.#pools.get(peer.toString()) ?? []).some((s) => s.open)
  }

  /**
   * Start keying a socket to `peer` in the background when none is open or being keyed, so that a
   * request soon after finds it ready (a get warms the sockets to likely holders while it resolves the
   * manifest). Bounded: no new warm-up while MAX_WARMING connects are in progress. A warmed socket
   * nobody uses closes after `idleTimeoutMs` like any other. Returns whether a connect was started.
   */
  warm(peer: PeerId): boolean {
    const key = peer.toString()
    if (!this.available(peer) || this.#connecting.has(key) || this.#connecting.size >= MAX_WARMING)
      return false
    if (this.isOpen(peer)) return false
    this.#socketFor(peer)
    return true
  }

  /** False while a recent connect to `peer` failed (requests would throw BULK_UNAVAILABLE at once). */
  available(peer: PeerId): boolean {
    return !this.#stopped && (this.#unavailableUntil.get(peer.toString()) ?? 0) <= this.#clock.now()
  }

  /**
   * The least busy open socket to `peer`, or undefined while the first one is being connected. A new
   * socket is connected in the background when there is none, or when all are busy and the pool is
   * not full. Throws BULK_UNAVAILABLE when the peer has no channel to be had (see `available`).
   */
  #socketFor(peer: PeerId): ClientSocket | undefined {
    const key = peer.toString()
    if (!this.available(peer)) {
      throw new NodusError('BULK_UNAVAILABLE', `no bulk channel to ${key}`, { details: { peer: key } })
    }
    // Closed sockets leave the pool on 'close'; one that failed a moment ago may still be listed.
    let best: ClientSocket | undefined
    let open = 0
    for (const s of this.#pools.get(key) ?? []) {
      if (!s.open) continue
      open++
      if (best === undefined || s.pending < best.pending) best = s
    }
    if (best !== undefined && (best.pending === 0 || open >= this.#options.maxSocketsPerPeer)) return best
    if (!this.#connecting.has(key)) {
      const connecting = this.#connect(peer)
        .catch((err: unknown) => {
          this.#deps.logger.debug({ err: (err as Error).message, peer: key }, 'bulk connect failed')
          reportPeerError(this.#deps.onPeerError, peer, err)
          this.#unavailableUntil.set(key, this.#clock.now() + this.#options.retryAfterMs)
          if (this.#unavailableUntil.size > 10_000) {
            this.#unavailableUntil.delete(this.#unavailableUntil.keys().next().value as string)
          }
        })
        .finally(() => {
          this.#connecting.delete(key)
          this.#connectStarted.delete(key)
        })
      this.#connecting.set(key, connecting)
      this.#connectStarted.set(key, performance.now())
    }
    return best
  }

  /** See {@link BulkChannel.settled} (bulk.ts). */
  async settled(peer: PeerId): Promise<void> {
    await this.#connecting.get(peer.toString())
  }

  async #connect(peer: PeerId): Promise<ClientSocket> {
    const signal = AbortSignal.timeout(this.#options.connectTimeoutMs)
    const stream = await this.#deps.dialProtocol(peer, BULK_PROTOCOL, { signal })
    let ticket: unknown
    let host: string | undefined
    try {
      const raw = await new StreamReader(stream, { signal }).readFrame(MAX_TICKET_BYTES)
      ticket = parseTicketJson(raw)
      host = this.#deps.remoteHost(peer)
      await stream.close({ signal }).catch(() => {})
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error('bulk ticket failed'))
      throw err
    }
    if (!isTicket(ticket) || host === undefined) {
      throw new NodusError('PROTOCOL_ERROR', 'malformed bulk ticket', { peerAction: 'reject' })
    }
    const psk = Buffer.from(ticket.key, 'hex')
    const identity = ticket.id
    // Responses are parsed straight out of one reused read buffer (`onread`): no Buffer and no
    // stream event per TLS record, which halves the receive side's CPU (measured, docs/benchmarks-history.md, "Session 9").
    let feed: (chunk: Uint8Array) => void = () => {}
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      // `onread` is documented for tls.connect (it is passed to the underlying net.Socket) but missing
      // from @types/node's ConnectionOptions.
      const options: ConnectionOptions & {
        onread: { buffer: Uint8Array; callback: (n: number, buf: Uint8Array) => boolean }
      } = {
        host,
        port: ticket.port,
        minVersion: 'TLSv1.3',
        ciphers: CIPHERS,
        pskCallback: () => ({ psk, identity }),
        // The PSK authenticates the server; there is no certificate to check.
        checkServerIdentity: () => undefined,
        onread: {
          buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
          callback: (n: number, buf: Uint8Array) => {
            feed(buf.subarray(0, n))
            return true
          },
        },
      }
      const s = tlsConnect(options)
      const onAbort = (): void => {
        s.destroy()
        reject(signal.reason)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      s.once('secureConnect', () => {
        signal.removeEventListener('abort', onAbort)
        resolve(s)
      })
      s.once('error', (err) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      })
    })
    socket.setNoDelay(true)
    const client = new ClientSocket(socket, this.#options)
    feed = (chunk) => client.feed(chunk)
    const key = peer.toString()
    const pool = this.#pools.get(key) ?? []
    pool.push(client)
    this.#pools.set(key, pool)
    socket.on('close', () => {
      const p = this.#pools.get(key)
      if (p === undefined) return
      const rest = p.filter((s) => s !== client)
      if (rest.length === 0) this.#pools.delete(key)
      else this.#pools.set(key, rest)
    })
    if (this.#stopped) client.close()
    return client
  }
}

/**
 * How long the response of an aborted request is awaited (read and dropped), ms, before its socket is
 * closed instead. Dropping it keeps the socket, its congestion window and the requests pipelined behind
 * it: a get's hedged shard requests are aborted whenever a segment completes without them.
 */
const ABANDONED_DRAIN_MS = 5_000

/** A request waiting for its response; `abandoned` once its caller aborted (the response is dropped). */
interface Waiter {
  resolve(r: BulkResponse): void
  reject(err: unknown): void
  abandoned: boolean
}

/** One client socket: pipelined requests, responses matched in order. */
class ClientSocket {
  readonly #socket: TLSSocket
  readonly #waiting: Waiter[] = []
  #open = true
  /** Abandoned requests whose responses have not arrived yet, and the timer bounding that wait. */
  #abandoned = 0
  #drainTimer: NodeJS.Timeout | undefined

  readonly #parser: FrameParser

  /** `socket` must deliver its bytes to {@link ClientSocket.feed} (tls.connect's `onread`). */
  constructor(socket: TLSSocket, options: BulkOptions) {
    this.#socket = socket
    this.#parser = new FrameParser(options.maxBodyBytes, (message) => {
      const waiter = this.#waiting.shift()
      if (waiter === undefined) {
        throw new NodusError('PROTOCOL_ERROR', 'a response nobody asked for', { peerAction: 'reject' })
      }
      if (waiter.abandoned) {
        if (--this.#abandoned === 0) clearTimeout(this.#drainTimer)
        return
      }
      waiter.resolve(message)
    })
    socket.on('error', (err) => this.#fail(err))
    socket.on('close', () => this.#fail(new NodusError('STREAM_CLOSED', 'bulk socket closed')))
    socket.setTimeout(options.idleTimeoutMs, () => {
      if (this.#waiting.length === 0) this.close()
    })
  }

  get open(): boolean {
    return this.#open
  }

  /** Bytes received on the socket (valid only during the call: the read buffer is reused). */
  feed(chunk: Uint8Array): void {
    if (!this.#open) return
    try {
      this.#parser.push(chunk)
    } catch (err) {
      this.#fail(err)
    }
  }

  /** Requests sent and not yet answered. */
  get pending(): number {
    return this.#waiting.length
  }

  #fail(err: unknown): void {
    clearTimeout(this.#drainTimer)
    this.#open = false
    this.#socket.destroy()
    const waiting = this.#waiting.splice(0)
    const reason =
      err instanceof NodusError ? err : new NodusError('STREAM_CLOSED', 'bulk socket failed', { cause: err })
    for (const w of waiting) w.reject(reason)
  }

  close(): void {
    this.#fail(new NodusError('STREAM_CLOSED', 'bulk socket closed'))
  }

  /**
   * The caller of `waiter` gave up: it is rejected with `reason` now, and its response, when it comes,
   * is read and dropped; the socket closes if the abandoned responses are not all in within
   * ABANDONED_DRAIN_MS (the requests behind them then fail with STREAM_CLOSED and go over libp2p).
   */
  #abandon(waiter: Waiter, reason: unknown): void {
    if (waiter.abandoned || !this.#open) return
    waiter.abandoned = true
    waiter.reject(reason)
    if (this.#abandoned++ === 0) {
      this.#drainTimer = setTimeout(
        () =>
          this.#fail(new NodusError('STREAM_CLOSED', 'an abandoned bulk response did not arrive in time')),
        ABANDONED_DRAIN_MS,
      )
    }
  }

  async request(header: Uint8Array, body: Uint8Array, signal: AbortSignal): Promise<BulkResponse> {
    if (!this.#open) throw new NodusError('STREAM_CLOSED', 'bulk socket closed')
    signal.throwIfAborted()
    let waiter: Waiter | undefined
    const response = new Promise<BulkResponse>((resolve, reject) => {
      waiter = { resolve, reject, abandoned: false }
      this.#waiting.push(waiter)
    })
    const onAbort = (): void => this.#abandon(waiter as Waiter, signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      this.#socket.cork()
      this.#socket.write(encodeVarint(header.byteLength))
      this.#socket.write(header)
      this.#socket.write(encodeVarint(body.byteLength))
      if (body.byteLength > 0) this.#socket.write(body)
      process.nextTick(() => this.#socket.uncork())
      return await response
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }
}
