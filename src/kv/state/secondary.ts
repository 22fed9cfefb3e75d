/**
 * Secondary indexes declared per database: the value of one hash field, or of one JSONPath in JSON
 * documents, mapped to the keys holding it, for equality and range lookups over strings and numbers
 * (layout in keys.ts: IDXDEF and IDX). applyOp keeps them in step for keys that hold, or held, a hash
 * or a JSON document; entries follow the stored state (not TTL, which readers apply), so they are part
 * of the converged state too. Lookups re-check each key's current value, so expired values, cut long
 * strings and exclusive bounds are exact.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { NodusError } from '../../common/errors.ts'
import type { KvType, KvValue } from '../op-types.ts'
import type { OrderedReader, OrderedWriter } from '../store/ordered.ts'
import { elemKey } from './element.ts'
import { jsonDocument, jsonQuery } from './json.ts'
import {
  concat,
  dbKey,
  indexedValue,
  MAX_ELEMENT_BYTES,
  P_IDX,
  P_IDXDEF,
  P_META,
  prefixEnd,
  readStr,
  strComponent,
  utf8,
} from './keys.ts'
import { keyMeta, type ReadOptions } from './read.ts'
import { decodeMeta, decodeRecord, decodeValue, type Meta, visible } from './record.ts'

/** Longest index name, UTF-8 bytes. */
export const MAX_INDEX_NAME_BYTES = 64

/** An index: the value of `field` in hash keys, or of the first node `path` selects in JSON documents. */
export type IndexSpec =
  | { name: string; type: 'hash'; field: string }
  | { name: string; type: 'json'; path: string }

/** A lookup: equality, or a range with inclusive/exclusive bounds (all bounds of one kind: numbers or strings). */
export type IndexQuery =
  | { eq: string | number }
  | { gt?: string | number; gte?: string | number; lt?: string | number; lte?: string | number }

/**
 * A lookup from its parts, as GraphQL and HTTP take them: `eq`, or at least one of the bounds `gt`,
 * `gte`, `lt`, `lte` (absent: undefined or null); each a string or a number.
 *
 * @throws the error of `fail` naming what is wrong
 */
export function indexQueryOf(a: Record<string, unknown>, fail: (message: string) => Error): IndexQuery {
  const scalar = (k: string): string | number | undefined => {
    const v = a[k]
    if (v === undefined || v === null) return undefined
    if (typeof v !== 'string' && typeof v !== 'number') throw fail(`${k} must be a string or a number`)
    return v
  }
  const eq = scalar('eq')
  const bounds = { gt: scalar('gt'), gte: scalar('gte'), lt: scalar('lt'), lte: scalar('lte') }
  const given = Object.entries(bounds).filter(([, v]) => v !== undefined)
  if (eq !== undefined) {
    if (given.length > 0) throw fail('give eq, or bounds (gt, gte, lt, lte), not both')
    return { eq }
  }
  if (given.length === 0) throw fail('give eq or at least one bound (gt, gte, lt, lte)')
  return Object.fromEntries(given) as IndexQuery
}

const defKey = (db: string, name: string): Uint8Array =>
  concat(Uint8Array.of(P_IDXDEF), strComponent(db), strComponent(name))
const idxPrefix = (db: string, name: string): Uint8Array =>
  concat(Uint8Array.of(P_IDX), strComponent(db), strComponent(name))

/** Whether ops on a key of these types may change an index. */
export function indexedTypes(a: KvType | undefined, b: KvType): boolean {
  return a === 'hash' || a === 'json' || b === 'hash' || b === 'json'
}

/** The indexes declared for `db`. */
export function loadIndexDefs(r: OrderedReader, db: string): IndexSpec[] {
  const start = concat(Uint8Array.of(P_IDXDEF), strComponent(db))
  return [...r.range({ start, end: prefixEnd(start) })].map(([, v]) => dagCbor.decode<IndexSpec>(v))
}

const indexable = (v: KvValue | undefined): v is string | number =>
  typeof v === 'string' || typeof v === 'number'

/** The indexed value of a key under `def` at `nowMs` (undefined: ignore TTL, as the index entries do). */
function indexedOf(
  r: OrderedReader,
  dk: Uint8Array,
  meta: Meta,
  def: IndexSpec,
  nowMs: number | undefined,
): string | number | undefined {
  if (def.type === 'hash') {
    if (meta.type !== 'hash') return undefined
    const b = r.get(elemKey(dk, 'hash', utf8(def.field)))
    if (b === undefined) return undefined
    const rec = decodeRecord(b)
    if (!visible(rec, nowMs ?? Number.NEGATIVE_INFINITY)) return undefined
    const v = decodeValue(rec.payload)
    return indexable(v) ? v : undefined
  }
  if (meta.type !== 'json') return undefined
  const doc = jsonDocument(r, dk, nowMs)
  if (doc === undefined) return undefined
  const v = jsonQuery(doc, def.path)[0]
  return indexable(v) ? v : undefined
}

/** The IDX value of one key under each index (before an apply changes it). */
export function indexSnapshot(
  r: OrderedReader,
  dk: Uint8Array,
  meta: Meta,
  defs: IndexSpec[],
): (Uint8Array | undefined)[] {
  return defs.map((d) => {
    const v = indexedOf(r, dk, meta, d, undefined)
    return v === undefined ? undefined : indexedValue(v)
  })
}

/** Bring one key's IDX entries from `before` (its {@link indexSnapshot} before the change) to now. */
export function updateIndexes(
  w: OrderedWriter,
  db: string,
  key: string,
  dk: Uint8Array,
  meta: Meta,
  defs: IndexSpec[],
  before: (Uint8Array | undefined)[],
): void {
  const after = indexSnapshot(w, dk, meta, defs)
  defs.forEach((def, i) => {
    const [b, a] = [before[i], after[i]]
    if (b !== undefined && a !== undefined && Buffer.compare(b, a) === 0) return
    const prefix = idxPrefix(db, def.name)
    if (b !== undefined) w.del(concat(prefix, b, strComponent(key)))
    if (a !== undefined) w.put(concat(prefix, a, strComponent(key)), new Uint8Array(0))
  })
}

function checkSpec(spec: IndexSpec): void {
  const n = utf8(spec.name).length
  if (n === 0 || n > MAX_INDEX_NAME_BYTES)
    throw new NodusError('INVALID_ARGUMENT', `index name must be 1 to ${MAX_INDEX_NAME_BYTES} bytes`)
  if (spec.type === 'hash') {
    const f = utf8(spec.field).length
    if (f === 0 || f > MAX_ELEMENT_BYTES)
      throw new NodusError('INVALID_ARGUMENT', `index field must be 1 to ${MAX_ELEMENT_BYTES} bytes`)
  } else if (spec.type === 'json') jsonQuery(null, spec.path)
  else throw new NodusError('INVALID_ARGUMENT', "index type must be 'hash' or 'json'")
}

/**
 * Declare (or redefine) an index of `db` and build its entries from every key of the database
 * (O(keys in db), in this write). Redefining with the same spec changes nothing.
 *
 * @throws NodusError `INVALID_ARGUMENT` for a bad name, field or JSONPath
 */
export function defineIndex(w: OrderedWriter, db: string, spec: IndexSpec): void {
  checkSpec(spec)
  const clean: IndexSpec =
    spec.type === 'hash'
      ? { name: spec.name, type: 'hash', field: spec.field }
      : { name: spec.name, type: 'json', path: spec.path }
  const bytes = dagCbor.encode(clean)
  const old = w.get(defKey(db, spec.name))
  if (old !== undefined && Buffer.compare(old, bytes) === 0) return
  dropIndex(w, db, spec.name)
  w.put(defKey(db, spec.name), bytes)
  const start = concat(Uint8Array.of(P_META), strComponent(db))
  for (const [k, v] of [...w.range({ start, end: prefixEnd(start) })]) {
    const [key] = readStr(k, start.length)
    updateIndexes(w, db, key, dbKey(db, key), decodeMeta(v), [clean], [undefined])
  }
}

/** Remove an index and its entries (nothing when it is not declared). */
export function dropIndex(w: OrderedWriter, db: string, name: string): void {
  const prefix = idxPrefix(db, name)
  for (const [k] of [...w.range({ start: prefix, end: prefixEnd(prefix) })]) w.del(k)
  w.del(defKey(db, name))
}

/** Where a lookup scans: `[start, end)` below the index prefix, by kind. */
function scanBounds(q: IndexQuery): [Uint8Array, Uint8Array] {
  if ('eq' in q) {
    const v = indexedValue(q.eq)
    return [v, prefixEnd(v)]
  }
  const bounds = [q.gt, q.gte, q.lt, q.lte].filter((b) => b !== undefined)
  const kinds = new Set(bounds.map((b) => typeof b))
  if (kinds.size !== 1)
    throw new NodusError('INVALID_ARGUMENT', 'an index range needs bounds, all numbers or all strings')
  const tag = kinds.has('number') ? 1 : 2
  const lo = q.gte ?? q.gt
  const hi = q.lte ?? q.lt
  return [
    lo === undefined ? Uint8Array.of(tag) : indexedValue(lo),
    hi === undefined ? Uint8Array.of(tag + 1) : prefixEnd(indexedValue(hi)),
  ]
}

/** Order of indexed values: numbers numerically, strings by UTF-8 bytes (the index's own order). */
function cmp(a: string | number, b: string | number): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b
  return Buffer.compare(utf8(String(a)), utf8(String(b)))
}

function matches(v: string | number, q: IndexQuery): boolean {
  if ('eq' in q) return v === q.eq
  if (typeof v !== typeof (q.gt ?? q.gte ?? q.lt ?? q.lte)) return false
  return (
    (q.gt === undefined || cmp(v, q.gt) > 0) &&
    (q.gte === undefined || cmp(v, q.gte) >= 0) &&
    (q.lt === undefined || cmp(v, q.lt) < 0) &&
    (q.lte === undefined || cmp(v, q.lte) <= 0)
  )
}

/**
 * Keys of `db` whose indexed value matches `q` at `nowMs`, in index order (by value, then key), at
 * most `limit` (default 1000).
 *
 * @throws NodusError `KV_INDEX_NOT_FOUND` (no such index), `INVALID_ARGUMENT` (bounds of mixed kinds)
 */
export function byIndex(
  r: OrderedReader,
  db: string,
  name: string,
  q: IndexQuery,
  options: ReadOptions & { limit?: number },
): string[] {
  const defBytes = r.get(defKey(db, name))
  if (defBytes === undefined)
    throw new NodusError('KV_INDEX_NOT_FOUND', `no index ${JSON.stringify(name)} in ${db}`, {
      details: { db, name },
    })
  const def = dagCbor.decode<IndexSpec>(defBytes)
  const prefix = idxPrefix(db, name)
  const [lo, hi] = scanBounds(q)
  const limit = options.limit ?? 1000
  const out: string[] = []
  for (const [k] of r.range({ start: concat(prefix, lo), end: concat(prefix, hi) })) {
    if (out.length >= limit) break
    let o = prefix.length
    o = k[o] === 1 ? o + 9 : readStr(k, o + 1)[1]
    const [key] = readStr(k, o)
    const { dk, meta } = keyMeta(r, db, key)
    const v = indexedOf(r, dk, meta, def, options.nowMs)
    if (v !== undefined && matches(v, q)) out.push(key)
  }
  return out
}
