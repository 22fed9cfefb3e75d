/**
 * Content-addressed shard storage on local disk, indexed in LMDB. See src/storage/README.md
 * ("Shard store") for the on-disk layout, the crash-safety invariants and the recovery pass.
 * Index: shard-store-index.ts; files and recovery: shard-store-disk.ts; cache: shard-cache.ts.
 */

import { type FileHandle, mkdir, open as openFile, rm, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { throwIfAborted } from '../../common/abort.ts'
import { bytesEqual } from '../../common/bytes.ts'
import { isNodusError, NodusError } from '../../common/errors.ts'
import { blake3 } from '../../crypto/index.ts'
import { allocAligned, DIRECT_READ_FLAGS, probeDirectIo } from './direct-io.ts'
import { ShardCache, type ShardCacheMetrics } from './shard-cache.ts'
import {
  checkFileSizes,
  clearTmp,
  fileIdOf,
  fileState,
  fsyncDir,
  isErrnoCode,
  missing,
  noSpaceAsStoreFull,
  READ_CHUNK_BYTES,
  type RemovalReason,
  readRange,
  recoverOnOpen,
  type ShardStoreRecovery,
  shardPath,
  takeCleanMarker,
  writeCleanMarker,
} from './shard-store-disk.ts'
import { laterExpiry, ShardIndex } from './shard-store-index.ts'
import {
  CapacityGuard,
  declaredSize,
  raceAbort,
  type StatfsResult,
  type WriteTarget,
  writeShardFile,
} from './shard-store-write.ts'

export {
  type ExpiryCleanupOptions,
  type ExpiryCleanupStore,
  startExpiryCleanup,
} from './shard-store-cleanup.ts'
export type { RemovalReason, ShardStoreRecovery } from './shard-store-disk.ts'
export type { StatfsResult } from './shard-store-write.ts'

/** Multihash code of BLAKE3-256 (multicodec table: `blake3`, 0x1e). */
const BLAKE3_CODE = 0x1e
/** Length of a BLAKE3-256 digest in bytes. */
const DIGEST_BYTES = 32
/** list() page size when none is given, and its upper bound. */
const DEFAULT_LIST_LIMIT = 1000
const MAX_LIST_LIMIT = 10_000
/** Defaults of {@link ShardStoreOptions}. */
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
export const DEFAULT_MIN_FREE_DISK_BYTES = 256 * 1024 * 1024
/** cleanupExpired(): shards deleted per call when no limit is given, and per index batch. */
export const DEFAULT_CLEANUP_LIMIT = 10_000
const CLEANUP_BATCH = 256

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
export interface ShardStoreMetrics extends ShardCacheMetrics {
  /** `nodus_storage_shards_removed_total{reason}`: one count per record that left the index. */
  shardsRemoved?: { inc(labels: { reason: RemovalReason }): void }
}

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

/** Throws INVALID_ARGUMENT unless `v` is undefined or a non-negative safe integer. */
function checkTime(name: string, v: number | undefined, details: Record<string, unknown>): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) {
    throw new NodusError('INVALID_ARGUMENT', `${name} must be a non-negative integer (ms since the epoch)`, {
      details: { ...details, [name]: v },
    })
  }
}

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
  readonly #maxShardBytes: number
  readonly #capacity: CapacityGuard
  readonly #target: WriteTarget
  readonly #log: NonNullable<ShardStoreDeps['logger']>
  readonly #clock: { now(): number }
  readonly #metrics: ShardStoreMetrics | undefined
  readonly #onRemoved: ShardStoreDeps['onRemoved']
  readonly #cache: ShardCache
  #state: State = 'idle'
  #index: ShardIndex | undefined
  #opening: Promise<unknown> | undefined
  #closing: Promise<void> | undefined
  #lastRecovery: ShardStoreRecovery | undefined
  /** Per-CID mutual exclusion for put/delete/expiry removal; the promise resolves when the holder finishes. */
  readonly #locks = new Map<string, Promise<void>>()
  /** Puts, deletes and expiry changes in flight; close() waits for them. */
  readonly #inflight = new Set<Promise<unknown>>()
  /** CIDs a whole-shard read() is loading into the cache (at most one buffer per CID). */
  readonly #filling = new Set<string>()
  /** The size check a clean open() runs in the background (see {@link startupCheck}), and its stopper. */
  #startupCheck: Promise<{ checked: number; dropped: number }> | undefined
  #startupCheckStop: AbortController | undefined

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
    this.#maxShardBytes = options.maxShardBytes
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
      maxShardBytes: this.#maxShardBytes,
      log: this.#log,
      fanouts: new Map(),
    }
    this.#clock = deps.clock ?? Date
    this.#metrics = deps.metrics
    this.#onRemoved = deps.onRemoved
    this.#cache = new ShardCache({
      maxBytes: cacheBytes,
      maxEntryBytes: Math.min(options.maxShardBytes, Math.floor(cacheBytes / 4)),
      admitAfterMisses: options.cacheAdmitAfterMisses ?? 2,
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
      for (const r of removed) this.#removed(r.cid, r.size, r.reason)
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
        if (await this.#dropCopy(cid, reason, seen, why)) dropped++
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
      while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight])
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
  async put(
    cid: CID,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    options: { signal?: AbortSignal; expectedSize?: number; expiresAt?: number } = {},
  ): Promise<{ size: number; created: boolean }> {
    const key = cidKey(cid)
    const index = this.#openIndex()
    const { signal, expiresAt } = options
    throwIfAborted(signal)
    checkTime('expiresAt', expiresAt, { cid: key })
    const existing = index.get(key)
    if (existing !== undefined) {
      const kept = { size: existing.size, created: false }
      if (laterExpiry(existing.expiresAt, expiresAt) === existing.expiresAt) return kept
      // Not under the CID lock: the index transaction re-reads the record, and if an expiry cleanup removed
      // it meanwhile we store the shard again below.
      if ((await this.#track(index.extendExpiry(key, expiresAt))) !== 'absent') return kept
    }
    const declared = declaredSize(key, data, options.expectedSize, this.#maxShardBytes)
    return this.#track(
      this.#withCidLock(key, signal, async () => {
        const current = index.get(key)
        if (current !== undefined) {
          await index.extendExpiry(key, expiresAt)
          return { size: current.size, created: false }
        }
        // A whole buffer has arrived: reserve it. A stream reserves chunk by chunk as bytes arrive
        // (writeShardFile), so a stalled put holds only what it sent; a declared size that does not fit
        // now is refused at once, but reserves nothing.
        const usedBytes = (): number => index.usage().bytes
        const whole = data instanceof Uint8Array
        if (!whole && declared !== undefined) this.#capacity.check(key, declared, usedBytes())
        const reservation = this.#capacity.reserve(key, whole ? data.byteLength : 0, usedBytes)
        try {
          await this.#capacity.checkDiskReserve(key, whole ? 0 : (declared ?? 0))
          const digest = cid.multihash.digest
          const file = await writeShardFile(this.#target, key, digest, data, declared, reservation, signal)
          return await this.#commit(index, key, file.path, file.size, expiresAt)
        } finally {
          reservation.release()
        }
      }),
    )
  }

  /**
   * Set the shard's expiry to the later of its current one and `expiresAt` (ms since the Unix epoch;
   * `undefined` = never, which is later than any time), durably (flushed) before resolving. An expiry is
   * never shortened. Resolves false when the shard is not stored.
   * Throws CID_INVALID, INVALID_ARGUMENT (expiresAt not a non-negative integer), NOT_STARTED / STORE_CLOSED.
   */
  async extendExpiry(cid: CID, expiresAt: number | undefined): Promise<boolean> {
    const key = cidKey(cid)
    const index = this.#openIndex()
    checkTime('expiresAt', expiresAt, { cid: key })
    return (await this.#track(index.extendExpiry(key, expiresAt))) !== 'absent'
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
  async cleanupExpired(
    now: number,
    options: { limit?: number; signal?: AbortSignal } = {},
  ): Promise<{ deleted: number; bytes: number }> {
    const limit = options.limit ?? DEFAULT_CLEANUP_LIMIT
    checkTime('now', now, {})
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new NodusError('INVALID_ARGUMENT', 'limit must be a non-negative integer', { details: { limit } })
    }
    const { signal } = options
    let deleted = 0
    let bytes = 0
    let after: Uint8Array | undefined
    while (deleted < limit) {
      const index = this.#openIndex()
      throwIfAborted(signal)
      const batch = index.expired(now, Math.min(CLEANUP_BATCH, limit - deleted), after)
      if (batch.length === 0) break
      after = batch.at(-1)?.key
      const sizes = await Promise.allSettled(
        batch.map(({ cid }) =>
          this.#track(
            this.#withCidLock(cid, signal, async () => {
              const removed = await index.removeIfExpired(cid, now)
              if (removed === undefined) return undefined
              this.#cache.delete(cid)
              await this.#unlinkRemoved(cid)
              this.#removed(cid, removed.size, 'expired')
              return removed.size
            }),
          ),
        ),
      )
      for (const r of sizes) {
        if (r.status === 'fulfilled' && r.value !== undefined) {
          deleted++
          bytes += r.value
        }
      }
      const failed = sizes.find((r) => r.status === 'rejected')
      if (failed !== undefined) throw failed.reason
    }
    if (deleted > 0) this.#log.debug({ deleted, bytes, now }, 'expired shards deleted')
    return { deleted, bytes }
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
  async get(cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const key = cidKey(cid)
    const index = this.#openIndex()
    const { signal } = options
    throwIfAborted(signal)
    const record = index.get(key)
    if (record === undefined) throw missing(key)
    const hit = this.#cache.admits(record.size) ? this.#cacheLookup(key) : undefined
    if (hit !== undefined) return Buffer.from(hit)
    // Only verified bytes enter the cache: a shard to be admitted is checked against its CID.
    const admit = this.#cache.admitOnMiss(key, record.size)
    const bytes = await this.#readWhole(key, record.size, signal, admit ? cid.multihash.digest : undefined)
    if (admit) this.#cacheStore(key, new Uint8Array(bytes))
    return bytes
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
  async readForAudit(cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const key = cidKey(cid)
    const index = this.#openIndex()
    const { signal } = options
    throwIfAborted(signal)
    const record = index.get(key)
    if (record === undefined) throw missing(key)
    return this.#readWhole(key, record.size, signal, cid.multihash.digest)
  }

  /**
   * The whole file of shard `key` (indexed `size` bytes) from disk, with direct I/O into a 4 KiB-aligned
   * buffer when the store uses it; with `digest`, checked against that BLAKE3 digest. A copy whose file is
   * missing, not of `size` bytes or (with `digest`) does not hash to it is dropped and thrown as
   * SHARD_MISSING; ABORTED/TIMEOUT.
   */
  async #readWhole(
    key: string,
    size: number,
    signal: AbortSignal | undefined,
    digest: Uint8Array | undefined,
  ): Promise<Uint8Array> {
    const { fh, direct } = await this.#openOrDrop(key, signal)
    try {
      const st = await fh.stat()
      if (st.size !== size) {
        throw await this.#dropped(
          key,
          'corrupt',
          fileIdOf(st),
          `file of ${st.size} bytes, index says ${size}`,
        )
      }
      const into = direct ? allocAligned(size) : Buffer.allocUnsafe(size)
      const range = { cid: key, start: 0, end: size, indexedSize: size, into }
      try {
        for await (const _ of readRange(fh, range, signal, this.#log, direct)) {
          // readRange fills `into` in place; the chunks are views of it.
        }
      } catch (err) {
        throw await this.#shortened(key, fh, err)
      }
      if (digest !== undefined && !bytesEqual(blake3(into), digest)) throw await this.#corrupt(key, fh)
      return into
    } finally {
      await fh.close()
    }
  }

  /**
   * Open shard `key`'s file for reading (see {@link #openForRead}); a missing file is dropped (`lost`) and
   * thrown as SHARD_MISSING.
   */
  async #openOrDrop(
    key: string,
    signal: AbortSignal | undefined,
  ): Promise<{ fh: FileHandle; direct: boolean }> {
    try {
      return await this.#openForRead(key)
    } catch (err) {
      throwIfAborted(signal)
      if (isErrnoCode(err, 'ENOENT')) throw await this.#dropped(key, 'lost', undefined, 'file missing')
      throw err
    }
  }

  /** The open file of `key` does not hash to its CID: drop that file's copy; the SHARD_MISSING to throw. */
  async #corrupt(key: string, fh: FileHandle): Promise<NodusError> {
    const id = await fh.stat().then(fileIdOf, () => undefined)
    const why = 'bytes do not hash to the CID'
    return id === undefined ? missing(key, why) : this.#dropped(key, 'corrupt', id, why)
  }

  /**
   * `err` from reading an open shard file: when readRange found the file shorter than the index (SHARD_MISSING)
   * the copy is dropped as corrupt (the file identity taken from `fh`); anything else is returned as it is.
   */
  async #shortened(key: string, fh: FileHandle, err: unknown): Promise<unknown> {
    if (!isNodusError(err, 'SHARD_MISSING')) return err
    const id = await fh.stat().then(fileIdOf, () => undefined)
    if (id === undefined) return err
    return this.#dropped(key, 'corrupt', id, 'file shorter than index')
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
  async *read(
    cid: CID,
    options: { offset?: number; length?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<Uint8Array, void, undefined> {
    const key = cidKey(cid)
    const index = this.#openIndex()
    const { signal } = options
    throwIfAborted(signal)
    const record = index.get(key)
    if (record === undefined) throw missing(key)
    const offset = options.offset ?? 0
    const length = options.length ?? record.size - offset
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > record.size) {
      throw new NodusError('INVALID_ARGUMENT', `offset ${offset} is outside shard of ${record.size} bytes`, {
        details: { cid: key, offset, size: record.size },
      })
    }
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new NodusError('INVALID_ARGUMENT', `length ${length} is not a non-negative integer`, {
        details: { cid: key, length },
      })
    }
    const end = Math.min(record.size, offset + length)
    let fillCache = false
    if (offset === 0 && end === record.size && record.size > 0 && this.#cache.admits(record.size)) {
      const hit = this.#cacheLookup(key)
      if (hit !== undefined) {
        for (let at = 0; at < hit.byteLength; at += READ_CHUNK_BYTES) {
          throwIfAborted(signal)
          yield hit.subarray(at, at + READ_CHUNK_BYTES)
        }
        return
      }
      fillCache = !this.#filling.has(key) && this.#cache.admitOnMiss(key, record.size)
    }
    const { fh, direct } = await this.#openOrDrop(key, signal)
    let fill: Uint8Array | undefined
    try {
      // One fstat: a file not of the indexed size (truncated, extended) is dropped before any byte goes out.
      const st = await fh.stat()
      if (st.size !== record.size) {
        const why = `file of ${st.size} bytes, index says ${record.size}`
        throw await this.#dropped(key, 'corrupt', fileIdOf(st), why)
      }
      if (fillCache && !this.#filling.has(key)) {
        fill = direct ? allocAligned(record.size) : new Uint8Array(record.size)
        this.#filling.add(key)
      }
      const range = { cid: key, start: offset, end, indexedSize: record.size, into: fill }
      try {
        yield* readRange(fh, range, signal, this.#log, direct)
      } catch (err) {
        throw await this.#shortened(key, fh, err)
      }
      // Only verified bytes enter the cache: a copy that does not hash to its CID is dropped instead (the
      // bytes already streamed; the reader checks them against the CID too).
      if (fill !== undefined) {
        if (!bytesEqual(blake3(fill), cid.multihash.digest)) throw await this.#corrupt(key, fh)
        this.#cacheStore(key, fill)
      }
    } finally {
      if (fill !== undefined) this.#filling.delete(key)
      await fh.close()
    }
  }

  /**
   * Whether shard files are written and read with direct I/O (O_DIRECT, see direct-io.ts): found by a probe
   * at open(); false before it, without the native addon, with `NODUS_DIRECT_IO=0`, or on a file system
   * that refuses it.
   */
  get directIo(): boolean {
    return this.#target.direct === true
  }

  /**
   * Open a shard file for reading: with O_DIRECT when the store uses direct I/O, else buffered; EINVAL from
   * O_DIRECT turns direct I/O off for the store.
   */
  async #openForRead(key: string): Promise<{ fh: FileHandle; direct: boolean }> {
    const path = this.#shardPath(key)
    if (this.#target.direct === true) {
      try {
        return { fh: await openFile(path, DIRECT_READ_FLAGS), direct: true }
      } catch (err) {
        if (!isErrnoCode(err, 'EINVAL')) throw err
        this.#log.warn(
          { dir: this.#target.dir },
          'file system refuses O_DIRECT: shard files are read buffered',
        )
        this.#target.direct = false
      }
    }
    return { fh: await openFile(path, 'r'), direct: false }
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
  async delete(cid: CID, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const key = cidKey(cid)
    const index = this.#openIndex()
    const { signal } = options
    throwIfAborted(signal)
    return this.#track(
      this.#withCidLock(key, signal, async () => {
        throwIfAborted(signal)
        const removed = await index.remove(key)
        if (removed === undefined) return false
        this.#cache.delete(key)
        await this.#unlinkRemoved(key)
        this.#log.debug({ cid: key, size: removed.size }, 'shard deleted')
        this.#removed(key, removed.size, 'deleted')
        return true
      }),
    )
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

  #shardPath(key: string): string {
    return shardPath(this.#dir, key)
  }

  /** The cached bytes of `key` (do not modify them), counting a hit or miss in the metrics. */
  #cacheLookup(key: string): Uint8Array | undefined {
    const hit = this.#cache.get(key)
    this.#metrics?.cacheRequests.inc({ result: hit === undefined ? 'miss' : 'hit' })
    return hit
  }

  /** Cache `bytes` (which the cache then owns) if the shard is still indexed: a deleted shard is never cached. */
  #cacheStore(key: string, bytes: Uint8Array): void {
    if (this.#state === 'open' && this.#index?.get(key) !== undefined) this.#cache.set(key, bytes)
  }

  /** Unlink a shard whose record was just removed; a failure leaves an orphan for the recovery pass. */
  async #unlinkRemoved(key: string): Promise<void> {
    try {
      await unlink(this.#shardPath(key))
    } catch (err) {
      if (!isErrnoCode(err, 'ENOENT')) {
        this.#log.warn({ cid: key, err }, 'could not unlink deleted shard; left as orphan')
      }
    }
  }

  /** Drop the copy of `key` (see {@link #dropCopy}), then return the SHARD_MISSING to throw. */
  async #dropped(
    key: string,
    reason: 'lost' | 'corrupt',
    seen: string | undefined,
    why: string,
  ): Promise<NodusError> {
    await this.#dropCopy(key, reason, seen, why)
    return missing(key, why)
  }

  /**
   * Drop a copy found bad: under the CID lock, if the file is still the one found bad (`seen`: its identity,
   * {@link fileIdOf}; undefined = it was missing and still is), remove the record (index, expiry entry,
   * usage; flushed), the cached copy and the file, log at warn, count and report it (`onRemoved`). A file
   * replaced meanwhile (a delete and a new put) is left alone. Resolves true when this call removed it.
   */
  async #dropCopy(
    key: string,
    reason: 'lost' | 'corrupt',
    seen: string | undefined,
    why: string,
  ): Promise<boolean> {
    const index = this.#index
    if (this.#state !== 'open' || index === undefined) return false
    return this.#track(
      this.#withCidLock(key, undefined, async () => {
        if (this.#state !== 'open' || this.#index !== index) return false
        const now = await fileState(this.#shardPath(key))
        if (now?.id !== seen) return false
        const removed = await index.remove(key)
        this.#cache.delete(key)
        if (removed === undefined) return false
        if (now !== undefined) await this.#unlinkRemoved(key)
        this.#log.warn({ cid: key, size: removed.size, reason, why }, 'shard copy dropped')
        this.#removed(key, removed.size, reason)
        return true
      }),
    )
  }

  /** A record left the index: count it and tell `onRemoved` (exactly once per record). */
  #removed(key: string, size: number, reason: RemovalReason): void {
    this.#metrics?.shardsRemoved?.inc({ reason })
    try {
      this.#onRemoved?.(key, size, reason)
    } catch (err) {
      this.#log.warn({ err, cid: key, reason }, 'onRemoved callback threw')
    }
  }

  /**
   * Make a written shard file visible: the index record, its expiry entry and the usage counters in one
   * transaction, resolved once flushed (the commit and flush are shared with concurrent puts). If that fails
   * the file is removed, unless the record did land (a failed flush after a commit).
   */
  async #commit(
    index: ShardIndex,
    key: string,
    path: string,
    size: number,
    expiresAt: number | undefined,
  ): Promise<{ size: number; created: boolean }> {
    const storedAt = Math.max(0, Math.floor(this.#clock.now()))
    try {
      const created = await index.add(
        key,
        expiresAt === undefined ? { size, storedAt } : { size, storedAt, expiresAt },
      )
      this.#log.debug({ cid: key, size, created, expiresAt }, 'shard stored')
      return { size, created }
    } catch (err) {
      if (this.#index === index && index.get(key) === undefined)
        await rm(path, { force: true }).catch(() => {})
      throw noSpaceAsStoreFull(err, key)
    }
  }

  /** Run `fn` holding the lock for `key`; waiting for the lock honours `signal`. */
  async #withCidLock<T>(key: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    for (let held = this.#locks.get(key); held !== undefined; held = this.#locks.get(key)) {
      await raceAbort(held, signal)
    }
    const { promise, resolve } = Promise.withResolvers<void>()
    this.#locks.set(key, promise)
    try {
      return await fn()
    } finally {
      this.#locks.delete(key)
      resolve()
    }
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p)
    const forget = (): void => {
      this.#inflight.delete(p)
    }
    p.then(forget, forget)
    return p
  }
}

/** The store's key for `cid` (its base32 string); throws CID_INVALID unless CIDv1 with a BLAKE3-256 multihash. */
function cidKey(cid: CID): string {
  if (
    cid.version !== 1 ||
    cid.multihash.code !== BLAKE3_CODE ||
    cid.multihash.digest.byteLength !== DIGEST_BYTES
  ) {
    throw new NodusError('CID_INVALID', 'shard CID must be CIDv1 with a BLAKE3-256 (0x1e) multihash', {
      details: { cid: cid.toString(), version: cid.version, multihashCode: cid.multihash.code },
    })
  }
  return cid.toString()
}
