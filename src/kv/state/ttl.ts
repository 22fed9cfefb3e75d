/**
 * When a key, or one of its fields or members, stops being visible (Redis's PEXPIRETIME, in Unix ms
 * rather than a countdown). Ops carry `expireAt` per element (ops.ts), so a key expires when its
 * last visible element does: never, while one element has no `expireAt`.
 */
import { NodusError } from '../../common/errors.ts'
import type { KvType } from '../op-types.ts'
import type { OrderedReader } from '../store/ordered.ts'
import { elemKey } from './element.ts'
import { concat, JSON_MEMBER, utf8 } from './keys.ts'
import { hasVisible, keyMeta, type ReadOptions, visibleElements } from './read.ts'
import { decodeRecord, visible } from './record.ts'

/** What {@link expireTime} found. */
export interface ExpireTime {
  /** Whether the key (or the field or member asked for) holds something visible at `nowMs`. */
  exists: boolean
  /** Unix ms at which it stops being visible; absent when it never expires (or does not exist). */
  expireAt?: number
}

/** Types whose elements a field names: hash fields, set, zset and geo members, top-level JSON members. */
const FIELD_TYPES: readonly KvType[] = ['hash', 'set', 'zset', 'geo', 'json']

/**
 * The expiry of (db, key), or with `field` of one hash field, set / sorted-set / geo member or
 * top-level JSON member. Without `field`: the latest `expireAt` of the key's visible elements, none
 * when one of them has no `expireAt` (O(1) then; else O(elements)).
 *
 * @throws NodusError `INVALID_ARGUMENT` when `field` is given for a string, list, stream or time series
 */
export function expireTime(
  r: OrderedReader,
  db: string,
  key: string,
  options: ReadOptions & { field?: string },
): ExpireTime {
  const { dk, meta } = keyMeta(r, db, key)
  if (!hasVisible(r, dk, meta, options.nowMs) || meta.type === undefined) return { exists: false }
  const type = meta.type
  if (options.field !== undefined || type === 'string') {
    let element: Uint8Array = new Uint8Array(0)
    if (options.field !== undefined) {
      if (!FIELD_TYPES.includes(type))
        throw new NodusError('INVALID_ARGUMENT', `a ${type} has no fields or members to expire one by one`, {
          details: { db, key, type },
        })
      element = type === 'json' ? concat(JSON_MEMBER, utf8(options.field)) : utf8(options.field)
    }
    const bytes = r.get(elemKey(dk, type, element))
    const rec = bytes === undefined ? undefined : decodeRecord(bytes)
    if (rec === undefined || !visible(rec, options.nowMs)) return { exists: false }
    return rec.expireAt === undefined ? { exists: true } : { exists: true, expireAt: rec.expireAt }
  }
  // A live element without expireAt never expires, so neither does the key.
  if (meta.liveWithTtl < meta.live) return { exists: true }
  let latest = 0
  for (const [, rec] of visibleElements(r, { dk, meta, nowMs: options.nowMs }, type)) {
    if (rec.expireAt === undefined) return { exists: true }
    latest = Math.max(latest, rec.expireAt)
  }
  return { exists: true, expireAt: latest }
}
