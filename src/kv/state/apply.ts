/**
 * The typed state machine: {@link applyOp} folds one op into the materialized state. It is a pure
 * function of the store's contents and the op, idempotent and commutative: any order of the same set
 * of ops, with any duplicates, leaves byte-identical tables (test/kv/state-convergence.test.ts).
 *
 * Merge rule: last writer wins per (db, key, element), by stamp (HLC, then op id). The rules:
 * - Elements: a record holds the latest op that wrote or removed the element (a tombstone, so an older
 *   op arriving late cannot bring it back). Hash fields, set/zset/geo members, list elements, JSON
 *   members, stream entries and time-series samples are elements; a string's value is its one element.
 * - Type: a key holds the type of its latest op other than `del`, whatever that op does (a late `hset`
 *   on a string key makes it a hash, as Redis's SET replaces any type). Ops of another type are kept
 *   only as the key's `typeFloor` (the latest of them): elements older than it are gone, since the key
 *   was replaced by another type after them. So only elements of the winning type are stored.
 * - `del` (any type): key-level delete; `delFloor` is the latest one. Elements older than
 *   max(typeFloor, delFloor), the floor, are dropped when the floor rises and never written after.
 * - JSON: the document (json.set with no member) is a floor for its members: a member set before the
 *   latest whole-document set or delete is gone.
 * - Time series: `ts.del from to` is kept as a range record; a sample older than a covering range
 *   delete is dropped and never written after.
 * - TTL: `expireAt` is stored with what the op wrote and hides it on read once now ≥ expireAt; it never
 *   changes what apply does (so stores converge). gc.ts turns expired records into tombstones locally.
 *
 * Stored state is therefore a function of the set of ops: for the winning type, each element's latest
 * op when newer than the floor(s), plus derived entries (ZIDX, TTL, secondary indexes, live counts).
 */
import { NodusError } from '../../common/errors.ts'
import type { KvType, Op } from '../op-types.ts'
import type { OrderedWriter } from '../store/ordered.ts'
import { dropElement, elemKey, type KeyCtx, purge, writeElement } from './element.ts'
import { geohashScore } from './geohash.ts'
import {
  concat,
  dbKey,
  defaultStreamSeq,
  JSON_MEMBER,
  JSON_ROOT,
  listElementId,
  metaKey,
  prefixEnd,
  readU64,
  STAMP_BYTES,
  streamIdBytes,
  TS_RANGE_DEL,
  TS_SAMPLE,
  u64,
  utf8,
} from './keys.ts'
import { type Intent, parseOp } from './ops.ts'
import {
  compareStamps,
  decodeMeta,
  decodeRecord,
  encodeMeta,
  encodeNumber,
  encodeValue,
  floorOf,
  recordStamp,
  type Stamp,
  stampOf,
} from './record.ts'
import { indexedTypes, indexSnapshot, loadIndexDefs, updateIndexes } from './secondary.ts'

/** What applying an op did. */
export interface ApplyResult {
  /** Whether the store changed (false for a duplicate or an op that lost everywhere). */
  changed: boolean
}

const above = (s: Stamp, floor: Stamp | undefined): boolean =>
  floor === undefined || compareStamps(s, floor) > 0

/**
 * Apply `op` to the state in `w` (inside one OrderedStore write, with the op log entry the caller
 * writes beside it). Ops of `type: 'db'` are not state ops and change nothing. The op's signature and
 * authority must already be checked: the state machine trusts its input.
 *
 * @throws NodusError `KV_ARGS_INVALID` (peerAction `reject`) when the op does not fit the catalog
 *   (ops.ts); nothing is written then
 */
export function applyOp(w: OrderedWriter, op: Op): ApplyResult {
  const { body } = op
  if (body.type === 'db') return { changed: false }
  const intent = parseOp(body)
  const dk = dbKey(body.db, body.key)
  const mk = metaKey(dk)
  const oldMeta = w.get(mk)
  const meta = decodeMeta(oldMeta)
  const ctx: KeyCtx = { w, dk, meta, stamp: stampOf(op), expireAt: body.expireAt, changed: false }
  const defs = indexedTypes(meta.type, body.type) ? loadIndexDefs(w, body.db) : []
  const before = defs.length > 0 ? indexSnapshot(w, dk, meta, defs) : undefined

  if (intent.kind === 'del') {
    if (above(ctx.stamp, meta.delFloor)) {
      meta.delFloor = ctx.stamp
      if (meta.type !== undefined) purge(ctx, meta.type, floorOf(meta))
    }
  } else if (meta.winner === undefined || compareStamps(ctx.stamp, meta.winner) > 0) {
    if (meta.type !== undefined && meta.type !== body.type) {
      purge(ctx, meta.type, undefined)
      meta.typeFloor = meta.winner
    }
    meta.type = body.type
    meta.winner = ctx.stamp
    if (above(ctx.stamp, floorOf(meta))) applyIntent(ctx, body.type, intent, op)
  } else if (meta.type !== body.type) {
    if (above(ctx.stamp, meta.typeFloor)) {
      meta.typeFloor = ctx.stamp
      purge(ctx, meta.type as KvType, floorOf(meta))
    }
  } else if (above(ctx.stamp, floorOf(meta))) {
    applyIntent(ctx, body.type, intent, op)
  }

  const metaBytes = encodeMeta(meta)
  if (oldMeta === undefined || Buffer.compare(oldMeta, metaBytes) !== 0) {
    w.put(mk, metaBytes)
    ctx.changed = true
  }
  if (before !== undefined) updateIndexes(w, body.db, body.key, dk, meta, defs, before)
  return { changed: ctx.changed }
}

function applyIntent(ctx: KeyCtx, type: KvType, intent: Exclude<Intent, { kind: 'del' }>, op: Op): void {
  switch (intent.kind) {
    case 'set':
      writeElement(ctx, 'string', new Uint8Array(0), false, encodeValue(intent.value))
      return
    case 'hset':
      for (const [f, v] of intent.entries) writeElement(ctx, 'hash', utf8(f), false, encodeValue(v))
      return
    case 'hdel':
      for (const f of intent.fields) writeElement(ctx, 'hash', utf8(f), true)
      return
    case 'push':
      intent.values.forEach((v, i) => {
        writeElement(ctx, 'list', listElementId(intent.side, op.body.hlc, op.id, i), false, encodeValue(v))
      })
      return
    case 'lrem':
      for (const id of intent.ids) writeElement(ctx, 'list', id, true)
      return
    case 'lset':
      writeElement(ctx, 'list', intent.id, false, encodeValue(intent.value))
      return
    case 'sadd':
    case 'srem':
      for (const m of intent.members) writeElement(ctx, 'set', utf8(m), intent.kind === 'srem')
      return
    case 'zadd':
      for (const [m, score] of intent.entries) writeElement(ctx, 'zset', utf8(m), false, encodeNumber(score))
      return
    case 'geoadd':
      for (const [m, lon, lat] of intent.entries)
        writeElement(ctx, 'geo', utf8(m), false, encodeNumber(geohashScore(lon, lat)))
      return
    case 'zrem':
      for (const m of intent.members) writeElement(ctx, type, utf8(m), true)
      return
    case 'jset':
    case 'jdel':
      applyJson(
        ctx,
        intent.member,
        intent.kind === 'jdel',
        intent.kind === 'jset' ? encodeValue(intent.value) : undefined,
      )
      return
    case 'xadd': {
      const [ms, seq] = intent.id ?? [op.body.hlc.ms, defaultStreamSeq(op.body.hlc, op.id)]
      writeElement(ctx, 'stream', streamIdBytes(ms, seq), false, encodeValue(intent.fields))
      return
    }
    case 'xdel':
      for (const [ms, seq] of intent.ids) writeElement(ctx, 'stream', streamIdBytes(ms, seq), true)
      return
    case 'tsadd':
      applyTsAdd(ctx, intent.t ?? op.body.hlc.ms, intent.value)
      return
    case 'tsdel':
      applyTsDel(ctx, intent.from, intent.to)
      return
    default:
      throw new NodusError('KV_ARGS_INVALID', `unhandled intent ${(intent as Intent).kind}`)
  }
}

function applyJson(
  ctx: KeyCtx,
  member: string | undefined,
  tomb: boolean,
  payload: Uint8Array | undefined,
): void {
  if (member === undefined) {
    // The whole document: a floor for its members.
    if (writeElement(ctx, 'json', JSON_ROOT, tomb, payload)) purge(ctx, 'json', ctx.stamp, JSON_MEMBER)
    return
  }
  const root = ctx.w.get(elemKey(ctx.dk, 'json', JSON_ROOT))
  if (root !== undefined && compareStamps(recordStamp(root), ctx.stamp) > 0) return
  writeElement(ctx, 'json', concat(JSON_MEMBER, utf8(member)), tomb, payload)
}

/** Range deletes of the key: `[from, to, stamp]`. */
function* rangeDeletes(ctx: KeyCtx): Generator<[number, number, Stamp]> {
  const prefix = elemKey(ctx.dk, 'ts', TS_RANGE_DEL)
  for (const [k] of ctx.w.range({ start: prefix, end: prefixEnd(prefix) })) {
    const o = prefix.length
    yield [readU64(k, o), readU64(k, o + 8), k.subarray(o + 16, o + 16 + STAMP_BYTES)]
  }
}

function applyTsAdd(ctx: KeyCtx, t: number, value: number): void {
  for (const [from, to, stamp] of rangeDeletes(ctx)) {
    if (from <= t && t <= to && compareStamps(stamp, ctx.stamp) > 0) return
  }
  writeElement(ctx, 'ts', concat(TS_SAMPLE, u64(t)), false, encodeNumber(value))
}

function applyTsDel(ctx: KeyCtx, from: number, to: number): void {
  // The range record: its key holds the range and the stamp, so each range delete is its own element.
  if (!writeElement(ctx, 'ts', concat(TS_RANGE_DEL, u64(from), u64(to), ctx.stamp), true)) return
  const start = elemKey(ctx.dk, 'ts', concat(TS_SAMPLE, u64(from)))
  const end =
    to + 1 <= Number.MAX_SAFE_INTEGER
      ? elemKey(ctx.dk, 'ts', concat(TS_SAMPLE, u64(to + 1)))
      : prefixEnd(start.subarray(0, start.length - 8))
  for (const [k, v] of [...ctx.w.range({ start, end })]) {
    if (compareStamps(recordStamp(v), ctx.stamp) < 0) dropElement(ctx, 'ts', k, decodeRecord(v))
  }
}
