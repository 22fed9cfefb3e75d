/**
 * Content-addressed shard storage on local disk, indexed in LMDB. See src/storage/README.md
 * ("Shard store") for the on-disk layout and the crash-safety invariants.
 */

import { randomUUID } from 'node:crypto'
import { mkdir, open as openFile, readdir, readFile, rename, rm, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { Blake3Hasher } from '@napi-rs/blake-hash'
import type { CID } from 'multiformats/cid'
import { throwIfAborted } from '../common/abort.ts'
import { NodusError } from '../common/errors.ts'
import { ShardIndex } from './shard-store-index.ts'

/** Multihash code of BLAKE3-256 (multicodec table: `blake3`, 0x1e). */
const BLAKE3_CODE = 0x1e
/** Length of a BLAKE3-256 digest in bytes. */
const DIGEST_BYTES = 32
/** Size of the chunks read() yields, in bytes. */
const READ_CHUNK_BYTES = 64 * 1024
/** list() page size when none is given, and its upper bound. */
const DEFAULT_LIST_LIMIT = 1000
const MAX_LIST_LIMIT = 10_000

export interface ShardStoreOptions {
  /** Data directory for shards, e.g. `<data-dir>/shards`. Created by open(). One ShardStore per directory. */
  dir: string
  /** Refuse writes that would take stored plus in-flight bytes above this, in bytes. */
  capacityBytes: number
  /** Refuse shards longer than this with SHARD_TOO_LARGE, in bytes (callers default to 16 MiB). */
  maxShardBytes: number
}

export interface ShardStoreDeps {
  logger?: { debug(obj: object, msg?: string): void; warn(obj: object, msg?: string): void }
  /** Source of `storedAt` timestamps; defaults to `Date`. */
  clock?: { now(): number }
}

/** What the store knows about one shard. */
export interface ShardRecord {
  /** CIDv1 string (base32). */
  cid: string
  /** Length in bytes. */
  size: number
  /** When the shard became visible, in ms since the Unix epoch. */
  storedAt: number
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

function isErrnoCode(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/** Resolve or reject with `p`, or reject with the abort reason (ABORTED/TIMEOUT) as soon as `signal` aborts. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      try {
        throwIfAborted(signal)
      } catch (err) {
        reject(err)
      }
    }
    if (signal.aborted) {
      onAbort()
      return
    }
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

/** Iterate `source`, giving up (and telling the source to return) as soon as `signal` aborts. */
async function* abortable(
  source: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array, void, undefined> {
  const it = source[Symbol.asyncIterator]()
  let done = false
  try {
    for (;;) {
      throwIfAborted(signal)
      const r = await raceAbort(it.next(), signal)
      if (r.done === true) {
        done = true
        return
      }
      yield r.value
    }
  } finally {
    // Not awaited: a source stuck in next() would make return() wait for it too.
    if (!done) it.return?.()?.catch(() => {})
  }
}

async function* once(data: Uint8Array): AsyncGenerator<Uint8Array, void, undefined> {
  yield data
}

async function fsyncDir(path: string): Promise<void> {
  const fh = await openFile(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/**
 * Content-addressed storage of shards (CIDv1, multihash BLAKE3-256) as files under `dir`, indexed in LMDB.
 *
 * Invariant: every index record points to a complete, fsynced file whose BLAKE3 digest matches its CID.
 * A file may exist without a record only after a crash (an orphan; harmless, never counted in usage).
 * Usage (bytes, shard count) is kept as counters in the index, updated in the same transaction as each
 * put/delete; nothing scans the disk or the index to compute it.
 */
export class ShardStore {
  readonly #dir: string
  readonly #tmpDir: string
  readonly #indexDir: string
  readonly #capacityBytes: number
  readonly #maxShardBytes: number
  readonly #log: NonNullable<ShardStoreDeps['logger']>
  readonly #clock: { now(): number }
  #state: State = 'idle'
  #index: ShardIndex | undefined
  #opening: Promise<void> | undefined
  #closing: Promise<void> | undefined
  /** Bytes reserved by puts in flight (not yet in the index counters). */
  #reservedBytes = 0
  /** Per-CID mutual exclusion for put/delete; the promise resolves when the holder finishes. */
  readonly #locks = new Map<string, Promise<void>>()
  /** Puts and deletes in flight; close() waits for them. */
  readonly #inflight = new Set<Promise<unknown>>()

  /** Throws INVALID_ARGUMENT when `capacityBytes` or `maxShardBytes` is not a non-negative (resp. positive) integer. */
  constructor(deps: ShardStoreDeps, options: ShardStoreOptions) {
    if (!Number.isSafeInteger(options.capacityBytes) || options.capacityBytes < 0) {
      throw new NodusError('INVALID_ARGUMENT', 'capacityBytes must be a non-negative integer', {
        details: { capacityBytes: options.capacityBytes },
      })
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
    this.#clock = deps.clock ?? Date
  }

  /**
   * Create `dir`, `dir/tmp` and the LMDB index at `dir/index`, and remove temp files left by a crash.
   * Idempotent; may be called again after close() to reopen.
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
    for (const name of await readdir(this.#tmpDir)) {
      await rm(join(this.#tmpDir, name), { force: true, recursive: true })
    }
    this.#index = await ShardIndex.open(this.#indexDir)
  }

  /**
   * Stop accepting operations (they throw STORE_CLOSED), wait for in-flight puts and deletes to finish,
   * then close the index. Reads already streaming keep their open file handles. Idempotent.
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
   * place, fsync the directory, and commit the index record and usage counters in one flushed transaction.
   * Nothing becomes visible before the digest is checked. Idempotent: a shard already stored resolves
   * `{ size, created: false }` without reading `data`; concurrent puts of one CID write it once.
   *
   * @param data the shard bytes, whole or as chunks of any size
   * @param options.expectedSize the declared length in bytes: checked against maxShardBytes and free space
   *   before anything is read, and the stream must yield exactly this many bytes. Without it (and with a
   *   stream) space is reserved chunk by chunk as bytes arrive.
   * @param options.signal aborts the write (temp file removed) until the rename; after that the put completes
   * @returns `size` in bytes and whether this call stored the shard
   * @throws NodusError CID_INVALID (not a CIDv1 with a 32-byte BLAKE3 multihash), CID_MISMATCH (digest
   *   differs), SHARD_TOO_LARGE (over maxShardBytes), STORE_FULL (over capacityBytes, counting in-flight
   *   puts), INVALID_ARGUMENT (bad expectedSize, or the stream length differs from it), ABORTED/TIMEOUT
   *   (signal), NOT_STARTED / STORE_CLOSED (before open / after close)
   */
  async put(
    cid: CID,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    options: { signal?: AbortSignal; expectedSize?: number } = {},
  ): Promise<{ size: number; created: boolean }> {
    const key = cidKey(cid)
    const index = this.#openIndex()
    const { signal } = options
    throwIfAborted(signal)
    const existing = index.get(key)
    if (existing !== undefined) return { size: existing.size, created: false }
    const declared = this.#declaredSize(key, data, options.expectedSize)
    return this.#track(
      this.#withCidLock(key, signal, async () => {
        const current = index.get(key)
        if (current !== undefined) return { size: current.size, created: false }
        const reservation = this.#reserve(index, key, declared ?? 0)
        try {
          const source = data instanceof Uint8Array ? once(data) : data
          return await this.#write(index, cid, key, source, declared, reservation, signal)
        } finally {
          reservation.release()
        }
      }),
    )
  }

  /**
   * The whole shard, read into memory (shards are at most maxShardBytes). The digest is not re-checked;
   * audits do that. Throws SHARD_MISSING (absent, or its file lost or truncated), CID_INVALID,
   * ABORTED/TIMEOUT, NOT_STARTED / STORE_CLOSED.
   */
  async get(cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const key = cidKey(cid)
    const index = this.#openIndex()
    const { signal } = options
    throwIfAborted(signal)
    const record = index.get(key)
    if (record === undefined) throw missing(key)
    let bytes: Buffer
    try {
      bytes =
        signal === undefined
          ? await readFile(this.#shardPath(key))
          : await readFile(this.#shardPath(key), { signal })
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
    return bytes
  }

  /**
   * Stream bytes `[offset, offset + length)` of the shard from disk in chunks of at most 64 KiB, without
   * holding the shard in memory. `offset` defaults to 0; `length` defaults to the rest of the shard and is
   * clamped to it. Errors are thrown from iteration: SHARD_MISSING, CID_INVALID, INVALID_ARGUMENT (offset
   * beyond the shard, or a negative / non-integer offset or length), ABORTED/TIMEOUT, NOT_STARTED /
   * STORE_CLOSED (when iteration starts).
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
    let fh: Awaited<ReturnType<typeof openFile>>
    try {
      fh = await openFile(this.#shardPath(key), 'r')
    } catch (err) {
      if (isErrnoCode(err, 'ENOENT')) throw this.#fileMissing(index, key)
      throw err
    }
    try {
      let position = offset
      while (position < end) {
        throwIfAborted(signal)
        const want = Math.min(READ_CHUNK_BYTES, end - position)
        const chunk = new Uint8Array(want)
        let filled = 0
        while (filled < want) {
          const { bytesRead } = await fh.read(chunk, filled, want - filled, position + filled)
          if (bytesRead === 0) {
            this.#log.warn(
              { cid: key, at: position + filled, indexed: record.size },
              'shard file shorter than index',
            )
            throw missing(key, 'file shorter than index')
          }
          filled += bytesRead
        }
        position += want
        yield chunk
      }
    } finally {
      await fh.close()
    }
  }

  /** True when `cid` is stored. Throws CID_INVALID, NOT_STARTED / STORE_CLOSED. */
  has(cid: CID): boolean {
    const key = cidKey(cid)
    return this.#openIndex().get(key) !== undefined
  }

  /** The shard's record, or undefined when absent. Throws CID_INVALID, NOT_STARTED / STORE_CLOSED. */
  stat(cid: CID): ShardRecord | undefined {
    const key = cidKey(cid)
    const record = this.#openIndex().get(key)
    return record === undefined ? undefined : { cid: key, size: record.size, storedAt: record.storedAt }
  }

  /**
   * Remove the shard: first the index record and counters (one flushed transaction), then the file.
   * In that order a crash can leave only an orphan file, never a record without its file.
   * Resolves true when the shard was stored. The signal is honoured until the index transaction starts.
   * Throws CID_INVALID, ABORTED/TIMEOUT, NOT_STARTED / STORE_CLOSED.
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
        try {
          await unlink(this.#shardPath(key))
        } catch (err) {
          if (!isErrnoCode(err, 'ENOENT')) {
            this.#log.warn({ cid: key, err }, 'could not unlink deleted shard; left as orphan')
          }
        }
        this.#log.debug({ cid: key, size: removed.size }, 'shard deleted')
        return true
      }),
    )
  }

  /** Usage from the index counters (O(1)); see {@link ShardStoreUsage}. Throws NOT_STARTED / STORE_CLOSED. */
  usage(): ShardStoreUsage {
    const { bytes, shards } = this.#openIndex().usage()
    const freeBytes = Math.max(0, this.#capacityBytes - bytes - this.#reservedBytes)
    return { bytes, shards, capacityBytes: this.#capacityBytes, freeBytes }
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
      .map(({ cid, record }) => ({ cid, size: record.size, storedAt: record.storedAt }))
  }

  // --- internals -------------------------------------------------------------------------------------

  #openIndex(): ShardIndex {
    if (this.#state === 'open' && this.#index !== undefined) return this.#index
    if (this.#state === 'idle' || this.#state === 'opening') {
      throw new NodusError('NOT_STARTED', 'shard store is not open')
    }
    throw new NodusError('STORE_CLOSED', 'shard store is closed')
  }

  /**
   * Fan-out: `<dir>/<next-to-last two chars of the CID string>/<cid>`, as go-ipfs flatfs "next-to-last/2".
   * The last base32 char of a 36-byte CID carries only 3 bits, the two before it 10 bits of digest: 1024
   * evenly filled directories.
   */
  #shardPath(key: string): string {
    return join(this.#dir, key.slice(-3, -1), key)
  }

  /** SHARD_MISSING for a file not found; logged when the record is still indexed (not a race with delete). */
  #fileMissing(index: ShardIndex, key: string): NodusError {
    if (this.#state !== 'open' || index.get(key) === undefined) return missing(key)
    this.#log.warn({ cid: key }, 'indexed shard has no file')
    return missing(key, 'file missing')
  }

  #declaredSize(
    key: string,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    expectedSize?: number,
  ): number | undefined {
    if (expectedSize !== undefined && (!Number.isSafeInteger(expectedSize) || expectedSize < 0)) {
      throw new NodusError('INVALID_ARGUMENT', 'expectedSize must be a non-negative integer', {
        details: { cid: key, expectedSize },
      })
    }
    if (data instanceof Uint8Array && expectedSize !== undefined && expectedSize !== data.byteLength) {
      throw new NodusError(
        'INVALID_ARGUMENT',
        `expectedSize ${expectedSize} differs from ${data.byteLength} bytes given`,
        {
          details: { cid: key, expectedSize, size: data.byteLength },
        },
      )
    }
    const declared = data instanceof Uint8Array ? data.byteLength : expectedSize
    if (declared !== undefined && declared > this.#maxShardBytes) throw this.#tooLarge(key, declared)
    return declared
  }

  #tooLarge(key: string, size: number): NodusError {
    return new NodusError('SHARD_TOO_LARGE', `shard of ${size} bytes exceeds ${this.#maxShardBytes}`, {
      details: { cid: key, size, max: this.#maxShardBytes },
    })
  }

  /** Reserve `bytes` of capacity for an in-flight put; `grow` reserves more. Both throw STORE_FULL. */
  #reserve(index: ShardIndex, key: string, bytes: number): { grow(more: number): void; release(): void } {
    let held = 0
    const take = (more: number): void => {
      const used = index.usage().bytes
      if (used + this.#reservedBytes + more > this.#capacityBytes) {
        throw new NodusError('STORE_FULL', `store cannot take ${held + more} more bytes`, {
          details: {
            cid: key,
            requestedBytes: held + more,
            usedBytes: used,
            reservedBytes: this.#reservedBytes - held,
            capacityBytes: this.#capacityBytes,
          },
        })
      }
      held += more
      this.#reservedBytes += more
    }
    take(bytes)
    return {
      grow: take,
      release: () => {
        this.#reservedBytes -= held
        held = 0
      },
    }
  }

  async #write(
    index: ShardIndex,
    cid: CID,
    key: string,
    source: AsyncIterable<Uint8Array>,
    declared: number | undefined,
    reservation: { grow(more: number): void },
    signal: AbortSignal | undefined,
  ): Promise<{ size: number; created: boolean }> {
    const tmpPath = join(this.#tmpDir, randomUUID())
    const fh = await openFile(tmpPath, 'wx', 0o600)
    let fhOpen = true
    let renamed = false
    try {
      const hasher = new Blake3Hasher()
      let size = 0
      for await (const chunk of abortable(source, signal)) {
        size += chunk.byteLength
        if (size > this.#maxShardBytes) throw this.#tooLarge(key, size)
        if (declared === undefined) reservation.grow(chunk.byteLength)
        else if (size > declared) throw sizeDiffers(key, declared, size)
        hasher.update(chunk)
        let written = 0
        while (written < chunk.byteLength) {
          const r = await fh.write(chunk, written, chunk.byteLength - written)
          written += r.bytesWritten
        }
      }
      if (declared !== undefined && size !== declared) throw sizeDiffers(key, declared, size)
      // Checked before the fsync: a mismatching shard is never worth syncing.
      if (!bytesEqual(hasher.digestBuffer(), cid.multihash.digest)) {
        throw new NodusError('CID_MISMATCH', `bytes do not hash to ${key}`, { details: { cid: key, size } })
      }
      throwIfAborted(signal)
      await fh.sync()
      fhOpen = false
      await fh.close()
      const finalPath = this.#shardPath(key)
      const fanoutDir = join(this.#dir, key.slice(-3, -1))
      if ((await mkdir(fanoutDir, { recursive: true })) !== undefined) await fsyncDir(this.#dir)
      throwIfAborted(signal)
      await rename(tmpPath, finalPath)
      renamed = true
      await fsyncDir(fanoutDir)
      const storedAt = Math.max(0, Math.floor(this.#clock.now()))
      const created = await index.add(key, { size, storedAt })
      this.#log.debug({ cid: key, size, created }, 'shard stored')
      return { size, created }
    } finally {
      if (fhOpen) await fh.close().catch(() => {})
      if (!renamed) {
        await rm(tmpPath, { force: true }).catch((err: unknown) => {
          this.#log.warn({ cid: key, path: tmpPath, err }, 'could not remove temp file')
        })
      }
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

function missing(key: string, reason?: string): NodusError {
  return new NodusError('SHARD_MISSING', `no shard ${key}`, {
    details: reason === undefined ? { cid: key } : { cid: key, reason },
  })
}

function sizeDiffers(key: string, expectedSize: number, size: number): NodusError {
  return new NodusError('INVALID_ARGUMENT', `shard stream is not the ${expectedSize} bytes declared`, {
    details: { cid: key, expectedSize, size },
  })
}
