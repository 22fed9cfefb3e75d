/**
 * The manifests this node keeps a copy of and therefore watches (checks their segments' health and
 * repairs them), with the latest holder update for each. LMDB at `<dataDir>/watch`; writes are
 * awaited until flushed.
 */
import { open, type RootDatabase } from 'lmdb'
import { NodusError } from '../../common/errors.ts'

/** A watched manifest's kept holder update (what {@link ManifestWatch.latest} returns). */
export interface WatchedRevision {
  /** Latest kept revision (1: none yet, the signed manifest alone). */
  revision: number
  /** The encoded signed holder update of that revision, when revision > 1. */
  update: Uint8Array | undefined
  /** The update kept before it, if any: the state to fall back to. */
  previous?: { revision: number; update: Uint8Array }
}

interface WatchEntry {
  /** Latest holder update revision (1: none yet). */
  revision: number
  /** Encoded signed holder update, when revision > 1. */
  update?: Uint8Array
  /** The update kept before `update` (its last good state to fall back to), when there was one. */
  previous?: { revision: number; update: Uint8Array }
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

  /**
   * The latest holder update (encoded) and its revision, and the update kept before it (`previous`,
   * to fall back to when the latest cannot be loaded).
   */
  latest(cid: string): WatchedRevision | undefined {
    const e = this.#open().get(cid)
    if (e === undefined) return undefined
    return {
      revision: e.revision,
      update: e.update === undefined ? undefined : new Uint8Array(e.update),
      ...(e.previous === undefined
        ? {}
        : { previous: { revision: e.previous.revision, update: new Uint8Array(e.previous.update) } }),
    }
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

  /**
   * Keep `update` if its revision is newer than what is kept (and, when `options.expect` is given, only
   * if the kept revision is still `expect`: compare-and-set, for callers that checked the update
   * against that revision). The update kept until now becomes `previous`. The check and the write are
   * one LMDB transaction. Resolves true when kept. The caller validates `update` first
   * (src/storage/keeper/holder-update-inbox.ts): what is kept here is what repair loads.
   */
  async offer(
    cid: string,
    revision: number,
    update: Uint8Array,
    now: number,
    options: { expect?: number } = {},
  ): Promise<boolean> {
    const db = this.#open()
    const kept = await db.transaction(() => {
      const e = db.get(cid)
      if (e !== undefined && e.revision >= revision) return false
      if (options.expect !== undefined && (e?.revision ?? 1) !== options.expect) return false
      db.put(cid, {
        revision,
        update,
        since: e?.since ?? now,
        ...(e?.update === undefined ? {} : { previous: { revision: e.revision, update: e.update } }),
        ...(e?.criticalUntil === undefined ? {} : { criticalUntil: e.criticalUntil }),
      })
      return true
    })
    await db.flushed
    return kept
  }

  /**
   * Replace a kept update that cannot be loaded by an earlier good state: `to` (the previous update)
   * or, when undefined, none (revision 1: the signed manifest alone). Does nothing when the kept
   * revision is no longer `from` (a newer update arrived meanwhile) or the manifest is not watched.
   * Resolves true when replaced.
   */
  async fallBack(
    cid: string,
    from: number,
    to: { revision: number; update: Uint8Array } | undefined,
  ): Promise<boolean> {
    const db = this.#open()
    const done = await db.transaction(() => {
      const e = db.get(cid)
      if (e === undefined || e.revision !== from) return false
      db.put(cid, {
        revision: to?.revision ?? 1,
        ...(to === undefined ? {} : { update: to.update }),
        since: e.since,
        ...(e.criticalUntil === undefined ? {} : { criticalUntil: e.criticalUntil }),
      })
      return true
    })
    await db.flushed
    return done
  }
}
