/**
 * An ordered byte-key store: the one storage interface under the kv area's op log, typed state,
 * indexes and reconciliation fingerprints, so they all change in one atomic, durable write. Two
 * implementations: {@link MemoryOrderedStore} (tests, the simulator) and the LMDB one (lmdb-store.ts).
 *
 * Keys order bytewise (memcmp, shorter first on a common prefix). Tables share one store by a key
 * prefix of their own.
 */
import SortedBTree from 'sorted-btree'

// sorted-btree is CommonJS with `exports.default = BTree`: Node's ESM import yields module.exports,
// a bundler's interop the class itself.
const BTree: typeof SortedBTree.default =
  SortedBTree.default ?? (SortedBTree as unknown as typeof SortedBTree.default)
type BTree<K, V> = SortedBTree.default<K, V>

/** A key range: `start` inclusive, `end` exclusive; absent bounds are open. */
export interface RangeOptions {
  start?: Uint8Array
  end?: Uint8Array
  /** Iterate from the highest key in the range down. Default false. */
  reverse?: boolean
  /** At most this many entries. Default unbounded. */
  limit?: number
}

/** Reads. Iterators must be consumed before the next write (a write may invalidate them). */
export interface OrderedReader {
  get(key: Uint8Array): Uint8Array | undefined
  /** Entries of the range in key order (or reverse). */
  range(options?: RangeOptions): Iterable<[Uint8Array, Uint8Array]>
}

/** Reads that see the writes made so far in the same write, and writes. */
export interface OrderedWriter extends OrderedReader {
  put(key: Uint8Array, value: Uint8Array): void
  del(key: Uint8Array): void
}

export interface OrderedStore extends OrderedReader {
  /**
   * Run `fn` with a writer and commit everything it wrote as one atomic write, durable (on disk, for
   * a persistent store) when the promise resolves. When `fn` throws, nothing it wrote is kept and the
   * promise rejects with that error. `fn` must be synchronous. Concurrent writes may share one commit.
   */
  write<T>(fn: (w: OrderedWriter) => T): Promise<T>
  close(): Promise<void>
}

/** Bytewise comparison of keys (Buffer.compare semantics). */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b)
}

function* rangeOf(tree: BTree<Uint8Array, Uint8Array>, o: RangeOptions): Generator<[Uint8Array, Uint8Array]> {
  const limit = o.limit ?? Number.POSITIVE_INFINITY
  if (limit <= 0) return
  let n = 0
  if (o.reverse === true) {
    // entriesReversed(highest, _, skipHighest): start at `end` but skip it (end is exclusive).
    const it = o.end === undefined ? tree.entriesReversed() : tree.entriesReversed(o.end, undefined, true)
    for (const [k, v] of it) {
      if (o.start !== undefined && compareKeys(k, o.start) < 0) return
      yield [k, v]
      if (++n >= limit) return
    }
    return
  }
  for (const [k, v] of tree.entries(o.start)) {
    if (o.end !== undefined && compareKeys(k, o.end) >= 0) return
    yield [k, v]
    if (++n >= limit) return
  }
}

/**
 * An {@link OrderedStore} in memory: a B+ tree (sorted-btree). A write runs on a copy-on-write clone
 * that replaces the tree only when `fn` returns, so a throwing write leaves nothing behind.
 */
export class MemoryOrderedStore implements OrderedStore {
  #tree = new BTree<Uint8Array, Uint8Array>(undefined, compareKeys)

  get size(): number {
    return this.#tree.size
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.#tree.get(key)
  }

  range(options: RangeOptions = {}): Iterable<[Uint8Array, Uint8Array]> {
    return rangeOf(this.#tree, options)
  }

  async write<T>(fn: (w: OrderedWriter) => T): Promise<T> {
    const draft = this.#tree.clone()
    const w: OrderedWriter = {
      get: (k) => draft.get(k),
      range: (o = {}) => rangeOf(draft, o),
      // Copies: a caller may reuse its buffers after put returns, as it may with LMDB.
      put: (k, v) => {
        draft.set(Uint8Array.prototype.slice.call(k), Uint8Array.prototype.slice.call(v))
      },
      del: (k) => {
        draft.delete(k)
      },
    }
    const out = fn(w)
    this.#tree = draft
    return out
  }

  async close(): Promise<void> {}
}
