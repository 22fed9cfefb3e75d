/**
 * Content-addressed shard storage on local disk, indexed in LMDB. See src/storage/README.md
 * ("Shard store") for the on-disk layout, the crash-safety invariants and the recovery pass.
 * Index: shard-store-index.ts; files and recovery: shard-store-disk.ts; cache: shard-cache.ts.
 */

import { type FileHandle, mkdir, open as openFile, readFile, rm, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import { throwIfAborted } from '../common/abort.ts'
import { NodusError } from '../common/errors.ts'
import { allocAligned, DIRECT_READ_FLAGS, probeDirectIo } from './direct-io.ts'
import { ShardCache, type ShardCacheMetrics } from './shard-cache.ts'
import {
  clearTmp,
  fsyncDir,
  isErrnoCode,
  missing,
  noSpaceAsStoreFull,
  READ_CHUNK_BYTES,
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
  type WriteTarget,
  writeShardFile,
} from './shard-store-write.ts'

export { type ExpiryCleanupOptions, startExpiryCleanup } from './shard-store-cleanup.ts'
export type { ShardStoreRecovery } from './shard-store-disk.ts'

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
   */
  minFreeDiskBytes?: number
}

export interface ShardStoreDeps {
  logger?: { debug(obj: object, msg?: string): void; warn(obj: object, msg?: string): void }
  /** Source of `storedAt` timestamps and of the clean-shutdown marker's time; defaults to `Date`. */
  clock?: { now(): number }
  /**
   * Cache hit/miss counter (`nodus_storage_cache_requests_total`): one count per get() or whole-shard read()
   * of a shard the cache would hold (none while the cache is disabled).
   */
  metrics?: ShardCacheMetrics
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
  /** `capacityBytes - bytes - bytes reserved by in-flight puts`, never below 0. */
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
  readonly #metrics: ShardCacheMetrics | undefined
  readonly #cache: ShardCache
  #state: State = 'idle'
  #index: ShardIndex | undefined
  #opening: Promise<void> | undefined
  #closing: Promise<void> | undefined
  #lastRecovery: ShardStoreRecovery | undefined
  /** Per-CID mutual exclusion for put/delete/expiry removal; the promise resolves when the holder finishes. */
  readonly #locks = new Map<string, Promise<void>>()
  /** Puts, deletes and expiry changes in flight; close() waits for them. */
  readonly #inflight = new Set<Promise<unknown>>()
  /** CIDs a whole-shard read() is loading into the cache (at most one buffer per CID). */
  readonly #filling = new Set<string>()

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
    this.#capacity = new CapacityGuard({
      dir: options.dir,
      capacityBytes: options.capacityBytes,
      minFreeDiskBytes,
    })
    this.#log = deps.logger ?? noopLogger
    this.#target = {
      dir: this.#dir,
      tmpDir: this.#tmpDir,
      maxShardBytes: this.#maxShardBytes,
      log: this.#log,
      fanouts: new Map(),
    }
    this.#clock = deps.clock ?? Date
    this.#metrics = deps.metrics
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
   * anything else, so a crash from then on leads to a full pass. Idempotent; may be called after close().
   * Throws CONFIG_INVALID when the index has an unknown format version; file-system errors pass through.
   */
  async open(): Promise<void> {
    if (this.#state === 'open') return
    if (this.#state === 'opening' && this.#opening !== undefined) return this.#opening
    if (this.#state === 'closing' && this.#closing !== undefined) await this.#closing
    this.#state = 'opening'
    this.#opening = this.#doOpen()
    try {
      await this.#opening
      this.#state = 'open'
    } catch (err) {
      this.#state = 'closed'
      throw err
    } finally {
      this.#opening = undefined
    }
  }

  async #doOpen(): Promise<void> {
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
    try {
      this.#lastRecovery = await recoverOnOpen(this.#dir, index, { clean, tempFilesRemoved }, this.#log)
    } catch (err) {
      await index.close()
      throw err
    }
    this.#index = index
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
   *   before anything is read, and the stream must yield exactly this many bytes. Without it (and with a
   *   stream) space is reserved chunk by chunk as bytes arrive.
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
        const reservation = this.#capacity.reserve(key, declared ?? 0, () => index.usage().bytes)
        try {
          await this.#capacity.checkDiskReserve(key)
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
   * when there; otherwise read from disk (with direct I/O when the store uses it) and cached. The digest is
   * not re-checked; audits do that.
   * Throws SHARD_MISSING (absent, or its file lost or truncated), CID_INVALID, ABORTED/TIMEOUT,
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
    const path = this.#shardPath(key)
    let bytes: Uint8Array
    try {
      bytes = this.#target.direct === true ? await this.#readWholeDirect(key, signal) : await readWhole()
    } catch (err) {
      throwIfAborted(signal)
      if (isErrnoCode(err, 'ENOENT')) throw this.#fileMissing(index, key)
      throw err
    }
    if (bytes.byteLength !== record.size) {
      this.#log.warn(
        { cid: key, size: bytes.byteLength, indexed: record.size },
        'shard file size differs from index',
      )
      throw missing(key, 'file size differs from index')
    }
    if (this.#cache.admitOnMiss(key, bytes.byteLength)) this.#cacheStore(key, new Uint8Array(bytes))
    return bytes

    function readWhole(): Promise<Buffer> {
      return signal === undefined ? readFile(path) : readFile(path, { signal })
    }
  }

  /**
   * The whole file of shard `key` read with direct I/O into a 4 KiB-aligned buffer of the file's size (which
   * the caller compares with the index). Throws ENOENT as the file system does, ABORTED/TIMEOUT.
   */
  async #readWholeDirect(key: string, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const { fh, direct } = await this.#openForRead(key)
    try {
      const { size } = await fh.stat()
      const into = direct ? allocAligned(size) : new Uint8Array(size)
      const range = { cid: key, start: 0, end: size, indexedSize: size, into }
      for await (const _ of readRange(fh, range, signal, this.#log, direct)) {
        // readRange fills `into` in place; the chunks are views of it.
      }
      return into
    } finally {
      await fh.close()
    }
  }

  /**
   * Stream bytes `[offset, offset + length)` of the shard in chunks of at most 64 KiB. `offset` defaults to 0;
   * `length` defaults to the rest of the shard and is clamped to it. Chunks are read-only: they may be views
   * of the cached shard (zero copy), so a caller that wants to modify one copies it first.
   * A byte range (anything but the whole shard) streams from disk in blocks of 256 KiB at most, never
   * holding the whole shard. A whole-shard read is served from the cache when there; on a miss it streams
   * from disk while filling the cache (one shard-sized buffer per CID at a time; other concurrent misses of
   * that CID just stream). Errors are thrown from iteration: SHARD_MISSING, CID_INVALID, INVALID_ARGUMENT
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
    let fh: Awaited<ReturnType<typeof openFile>>
    let direct = false
    try {
      ;({ fh, direct } = await this.#openForRead(key))
    } catch (err) {
      if (isErrnoCode(err, 'ENOENT')) throw this.#fileMissing(index, key)
      throw err
    }
    let fill: Uint8Array | undefined
    if (fillCache && !this.#filling.has(key)) {
      fill = direct ? allocAligned(record.size) : new Uint8Array(record.size)
      this.#filling.add(key)
    }
    try {
      const range = { cid: key, start: offset, end, indexedSize: record.size, into: fill }
      yield* readRange(fh, range, signal, this.#log, direct)
      if (fill !== undefined) this.#cacheStore(key, fill)
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
        return true
      }),
    )
  }

  /** Usage from the index counters (O(1)); see {@link ShardStoreUsage}. Throws NOT_STARTED / STORE_CLOSED. */
  usage(): ShardStoreUsage {
    const { bytes, shards } = this.#openIndex().usage()
    const freeBytes = Math.max(0, this.#capacityBytes - bytes - this.#capacity.reservedBytes)
    return { bytes, shards, capacityBytes: this.#capacityBytes, freeBytes }
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

  /** SHARD_MISSING for a file not found; logged when the record is still indexed (not a race with delete). */
  #fileMissing(index: ShardIndex, key: string): NodusError {
    if (this.#state !== 'open' || index.get(key) === undefined) return missing(key)
    this.#log.warn({ cid: key }, 'indexed shard has no file')
    return missing(key, 'file missing')
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
