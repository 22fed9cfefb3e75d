/**
 * Byte quotas of the kv store: how many bytes of operations (their envelopes, as logged) each
 * database holds on this node, and all of them together. The counters live in the store itself and
 * change inside the same `OrderedStore.write` as the op they count (engine.ts), so they can never
 * disagree with the op log after a crash; a refused op leaves neither the op nor its bytes behind.
 *
 * Key prefix 0x0d (among auth-store.ts's 0x01–0x0f): `0x0d ‖ db id (UTF-8)` → the database's bytes,
 * `0x0d` alone → all databases' bytes; each an 8-byte big-endian unsigned integer. Ops logged before
 * the counters existed are not counted (a store written by an older version starts them at zero).
 */
import { NodusError } from '../common/errors.ts'
import type { Op } from './op-types.ts'
import type { OrderedReader, OrderedWriter } from './store/ordered.ts'

/** Key prefix of the byte counters. */
export const BYTES_PREFIX = 0x0d

/** The bounds {@link chargeOp} enforces, bytes. */
export interface ByteQuota {
  /** Bytes of ops one database may hold (`kv.maxDbBytes`). */
  maxDbBytes: number
  /** Bytes of ops all databases together may hold (`kv.maxBytes`). */
  maxBytes: number
}

const utf8 = new TextEncoder()
const TOTAL_KEY = Uint8Array.of(BYTES_PREFIX)
const dbKey = (db: string): Uint8Array => Uint8Array.from([BYTES_PREFIX, ...utf8.encode(db)])

function read(r: OrderedReader, key: Uint8Array): number {
  const v = r.get(key)
  if (v === undefined || v.byteLength !== 8) return 0
  return Number(new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0))
}

function write(w: OrderedWriter, key: Uint8Array, n: number): void {
  const v = new Uint8Array(8)
  new DataView(v.buffer).setBigUint64(0, BigInt(Math.max(0, n)))
  w.put(key, v)
}

/** Bytes of ops `db` holds on this node. */
export function dbBytes(r: OrderedReader, db: string): number {
  return read(r, dbKey(db))
}

/** Bytes of ops all databases hold on this node. */
export function totalBytes(r: OrderedReader): number {
  return read(r, TOTAL_KEY)
}

/**
 * Count `op`'s bytes against its database and the total, inside the write that logs it.
 *
 * A `revoke` passes the per-database bound (so a writer who filled a database can still be
 * revoked; only the owner signs revokes), never `maxBytes`.
 *
 * @throws NodusError `KV_DB_FULL` (peerAction `ignore`; `details`: `db`, `bytes` held, `limit`,
 *   `scope` `db` or `node`) when a bound would be passed; the caller's write then keeps nothing
 */
export function chargeOp(w: OrderedWriter, op: Op, quota: ByteQuota): void {
  const db = op.body.db
  const size = op.bytes.byteLength
  const held = dbBytes(w, db)
  const all = totalBytes(w)
  const revoke = op.body.type === 'db' && op.body.op === 'revoke'
  if (!revoke && held + size > quota.maxDbBytes)
    throw full(
      db,
      held,
      quota.maxDbBytes,
      'db',
      `database ${db} holds ${held} bytes of operations (kv.maxDbBytes)`,
    )
  if (all + size > quota.maxBytes)
    throw full(db, all, quota.maxBytes, 'node', `this node holds ${all} bytes of kv operations (kv.maxBytes)`)
  write(w, dbKey(db), held + size)
  write(w, TOTAL_KEY, all + size)
}

/** Uncount the bytes of `op`, removed from the log in this write (a revoke voided it). */
export function refundOp(w: OrderedWriter, op: { body: { db: string }; bytes: Uint8Array }): void {
  const size = op.bytes.byteLength
  write(w, dbKey(op.body.db), dbBytes(w, op.body.db) - size)
  write(w, TOTAL_KEY, totalBytes(w) - size)
}

function full(db: string, bytes: number, limit: number, scope: 'db' | 'node', message: string): NodusError {
  return new NodusError('KV_DB_FULL', `${message}: the operation would pass ${limit}`, {
    peerAction: 'ignore',
    details: { db, bytes, limit, scope },
  })
}
