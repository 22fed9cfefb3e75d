/**
 * The bulk channel: request/response messages with large bodies (shards) over plain TLS 1.3 sockets
 * between two nodes, next to their libp2p connection.
 *
 * Why: moving shard bytes through libp2p (Noise or @libp2p/tls, then Yamux, then a libp2p stream)
 * costs 6–10 CPU-s per GB on this hardware, against about 2 for one node:tls socket carrying the same
 * bytes (docs/BENCHMARKS.md, "dataplane"). libp2p stays in charge of identity, discovery and every
 * other protocol; the bulk channel only carries bytes between peers that libp2p has authenticated.
 *
 * Keying (one ticket per socket):
 * 1. The client opens `/nodus/bulk/1.0.0` over its authenticated libp2p connection to the server.
 * 2. The server answers with a ticket: `{ port, id, key }`, a random 16-byte id and 32-byte key, kept
 *    for `ticketTtlMs` and usable once, bound to the client's PeerId.
 * 3. The client connects with TLS 1.3 to the IP address of that same libp2p connection and `port`,
 *    using the ticket as an external pre-shared key (RFC 8446 §2.2, psk_dhe_ke: an ephemeral ECDHE
 *    exchange is still made, so sessions have forward secrecy). Only the two peers know the key, so
 *    the socket is authenticated both ways: the server knows the client's PeerId from the ticket, the
 *    client knows it reached the peer that issued it.
 *
 * Framing on a socket, both directions: `varint(headerLength) header varint(bodyLength) body`. The
 * client may pipeline requests; the server answers each socket's requests one at a time, in order.
 * Limits: header ≤ 64 KiB, request body ≤ `maxBodyBytes`, requests queued per socket ≤ 16 (beyond,
 * the server stops reading the socket). A malformed frame closes the socket.
 */
import { randomBytes } from 'node:crypto'
import {
  type ConnectionOptions,
  createServer,
  type Server,
  type TLSSocket,
  connect as tlsConnect,
} from 'node:tls'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { withDeadline } from '../common/abort.ts'
import { BufferPool } from '../common/buffer-pool.ts'
import { type Clock, systemClock } from '../common/clock.ts'
import { drained } from '../common/drain.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import { encodeVarint, lengthPrefixed, StreamReader } from './stream-io.ts'

export const BULK_PROTOCOL = '/nodus/bulk/1.0.0'

/** TLS 1.3 suites offered, fastest with AES-NI first. */
const CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256'
const MAX_HEADER_BYTES = 64 * 1024
const MAX_QUEUED_REQUESTS = 16
/** Handled request bodies kept for reuse by one channel, bytes. */
const INBOUND_POOL_BYTES = 16 * 1024 * 1024
/** The client's reused socket read buffer (TLS records are at most 16 KiB of plaintext). */
const READ_BUFFER_BYTES = 64 * 1024

export interface BulkOptions {
  /** Address the TLS listener binds, e.g. `127.0.0.1` or `0.0.0.0`. Default `127.0.0.1`. */
  host: string
  /** TCP port of the TLS listener; 0 picks a free one. Default 0. */
  port: number
  /** Sockets a client opens to one peer (requests are spread over them). Default 4. */
  maxSocketsPerPeer: number
  /** Inbound sockets accepted in all (and at most 2 × maxSocketsPerPeer from one peer). Default 256. */
  maxInboundSockets: number
  /** Largest request or response body, bytes. Default 17 MiB. */
  maxBodyBytes: number
  /**
   * Bytes received on all inbound sockets and not yet handled; above it every inbound socket stops
   * reading until half of it is free. Default 128 MiB.
   */
  maxInboundBufferedBytes: number
  /** An unused socket closes after this long, ms. Default 30 000. */
  idleTimeoutMs: number
  /** A ticket not used within this long expires, ms. Default 10 000. */
  ticketTtlMs: number
  /** Time allowed to dial, fetch a ticket and finish the TLS handshake, ms. Default 10 000. */
  connectTimeoutMs: number
  /** After a failed connect to a peer, use libp2p for it for this long, ms. Default 60 000. */
  retryAfterMs: number
  /**
   * A request to a peer with no open socket waits for the first one to be keyed, until this long after
   * the connect began, before it goes over libp2p instead, ms. Keying takes a libp2p round trip and a TLS handshake; a shard sent
   * over libp2p meanwhile costs 3–4× the CPU (Noise, Yamux, copies). 0: never wait. Default 1 000.
   */
  keyingWaitMs: number
}

export const DEFAULT_BULK_OPTIONS: Readonly<BulkOptions> = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  maxSocketsPerPeer: 4,
  maxInboundSockets: 256,
  maxBodyBytes: 17 * 1024 * 1024,
  maxInboundBufferedBytes: 128 * 1024 * 1024,
  idleTimeoutMs: 30_000,
  ticketTtlMs: 10_000,
  connectTimeoutMs: 10_000,
  retryAfterMs: 60_000,
  keyingWaitMs: 1_000,
})

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

/** A request as the server's handler sees it. */
export interface BulkRequest {
  /** The client's PeerId (from its ticket). */
  peer: PeerId
  header: Uint8Array
  body: Uint8Array
  /** The socket's remote IP address (for per-subnet limits), when known. */
  remoteHost?: string | undefined
}

/** How a handler answers: one header and a body of exactly `size` bytes (as chunks). */
export interface BulkReply {
  send(header: Uint8Array, size?: number, body?: AsyncIterable<Uint8Array>): Promise<void>
}

/**
 * Serves one request; must call `reply.send` exactly once unless it throws (the socket then closes).
 * `request.body` is lent: the channel reuses its memory once the returned promise settles, so nothing
 * may hold on to it (or a view of it) after that.
 */
export type BulkHandler = (request: BulkRequest, reply: BulkReply, signal: AbortSignal) => Promise<void>

/** What the bulk channel needs from libp2p. */
export interface BulkDeps {
  /** Register the ticket protocol. */
  handle(
    protocol: string,
    handler: (stream: Stream, connection: Connection) => void,
    options: { maxInboundStreams: number },
  ): Promise<void>
  /** Open a stream to `peer` (over an existing connection when there is one). */
  dialProtocol(peer: PeerId, protocol: string, options: { signal: AbortSignal }): Promise<Stream>
  /** The IP address of the live libp2p connection to `peer`, if any (the bulk socket goes there). */
  remoteHost(peer: PeerId): string | undefined
  /** Answers requests from peers. */
  handler: BulkHandler
  logger: { debug(obj: object, msg?: string): void }
  /**
   * Memory for request bodies (pooled and reused), e.g. 4 KiB-aligned views so that the shard store can
   * write a put's body with direct I/O without copying it (common/direct-io.ts `allocAligned`);
   * default `Buffer.allocUnsafeSlow`.
   */
  allocateBody?: ((size: number) => Uint8Array) | undefined
  /** Is `peer` banned? Its ticket requests and sockets are refused (trust/peer-actions.ts). */
  isBanned?: ((peer: PeerId) => boolean) | undefined
  /** A peer's input broke the channel (the error carries its `peerAction`); the socket is closed. */
  onPeerError?: ((peer: PeerId, err: NodusError) => void) | undefined
  /** Source of ticket expiries and of the retry-after time of a failed connect; defaults to the system clock. */
  clock?: Clock | undefined
}

/** A response as the client receives it. */
export interface BulkResponse {
  header: Uint8Array
  body: Uint8Array
}

interface Ticket {
  peer: PeerId
  key: Buffer
  expiresAt: number
}

/**
 * Both sides of the bulk channel for one node: the TLS listener with its ticket protocol, and the
 * client's pool of sockets per peer. `start()` before use, `stop()` at shutdown.
 */
export class BulkChannel {
  readonly #deps: BulkDeps
  readonly #options: BulkOptions
  readonly #clock: Clock
  readonly #tickets = new Map<string, Ticket>()
  readonly #peerOf = new WeakMap<TLSSocket, PeerId>()
  /** Inbound sockets and their server-side state. */
  readonly #states = new Map<TLSSocket, InboundSocket>()
  /** Bytes received on inbound sockets and not yet handled (complete and partial requests). */
  #inboundBytes = 0
  readonly #pools = new Map<string, ClientSocket[]>()
  readonly #connecting = new Map<string, Promise<unknown>>()
  /** When each connect in #connecting started (performance.now()): requests wait only until start + keyingWaitMs. */
  readonly #connectStarted = new Map<string, number>()
  readonly #unavailableUntil = new Map<string, number>()
  /** Request bodies handled and given back, reused for the next ones (see BufferPool). */
  readonly #bodies: BufferPool
  #server: Server | undefined
  #port = 0
  #stopped = false

  constructor(deps: BulkDeps, options: BulkOptions) {
    this.#deps = deps
    this.#options = options
    this.#clock = deps.clock ?? systemClock
    this.#bodies = new BufferPool({ maxBytes: INBOUND_POOL_BYTES, allocate: deps.allocateBody })
  }

  /** The TLS listener's port (0 before start). */
  get port(): number {
    return this.#port
  }

  /** Sockets open to and from peers (for metrics and tests). */
  get sockets(): { inbound: number; outbound: number } {
    let outbound = 0
    for (const pool of this.#pools.values()) outbound += pool.length
    return { inbound: this.#states.size, outbound }
  }

  /** Listen for TLS sockets and register the ticket protocol. */
  async start(): Promise<void> {
    const server = createServer({
      minVersion: 'TLSv1.3',
      ciphers: CIPHERS,
      handshakeTimeout: this.#options.connectTimeoutMs,
      pskCallback: (socket, identity) => {
        const ticket = this.#tickets.get(identity)
        if (ticket === undefined) return null
        this.#tickets.delete(identity)
        if (ticket.expiresAt < this.#clock.now()) return null
        this.#peerOf.set(socket, ticket.peer)
        return ticket.key
      },
    })
    server.on('secureConnection', (socket) => this.#accept(socket))
    // Handshake failures (no or expired ticket, not TLS at all) only close that socket.
    server.on('tlsClientError', (err, socket) => {
      this.#deps.logger.debug({ err: err.message }, 'bulk handshake failed')
      socket.destroy()
    })
    server.on('error', (err) => this.#deps.logger.debug({ err: err.message }, 'bulk listener error'))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#options.port, this.#options.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.#server = server
    const address = server.address()
    this.#port = typeof address === 'object' && address !== null ? address.port : 0
    await this.#deps.handle(BULK_PROTOCOL, (stream, connection) => void this.#issue(stream, connection), {
      maxInboundStreams: 8,
    })
  }

  /** Close the listener and every socket; pending requests fail with STREAM_CLOSED. */
  async stop(): Promise<void> {
    this.#stopped = true
    for (const pool of this.#pools.values()) for (const s of pool) s.close()
    this.#pools.clear()
    for (const s of this.#states.keys()) s.destroy()
    this.#states.clear()
    this.#bodies.clear()
    const server = this.#server
    this.#server = undefined
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  /** Answer a ticket request on an authenticated libp2p stream. */
  async #issue(stream: Stream, connection: Connection): Promise<void> {
    try {
      const now = this.#clock.now()
      for (const [id, t] of this.#tickets) if (t.expiresAt < now) this.#tickets.delete(id)
      const peer = connection.remotePeer
      if (this.#deps.isBanned?.(peer) === true) {
        stream.abort(new Error('peer is banned'))
        return
      }
      let held = 0
      for (const t of this.#tickets.values()) if (t.peer.equals(peer)) held++
      if (this.#stopped || held >= 2 * this.#options.maxSocketsPerPeer || this.#tickets.size >= 4096) {
        stream.abort(new Error('bulk tickets exhausted'))
        return
      }
      const id = randomBytes(16).toString('hex')
      const key = randomBytes(32)
      this.#tickets.set(id, { peer, key, expiresAt: now + this.#options.ticketTtlMs })
      const body = new TextEncoder().encode(
        JSON.stringify({ port: this.#port, id, key: key.toString('hex') }),
      )
      stream.send(lengthPrefixed(body))
      using closing = withDeadline(undefined, 5_000, 'bulk ticket')
      await stream.close({ signal: closing.signal })
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error('bulk ticket failed'))
    }
  }

  #accept(socket: TLSSocket): void {
    const peer = this.#peerOf.get(socket)
    let fromPeer = 0
    if (peer !== undefined) for (const s of this.#states.values()) if (s.peer.equals(peer)) fromPeer++
    if (
      peer === undefined ||
      this.#deps.isBanned?.(peer) === true ||
      this.#stopped ||
      this.#states.size >= this.#options.maxInboundSockets ||
      fromPeer >= 2 * this.#options.maxSocketsPerPeer
    ) {
      socket.destroy()
      return
    }
    const state: InboundSocket = {
      socket,
      peer,
      queue: [],
      serving: false,
      outstanding: 0,
      budgetPaused: false,
    }
    this.#states.set(socket, state)
    socket.setNoDelay(true)
    socket.setTimeout(this.#options.idleTimeoutMs, () => socket.destroy())
    socket.on('error', () => socket.destroy())
    const lifetime = new AbortController()
    socket.on('close', () => {
      lifetime.abort(new NodusError('STREAM_CLOSED', 'bulk socket closed'))
      this.#states.delete(socket)
      this.#release(state, state.outstanding)
    })
    const serveNext = async (): Promise<void> => {
      if (state.serving) return
      state.serving = true
      try {
        for (let m = state.queue[0]; m !== undefined; m = state.queue[0]) {
          let replied = false
          const reply: BulkReply = {
            send: async (header, size = 0, body) => {
              if (replied) throw new NodusError('PROTOCOL_ERROR', 'bulk reply sent twice')
              replied = true
              await writeMessage(socket, header, size, body, lifetime.signal)
            },
          }
          await this.#deps.handler(
            { peer, header: m.header, body: m.body, remoteHost: socket.remoteAddress },
            reply,
            lifetime.signal,
          )
          if (!replied) throw new NodusError('PROTOCOL_ERROR', 'bulk handler sent no reply')
          state.queue.shift()
          this.#bodies.give(m.body) // the handler is done with it (BulkHandler's contract)
          this.#release(state, m.wireBytes)
        }
      } catch (err) {
        this.#deps.logger.debug({ err: (err as Error).message, peer: peer.toString() }, 'bulk socket closed')
        socket.destroy()
      } finally {
        state.serving = false
      }
    }
    const parser = new FrameParser(
      this.#options.maxBodyBytes,
      (message) => {
        state.queue.push(message)
        this.#updatePause(state)
        void serveNext()
      },
      (n) => this.#bodies.take(n),
    )
    socket.on('data', (chunk: Buffer) => {
      state.outstanding += chunk.byteLength
      this.#inboundBytes += chunk.byteLength
      try {
        parser.push(chunk)
      } catch (err) {
        this.#peerError(peer, err)
        socket.destroy()
        return
      }
      if (this.#inboundBytes > this.#options.maxInboundBufferedBytes) this.#overBudget()
    })
  }

  /** Bytes of `state`'s socket are no longer held (handled, or the socket closed). */
  #release(state: InboundSocket, bytes: number): void {
    state.outstanding -= bytes
    this.#inboundBytes -= bytes
    if (this.#inboundBytes <= this.#options.maxInboundBufferedBytes / 2) {
      for (const s of this.#states.values()) {
        if (!s.budgetPaused) continue
        s.budgetPaused = false
        this.#updatePause(s)
      }
    }
    // Always, also under the budget: a socket paused for its queue length resumes as the queue drains.
    this.#updatePause(state)
  }

  /** A socket reads while its queue is short and the shared budget allows. */
  #updatePause(state: InboundSocket): void {
    const pause = state.budgetPaused || state.queue.length >= MAX_QUEUED_REQUESTS
    if (pause && !state.socket.isPaused()) state.socket.pause()
    else if (!pause && state.socket.isPaused()) state.socket.resume()
  }

  /**
   * Received and unhandled bytes exceed the budget: every inbound socket stops reading. Sockets with
   * complete requests keep serving them, which frees the budget; if none has one (all the bytes are
   * in partial messages), the socket holding the most is closed, so that a peer trickling large
   * bodies cannot hold the others up.
   */
  #overBudget(): void {
    let progress = false
    let largest: InboundSocket | undefined
    for (const s of this.#states.values()) {
      if (!s.budgetPaused) {
        s.budgetPaused = true
        this.#updatePause(s)
      }
      if (s.queue.length > 0) progress = true
      if (largest === undefined || s.outstanding > largest.outstanding) largest = s
    }
    if (!progress && largest !== undefined) {
      this.#deps.logger.debug({ bytes: largest.outstanding }, 'bulk budget exhausted by partial messages')
      largest.socket.destroy()
    }
  }

  /**
   * Send one request to `peer` and resolve with its response. Opens (and then reuses) bulk sockets
   * to the peer as needed; while the first socket to a peer is being keyed, waits for it until
   * `keyingWaitMs` after that connect began.
   *
   * @throws NodusError BULK_UNAVAILABLE when no bulk socket to the peer is open by then
   *   or can be had (the peer does not speak the protocol, its listener is unreachable, or a connect
   *   in the last `retryAfterMs` failed): use libp2p instead
   * @throws NodusError STREAM_CLOSED when the socket closes before the response is complete
   * @throws the signal's reason when aborted (the socket is then closed, as its stream position is lost)
   */
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
          this.#peerError(peer, err)
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

  /** Tell `onPeerError` about an error `peer` caused (one that carries a peerAction). */
  #peerError(peer: PeerId, err: unknown): void {
    if (isNodusError(err) && err.peerAction !== undefined) this.#deps.onPeerError?.(peer, err)
  }

  /**
   * Resolves once a connect to `peer` started by a request has finished (at once when none is in
   * progress). For tests and benchmarks that want the channel up before measuring.
   */
  async settled(peer: PeerId): Promise<void> {
    await this.#connecting.get(peer.toString())
  }

  async #connect(peer: PeerId): Promise<ClientSocket> {
    const signal = AbortSignal.timeout(this.#options.connectTimeoutMs)
    const stream = await this.#deps.dialProtocol(peer, BULK_PROTOCOL, { signal })
    let ticket: { port: number; id: string; key: string }
    let host: string | undefined
    try {
      const raw = await new StreamReader(stream, { signal }).readFrame(1024)
      try {
        ticket = JSON.parse(new TextDecoder().decode(raw)) as typeof ticket
      } catch (err) {
        throw new NodusError('PROTOCOL_ERROR', 'bulk ticket is not JSON', {
          peerAction: 'reject',
          cause: err,
        })
      }
      host = this.#deps.remoteHost(peer)
      await stream.close({ signal }).catch(() => {})
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error('bulk ticket failed'))
      throw err
    }
    if (
      typeof ticket?.id !== 'string' ||
      typeof ticket.key !== 'string' ||
      !/^[0-9a-f]{64}$/.test(ticket.key) ||
      !Number.isInteger(ticket.port) ||
      ticket.port < 1 ||
      ticket.port > 65535 ||
      host === undefined
    ) {
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

interface BulkResponseOrRequest {
  header: Uint8Array
  body: Uint8Array
  /** Bytes the message took on the wire (both varints, header and body). */
  wireBytes: number
}

/** Server-side state of one inbound socket. */
interface InboundSocket {
  socket: TLSSocket
  /** The client's PeerId, from its ticket. */
  peer: PeerId
  /** Complete requests; the first is being served while `serving`. */
  queue: BulkResponseOrRequest[]
  serving: boolean
  /** Bytes received on this socket and not yet handled. */
  outstanding: number
  /** Paused because the shared budget is exhausted. */
  budgetPaused: boolean
}

/** One client socket: pipelined requests, responses matched in order. */
class ClientSocket {
  readonly #socket: TLSSocket
  readonly #waiting: { resolve(r: BulkResponse): void; reject(err: unknown): void }[] = []
  #open = true

  readonly #parser: FrameParser

  /** `socket` must deliver its bytes to {@link ClientSocket.feed} (tls.connect's `onread`). */
  constructor(socket: TLSSocket, options: BulkOptions) {
    this.#socket = socket
    this.#parser = new FrameParser(options.maxBodyBytes, (message) => {
      const waiter = this.#waiting.shift()
      if (waiter === undefined) {
        throw new NodusError('PROTOCOL_ERROR', 'a response nobody asked for', { peerAction: 'reject' })
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

  async request(header: Uint8Array, body: Uint8Array, signal: AbortSignal): Promise<BulkResponse> {
    if (!this.#open) throw new NodusError('STREAM_CLOSED', 'bulk socket closed')
    signal.throwIfAborted()
    const response = new Promise<BulkResponse>((resolve, reject) => this.#waiting.push({ resolve, reject }))
    const onAbort = (): void => this.#fail(signal.reason)
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

/** Writes one message, waiting for 'drain' whenever the socket's buffer is full. */
async function writeMessage(
  socket: TLSSocket,
  header: Uint8Array,
  size: number,
  body: AsyncIterable<Uint8Array> | undefined,
  signal: AbortSignal,
): Promise<void> {
  socket.cork()
  socket.write(encodeVarint(header.byteLength))
  socket.write(header)
  socket.write(encodeVarint(size))
  let sent = 0
  if (body !== undefined) {
    for await (const chunk of body) {
      sent += chunk.byteLength
      if (sent > size) throw new NodusError('PROTOCOL_ERROR', 'bulk body longer than announced')
      if (!socket.write(chunk)) {
        socket.uncork()
        await drained(
          socket,
          signal,
          () => new NodusError('STREAM_CLOSED', 'bulk socket closed while sending'),
        )
        socket.cork()
      }
    }
  }
  socket.uncork()
  if (sent !== size) throw new NodusError('PROTOCOL_ERROR', `bulk body of ${sent} bytes, announced ${size}`)
}

/**
 * Incremental parser of `varint header varint body` messages. Each body is assembled in one buffer
 * allocated at its announced length (one copy from the socket's chunks).
 *
 * @throws NodusError PROTOCOL_ERROR on a bad varint, MESSAGE_TOO_LARGE on an oversized header or body
 *   (both with peerAction `reject`: the bytes came from the peer)
 */
export class FrameParser {
  readonly #maxBody: number
  readonly #onMessage: (m: BulkResponseOrRequest) => void
  #state: 0 | 1 | 2 | 3 = 0 // 0 header length, 1 header, 2 body length, 3 body
  #varint = 0
  #varintMul = 1
  #varintBytes = 0
  #buffer: Uint8Array = new Uint8Array(0)
  #filled = 0
  #header: Uint8Array = new Uint8Array(0)
  #wire = 0

  readonly #alloc: (size: number) => Uint8Array

  /**
   * @param alloc memory for each body (headers always get their own); default Buffer.allocUnsafe
   */
  constructor(
    maxBodyBytes: number,
    onMessage: (m: BulkResponseOrRequest) => void,
    alloc: (size: number) => Uint8Array = (n) => Buffer.allocUnsafe(n),
  ) {
    this.#maxBody = maxBodyBytes
    this.#onMessage = onMessage
    this.#alloc = alloc
  }

  push(chunk: Uint8Array): void {
    let at = 0
    while (at < chunk.byteLength) {
      if (this.#state === 0 || this.#state === 2) {
        const b = chunk[at++] as number
        this.#wire++
        this.#varint += (b & 0x7f) * this.#varintMul
        this.#varintMul *= 0x80
        if (++this.#varintBytes > 8) {
          throw new NodusError('PROTOCOL_ERROR', 'varint too long', { peerAction: 'reject' })
        }
        if ((b & 0x80) !== 0) continue
        const n = this.#varint
        this.#varint = 0
        this.#varintMul = 1
        this.#varintBytes = 0
        const max = this.#state === 0 ? MAX_HEADER_BYTES : this.#maxBody
        if (n > max) {
          throw new NodusError('MESSAGE_TOO_LARGE', `frame of ${n} bytes exceeds ${max}`, {
            details: { len: n, max },
            peerAction: 'reject',
          })
        }
        this.#buffer =
          n === 0 ? new Uint8Array(0) : this.#state === 0 ? Buffer.allocUnsafe(n) : this.#alloc(n)
        this.#filled = 0
        this.#state = this.#state === 0 ? 1 : 3
        if (n === 0) this.#complete()
        continue
      }
      const take = Math.min(this.#buffer.byteLength - this.#filled, chunk.byteLength - at)
      this.#buffer.set(chunk.subarray(at, at + take), this.#filled)
      this.#filled += take
      this.#wire += take
      at += take
      if (this.#filled === this.#buffer.byteLength) this.#complete()
    }
  }

  #complete(): void {
    if (this.#state === 1) {
      this.#header = this.#buffer
      this.#state = 2
      return
    }
    const message = { header: this.#header, body: this.#buffer, wireBytes: this.#wire }
    this.#wire = 0
    this.#state = 0
    this.#header = new Uint8Array(0)
    this.#buffer = new Uint8Array(0)
    this.#onMessage(message)
  }
}
