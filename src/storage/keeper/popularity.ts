/**
 * Read counts per manifest over a sliding window, for dynamic redundancy ({@link parityFor}).
 *
 * A keeper counts the requests for a manifest's latest holder update: every get of a file asks the
 * keepers closest to the manifest CID for it, so the closest keeper sees nearly every read. Counts
 * live in memory (a restarted keeper starts from zero, which only delays a raise): per manifest,
 * `buckets` buckets of `windowMs / buckets` each. At most `maxEntries` manifests are tracked; the
 * least recently read is dropped first.
 */
export interface PopularityOptions {
  /** Window length, ms. Default 86 400 000 (24 h). */
  windowMs: number
  /** Buckets per window. Default 24. */
  buckets: number
  /** Manifests tracked at most. Default 100 000. */
  maxEntries: number
}

export const DEFAULT_POPULARITY_OPTIONS: Readonly<PopularityOptions> = Object.freeze({
  windowMs: 24 * 3600 * 1000,
  buckets: 24,
  maxEntries: 100_000,
})

interface Entry {
  /** Index of the newest bucket (time / bucketMs). */
  head: number
  counts: Uint32Array
  /** Requesters counted in the newest bucket (each counts once per bucket); at most MAX_REQUESTERS. */
  seen: Set<string>
}

/** Requesters remembered per manifest and bucket; beyond it further reads of the bucket are not counted. */
const MAX_REQUESTERS = 1024

/** Sliding-window read counter per key (a manifest CID string). */
export class Popularity {
  readonly #options: PopularityOptions
  readonly #bucketMs: number
  readonly #entries = new Map<string, Entry>()

  constructor(options: Partial<PopularityOptions> = {}) {
    this.#options = { ...DEFAULT_POPULARITY_OPTIONS, ...options }
    this.#bucketMs = Math.max(1, Math.floor(this.#options.windowMs / this.#options.buckets))
  }

  #advance(e: Entry, now: number): void {
    const b = Math.floor(now / this.#bucketMs)
    const n = e.counts.length
    if (b <= e.head) return
    if (b - e.head >= n) e.counts.fill(0)
    else for (let x = e.head + 1; x <= b; x++) e.counts[x % n] = 0
    e.head = b
    e.seen.clear()
  }

  /**
   * Count one read of `key` at `now` (ms) by `requester` (a PeerId): each requester counts at most once
   * per bucket, so one peer cannot make a file look popular (extra parity stays bounded per requester).
   */
  record(key: string, now: number, requester?: string): void {
    let e = this.#entries.get(key)
    if (e === undefined) {
      if (this.#entries.size >= this.#options.maxEntries)
        this.#entries.delete(this.#entries.keys().next().value as string)
      e = {
        head: Math.floor(now / this.#bucketMs),
        counts: new Uint32Array(this.#options.buckets),
        seen: new Set(),
      }
    } else this.#entries.delete(key) // re-insert: most recently read last
    this.#entries.set(key, e)
    this.#advance(e, now)
    if (requester !== undefined) {
      if (e.seen.has(requester) || e.seen.size >= MAX_REQUESTERS) return
      e.seen.add(requester)
    }
    const i = e.head % e.counts.length
    e.counts[i] = (e.counts[i] as number) + 1
  }

  /** Reads of `key` in the window ending at `now` (ms). */
  count(key: string, now: number): number {
    const e = this.#entries.get(key)
    if (e === undefined) return 0
    this.#advance(e, now)
    let total = 0
    for (const c of e.counts) total += c
    return total
  }

  /** Manifests tracked. */
  get size(): number {
    return this.#entries.size
  }
}
