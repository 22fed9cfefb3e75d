/**
 * The bulk channel's wire format (docs/PROTOCOLS.md, "`/nodus/bulk/1.0.0` and the bulk channel"), shared
 * by its server side (bulk-server.ts) and its client side (bulk-client.ts).
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
import type { TLSSocket } from 'node:tls'
import type { PeerId } from '@libp2p/interface'
import { drained } from '../common/drain.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import { encodeVarint } from './stream-io.ts'

export const BULK_PROTOCOL = '/nodus/bulk/1.0.0'

/** TLS 1.3 suites offered, fastest with AES-NI first. */
export const CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256'
/** Largest message header, bytes. */
export const MAX_HEADER_BYTES = 64 * 1024
/** Largest ticket frame a client reads on `/nodus/bulk/1.0.0`, bytes. */
export const MAX_TICKET_BYTES = 1024

/** One message on a bulk socket, either way. */
export interface BulkMessage {
  header: Uint8Array
  body: Uint8Array
  /** Bytes the message took on the wire (both varints, header and body). */
  wireBytes: number
}

/**
 * A ticket as sent on `/nodus/bulk/1.0.0` (one length-prefixed frame of JSON): the listener's TCP
 * `port`, the PSK identity `id` (32 hex digits) and the PSK `key` (64 hex digits).
 */
export interface BulkTicket {
  port: number
  id: string
  key: string
}

/** The JSON bytes of a ticket (not length-prefixed). */
export function encodeTicket(ticket: BulkTicket): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ port: ticket.port, id: ticket.id, key: ticket.key }))
}

/**
 * Parse a ticket frame's JSON; check the result with {@link isTicket}.
 *
 * @throws NodusError PROTOCOL_ERROR (peerAction `reject`) when it is not JSON
 */
export function parseTicketJson(raw: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(raw))
  } catch (err) {
    throw new NodusError('PROTOCOL_ERROR', 'bulk ticket is not JSON', {
      peerAction: 'reject',
      cause: err,
    })
  }
}

/** A string id, a key of 64 hex digits and a port in 1..65535. */
export function isTicket(value: unknown): value is BulkTicket {
  const t = value as Partial<BulkTicket> | null | undefined
  return (
    typeof t?.id === 'string' &&
    typeof t.key === 'string' &&
    /^[0-9a-f]{64}$/.test(t.key) &&
    Number.isInteger(t.port) &&
    (t.port as number) >= 1 &&
    (t.port as number) <= 65535
  )
}

/** Hand `err` to `onPeerError` when `peer` caused it (it is a NodusError with a peerAction). */
export function reportPeerError(
  onPeerError: ((peer: PeerId, err: NodusError) => void) | undefined,
  peer: PeerId,
  err: unknown,
): void {
  if (isNodusError(err) && err.peerAction !== undefined) onPeerError?.(peer, err)
}

/**
 * Writes one message, waiting for 'drain' whenever the socket's buffer is full.
 *
 * @throws NodusError PROTOCOL_ERROR when `body` yields more or fewer than `size` bytes
 * @throws NodusError STREAM_CLOSED when the socket closes while sending; the signal's reason on abort
 */
export async function writeMessage(
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
  readonly #onMessage: (m: BulkMessage) => void
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
    onMessage: (m: BulkMessage) => void,
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
