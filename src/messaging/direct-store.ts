/**
 * Where direct messages rest on disk: one LMDB environment at `<dataDir>/messages` with three
 * databases, every write committed and flushed to disk (`await put`, then `await flushed`) before the
 * peer that sent it is acknowledged.
 *
 * - `inbox`: this node's opened messages, key `[receivedAtMs, id hex]` (so listing is in arrival
 *   order), value {@link InboxMessage}; `ids`: id hex → inbox key (the ids of messages in the inbox
 *   are never accepted twice, across restarts too). At most `maxInboxMessages`; beyond it
 *   `INBOX_FULL`.
 * - `mailbox`: sealed messages kept for others as a keeper, key `[recipient PeerId, id hex]` where
 *   `id` is BLAKE3-256 of the sealed bytes, value `{ storer, storedAtMs, expiresAtMs, msg }`. Bounded
 *   per storing peer (count and bytes: `QUOTA_EXCEEDED`) and in all (`MAILBOX_FULL`); the usage is
 *   rebuilt by one scan on open.
 * - `keys`: this node's X-Wing key epochs, epoch → `{ createdAtMs, retiredAtMs }` (the key files
 *   themselves are in `<dataDir>/keys/`, src/crypto/xwing-keys.ts).
 */
import { type Database, open, type RootDatabase } from 'lmdb'
import { NodusError } from '../common/errors.ts'

/** A message in this node's inbox. */
export interface InboxMessage {
  /** The message id (16 bytes), hex. */
  id: string
  /** The sender's PeerId (verified). */
  from: string
  /** ms since the Unix epoch, by the sender's clock. */
  sentAtMs: number
  /** ms since the Unix epoch, by this node's clock. */
  receivedAtMs: number
  /** How it came: straight from the sender, or collected from a mailbox keeper. */
  via: 'online' | 'mailbox'
  body: Uint8Array
}

/** A sealed message held for a recipient. */
export interface MailboxEntry {
  /** BLAKE3-256 of `msg`, hex. */
  id: string
  /** The peer that stored it (the connection's; usually the sender, whose identity is sealed inside). */
  storer: string
  storedAtMs: number
  expiresAtMs: number
  msg: Uint8Array
}

/** An epoch of this node's X-Wing key. */
export interface KeyEpoch {
  epoch: number
  createdAtMs: number
  /** When a newer key replaced it (0: current). */
  retiredAtMs: number
}

/** Bounds of the stores (the `messaging.*` keys). */
export interface DirectStoreLimits {
  maxInboxMessages: number
  mailboxMaxMessages: number
  mailboxMaxBytes: number
  mailboxSenderMessages: number
  mailboxSenderBytes: number
}

type InboxKey = [number, string]
type MailboxKey = [string, string]

interface Usage {
  count: number
  bytes: number
}

/** What {@link DirectStore.putMailbox} decided. */
export type MailboxPut = 'stored' | 'duplicate'

/** The LMDB stores of direct messages. Call {@link open} first and {@link close} last. */
export class DirectStore {
  readonly #path: string
  readonly #limits: DirectStoreLimits
  #root: RootDatabase | undefined
  #inbox: Database | undefined
  #ids: Database | undefined
  #mailbox: Database | undefined
  #keys: Database | undefined
  #inboxCount = 0
  readonly #byStorer = new Map<string, Usage>()
  readonly #total: Usage = { count: 0, bytes: 0 }

  /** @param path the LMDB environment's directory (`<dataDir>/messages`) */
  constructor(path: string, limits: DirectStoreLimits) {
    this.#path = path
    this.#limits = limits
  }

  /** Open the environment and rebuild the usage counters (one scan of the mailbox). */
  open(): void {
    if (this.#root !== undefined) return
    const root = open({ path: this.#path, encoding: 'msgpack' })
    this.#root = root
    const inbox = root.openDB({ name: 'inbox', encoding: 'msgpack' })
    const mailbox = root.openDB({ name: 'mailbox', encoding: 'msgpack' })
    this.#inbox = inbox
    this.#ids = root.openDB({ name: 'ids', encoding: 'msgpack' })
    this.#mailbox = mailbox
    this.#keys = root.openDB({ name: 'keys', encoding: 'msgpack' })
    this.#inboxCount = inbox.getKeysCount()
    this.#byStorer.clear()
    this.#total.count = 0
    this.#total.bytes = 0
    for (const { value } of mailbox.getRange()) {
      const e = value as MailboxEntry
      this.#account(e.storer, 1, e.msg.byteLength)
    }
  }

  #db<D extends Database>(db: D | undefined): D {
    if (db === undefined) throw new NodusError('STORE_CLOSED', 'the direct message store is closed')
    return db
  }

  async #flush(): Promise<void> {
    await this.#db(this.#root).flushed
  }

  #account(storer: string, count: number, bytes: number): void {
    const u = this.#byStorer.get(storer) ?? { count: 0, bytes: 0 }
    u.count += count
    u.bytes += bytes
    if (u.count <= 0) this.#byStorer.delete(storer)
    else this.#byStorer.set(storer, u)
    this.#total.count += count
    this.#total.bytes += bytes
  }

  // ---- inbox ----

  /** Messages in the inbox. */
  get inboxCount(): number {
    return this.#inboxCount
  }

  /** Is a message with this id (hex) in the inbox? */
  hasMessage(id: string): boolean {
    return this.#db(this.#ids).doesExist(id)
  }

  /**
   * Store `m` in the inbox, durably.
   * @returns false when a message with its id is already there
   * @throws NodusError `INBOX_FULL`
   */
  async addMessage(m: InboxMessage): Promise<boolean> {
    const ids = this.#db(this.#ids)
    if (ids.doesExist(m.id)) return false
    if (this.#inboxCount >= this.#limits.maxInboxMessages)
      throw new NodusError('INBOX_FULL', `the inbox holds ${this.#inboxCount} messages`, {
        details: { maxMessages: this.#limits.maxInboxMessages },
      })
    const key: InboxKey = [m.receivedAtMs, m.id]
    const inbox = this.#db(this.#inbox)
    const added = await inbox.transaction(() => {
      if (ids.doesExist(m.id)) return false
      inbox.put(key, { ...m, body: Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength) })
      ids.put(m.id, key)
      return true
    })
    if (added) this.#inboxCount++
    await this.#flush()
    return added
  }

  /**
   * Store several messages in one transaction and one flush (what a mailbox collection does with a
   * page). @returns per message: `added`, `duplicate` (its id is there) or `full` (beyond the bound)
   */
  async addMessages(ms: readonly InboxMessage[]): Promise<('added' | 'duplicate' | 'full')[]> {
    const ids = this.#db(this.#ids)
    const inbox = this.#db(this.#inbox)
    const out = await inbox.transaction(() => {
      const res: ('added' | 'duplicate' | 'full')[] = []
      let count = this.#inboxCount
      for (const m of ms) {
        if (ids.doesExist(m.id)) res.push('duplicate')
        else if (count >= this.#limits.maxInboxMessages) res.push('full')
        else {
          const key: InboxKey = [m.receivedAtMs, m.id]
          inbox.put(key, { ...m, body: Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength) })
          ids.put(m.id, key)
          count++
          res.push('added')
        }
      }
      return res
    })
    this.#inboxCount += out.filter((r) => r === 'added').length
    await this.#flush()
    return out
  }

  /** Inbox messages in arrival order, after the one with id `after` (hex) when given, at most `limit`. */
  listMessages(options: { after?: string | undefined; limit: number }): InboxMessage[] {
    const inbox = this.#db(this.#inbox)
    let start: InboxKey | undefined
    if (options.after !== undefined) {
      const k = this.#db(this.#ids).get(options.after) as InboxKey | undefined
      if (k !== undefined) start = k
    }
    const out: InboxMessage[] = []
    for (const { key, value } of inbox.getRange(start === undefined ? {} : { start })) {
      if (start !== undefined && (key as InboxKey)[0] === start[0] && (key as InboxKey)[1] === start[1])
        continue
      const v = value as InboxMessage
      out.push({ ...v, body: new Uint8Array(v.body) })
      if (out.length >= options.limit) break
    }
    return out
  }

  /** Delete the inbox message with id `id` (hex). @returns whether it was there */
  async deleteMessage(id: string): Promise<boolean> {
    const ids = this.#db(this.#ids)
    const inbox = this.#db(this.#inbox)
    const removed = await inbox.transaction(() => {
      const key = ids.get(id) as InboxKey | undefined
      if (key === undefined) return false
      inbox.remove(key)
      ids.remove(id)
      return true
    })
    if (removed) this.#inboxCount--
    await this.#flush()
    return removed
  }

  // ---- mailbox (as a keeper) ----

  /** Sealed messages and bytes kept for others now. */
  get mailboxUsage(): Readonly<Usage> {
    return { ...this.#total }
  }

  /** What `storer` has stored here now. */
  storerUsage(storer: string): Readonly<Usage> {
    return { ...(this.#byStorer.get(storer) ?? { count: 0, bytes: 0 }) }
  }

  /**
   * Keep `entry` for `to`, durably, within the quotas.
   * @throws NodusError `QUOTA_EXCEEDED` (the storer's count or bytes), `MAILBOX_FULL` (the totals)
   */
  async putMailbox(to: string, entry: MailboxEntry): Promise<MailboxPut> {
    const db = this.#db(this.#mailbox)
    const key: MailboxKey = [to, entry.id]
    if (db.doesExist(key)) return 'duplicate'
    const bytes = entry.msg.byteLength
    const mine = this.#byStorer.get(entry.storer) ?? { count: 0, bytes: 0 }
    const l = this.#limits
    if (mine.count + 1 > l.mailboxSenderMessages || mine.bytes + bytes > l.mailboxSenderBytes)
      throw new NodusError('QUOTA_EXCEEDED', 'this peer already has its quota of messages at this keeper', {
        peerAction: 'ignore',
        details: {
          count: mine.count,
          bytes: mine.bytes,
          maxMessages: l.mailboxSenderMessages,
          maxBytes: l.mailboxSenderBytes,
        },
      })
    if (this.#total.count + 1 > l.mailboxMaxMessages || this.#total.bytes + bytes > l.mailboxMaxBytes)
      throw new NodusError('MAILBOX_FULL', 'this keeper’s mailbox is full', {
        details: { maxMessages: l.mailboxMaxMessages, maxBytes: l.mailboxMaxBytes },
      })
    // Counted before the write so that concurrent stores cannot overshoot a quota together.
    this.#account(entry.storer, 1, bytes)
    try {
      await db.put(key, { ...entry, msg: Buffer.from(entry.msg.buffer, entry.msg.byteOffset, bytes) })
      await this.#flush()
    } catch (err) {
      this.#account(entry.storer, -1, -bytes)
      throw err
    }
    return 'stored'
  }

  /**
   * Messages kept for `to` that have not expired at `nowMs`, in id order after `after` (hex), until
   * their bytes would pass `maxBytes` (at least one is returned).
   * @returns the entries and whether more remain
   */
  listMailbox(
    to: string,
    options: { after?: string | undefined; maxBytes: number; nowMs: number },
  ): { entries: MailboxEntry[]; more: boolean } {
    const db = this.#db(this.#mailbox)
    const entries: MailboxEntry[] = []
    let bytes = 0
    const start: MailboxKey = [to, options.after ?? '']
    for (const { key, value } of db.getRange({ start, end: [to, '\uffff'] })) {
      const k = key as MailboxKey
      if (k[1] === options.after) continue
      const e = value as MailboxEntry
      if (e.expiresAtMs <= options.nowMs) continue
      if (entries.length > 0 && bytes + e.msg.byteLength > options.maxBytes) return { entries, more: true }
      bytes += e.msg.byteLength
      entries.push({ ...e, msg: new Uint8Array(e.msg) })
    }
    return { entries, more: false }
  }

  /** Remove the messages for `to` with these ids (hex). @returns how many were there */
  async removeMailbox(to: string, ids: readonly string[]): Promise<number> {
    const db = this.#db(this.#mailbox)
    const gone: MailboxEntry[] = []
    await db.transaction(() => {
      for (const id of ids) {
        const key: MailboxKey = [to, id]
        const e = db.get(key) as MailboxEntry | undefined
        if (e === undefined) continue
        db.remove(key)
        gone.push(e)
      }
    })
    for (const e of gone) this.#account(e.storer, -1, -e.msg.byteLength)
    if (gone.length > 0) await this.#flush()
    return gone.length
  }

  /** Remove every message expired at `nowMs`. @returns how many */
  async expireMailbox(nowMs: number): Promise<number> {
    const db = this.#db(this.#mailbox)
    const expired: { key: MailboxKey; e: MailboxEntry }[] = []
    for (const { key, value } of db.getRange()) {
      const e = value as MailboxEntry
      if (e.expiresAtMs <= nowMs) expired.push({ key: key as MailboxKey, e })
    }
    if (expired.length === 0) return 0
    await db.transaction(() => {
      for (const { key } of expired) db.remove(key)
    })
    for (const { e } of expired) this.#account(e.storer, -1, -e.msg.byteLength)
    await this.#flush()
    return expired.length
  }

  // ---- key epochs ----

  /** Every key epoch recorded, ascending. */
  keyEpochs(): KeyEpoch[] {
    const out: KeyEpoch[] = []
    for (const { value } of this.#db(this.#keys).getRange()) out.push(value as KeyEpoch)
    return out.sort((a, b) => a.epoch - b.epoch)
  }

  /** Record (or update) a key epoch, durably. */
  async putKeyEpoch(k: KeyEpoch): Promise<void> {
    await this.#db(this.#keys).put(k.epoch, k)
    await this.#flush()
  }

  /** Forget a key epoch. */
  async removeKeyEpoch(epoch: number): Promise<void> {
    await this.#db(this.#keys).remove(epoch)
    await this.#flush()
  }

  async close(): Promise<void> {
    const root = this.#root
    this.#root = undefined
    this.#inbox = undefined
    this.#ids = undefined
    this.#mailbox = undefined
    this.#keys = undefined
    await root?.close()
  }
}
