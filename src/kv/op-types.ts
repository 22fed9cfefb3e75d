/**
 * The kv area's shared shapes: an operation (op) as decoded from its signed envelope, and the hybrid
 * logical clock timestamp that orders ops. Pure types and comparisons; the envelope codec (encoding,
 * signing, id) is op.ts, the typed state machine is state/, reconciliation is reconcile/.
 *
 * Merge rule: last writer wins per (db, key, field or element), by HLC timestamp, then op id (bytes,
 * lexicographic). Any node that applies any order of the same ops reaches the same state.
 */

/** The value types of a database, with Redis's semantics where Redis defines them. */
export const KV_TYPES = ['string', 'hash', 'list', 'set', 'zset', 'json', 'stream', 'ts', 'geo'] as const
export type KvType = (typeof KV_TYPES)[number]

/**
 * A hybrid logical clock timestamp (Kulkarni et al., "Logical Physical Clocks", OPODIS 2014): `ms` is
 * physical time in Unix milliseconds (the largest seen), `c` a counter that orders events within one
 * `ms`. Ordered by (ms, c). Encoded as the single integer `ms × 2^16 + c` (`c` < 2^16), which stays a
 * safe JavaScript integer until the year 6429... (ms < 2^37 ≈ year 6325).
 */
export interface Hlc {
  /** Unix milliseconds. */
  ms: number
  /** Logical counter, 0 ≤ c < 65 536. */
  c: number
}

/** Largest HLC counter + 1. */
export const HLC_COUNTER_LIMIT = 1 << 16

/** An argument or value inside an op: what dag-cbor carries (no undefined, no floats NaN/±Infinity). */
export type KvValue = null | boolean | number | string | Uint8Array | KvValue[] | { [k: string]: KvValue }

/**
 * The unsigned body of an operation. Ops of `type: 'db'` manage the database itself: `create` (the
 * first op, by the owner), `grant` and `revoke` (writer capabilities; see auth.ts).
 */
export interface OpBody {
  /** Envelope version: 1. */
  v: 1
  /** Database id, `<name>-<owner key id>`. */
  db: string
  /** The key ('' for `type: 'db'` ops). */
  key: string
  /** Hash field, JSON path or other sub-key where the op's type has one; absent otherwise. */
  field?: string
  type: KvType | 'db'
  /** The operation, e.g. `set`, `del`, `hset`, `zadd`, `xadd`, `grant`. Lower case. */
  op: string
  args: KvValue[]
  hlc: Hlc
  /** Unix ms at and after which what this op wrote is hidden on read. Never replicated as a delete. */
  expireAt?: number
  /** The signer's public key: 32 bytes of Ed25519, or a hybrid public key (Ed25519 ‖ ML-DSA-65). */
  signer: Uint8Array
  /** Id of the `grant` op that lets `signer` write, when the signer is not the owner. */
  cap?: Uint8Array
}

/** A decoded, signature-checked operation. */
export interface Op {
  body: OpBody
  /** BLAKE3-256 of `bytes`. */
  id: Uint8Array
  /** The signed envelope as received and stored. */
  bytes: Uint8Array
}

/** Compare two HLC timestamps: negative, 0 or positive. */
export function compareHlc(a: Hlc, b: Hlc): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.c - b.c
}

/** Compare byte strings lexicographically (shorter first on a common prefix). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number)
    if (d !== 0) return d
  }
  return a.length - b.length
}

/** The merge order: by HLC, then op id. Positive when `a` wins over `b`. */
export function compareOps(a: { hlc: Hlc; id: Uint8Array }, b: { hlc: Hlc; id: Uint8Array }): number {
  return compareHlc(a.hlc, b.hlc) || compareBytes(a.id, b.id)
}

/** The HLC as 8 big-endian bytes (48-bit ms, 16-bit counter): byte order is HLC order. */
export function hlcToBytes(h: Hlc, out: Uint8Array = new Uint8Array(8), offset = 0): Uint8Array {
  const hi = Math.floor(h.ms / 2 ** 16)
  const v = new DataView(out.buffer, out.byteOffset + offset, 8)
  v.setUint32(0, hi)
  v.setUint16(4, h.ms % 2 ** 16)
  v.setUint16(6, h.c)
  return out
}

/** The inverse of {@link hlcToBytes}. */
export function hlcFromBytes(b: Uint8Array, offset = 0): Hlc {
  const v = new DataView(b.buffer, b.byteOffset + offset, 8)
  return { ms: v.getUint32(0) * 2 ** 16 + v.getUint16(4), c: v.getUint16(6) }
}
