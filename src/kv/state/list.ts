/**
 * List readers (Redis's LRANGE, LLEN). A list's order is its element ids' byte order (keys.ts): left
 * pushes newest first, then right pushes oldest first. Each element comes with its 45-byte id, which a
 * writer names to remove (lrem/lpop/rpop) or replace (lset) it.
 */
import type { KvValue } from '../op-types.ts'
import type { OrderedReader } from '../store/ordered.ts'
import { normalizeRange, openKey, type ReadOptions, visibleCount, visibleElements } from './read.ts'
import { decodeValue } from './record.ts'

/** A list element: its id (45 bytes) and value. */
export interface ListElement {
  id: Uint8Array
  value: KvValue
}

/**
 * LRANGE: the elements from index `start` to `stop` inclusive; negative indexes count from the end
 * (−1 is the last), out-of-range indexes are clamped as Redis does. O(start + count) (O(length) for
 * negative indexes on a list whose elements have an expireAt).
 *
 * @throws NodusError `KV_WRONG_TYPE`
 */
export function lrange(
  r: OrderedReader,
  db: string,
  key: string,
  start: number,
  stop: number,
  options: ReadOptions,
): ListElement[] {
  const view = openKey(r, db, key, ['list'], options)
  if (view === undefined) return []
  const range = normalizeRange(start, stop, visibleCount(r, view))
  if (range === undefined) return []
  const [first, last] = range
  const out: ListElement[] = []
  let i = 0
  for (const [id, rec] of visibleElements(r, view, 'list')) {
    if (i > last) break
    if (i >= first) out.push({ id: new Uint8Array(id), value: decodeValue(rec.payload) })
    i++
  }
  return out
}

/** LLEN: how many elements. */
export function llen(r: OrderedReader, db: string, key: string, options: ReadOptions): number {
  const view = openKey(r, db, key, ['list'], options)
  return view === undefined ? 0 : visibleCount(r, view)
}
