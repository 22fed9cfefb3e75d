/**
 * Readers of strings, hashes and sets (Redis's GET, HGET, HGETALL, HKEYS, HLEN, SMEMBERS, SISMEMBER,
 * SCARD). Fields and members come in byte order of their UTF-8. Each throws NodusError
 * `KV_WRONG_TYPE` when the key holds another type; a missing or expired key reads as empty.
 */
import type { KvValue } from '../op-types.ts'
import type { OrderedReader } from '../store/ordered.ts'
import { elemKey } from './element.ts'
import { fromUtf8, utf8 } from './keys.ts'
import { type KeyView, openKey, type ReadOptions, visibleCount, visibleElements } from './read.ts'
import { decodeRecord, decodeValue, visible } from './record.ts'

/** The value of one element of an opened key, when visible. */
function element(
  r: OrderedReader,
  view: KeyView,
  type: 'string' | 'hash' | 'set',
  el: Uint8Array,
): KvValue | undefined {
  const b = r.get(elemKey(view.dk, type, el))
  if (b === undefined) return undefined
  const rec = decodeRecord(b)
  if (!visible(rec, view.nowMs)) return undefined
  return type === 'set' ? true : decodeValue(rec.payload)
}

/** GET: the string's value, or undefined. */
export function get(r: OrderedReader, db: string, key: string, options: ReadOptions): KvValue | undefined {
  const view = openKey(r, db, key, ['string'], options)
  return view === undefined ? undefined : element(r, view, 'string', new Uint8Array(0))
}

/** HGET: one field's value, or undefined. */
export function hget(
  r: OrderedReader,
  db: string,
  key: string,
  field: string,
  options: ReadOptions,
): KvValue | undefined {
  const view = openKey(r, db, key, ['hash'], options)
  return view === undefined ? undefined : element(r, view, 'hash', utf8(field))
}

/** HGETALL: `[field, value]` pairs in field order. */
export function hgetall(
  r: OrderedReader,
  db: string,
  key: string,
  options: ReadOptions,
): [string, KvValue][] {
  const view = openKey(r, db, key, ['hash'], options)
  if (view === undefined) return []
  return [...visibleElements(r, view, 'hash')].map(([f, rec]) => [fromUtf8(f), decodeValue(rec.payload)])
}

/** HKEYS: the fields in order. */
export function hkeys(r: OrderedReader, db: string, key: string, options: ReadOptions): string[] {
  const view = openKey(r, db, key, ['hash'], options)
  if (view === undefined) return []
  return [...visibleElements(r, view, 'hash')].map(([f]) => fromUtf8(f))
}

/** HLEN: how many fields. */
export function hlen(r: OrderedReader, db: string, key: string, options: ReadOptions): number {
  const view = openKey(r, db, key, ['hash'], options)
  return view === undefined ? 0 : visibleCount(r, view)
}

/** SMEMBERS: the members in order. */
export function smembers(r: OrderedReader, db: string, key: string, options: ReadOptions): string[] {
  const view = openKey(r, db, key, ['set'], options)
  if (view === undefined) return []
  return [...visibleElements(r, view, 'set')].map(([m]) => fromUtf8(m))
}

/** SISMEMBER. */
export function sismember(
  r: OrderedReader,
  db: string,
  key: string,
  member: string,
  options: ReadOptions,
): boolean {
  const view = openKey(r, db, key, ['set'], options)
  return view !== undefined && element(r, view, 'set', utf8(member)) !== undefined
}

/** SCARD: how many members. */
export function scard(r: OrderedReader, db: string, key: string, options: ReadOptions): number {
  const view = openKey(r, db, key, ['set'], options)
  return view === undefined ? 0 : visibleCount(r, view)
}
