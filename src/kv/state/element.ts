/**
 * Element records and what hangs off them, kept in step in one place: the ELEM record, its TTL entry,
 * its ZIDX entry (zset, geo) and the key's live counts. Every write of an element goes through
 * {@link writeElement} (last writer wins by stamp) and every removal through {@link dropElement}.
 */
import type { KvType } from '../op-types.ts'
import type { OrderedReader, OrderedWriter } from '../store/ordered.ts'
import { concat, elemTypePrefix, f64, P_ZIDX, prefixEnd, ttlKey, u64 } from './keys.ts'
import {
  compareStamps,
  decodeNumber,
  decodeRecord,
  type ElemRecord,
  encodeRecord,
  type Meta,
  recordStamp,
  type Stamp,
} from './record.ts'

const EMPTY = new Uint8Array(0)

/** What an apply works on: one (db, key), its metadata, the op's stamp and expireAt. */
export interface KeyCtx {
  w: OrderedWriter
  /** `s(db) s(key)`. */
  dk: Uint8Array
  meta: Meta
  stamp: Stamp
  expireAt: number | undefined
  /** Set when anything in the store changed. */
  changed: boolean
}

/** The ELEM key of `element` of `type` under `dk`. */
export function elemKey(dk: Uint8Array, type: KvType, element: Uint8Array): Uint8Array {
  return concat(elemTypePrefix(dk, type), element)
}

const hasScore = (type: KvType): boolean => type === 'zset' || type === 'geo'

/** ZIDX key of a zset/geo member with its score. */
export function zidxKey(dk: Uint8Array, score: number, member: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + dk.length + 8 + member.length)
  out[0] = P_ZIDX
  out.set(dk, 1)
  f64(score, out, 1 + dk.length)
  out.set(member, 9 + dk.length)
  return out
}

/** Remove what a live record added beside itself: TTL and ZIDX entries, the live counts. */
function unlink(ctx: KeyCtx, type: KvType, key: Uint8Array, element: Uint8Array, rec: ElemRecord): void {
  if (rec.tomb) return
  ctx.meta.live--
  if (rec.expireAt !== undefined) {
    ctx.meta.liveWithTtl--
    ctx.w.del(ttlKey(rec.expireAt, key))
  }
  if (hasScore(type)) ctx.w.del(zidxKey(ctx.dk, decodeNumber(rec.payload), element))
}

function link(ctx: KeyCtx, type: KvType, key: Uint8Array, element: Uint8Array, rec: ElemRecord): void {
  if (rec.tomb) return
  ctx.meta.live++
  if (rec.expireAt !== undefined) {
    ctx.meta.liveWithTtl++
    ctx.w.put(ttlKey(rec.expireAt, key), EMPTY)
  }
  if (hasScore(type))
    ctx.w.put(
      zidxKey(ctx.dk, decodeNumber(rec.payload), element),
      rec.expireAt === undefined ? EMPTY : u64(rec.expireAt),
    )
}

/**
 * Write `element` of `type` as the op of `ctx` sets it (a value, or a tombstone when `tomb`), unless
 * the stored record's stamp is at least the op's (last writer wins; an equal stamp is the same op, so
 * a duplicate changes nothing). Returns whether it was written.
 */
export function writeElement(
  ctx: KeyCtx,
  type: KvType,
  element: Uint8Array,
  tomb: boolean,
  payload: Uint8Array = EMPTY,
): boolean {
  const key = elemKey(ctx.dk, type, element)
  const old = ctx.w.get(key)
  if (old !== undefined) {
    if (compareStamps(recordStamp(old), ctx.stamp) >= 0) return false
    unlink(ctx, type, key, element, decodeRecord(old))
  }
  const bytes = encodeRecord(ctx.stamp, tomb, tomb ? undefined : ctx.expireAt, payload)
  ctx.w.put(key, bytes)
  link(ctx, type, key, element, decodeRecord(bytes))
  ctx.changed = true
  return true
}

/** Remove an element's record and what hangs off it (a purge or a covering range delete). */
export function dropElement(ctx: KeyCtx, type: KvType, key: Uint8Array, rec: ElemRecord): void {
  const element = key.subarray(elemTypePrefix(ctx.dk, type).length)
  unlink(ctx, type, key, element, rec)
  ctx.w.del(key)
  ctx.changed = true
}

/** Replace a live record by a tombstone with the same stamp (gc of an expired element). */
export function buryElement(ctx: KeyCtx, type: KvType, key: Uint8Array, rec: ElemRecord): void {
  const element = key.subarray(elemTypePrefix(ctx.dk, type).length)
  unlink(ctx, type, key, element, rec)
  ctx.w.put(key, encodeRecord(rec.stamp, true, undefined, EMPTY))
  ctx.changed = true
}

/** Entries of a key range, collected first (so the caller may write while going through them). */
export function collect(r: OrderedReader, start: Uint8Array, end: Uint8Array): [Uint8Array, Uint8Array][] {
  return [...r.range({ start, end })]
}

/**
 * Drop every element of `type` under the key (when `below` is undefined) or every one whose stamp is
 * older than `below`. Scans the key's elements of that type: O(elements).
 */
export function purge(ctx: KeyCtx, type: KvType, below: Stamp | undefined, sub: Uint8Array = EMPTY): void {
  const prefix = concat(elemTypePrefix(ctx.dk, type), sub)
  for (const [key, value] of collect(ctx.w, prefix, prefixEnd(prefix))) {
    if (below !== undefined && compareStamps(recordStamp(value), below) >= 0) continue
    dropElement(ctx, type, key, decodeRecord(value))
  }
}
