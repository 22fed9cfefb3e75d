/**
 * A least-recently-used cache of whole shards, bounded by the sum of their sizes in bytes.
 *
 * Shards are content-addressed, so an entry can never be stale in content: the bytes for a CID never change.
 * The store still checks its index before serving from the cache (a deleted shard is never served) and
 * drops entries when it deletes a shard, to give the memory back.
 */

/** Optional hit/miss counter, e.g. prom-client's `nodus_storage_cache_requests_total`. */
export interface ShardCacheMetrics {
  cacheRequests: { inc(labels: { result: 'hit' | 'miss' }): void }
}

export interface ShardCacheOptions {
  /** Upper bound on the sum of cached shard sizes, in bytes. 0 disables the cache. */
  maxBytes: number
  /** Larger entries are not admitted, in bytes. Defaults to a quarter of `maxBytes`, so one entry cannot flush the cache. */
  maxEntryBytes?: number
}

/**
 * LRU by bytes. `Map` keeps insertion order, so the first key is the least recently used: a hit moves its
 * entry to the end (delete + set), and eviction removes from the front. Every operation is O(1) apart from
 * evictions, each of which is O(1) per entry evicted.
 */
export class ShardCache {
  readonly maxBytes: number
  readonly maxEntryBytes: number
  readonly #entries = new Map<string, Uint8Array>()
  #bytes = 0
  #hits = 0
  #misses = 0

  /** Throws RangeError when `maxBytes` or `maxEntryBytes` is not a non-negative safe integer. */
  constructor(options: ShardCacheOptions) {
    const maxEntryBytes = options.maxEntryBytes ?? Math.floor(options.maxBytes / 4)
    for (const [name, v] of [
      ['maxBytes', options.maxBytes],
      ['maxEntryBytes', maxEntryBytes],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer`)
    }
    this.maxBytes = options.maxBytes
    this.maxEntryBytes = Math.min(maxEntryBytes, options.maxBytes)
  }

  /** Bytes held now (sum of entry sizes), never above `maxBytes`. */
  get bytes(): number {
    return this.#bytes
  }

  /** Number of entries held now. */
  get size(): number {
    return this.#entries.size
  }

  /** Hits and misses counted by {@link get} since construction. */
  get stats(): { hits: number; misses: number } {
    return { hits: this.#hits, misses: this.#misses }
  }

  /** True when a shard of `size` bytes would be admitted by {@link set}. */
  admits(size: number): boolean {
    return this.maxBytes > 0 && size <= this.maxEntryBytes
  }

  /** The cached bytes for `key` (marking it most recently used), or undefined. Counts a hit or a miss. */
  get(key: string): Uint8Array | undefined {
    const bytes = this.#entries.get(key)
    if (bytes === undefined) {
      this.#misses++
      return undefined
    }
    this.#hits++
    this.#entries.delete(key)
    this.#entries.set(key, bytes)
    return bytes
  }

  /** True when `key` is cached; does not change recency or counts. */
  has(key: string): boolean {
    return this.#entries.has(key)
  }

  /**
   * Cache `bytes` under `key` as the most recently used entry, evicting least recently used entries until the
   * total fits `maxBytes`. The cache keeps the reference: the caller must not modify `bytes` afterwards.
   * Returns false (caching nothing) when the entry is larger than `maxEntryBytes`.
   */
  set(key: string, bytes: Uint8Array): boolean {
    if (!this.admits(bytes.byteLength)) return false
    this.delete(key)
    this.#entries.set(key, bytes)
    this.#bytes += bytes.byteLength
    for (const [oldest, old] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break
      this.#entries.delete(oldest)
      this.#bytes -= old.byteLength
    }
    return true
  }

  /** Drop `key`; true when it was cached. */
  delete(key: string): boolean {
    const bytes = this.#entries.get(key)
    if (bytes === undefined) return false
    this.#entries.delete(key)
    this.#bytes -= bytes.byteLength
    return true
  }

  /** Drop everything. */
  clear(): void {
    this.#entries.clear()
    this.#bytes = 0
  }
}
