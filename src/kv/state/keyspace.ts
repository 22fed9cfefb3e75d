/**
 * Key-level readers (Redis's EXISTS, TYPE, SCAN by prefix) and the local TTL garbage collector.
 */
import type { KvType } from '../op-types.ts'
import type { OrderedReader, OrderedWriter } from '../store/ordered.ts'
import { buryElement, type KeyCtx } from './element.ts'
import {
  concat,
  dbKey,
  elemKeyOfTtl,
  metaKey,
  P_META,
  P_TTL,
  prefixEnd,
  readStr,
  readU64,
  strComponent,
  strPrefix,
  typeOfByte,
  u64,
} from './keys.ts'
import { hasVisible, keyMeta, type ReadOptions } from './read.ts'
import { decodeMeta, decodeRecord, encodeMeta } from './record.ts'
import { indexedTypes, indexSnapshot, loadIndexDefs, updateIndexes } from './secondary.ts'

/** EXISTS: whether (db, key) holds anything visible at `nowMs`. */
export function exists(r: OrderedReader, db: string, key: string, options: ReadOptions): boolean {
  const { dk, meta } = keyMeta(r, db, key)
  return hasVisible(r, dk, meta, options.nowMs)
}

/** TYPE: the key's type, or `'none'`. */
export function keyType(r: OrderedReader, db: string, key: string, options: ReadOptions): KvType | 'none' {
  const { dk, meta } = keyMeta(r, db, key)
  return hasVisible(r, dk, meta, options.nowMs) ? (meta.type as KvType) : 'none'
}

/** One page of {@link scan}. */
export interface ScanPage {
  /** Keys in key order (UTF-8 byte order), each holding something visible. */
  keys: string[]
  /** Pass as `after` for the next page; absent when the scan reached the end. */
  cursor?: string
}

/**
 * SCAN over the keys of `db` starting with `prefix` (default all), after key `after` (exclusive), of
 * type `type` (default any): at most `limit` keys (default 100), looking at no more than
 * 10 × limit + 100 stored keys (deleted keys cost a look), so a page may hold fewer keys and a cursor.
 */
export function scan(
  r: OrderedReader,
  db: string,
  options: ReadOptions & { prefix?: string; after?: string; limit?: number; type?: KvType },
): ScanPage {
  const limit = options.limit ?? 100
  const base = concat(Uint8Array.of(P_META), strComponent(db), strPrefix(options.prefix ?? ''))
  const end = prefixEnd(base)
  const start =
    options.after === undefined ? base : concat(metaKey(dbKey(db, options.after)), Uint8Array.of(0))
  const keys: string[] = []
  let looked = 0
  let last: string | undefined
  const dbLen = strComponent(db).length + 1
  for (const [k, v] of r.range({ start: Buffer.compare(start, base) > 0 ? start : base, end })) {
    if (keys.length >= limit || looked >= 10 * limit + 100)
      return last === undefined ? { keys } : { keys, cursor: last }
    looked++
    const [key] = readStr(k, dbLen)
    last = key
    const meta = decodeMeta(v)
    if (options.type !== undefined && meta.type !== options.type) continue
    if (hasVisible(r, k.subarray(1), meta, options.nowMs)) keys.push(key)
  }
  return { keys }
}

/** What one {@link gc} batch did. */
export interface GcResult {
  /** Expired elements turned into tombstones. */
  buried: number
  /** Whether more expired elements may remain (the batch was full). */
  more: boolean
}

/**
 * Garbage-collect up to `limit` elements expired at `nowMs` (expireAt ≤ nowMs), oldest expiry first:
 * each becomes a tombstone with its stamp (so an older op arriving later still loses to it) and
 * leaves its indexes. Local only: never a replicated delete, and reads already hide these elements.
 * Run in a loop of bounded writes while `more`.
 */
export function gc(w: OrderedWriter, nowMs: number, limit: number): GcResult {
  const start = Uint8Array.of(P_TTL)
  const end = concat(start, u64(Math.min(nowMs + 1, Number.MAX_SAFE_INTEGER)))
  const due = [...w.range({ start, end, limit })]
  for (const [tk] of due) {
    const ek = elemKeyOfTtl(tk)
    const bytes = w.get(ek)
    const rec = bytes === undefined ? undefined : decodeRecord(bytes)
    if (rec === undefined || rec.tomb || rec.expireAt !== readU64(tk, 1)) {
      w.del(tk) // cannot happen while TTL entries follow their records; keeps gc from looping on one
      continue
    }
    const [db, o1] = readStr(ek, 1)
    const [key, o2] = readStr(ek, o1)
    const type = typeOfByte(ek[o2] as number) as KvType
    const dk = ek.subarray(1, o2)
    const mk = metaKey(dk)
    const meta = decodeMeta(w.get(mk))
    const defs = indexedTypes(meta.type, type) ? loadIndexDefs(w, db) : []
    const before = defs.length > 0 ? indexSnapshot(w, dk, meta, defs) : undefined
    const ctx: KeyCtx = { w, dk, meta, stamp: rec.stamp, expireAt: undefined, changed: false }
    buryElement(ctx, type, ek, rec)
    w.put(mk, encodeMeta(meta))
    if (before !== undefined) updateIndexes(w, db, key, dk, meta, defs, before)
  }
  return { buried: due.length, more: due.length >= limit }
}
