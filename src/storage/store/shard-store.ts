/**
 * Content-addressed shard storage on local disk, indexed in LMDB. See src/storage/README.md
 * ("Shard store") for the on-disk layout, the crash-safety invariants and the recovery pass.
 * `ShardStore` holds the state and the lifecycle (open, recovery, close); its parts: reads and the cache
 * (shard-store-read.ts), puts (shard-store-write.ts), removals (shard-store-remove.ts), capacity
 * (shard-store-capacity.ts), the index (shard-store-index.ts), files and recovery (shard-store-disk.ts),
 * the cache itself (shard-cache.ts).
 */

import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { probeDirectIo } from '../../common/direct-io.ts'
import { isNodusError, NodusError } from '../../common/errors.ts'
import { ShardCache, type ShardCacheMetrics } from './shard-cache.ts'
import { CapacityGuard, type StatfsResult } from './shard-store-capacity.ts'
import {
  checkFileSizes,
  clearTmp,
  fsyncDir,
  type RemovalReason,
  recoverOnOpen,
  type ShardStoreRecovery,
  takeCleanMarker,
  writeCleanMarker,
} from './shard-store-disk.ts'
import { cidKey, ShardIndex } from './shard-store-index.ts'
import { ShardReader } from './shard-store-read.ts'
import { type ShardRemovalMetrics, ShardRemovals } from './shard-store-remove.ts'
import { CidLocks, ShardWriter, type WriteTarget } from './shard-store-write.ts'

export type { StatfsResult } from './shard-store-capacity.ts'
export {
  type ExpiryCleanupOptions,
  type ExpiryCleanupStore,
  startExpiryCleanup,
} from './shard-store-cleanup.ts'
export type { RemovalReason, ShardStoreRecovery } from './shard-store-disk.ts'
export { DEFAULT_CLEANUP_LIMIT } from './shard-store-remove.ts'

/** list() page size when none is given, and its upper bound. */
const DEFAULT_LIST_LIMIT = 1000
const MAX_LIST_LIMIT = 10_000
/** Defaults of {@link ShardStoreOptions}. */
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
export const DEFAULT_MIN_FREE_DISK_BYTES = 256 * 1024 * 1024

export interface ShardStoreOptions {
  /** Data directory for shards, e.g. `<data-dir>/shards`. Created by open(). One ShardStore per directory. */
  dir: string
  /** Refuse writes that would take stored plus in-flight bytes above this, in bytes. */
  capacityBytes: number
  /** Refuse shards longer than this with SHARD_TOO_LARGE, in bytes (callers default to 16 MiB). */
  maxShardBytes: number
  /**
   * Size of the LRU cache of whole shards, in bytes; default 64 MiB, 0 disables it. A shard is cached only
   * when it is at most a quarter of this (and at most maxShardBytes).
   */
  cacheBytes?: number
  /**
   * Whole-shard reads that miss before a shard is cached: 2 (default) caches shards read again, so a
   * file streamed once leaves the cache as it was; 1 caches every shard read (plain LRU).
   */
  cacheAdmitAfterMisses?: 1 | 2
  /**
   * Refuse new shards (STORE_FULL) when the file system holding `dir` would keep less than this free
   * (statfs `bavail`, less bytes reserved by puts in flight), in bytes; default 256 MiB. Guards the disk
   * when capacityBytes is set higher than the disk can hold. 0 leaves only ENOSPC (also STORE_FULL).
   * Reported free capacity ({@link ShardStoreUsage.freeBytes}) never counts these bytes either.
   */
  minFreeDiskBytes?: number
}

/** Metrics the store feeds (prom-client counters fit). */
export interface ShardStoreMetrics extends ShardCacheMetrics, ShardRemovalMetrics {}

export interface ShardStoreDeps {
  logger?: { debug(obj: object, msg?: string): void; warn(obj: object, msg?: string): void }
  /** Source of `storedAt` timestamps and of the clean-shutdown marker's time; defaults to `Date`. */
  clock?: { now(): number }
  /**
   * Cache hit/miss counter (`nodus_storage_cache_requests_total`): one count per get() or whole-shard read()
   * of a shard the cache would hold (none while the cache is disabled); and removals by reason.
   */
  metrics?: ShardStoreMetrics
  /**
   * Called once for every record that leaves the index, after it left (the index transaction is flushed):
   * `size` in bytes; `reason` `expired` (cleanupExpired), `deleted` (delete), `lost` (its file was missing)
   * or `corrupt` (its file was of the wrong size or did not hash to the CID), the last two found by a read,
   * an audit read, the recovery pass of an unclean start or the size check of a clean one. Exactly once per
   * removed record; a record dropped by open()'s recovery pass is reported when open() resolves. Must not
   * throw (an exception is logged and ignored).
   */
  onRemoved?(cid: string, size: number, reason: RemovalReason): void
  /** statfs of the store directory (free-space figures); defaults to node:fs/promises `statfs`. */
  statfs?(dir: string): Promise<StatfsResult>
}

/** What the store knows about one shard. */
export interface ShardRecord {
  /** CIDv1 string (base32). */
  cid: string
  /** Length in bytes. */
  size: number
  /** When the shard became visible, in ms since the Unix epoch. */
  storedAt: number
  /** When the shard may be deleted by cleanupExpired(), in ms since the Unix epoch; absent = never. */
  expiresAt?: number
}

/** Usage snapshot returned by {@link ShardStore.usage}. All values in bytes except `shards`. */
export interface ShardStoreUsage {
  /** Bytes of stored (indexed) shards. */
  bytes: number
  /** Number of stored shards. */
  shards: number
  capacityBytes: number
  /**
   * The smaller of `capacityBytes − bytes − reserved` and `file-system free − minFreeDiskBytes − reserved`
   * (statfs `bavail × bsize`, a cached reading refreshed in the background every few seconds), where
   * `reserved` is the bytes puts in flight have received; never below 0. What the node reports to peers.
   */
  freeBytes: number
}

type State = 'idle' | 'opening' | 'open' | 'closing' | 'closed'

const noopLogger = { debug(): void {}, warn(): void {} }

/**
 * Content-addressed storage of shards (CIDv1, multihash BLAKE3-256) as files under `dir`, indexed in LMDB.
 *
 * Invariant: every index record points to a complete, fsynced file whose BLAKE3 digest matches its CID.
 * A file may exist without a record only after a crash (an orphan, removed by the next open's recovery
 * pass; never counted in usage). Usage (bytes, shard count) is kept as counters in the index, updated in
 * the same transaction as each put/delete/expiry; nothing but the recovery pass scans to compute it.
 */
export class ShardStore {
  readonly #dir: string
  readonly #tmpDir: string
  readonly #indexDir: string
  readonly #capacityBytes: number
  readonly #capacity: CapacityGuard
  readonly #target: WriteTarget
  readonly #log: NonNullable<ShardStoreDeps['logger']>
  readonly #clock: { now(): number }
  readonly #cache: ShardCache
  #state: State = 'idle'
  #index: ShardIndex | undefined
  #opening: Promise<unknown> | undefined
  #closing: Promise<void> | undefined
  #lastRecovery: ShardStoreRecovery | undefined
  /** The size check a clean open() runs in the background (see {@link startupCheck}), and its stopper. */
  #startupCheck: Promise<{ checked: number; dropped: number }> | undefined
  #startupCheckStop: AbortController | undefined
  readonly #locks = new CidLocks()
  readonly #reader: ShardReader
  readonly #writer: ShardWriter
  readonly #removals: ShardRemovals

  /**
   * Throws INVALID_ARGUMENT when `capacityBytes`, `cacheBytes` or `minFreeDiskBytes` is not a non-negative
   * integer, or `maxShardBytes` not a positive one.
   */
  constructor(deps: ShardStoreDeps, options: ShardStoreOptions) {
    const cacheBytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES
    const minFreeDiskBytes = options.minFreeDiskBytes ?? DEFAULT_MIN_FREE_DISK_BYTES
    const sizes = { capacityBytes: options.capacityBytes, cacheBytes, minFreeDiskBytes }
    for (const [name, v] of Object.entries(sizes)) {
      if (!Number.isSafeInteger(v) || v < 0) {
        throw new NodusError('INVALID_ARGUMENT', `${name} must be a non-negative integer`, {
          details: { [name]: v },
        })
      }
    }
    if (!Number.isSafeInteger(options.maxShardBytes) || options.maxShardBytes < 1) {
      throw new NodusError('INVALID_ARGUMENT', 'maxShardBytes must be a positive integer', {
        details: { maxShardBytes: options.maxShardBytes },
      })
    }
    this.#dir = options.dir
    this.#tmpDir = join(options.dir, 'tmp')
    this.#indexDir = join(options.dir, 'index')
    this.#capacityBytes = options.capacityBytes
    this.#log = deps.logger ?? noopLogger
    this.#capacity = new CapacityGuard({
      dir: options.dir,
      capacityBytes: options.capacityBytes,
      minFreeDiskBytes,
      log: this.#log,
      ...(deps.statfs === undefined ? {} : { statfs: deps.statfs }),
    })
    this.#target = {
      dir: this.#dir,
      tmpDir: this.#tmpDir,
      maxShardBytes: options.maxShardBytes,
      log: this.#log,
      fanouts: new Map(),
    }
    this.#clock = deps.clock ?? Date
    this.#cache = new ShardCache({
      maxBytes: cacheBytes,
      maxEntryBytes: Math.min(options.maxShardBytes, Math.floor(cacheBytes / 4)),
      admitAfterMisses: options.cacheAdmitAfterMisses ?? 2,
    })
    const index = (): ShardIndex => this.#openIndex()
    const current = (): ShardIndex | undefined => (this.#state === 'open' ? this.#index : undefined)
    const log = this.#log
    const cache = this.#cache
    this.#removals = new ShardRemovals({
      dir: this.#dir,
      index,
      current,
      locks: this.#locks,
      cache,
      log,
      metrics: deps.metrics,
      onRemoved: deps.onRemoved,
    })
    const removals = this.#removals
    this.#reader = new ShardReader({
      index,
      indexed: (key) => current()?.get(key) !== undefined,
      dropped: (key, reason, seen, why) => removals.dropped(key, reason, seen, why),
      cache,
      target: this.#target,
      log,
      metrics: deps.metrics,
    })
    this.#writer = new ShardWriter({
      index,
      loaded: () => this.#index,
      locks: this.#locks,
      capacity: this.#capacity,
      target: this.#target,
      clock: this.#clock,
      log,
    })
  }

  /**
   * Create `dir`, `dir/tmp` and the LMDB index at `dir/index`; remove temp files left by a crash; and, unless
   * the last close() was clean (its marker `dir/clean-shutdown` is there), run the recovery pass that
   * reconciles the index with the files (see {@link lastRecovery}). The marker is removed (durably) before
   * anything else, so a crash from then on leads to a full pass. After a clean close, a size check of every
   * shard file runs in the background instead ({@link startupCheck}). Takes a first statfs reading for
   * {@link usage}. Idempotent; may be called after close().
   * Throws CONFIG_INVALID when the index has an unknown format version; file-system errors pass through.
   */
  async open(): Promise<void> {
    if (this.#state === 'open') return
    if (this.#state === 'opening' && this.#opening !== undefined) {
      await this.#opening
      return
    }
    if (this.#state === 'closing' && this.#closing !== undefined) await this.#closing
    this.#state = 'opening'
    const opening = this.#doOpen()
    this.#opening = opening
    try {
      const { removed, clean } = await opening
      this.#state = 'open'
      for (const r of removed) this.#removals.removed(r.cid, r.size, r.reason)
      if (clean) this.#startBackgroundCheck()
    } catch (err) {
      this.#state = 'closed'
      throw err
    } finally {
      this.#opening = undefined
    }
  }

  async #doOpen(): Promise<{
    removed: Array<{ cid: string; size: number; reason: RemovalReason }>
    clean: boolean
  }> {
    await mkdir(this.#tmpDir, { recursive: true })
    const clean = await takeCleanMarker(this.#dir)
    const tempFilesRemoved = await clearTmp(this.#tmpDir)
    // Fan-out directories left by an earlier run may not be durable yet (a process crash before their
    // parent's fsync): one fsync of `dir` makes every entry in it durable before new shards go in.
    await fsyncDir(this.#dir)
    this.#target.fanouts.clear()
    // A probe that fails for another reason (a full disk, say) must not stop the store opening for reads.
    this.#target.direct = await probeDirectIo(this.#tmpDir).catch((err: unknown) => {
      this.#log.warn({ err, dir: this.#tmpDir }, 'direct I/O probe failed: shard files are written buffered')
      return false
    })
    const index = await ShardIndex.open(this.#indexDir)
    this.#cache.clear()
    let removed: Array<{ cid: string; size: number; reason: RemovalReason }>
    try {
      const { removed: r, ...recovery } = await recoverOnOpen(
        this.#dir,
        index,
        { clean, tempFilesRemoved },
        this.#log,
      )
      this.#lastRecovery = recovery
      removed = r
    } catch (err) {
      await index.close()
      throw err
    }
    await this.#capacity.refresh().catch((err: unknown) => {
      this.#log.warn(
        { err, dir: this.#dir },
        'statfs failed: free space is reported from capacityBytes alone',
      )
    })
    this.#index = index
    return { removed, clean }
  }

  /**
   * After a clean open(): check in the background that every shard file is there and of its record's size
   * (one lstat each), dropping the copies that are not (reason `lost` or `corrupt`). close() stops it.
   */
  #startBackgroundCheck(): void {
    const stop = new AbortController()
    this.#startupCheckStop = stop
    const run = this.checkFiles({ signal: stop.signal }).catch((err: unknown) => {
      const quiet = isNodusError(err, 'ABORTED') || isNodusError(err, 'STORE_CLOSED')
      if (!quiet && !stop.signal.aborted) this.#log.warn({ err }, 'shard file size check failed')
      return { checked: 0, dropped: 0 }
    })
    this.#startupCheck = run
  }

  /**
   * The size check that the last clean open() started in the background: resolves (never rejects) to the
   * records checked and the copies dropped. Undefined when open() ran the full recovery pass instead.
   */
  get startupCheck(): Promise<{ checked: number; dropped: number }> | undefined {
    return this.#startupCheck
  }

  /**
   * Stat every indexed shard's file (one lstat each, 64 at a time) and drop the copies whose file is
   * missing (`lost`) or not of the record's size (`corrupt`): out of the index, usage and cache, reported
   * through `onRemoved`. Does not read file contents (audits and cache admissions check the bytes).
   * @returns records checked and copies dropped
   * @throws NodusError ABORTED/TIMEOUT (signal), NOT_STARTED / STORE_CLOSED
   */
  async checkFiles(options: { signal?: AbortSignal } = {}): Promise<{ checked: number; dropped: number }> {
    this.#openIndex()
    let dropped = 0
    const { checked } = await checkFileSizes(
      this.#dir,
      () => this.#openIndex(),
      async (cid, reason, seen, size) => {
        const why = reason === 'lost' ? 'file missing' : `file of ${size} bytes`
        if (await this.#removals.dropCopy(cid, reason, seen, why)) dropped++
      },
      options.signal,
    )
    return { checked, dropped }
  }

  /**
   * What the last open() found: whether the full recovery pass ran (no clean-shutdown marker), temp files
   * and orphan files removed, and the CIDs of shards lost (index records whose file was missing or of the
   * wrong size, now removed from the index and usage). Undefined before the first open().
   */
  get lastRecovery(): ShardStoreRecovery | undefined {
    return this.#lastRecovery
  }

  /**
   * Stop accepting operations (they throw STORE_CLOSED), wait for in-flight puts, deletes and expiry changes,
   * close (flush) the index, then write the clean-shutdown marker so that the next open() skips the full
   * recovery pass. Reads already streaming keep their open file handles. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#state === 'opening' && this.#opening !== undefined) await this.#opening.catch(() => {})
    if (this.#state === 'closing' && this.#closing !== undefined) return this.#closing
    if (this.#state !== 'open') {
      this.#state = 'closed'
      return
    }
    this.#state = 'closing'
    this.#closing = (async () => {
      this.#startupCheckStop?.abort()
      await this.#startupCheck
      await this.#locks.drain()
      await this.#index?.close()
      this.#index = undefined
      this.#cache.clear()
      await writeCleanMarker(this.#dir, this.#tmpDir, Math.max(0, Math.floor(this.#clock.now()))).catch(
        (err: unknown) => this.#log.warn({ err }, 'could not write the clean-shutdown marker'),
      )
      this.#state = 'closed'
    })()
    try {
      await this.#closing
    } finally {
      this.#closing = undefined
    }
  }

  /**
   * Store `data` under `cid`, streaming it to a temp file while hashing it (BLAKE3), then fsync, rename into
   * place, fsync the directory, and commit the index record and usage counters in one flushed transaction
   * (shared with concurrent puts: group commit). Nothing becomes visible before the digest is checked.
   * Idempotent: a shard already stored resolves `{ size, created: false }` without reading `data`, after
   * extending its expiry if `expiresAt` is later; concurrent puts of one CID write it once.
   *
   * @param data the shard bytes, whole or as chunks of any size
   * @param options.expectedSize the declared length in bytes: checked against maxShardBytes and free space
   *   before anything is read (STORE_FULL at once when it does not fit), and the stream must yield exactly
   *   this many bytes. A stream's space is reserved chunk by chunk as bytes arrive, declared or not; a
   *   buffer's length is reserved at once.
   * @param options.expiresAt ms since the Unix epoch after which cleanupExpired() may delete the shard;
   *   undefined (the default) = never. A shard's expiry is the latest of every put and extendExpiry() that
   *   named it, where "never" is later than any time: a later put never shortens it.
   * @param options.signal aborts the write (temp file removed) until the rename; after that the put completes
   * @returns `size` in bytes and whether this call stored the shard
   * @throws NodusError CID_INVALID (not a CIDv1 with a 32-byte BLAKE3 multihash), CID_MISMATCH (digest
   *   differs), SHARD_TOO_LARGE (over maxShardBytes), STORE_FULL (over capacityBytes counting in-flight puts,
   *   under minFreeDiskBytes free on the file system, or ENOSPC/EDQUOT while writing: nothing is left behind),
   *   INVALID_ARGUMENT (bad expectedSize or expiresAt, or the stream length differs from expectedSize),
   *   ABORTED/TIMEOUT (signal), NOT_STARTED / STORE_CLOSED (before open / after close)
   */
  put(
    cid: CID,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    options: { signal?: AbortSignal; expectedSize?: number; expiresAt?: number } = {},
  ): Promise<{ size: number; created: boolean }> {
    return this.#writer.put(cid, data, options)
  }

  /**
   * Set the shard's expiry to the later of its current one and `expiresAt` (ms since the Unix epoch;
   * `undefined` = never, which is later than any time), durably (flushed) before resolving. An expiry is
   * never shortened. Resolves false when the shard is not stored.
   * Throws CID_INVALID, INVALID_ARGUMENT (expiresAt not a non-negative integer), NOT_STARTED / STORE_CLOSED.
   */
  extendExpiry(cid: CID, expiresAt: number | undefined): Promise<boolean> {
    return this.#writer.extendExpiry(cid, expiresAt)
  }

  /**
   * Delete shards whose expiry is at or before `now` (ms since the Unix epoch), oldest expiry first, up to
   * `options.limit` (default 10,000) per call. Walks the expiry index in order, so the cost is O(log n) per
   * batch plus O(1) index work per deleted shard: each removal deletes the record and its expiry entry and
   * updates the usage counters in one transaction (concurrent removals share a commit and a flush), then
   * unlinks the file and drops the shard from the cache. A shard extended meanwhile is kept.
   * @returns shards deleted and their bytes; `deleted === limit` means more may be due
   * @throws NodusError INVALID_ARGUMENT (bad now or limit), ABORTED/TIMEOUT (signal; removals already made
   *   stay made), NOT_STARTED / STORE_CLOSED
   */
  cleanupExpired(
    now: number,
    options: { limit?: number; signal?: AbortSignal } = {},
  ): Promise<{ deleted: number; bytes: number }> {
    return this.#removals.cleanupExpired(now, options)
  }

  /**
   * The whole shard, as a buffer the caller owns (shards are at most maxShardBytes). Served from the cache
   * when there; otherwise read from disk (with direct I/O when the store uses it), its size checked against
   * the index, and cached when admitted (second miss) after its BLAKE3 digest was checked against the CID.
   * A copy found missing, of the wrong size or (on admission) corrupt is dropped (index, usage, cache;
   * `onRemoved`) before SHARD_MISSING is thrown.
   * Throws SHARD_MISSING (absent, or its file lost, truncated or corrupt), CID_INVALID, ABORTED/TIMEOUT,
   * NOT_STARTED / STORE_CLOSED.
   */
  get(cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    return this.#reader.get(cid, options)
  }

  /**
   * The whole shard read from its file on disk, never from the cache (with direct I/O where the store uses
   * it, so from the device rather than the page cache), and checked against the CID's BLAKE3 digest: what
   * an audit proof is computed from. Neither reads nor fills the cache. A copy whose file is missing, of the
   * wrong size or corrupt is dropped (index, usage, cache; `onRemoved`) before SHARD_MISSING is thrown.
   * @returns the shard, a buffer of its size the caller owns
   * @throws NodusError SHARD_MISSING (absent, lost or corrupt), CID_INVALID, ABORTED/TIMEOUT, NOT_STARTED /
   *   STORE_CLOSED
   */
  readForAudit(cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    return this.#reader.readForAudit(cid, options)
  }

  /**
   * Stream bytes `[offset, offset + length)` of the shard in chunks of at most 64 KiB. `offset` defaults to 0;
   * `length` defaults to the rest of the shard and is clamped to it. Chunks are read-only: they may be views
   * of the cached shard (zero copy), so a caller that wants to modify one copies it first.
   * A byte range (anything but the whole shard) streams from disk in blocks of 256 KiB at most, never
   * holding the whole shard. A whole-shard read is served from the cache when there; on a miss it streams
   * from disk while filling the cache (one shard-sized buffer per CID at a time; other concurrent misses of
   * that CID just stream), and the filled shard is cached only once its BLAKE3 digest matches the CID.
   * Every disk read checks the file's size against the index (one fstat). A copy found missing, of the wrong
   * size or (when filling the cache) corrupt is dropped (index, usage, cache; `onRemoved`) and the read
   * throws SHARD_MISSING. Errors are thrown from iteration: SHARD_MISSING, CID_INVALID, INVALID_ARGUMENT
   * (offset beyond the shard, or a negative / non-integer offset or length), ABORTED/TIMEOUT,
   * NOT_STARTED / STORE_CLOSED (when iteration starts).
   */
  read(
    cid: CID,
    options: { offset?: number; length?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<Uint8Array, void, undefined> {
    return this.#reader.read(cid, options)
  }

  /**
   * Whether shard files are written and read with direct I/O (O_DIRECT, see direct-io.ts): found by a probe
   * at open(); false before it, without the native addon, with `NODUS_DIRECT_IO=0`, or on a file system
   * that refuses it.
   */
  get directIo(): boolean {
    return this.#target.direct === true
  }
  /** True when `cid` is stored. Throws CID_INVALID, NOT_STARTED / STORE_CLOSED. */
  has(cid: CID): boolean {
    const key = cidKey(cid)
    return this.#openIndex().get(key) !== undefined
  }

  /**
   * The shard's record (`expiresAt` absent when it never expires), or undefined when absent.
   * Throws CID_INVALID, NOT_STARTED / STORE_CLOSED.
   */
  stat(cid: CID): ShardRecord | undefined {
    const key = cidKey(cid)
    const record = this.#openIndex().get(key)
    return record === undefined ? undefined : { cid: key, ...record }
  }

  /**
   * Remove the shard: first the index record, its expiry entry and the counters (one flushed transaction),
   * then the file and the cached copy. In that order a crash can leave only an orphan file, never a record
   * without its file. Resolves true when the shard was stored. The signal is honoured until the index
   * transaction starts. Throws CID_INVALID, ABORTED/TIMEOUT, NOT_STARTED / STORE_CLOSED.
   */
  delete(cid: CID, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    return this.#removals.delete(cid, options)
  }

  /**
   * Usage from the index counters and the last statfs reading (O(1), never waits: a stale reading is
   * refreshed in the background); see {@link ShardStoreUsage}. Throws NOT_STARTED / STORE_CLOSED.
   */
  usage(): ShardStoreUsage {
    const { bytes, shards } = this.#openIndex().usage()
    return { bytes, shards, capacityBytes: this.#capacityBytes, freeBytes: this.#capacity.freeBytes(bytes) }
  }

  /** Bytes reserved by puts in flight: what they have received so far (a whole buffer: its length). */
  get reservedBytes(): number {
    return this.#capacity.reservedBytes
  }

  /** Whether the shard's bytes are in the memory cache now. Throws CID_INVALID. */
  isCached(cid: CID): boolean {
    return this.#cache.has(cidKey(cid))
  }

  /** The shard cache's current size and counts: `bytes` held (≤ `maxBytes`), `entries`, `hits`, `misses`. */
  cacheStats(): { bytes: number; maxBytes: number; entries: number; hits: number; misses: number } {
    const { hits, misses } = this.#cache.stats
    return {
      bytes: this.#cache.bytes,
      maxBytes: this.#cache.maxBytes,
      entries: this.#cache.size,
      hits,
      misses,
    }
  }

  /**
   * One page of records ordered by CID string. `limit` defaults to 1000 and is capped at 10,000; pass the
   * last `cid` of a page as `after` to get the next one. Throws INVALID_ARGUMENT (bad limit),
   * NOT_STARTED / STORE_CLOSED.
   */
  list(options: { limit?: number; after?: string } = {}): ShardRecord[] {
    const index = this.#openIndex()
    const limit = options.limit ?? DEFAULT_LIST_LIMIT
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new NodusError('INVALID_ARGUMENT', 'limit must be a non-negative integer', { details: { limit } })
    }
    return index
      .list(Math.min(limit, MAX_LIST_LIMIT), options.after)
      .map(({ cid, record }) => ({ cid, ...record }))
  }

  // --- internals -------------------------------------------------------------------------------------

  #openIndex(): ShardIndex {
    if (this.#state === 'open' && this.#index !== undefined) return this.#index
    if (this.#state === 'idle' || this.#state === 'opening') {
      throw new NodusError('NOT_STARTED', 'shard store is not open')
    }
    throw new NodusError('STORE_CLOSED', 'shard store is closed')
  }
}
