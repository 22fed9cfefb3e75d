/**
 * The shard store's removals: deletes, expiry cleanup, and copies found lost or corrupt dropped. Each
 * removes the index record first (flushed), then the file and the cached copy, and is counted and
 * reported exactly once (`onRemoved`). See src/storage/README.md ("Removals", "Expiry").
 */
import { unlink } from 'node:fs/promises'
import type { CID } from 'multiformats/cid'
import { throwIfAborted } from '../../common/abort.ts'
import { NodusError } from '../../common/errors.ts'
import type { ShardCache } from './shard-cache.ts'
import { fileState, isErrnoCode, missing, type RemovalReason, shardPath } from './shard-store-disk.ts'
import { cidKey, type ShardIndex } from './shard-store-index.ts'
import { type CidLocks, checkTime } from './shard-store-write.ts'

/** cleanupExpired(): shards deleted per call when no limit is given, and per index batch. */
export const DEFAULT_CLEANUP_LIMIT = 10_000
const CLEANUP_BATCH = 256

/** Metrics of removals (prom-client counters fit). */
export interface ShardRemovalMetrics {
  /** `nodus_storage_shards_removed_total{reason}`: one count per record that left the index. */
  shardsRemoved?: { inc(labels: { reason: RemovalReason }): void }
}

/** What removals need from their store. */
export interface ShardRemovalsDeps {
  /** The store directory. */
  dir: string
  /** The open index; throws NOT_STARTED / STORE_CLOSED. */
  index(): ShardIndex
  /** The index while the store is open; undefined before open() and from close() on. */
  current(): ShardIndex | undefined
  locks: CidLocks
  cache: ShardCache
  log: { debug(obj: object, msg?: string): void; warn(obj: object, msg?: string): void }
  metrics: ShardRemovalMetrics | undefined
  /** `ShardStoreDeps.onRemoved`. */
  onRemoved: ((cid: string, size: number, reason: RemovalReason) => void) | undefined
}

/** Removes shards from the store (`ShardStore.delete`, `ShardStore.cleanupExpired`, copies found bad). */
export class ShardRemovals {
  readonly #deps: ShardRemovalsDeps
  readonly #dir: string
  readonly #locks: CidLocks
  readonly #cache: ShardCache
  readonly #log: ShardRemovalsDeps['log']
  readonly #metrics: ShardRemovalMetrics | undefined
  readonly #onRemoved: ShardRemovalsDeps['onRemoved']

  constructor(deps: ShardRemovalsDeps) {
    this.#deps = deps
    this.#dir = deps.dir
    this.#locks = deps.locks
    this.#cache = deps.cache
    this.#log = deps.log
    this.#metrics = deps.metrics
    this.#onRemoved = deps.onRemoved
  }

  /** `ShardStore.delete`. */
  async delete(cid: CID, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const key = cidKey(cid)
    const index = this.#deps.index()
    const { signal } = options
    throwIfAborted(signal)
    return this.#locks.track(
      this.#locks.withCidLock(key, signal, async () => {
        throwIfAborted(signal)
        const removed = await index.remove(key)
        if (removed === undefined) return false
        this.#cache.delete(key)
        await this.unlinkRemoved(key)
        this.#log.debug({ cid: key, size: removed.size }, 'shard deleted')
        this.removed(key, removed.size, 'deleted')
        return true
      }),
    )
  }

  /** `ShardStore.cleanupExpired`. */
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
      const index = this.#deps.index()
      throwIfAborted(signal)
      const batch = index.expired(now, Math.min(CLEANUP_BATCH, limit - deleted), after)
      if (batch.length === 0) break
      after = batch.at(-1)?.key
      const sizes = await Promise.allSettled(
        batch.map(({ cid }) =>
          this.#locks.track(
            this.#locks.withCidLock(cid, signal, async () => {
              const removed = await index.removeIfExpired(cid, now)
              if (removed === undefined) return undefined
              this.#cache.delete(cid)
              await this.unlinkRemoved(cid)
              this.removed(cid, removed.size, 'expired')
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

  /** Unlink a shard whose record was just removed; a failure leaves an orphan for the recovery pass. */
  async unlinkRemoved(key: string): Promise<void> {
    try {
      await unlink(shardPath(this.#dir, key))
    } catch (err) {
      if (!isErrnoCode(err, 'ENOENT')) {
        this.#log.warn({ cid: key, err }, 'could not unlink deleted shard; left as orphan')
      }
    }
  }

  /** Drop the copy of `key` (see {@link dropCopy}), then return the SHARD_MISSING to throw. */
  async dropped(
    key: string,
    reason: 'lost' | 'corrupt',
    seen: string | undefined,
    why: string,
  ): Promise<NodusError> {
    await this.dropCopy(key, reason, seen, why)
    return missing(key, why)
  }

  /**
   * Drop a copy found bad: under the CID lock, if the file is still the one found bad (`seen`: its identity,
   * {@link fileIdOf}; undefined = it was missing and still is), remove the record (index, expiry entry,
   * usage; flushed), the cached copy and the file, log at warn, count and report it (`onRemoved`). A file
   * replaced meanwhile (a delete and a new put) is left alone. Resolves true when this call removed it.
   */
  async dropCopy(
    key: string,
    reason: 'lost' | 'corrupt',
    seen: string | undefined,
    why: string,
  ): Promise<boolean> {
    const index = this.#deps.current()
    if (index === undefined) return false
    return this.#locks.track(
      this.#locks.withCidLock(key, undefined, async () => {
        if (this.#deps.current() !== index) return false
        const now = await fileState(shardPath(this.#dir, key))
        if (now?.id !== seen) return false
        const removed = await index.remove(key)
        this.#cache.delete(key)
        if (removed === undefined) return false
        if (now !== undefined) await this.unlinkRemoved(key)
        this.#log.warn({ cid: key, size: removed.size, reason, why }, 'shard copy dropped')
        this.removed(key, removed.size, reason)
        return true
      }),
    )
  }

  /** A record left the index: count it and tell `onRemoved` (exactly once per record). */
  removed(key: string, size: number, reason: RemovalReason): void {
    this.#metrics?.shardsRemoved?.inc({ reason })
    try {
      this.#onRemoved?.(key, size, reason)
    } catch (err) {
      this.#log.warn({ err, cid: key, reason }, 'onRemoved callback threw')
    }
  }
}
