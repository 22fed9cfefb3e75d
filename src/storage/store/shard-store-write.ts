/**
 * The shard store's write path: capacity reservations (capacityBytes and the file system's free-space
 * reserve) and writing one shard file durably (temp file, BLAKE3 check, fsync, rename, directory fsync).
 * The index commit that makes the shard visible is the store's (shard-store.ts).
 */
import { randomUUID } from 'node:crypto'
import { type FileHandle, mkdir, open as openFile, rename, rm, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { Blake3Hasher } from '@napi-rs/blake-hash'
import { throwIfAborted } from '../../common/abort.ts'
import { BufferPool } from '../../common/buffer-pool.ts'
import { bytesEqual } from '../../common/bytes.ts'
import { NodusError } from '../../common/errors.ts'
import { blake3 } from '../../crypto/index.ts'
import { alignedSpan, allocAligned, DIRECT_WRITE_FLAGS } from './direct-io.ts'
import { fanoutOf, fsyncDir, isErrnoCode, noSpaceAsStoreFull, shardPath } from './shard-store-disk.ts'

/** Aligned staging buffers kept per store for direct writes, bytes. */
const STAGING_POOL_BYTES = 8 * 1024 * 1024

/** Capacity held by one put in flight. */
export interface Reservation {
  /** Reserve `more` bytes (a streamed chunk that arrived); throws STORE_FULL. */
  grow(more: number): void
  /** Give everything back (idempotent). */
  release(): void
}

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

/** How long one statfs result of the free disk space serves a put's disk-reserve check, ms. */
export const STATFS_TTL_MS = 1_000
/** How old the statfs result behind usage() may get before a refresh is started (not awaited), ms. */
export const USAGE_STATFS_TTL_MS = 5_000

/** The figures of statfs(2) the guard reads: blocks available to unprivileged users, and the block size. */
export interface StatfsResult {
  bavail: number
  bsize: number
}

export interface CapacityGuardOptions {
  dir: string
  capacityBytes: number
  minFreeDiskBytes: number
  /** statfs of `dir`; defaults to node:fs/promises `statfs`. Tests inject a small file system. */
  statfs?: (dir: string) => Promise<StatfsResult>
  /** Monotonic time in ms for the statfs TTLs; defaults to `performance.now()`. */
  now?: () => number
  /** Warned once per failure streak when a background statfs fails. */
  log?: { warn(obj: object, msg?: string): void }
}

/**
 * Capacity: bytes reserved by puts in flight, checked against `capacityBytes` (with the stored bytes) and
 * against the file system's free space less `minFreeDiskBytes`; and the free capacity the node reports
 * ({@link freeBytes}), the smaller of the two.
 *
 * Free disk space comes from statfs (`bavail × bsize`), cached: a put's disk-reserve check reuses a
 * reading for {@link STATFS_TTL_MS} and usage() for {@link USAGE_STATFS_TTL_MS} (refreshing it in the
 * background, never waiting), each time less every reservation released since the reading (as if all of
 * it had been written). Bytes freed by deletes show at the next reading.
 */
export class CapacityGuard {
  readonly #dir: string
  readonly #capacityBytes: number
  readonly #minFreeDiskBytes: number
  readonly #statfsFn: (dir: string) => Promise<StatfsResult>
  readonly #now: () => number
  readonly #log: { warn(obj: object, msg?: string): void } | undefined
  #reservedBytes = 0
  /** The statfs call in flight, shared by concurrent callers. */
  #statfs: Promise<number> | undefined
  /** The last statfs result (free bytes) and when it was taken (ms, `now()`). */
  #lastFree: { bytes: number; at: number } | undefined
  /** Bytes of reservations released since that statfs (written, or given up: counted either way). */
  #releasedSinceStatfs = 0
  /** True while background refreshes keep failing (logged once). */
  #refreshFailing = false

  constructor(options: CapacityGuardOptions) {
    this.#dir = options.dir
    this.#capacityBytes = options.capacityBytes
    this.#minFreeDiskBytes = options.minFreeDiskBytes
    this.#statfsFn = options.statfs ?? statfs
    this.#now = options.now ?? (() => performance.now())
    this.#log = options.log
  }

  /** Bytes reserved by puts in flight (not yet in the index counters). */
  get reservedBytes(): number {
    return this.#reservedBytes
  }

  /**
   * Free bytes on the file system by the last statfs reading, less every reservation released since;
   * undefined before the first reading. Synchronous: starts a refresh in the background (not awaited)
   * when the reading is older than {@link USAGE_STATFS_TTL_MS}.
   */
  diskFreeBytes(): number | undefined {
    const last = this.#lastFree
    if (last === undefined || this.#now() - last.at >= USAGE_STATFS_TTL_MS) {
      this.refresh().then(
        () => {
          this.#refreshFailing = false
        },
        (err: unknown) => {
          if (!this.#refreshFailing) this.#log?.warn({ err, dir: this.#dir }, 'statfs failed')
          this.#refreshFailing = true
        },
      )
    }
    return last === undefined ? undefined : Math.max(0, last.bytes - this.#releasedSinceStatfs)
  }

  /**
   * Free capacity in bytes while `usedBytes` are stored: the smaller of `capacityBytes − used − reserved`
   * and (once a statfs reading exists) `disk free − minFreeDiskBytes − reserved`, never below 0. O(1),
   * never waits (see {@link diskFreeBytes}).
   */
  freeBytes(usedBytes: number): number {
    const byCapacity = this.#capacityBytes - usedBytes - this.#reservedBytes
    const disk = this.diskFreeBytes()
    const byDisk =
      disk === undefined ? Number.POSITIVE_INFINITY : disk - this.#minFreeDiskBytes - this.#reservedBytes
    return Math.max(0, Math.min(byCapacity, byDisk))
  }

  /**
   * Take a fresh statfs reading (shared with concurrent callers) and resolve to the free bytes it found.
   * Rejects with the file-system error.
   */
  refresh(): Promise<number> {
    if (this.#statfs !== undefined) return this.#statfs
    const at = this.#now()
    const released = this.#releasedSinceStatfs
    const p = this.#statfsFn(this.#dir).then((s) => {
      const bytes = s.bavail * s.bsize
      // Reservations released while statfs ran may or may not be in its figure: count them.
      this.#releasedSinceStatfs -= released
      this.#lastFree = { bytes, at }
      return bytes
    })
    this.#statfs = p
    const clear = (): void => {
      if (this.#statfs === p) this.#statfs = undefined
    }
    p.then(clear, clear)
    return p
  }

  /**
   * STORE_FULL when `bytes` more would take stored (`usedBytes`) plus reserved bytes above capacityBytes.
   * Reserves nothing: a put checks its declared size with this, then reserves bytes as they arrive.
   */
  check(key: string, bytes: number, usedBytes: number): void {
    if (usedBytes + this.#reservedBytes + bytes > this.#capacityBytes) {
      throw new NodusError('STORE_FULL', `store cannot take ${bytes} more bytes`, {
        details: {
          cid: key,
          requestedBytes: bytes,
          usedBytes,
          reservedBytes: this.#reservedBytes,
          capacityBytes: this.#capacityBytes,
        },
      })
    }
  }

  /**
   * Reserve `bytes` for a put of `key` while `usedBytes()` are stored; throws STORE_FULL when stored plus
   * reserved bytes would pass capacityBytes. `grow` reserves more under the same rule, and also throws
   * STORE_FULL (`details.reason: 'disk reserve'`) when the last statfs reading, less everything reserved,
   * would leave less than minFreeDiskBytes (no statfs call: the reading the put's
   * {@link checkDiskReserve} took).
   */
  reserve(key: string, bytes: number, usedBytes: () => number): Reservation {
    let held = 0
    const take = (more: number, checkDisk: boolean): void => {
      const used = usedBytes()
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
      if (checkDisk && this.#minFreeDiskBytes > 0 && this.#lastFree !== undefined) {
        const free = this.#lastFree.bytes - this.#releasedSinceStatfs
        if (free - this.#reservedBytes - more < this.#minFreeDiskBytes) throw this.#atReserve(key, free)
      }
      held += more
      this.#reservedBytes += more
    }
    take(bytes, false)
    return {
      grow: (more) => take(more, true),
      release: () => {
        this.#reservedBytes -= held
        this.#releasedSinceStatfs += held
        held = 0
      },
    }
  }

  /**
   * STORE_FULL unless the file system keeps at least minFreeDiskBytes free after every put in flight and
   * `extraBytes` more (a declared size not reserved yet): statfs `bavail × bsize` less all reserved bytes
   * (conservative: bytes those puts already wrote count twice). Concurrent calls share one statfs, and a
   * reading serves for {@link STATFS_TTL_MS} less every reservation released since (as if all of them had
   * been written). A no-op when minFreeDiskBytes is 0.
   */
  async checkDiskReserve(key: string, extraBytes = 0): Promise<void> {
    if (this.#minFreeDiskBytes === 0) return
    let freeDiskBytes: number
    const last = this.#lastFree
    if (last !== undefined && this.#now() - last.at < STATFS_TTL_MS) {
      freeDiskBytes = last.bytes - this.#releasedSinceStatfs
    } else {
      freeDiskBytes = await this.refresh()
    }
    if (freeDiskBytes - this.#reservedBytes - extraBytes < this.#minFreeDiskBytes) {
      throw this.#atReserve(key, freeDiskBytes, extraBytes)
    }
  }

  #atReserve(key: string, freeDiskBytes: number, requestedBytes?: number): NodusError {
    return new NodusError('STORE_FULL', 'the file system is at its free-space reserve', {
      details: {
        cid: key,
        reason: 'disk reserve',
        freeDiskBytes,
        reservedBytes: this.#reservedBytes,
        minFreeDiskBytes: this.#minFreeDiskBytes,
        ...(requestedBytes === undefined ? {} : { requestedBytes }),
      },
    })
  }
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
