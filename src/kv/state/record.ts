/**
 * The values of the state tables (layout in keys.ts): element records, key metadata and the stamp
 * (an op's HLC and id as 40 bytes, whose byte order is the merge order: by HLC, then op id).
 *
 * Element record: `flags(1) stamp(40) [u64 expireAt] payload`; flags bit 0: tombstone (removed; no
 * payload), bit 1: has expireAt. Payload per type: dag-cbor of the value (string, hash, list, json),
 * of the field/value array (stream); f64 big-endian of the score (zset, geo) or sample (ts); empty
 * (set, ts range delete).
 *
 * Key metadata: `version(1)=1 type(1) flags(1) [winner stamp] [typeFloor stamp] [delFloor stamp]
 * u32(live) u32(liveWithTtl)`; type 0 (none: only key-level deletes seen) has no winner stamp; flags
 * bit 0: typeFloor present, bit 1: delFloor present. See apply.ts for what they mean.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { compareBytes, hlcFromBytes, hlcToBytes, type KvType, type KvValue, type Op } from '../op-types.ts'
import { readU64, STAMP_BYTES, typeByte, typeOfByte, u64 } from './keys.ts'

/** An op's HLC (8 bytes) and id (32 bytes): byte order is the merge order. */
export type Stamp = Uint8Array

/** The stamp of `op`. */
export function stampOf(op: Op): Stamp {
  const s = new Uint8Array(STAMP_BYTES)
  hlcToBytes(op.body.hlc, s, 0)
  s.set(op.id.subarray(0, 32), 8)
  return s
}

/** Merge order of two stamps: positive when `a` wins. */
export const compareStamps = (a: Stamp, b: Stamp): number => compareBytes(a, b)

/** The larger of two stamps (either may be absent). */
export function maxStamp(a: Stamp | undefined, b: Stamp | undefined): Stamp | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return compareStamps(a, b) >= 0 ? a : b
}

/** Unix ms of a stamp's HLC. */
export const stampMs = (s: Stamp): number => hlcFromBytes(s).ms

const TOMB = 1
const HAS_TTL = 2

/** A decoded element record. */
export interface ElemRecord {
  stamp: Stamp
  tomb: boolean
  expireAt: number | undefined
  payload: Uint8Array
}

export function encodeRecord(
  stamp: Stamp,
  tomb: boolean,
  expireAt: number | undefined,
  payload: Uint8Array,
): Uint8Array {
  const ttl = expireAt !== undefined && !tomb
  const out = new Uint8Array(1 + STAMP_BYTES + (ttl ? 8 : 0) + (tomb ? 0 : payload.length))
  out[0] = (tomb ? TOMB : 0) | (ttl ? HAS_TTL : 0)
  out.set(stamp, 1)
  if (ttl) u64(expireAt, out, 1 + STAMP_BYTES)
  if (!tomb) out.set(payload, 1 + STAMP_BYTES + (ttl ? 8 : 0))
  return out
}

export function decodeRecord(b: Uint8Array): ElemRecord {
  const flags = b[0] as number
  const ttl = (flags & HAS_TTL) !== 0
  const start = 1 + STAMP_BYTES + (ttl ? 8 : 0)
  return {
    stamp: b.subarray(1, 1 + STAMP_BYTES),
    tomb: (flags & TOMB) !== 0,
    expireAt: ttl ? readU64(b, 1 + STAMP_BYTES) : undefined,
    payload: b.subarray(start),
  }
}

/** The stamp of an encoded record, without decoding the rest. */
export const recordStamp = (b: Uint8Array): Stamp => b.subarray(1, 1 + STAMP_BYTES)

/** Whether a record is live (not removed) and not expired at `nowMs`. */
export function visible(r: ElemRecord, nowMs: number): boolean {
  return !r.tomb && (r.expireAt === undefined || nowMs < r.expireAt)
}

/** Per-key metadata (see apply.ts for the rules that maintain it). */
export interface Meta {
  /** The type of the key's latest non-`del` op; undefined when only `del`s were seen. */
  type: KvType | undefined
  /** Stamp of the key's latest non-`del` op (of type `type`). */
  winner: Stamp | undefined
  /** Stamp of the latest op of another type than `type`: elements older than it are gone. */
  typeFloor: Stamp | undefined
  /** Stamp of the latest key-level `del`: elements older than it are gone. */
  delFloor: Stamp | undefined
  /** Live (not removed) elements stored, expired ones included until gc. */
  live: number
  /** Of which with an expireAt. */
  liveWithTtl: number
}

export const emptyMeta = (): Meta => ({
  type: undefined,
  winner: undefined,
  typeFloor: undefined,
  delFloor: undefined,
  live: 0,
  liveWithTtl: 0,
})

export function encodeMeta(m: Meta): Uint8Array {
  const stamps = [m.type === undefined ? undefined : m.winner, m.typeFloor, m.delFloor]
  const n = stamps.filter((s) => s !== undefined).length
  const out = new Uint8Array(3 + n * STAMP_BYTES + 8)
  out[0] = 1
  out[1] = m.type === undefined ? 0 : typeByte(m.type)
  out[2] = (m.typeFloor === undefined ? 0 : 1) | (m.delFloor === undefined ? 0 : 2)
  let o = 3
  for (const s of stamps) {
    if (s === undefined) continue
    out.set(s, o)
    o += STAMP_BYTES
  }
  const v = new DataView(out.buffer)
  v.setUint32(o, m.live)
  v.setUint32(o + 4, m.liveWithTtl)
  return out
}

export function decodeMeta(b: Uint8Array | undefined): Meta {
  if (b === undefined) return emptyMeta()
  const type = typeOfByte(b[1] as number)
  const flags = b[2] as number
  let o = 3
  const take = (): Stamp => {
    const s = new Uint8Array(b.subarray(o, o + STAMP_BYTES))
    o += STAMP_BYTES
    return s
  }
  const winner = type === undefined ? undefined : take()
  const typeFloor = flags & 1 ? take() : undefined
  const delFloor = flags & 2 ? take() : undefined
  const v = new DataView(b.buffer, b.byteOffset + o, 8)
  return { type, winner, typeFloor, delFloor, live: v.getUint32(0), liveWithTtl: v.getUint32(4) }
}

/** The floor below which no element of the key's type survives: max(typeFloor, delFloor). */
export const floorOf = (m: Meta): Stamp | undefined => maxStamp(m.typeFloor, m.delFloor)

/** dag-cbor bytes of a value (deterministic: sorted map keys, shortest integers, float64). */
export const encodeValue = (v: KvValue): Uint8Array => dagCbor.encode(v)
export const decodeValue = (b: Uint8Array): KvValue => dagCbor.decode<KvValue>(b)

/** f64 big-endian (not order-preserving: record payloads, not keys). */
export function encodeNumber(x: number): Uint8Array {
  const out = new Uint8Array(8)
  new DataView(out.buffer).setFloat64(0, x)
  return out
}
export const decodeNumber = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, 8).getFloat64(0)
