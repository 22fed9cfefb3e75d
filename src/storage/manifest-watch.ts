/**
 * The manifests this node keeps a copy of and therefore watches (checks their segments' health and
 * repairs them), with the latest holder update for each. LMDB at `<dataDir>/watch`; writes are
 * awaited until flushed.
 */
import { open, type RootDatabase } from 'lmdb'
import { NodusError } from '../common/errors.ts'

interface WatchEntry {
  /** Latest holder update revision (1: none yet). */
  revision: number
  /** Encoded signed holder update, when revision > 1. */
  update?: Uint8Array
  /** When this node started watching, ms since the epoch. */
  since: number
  /** Marked critical by a pin until this time (ms since the epoch; MAX_SAFE_INTEGER: no expiry). */
  criticalUntil?: number
}

export class ManifestWatch {
  readonly #path: string
  #db: RootDatabase<WatchEntry, string> | undefined

  constructor(path: string) {
    this.#path = path
  }

  open(): void {
    this.#db ??= open<WatchEntry, string>({ path: this.#path, encoding: 'msgpack' })
  }

  async close(): Promise<void> {
    const db = this.#db
    this.#db = undefined
    await db?.close()
  }

  #open(): RootDatabase<WatchEntry, string> {
    if (this.#db === undefined) throw new NodusError('STORE_CLOSED', 'manifest watch list is closed')
    return this.#db
  }

  /** Start watching a manifest (idempotent). */
  async add(cid: string, now: number): Promise<void> {
    const db = this.#open()
    if (db.get(cid) !== undefined) return
    await db.put(cid, { revision: 1, since: now })
    await db.flushed
  }

  async remove(cid: string): Promise<void> {
    const db = this.#open()
    await db.remove(cid)
    await db.flushed
  }

  has(cid: string): boolean {
    return this.#open().get(cid) !== undefined
  }

  /** Watched manifest CIDs, in order, at most `limit` after `after`. */
  list(limit = 10_000, after?: string): string[] {
    const out: string[] = []
    for (const key of this.#open().getKeys(after === undefined ? {} : { start: after })) {
      if (key === after) continue
      out.push(key)
      if (out.length >= limit) break
    }
    return out
  }

  /** The latest holder update (encoded) and its revision. */
  latest(cid: string): { revision: number; update: Uint8Array | undefined } | undefined {
    const e = this.#open().get(cid)
    return e === undefined
      ? undefined
      : { revision: e.revision, update: e.update === undefined ? undefined : new Uint8Array(e.update) }
  }

  /**
   * Mark a watched manifest critical until `until` (ms since the epoch; undefined: no expiry); the
   * latest mark wins, as for pins. Resolves false when the manifest is not watched.
   */
  async markCritical(cid: string, until: number | undefined): Promise<boolean> {
    const db = this.#open()
    const e = db.get(cid)
    if (e === undefined) return false
    const t = until ?? Number.MAX_SAFE_INTEGER
    if ((e.criticalUntil ?? 0) >= t) return true
    await db.put(cid, { ...e, criticalUntil: t })
    await db.flushed
    return true
  }

  /** Whether a pin marked the manifest critical and the mark has not expired at `now` (ms). */
  isCritical(cid: string, now: number): boolean {
    return (this.#open().get(cid)?.criticalUntil ?? 0) > now
  }

  /** Keep `update` if its revision is newer than what is kept. Resolves true when kept. */
  async offer(cid: string, revision: number, update: Uint8Array, now: number): Promise<boolean> {
    const db = this.#open()
    const e = db.get(cid)
    if (e !== undefined && e.revision >= revision) return false
    await db.put(cid, {
      revision,
      update,
      since: e?.since ?? now,
      ...(e?.criticalUntil === undefined ? {} : { criticalUntil: e.criticalUntil }),
    })
    await db.flushed
    return true
  }
}
