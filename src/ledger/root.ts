/**
 * The state root: a BLAKE3 bucket tree over the sorted state, updated incrementally.
 *
 * Follows the bucket tree of Hyperledger Fabric v0.6 (`core/ledger/statemgmt/buckettree`: keys hashed
 * into a fixed number of buckets, a bucket's hash over its sorted key-values, a fixed-fan-out tree of
 * bucket hashes above; hyperchain kept it), with fixed parameters, since they define the root:
 * - a logical key's bucket is two bytes of it, or of its BLAKE3-256 ({@link bucketOf}): {@link BUCKETS}
 *   = 65,536 buckets;
 * - a bucket's hash is BLAKE3-256(`00` ‖ for each entry in key order: u16 len ‖ key ‖ u16 len ‖
 *   value), or 32 zero bytes when the bucket is empty (length-prefixed, so the encoding is injective);
 * - four levels of inner nodes with 16 children each (4,096, 256, 16, then the root): a node of
 *   level l (1 … 4) is BLAKE3-256(byte l ‖ its 16 children's hashes).
 * Collision resistance is BLAKE3's (every level hashes fixed-length children or an injective encoding,
 * each level with its own prefix). Cost per batch: each changed bucket is read and rehashed (its entries
 * only: the state size ÷ 65,536 on average), then at most 4 inner nodes per changed bucket (513 bytes
 * each, fewer as changes share parents); nothing
 * proportional to the state's size as long as buckets stay small (under a million entries, a bucket
 * holds about 16). A sparse Merkle tree (Diem's Jellyfish) would make that O(log n) at any size and
 * give inclusion proofs; this tree gives neither per-key proofs nor bounds against keys ground into one
 * bucket (which costs the grinder a funded account or balance per key).
 */
import { blake3 } from '../crypto/index.ts'

/** Buckets of the tree (fixed: part of the root's definition). */
export const BUCKETS = 65_536
/** Children of every inner node: 16, so 4 levels of inner nodes above the buckets (16^4 = 65,536). */
export const FANOUT = 16
/** Inner levels, the root's included. */
const LEVELS = 4
/** Bytes of every hash. */
export const HASH_BYTES = 32

const ZERO = new Uint8Array(HASH_BYTES)
const NODE_INPUT = 1 + FANOUT * HASH_BYTES

/**
 * The bucket (0 … 65,535) of a logical state key: its bytes 1–2 for an account or token key (an
 * Ed25519 key or a BLAKE3 output already), bytes 1–2 XOR 33–34 for a token balance, the first two
 * bytes of BLAKE3-256(key) otherwise. Hashing keys that are hashes again would add nothing: a key
 * ground into one bucket costs 65,536 tries either way.
 */
export function bucketOf(key: Uint8Array): number {
  if (key.byteLength === 33) return ((key[1] as number) << 8) | (key[2] as number)
  if (key.byteLength === 65)
    return (((key[1] as number) ^ (key[33] as number)) << 8) | ((key[2] as number) ^ (key[34] as number))
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
  buf[0] = 0x00
  let at = 1
  for (const p of parts) {
    buf[at] = p.byteLength >> 8
    buf[at + 1] = p.byteLength & 0xff
    buf.set(p, at + 2)
    at += 2 + p.byteLength
  }
  return blake3(buf)
}

/** A tree's new node hashes, computed but not yet adopted ({@link BucketTree.adopt}). */
export interface TreeUpdate {
  root: Uint8Array
  /** The changed buckets' new hashes. */
  buckets: Map<number, Uint8Array>
  /** Per inner level (1 … 4), the changed nodes' new hashes. */
  levels: Map<number, Uint8Array>[]
}

/**
 * Every node hash in memory: the buckets (2 MiB) and the inner levels (4,096 + 256 + 16 nodes, and
 * the root). {@link BucketTree.stage} computes a new root from changed buckets without changing the
 * tree; {@link BucketTree.adopt} takes it once the batch is durably written.
 */
export class BucketTree {
  /** levels[0]: the buckets; levels[l]: inner level l (level 4 is the root, one node). */
  readonly #levels: Uint8Array[]

  /** @param buckets - the non-empty buckets' hashes (the rest are empty) */
  constructor(buckets: Iterable<readonly [number, Uint8Array]> = []) {
    this.#levels = [new Uint8Array(BUCKETS * HASH_BYTES)]
    for (let l = 1, n = BUCKETS / FANOUT; l <= LEVELS; l++, n /= FANOUT)
      this.#levels.push(new Uint8Array(n * HASH_BYTES))
    const leaves = this.#levels[0] as Uint8Array
    for (const [b, h] of buckets) leaves.set(h, b * HASH_BYTES)
    const input = new Uint8Array(NODE_INPUT)
    for (let l = 1; l <= LEVELS; l++) {
      const below = this.#levels[l - 1] as Uint8Array
      const level = this.#levels[l] as Uint8Array
      input[0] = l
      for (let i = 0; i < level.byteLength / HASH_BYTES; i++) {
        input.set(below.subarray(i * FANOUT * HASH_BYTES, (i + 1) * FANOUT * HASH_BYTES), 1)
        level.set(blake3(input), i * HASH_BYTES)
      }
    }
  }

  /** The current root, 32 bytes. */
  get root(): Uint8Array {
    return (this.#levels[LEVELS] as Uint8Array).slice()
  }

  /** The hash of bucket `b`, 32 bytes (zeros when empty). */
  bucket(b: number): Uint8Array {
    return (this.#levels[0] as Uint8Array).subarray(b * HASH_BYTES, (b + 1) * HASH_BYTES)
  }

  /**
   * The root after buckets `changed` take their new hashes; the tree is unchanged. Cost: one 513-byte
   * hash per changed node on each level (each changed bucket changes at most 4 inner nodes).
   */
  stage(changed: Map<number, Uint8Array>): TreeUpdate {
    const levels: Map<number, Uint8Array>[] = []
    let below = changed
    const input = new Uint8Array(NODE_INPUT)
    for (let l = 1; l <= LEVELS; l++) {
      const stored = this.#levels[l - 1] as Uint8Array
      const parents = new Set<number>()
      for (const i of below.keys()) parents.add(Math.floor(i / FANOUT))
      const next = new Map<number, Uint8Array>()
      input[0] = l
      for (const p of parents) {
        input.set(stored.subarray(p * FANOUT * HASH_BYTES, (p + 1) * FANOUT * HASH_BYTES), 1)
        for (let c = 0; c < FANOUT; c++) {
          const h = below.get(p * FANOUT + c)
          if (h !== undefined) input.set(h, 1 + c * HASH_BYTES)
        }
        next.set(p, blake3(input))
      }
      levels.push(next)
      below = next
    }
    const root = below.get(0) ?? this.root
    return { root, buckets: changed, levels }
  }

  /**
   * Take a staged update (after its batch is written, or before, to stage the next batch of a group
   * on top of it: then keep the returned update and adopt it to go back if the write fails).
   * @returns the update that restores the nodes it changed
   */
  adopt(update: TreeUpdate): TreeUpdate {
    const undo: TreeUpdate = { root: this.root, buckets: new Map(), levels: [] }
    const leaves = this.#levels[0] as Uint8Array
    for (const [b, h] of update.buckets) {
      undo.buckets.set(b, leaves.slice(b * HASH_BYTES, (b + 1) * HASH_BYTES))
      leaves.set(h, b * HASH_BYTES)
    }
    for (const [l, nodes] of update.levels.entries()) {
      const level = this.#levels[l + 1] as Uint8Array
      const old = new Map<number, Uint8Array>()
      for (const [i, h] of nodes) {
        old.set(i, level.slice(i * HASH_BYTES, (i + 1) * HASH_BYTES))
        level.set(h, i * HASH_BYTES)
      }
      undo.levels.push(old)
    }
    return undo
  }
}
