/**
 * Where direct messages rest on disk: one LMDB environment at `<dataDir>/messages` with six
 * databases, every write committed and flushed to disk (the commit, then `flushed`) before the peer
 * that sent it is acknowledged.
 *
 * - `inbox`: this node's opened messages, key `[receivedAtMs, id hex]` (so listing is in arrival
 *   order), value {@link InboxMessage}; `ids`: id hex → inbox key. At most `maxInboxMessages`; beyond
 *   it `full` (`INBOX_FULL`).
 * - `seen` and `meta`: the replay window (replay-store.ts), id hex → when it may be forgotten, and
 *   its floor. Every message taken into the inbox is remembered there in the same commit, and stays
 *   remembered after it is deleted from the inbox and across restarts; at most `replayWindowIds` ids
 *   (when full, the id that expires first is forgotten and the floor rises to its expiry: anything
 *   expiring by then is refused as `below-floor`). A message refused (`full`, or a failed write) is not
 *   remembered.
 * - `mailbox`: sealed messages kept for others as a keeper, key `[recipient PeerId, id hex]` where
 *   `id` is BLAKE3-256 of the sealed bytes, value `{ storer, storedAtMs, expiresAtMs, msg }`. Bounded
 *   per storing peer (count and bytes: `QUOTA_EXCEEDED`), per recipient (`MAILBOX_RECIPIENT_FULL`) and
 *   in all (`MAILBOX_FULL`); the usage is rebuilt by one scan on open.
 * - `keys`: this node's X-Wing key epochs, epoch → `{ createdAtMs, retiredAtMs }` (the key files
 *   themselves are in `<dataDir>/keys/`, src/crypto/xwing-keys.ts).
 *
 * Group commit: the inbox writes of one call are plain puts issued in one turn of the event loop, which
 * lmdb-js commits as one transaction, and calls from concurrent deliveries that reach its write thread
 * while a commit is running share the next one (and its flush). docs/BENCHMARKS.md, "direct".
 */
import { type Database, open, type RootDatabase } from 'lmdb'
import { NodusError } from '../common/errors.ts'
import type { ReplayVerdict } from '../crypto/index.ts'
import { StoredReplayWindow } from './replay-store.ts'

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

/** A message for {@link DirectStore.addMessages}: opened, and when its id may leave the replay window. */
export interface NewInboxMessage {
  m: InboxMessage
  /** ms since the Unix epoch: the first at which the message is refused as stale (`replayExpiryMs`). */
  expiresAtMs: number
}

/**
 * What {@link DirectStore.addMessages} did with a message: `added` (stored and remembered); `seen` or
 * `below-floor` (its id was taken before or may have been: a replay, or a copy from another keeper);
 * `full` (the inbox holds `maxInboxMessages`; not remembered, so it is taken when there is room).
 */
export type InboxAdd = 'added' | Exclude<ReplayVerdict, 'fresh'> | 'full'

/** Bounds of the stores (the `messaging.*` keys). */
export interface DirectStoreLimits {
  maxInboxMessages: number
  /** Message ids remembered against replays (`messaging.replayWindowIds`). */
  replayWindowIds: number
  mailboxMaxMessages: number
  mailboxMaxBytes: number
  mailboxSenderMessages: number
  mailboxSenderBytes: number
  /** Sealed messages and bytes kept for one recipient, all storers together. */
  mailboxRecipientMessages: number
  mailboxRecipientBytes: number
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
  /** The replay window (`seen`, `meta`), rebuilt on open; decides what is a replay. */
  #replay: StoredReplayWindow | undefined
  /** Messages in the inbox, and those being written (counted before the write, so the bound holds under concurrency). */
  #inboxCount = 0
  readonly #byStorer = new Map<string, Usage>()
  readonly #byRecipient = new Map<string, Usage>()
  readonly #total: Usage = { count: 0, bytes: 0 }
  /** Mailbox entries (`to/id`) being written: a second store of the same bytes meanwhile is a duplicate. */
  readonly #writing = new Set<string>()

  /** @param path the LMDB environment's directory (`<dataDir>/messages`) */
  constructor(path: string, limits: DirectStoreLimits) {
    this.#path = path
    this.#limits = limits
  }

  /** Open the environment, rebuild the replay window (one scan of `seen`) and the usage counters (one scan of the mailbox). */
  open(): void {
    if (this.#root !== undefined) return
    const root = open({ path: this.#path, encoding: 'msgpack' })
    this.#root = root
    const db = (name: string): Database => root.openDB({ name, encoding: 'msgpack' })
    const inbox = db('inbox')
    const mailbox = db('mailbox')
    this.#inbox = inbox
    this.#ids = db('ids')
    this.#mailbox = mailbox
    this.#keys = db('keys')
    this.#inboxCount = inbox.getKeysCount()
    this.#replay = new StoredReplayWindow(db('seen'), db('meta'), this.#limits.replayWindowIds)

    this.#byStorer.clear()
    this.#byRecipient.clear()
    this.#total.count = 0
    this.#total.bytes = 0
    for (const { key, value } of mailbox.getRange()) {
      const e = value as MailboxEntry
      this.#account(e.storer, (key as MailboxKey)[0], 1, e.msg.byteLength)
    }
  }

  #db<D extends Database | StoredReplayWindow>(db: D | undefined): D {
    if (db === undefined) throw new NodusError('STORE_CLOSED', 'the direct message store is closed')
    return db
  }

  async #flush(): Promise<void> {
    await this.#db(this.#root).flushed
  }

  #account(storer: string, to: string, count: number, bytes: number): void {
    add(this.#byStorer, storer, count, bytes)
    add(this.#byRecipient, to, count, bytes)
    this.#total.count += count
    this.#total.bytes += bytes
  }

  // ---- inbox ----

  /** Messages in the inbox (and being written to it). */
  get inboxCount(): number {
    return this.#inboxCount
  }

  /** Is a message with this id (hex) in the inbox? */
  hasMessage(id: string): boolean {
    return this.#db(this.#ids).doesExist(id)
  }

  /**
   * Store `m` in the inbox and remember its id against replays, durably.
   * @param nowMs this node's clock, ms since the Unix epoch
   * @returns `added`, or why not: `seen` / `below-floor` (a replay)
   * @throws NodusError `INBOX_FULL`, `STORE_CLOSED`, what LMDB throws
   */
  async addMessage(m: InboxMessage, expiresAtMs: number, nowMs: number): Promise<Exclude<InboxAdd, 'full'>> {
    const [r] = await this.addMessages([{ m, expiresAtMs }], nowMs)
    if (r === 'full')
      throw new NodusError('INBOX_FULL', `the inbox holds ${this.#inboxCount} messages`, {
        details: { maxMessages: this.#limits.maxInboxMessages },
      })
    return r ?? 'added'
  }

  /**
   * Store messages in the inbox, each unless the replay window holds its id (or may have: below its
   * floor) or the inbox is full, and remember the stored ids; one commit and one flush for all (the
   * group commit). The window decides at once, in order: a copy of an id being written by a concurrent
   * call is `seen`. When the write fails, the ids are taken back (not remembered) and it throws.
   * @param nowMs this node's clock, ms since the Unix epoch
   * @returns per message, in order: {@link InboxAdd}
   * @throws NodusError `STORE_CLOSED`, what LMDB throws
   */
  async addMessages(items: readonly NewInboxMessage[], nowMs: number): Promise<InboxAdd[]> {
    const replay = this.#db(this.#replay)
    const inbox = this.#db(this.#inbox)
    const ids = this.#db(this.#ids)
    const out: InboxAdd[] = []
    const taken: NewInboxMessage[] = []
    for (const it of items) {
      const verdict = replay.check(it.m.id, it.expiresAtMs, nowMs)
      if (verdict !== 'fresh') out.push(verdict)
      else if (this.#inboxCount >= this.#limits.maxInboxMessages) out.push('full')
      else {
        replay.add(it.m.id, it.expiresAtMs, nowMs)
        this.#inboxCount++
        taken.push(it)
        out.push('added')
      }
    }
    if (taken.length === 0) return out
    try {
      await replay.commit(
        () =>
          taken.flatMap(({ m }) => {
            const key: InboxKey = [m.receivedAtMs, m.id]
            const body = Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength)
            return [inbox.put(key, { ...m, body }), ids.put(m.id, key)]
          }),
        // (An id already expired is not held by the window: nothing to remember.)
        taken.filter((t) => t.expiresAtMs > nowMs).map(({ m, expiresAtMs }) => ({ id: m.id, expiresAtMs })),
        () => this.#flush(),
      )
    } catch (err) {
      this.#inboxCount -= taken.length
      throw err
    }
    return out
  }

  /**
   * Forget the message ids expired by `nowMs`, in memory and on disk, durably (the keeper's round).
   * @returns how many ids were deleted from disk
   */
  pruneReplay(nowMs: number): Promise<number> {
    return this.#db(this.#replay).prune(nowMs, () => this.#flush())
  }

  /** The replay window: ids it holds, ids on disk (the same after a commit, but for ids expired since) and its floor (ms, −∞: none). */
  replayState(): { ids: number; storedIds: number; floorMs: number } {
    return this.#db(this.#replay).state()
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

  /** What is kept here for `to` now, all storers together. */
  recipientUsage(to: string): Readonly<Usage> {
    return { ...(this.#byRecipient.get(to) ?? { count: 0, bytes: 0 }) }
  }

  /**
   * Keep `entry` for `to`, durably, within the bounds, checked in this order.
   * @returns `stored`, or `duplicate` when the same sealed bytes are kept (or being written) for `to`
   * @throws NodusError `QUOTA_EXCEEDED` (the storer's count or bytes, `details.limit` `storer`),
   *   `MAILBOX_RECIPIENT_FULL` (what is kept for `to`), `MAILBOX_FULL` (the totals), each peerAction
   *   `ignore`; `STORE_CLOSED`
   */
  async putMailbox(to: string, entry: MailboxEntry): Promise<MailboxPut> {
    const db = this.#db(this.#mailbox)
    const key: MailboxKey = [to, entry.id]
    const pending = `${to}/${entry.id}`
    if (this.#writing.has(pending) || db.doesExist(key)) return 'duplicate'
    const bytes = entry.msg.byteLength
    const l = this.#limits
    const over = (u: Usage | undefined, maxMessages: number, maxBytes: number): boolean =>
      u !== undefined && (u.count + 1 > maxMessages || u.bytes + bytes > maxBytes)
    const mine = this.#byStorer.get(entry.storer)
    if (over(mine, l.mailboxSenderMessages, l.mailboxSenderBytes))
      throw new NodusError('QUOTA_EXCEEDED', 'this peer already has its quota of messages at this keeper', {
        peerAction: 'ignore',
        details: {
          limit: 'storer',
          count: mine?.count,
          bytes: mine?.bytes,
          maxMessages: l.mailboxSenderMessages,
          maxBytes: l.mailboxSenderBytes,
        },
      })
    const theirs = this.#byRecipient.get(to)
    if (over(theirs, l.mailboxRecipientMessages, l.mailboxRecipientBytes))
      throw new NodusError('MAILBOX_RECIPIENT_FULL', 'this keeper holds all it keeps for this recipient', {
        peerAction: 'ignore',
        details: {
          count: theirs?.count,
          bytes: theirs?.bytes,
          maxMessages: l.mailboxRecipientMessages,
          maxBytes: l.mailboxRecipientBytes,
        },
      })
    if (over(this.#total, l.mailboxMaxMessages, l.mailboxMaxBytes))
      throw new NodusError('MAILBOX_FULL', 'this keeper’s mailbox is full', {
        peerAction: 'ignore',
        details: { maxMessages: l.mailboxMaxMessages, maxBytes: l.mailboxMaxBytes },
      })
    // Counted before the write so that concurrent stores cannot overshoot a bound together.
    this.#account(entry.storer, to, 1, bytes)
    this.#writing.add(pending)
    try {
      await db.put(key, { ...entry, msg: Buffer.from(entry.msg.buffer, entry.msg.byteOffset, bytes) })
      await this.#flush()
    } catch (err) {
      this.#account(entry.storer, to, -1, -bytes)
      throw err
    } finally {
      this.#writing.delete(pending)
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
    for (const e of gone) this.#account(e.storer, to, -1, -e.msg.byteLength)
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
    for (const { key, e } of expired) this.#account(e.storer, key[0], -1, -e.msg.byteLength)
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
    this.#replay = undefined
    await root?.close()
  }
}

/** Add `count` and `bytes` to `key`'s usage in `map`, deleting it once empty. */
function add(map: Map<string, Usage>, key: string, count: number, bytes: number): void {
  const u = map.get(key) ?? { count: 0, bytes: 0 }
  u.count += count
  u.bytes += bytes
  if (u.count <= 0) map.delete(key)
  else map.set(key, u)
}
