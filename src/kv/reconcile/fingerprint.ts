/**
 * Items and fingerprints of range-based set reconciliation (Meyer, "Range-Based Set Reconciliation",
 * SRDS 2023, arXiv 2212.13567; the same construction as negentropy's protocol v1).
 *
 * An item is one op of a database, named by its 40-byte key: the op's HLC as 8 big-endian bytes
 * (op-types.ts `hlcToBytes`: byte order is HLC order) followed by its 32-byte op id. Items order
 * bytewise, so by (HLC, id): the merge order.
 *
 * The fingerprint of a set of items is additive: the sum of the items' ids read as little-endian
 * 256-bit integers, modulo 2^256, with the number of items; its 16-byte form is the first 16 bytes
 * of SHA-256(sum ‖ varint(count)), as negentropy v1 defines it. Because the sum is a group operation,
 * the summary of a range is the sum of its sub-ranges' summaries, and of a prefix difference
 * (`P(hi) − P(lo)`), which lets fingerprint-index.ts precompute range sums.
 *
 * Limits (Meyer §6): an additive hash is not collision resistant against an adversary who chooses
 * the items (Wagner's generalized birthday attack finds sets with equal sums). Op ids are BLAKE3
 * hashes of signed envelopes, so only an authorized writer could try, and a collision only makes two
 * replicas skip a range that differs until the next reconciliation over other bounds.
 */
import { hash } from 'node:crypto'
import { type Hlc, hlcFromBytes, hlcToBytes } from '../op-types.ts'

/** Bytes of an op id (BLAKE3-256). */
export const ID_BYTES = 32
/** Bytes of the HLC at the start of an item key. */
export const HLC_BYTES = 8
/** Bytes of an item key: HLC (8) ‖ op id (32). */
export const ITEM_KEY_BYTES = HLC_BYTES + ID_BYTES
/** Bytes of a fingerprint on the wire. */
export const FINGERPRINT_BYTES = 16

/** The item key of an op: `hlcToBytes(hlc) ‖ id`, a `Uint8Array` of 40 bytes. */
export function itemKey(hlc: Hlc, id: Uint8Array): Uint8Array {
  if (id.length !== ID_BYTES) throw new RangeError(`an op id has ${ID_BYTES} bytes, not ${id.length}`)
  const out = new Uint8Array(ITEM_KEY_BYTES)
  hlcToBytes(hlc, out, 0)
  out.set(id, HLC_BYTES)
  return out
}

/** The op id in an item key (a view, 32 bytes). */
export function keyId(key: Uint8Array): Uint8Array {
  return key.subarray(HLC_BYTES, ITEM_KEY_BYTES)
}

/** The HLC of an item key. */
export function keyHlc(key: Uint8Array): Hlc {
  return hlcFromBytes(key)
}

/**
 * A set's additive summary: `count` items whose ids sum to `sum` (8 little-endian 32-bit limbs, the
 * 256-bit sum modulo 2^256). Mutable: {@link addId}, {@link addSummary} and {@link subSummary} change it.
 */
export interface Summary {
  count: number
  sum: Uint32Array
}

/** The summary of the empty set. */
export function emptySummary(): Summary {
  return { count: 0, sum: new Uint32Array(8) }
}

/** A copy of `s`. */
export function cloneSummary(s: Summary): Summary {
  return { count: s.count, sum: s.sum.slice() }
}

/** Adds the 32 bytes at `bytes[offset…]`, a little-endian 256-bit integer, to `sum` modulo 2^256. */
function addBytes(sum: Uint32Array, bytes: Uint8Array, offset: number, sign: 1 | -1): void {
  let carry = 0
  for (let i = 0; i < 8; i++) {
    const v = (sum[i] as number) + sign * readU32LE(bytes, offset + 4 * i) + carry
    // v is in (−2^33, 2^33): the limb is v mod 2^32, the carry its floor division by 2^32.
    sum[i] = v >>> 0
    carry = Math.floor(v / 0x1_0000_0000)
  }
}

/** `s` += the item whose key (40 bytes) or id (32 bytes) is `keyOrId`. */
export function addId(s: Summary, keyOrId: Uint8Array): Summary {
  addBytes(s.sum, keyOrId, keyOrId.length - ID_BYTES, 1)
  s.count++
  return s
}

/** `s` −= the item whose key or id is `keyOrId` (it must be in the set `s` summarizes). */
export function removeId(s: Summary, keyOrId: Uint8Array): Summary {
  addBytes(s.sum, keyOrId, keyOrId.length - ID_BYTES, -1)
  s.count--
  return s
}

function combine(a: Summary, b: Summary, sign: 1 | -1): Summary {
  let carry = 0
  for (let i = 0; i < 8; i++) {
    const v = (a.sum[i] as number) + sign * (b.sum[i] as number) + carry
    a.sum[i] = v >>> 0
    carry = Math.floor(v / 0x1_0000_0000)
  }
  a.count += sign * b.count
  return a
}

/** `a` += `b` (the union of disjoint sets). Returns `a`. */
export function addSummary(a: Summary, b: Summary): Summary {
  return combine(a, b, 1)
}

/** `a` −= `b` (`b` summarizes a subset of `a`'s set). Returns `a`. */
export function subSummary(a: Summary, b: Summary): Summary {
  return combine(a, b, -1)
}

/** Whether two summaries are equal (same count, same sum). */
export function summaryEquals(a: Summary, b: Summary): boolean {
  if (a.count !== b.count) return false
  for (let i = 0; i < 8; i++) if (a.sum[i] !== b.sum[i]) return false
  return true
}

/** Bytes of a stored summary: the sum (32, little-endian) ‖ count (8, big-endian). */
export const SUMMARY_BYTES = 40

function readCount(b: Uint8Array): number {
  return readU32BE(b, 32) * 0x1_0000_0000 + readU32BE(b, 36)
}

function readU32BE(b: Uint8Array, o: number): number {
  return (
    (((b[o] as number) << 24) |
      ((b[o + 1] as number) << 16) |
      ((b[o + 2] as number) << 8) |
      (b[o + 3] as number)) >>>
    0
  )
}

function writeCount(b: Uint8Array, count: number): void {
  const hi = Math.floor(count / 0x1_0000_0000)
  const lo = count >>> 0
  for (let i = 0; i < 4; i++) {
    b[35 - i] = (hi >>> (8 * i)) & 0xff
    b[39 - i] = (lo >>> (8 * i)) & 0xff
  }
}

function readU32LE(b: Uint8Array, o: number): number {
  return (
    ((b[o] as number) |
      ((b[o + 1] as number) << 8) |
      ((b[o + 2] as number) << 16) |
      ((b[o + 3] as number) << 24)) >>>
    0
  )
}

function writeU32LE(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff
  b[o + 1] = (v >>> 8) & 0xff
  b[o + 2] = (v >>> 16) & 0xff
  b[o + 3] = v >>> 24
}

/** `s` as {@link SUMMARY_BYTES} bytes. */
export function encodeSummary(s: Summary): Uint8Array {
  const out = new Uint8Array(SUMMARY_BYTES)
  for (let i = 0; i < 8; i++) writeU32LE(out, 4 * i, s.sum[i] as number)
  writeCount(out, s.count)
  return out
}

/** `s` += the summary encoded in `bytes` ({@link encodeSummary}), without decoding it first. Returns `s`. */
export function addEncodedSummary(s: Summary, bytes: Uint8Array): Summary {
  addBytes(s.sum, bytes, 0, 1)
  s.count += readCount(bytes)
  return s
}

/** The inverse of {@link encodeSummary}. */
export function decodeSummary(bytes: Uint8Array): Summary {
  if (bytes.length !== SUMMARY_BYTES) throw new RangeError(`a summary has ${SUMMARY_BYTES} bytes`)
  return addEncodedSummary(emptySummary(), bytes)
}

/**
 * A new encoded summary: `encoded` (undefined: the empty set) with the item `keyOrId` added
 * (`sign` 1) or removed (−1), computed on the bytes.
 */
export function encodedWithItem(
  encoded: Uint8Array | undefined,
  keyOrId: Uint8Array,
  sign: 1 | -1,
): Uint8Array {
  const out = new Uint8Array(SUMMARY_BYTES)
  if (encoded !== undefined) out.set(encoded)
  const off = keyOrId.length - ID_BYTES
  let carry = 0
  for (let i = 0; i < 8; i++) {
    const v = readU32LE(out, 4 * i) + sign * readU32LE(keyOrId, off + 4 * i) + carry
    writeU32LE(out, 4 * i, v >>> 0)
    carry = Math.floor(v / 0x1_0000_0000)
  }
  writeCount(out, readCount(out) + sign)
  return out
}

/**
 * The 16-byte fingerprint of a summary, negentropy v1's: the first 16 bytes of SHA-256(sum as 32
 * little-endian bytes ‖ varint(count)), where this varint is negentropy's, base-128 digits most
 * significant first, the high bit set on every byte but the last (not the LEB128 of our wire format).
 */
export function fingerprint(s: Summary): Uint8Array {
  const digits: number[] = []
  let n = s.count
  do {
    digits.push(n % 128)
    n = Math.floor(n / 128)
  } while (n > 0)
  const buf = new Uint8Array(32 + digits.length)
  for (let i = 0; i < 8; i++) writeU32LE(buf, 4 * i, s.sum[i] as number)
  for (let i = 0; i < digits.length; i++) {
    const d = digits[digits.length - 1 - i] as number
    buf[32 + i] = i < digits.length - 1 ? d | 0x80 : d
  }
  return new Uint8Array(hash('sha256', buf, 'buffer').subarray(0, FINGERPRINT_BYTES))
}

/**
 * The shortest bound `b` with `p < b ≤ q` for item keys `p < q` (40 bytes each): `q`'s HLC (8 bytes)
 * when the HLCs differ, else `q` cut one byte past the ids' common prefix. A range `[lo, b)` then holds
 * `p` and not `q`. Bounds are never shorter than 8 bytes (the wire format sends the HLC whole).
 */
export function separator(p: Uint8Array, q: Uint8Array): Uint8Array {
  let i = 0
  while (i < ITEM_KEY_BYTES && p[i] === q[i]) i++
  if (i >= ITEM_KEY_BYTES) throw new RangeError('separator of equal keys')
  return q.slice(0, Math.max(HLC_BYTES, i + 1))
}
