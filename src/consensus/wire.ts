/**
 * One request, one response over a libp2p stream: the shape of the consensus area's two protocols,
 * `/nodus/consensus-fetch/1.0.0` and `/nodus/consensus-submit/1.0.0` (docs/PROTOCOLS.md). Each frame
 * is an unsigned-varint length-prefixed dag-cbor map; a refusal is `{ ok: false, code, message }`.
 *
 * Bounded on both sides: frames of at most `maxFrameBytes`, at most `perPeer` requests served at once
 * for one peer (more: `PEER_BUSY`, peerAction ignore) and sent at once to one peer, `maxInbound`
 * streams of the protocol at once, each request within `timeoutMs`.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { withDeadline } from '../common/abort.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import { lengthPrefixed, requestResponse, StreamReader, sendWithBackpressure } from '../net/index.ts'

/** What a request/response protocol needs of libp2p (the kv sync's `SyncHost` shape). */
export interface WireHost {
  dialProtocol(peer: PeerId, protocol: string, options: { signal: AbortSignal }): Promise<Stream>
  handle(
    protocol: string,
    handler: (stream: Stream, connection: Connection) => void,
    options: { maxInboundStreams: number; maxOutboundStreams: number },
  ): Promise<void>
  unhandle(protocol: string): Promise<void>
}

export interface WireOptions {
  protocol: string
  /** Largest frame sent or read, bytes. */
  maxFrameBytes: number
  /** Largest request frame served, bytes (default `maxFrameBytes`); a larger one: MESSAGE_TOO_LARGE. */
  maxRequestBytes?: number
  /** Requests served at once per peer, and sent at once to one peer. */
  perPeer: number
  /** Streams of this protocol served at once in all. */
  maxInbound: number
  /** Time one request may take, ms. */
  timeoutMs: number
}

/** Serves one request: returns the response map, or throws a NodusError (sent as a refusal). */
export type WireHandler = (request: Record<string, unknown>, peer: string) => Promise<Record<string, unknown>>

/** An error for malformed input from a peer (peerAction reject). */
export function wireInvalid(protocol: string, message: string): NodusError {
  return new NodusError('PROTOCOL_ERROR', `${protocol}: ${message}`, { peerAction: 'reject' })
}

async function readMap(
  reader: StreamReader,
  max: number,
  protocol: string,
): Promise<Record<string, unknown>> {
  let v: unknown
  try {
    v = dagCbor.decode(await reader.readFrame(max))
  } catch (err) {
    if (isNodusError(err) && err.code !== 'DECODE_FAILED') throw err
    throw wireInvalid(protocol, 'a frame is not dag-cbor')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw wireInvalid(protocol, 'a frame is not a map')
  return v as Record<string, unknown>
}

/** A request/response protocol: {@link Wire.request} as a client, a handler served from {@link Wire.start}. */
export class Wire {
  readonly #host: WireHost
  readonly #o: WireOptions
  readonly #log: Logger
  readonly #serving = new Map<string, number>()
  readonly #asking = new Map<string, number>()
  #started = false

  constructor(host: WireHost, log: Logger, options: WireOptions) {
    this.#host = host
    this.#log = log
    this.#o = options
  }

  /** Requests in flight to `peer` from this node. */
  asking(peer: string): number {
    return this.#asking.get(peer) ?? 0
  }

  /** Register the handler. `report` hears peers that sent malformed requests. */
  async start(handler: WireHandler, report: (peer: string, err: NodusError) => void): Promise<void> {
    if (this.#started) return
    await this.#host.handle(this.#o.protocol, (s, c) => void this.#serve(s, c, handler, report), {
      maxInboundStreams: this.#o.maxInbound,
      maxOutboundStreams: Math.max(64, this.#o.perPeer * 16),
    })
    this.#started = true
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    await this.#host.unhandle(this.#o.protocol)
  }

  /**
   * Send `body` to `peer` and read its answer.
   * @throws PEER_BUSY (already `perPeer` requests to it), PROTOCOL_ERROR (the peer refused:
   *   `details.remoteCode`; or sent garbage: peerAction reject), TIMEOUT, the dial's errors
   */
  async request(
    peer: PeerId,
    body: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const who = peer.toString()
    const n = this.#asking.get(who) ?? 0
    if (n >= this.#o.perPeer)
      throw new NodusError('PEER_BUSY', `${n} ${this.#o.protocol} requests to this peer in flight`)
    this.#asking.set(who, n + 1)
    try {
      // The client side every nodus request/response protocol shares (src/net/request.ts).
      return await requestResponse(
        this.#host,
        peer,
        this.#o.protocol,
        dagCbor.encode(body),
        {
          signal,
          timeoutMs: this.#o.timeoutMs,
          what: this.#o.protocol,
          maxReplyBytes: this.#o.maxFrameBytes,
        },
        (reply) => reply,
      )
    } finally {
      const left = (this.#asking.get(who) ?? 1) - 1
      if (left <= 0) this.#asking.delete(who)
      else this.#asking.set(who, left)
    }
  }

  async #serve(
    stream: Stream,
    connection: Connection,
    handler: WireHandler,
    report: (peer: string, err: NodusError) => void,
  ): Promise<void> {
    const remote = connection.remotePeer.toString()
    using deadline = withDeadline(undefined, this.#o.timeoutMs, `${this.#o.protocol} request`)
    const signal = deadline.signal
    const n = this.#serving.get(remote) ?? 0
    let slot = false
    try {
      if (n >= this.#o.perPeer)
        throw new NodusError('PEER_BUSY', `already serving ${n} ${this.#o.protocol} requests for this peer`, {
          peerAction: 'ignore',
        })
      this.#serving.set(remote, n + 1)
      slot = true
      const reader = new StreamReader(stream, { signal })
      const request = await readMap(
        reader,
        this.#o.maxRequestBytes ?? this.#o.maxFrameBytes,
        this.#o.protocol,
      )
      const reply = await handler(request, remote)
      await sendWithBackpressure(stream, lengthPrefixed(dagCbor.encode({ ok: true, ...reply })), signal)
      await stream.close({ signal })
    } catch (err) {
      this.#log.debug({ peer: remote, err: (err as Error).message }, `${this.#o.protocol} request failed`)
      try {
        if (stream.writeStatus === 'writable') {
          const code = isNodusError(err) ? err.code : 'PROTOCOL_ERROR'
          stream.send(lengthPrefixed(dagCbor.encode({ ok: false, code, message: (err as Error).message })))
          await stream.close({ signal })
        }
      } catch {
        stream.abort(err instanceof Error ? err : new Error(`${this.#o.protocol} failed`))
      }
      if (isNodusError(err) && (err.peerAction === 'reject' || err.peerAction === 'ban')) report(remote, err)
    } finally {
      if (slot) {
        const left = (this.#serving.get(remote) ?? 1) - 1
        if (left <= 0) this.#serving.delete(remote)
        else this.#serving.set(remote, left)
      }
    }
  }
}
