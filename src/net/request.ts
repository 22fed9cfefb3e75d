/**
 * One request, one reply, one stream: the client side every request/response protocol of nodus shares
 * (`/nodus/shard/1.0.0`, `/nodus/reports/1.0.0`). The template for a new protocol: build the request
 * frame, call {@link requestResponse}, check the reply's fields in `onReply`.
 *
 * Wire shape (docs/PROTOCOLS.md): the client opens a stream, writes one unsigned-varint length-prefixed
 * dag-cbor request frame, then an optional raw body; the server answers with one length-prefixed
 * dag-cbor map `{ ok: true, ... }` or `{ ok: false, code, message }`, optionally followed by raw bytes
 * the request's `onReply` reads from the same reader.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { PeerId, Stream } from '@libp2p/interface'
import { withDeadline } from '../common/abort.ts'
import { type ErrorCode, isNodusError, NodusError } from '../common/errors.ts'
import { lengthPrefixed, StreamReader, sendAll, sendWithBackpressure } from './stream-io.ts'

/** What {@link requestResponse} needs: libp2p's `dialProtocol` (or a fake of it). */
export interface RequestDeps {
  dialProtocol(peer: PeerId, protocol: string, options: { signal: AbortSignal }): Promise<Stream>
}

/** A reply header: the decoded dag-cbor map of a `{ ok: true, ... }` answer. */
export type Reply = Record<string, unknown>

export interface RequestOptions {
  /** Cancels the request (the stream is aborted); combined with `timeoutMs`. */
  signal?: AbortSignal | undefined
  /** Time allowed for the whole request (dial, send, reply and `onReply`), ms. */
  timeoutMs: number
  /** Names the request in errors: TIMEOUT says "`what` timed out after `timeoutMs` ms". */
  what: string
  /** Largest reply header frame accepted, bytes; a larger one throws MESSAGE_TOO_LARGE (peerAction reject). */
  maxReplyBytes: number
  /**
   * Raw bytes sent after the request frame, unprefixed. With a body the reply is read while the body
   * is sent, so a server that refuses at once (and stops reading) is heard at once rather than at
   * the timeout; a `{ ok: true }` before the whole body is sent is a PROTOCOL_ERROR (peerAction
   * reject). The write side is closed after `onReply`. Without a body it is closed before the reply.
   */
  body?: Uint8Array | undefined
  /** Read buffer above which the stream is paused (StreamReader), bytes. Default 1 MiB. */
  highWaterBytes?: number | undefined
  /**
   * Codes a server's `{ ok: false, code }` keeps; any other code becomes PROTOCOL_ERROR (the original
   * code stays in `details.remoteCode`). Default: none.
   */
  remoteCodes?: ReadonlySet<ErrorCode>
}

/**
 * Send one request frame (and optional body) to `peer` on a new `protocol` stream and hand the
 * verified `{ ok: true }` reply to `onReply`, which may go on reading raw bytes from `reader` (for
 * instance `reader.readExactly(reply.size)`, bounded by the caller). Resolves with what `onReply`
 * returns.
 *
 * `frame` is the encoded request header (dag-cbor, at most the server's frame limit), sent
 * length-prefixed. On any error the stream is aborted (yamux reset) before the error is rethrown.
 *
 * Throws PEER_UNREACHABLE (the stream could not be opened; a NodusError from the dial passes
 * through), TIMEOUT (after `timeoutMs`), the caller signal's reason, STREAM_CLOSED (the stream ended
 * early, peerAction ignore), MESSAGE_TOO_LARGE (reply frame above `maxReplyBytes`, peerAction
 * reject), PROTOCOL_ERROR (reply not a dag-cbor map, or an early reply to a body: peerAction
 * reject), the server's error code when in `remoteCodes` (else PROTOCOL_ERROR; no peerAction: the
 * server spoke for itself), and whatever `onReply` throws.
 */
export async function requestResponse<T>(
  deps: RequestDeps,
  peer: PeerId,
  protocol: string,
  frame: Uint8Array,
  options: RequestOptions,
  onReply: (reply: Reply, reader: StreamReader) => T | Promise<T>,
): Promise<T> {
  using deadline = withDeadline(options.signal, options.timeoutMs, options.what)
  const signal = deadline.signal
  const stream = await openStream(deps, peer, protocol, signal)
  try {
    const reader = new StreamReader(stream, {
      signal,
      ...(options.highWaterBytes === undefined ? {} : { highWaterBytes: options.highWaterBytes }),
    })
    const readReply = async (): Promise<Reply> =>
      parseReply(await reader.readFrame(options.maxReplyBytes), peer, options.remoteCodes)
    if (options.body === undefined) {
      await sendWithBackpressure(stream, lengthPrefixed(frame), signal)
      await stream.close({ signal })
      return await onReply(await readReply(), reader)
    }
    // Read the reply while sending: a server that refuses at once (PEER_BUSY, QUOTA_EXCEEDED...)
    // stops reading, and a body larger than the stream window would otherwise wait for the timeout.
    const reply = readReply()
    const answered = reply.then(
      () => true,
      () => true,
    )
    await sendWithBackpressure(stream, lengthPrefixed(frame), signal)
    const sent = sendAll(stream, options.body, signal)
    const early = await Promise.race([sent.then(() => false), answered])
    if (early) {
      sent.catch(() => {})
      await reply // an error answer throws here
      throw new NodusError(
        'PROTOCOL_ERROR',
        `peer ${peer.toString()} answered a ${options.what} before its body`,
        { peerAction: 'reject' },
      )
    }
    const result = await onReply(await reply, reader)
    await stream.close({ signal }).catch(() => {})
    return result
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(`${options.what} failed`))
    throw err
  }
}

/** Open a `protocol` stream to `peer`; a failure that is not already a NodusError is PEER_UNREACHABLE. */
async function openStream(
  deps: RequestDeps,
  peer: PeerId,
  protocol: string,
  signal: AbortSignal,
): Promise<Stream> {
  try {
    return await deps.dialProtocol(peer, protocol, { signal })
  } catch (err) {
    if (isNodusError(err)) throw err
    throw new NodusError('PEER_UNREACHABLE', `cannot open a ${protocol} stream to ${peer.toString()}`, {
      cause: err,
      details: { peer: peer.toString() },
    })
  }
}

/**
 * Decode a reply header: the map of an `{ ok: true }` answer. Throws PROTOCOL_ERROR (peerAction
 * reject) when it is not a dag-cbor map, and the server's error for `{ ok: false, code, message }`:
 * `code` when it is in `remoteCodes`, else PROTOCOL_ERROR; the message is cut to 500 characters and
 * `details` is `{ peer, remoteCode }`.
 */
export function parseReply(bytes: Uint8Array, peer: PeerId, remoteCodes?: ReadonlySet<ErrorCode>): Reply {
  let reply: unknown
  try {
    reply = dagCbor.decode(bytes)
  } catch (err) {
    throw new NodusError('PROTOCOL_ERROR', 'response is not dag-cbor', { cause: err, peerAction: 'reject' })
  }
  if (typeof reply !== 'object' || reply === null || Array.isArray(reply))
    throw new NodusError('PROTOCOL_ERROR', 'response is not a map', { peerAction: 'reject' })
  const map = reply as Reply
  if (map.ok === true) return map
  const code = typeof map.code === 'string' ? map.code : 'PROTOCOL_ERROR'
  const message = typeof map.message === 'string' ? map.message.slice(0, 500) : 'remote error'
  const known = remoteCodes?.has(code as ErrorCode) === true ? (code as ErrorCode) : 'PROTOCOL_ERROR'
  throw new NodusError(known, `peer ${peer.toString()}: ${message}`, {
    details: { peer: peer.toString(), remoteCode: code },
  })
}
