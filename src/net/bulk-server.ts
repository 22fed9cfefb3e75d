/**
 * The server side of the bulk channel (bulk.ts): the ticket protocol on libp2p, the TLS 1.3 listener
 * keyed by those tickets, and the inbound sockets, each answering its requests in order under a
 * shared budget of bytes received and not yet handled. Wire format: bulk-wire.ts.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type Server, type TLSSocket } from 'node:tls'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { withDeadline } from '../common/abort.ts'
import { BufferPool } from '../common/buffer-pool.ts'
import { type Clock, systemClock } from '../common/clock.ts'
import { NodusError } from '../common/errors.ts'
import type { BulkOptions } from './bulk-options.ts'
import {
  BULK_PROTOCOL,
  type BulkMessage,
  CIPHERS,
  encodeTicket,
  FrameParser,
  reportPeerError,
  writeMessage,
} from './bulk-wire.ts'
import { lengthPrefixed } from './stream-io.ts'

const MAX_QUEUED_REQUESTS = 16
/** Handled request bodies kept for reuse by one channel, bytes. */
const INBOUND_POOL_BYTES = 16 * 1024 * 1024

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

/** What the server side needs from libp2p and the node. */
export interface BulkServerDeps {
  /** Register the ticket protocol. */
  handle(
    protocol: string,
    handler: (stream: Stream, connection: Connection) => void,
    options: { maxInboundStreams: number },
  ): Promise<void>
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
  /** Source of ticket expiries; defaults to the system clock. */
  clock?: Clock | undefined
}

interface Ticket {
  peer: PeerId
  key: Buffer
  expiresAt: number
}

/** Server-side state of one inbound socket. */
interface InboundSocket {
  socket: TLSSocket
  /** The client's PeerId, from its ticket. */
  peer: PeerId
  /** Complete requests; the first is being served while `serving`. */
  queue: BulkMessage[]
  serving: boolean
  /** Bytes received on this socket and not yet handled. */
  outstanding: number
  /** Paused because the shared budget is exhausted. */
  budgetPaused: boolean
}

/** The TLS listener with its ticket protocol, and the inbound sockets. `start()` before use. */
export class BulkServer {
  readonly #deps: BulkServerDeps
  readonly #options: BulkOptions
  readonly #clock: Clock
  readonly #tickets = new Map<string, Ticket>()
  readonly #peerOf = new WeakMap<TLSSocket, PeerId>()
  /** Inbound sockets and their server-side state. */
  readonly #states = new Map<TLSSocket, InboundSocket>()
  /** Bytes received on inbound sockets and not yet handled (complete and partial requests). */
  #inboundBytes = 0
  /** Request bodies handled and given back, reused for the next ones (see BufferPool). */
  readonly #bodies: BufferPool
  #server: Server | undefined
  #port = 0
  #stopped = false

  constructor(deps: BulkServerDeps, options: BulkOptions) {
    this.#deps = deps
    this.#options = options
    this.#clock = deps.clock ?? systemClock
    this.#bodies = new BufferPool({ maxBytes: INBOUND_POOL_BYTES, allocate: deps.allocateBody })
  }

  /** The TLS listener's port (0 before start). */
  get port(): number {
    return this.#port
  }

  /** Inbound sockets open. */
  get sockets(): number {
    return this.#states.size
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

  /** Close the listener and every inbound socket. */
  async stop(): Promise<void> {
    this.#stopped = true
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
      stream.send(lengthPrefixed(encodeTicket({ port: this.#port, id, key: key.toString('hex') })))
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
        reportPeerError(this.#deps.onPeerError, peer, err)
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
}
