/**
 * The shard store's write path: writing one shard file durably (temp file, BLAKE3 check, fsync, rename,
 * directory fsync) against a capacity reservation (shard-store-capacity.ts). The index commit that makes
 * the shard visible is the store's (shard-store.ts).
 */
import { randomUUID } from 'node:crypto'
import { type FileHandle, mkdir, open as openFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Blake3Hasher } from '@napi-rs/blake-hash'
import type { CID } from 'multiformats/cid'
import { throwIfAborted } from '../../common/abort.ts'
import { BufferPool } from '../../common/buffer-pool.ts'
import { bytesEqual } from '../../common/bytes.ts'
import { alignedSpan, allocAligned, DIRECT_WRITE_FLAGS } from '../../common/direct-io.ts'
import { NodusError } from '../../common/errors.ts'
import { blake3 } from '../../crypto/index.ts'
import type { CapacityGuard, Reservation } from './shard-store-capacity.ts'
import { fanoutOf, fsyncDir, isErrnoCode, noSpaceAsStoreFull, shardPath } from './shard-store-disk.ts'
import { cidKey, laterExpiry, type ShardIndex } from './shard-store-index.ts'

/** Aligned staging buffers kept per store for direct writes, bytes. */
const STAGING_POOL_BYTES = 8 * 1024 * 1024

/** Resolve or reject with `p`, or reject with the abort reason (ABORTED/TIMEOUT) as soon as `signal` aborts. */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
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

function tooLarge(key: string, size: number, max: number): NodusError {
  return new NodusError('SHARD_TOO_LARGE', `shard of ${size} bytes exceeds ${max}`, {
    details: { cid: key, size, max },
  })
}

/**
 * The size a put declares: the buffer's length, or `expectedSize` for a stream (undefined when neither).
 * Throws INVALID_ARGUMENT (expectedSize not a non-negative integer, or not the buffer's length) and
 * SHARD_TOO_LARGE (over `maxShardBytes`) before anything is read.
 */
export function declaredSize(
  key: string,
  data: Uint8Array | AsyncIterable<Uint8Array>,
  expectedSize: number | undefined,
  maxShardBytes: number,
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
  if (declared !== undefined && declared > maxShardBytes) throw tooLarge(key, declared, maxShardBytes)
  return declared
}

function sizeDiffers(key: string, expectedSize: number, size: number): NodusError {
  return new NodusError('INVALID_ARGUMENT', `shard stream is not the ${expectedSize} bytes declared`, {
    details: { cid: key, expectedSize, size },
  })
}

/** Where and how {@link writeShardFile} writes. */
export interface WriteTarget {
  /** The store directory (fan-out directories live here). */
  dir: string
  /** `<dir>/tmp`, same file system. */
  tmpDir: string
  maxShardBytes: number
  log: { warn(obj: object, msg?: string): void }
  /**
   * Fan-out directories known to exist durably (or being created), by name: the promise resolves once the
   * directory exists and, if this process created it, `dir` has been fsynced. Saves a mkdir per put, and
   * makes a put into a directory another put is creating wait for that fsync. Reset at open().
   */
  fanouts: Map<string, Promise<void>>
  /**
   * Write whole-buffer shards with direct I/O (see direct-io.ts): set by the store's probe at open, false
   * once the file system refused O_DIRECT (then buffered writes, as without the native addon).
   */
  direct?: boolean | undefined
  /** Aligned staging buffers for direct writes of buffers that are not aligned themselves. */
  staging?: BufferPool | undefined
}

/** Create `<dir>/<name>` if needed and make its entry durable (fsync `dir`); shared by concurrent puts. */
function ensureFanout(target: WriteTarget, name: string): Promise<void> {
  let ready = target.fanouts.get(name)
  if (ready === undefined) {
    ready = (async () => {
      if ((await mkdir(join(target.dir, name), { recursive: true })) !== undefined) await fsyncDir(target.dir)
    })()
    target.fanouts.set(name, ready)
    ready.catch(() => target.fanouts.delete(name))
  }
  return ready
}

/**
 * Write one shard file durably, leaving it at `<dir>/<fan-out>/<key>` but not indexed: stream `data` into
 * `tmp/<uuid>` while hashing it (BLAKE3), check the length against `declared` and maxShardBytes and the
 * digest against `digest`, fsync the file, create the fan-out directory if needed (then fsync `dir`),
 * rename into place and fsync the fan-out directory. On any failure nothing is left: the temp file (or the
 * renamed file, if a later step failed) is removed. ENOSPC/EDQUOT become STORE_FULL.
 * Capacity: the caller has reserved a whole buffer's length (its bytes have arrived); a stream's chunks
 * are reserved one by one as they arrive (`reservation.grow`), whatever size it declared, so a stalled
 * stream holds only what it sent.
 * @returns the size in bytes and the final path
 * @throws NodusError CID_MISMATCH, SHARD_TOO_LARGE, INVALID_ARGUMENT (length differs from `declared`),
 *   STORE_FULL (reservation.grow, or no space), ABORTED/TIMEOUT (signal, honoured until the rename)
 */
export async function writeShardFile(
  target: WriteTarget,
  key: string,
  digest: Uint8Array,
  data: Uint8Array | AsyncIterable<Uint8Array>,
  declared: number | undefined,
  reservation: Reservation,
  signal: AbortSignal | undefined,
): Promise<{ size: number; path: string }> {
  const tmpPath = join(target.tmpDir, randomUUID())
  const finalPath = shardPath(target.dir, key)
  let fh: Awaited<ReturnType<typeof openFile>> | undefined
  let renamed = false
  try {
    if (data instanceof Uint8Array && data.byteLength > 0 && target.direct === true) {
      // A whole buffer: checked before any file exists, then written with direct I/O if the file system lets us.
      const size = data.byteLength
      if (size > target.maxShardBytes) throw tooLarge(key, size, target.maxShardBytes)
      if (declared !== undefined && size !== declared) throw sizeDiffers(key, declared, size)
      if (!bytesEqual(blake3(data), digest)) {
        throw new NodusError('CID_MISMATCH', `bytes do not hash to ${key}`, { details: { cid: key, size } })
      }
      throwIfAborted(signal)
      fh = await openDirect(target, tmpPath)
      if (fh !== undefined) {
        await writeDirect(target, fh, data)
        throwIfAborted(signal)
        return await finish(fh, size)
      }
    }
    fh = await openFile(tmpPath, 'wx', 0o600)
    const hasher = new Blake3Hasher()
    const streamed = !(data instanceof Uint8Array)
    let size = 0
    for await (const chunk of abortable(data instanceof Uint8Array ? once(data) : data, signal)) {
      size += chunk.byteLength
      if (size > target.maxShardBytes) throw tooLarge(key, size, target.maxShardBytes)
      if (declared !== undefined && size > declared) throw sizeDiffers(key, declared, size)
      if (streamed) reservation.grow(chunk.byteLength)
      hasher.update(chunk)
      let written = 0
      while (written < chunk.byteLength) {
        const r = await fh.write(chunk, written, chunk.byteLength - written)
        written += r.bytesWritten
      }
    }
    if (declared !== undefined && size !== declared) throw sizeDiffers(key, declared, size)
    // Checked before the fsync: a mismatching shard is never worth syncing.
    if (!bytesEqual(hasher.digestBuffer(), digest)) {
      throw new NodusError('CID_MISMATCH', `bytes do not hash to ${key}`, { details: { cid: key, size } })
    }
    throwIfAborted(signal)
    return await finish(fh, size)
  } catch (err) {
    // Not indexed yet, and the caller holds the CID lock: a renamed file is ours to remove.
    if (renamed) await rm(finalPath, { force: true }).catch(() => {})
    throw noSpaceAsStoreFull(err, key)
  } finally {
    if (fh !== undefined) await fh.close().catch(() => {})
    if (!renamed) {
      await rm(tmpPath, { force: true }).catch((err: unknown) => {
        target.log.warn({ cid: key, path: tmpPath, err }, 'could not remove temp file')
      })
    }
  }

  /** fsync and close the temp file, then rename it into place and make the rename durable. */
  async function finish(handle: FileHandle, size: number): Promise<{ size: number; path: string }> {
    await handle.sync()
    fh = undefined
    await handle.close()
    await ensureFanout(target, fanoutOf(key))
    throwIfAborted(signal)
    try {
      await rename(tmpPath, finalPath)
    } catch (err) {
      target.fanouts.delete(fanoutOf(key)) // e.g. removed behind our back: the next put recreates it
      throw err
    }
    renamed = true
    await fsyncDir(join(target.dir, fanoutOf(key)))
    return { size, path: finalPath }
  }
}

/** Open `path` (new) for direct writes, or undefined when the file system refuses O_DIRECT (remembered). */
async function openDirect(target: WriteTarget, path: string): Promise<FileHandle | undefined> {
  try {
    const fh = await openFile(path, DIRECT_WRITE_FLAGS, 0o600)
    target.direct = true
    return fh
  } catch (err) {
    if (!isErrnoCode(err, 'EINVAL')) throw err
    target.log.warn({ dir: target.dir }, 'file system refuses O_DIRECT: shard files are written buffered')
    target.direct = false
    return undefined
  }
}

/**
 * Write all of `data` at offset 0 of a file opened with O_DIRECT: from `data` itself when it is aligned with
 * room to round up, else through an aligned staging buffer; the length is rounded up to 4 KiB and the file
 * cut back to `data.byteLength`.
 */
async function writeDirect(target: WriteTarget, fh: FileHandle, data: Uint8Array): Promise<void> {
  let span = alignedSpan(data)
  let staged: Uint8Array | undefined
  if (span === undefined) {
    target.staging ??= new BufferPool({ maxBytes: STAGING_POOL_BYTES, minSize: 1, allocate: allocAligned })
    staged = target.staging.take(data.byteLength)
    staged.set(data)
    span = alignedSpan(staged) as Uint8Array
  }
  try {
    let written = 0
    while (written < span.byteLength) {
      const r = await fh.write(span, written, span.byteLength - written, written)
      if (r.bytesWritten === 0) throw new Error('direct write made no progress')
      written += r.bytesWritten
    }
    if (span.byteLength !== data.byteLength) await fh.truncate(data.byteLength)
  } finally {
    if (staged !== undefined) target.staging?.give(staged)
  }
}

/**
 * Per-CID mutual exclusion for put, delete and expiry removal, and the tracking of the writes in flight
 * (puts, deletes, expiry changes) that the store's close() waits for.
 */
export class CidLocks {
  /** Per-CID mutual exclusion for put/delete/expiry removal; the promise resolves when the holder finishes. */
  readonly #locks = new Map<string, Promise<void>>()
  /** Puts, deletes and expiry changes in flight; close() waits for them. */
  readonly #inflight = new Set<Promise<unknown>>()

  /** Run `fn` holding the lock for `key`; waiting for the lock honours `signal`. */
  async withCidLock<T>(key: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
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

  /** Track the write `p` until it settles (see {@link drain}); returns `p`. */
  track<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p)
    const forget = (): void => {
      this.#inflight.delete(p)
    }
    p.then(forget, forget)
    return p
  }

  /** Wait until no tracked write is in flight (including those that start meanwhile). */
  async drain(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight])
  }
}

/** Throws INVALID_ARGUMENT unless `v` is undefined or a non-negative safe integer. */
export function checkTime(name: string, v: number | undefined, details: Record<string, unknown>): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) {
    throw new NodusError('INVALID_ARGUMENT', `${name} must be a non-negative integer (ms since the epoch)`, {
      details: { ...details, [name]: v },
    })
  }
}

/** What the put path needs from its store. */
export interface ShardWriterDeps {
  /** The open index; throws NOT_STARTED / STORE_CLOSED. */
  index(): ShardIndex
  /** The index the store holds (from open() until close() finishes), open or closing; else undefined. */
  loaded(): ShardIndex | undefined
  locks: CidLocks
  capacity: CapacityGuard
  target: WriteTarget
  clock: { now(): number }
  log: { debug(obj: object, msg?: string): void; warn(obj: object, msg?: string): void }
}

/** The shard store's puts and expiry extensions (`ShardStore.put`, `ShardStore.extendExpiry`). */
export class ShardWriter {
  readonly #deps: ShardWriterDeps
  readonly #locks: CidLocks
  readonly #capacity: CapacityGuard
  readonly #target: WriteTarget
  readonly #maxShardBytes: number
  readonly #clock: { now(): number }
  readonly #log: ShardWriterDeps['log']

  constructor(deps: ShardWriterDeps) {
    this.#deps = deps
    this.#locks = deps.locks
    this.#capacity = deps.capacity
    this.#target = deps.target
    this.#maxShardBytes = deps.target.maxShardBytes
    this.#clock = deps.clock
    this.#log = deps.log
  }

  /** `ShardStore.put`. */
  async put(
    cid: CID,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    options: { signal?: AbortSignal; expectedSize?: number; expiresAt?: number } = {},
  ): Promise<{ size: number; created: boolean }> {
    const key = cidKey(cid)
    const index = this.#deps.index()
    const { signal, expiresAt } = options
    throwIfAborted(signal)
    checkTime('expiresAt', expiresAt, { cid: key })
    const existing = index.get(key)
    if (existing !== undefined) {
      const kept = { size: existing.size, created: false }
      if (laterExpiry(existing.expiresAt, expiresAt) === existing.expiresAt) return kept
      // Not under the CID lock: the index transaction re-reads the record, and if an expiry cleanup removed
      // it meanwhile we store the shard again below.
      if ((await this.#locks.track(index.extendExpiry(key, expiresAt))) !== 'absent') return kept
    }
    const declared = declaredSize(key, data, options.expectedSize, this.#maxShardBytes)
    return this.#locks.track(
      this.#locks.withCidLock(key, signal, async () => {
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

  /** `ShardStore.extendExpiry`. */
  async extendExpiry(cid: CID, expiresAt: number | undefined): Promise<boolean> {
    const key = cidKey(cid)
    const index = this.#deps.index()
    checkTime('expiresAt', expiresAt, { cid: key })
    return (await this.#locks.track(index.extendExpiry(key, expiresAt))) !== 'absent'
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
      if (this.#deps.loaded() === index && index.get(key) === undefined)
        await rm(path, { force: true }).catch(() => {})
      throw noSpaceAsStoreFull(err, key)
    }
  }
}
