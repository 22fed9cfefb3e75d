/**
 * Key layout of the kv area's materialized state (prefixes 0x10–0x3f of the shared OrderedStore).
 * Every key is order-preserving bytes, so range reads are key ranges.
 *
 * Components:
 * - `s(x)`: a string as UTF-8 with each 0x00 escaped as 0x00 0xFF, terminated by 0x00 (the FoundationDB
 *   tuple layer's byte-string rule): prefix-free and order-preserving, since a terminator is always
 *   followed by a byte below 0xFF (UTF-8 never has 0xFF; type bytes are small).
 * - `u64(n)`: a non-negative safe integer, 8 bytes big-endian.
 * - `f64(x)`: an IEEE-754 double, 8 bytes big-endian with the sign bit flipped for x ≥ 0 and every bit
 *   inverted for x < 0, so byte order is numeric order (−0 is stored as +0; NaN is refused earlier).
 * - `t`: the value type, 1 + its index in KV_TYPES (string 1, hash 2, list 3, set 4, zset 5, json 6,
 *   stream 7, ts 8, geo 9).
 * - `stamp`: an op's HLC (8 bytes, hlc.ts) then its id (32 bytes): the merge order as bytes.
 *
 * Tables:
 * | prefix | key | value |
 * |---|---|---|
 * | 0x10 META | s(db) s(key) | key metadata: winning type and its stamp, the floor (meta.ts) |
 * | 0x11 ELEM | s(db) s(key) t element | element record: winning stamp, expireAt, value (record.ts) |
 * | 0x12 ZIDX | s(db) s(key) f64(score) member | zset/geo by score: empty, or u64(expireAt) |
 * | 0x13 TTL | u64(expireAt) ELEM-key-without-prefix | empty: elements to hide, by expiry |
 * | 0x14 IDXDEF | s(db) s(index name) | a secondary index's definition (secondary.ts) |
 * | 0x15 IDX | s(db) s(index name) indexed-value s(key) | empty |
 *
 * Elements per type (the `element` part of an ELEM key; the last component, so raw bytes):
 * - string: empty (one element per key).
 * - hash: the field (UTF-8). set: the member. zset, geo: the member (score in the record and ZIDX).
 * - list: the 45-byte element id: side (0 = pushed left, 1 = right), then for the left side the HLC
 *   and index inverted (every byte 255 − b), for the right side as they are: `side hlc(8) opId(32)
 *   index(u32)`. Byte order is list order: left pushes newest first (LPUSH a b c gives c b a), then
 *   right pushes oldest first.
 * - json: 0x00 for the whole document, 0x01 member for a top-level member.
 * - stream: u64(ms) u64(seq): entry id order.
 * - ts: 0x00 u64(timestamp) for a sample; 0x01 u64(from) u64(to) stamp for a range delete.
 *
 * Indexed values (IDX): 0x01 f64(n) for a number, 0x02 s(text) for a string (numbers sort first).
 * Strings in IDX keys are cut to {@link MAX_INDEXED_BYTES} UTF-8 bytes; lookups re-check the value.
 */
import { type Hlc, hlcToBytes, KV_TYPES, type KvType } from '../op-types.ts'

export const P_META = 0x10
export const P_ELEM = 0x11
export const P_ZIDX = 0x12
export const P_TTL = 0x13
export const P_IDXDEF = 0x14
export const P_IDX = 0x15

/**
 * Longest database id, key, and field or member, UTF-8 bytes: with escaping at worst doubling a
 * string, every table key stays within LMDB's 1978 bytes (test/kv/state-limits.test.ts).
 */
export const MAX_DB_BYTES = 128
export const MAX_KEY_BYTES = 512
export const MAX_ELEMENT_BYTES = 512
/** Longest string an IDX key holds (longer ones are cut; byIndex re-checks). */
export const MAX_INDEXED_BYTES = 256

/** JSON element of the whole document, and the prefix of top-level members. */
export const JSON_ROOT = Uint8Array.of(0)
export const JSON_MEMBER = Uint8Array.of(1)
/** Time-series sample and range-delete prefixes. */
export const TS_SAMPLE = Uint8Array.of(0)
export const TS_RANGE_DEL = Uint8Array.of(1)

/** Length of a list element id. */
export const LIST_ID_BYTES = 45
/** Length of a stamp (HLC + op id). */
export const STAMP_BYTES = 40

const enc = new TextEncoder()
const dec = new TextDecoder()

export const utf8 = (s: string): Uint8Array => enc.encode(s)
export const fromUtf8 = (b: Uint8Array): string => dec.decode(b)

/** The type byte of `type`. */
export function typeByte(type: KvType): number {
  return KV_TYPES.indexOf(type) + 1
}

/** The type of a type byte, or undefined for 0 / unknown. */
export function typeOfByte(b: number): KvType | undefined {
  return KV_TYPES[b - 1]
}

/** Concatenate byte arrays. */
export const concat = (...parts: Uint8Array[]): Uint8Array => Buffer.concat(parts)

/** `s(x)`: escaped, terminated string component. */
export function strComponent(x: string | Uint8Array): Uint8Array {
  const b = typeof x === 'string' ? utf8(x) : x
  let zeros = 0
  for (const c of b) if (c === 0) zeros++
  const out = new Uint8Array(b.length + zeros + 1)
  let o = 0
  for (const c of b) {
    out[o++] = c
    if (c === 0) out[o++] = 0xff
  }
  out[o] = 0
  return out
}

/** `s(x)` without its terminator: the key prefix of every string starting with `x`. */
export function strPrefix(x: string): Uint8Array {
  const c = strComponent(x)
  return c.subarray(0, c.length - 1)
}

/** Decode a `s(x)` component at `offset`: the string and the offset after it. */
export function readStr(b: Uint8Array, offset: number): [string, number] {
  const out: number[] = []
  let i = offset
  while (i < b.length) {
    const c = b[i] as number
    if (c === 0) {
      if (b[i + 1] === 0xff) {
        out.push(0)
        i += 2
        continue
      }
      return [fromUtf8(Uint8Array.from(out)), i + 1]
    }
    out.push(c)
    i++
  }
  throw new Error('unterminated string component')
}

/** `u64(n)` for a non-negative safe integer. */
export function u64(n: number, out: Uint8Array = new Uint8Array(8), offset = 0): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset + offset, 8)
  v.setUint32(0, Math.floor(n / 2 ** 32))
  v.setUint32(4, n >>> 0)
  return out
}

export function readU64(b: Uint8Array, offset = 0): number {
  const v = new DataView(b.buffer, b.byteOffset + offset, 8)
  return v.getUint32(0) * 2 ** 32 + v.getUint32(4)
}

/** `f64(x)`: order-preserving double (sign-flip for x ≥ 0, all bits inverted for x < 0). */
export function f64(x: number, out: Uint8Array = new Uint8Array(8), offset = 0): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset + offset, 8)
  v.setFloat64(0, x === 0 ? 0 : x)
  if ((out[offset] as number) & 0x80)
    for (let i = 0; i < 8; i++) out[offset + i] = 255 - (out[offset + i] as number)
  else out[offset] = (out[offset] as number) | 0x80
  return out
}

export function readF64(b: Uint8Array, offset = 0): number {
  const t = new Uint8Array(b.subarray(offset, offset + 8)) // a copy (Buffer#slice would be a view)
  if ((t[0] as number) & 0x80) t[0] = (t[0] as number) & 0x7f
  else for (let i = 0; i < 8; i++) t[i] = 255 - (t[i] as number)
  return new DataView(t.buffer).getFloat64(0)
}

/** The smallest byte string greater than every string that starts with `b` (b with its last non-0xFF byte + 1). */
export function prefixEnd(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(b) // a copy (Buffer#slice would be a view)
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] !== 0xff) {
      out[i] = (out[i] as number) + 1
      return out.subarray(0, i + 1)
    }
  }
  return new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
}

/** `s(db) s(key)`: the part every per-key table shares. */
export function dbKey(db: string, key: string): Uint8Array {
  return concat(strComponent(db), strComponent(key))
}

export const metaKey = (dk: Uint8Array): Uint8Array => concat(Uint8Array.of(P_META), dk)

/** ELEM prefix of one key's elements of one type. */
export const elemTypePrefix = (dk: Uint8Array, type: KvType): Uint8Array =>
  concat(Uint8Array.of(P_ELEM), dk, Uint8Array.of(typeByte(type)))

export const zidxPrefix = (dk: Uint8Array): Uint8Array => concat(Uint8Array.of(P_ZIDX), dk)

/** TTL key of an element store key (an ELEM key). */
export function ttlKey(expireAt: number, elemKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(9 + elemKey.length - 1)
  out[0] = P_TTL
  u64(expireAt, out, 1)
  out.set(elemKey.subarray(1), 9)
  return out
}

/** The ELEM key a TTL key points at. */
export function elemKeyOfTtl(ttl: Uint8Array): Uint8Array {
  const out = new Uint8Array(ttl.length - 8)
  out[0] = P_ELEM
  out.set(ttl.subarray(9), 1)
  return out
}

/** A list element id (see the layout above). */
export function listElementId(side: 'left' | 'right', hlc: Hlc, opId: Uint8Array, index: number): Uint8Array {
  const out = new Uint8Array(LIST_ID_BYTES)
  out[0] = side === 'left' ? 0 : 1
  hlcToBytes(hlc, out, 1)
  out.set(opId.subarray(0, 32), 9)
  new DataView(out.buffer).setUint32(41, index)
  if (side === 'left') {
    for (let i = 1; i < 9; i++) out[i] = 255 - (out[i] as number)
    for (let i = 41; i < 45; i++) out[i] = 255 - (out[i] as number)
  }
  return out
}

/** A stream entry id `<ms>-<seq>` as its element bytes. */
export function streamIdBytes(ms: number, seq: number): Uint8Array {
  const out = new Uint8Array(16)
  u64(ms, out, 0)
  u64(seq, out, 8)
  return out
}

/** The default entry id of an xadd: `hlc.ms`-(`hlc.c` × 2^32 + the op id's first 4 bytes). */
export function defaultStreamSeq(hlc: Hlc, opId: Uint8Array): number {
  const low = new DataView(opId.buffer, opId.byteOffset, 4).getUint32(0)
  return hlc.c * 2 ** 32 + low
}

/** Largest sequence part of a stream id (a safe integer). */
export const MAX_STREAM_SEQ = Number.MAX_SAFE_INTEGER

/** An IDX value: 0x01 f64 for numbers, 0x02 s(text) (cut to MAX_INDEXED_BYTES) for strings. */
export function indexedValue(v: string | number): Uint8Array {
  if (typeof v === 'number') return concat(Uint8Array.of(1), f64(v))
  let b = utf8(v)
  if (b.length > MAX_INDEXED_BYTES) b = b.subarray(0, MAX_INDEXED_BYTES)
  return concat(Uint8Array.of(2), strComponent(b))
}
