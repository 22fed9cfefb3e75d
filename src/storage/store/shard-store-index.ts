/**
 * The LMDB index behind {@link ShardStore}: one record per stored shard, an expiry index and usage counters.
 *
 * Layout (LMDB environment at `<dir>/index`; values are fixed-size big-endian binary so the format does not
 * depend on a serializer):
 * - database `shards`: key = CID string (base32; lmdb-js ordered-binary, i.e. its UTF-8 bytes), value =
 *   16 bytes `uint64 size, uint64 storedAt` (no expiry) or 24 bytes `uint64 size, uint64 storedAt,
 *   uint64 expiresAt` (all ms since the Unix epoch)
 * - database `expiry`: key = 8 bytes `uint64 expiresAt` (big-endian, so keys sort by time) followed by the
 *   CID string's ASCII bytes, value = empty; one entry per record that has an expiry, none for the others
 * - database `meta`: `formatVersion` = uint32 (2); `usage` = 16 bytes `uint64 bytes, uint64 shards`
 *
 * Format 1 (no expiry) is format 2 without `expiry` entries and with 16-byte records only; open() upgrades
 * it in place by writing the new version number (a format-1 reader would misread 24-byte records, hence
 * the bump).
 *
 * Every write changes the record, its expiry entry and the usage counters in one transaction, and resolves
 * only once that transaction is flushed to disk. Writes issued while a commit is in progress are batched by
 * lmdb-js into the next transaction, so concurrent writers share one commit and one flush (group commit).
 */

import { type Database, open, type RootDatabase } from 'lmdb'
import type { CID } from 'multiformats/cid'
import { NodusError } from '../../common/errors.ts'

/** One shard's index entry. */
export interface ShardIndexRecord {
  /** Shard length in bytes. */
  size: number
  /** When the shard became visible, in ms since the Unix epoch. */
  storedAt: number
  /** When the shard may be deleted, in ms since the Unix epoch; absent = never. */
  expiresAt?: number
}

/** Usage counters kept in the index. */
export interface ShardIndexUsage {
  /** Sum of the sizes of all indexed shards, in bytes. */
  bytes: number
  /** Number of indexed shards. */
  shards: number
}

/** One entry of the expiry index, as returned by {@link ShardIndex.expired}. */
export interface ExpiryEntry {
  cid: string
  expiresAt: number
  /** The raw expiry-index key, to resume a scan after this entry. */
  key: Uint8Array
}

/** What {@link ShardIndex.reconcile} found and fixed. */
export interface ReconcileResult {
  /** Usage recomputed from the records left in the index. */
  usage: ShardIndexUsage
  /** True when the stored counters, less the lost records, differed from the recomputed usage. */
  countersCorrected: boolean
  /** True when the expiry index disagreed with the records and was rebuilt. */
  expiryRebuilt: boolean
}

/** Version of the on-disk index format this code writes. */
export const SHARD_INDEX_FORMAT_VERSION = 2
/** Older versions open() upgrades in place. */
const UPGRADABLE_VERSIONS: readonly number[] = [1]

const FORMAT_KEY = 'formatVersion'
const USAGE_KEY = 'usage'
const EMPTY = new Uint8Array(0)

/** The later of two expiries, where `undefined` (never) is later than any time. */
export function laterExpiry(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : Math.max(a, b)
}

function encodeUints(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(8 * values.length)
  const view = new DataView(out.buffer)
  for (const [i, v] of values.entries()) view.setBigUint64(8 * i, BigInt(v))
  return out
}

function decodeUints(value: unknown, counts: readonly number[]): number[] | undefined {
  if (!(value instanceof Uint8Array) || !counts.includes(value.byteLength / 8)) return undefined
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength)
  const out: number[] = []
  for (let at = 0; at < value.byteLength; at += 8) out.push(Number(view.getBigUint64(at)))
  return out
}

function encodeRecord(record: ShardIndexRecord): Uint8Array {
  return record.expiresAt === undefined
    ? encodeUints([record.size, record.storedAt])
    : encodeUints([record.size, record.storedAt, record.expiresAt])
}

function decodeRecord(value: unknown): ShardIndexRecord | undefined {
  const v = decodeUints(value, [2, 3])
  if (v === undefined) return undefined
  const [size = 0, storedAt = 0, expiresAt] = v
  return expiresAt === undefined ? { size, storedAt } : { size, storedAt, expiresAt }
}

function decodeUsage(value: unknown): ShardIndexUsage {
  const [bytes = 0, shards = 0] = decodeUints(value, [2]) ?? []
  return { bytes, shards }
}

function encodeVersion(version: number): Uint8Array {
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, version)
  return out
}

function decodeVersion(value: unknown): number | undefined {
  if (!(value instanceof Uint8Array) || value.byteLength !== 4) return undefined
  return new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(0)
}

/** Expiry-index key: uint64 BE `expiresAt`, then the CID's ASCII bytes. */
function expiryKey(expiresAt: number, cid: string): Uint8Array {
  const out = new Uint8Array(8 + cid.length)
  new DataView(out.buffer).setBigUint64(0, BigInt(expiresAt))
  for (let i = 0; i < cid.length; i++) out[8 + i] = cid.charCodeAt(i)
  return out
}

function decodeExpiryKey(key: unknown): ExpiryEntry | undefined {
  if (!(key instanceof Uint8Array) || key.byteLength <= 8) return undefined
  const expiresAt = Number(new DataView(key.buffer, key.byteOffset, 8).getBigUint64(0))
  return { cid: String.fromCharCode(...key.subarray(8)), expiresAt, key: new Uint8Array(key) }
}

/**
 * The shard index. Single writer: one process, one {@link ShardIndex} per LMDB path.
 * Reads are synchronous (LMDB is memory-mapped); writes are async transactions, resolved once flushed.
 */
export class ShardIndex {
  readonly #root: RootDatabase<unknown, string>
  readonly #shards: Database<unknown, string>
  readonly #expiry: Database<unknown, Uint8Array>
  readonly #meta: Database<unknown, string>

  private constructor(root: RootDatabase<unknown, string>) {
    this.#root = root
    this.#shards = root.openDB<unknown, string>({ name: 'shards', encoding: 'binary' })
    this.#expiry = root.openDB<unknown, Uint8Array>({
      name: 'expiry',
      encoding: 'binary',
      keyEncoding: 'binary',
    })
    this.#meta = root.openDB<unknown, string>({ name: 'meta', encoding: 'binary' })
  }

  /**
   * Open (creating if needed) the index at `path` (a directory holding data.mdb and lock.mdb), upgrading a
   * format-1 index in place. Throws CONFIG_INVALID when the index was written in an unknown format version
   * (e.g. by a newer nodus).
   */
  static async open(path: string): Promise<ShardIndex> {
    // Durability: lmdb-js enables `overlappingSync` by default on Linux/macOS, so a write promise resolves
    // when the transaction is committed (visible), before it is flushed. Every write therefore also waits
    // for the flush of the batch it joined; see #write(). `noSync` is never set.
    const root = open<unknown, string>({ path, maxDbs: 4 })
    const index = new ShardIndex(root)
    try {
      await index.#init(path)
    } catch (err) {
      await root.close()
      throw err
    }
    return index
  }

  async #init(path: string): Promise<void> {
    const stored = this.#meta.get(FORMAT_KEY)
    const version = decodeVersion(stored)
    if (stored === undefined || (version !== undefined && UPGRADABLE_VERSIONS.includes(version))) {
      await this.#write(() => {
        void this.#meta.put(FORMAT_KEY, encodeVersion(SHARD_INDEX_FORMAT_VERSION))
        if (this.#meta.get(USAGE_KEY) === undefined) void this.#meta.put(USAGE_KEY, encodeUints([0, 0]))
      })
    } else if (version !== SHARD_INDEX_FORMAT_VERSION) {
      throw new NodusError('CONFIG_INVALID', `shard index at ${path} has unsupported format version`, {
        details: { path, formatVersion: version, supported: SHARD_INDEX_FORMAT_VERSION },
      })
    }
  }

  /**
   * Run `fn` in a write transaction and resolve with its result once the transaction is flushed.
   * The flush promise is taken in the same turn as the transaction is queued, so it is the flush of the
   * batch this write joined, not of a later batch (which would make a writer wait for writes queued after
   * it under sustained load).
   */
  async #write<T>(fn: () => T): Promise<T> {
    const committed = this.#root.transaction(fn)
    const flushed = new Promise<void>((resolve, reject) => {
      this.#root.flushed.then(() => resolve(), reject)
    })
    const result = await committed
    await flushed
    return result
  }

  /** The record for `cid` (CID string), or undefined. */
  get(cid: string): ShardIndexRecord | undefined {
    return decodeRecord(this.#shards.get(cid))
  }

  /** Usage counters as last committed. O(1): read from the `meta` database, never computed by scanning. */
  usage(): ShardIndexUsage {
    return decodeUsage(this.#meta.get(USAGE_KEY))
  }

  /** Within a write transaction: replace `old`'s expiry entry by `next`'s. */
  #moveExpiry(cid: string, old: number | undefined, next: number | undefined): void {
    if (old === next) return
    if (old !== undefined) void this.#expiry.remove(expiryKey(old, cid))
    if (next !== undefined) void this.#expiry.put(expiryKey(next, cid), EMPTY)
  }

  /** Within a write transaction: remove `cid`'s record and expiry entry and subtract it from usage. */
  #removeIn(cid: string, record: ShardIndexRecord): void {
    const usage = this.usage()
    void this.#shards.remove(cid)
    this.#moveExpiry(cid, record.expiresAt, undefined)
    void this.#meta.put(
      USAGE_KEY,
      encodeUints([Math.max(0, usage.bytes - record.size), Math.max(0, usage.shards - 1)]),
    )
  }

  /**
   * Insert `record` under `cid` (with its expiry entry) and add it to the usage counters, in one transaction;
   * resolves after the flush. When `cid` is already indexed, only extends its expiry (see
   * {@link extendExpiry}) and resolves false.
   */
  async add(cid: string, record: ShardIndexRecord): Promise<boolean> {
    return this.#write(() => {
      const current = decodeRecord(this.#shards.get(cid))
      if (current !== undefined) {
        this.#extendIn(cid, current, record.expiresAt)
        return false
      }
      const usage = this.usage()
      void this.#shards.put(cid, encodeRecord(record))
      this.#moveExpiry(cid, undefined, record.expiresAt)
      void this.#meta.put(USAGE_KEY, encodeUints([usage.bytes + record.size, usage.shards + 1]))
      return true
    })
  }

  #extendIn(cid: string, current: ShardIndexRecord, expiresAt: number | undefined): boolean {
    const next = laterExpiry(current.expiresAt, expiresAt)
    if (next === current.expiresAt) return false
    const base = { size: current.size, storedAt: current.storedAt }
    void this.#shards.put(cid, encodeRecord(next === undefined ? base : { ...base, expiresAt: next }))
    this.#moveExpiry(cid, current.expiresAt, next)
    return true
  }

  /**
   * Set `cid`'s expiry to the later of its current one and `expiresAt` (`undefined` = never, later than any
   * time), in one transaction with its expiry entry. Resolves 'absent' when `cid` is not indexed,
   * 'unchanged' when the expiry stays as it was (no write is made), 'extended' after the flush otherwise.
   */
  async extendExpiry(
    cid: string,
    expiresAt: number | undefined,
  ): Promise<'absent' | 'unchanged' | 'extended'> {
    const seen = this.get(cid)
    if (seen === undefined) return 'absent'
    if (laterExpiry(seen.expiresAt, expiresAt) === seen.expiresAt) return 'unchanged'
    return this.#write(() => {
      const current = decodeRecord(this.#shards.get(cid))
      if (current === undefined) return 'absent'
      return this.#extendIn(cid, current, expiresAt) ? 'extended' : 'unchanged'
    })
  }

  /**
   * Remove `cid` (record and expiry entry) and subtract it from the usage counters, in one transaction;
   * resolves after the flush to the removed record, or undefined when `cid` was not indexed.
   */
  async remove(cid: string): Promise<ShardIndexRecord | undefined> {
    return this.#write(() => {
      const record = decodeRecord(this.#shards.get(cid))
      if (record !== undefined) this.#removeIn(cid, record)
      return record
    })
  }

  /**
   * Like {@link remove}, but only when `cid` still has an expiry at or before `now` (ms since the epoch)
   * when the transaction runs: a concurrent extension wins. Resolves to the removed record or undefined.
   */
  async removeIfExpired(cid: string, now: number): Promise<ShardIndexRecord | undefined> {
    return this.#write(() => {
      const record = decodeRecord(this.#shards.get(cid))
      if (record?.expiresAt === undefined || record.expiresAt > now) return undefined
      this.#removeIn(cid, record)
      return record
    })
  }

  /**
   * Up to `limit` expiry entries with `expiresAt <= now`, oldest first (ties in CID order), starting after
   * the raw key `after` when given. One B-tree range read: O(log n + limit).
   */
  expired(now: number, limit: number, after?: Uint8Array): ExpiryEntry[] {
    const end = encodeUints([now + 1])
    const range =
      after === undefined
        ? this.#expiry.getRange({ end, limit })
        : this.#expiry.getRange({ start: after, exclusiveStart: true, end, limit })
    const out: ExpiryEntry[] = []
    for (const { key } of range) {
      const entry = decodeExpiryKey(key)
      if (entry !== undefined) out.push(entry)
    }
    return out
  }

  /** Up to `limit` records ordered by CID string, starting after `after` (exclusive) when given. */
  list(limit: number, after?: string): Array<{ cid: string; record: ShardIndexRecord }> {
    const range =
      after === undefined
        ? this.#shards.getRange({ limit })
        : this.#shards.getRange({ start: after, exclusiveStart: true, limit })
    const out: Array<{ cid: string; record: ShardIndexRecord }> = []
    for (const { key, value } of range) {
      const record = decodeRecord(value)
      if (record !== undefined) out.push({ cid: key, record })
    }
    return out
  }

  /** Number of records, counted by scanning the index: O(n), for the recovery pass only. */
  countRecords(): number {
    return this.#shards.getCount()
  }

  /** Every record in CID order (a scan: for the recovery pass only). */
  *records(): Generator<{ cid: string; record: ShardIndexRecord }> {
    for (const { key, value } of this.#shards.getRange({})) {
      const record = decodeRecord(value)
      if (record !== undefined) yield { cid: key, record }
    }
  }

  /**
   * Recovery: in one transaction, remove the records of `lost` CIDs (and their expiry entries), then
   * recompute the usage counters from the records left by scanning them, and rebuild the expiry index if
   * it disagrees with the records. Resolves after the flush. This is the only code that scans the index.
   */
  async reconcile(lost: readonly string[]): Promise<ReconcileResult> {
    return this.#write(() => {
      const stored = this.usage()
      for (const cid of lost) {
        const record = decodeRecord(this.#shards.get(cid))
        if (record === undefined) continue
        void this.#shards.remove(cid)
        this.#moveExpiry(cid, record.expiresAt, undefined)
        stored.bytes -= record.size
        stored.shards -= 1
      }
      let bytes = 0
      let shards = 0
      let withExpiry = 0
      let expiryMissing = false
      for (const { key, value } of this.#shards.getRange({})) {
        const record = decodeRecord(value)
        if (record === undefined) continue
        bytes += record.size
        shards++
        if (record.expiresAt !== undefined) {
          withExpiry++
          if (!expiryMissing && this.#expiry.get(expiryKey(record.expiresAt, key)) === undefined) {
            expiryMissing = true
          }
        }
      }
      const expiryRebuilt = expiryMissing || this.#expiry.getCount() !== withExpiry
      if (expiryRebuilt) {
        // Collect before writing: no cursor is iterated while its database changes.
        const stale = [...this.#expiry.getKeys({})]
        for (const key of stale) void this.#expiry.remove(key)
        const wanted: Uint8Array[] = []
        for (const { key, value } of this.#shards.getRange({})) {
          const record = decodeRecord(value)
          if (record?.expiresAt !== undefined) wanted.push(expiryKey(record.expiresAt, key))
        }
        for (const key of wanted) void this.#expiry.put(key, EMPTY)
      }
      void this.#meta.put(USAGE_KEY, encodeUints([bytes, shards]))
      const countersCorrected = stored.bytes !== bytes || stored.shards !== shards
      return { usage: { bytes, shards }, countersCorrected, expiryRebuilt }
    })
  }

  /** Wait for pending writes, then close the environment (lmdb-js flushes on close). */
  async close(): Promise<void> {
    await this.#root.close()
  }
}

/** Multihash code of BLAKE3-256 (multicodec table: `blake3`, 0x1e). */
const BLAKE3_CODE = 0x1e
/** Length of a BLAKE3-256 digest in bytes. */
const DIGEST_BYTES = 32

/** The store's key for `cid` (its base32 string); throws CID_INVALID unless CIDv1 with a BLAKE3-256 multihash. */
export function cidKey(cid: CID): string {
  if (
    cid.version !== 1 ||
    cid.multihash.code !== BLAKE3_CODE ||
    cid.multihash.digest.byteLength !== DIGEST_BYTES
  ) {
    throw new NodusError('CID_INVALID', 'shard CID must be CIDv1 with a BLAKE3-256 (0x1e) multihash', {
      details: { cid: cid.toString(), version: cid.version, multihashCode: cid.multihash.code },
    })
  }
  return cid.toString()
}
