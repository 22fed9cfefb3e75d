/**
 * The files this node put into the network (its pins): manifest CID → summary. An LMDB database at
 * `<dataDir>/files`; each write waits until it is flushed to disk.
 */
import { open, type RootDatabase } from 'lmdb'
import { NodusError } from '../../common/errors.ts'

/** One pinned file. Times in ms since the Unix epoch. */
export interface FileRecord {
  /** Manifest CID (base32). */
  cid: string
  name: string | undefined
  bytes: number
  segments: number
  k: number
  m: number
  createdAt: number
  /** When the pin expires; undefined: never. */
  expiresAt: number | undefined
  /** Pinned as critical: keepers keep extra parity (dynamic redundancy). Absent: false. */
  critical?: boolean
  /** A pin grant from the file's uploader (base64), sent with every renewal. */
  grant?: string
}

export class FileIndex {
  readonly #path: string
  #db: RootDatabase<FileRecord, string> | undefined

  /** @param path directory of the LMDB environment */
  constructor(path: string) {
    this.#path = path
  }

  open(): void {
    this.#db ??= open<FileRecord, string>({ path: this.#path, encoding: 'msgpack' })
  }

  async close(): Promise<void> {
    const db = this.#db
    this.#db = undefined
    await db?.close()
  }

  #open(): RootDatabase<FileRecord, string> {
    if (this.#db === undefined) throw new NodusError('STORE_CLOSED', 'file index is closed')
    return this.#db
  }

  /** Record (or replace) a pin; resolves once durable. */
  async put(rec: FileRecord): Promise<void> {
    const db = this.#open()
    await db.put(rec.cid, rec)
    await db.flushed
  }

  get(cid: string): FileRecord | undefined {
    return this.#open().get(cid)
  }

  /** Remove a pin; false if there was none. */
  async delete(cid: string): Promise<boolean> {
    const db = this.#open()
    const had = db.get(cid) !== undefined
    if (had) {
      await db.remove(cid)
      await db.flushed
    }
    return had
  }

  /** Pins in CID order, at most `limit` (default 100, max 1,000), after CID `after`. */
  list(options: { limit?: number; after?: string } = {}): FileRecord[] {
    const limit = Math.min(Math.max(options.limit ?? 100, 1), 1000)
    const out: FileRecord[] = []
    for (const { key, value } of this.#open().getRange(
      options.after === undefined ? {} : { start: options.after },
    )) {
      if (key === options.after) continue
      out.push(value)
      if (out.length >= limit) break
    }
    return out
  }
}
