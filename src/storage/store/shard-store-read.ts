/**
 * The shard store's read path: whole shards (`get`, `readForAudit`) and byte ranges (`read`) from their
 * files, with direct I/O where the store uses it, through the shard cache (only verified bytes enter it).
 * A copy found missing, of the wrong size or corrupt is dropped (shard-store-remove.ts) and the read
 * throws SHARD_MISSING. See src/storage/README.md ("Reads and the cache").
 */
import { type FileHandle, open as openFile } from 'node:fs/promises'
import type { CID } from 'multiformats/cid'
import { throwIfAborted } from '../../common/abort.ts'
import { bytesEqual } from '../../common/bytes.ts'
import { allocAligned, DIRECT_READ_FLAGS } from '../../common/direct-io.ts'
import { isNodusError, NodusError } from '../../common/errors.ts'
import { blake3 } from '../../crypto/index.ts'
import type { ShardCache, ShardCacheMetrics } from './shard-cache.ts'
import {
  type DiskLogger,
  fileIdOf,
  isErrnoCode,
  missing,
  READ_CHUNK_BYTES,
  readRange,
  shardPath,
} from './shard-store-disk.ts'
import { cidKey, type ShardIndex, type ShardIndexRecord } from './shard-store-index.ts'
import type { WriteTarget } from './shard-store-write.ts'

/** What the read path needs from its store. */
export interface ShardReaderDeps {
  /** The open index; throws NOT_STARTED / STORE_CLOSED. */
  index(): ShardIndex
  /** Whether the open store indexes `key` now (a shard deleted meanwhile is never cached). */
  indexed(key: string): boolean
  /** Drop the copy of `key` found bad (`ShardRemovals.dropped`); resolves to the SHARD_MISSING to throw. */
  dropped(key: string, reason: 'lost' | 'corrupt', seen: string | undefined, why: string): Promise<NodusError>
  cache: ShardCache
  /** Where the shard files are, and whether to read them with direct I/O (turned off here on EINVAL). */
  target: WriteTarget
  log: DiskLogger
  /** Cache hits and misses (`nodus_storage_cache_requests_total`). */
  metrics: ShardCacheMetrics | undefined
}

/** Reads shards (`ShardStore.get`, `ShardStore.readForAudit`, `ShardStore.read`). */
export class ShardReader {
  readonly #deps: ShardReaderDeps
  readonly #cache: ShardCache
  readonly #target: WriteTarget
  readonly #log: DiskLogger
  readonly #metrics: ShardCacheMetrics | undefined
  /** CIDs a whole-shard read() is loading into the cache (at most one buffer per CID). */
  readonly #filling = new Set<string>()

  constructor(deps: ShardReaderDeps) {
    this.#deps = deps
    this.#cache = deps.cache
    this.#target = deps.target
    this.#log = deps.log
    this.#metrics = deps.metrics
  }

  /**
   * The key and index record of `cid`. Throws CID_INVALID, NOT_STARTED / STORE_CLOSED, ABORTED/TIMEOUT
   * (signal), SHARD_MISSING (not stored).
   */
  #record(cid: CID, signal: AbortSignal | undefined): { key: string; record: ShardIndexRecord } {
    const key = cidKey(cid)
    const index = this.#deps.index()
    throwIfAborted(signal)
    const record = index.get(key)
    if (record === undefined) throw missing(key)
    return { key, record }
  }

  /** `ShardStore.get`. */
  async get(cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const { signal } = options
    const { key, record } = this.#record(cid, signal)
    const hit = this.#cache.admits(record.size) ? this.#cacheLookup(key) : undefined
    if (hit !== undefined) return Buffer.from(hit)
    // Only verified bytes enter the cache: a shard to be admitted is checked against its CID.
    const admit = this.#cache.admitOnMiss(key, record.size)
    const bytes = await this.#readWhole(key, record.size, signal, admit ? cid.multihash.digest : undefined)
    if (admit) this.#cacheStore(key, new Uint8Array(bytes))
    return bytes
  }

  /** `ShardStore.readForAudit`. */
  async readForAudit(cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const { signal } = options
    const { key, record } = this.#record(cid, signal)
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
        throw await this.#deps.dropped(
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
      if (isErrnoCode(err, 'ENOENT')) throw await this.#deps.dropped(key, 'lost', undefined, 'file missing')
      throw err
    }
  }

  /** The open file of `key` does not hash to its CID: drop that file's copy; the SHARD_MISSING to throw. */
  async #corrupt(key: string, fh: FileHandle): Promise<NodusError> {
    const id = await fh.stat().then(fileIdOf, () => undefined)
    const why = 'bytes do not hash to the CID'
    return id === undefined ? missing(key, why) : this.#deps.dropped(key, 'corrupt', id, why)
  }

  /**
   * `err` from reading an open shard file: when readRange found the file shorter than the index (SHARD_MISSING)
   * the copy is dropped as corrupt (the file identity taken from `fh`); anything else is returned as it is.
   */
  async #shortened(key: string, fh: FileHandle, err: unknown): Promise<unknown> {
    if (!isNodusError(err, 'SHARD_MISSING')) return err
    const id = await fh.stat().then(fileIdOf, () => undefined)
    if (id === undefined) return err
    return this.#deps.dropped(key, 'corrupt', id, 'file shorter than index')
  }

  /** `ShardStore.read`. */
  async *read(
    cid: CID,
    options: { offset?: number; length?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<Uint8Array, void, undefined> {
    const { signal } = options
    const { key, record } = this.#record(cid, signal)
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
        throw await this.#deps.dropped(key, 'corrupt', fileIdOf(st), why)
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
   * Open a shard file for reading: with O_DIRECT when the store uses direct I/O, else buffered; EINVAL from
   * O_DIRECT turns direct I/O off for the store.
   */
  async #openForRead(key: string): Promise<{ fh: FileHandle; direct: boolean }> {
    const path = shardPath(this.#target.dir, key)
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

  /** The cached bytes of `key` (do not modify them), counting a hit or miss in the metrics. */
  #cacheLookup(key: string): Uint8Array | undefined {
    const hit = this.#cache.get(key)
    this.#metrics?.cacheRequests.inc({ result: hit === undefined ? 'miss' : 'hit' })
    return hit
  }

  /** Cache `bytes` (which the cache then owns) if the shard is still indexed: a deleted shard is never cached. */
  #cacheStore(key: string, bytes: Uint8Array): void {
    if (this.#deps.indexed(key)) this.#cache.set(key, bytes)
  }
}
