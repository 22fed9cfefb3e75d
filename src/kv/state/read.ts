/**
 * What every reader shares: opening a key as one of its types (Redis's WRONGTYPE otherwise), whether
 * a key exists at a time, and iterating its visible elements. Reads take `nowMs` (Unix ms): what an
 * op with `expireAt` wrote is hidden once `nowMs ≥ expireAt`.
 */
import { NodusError } from '../../common/errors.ts'
import type { KvType } from '../op-types.ts'
import type { OrderedReader } from '../store/ordered.ts'
import { concat, dbKey, elemTypePrefix, metaKey, prefixEnd } from './keys.ts'
import { decodeMeta, decodeRecord, type ElemRecord, type Meta, visible } from './record.ts'

/** Options of every read. */
export interface ReadOptions {
  /** Current time, Unix ms: hides what expired at or before it. */
  nowMs: number
}

/** A key opened for reading. */
export interface KeyView {
  /** `s(db) s(key)`. */
  dk: Uint8Array
  meta: Meta
  nowMs: number
}

/** The metadata of (db, key) (empty when the key was never written). */
export function keyMeta(r: OrderedReader, db: string, key: string): { dk: Uint8Array; meta: Meta } {
  const dk = dbKey(db, key)
  return { dk, meta: decodeMeta(r.get(metaKey(dk))) }
}

/** Visible elements of the key's type under `sub`, in key order (or reverse): `[element, record]`. */
export function* visibleElements(
  r: OrderedReader,
  view: KeyView,
  type: KvType,
  sub: Uint8Array = new Uint8Array(0),
  range: { start?: Uint8Array; end?: Uint8Array; reverse?: boolean } = {},
): Generator<[Uint8Array, ElemRecord]> {
  const prefix = concat(elemTypePrefix(view.dk, type), sub)
  const base = elemTypePrefix(view.dk, type).length
  const start = range.start === undefined ? prefix : concat(prefix, range.start)
  const end = range.end === undefined ? prefixEnd(prefix) : concat(prefix, range.end)
  for (const [k, v] of r.range({ start, end, reverse: range.reverse ?? false })) {
    const rec = decodeRecord(v)
    if (visible(rec, view.nowMs)) yield [k.subarray(base), rec]
  }
}

/** Whether the key holds anything visible at `nowMs`. */
export function hasVisible(r: OrderedReader, dk: Uint8Array, meta: Meta, nowMs: number): boolean {
  if (meta.type === undefined || meta.live === 0) return false
  if (meta.liveWithTtl < meta.live) return true
  for (const _ of visibleElements(r, { dk, meta, nowMs }, meta.type)) return true
  return false
}

/** Visible elements of the key (its live count when none has an expireAt; else counted). */
export function visibleCount(r: OrderedReader, view: KeyView): number {
  const { meta } = view
  if (meta.type === undefined) return 0
  if (meta.liveWithTtl === 0) return meta.live
  let n = 0
  for (const _ of visibleElements(r, view, meta.type)) n++
  return n
}

/**
 * Open (db, key) for a read of one of `types`: undefined when the key holds nothing visible.
 *
 * @throws NodusError `KV_WRONG_TYPE` when it holds something visible of another type
 */
export function openKey(
  r: OrderedReader,
  db: string,
  key: string,
  types: readonly KvType[],
  options: ReadOptions,
): KeyView | undefined {
  const { dk, meta } = keyMeta(r, db, key)
  if (!hasVisible(r, dk, meta, options.nowMs)) return undefined
  if (!types.includes(meta.type as KvType))
    throw new NodusError(
      'KV_WRONG_TYPE',
      `key ${JSON.stringify(key)} holds a ${meta.type}, not a ${types.join(' or ')}`,
      {
        details: { db, key, type: meta.type },
      },
    )
  return { dk, meta, nowMs: options.nowMs }
}

/** Redis's index normalization for LRANGE / ZRANGE: `[first, last]` inclusive, or undefined when empty. */
export function normalizeRange(start: number, stop: number, length: number): [number, number] | undefined {
  let s = start < 0 ? start + length : start
  let e = stop < 0 ? stop + length : stop
  if (s < 0) s = 0
  if (e >= length) e = length - 1
  if (s > e || s >= length) return undefined
  return [s, e]
}

/** A COUNT / LIMIT count: absent or negative means no limit (as Redis reads them). */
export function countLimit(count: number | undefined): number {
  return count === undefined || count < 0 ? Number.POSITIVE_INFINITY : count
}
