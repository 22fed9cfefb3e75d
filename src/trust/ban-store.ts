/**
 * The persisted ban list: LMDB at `<dataDir>/bans`, PeerId → `{ atMs, untilMs, code }` (msgpack).
 *
 * Why LMDB rather than a JSON file rewritten atomically: a ban is one small record written and
 * removed on its own (O(1) per change), where a file would be rewritten whole (up to `trust.maxBans`
 * records, about 1 MB at the default 10,000) on every ban, and a Sybil attacker can have fresh
 * identities banned as fast as it can connect. LMDB commits are crash-safe, and the node already keeps
 * its pins (`files/`) and watched manifests (`watch/`) the same way.
 */
import { open, type RootDatabase } from 'lmdb'
import type { BanRecord, BanStore } from './peer-actions.ts'

interface StoredBan {
  atMs: number
  untilMs: number
  code: string
}

function isStoredBan(v: unknown): v is StoredBan {
  if (typeof v !== 'object' || v === null) return false
  const r = v as Record<string, unknown>
  return Number.isSafeInteger(r.atMs) && Number.isSafeInteger(r.untilMs) && typeof r.code === 'string'
}

/** {@link BanStore} on LMDB. Opened by `load()`, closed by `close()`. */
export class LmdbBanStore implements BanStore {
  readonly #path: string
  #db: RootDatabase<StoredBan, string> | undefined

  /** @param path directory of the LMDB environment (`<dataDir>/bans`) */
  constructor(path: string) {
    this.#path = path
  }

  #open(): RootDatabase<StoredBan, string> {
    this.#db ??= open<StoredBan, string>({ path: this.#path, encoding: 'msgpack' })
    return this.#db
  }

  /** Every stored ban; records that do not decode are removed. */
  async load(): Promise<BanRecord[]> {
    const db = this.#open()
    const out: BanRecord[] = []
    const bad: string[] = []
    for (const { key, value } of db.getRange()) {
      if (typeof key === 'string' && isStoredBan(value)) {
        out.push({ peer: key, atMs: value.atMs, untilMs: value.untilMs, code: value.code })
      } else bad.push(String(key))
    }
    for (const key of bad) await db.remove(key)
    return out
  }

  async put(rec: BanRecord): Promise<void> {
    const db = this.#db
    if (db === undefined) return
    await db.put(rec.peer, { atMs: rec.atMs, untilMs: rec.untilMs, code: rec.code })
    await db.flushed
  }

  async delete(peer: string): Promise<void> {
    const db = this.#db
    if (db === undefined) return
    await db.remove(peer)
    await db.flushed
  }

  async close(): Promise<void> {
    const db = this.#db
    this.#db = undefined
    await db?.close()
  }
}
