/**
 * `/nodus/shard/1.0.0` messages: the protocol id and limits, request headers (`decodeRequest`), error
 * replies, and holders' signed receipts. Shared by the server (shard-server.ts) and the client
 * (shard-client.ts). Wire format and limits: docs/PROTOCOLS.md.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import { isNodusError, NodusError } from '../../common/errors.ts'
import { verifyEd25519 } from '../../crypto/index.ts'
import { lengthPrefixed } from '../../net/index.ts'
import { parseCid } from '../codec/cid.ts'
import { type AuditChallenge, decodeChallenge } from '../keeper/audit.ts'

export const SHARD_PROTOCOL = '/nodus/shard/1.0.0'
/** Largest request or response header frame, bytes. */
export const MAX_HEADER_BYTES = 64 * 1024
/** Largest holder update accepted, bytes. */
export const MAX_UPDATE_BYTES = 16 * 1024 * 1024
/** Most CIDs in one `has` request. */
export const MAX_HAS_CIDS = 1024
const RECEIPT_DOMAIN = 'nodus/receipt/v1'

/** A holder's signed statement that it stored `cid` (`size` bytes) durably at `storedAt` (ms since epoch). */
export interface Receipt {
  cid: CID
  size: number
  holder: string
  storedAt: number
  /** Ed25519 signature (64 bytes) by the holder over the dag-cbor receipt body with domain `nodus/receipt/v1`. */
  sig: Uint8Array
}

type Request =
  | { op: 'put'; cid: CID; size: number; order: Uint8Array | undefined; repair: boolean }
  | { op: 'get'; cid: CID; offset: number; length: number | undefined; repair: boolean }
  | { op: 'has'; cids: CID[] }
  | { op: 'pin'; pin: Uint8Array }
  | { op: 'commit'; commit: Uint8Array }
  | { op: 'dropped'; cid: CID; cids: CID[] }
  | { op: 'latest'; cid: CID }
  | { op: 'audit'; challenge: AuditChallenge }
  | { op: 'update'; cid: CID; size: number }

/** The bytes a holder signs for a receipt: dag-cbor `{ domain: 'nodus/receipt/v1', cid, size, holder, storedAt }`. */
export function receiptBody(r: Omit<Receipt, 'sig'>): Uint8Array {
  return dagCbor.encode({
    domain: RECEIPT_DOMAIN,
    cid: r.cid.bytes,
    size: r.size,
    holder: r.holder,
    storedAt: r.storedAt,
  })
}

/** Whether a decoded dag-cbor value is a map (not null, not an array). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function badRequest(msg: string): NodusError {
  return new NodusError('PROTOCOL_ERROR', msg, { peerAction: 'reject' })
}

/** A CID field of a peer's message; throws PROTOCOL_ERROR (not bytes) or CID_INVALID (not BLAKE3-256 CIDv1), peerAction reject. */
export function asCid(v: unknown): CID {
  if (!(v instanceof Uint8Array)) throw badRequest('cid must be bytes')
  try {
    return parseCid(v)
  } catch (err) {
    throw new NodusError('CID_INVALID', 'cid is not a BLAKE3-256 CIDv1', { cause: err, peerAction: 'reject' })
  }
}

function asBytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw badRequest(`${what} must be bytes`)
  return v
}

/** A non-negative safe integer field of a peer's message; throws PROTOCOL_ERROR (peerAction reject). */
export function asSize(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw badRequest(`${what} must be a non-negative integer`)
  return v
}

/** Decode and validate a request header. Throws PROTOCOL_ERROR / CID_INVALID on hostile input. */
export function decodeRequest(bytes: Uint8Array): Request {
  let msg: unknown
  try {
    msg = dagCbor.decode(bytes)
  } catch (err) {
    throw new NodusError('PROTOCOL_ERROR', 'request is not dag-cbor', { cause: err, peerAction: 'reject' })
  }
  if (!isRecord(msg) || msg.v !== 1) throw badRequest('unsupported request version')
  switch (msg.op) {
    case 'put':
      return {
        op: 'put',
        cid: asCid(msg.cid),
        size: asSize(msg.size, 'size'),
        order: msg.order === undefined ? undefined : asBytes(msg.order, 'order'),
        repair: msg.repair === true,
      }
    case 'get':
      return {
        op: 'get',
        cid: asCid(msg.cid),
        offset: msg.offset === undefined ? 0 : asSize(msg.offset, 'offset'),
        length: msg.length === undefined ? undefined : asSize(msg.length, 'length'),
        repair: msg.repair === true,
      }
    case 'has': {
      if (!Array.isArray(msg.cids) || msg.cids.length > MAX_HAS_CIDS)
        throw badRequest('cids must be a short array')
      return { op: 'has', cids: msg.cids.map(asCid) }
    }
    case 'latest':
      return { op: 'latest', cid: asCid(msg.cid) }
    case 'audit':
      if (!(msg.challenge instanceof Uint8Array)) throw badRequest('challenge must be bytes')
      return { op: 'audit', challenge: decodeChallenge(msg.challenge) }
    case 'update':
      return { op: 'update', cid: asCid(msg.cid), size: asSize(msg.size, 'size') }
    case 'pin':
      return { op: 'pin', pin: asBytes(msg.pin, 'pin') }
    case 'commit':
      return { op: 'commit', commit: asBytes(msg.commit, 'commit') }
    case 'dropped': {
      if (!Array.isArray(msg.cids) || msg.cids.length > MAX_HAS_CIDS)
        throw badRequest('cids must be a short array')
      return { op: 'dropped', cid: asCid(msg.cid), cids: msg.cids.map(asCid) }
    }
    default:
      throw badRequest('unknown op')
  }
}

/** An error reply header, dag-cbor `{ ok: false, code, message }` (code PROTOCOL_ERROR for a non-NodusError). */
export function errorBody(err: unknown): Uint8Array {
  const code = isNodusError(err) ? err.code : 'PROTOCOL_ERROR'
  const message = err instanceof Error ? err.message : 'error'
  return dagCbor.encode({ ok: false, code, message })
}

/** {@link errorBody} as a length-prefixed frame, as a stream reply sends it. */
export function encodeError(err: unknown): Uint8Array {
  return lengthPrefixed(errorBody(err))
}

/** Verify a receipt's signature against the holder's Ed25519 PeerId. */
export async function verifyReceipt(r: Receipt): Promise<boolean> {
  try {
    const pid = peerIdFromString(r.holder)
    if (pid.publicKey?.type !== 'Ed25519') return false
    return verifyEd25519(pid.publicKey.raw, receiptBody(r), r.sig)
  } catch {
    return false
  }
}
