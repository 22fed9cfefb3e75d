/**
 * The state root: a BLAKE3 bucket tree over the sorted state, updated incrementally.
 *
 * Follows the bucket tree of Hyperledger Fabric v0.6 (`core/ledger/statemgmt/buckettree`: keys hashed
 * into a fixed number of buckets, a bucket's hash over its sorted key-values, a fixed-fan-out tree of
 * bucket hashes above; hyperchain kept it), with fixed parameters, since they define the root:
 * - a logical key's bucket is the first two bytes (big-endian) of BLAKE3-256(key): {@link BUCKETS}
 *   = 65,536 buckets;
 * - a bucket's hash is BLAKE3-256(`00` ‖ for each entry in key order: u16 len ‖ key ‖ u16 len ‖
 *   value), or 32 zero bytes when the bucket is empty (length-prefixed, so the encoding is injective);
 * - 256 mid hashes, mid i = BLAKE3-256(`01` ‖ the hashes of buckets 256·i … 256·i + 255);
 * - the root = BLAKE3-256(`02` ‖ the 256 mid hashes).
 * Collision resistance is BLAKE3's (every level hashes fixed-length children or an injective encoding,
 * each level with its own prefix). Cost per batch: each changed bucket is read and rehashed (its entries
 * only: the state size ÷ 65,536 on average), each changed mid rehashes 8 KiB, the root 8 KiB; nothing
 * proportional to the state's size as long as buckets stay small (under a million entries, a bucket
 * holds about 16). A sparse Merkle tree (Diem's Jellyfish) would make that O(log n) at any size and
 * give inclusion proofs; this tree gives neither per-key proofs nor bounds against keys ground into one
 * bucket (which costs the grinder a funded account or balance per key).
 */
import { blake3 } from '../crypto/index.ts'

/** Buckets of the tree (fixed: part of the root's definition). */
export const BUCKETS = 65_536
/** Buckets under one mid hash, and mid hashes under the root. */
export const FANOUT = 256
/** Bytes of every hash. */
export const HASH_BYTES = 32

const ZERO = new Uint8Array(HASH_BYTES)

/** The bucket (0 … 65,535) of a logical state key. */
export function bucketOf(key: Uint8Array): number {
  const h = blake3(key)
  return ((h[0] as number) << 8) | (h[1] as number)
}

/** The hash of a bucket holding `entries` (logical key, value) in key order; zeros when empty. */
export function hashBucket(entries: Iterable<readonly [Uint8Array, Uint8Array]>): Uint8Array {
  const parts: Uint8Array[] = []
  let size = 1
  for (const [k, v] of entries) {
    parts.push(k, v)
    size += 4 + k.byteLength + v.byteLength
  }
  if (parts.length === 0) return ZERO
  const buf = new Uint8Array(size)
  const dv = new DataView(buf.buffer)
  buf[0] = 0x00
  let at = 1
  for (const p of parts) {
    dv.setUint16(at, p.byteLength)
    buf.set(p, at + 2)
    at += 2 + p.byteLength
  }
  return blake3(buf)
}

function hashLevel(tag: number, children: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1 + children.byteLength)
  buf[0] = tag
  buf.set(children, 1)
  return blake3(buf)
}

/** A tree's new bucket and mid hashes, computed but not yet adopted ({@link BucketTree.adopt}). */
export interface TreeUpdate {
  root: Uint8Array
  buckets: Map<number, Uint8Array>
  mids: Uint8Array
}

/**
 * The bucket hashes (2 MiB) and mid hashes (8 KiB) in memory. {@link BucketTree.stage} computes a new
 * root from changed buckets without changing the tree; {@link BucketTree.adopt} takes it once the
 * batch is durably written.
 */
export class BucketTree {
  readonly #buckets = new Uint8Array(BUCKETS * HASH_BYTES)
  #mids: Uint8Array
  #root: Uint8Array

  /** @param buckets - the non-empty buckets' hashes (the rest are empty) */
  constructor(buckets: Iterable<readonly [number, Uint8Array]> = []) {
    for (const [b, h] of buckets) this.#buckets.set(h, b * HASH_BYTES)
    this.#mids = new Uint8Array(FANOUT * HASH_BYTES)
    for (let m = 0; m < FANOUT; m++) this.#mids.set(this.#mid(m, this.#buckets), m * HASH_BYTES)
    this.#root = hashLevel(0x02, this.#mids)
  }

  /** The current root, 32 bytes. */
  get root(): Uint8Array {
    return this.#root
  }

  /** The hash of bucket `b`, 32 bytes (zeros when empty). */
  bucket(b: number): Uint8Array {
    return this.#buckets.subarray(b * HASH_BYTES, (b + 1) * HASH_BYTES)
  }

  #mid(m: number, buckets: Uint8Array): Uint8Array {
    const span = FANOUT * HASH_BYTES
    return hashLevel(0x01, buckets.subarray(m * span, (m + 1) * span))
  }

  /** The root after buckets `changed` take their new hashes; the tree is unchanged. */
  stage(changed: Map<number, Uint8Array>): TreeUpdate {
    const mids = this.#mids.slice()
    if (changed.size === 0) return { root: this.#root, buckets: changed, mids }
    const byMid = new Map<number, [number, Uint8Array][]>()
    for (const [b, h] of changed) {
      const m = Math.floor(b / FANOUT)
      const list = byMid.get(m)
      if (list === undefined) byMid.set(m, [[b, h]])
      else list.push([b, h])
    }
    const span = FANOUT * HASH_BYTES
    for (const [m, list] of byMid) {
      const block = this.#buckets.slice(m * span, (m + 1) * span)
      for (const [b, h] of list) block.set(h, (b % FANOUT) * HASH_BYTES)
      mids.set(hashLevel(0x01, block), m * HASH_BYTES)
    }
    return { root: hashLevel(0x02, mids), buckets: changed, mids }
  }

  /** Take a staged update (after its batch is written). */
  adopt(update: TreeUpdate): void {
    for (const [b, h] of update.buckets) this.#buckets.set(h, b * HASH_BYTES)
    this.#mids = update.mids
    this.#root = update.root
  }
}
