/**
 * An in-memory shard store: the storage area's `StorageStore` (src/storage/components.ts), so
 * `createStorage` runs on it (test/utils/cluster.ts), and a small fake for the parts' unit tests.
 * It behaves as `ShardStore` (src/storage/store/shard-store.ts) where the area relies on it: puts are
 * checked against the CID and bounded (shard size, capacity), a shard's expiry only grows, cleanup
 * deletes what expired, every removal is reported through `onRemoved`, usage is counted, and after
 * close() operations throw STORE_CLOSED. Not modelled: the disk (recovery, direct I/O, the cache,
 * statfs) and dropping copies found lost or corrupt ({@link MemoryStore.corrupt} makes one). Unlike
 * a ShardStore it is usable before open(): there is nothing to open.
 */
import type { CID } from 'multiformats/cid'
import type { Clock } from '../../src/common/clock.ts'
import { NodusError } from '../../src/common/errors.ts'
import { type RemovalReason, type StorageStore, verifyCid } from '../../src/storage/index.ts'
import { cidKey } from '../../src/storage/store/shard-store-index.ts'

/** Shards {@link MemoryStore.cleanupExpired} deletes per call when no limit is given (as ShardStore). */
const DEFAULT_CLEANUP_LIMIT = 10_000

export interface MemoryStoreDeps {
  /** Source of `storedAt`; default `Date`. */
  clock?: Clock
  /** Called once for every shard that leaves the store (as ShardStoreDeps.onRemoved); must not throw. */
  onRemoved?(cid: string, size: number, reason: RemovalReason): void
}

export interface MemoryStoreOptions {
  /** Stored bytes never exceed this (STORE_FULL), in bytes. Default 1 GiB. */
  capacityBytes?: number
  /** Longer shards are refused (SHARD_TOO_LARGE), in bytes. Default 16 MiB. */
  maxShardBytes?: number
}

interface Entry {
  bytes: Uint8Array
  storedAt: number
  /** ms since the Unix epoch; absent: never expires. */
  expiresAt?: number
}

/** The later of two expiries (ms since the Unix epoch), where undefined (never) is later than any time. */
function later(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : Math.max(a, b)
}

function checkExpiry(expiresAt: number | undefined): void {
  if (expiresAt !== undefined && (!Number.isSafeInteger(expiresAt) || expiresAt < 0))
    throw new NodusError('INVALID_ARGUMENT', 'expiresAt must be a non-negative integer', {
      details: { expiresAt },
    })
}

/** A shard store in memory (see the module comment). Keys are CID strings, as ShardStore's. */
export class MemoryStore implements StorageStore {
  readonly capacityBytes: number
  readonly maxShardBytes: number
  readonly #clock: Clock
  readonly #onRemoved: MemoryStoreDeps['onRemoved']
  readonly #entries = new Map<string, Entry>()
  #bytes = 0
  #closed = false

  constructor(deps: MemoryStoreDeps = {}, options: MemoryStoreOptions = {}) {
    this.#clock = deps.clock ?? Date
    this.#onRemoved = deps.onRemoved
    this.capacityBytes = options.capacityBytes ?? 1 << 30
    this.maxShardBytes = options.maxShardBytes ?? 16 * 1024 * 1024
  }

  /** Usable again after close(), with what it held. Idempotent. */
  async open(): Promise<void> {
    this.#closed = false
  }

  /** Later operations throw STORE_CLOSED until open(). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true
  }

  /** The entry's key; throws STORE_CLOSED after close(), CID_INVALID for a CID that is not ours. */
  #key(cid: CID): string {
    if (this.#closed) throw new NodusError('STORE_CLOSED', 'memory store is closed')
    return cidKey(cid)
  }

  #remove(key: string, reason: RemovalReason): number {
    const e = this.#entries.get(key)
    if (e === undefined) return 0
    this.#entries.delete(key)
    this.#bytes -= e.bytes.byteLength
    try {
      this.#onRemoved?.(key, e.bytes.byteLength, reason)
    } catch {
      // onRemoved must not throw; as ShardStore, ignore it if it does
    }
    return e.bytes.byteLength
  }

  /**
   * Store a copy of `data` under `cid` (ShardStore.put): a shard already stored resolves
   * `{ size, created: false }` without reading `data`, after extending its expiry.
   * @throws NodusError CID_INVALID, CID_MISMATCH, SHARD_TOO_LARGE, STORE_FULL, INVALID_ARGUMENT (bad
   *   expiresAt or expectedSize, or a stream of another length), STORE_CLOSED
   */
  async put(
    cid: CID,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    options: { signal?: AbortSignal; expectedSize?: number; expiresAt?: number } = {},
  ): Promise<{ size: number; created: boolean }> {
    const key = this.#key(cid)
    checkExpiry(options.expiresAt)
    const held = this.#entries.get(key)
    if (held !== undefined) {
      await this.extendExpiry(cid, options.expiresAt)
      return { size: held.bytes.byteLength, created: false }
    }
    const declared = options.expectedSize
    if (declared !== undefined) {
      if (!Number.isSafeInteger(declared) || declared < 0)
        throw new NodusError('INVALID_ARGUMENT', 'expectedSize must be a non-negative integer')
      this.#checkRoom(declared)
    }
    const bytes = data instanceof Uint8Array ? new Uint8Array(data) : await this.#collect(data, options)
    if (declared !== undefined && bytes.byteLength !== declared)
      throw new NodusError('INVALID_ARGUMENT', `got ${bytes.byteLength} bytes, ${declared} declared`)
    verifyCid(cid, bytes)
    // Another put of this CID may have stored it meanwhile (ShardStore writes a CID once).
    const again = this.#entries.get(key)
    if (again !== undefined) {
      await this.extendExpiry(cid, options.expiresAt)
      return { size: again.bytes.byteLength, created: false }
    }
    this.#checkRoom(bytes.byteLength)
    const entry: Entry = { bytes, storedAt: this.#clock.now() }
    if (options.expiresAt !== undefined) entry.expiresAt = options.expiresAt
    this.#entries.set(key, entry)
    this.#bytes += bytes.byteLength
    return { size: bytes.byteLength, created: true }
  }

  #checkRoom(size: number): void {
    if (size > this.maxShardBytes)
      throw new NodusError('SHARD_TOO_LARGE', `shard of ${size} bytes`, {
        details: { size, max: this.maxShardBytes },
      })
    if (this.#bytes + size > this.capacityBytes) throw new NodusError('STORE_FULL', 'memory store full')
  }

  /** The stream's bytes, at most maxShardBytes of them (SHARD_TOO_LARGE beyond). */
  async #collect(data: AsyncIterable<Uint8Array>, options: { signal?: AbortSignal }): Promise<Uint8Array> {
    const parts: Uint8Array[] = []
    let n = 0
    for await (const chunk of data) {
      options.signal?.throwIfAborted()
      n += chunk.byteLength
      this.#checkRoom(n)
      parts.push(new Uint8Array(chunk))
    }
    return Buffer.concat(parts)
  }

  /** The stored bytes (not a copy). @throws NodusError SHARD_MISSING, CID_INVALID, STORE_CLOSED */
  #stored(cid: CID): Uint8Array {
    const key = this.#key(cid)
    const e = this.#entries.get(key)
    if (e === undefined) throw new NodusError('SHARD_MISSING', 'shard not stored', { details: { cid: key } })
    return e.bytes
  }

  /** A copy of the whole shard. @throws NodusError SHARD_MISSING, CID_INVALID, STORE_CLOSED */
  async get(cid: CID, _options?: { signal?: AbortSignal }): Promise<Uint8Array> {
    return new Uint8Array(this.#stored(cid))
  }

  /**
   * Bytes `[offset, offset + length)` as one read-only view (ShardStore.read streams chunks of at
   * most 64 KiB; readers take any chunking). `length` defaults to the rest and is clamped to it.
   * @throws NodusError SHARD_MISSING, INVALID_ARGUMENT (offset beyond the shard, bad offset or length)
   */
  async *read(
    cid: CID,
    options: { offset?: number; length?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<Uint8Array, void, undefined> {
    const b = this.#stored(cid)
    const offset = options.offset ?? 0
    const length = options.length ?? b.byteLength - offset
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > b.byteLength)
      throw new NodusError('INVALID_ARGUMENT', 'offset out of range', { details: { offset } })
    if (!Number.isSafeInteger(length) || length < 0)
      throw new NodusError('INVALID_ARGUMENT', 'length must be a non-negative integer', {
        details: { length },
      })
    options.signal?.throwIfAborted()
    yield b.subarray(offset, Math.min(b.byteLength, offset + length))
  }

  /** A copy of the whole shard, checked against the CID (ShardStore.readForAudit). @throws NodusError SHARD_MISSING */
  async readForAudit(cid: CID, _options?: { signal?: AbortSignal }): Promise<Uint8Array> {
    const b = await this.get(cid)
    verifyCid(cid, b)
    return b
  }

  /** Set the expiry to the later of it and `expiresAt` (undefined: never); false when not stored. */
  async extendExpiry(cid: CID, expiresAt: number | undefined): Promise<boolean> {
    const key = this.#key(cid)
    checkExpiry(expiresAt)
    const e = this.#entries.get(key)
    if (e === undefined) return false
    const next = later(e.expiresAt, expiresAt)
    if (next === undefined) delete e.expiresAt
    else e.expiresAt = next
    return true
  }

  /**
   * Delete shards whose expiry is at or before `now`, oldest expiry first, at most `limit` (default
   * 10,000), each reported with reason `expired`.
   */
  async cleanupExpired(
    now: number,
    options: { limit?: number; signal?: AbortSignal } = {},
  ): Promise<{ deleted: number; bytes: number }> {
    if (this.#closed) throw new NodusError('STORE_CLOSED', 'memory store is closed')
    const due = [...this.#entries]
      .filter(([, e]) => e.expiresAt !== undefined && e.expiresAt <= now)
      .sort((a, b) => (a[1].expiresAt ?? 0) - (b[1].expiresAt ?? 0))
      .slice(0, options.limit ?? DEFAULT_CLEANUP_LIMIT)
    let bytes = 0
    for (const [key] of due) {
      options.signal?.throwIfAborted()
      bytes += this.#remove(key, 'expired')
    }
    return { deleted: due.length, bytes }
  }

  /** Remove the shard (reported with reason `deleted`); true when it was stored. */
  async delete(cid: CID): Promise<boolean> {
    const key = this.#key(cid)
    if (!this.#entries.has(key)) return false
    this.#remove(key, 'deleted')
    return true
  }

  /**
   * Replace a stored shard's bytes without any check, as a disk that went bad would (tests of readers
   * that must cope with a corrupt copy). get() then returns them; readForAudit() finds the mismatch.
   * @throws NodusError SHARD_MISSING when `cid` is not stored
   */
  corrupt(cid: CID, bytes: Uint8Array): void {
    const e = this.#entries.get(this.#key(cid))
    if (e === undefined) throw new NodusError('SHARD_MISSING', 'shard not stored')
    this.#bytes += bytes.byteLength - e.bytes.byteLength
    e.bytes = new Uint8Array(bytes)
  }

  /** The shard's record, or undefined when absent. */
  stat(cid: CID): { cid: string; size: number; storedAt: number; expiresAt?: number } | undefined {
    const key = this.#key(cid)
    const e = this.#entries.get(key)
    if (e === undefined) return undefined
    const rec = { cid: key, size: e.bytes.byteLength, storedAt: e.storedAt }
    return e.expiresAt === undefined ? rec : { ...rec, expiresAt: e.expiresAt }
  }

  has(cid: CID): boolean {
    return this.#entries.has(this.#key(cid))
  }

  /** Bytes and shards stored, and what is left of `capacityBytes`. */
  usage(): { bytes: number; shards: number; capacityBytes: number; freeBytes: number } {
    if (this.#closed) throw new NodusError('STORE_CLOSED', 'memory store is closed')
    return {
      bytes: this.#bytes,
      shards: this.#entries.size,
      capacityBytes: this.capacityBytes,
      freeBytes: Math.max(0, this.capacityBytes - this.#bytes),
    }
  }
}
