/**
 * A least-recently-used cache of whole shards, bounded by the sum of their sizes in bytes, with
 * second-read admission: the store caches a shard on its second miss within the last
 * {@link SEEN_KEYS} distinct misses, not its first (the "doorkeeper" of TinyLFU: Einziger, Friedman and
 * Manes, "TinyLFU: A Highly Efficient Cache Admission Policy", ACM TOS 2017). A file streamed once, the
 * common case for large files, then neither flushes the hot shards nor fills memory: a node serving a
 * 1 GB get held its whole 64 MiB cache of shards it never read again.
 *
 * Shards are content-addressed, so an entry can never be stale in content: the bytes for a CID never change.
 * Only verified bytes enter: the store checks a shard's BLAKE3 digest against its CID before {@link
 * ShardCache.set} (once per admission, not per hit), and drops a copy that fails instead. The store checks
 * its index before serving from the cache (a removed shard is never served) and drops the entry whenever
 * a record leaves the index: delete, expiry, or a copy found lost or corrupt on disk (a read or audit that
 * finds its file missing). Audits never read the cache (ShardStore.readForAudit reads the disk).
 */

/** Optional hit/miss counter, e.g. prom-client's `nodus_storage_cache_requests_total`. */
export interface ShardCacheMetrics {
  cacheRequests: { inc(labels: { result: 'hit' | 'miss' }): void }
}

/** How many distinct missed keys the doorkeeper remembers (FIFO); about 100 bytes each. */
export const SEEN_KEYS = 4096

export interface ShardCacheOptions {
  /** Upper bound on the sum of cached shard sizes, in bytes. 0 disables the cache. */
  maxBytes: number
  /** Larger entries are not admitted, in bytes. Defaults to a quarter of `maxBytes`, so one entry cannot flush the cache. */
  maxEntryBytes?: number
  /** Misses before a shard is worth caching (see {@link ShardCache.admitOnMiss}): 1 or 2, default 2. */
  admitAfterMisses?: 1 | 2
}

/**
 * LRU by bytes. `Map` keeps insertion order, so the first key is the least recently used: a hit moves its
 * entry to the end (delete + set), and eviction removes from the front. Every operation is O(1) apart from
 * evictions, each of which is O(1) per entry evicted.
 */
export class ShardCache {
  readonly maxBytes: number
  readonly maxEntryBytes: number
  readonly admitAfterMisses: 1 | 2
  readonly #entries = new Map<string, Uint8Array>()
  /** Keys that missed once and were not admitted, oldest first. */
  readonly #seen = new Set<string>()
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
    this.admitAfterMisses = options.admitAfterMisses ?? 2
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

  /**
   * Called on a miss for a shard of `size` bytes: true when the caller should cache it now. With
   * second-read admission (the default) that is when `key` missed before, among the last
   * {@link SEEN_KEYS} distinct keys that missed; the first miss is only remembered. Always false when
   * {@link admits} is.
   */
  admitOnMiss(key: string, size: number): boolean {
    if (!this.admits(size)) return false
    if (this.admitAfterMisses === 1 || this.#seen.delete(key)) return true
    this.#seen.add(key)
    if (this.#seen.size > SEEN_KEYS) this.#seen.delete(this.#seen.values().next().value as string)
    return false
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
    this.#seen.clear()
    this.#bytes = 0
  }
}
