/**
 * Databases with recent traffic, which anti-entropy visits every `kv.activeSyncIntervalMs` instead
 * of every `kv.syncIntervalMs`. Gossip loses messages (a full queue, a peer that left the mesh, a
 * crash); the periodic round repairs every loss but only after up to `syncIntervalMs`. A database
 * that just received or produced ops is the one likely to have lost one, and a sync between nodes
 * already in step costs one round trip of under a kilobyte (docs/BENCHMARKS.md, kv-sync), so such a
 * database is synced soon after its traffic, and idle ones stay on the slow schedule.
 */

/** Options of {@link ActiveDbs}. */
export interface ActiveDbsOptions {
  /** Between syncs of an active database, ms; 0 turns fast syncs off. */
  activeSyncIntervalMs: number
  /** Databases tracked at once; the least recently active is dropped beyond it. */
  maxActiveDbs: number
}

/** How many intervals after its last op a database stays active. */
export const ACTIVE_INTERVALS = 5

/** The active databases (module doc). Not thread-safe; reads time only through the arguments. */
export class ActiveDbs {
  readonly #options: ActiveDbsOptions
  /** db → Unix ms of its last op; in order of last activity (oldest first). */
  readonly #last = new Map<string, number>()
  readonly #inFlight = new Set<string>()

  constructor(options: ActiveDbsOptions) {
    this.#options = options
  }

  /** Note traffic on `db` at `nowMs` (an op received by gossip or written here). */
  touch(db: string, nowMs: number): void {
    if (this.#options.activeSyncIntervalMs === 0) return
    this.#last.delete(db)
    this.#last.set(db, nowMs)
    if (this.#last.size > this.#options.maxActiveDbs) {
      const oldest = this.#last.keys().next().value as string
      this.#last.delete(oldest)
    }
  }

  /**
   * The active databases to sync now, not already syncing, marked in flight until {@link done};
   * forgets those idle for {@link ACTIVE_INTERVALS} intervals.
   */
  due(nowMs: number): string[] {
    const out: string[] = []
    const horizon = nowMs - ACTIVE_INTERVALS * this.#options.activeSyncIntervalMs
    for (const [db, at] of this.#last) {
      if (at < horizon) {
        this.#last.delete(db)
        continue
      }
      if (this.#inFlight.has(db)) continue
      this.#inFlight.add(db)
      out.push(db)
    }
    return out
  }

  /** The sync of `db` that {@link due} handed out has ended. */
  done(db: string): void {
    this.#inFlight.delete(db)
  }

  /** Forget `db` (no longer hosted). */
  forget(db: string): void {
    this.#last.delete(db)
  }

  /** Databases tracked. */
  get size(): number {
    return this.#last.size
  }
}
