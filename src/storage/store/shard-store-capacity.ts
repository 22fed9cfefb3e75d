/**
 * The shard store's capacity: bytes reserved by puts in flight, checked against `capacityBytes` and the
 * file system's free-space reserve (`minFreeDiskBytes`, from cached statfs readings), and the free bytes
 * the node reports. See src/storage/README.md ("Capacity").
 */
import { statfs } from 'node:fs/promises'
import { NodusError } from '../../common/errors.ts'

/** Capacity held by one put in flight. */
export interface Reservation {
  /** Reserve `more` bytes (a streamed chunk that arrived); throws STORE_FULL. */
  grow(more: number): void
  /** Give everything back (idempotent). */
  release(): void
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
