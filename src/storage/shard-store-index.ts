/**
 * The LMDB index behind {@link ShardStore}: one record per stored shard plus usage counters.
 *
 * Layout (LMDB environment at `<dir>/index`; keys are strings in lmdb-js ordered-binary encoding, i.e. their
 * UTF-8 bytes; values are fixed-size big-endian binary so the format does not depend on a serializer):
 * - database `shards`: key = CID string (base32), value = 16 bytes: uint64 size, uint64 storedAt (ms)
 * - database `meta`:   `formatVersion` = 4 bytes: uint32 (1); `usage` = 16 bytes: uint64 bytes, uint64 shards
 *
 * Every add/remove updates the record and the usage counters in one write transaction, and resolves only
 * once that transaction is flushed to disk.
 */

import { type Database, open, type RootDatabase } from 'lmdb'
import { NodusError } from '../common/errors.ts'

/** One shard's index entry. */
export interface ShardIndexRecord {
  /** Shard length in bytes. */
  size: number
  /** When the shard became visible, in ms since the Unix epoch. */
  storedAt: number
}

/** Usage counters kept in the index. */
export interface ShardIndexUsage {
  /** Sum of the sizes of all indexed shards, in bytes. */
  bytes: number
  /** Number of indexed shards. */
  shards: number
}

/** Version of the on-disk index format this code reads and writes. */
export const SHARD_INDEX_FORMAT_VERSION = 1

const FORMAT_KEY = 'formatVersion'
const USAGE_KEY = 'usage'

/** Two unsigned integers (each < 2^53) as 16 bytes: big-endian uint64, uint64. */
function encodePair(a: number, b: number): Uint8Array {
  const out = new Uint8Array(16)
  const view = new DataView(out.buffer)
  view.setBigUint64(0, BigInt(a))
  view.setBigUint64(8, BigInt(b))
  return out
}

function decodePair(value: unknown): [number, number] | undefined {
  if (!(value instanceof Uint8Array) || value.byteLength !== 16) return undefined
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength)
  return [Number(view.getBigUint64(0)), Number(view.getBigUint64(8))]
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

function toRecord(value: unknown): ShardIndexRecord | undefined {
  const pair = decodePair(value)
  return pair === undefined ? undefined : { size: pair[0], storedAt: pair[1] }
}

function toUsage(value: unknown): ShardIndexUsage {
  const pair = decodePair(value)
  return pair === undefined ? { bytes: 0, shards: 0 } : { bytes: pair[0], shards: pair[1] }
}

/**
 * The shard index. Single writer: one process, one {@link ShardIndex} per LMDB path.
 * Reads are synchronous (LMDB is memory-mapped); writes are async transactions.
 */
export class ShardIndex {
  readonly #root: RootDatabase<unknown, string>
  readonly #shards: Database<unknown, string>
  readonly #meta: Database<unknown, string>

  private constructor(root: RootDatabase<unknown, string>) {
    this.#root = root
    this.#shards = root.openDB<unknown, string>({ name: 'shards', encoding: 'binary' })
    this.#meta = root.openDB<unknown, string>({ name: 'meta', encoding: 'binary' })
  }

  /**
   * Open (creating if needed) the index at `path` (a directory holding data.mdb and lock.mdb).
   * Throws CONFIG_INVALID when the index was written in an unknown format version (e.g. by a newer nodus).
   */
  static async open(path: string): Promise<ShardIndex> {
    // Durability: lmdb-js enables `overlappingSync` by default on Linux/macOS, so a write promise resolves
    // when the transaction is committed (visible), before it is flushed. We therefore await `flushed` after
    // every write; see add()/remove(). `noSync` is never set.
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
    if (stored === undefined) {
      await this.#root.transaction(() => {
        void this.#meta.put(FORMAT_KEY, encodeVersion(SHARD_INDEX_FORMAT_VERSION))
        if (this.#meta.get(USAGE_KEY) === undefined) void this.#meta.put(USAGE_KEY, encodePair(0, 0))
      })
      await this.#root.flushed
    } else if (version !== SHARD_INDEX_FORMAT_VERSION) {
      throw new NodusError('CONFIG_INVALID', `shard index at ${path} has unsupported format version`, {
        details: { path, formatVersion: version, supported: SHARD_INDEX_FORMAT_VERSION },
      })
    }
  }

  /** The record for `cid` (CID string), or undefined. */
  get(cid: string): ShardIndexRecord | undefined {
    return toRecord(this.#shards.get(cid))
  }

  /** Usage counters as last committed. O(1): read from the `meta` database, never computed by scanning. */
  usage(): ShardIndexUsage {
    return toUsage(this.#meta.get(USAGE_KEY))
  }

  /**
   * Insert `record` under `cid` and add it to the usage counters, in one transaction; resolves after the
   * transaction is flushed to disk. Resolves false (and changes nothing) when `cid` is already indexed.
   */
  async add(cid: string, record: ShardIndexRecord): Promise<boolean> {
    const created = await this.#root.transaction(() => {
      if (this.#shards.get(cid) !== undefined) return false
      const usage = this.usage()
      void this.#shards.put(cid, encodePair(record.size, record.storedAt))
      void this.#meta.put(USAGE_KEY, encodePair(usage.bytes + record.size, usage.shards + 1))
      return true
    })
    await this.#root.flushed
    return created
  }

  /**
   * Remove `cid` and subtract it from the usage counters, in one transaction; resolves after the flush.
   * Resolves to the removed record, or undefined when `cid` was not indexed.
   */
  async remove(cid: string): Promise<ShardIndexRecord | undefined> {
    const removed = await this.#root.transaction(() => {
      const record = toRecord(this.#shards.get(cid))
      if (record === undefined) return undefined
      const usage = this.usage()
      void this.#shards.remove(cid)
      void this.#meta.put(
        USAGE_KEY,
        encodePair(Math.max(0, usage.bytes - record.size), Math.max(0, usage.shards - 1)),
      )
      return record
    })
    await this.#root.flushed
    return removed
  }

  /** Up to `limit` records ordered by CID string, starting after `after` (exclusive) when given. */
  list(limit: number, after?: string): Array<{ cid: string; record: ShardIndexRecord }> {
    const range =
      after === undefined
        ? this.#shards.getRange({ limit })
        : this.#shards.getRange({ start: after, exclusiveStart: true, limit })
    const out: Array<{ cid: string; record: ShardIndexRecord }> = []
    for (const { key, value } of range) {
      const record = toRecord(value)
      if (record !== undefined) out.push({ cid: key, record })
    }
    return out
  }

  /** Wait for pending writes, then close the environment. */
  async close(): Promise<void> {
    await this.#root.close()
  }
}
