/**
 * {@link OrderedStore} on LMDB (lmdb-js): raw byte keys and values in the root database of one
 * environment directory (data.mdb, lock.mdb).
 *
 * Writes: each `write(fn)` is an lmdb-js child transaction (`childTransaction`) of the asynchronous
 * write batch, so every write queued in the same event-loop turn shares one LMDB commit and one flush
 * (group commit), while a throwing `fn` aborts only its own child transaction. Inside `fn` reads go
 * through the write transaction and see `fn`'s writes. The promise resolves once the batch is committed
 * and flushed to disk: lmdb-js's `overlappingSync` (its default on Linux and macOS) resolves a write when
 * it is committed and flushes afterwards, so every write also waits for `flushed` taken in the turn it
 * was queued (as src/storage/store/shard-store-index.ts does). `noSync` is never set.
 *
 * Ranges: lmdb-js's reverse ranges take `start` as the (inclusive) high key and `end` as the
 * (exclusive) low key; this store keeps the interface's `[start, end)` in both directions by starting a
 * reverse scan at `end`, skipping `end` itself, and stopping below `start`.
 *
 * Limits: keys are 1 to {@link LMDB_MAX_KEY_BYTES} bytes (LMDB's compile-time limit in lmdb-js); an
 * empty or longer key throws a plain Error from lmdb-js, and inside a write aborts that write.
 */
import { open, type RootDatabase } from 'lmdb'
import type { OrderedStore, OrderedWriter, RangeOptions } from './ordered.ts'
import { compareKeys } from './ordered.ts'

/** Longest key LMDB accepts through lmdb-js, bytes. */
export const LMDB_MAX_KEY_BYTES = 1978

/** Options of {@link LmdbOrderedStore.open}. */
export interface LmdbOrderedStoreOptions {
  /** Directory of the LMDB environment (created if missing). */
  path: string
}

type Db = RootDatabase<Buffer, Buffer>

/** A Buffer view of `b` without copying (lmdb-js takes Buffers for binary keys). */
function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
}

function* rangeOf(db: Db, o: RangeOptions): Generator<[Uint8Array, Uint8Array]> {
  const limit = o.limit ?? Number.POSITIVE_INFINITY
  if (limit <= 0) return
  let n = 0
  if (o.reverse === true) {
    const it = db.getRange(
      o.end === undefined ? { reverse: true } : { start: asBuffer(o.end), reverse: true },
    )
    for (const { key, value } of it) {
      if (o.end !== undefined && compareKeys(key, o.end) >= 0) continue
      if (o.start !== undefined && compareKeys(key, o.start) < 0) return
      yield [key, value]
      if (++n >= limit) return
    }
    return
  }
  const it = db.getRange({
    ...(o.start === undefined ? {} : { start: asBuffer(o.start) }),
    ...(o.end === undefined ? {} : { end: asBuffer(o.end) }),
    ...(o.limit === undefined ? {} : { limit: o.limit }),
  })
  for (const { key, value } of it) yield [key, value]
}

/**
 * An {@link OrderedStore} on an LMDB environment. Open with {@link LmdbOrderedStore.open}; `close()`
 * waits for queued writes. Reads outside a write see the last committed state.
 */
export class LmdbOrderedStore implements OrderedStore {
  readonly #db: Db
  readonly #writer: OrderedWriter

  private constructor(db: Db) {
    this.#db = db
    this.#writer = {
      get: (k) => db.get(asBuffer(k)),
      range: (o = {}) => rangeOf(db, o),
      // putSync/removeSync inside a transaction callback write into that transaction.
      put: (k, v) => {
        db.putSync(asBuffer(k), asBuffer(v))
      },
      del: (k) => {
        db.removeSync(asBuffer(k))
      },
    }
  }

  /** Open (creating if needed) the environment at `options.path`. */
  static open(options: LmdbOrderedStoreOptions): LmdbOrderedStore {
    const db = open<Buffer, Buffer>({ path: options.path, keyEncoding: 'binary', encoding: 'binary' })
    return new LmdbOrderedStore(db)
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.#db.get(asBuffer(key))
  }

  range(options: RangeOptions = {}): Iterable<[Uint8Array, Uint8Array]> {
    return rangeOf(this.#db, options)
  }

  async write<T>(fn: (w: OrderedWriter) => T): Promise<T> {
    const committed = this.#db.childTransaction(() => fn(this.#writer))
    // Taken in this turn: the flush of the batch this write joined, not of a later one.
    const flushed = new Promise<void>((resolve, reject) => {
      this.#db.flushed.then(() => resolve(), reject)
    })
    // Both awaited together: a throwing fn rejects at once, and a failed flush is never left unhandled.
    const [out] = await Promise.all([committed, flushed])
    return out
  }

  async close(): Promise<void> {
    await this.#db.close()
  }
}
