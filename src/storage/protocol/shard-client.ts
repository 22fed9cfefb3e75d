/**
 * `/nodus/shard/1.0.0`, requester side: `ShardClient` stores, fetches, audits, pins and commits shards
 * on peers, one request per stream (src/net/request.ts) or over the bulk channel. Messages:
 * shard-messages.ts; wire format and limits: docs/PROTOCOLS.md.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { PeerId, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { withDeadline } from '../../common/abort.ts'
import { bytesEqual } from '../../common/bytes.ts'
import { type ErrorCode, isNodusError, NodusError } from '../../common/errors.ts'
import { blake3 } from '../../crypto/index.ts'
import {
  type BulkChannel,
  parseReply,
  type RequestOptions,
  requestResponse,
  type StreamReader,
} from '../../net/index.ts'
import { cidToString } from '../codec/cid.ts'
import {
  type AuditChallenge,
  type AuditProof,
  decodeProof,
  encodeChallenge,
  MAX_AUDIT_PROOF_BYTES,
} from '../keeper/audit.ts'
import {
  asCid,
  asSize,
  isRecord,
  MAX_HEADER_BYTES,
  MAX_UPDATE_BYTES,
  type Receipt,
  SHARD_PROTOCOL,
  verifyReceipt,
} from './shard-messages.ts'

/** What the shard client needs from libp2p. */
export interface ShardClientDeps {
  dialProtocol(peer: PeerId, protocol: string, options?: { signal?: AbortSignal }): Promise<Stream>
  /**
   * The bulk channel (src/net/bulk.ts): when present, gets and puts go over a direct TLS socket to
   * the peer, falling back to a libp2p stream when the peer has none or the socket fails.
   */
  bulk?: Pick<BulkChannel, 'request' | 'available'> & Partial<Pick<BulkChannel, 'isOpen' | 'warm'>>
}

export interface ShardClientOptions {
  /** Time allowed for one request, ms. Default 60 000. */
  requestTimeoutMs: number
  /** Largest shard accepted from a peer, bytes. Default 16 MiB. */
  maxShardBytes: number
}

/** Error codes a shard server's `{ ok: false, code }` keeps on the client; any other is PROTOCOL_ERROR. */
const REMOTE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'PEER_BANNED',
  'ORDER_INVALID',
  'QUOTA_EXCEEDED',
  'TIMEOUT',
  'PEER_BUSY',
  'SHARD_MISSING',
  'STORE_FULL',
  'SHARD_TOO_LARGE',
  'CID_MISMATCH',
])

function parseResponse(bytes: Uint8Array, peer: PeerId): Record<string, unknown> {
  return parseReply(bytes, peer, REMOTE_CODES)
}
/** The verified receipt in a put's response; throws PROTOCOL_ERROR or SIGNATURE_INVALID. */
async function checkReceipt(
  resp: Record<string, unknown>,
  peer: PeerId,
  cid: CID,
  size: number,
): Promise<Receipt> {
  const r = resp.receipt
  if (
    !isRecord(r) ||
    !(r.sig instanceof Uint8Array) ||
    typeof r.holder !== 'string' ||
    typeof r.storedAt !== 'number'
  ) {
    throw new NodusError('PROTOCOL_ERROR', 'malformed receipt', { peerAction: 'reject' })
  }
  const receipt: Receipt = {
    cid,
    size: asSize(r.size, 'size'),
    holder: r.holder,
    storedAt: r.storedAt,
    sig: r.sig,
  }
  if (
    receipt.holder !== peer.toString() ||
    receipt.size !== size ||
    !asCid(r.cid).equals(cid) ||
    !(await verifyReceipt(receipt))
  ) {
    throw new NodusError('SIGNATURE_INVALID', `bad receipt from ${peer.toString()}`, {
      peerAction: 'ban',
    })
  }
  return receipt
}

/** Bytes that must hash to `cid`; throws CID_MISMATCH (peerAction ban) otherwise. */
function checkBytes(bytes: Uint8Array, cid: CID, peer: PeerId): void {
  if (!bytesEqual(blake3(bytes), cid.multihash.digest)) {
    throw new NodusError(
      'CID_MISMATCH',
      `peer ${peer.toString()} sent bytes that do not hash to ${cidToString(cid)}`,
      {
        details: { peer: peer.toString(), cid: cidToString(cid) },
        peerAction: 'ban',
      },
    )
  }
}

/** Errors of the bulk transport itself, after which the same request goes over libp2p. */
function bulkTransportFailed(err: unknown): boolean {
  return isNodusError(err, 'BULK_UNAVAILABLE') || isNodusError(err, 'STREAM_CLOSED')
}

const NO_BODY = new Uint8Array(0)

/**
 * Client side of `/nodus/shard/1.0.0`. Every call opens one stream (src/net/request.ts) and applies
 * the request timeout; puts and gets try the bulk channel first when the peer has one.
 */
export class ShardClient {
  readonly #deps: ShardClientDeps
  readonly #options: ShardClientOptions

  constructor(deps: ShardClientDeps, options: ShardClientOptions) {
    this.#deps = deps
    this.#options = options
  }

  /**
   * One request over a new libp2p stream (`requestResponse`, src/net/request.ts): `frame` is the
   * encoded request header; the reply header is at most MAX_HEADER_BYTES and a remote error keeps its
   * code when it is one of REMOTE_CODES.
   */
  #request<T>(
    peer: PeerId,
    frame: Uint8Array,
    what: string,
    options: Pick<RequestOptions, 'signal' | 'body' | 'highWaterBytes'>,
    onReply: (reply: Record<string, unknown>, reader: StreamReader) => T | Promise<T>,
  ): Promise<T> {
    const request: RequestOptions = {
      ...options,
      timeoutMs: this.#options.requestTimeoutMs,
      what,
      maxReplyBytes: MAX_HEADER_BYTES,
      remoteCodes: REMOTE_CODES,
    }
    return requestResponse(this.#deps, peer, SHARD_PROTOCOL, frame, request, onReply)
  }

  /**
   * Store `bytes` under `cid` on `peer`; resolves with the holder's verified, signed receipt.
   * Throws PEER_UNREACHABLE, PEER_BUSY, STORE_FULL, SIGNATURE_INVALID (bad receipt), TIMEOUT.
   */
  async put(
    peer: PeerId,
    cid: CID,
    bytes: Uint8Array,
    options: { signal?: AbortSignal; order?: Uint8Array; repair?: boolean } = {},
  ): Promise<Receipt> {
    using deadline = withDeadline(options.signal, this.#options.requestTimeoutMs, 'shard put')
    const signal = deadline.signal
    const header = dagCbor.encode({
      v: 1,
      op: 'put',
      cid: cid.bytes,
      size: bytes.byteLength,
      ...(options.order === undefined ? {} : { order: options.order }),
      ...(options.repair === true ? { repair: true } : {}),
    })
    const bulk = this.#deps.bulk
    if (bulk?.available(peer) === true) {
      try {
        const resp = await bulk.request(peer, header, bytes, signal)
        return await checkReceipt(parseResponse(resp.header, peer), peer, cid, bytes.byteLength)
      } catch (err) {
        if (!bulkTransportFailed(err) || signal.aborted) throw err
      }
    }
    // The answer is read while the body is sent: a holder that refuses the put at once (ORDER_INVALID,
    // QUOTA_EXCEEDED, PEER_BUSY...) is heard at once, not at the request timeout.
    // `return await`: the deadline must outlive the request.
    return await this.#request(peer, header, 'shard put', { signal, body: bytes }, (resp) =>
      checkReceipt(resp, peer, cid, bytes.byteLength),
    )
  }

  /**
   * Start keying a bulk socket to `peer` in the background (BulkChannel `warm`), so that a shard
   * request soon after goes out without the keying round trips. No-op without a bulk channel.
   * Returns whether a connect started.
   */
  warm(peer: PeerId): boolean {
    return this.#deps.bulk?.warm?.(peer) ?? false
  }

  /**
   * Fetch the whole block `cid` from `peer` and verify its BLAKE3 digest against the CID.
   * `small` (a manifest): the bulk channel only when a socket to the peer is already open, else a
   * libp2p stream at once (keying a socket takes a ticket round trip, a TCP and a TLS handshake: more
   * than a small block's transfer), while a socket is warmed for the shards that follow.
   * Throws SHARD_MISSING, PEER_BUSY, PEER_UNREACHABLE, CID_MISMATCH (peer sent wrong bytes), TIMEOUT.
   */
  async get(
    peer: PeerId,
    cid: CID,
    options: { signal?: AbortSignal; repair?: boolean; small?: boolean } = {},
  ): Promise<Uint8Array> {
    using deadline = withDeadline(options.signal, this.#options.requestTimeoutMs, 'shard get')
    const signal = deadline.signal
    // `repair`: served from the holder's repair slots (keepers rebuilding a segment).
    const request = dagCbor.encode({
      v: 1,
      op: 'get',
      cid: cid.bytes,
      ...(options.repair === true ? { repair: true } : {}),
    })
    const bulk = this.#deps.bulk
    let viaBulk = bulk?.available(peer) === true
    if (viaBulk && options.small === true && bulk?.isOpen !== undefined && !bulk.isOpen(peer)) {
      bulk.warm?.(peer)
      viaBulk = false
    }
    if (bulk !== undefined && viaBulk) {
      try {
        const resp = await bulk.request(peer, request, NO_BODY, signal)
        const size = asSize(parseResponse(resp.header, peer).size, 'size')
        if (size > this.#options.maxShardBytes) {
          throw new NodusError('SHARD_TOO_LARGE', `peer offered ${size} bytes`, { peerAction: 'reject' })
        }
        if (size !== resp.body.byteLength) {
          throw new NodusError(
            'PROTOCOL_ERROR',
            `peer announced ${size} bytes and sent ${resp.body.byteLength}`,
            {
              peerAction: 'reject',
            },
          )
        }
        checkBytes(resp.body, cid, peer)
        return resp.body
      } catch (err) {
        if (!bulkTransportFailed(err) || signal.aborted) throw err
      }
    }
    const stream = { signal, highWaterBytes: 2 * 1024 * 1024 }
    return await this.#request(peer, request, 'shard get', stream, async (resp, reader) => {
      const size = asSize(resp.size, 'size')
      if (size > this.#options.maxShardBytes) {
        throw new NodusError('SHARD_TOO_LARGE', `peer offered ${size} bytes`, { peerAction: 'reject' })
      }
      const bytes = await reader.readExactly(size)
      checkBytes(bytes, cid, peer)
      return bytes
    })
  }

  /**
   * Challenge `peer` to prove it holds a shard; resolves with the decoded proof (check it with
   * `verifyAnswer`). Throws SHARD_MISSING, PEER_BUSY, PEER_UNREACHABLE, TIMEOUT, PROTOCOL_ERROR.
   */
  async audit(
    peer: PeerId,
    challenge: AuditChallenge,
    options: { signal?: AbortSignal } = {},
  ): Promise<AuditProof> {
    const req = dagCbor.encode({ v: 1, op: 'audit', challenge: encodeChallenge(challenge) })
    return this.#request(peer, req, 'audit', { signal: options.signal }, async (resp, reader) => {
      const size = asSize(resp.size, 'size')
      if (size > MAX_AUDIT_PROOF_BYTES)
        throw new NodusError('MESSAGE_TOO_LARGE', 'audit proof too large', { peerAction: 'reject' })
      return decodeProof(await reader.readExactly(size))
    })
  }

  /** The latest holder update `peer` keeps for `manifest` (encoded), or undefined. */
  async latest(
    peer: PeerId,
    manifest: CID,
    options: { signal?: AbortSignal } = {},
  ): Promise<Uint8Array | undefined> {
    const req = dagCbor.encode({ v: 1, op: 'latest', cid: manifest.bytes })
    return this.#request(peer, req, 'holder update get', { signal: options.signal }, async (resp, reader) => {
      const size = asSize(resp.size, 'size')
      if (size > MAX_UPDATE_BYTES)
        throw new NodusError('MESSAGE_TOO_LARGE', 'holder update too large', { peerAction: 'reject' })
      return size === 0 ? undefined : await reader.readExactly(size)
    })
  }

  /** Offer a signed holder update to `peer`; resolves whether it kept it. */
  async offerUpdate(
    peer: PeerId,
    manifest: CID,
    update: Uint8Array,
    options: { signal?: AbortSignal } = {},
  ): Promise<boolean> {
    const req = dagCbor.encode({ v: 1, op: 'update', cid: manifest.bytes, size: update.byteLength })
    const body = { signal: options.signal, body: update }
    return this.#request(peer, req, 'holder update offer', body, (resp) => resp.accepted === true)
  }

  /**
   * Send `peer` a signed pin request (orders.ts `signPin`, naming `peer` as holder). Resolves with,
   * per CID of the request, whether the peer holds it and extended it.
   */
  async pin(
    peer: PeerId,
    pin: Uint8Array,
    count: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<boolean[]> {
    return this.#flags(peer, { v: 1, op: 'pin', pin }, 'extended', count, options.signal, 'shard pin')
  }

  /**
   * Send `peer` a signed commit (orders.ts `signCommit`). Resolves with, per CID, whether the peer
   * committed it (it held a provisional claim of ours on it).
   */
  async commit(
    peer: PeerId,
    commit: Uint8Array,
    count: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<boolean[]> {
    return this.#flags(
      peer,
      { v: 1, op: 'commit', commit },
      'committed',
      count,
      options.signal,
      'shard commit',
    )
  }

  /**
   * Tell `peer` (a keeper of `manifest`) that this node lost its copies of `cids` (at most
   * MAX_HAS_CIDS), so it repairs them without waiting for an audit.
   */
  async dropped(
    peer: PeerId,
    manifest: CID,
    cids: CID[],
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    const req = dagCbor.encode({ v: 1, op: 'dropped', cid: manifest.bytes, cids: cids.map((c) => c.bytes) })
    await this.#request(peer, req, 'shard dropped', { signal: options.signal }, () => undefined)
  }

  /** One request whose response carries `field`: a list of `count` booleans. */
  async #flags(
    peer: PeerId,
    request: Record<string, unknown>,
    field: string,
    count: number,
    signal: AbortSignal | undefined,
    what: string,
  ): Promise<boolean[]> {
    return this.#request(peer, dagCbor.encode(request), what, { signal }, (resp) => {
      const flags = resp[field]
      if (!Array.isArray(flags) || flags.length !== count || !flags.every((h) => typeof h === 'boolean')) {
        throw new NodusError('PROTOCOL_ERROR', `malformed ${request.op} response`, { peerAction: 'reject' })
      }
      return flags as boolean[]
    })
  }

  /** Ask `peer` which of `cids` it holds (at most MAX_HAS_CIDS). */
  async has(
    peer: PeerId,
    cids: CID[],
    options: { signal?: AbortSignal } = {},
  ): Promise<{ have: boolean[]; freeBytes: number }> {
    const req = dagCbor.encode({ v: 1, op: 'has', cids: cids.map((c) => c.bytes) })
    return this.#request(peer, req, 'shard has', { signal: options.signal }, (resp) => {
      const have = resp.have
      if (!Array.isArray(have) || have.length !== cids.length || !have.every((h) => typeof h === 'boolean')) {
        throw new NodusError('PROTOCOL_ERROR', 'malformed has response', { peerAction: 'reject' })
      }
      return { have: have as boolean[], freeBytes: typeof resp.freeBytes === 'number' ? resp.freeBytes : 0 }
    })
  }
}
