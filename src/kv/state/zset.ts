/**
 * Sorted-set readers (Redis's ZRANGE by rank and BYSCORE with exclusive bounds, ±inf, LIMIT and REV;
 * ZSCORE, ZCARD). They read the ZIDX table (score order, then member bytes, as Redis orders ties
 * lexicographically), so a BYSCORE range is one key range. Geo keys are sorted sets too (their scores
 * are geohashes), so these readers accept them, as Redis's do.
 */
import { NodusError } from '../../common/errors.ts'
import type { OrderedReader } from '../store/ordered.ts'
import { elemKey } from './element.ts'
import { concat, f64, fromUtf8, prefixEnd, readF64, readU64, utf8, zidxPrefix } from './keys.ts'
import { countLimit, type KeyView, normalizeRange, openKey, type ReadOptions, visibleCount } from './read.ts'
import { decodeNumber, decodeRecord, visible } from './record.ts'

/** A score bound: the score and whether it is excluded (Redis's `(` prefix). */
export interface ScoreBound {
  value: number
  exclusive: boolean
}

/** A member and its score. */
export interface ZMember {
  member: string
  score: number
}

/** What ZRANGE selects: ranks `start`..`stop` (inclusive, negative from the end), or scores `min`..`max`. */
export type ZRangeSpec =
  | { by: 'rank'; start: number; stop: number; rev?: boolean }
  | {
      by: 'score'
      min: ScoreBound
      max: ScoreBound
      /** Highest score first (Redis's REV; `min` and `max` keep their meaning here). */
      rev?: boolean
      /** LIMIT offset count: skip `offset`, return at most `count` (negative: all). */
      offset?: number
      count?: number
    }

/**
 * A BYSCORE bound as Redis writes it: a number, `-inf`, `+inf` (or `inf`), optionally after `(` for an
 * exclusive bound.
 *
 * @throws NodusError `INVALID_ARGUMENT` when it is none of these
 */
export function parseScoreBound(s: string | number): ScoreBound {
  if (typeof s === 'number') return { value: s, exclusive: false }
  const exclusive = s.startsWith('(')
  const t = (exclusive ? s.slice(1) : s).toLowerCase()
  const value =
    t === '-inf'
      ? Number.NEGATIVE_INFINITY
      : t === '+inf' || t === 'inf'
        ? Number.POSITIVE_INFINITY
        : Number(t)
  if (t === '' || Number.isNaN(value))
    throw new NodusError('INVALID_ARGUMENT', `min or max is not a float: ${JSON.stringify(s)}`)
  return { value, exclusive }
}

/** Visible ZIDX entries of a key in score order (or reverse) within `[start, end)` of scores. */
function* scored(
  r: OrderedReader,
  view: KeyView,
  start?: Uint8Array,
  end?: Uint8Array,
  reverse = false,
): Generator<ZMember> {
  const zp = zidxPrefix(view.dk)
  const range = { start: start ?? zp, end: end ?? prefixEnd(zp), reverse }
  for (const [k, v] of r.range(range)) {
    if (v.length === 8 && view.nowMs >= readU64(v)) continue
    yield { member: fromUtf8(k.subarray(zp.length + 8)), score: readF64(k, zp.length) }
  }
}

/**
 * ZRANGE. By rank: O(start + count). By score: O(log n + offset + count), skipping equal scores for
 * exclusive bounds.
 *
 * @throws NodusError `KV_WRONG_TYPE`
 */
export function zrange(
  r: OrderedReader,
  db: string,
  key: string,
  spec: ZRangeSpec,
  options: ReadOptions,
): ZMember[] {
  const view = openKey(r, db, key, ['zset', 'geo'], options)
  if (view === undefined) return []
  const out: ZMember[] = []
  if (spec.by === 'rank') {
    const range = normalizeRange(spec.start, spec.stop, visibleCount(r, view))
    if (range === undefined) return []
    let i = 0
    for (const m of scored(r, view, undefined, undefined, spec.rev ?? false)) {
      if (i > range[1]) break
      if (i >= range[0]) out.push(m)
      i++
    }
    return out
  }
  const { min, max } = spec
  const offset = spec.offset ?? 0
  const count = countLimit(spec.count)
  if (offset < 0 || count === 0 || min.value > max.value) return []
  const zp = zidxPrefix(view.dk)
  const start = concat(zp, f64(min.value))
  const end = prefixEnd(concat(zp, f64(max.value)))
  let skipped = 0
  for (const m of scored(r, view, start, end, spec.rev ?? false)) {
    if ((min.exclusive && m.score === min.value) || (max.exclusive && m.score === max.value)) continue
    if (skipped < offset) {
      skipped++
      continue
    }
    out.push(m)
    if (out.length >= count) break
  }
  return out
}

/** ZSCORE: a member's score, or undefined. */
export function zscore(
  r: OrderedReader,
  db: string,
  key: string,
  member: string,
  options: ReadOptions,
): number | undefined {
  const view = openKey(r, db, key, ['zset', 'geo'], options)
  if (view === undefined) return undefined
  const b = r.get(elemKey(view.dk, view.meta.type === 'geo' ? 'geo' : 'zset', utf8(member)))
  if (b === undefined) return undefined
  const rec = decodeRecord(b)
  return visible(rec, options.nowMs) ? decodeNumber(rec.payload) : undefined
}

/** ZCARD: how many members. */
export function zcard(r: OrderedReader, db: string, key: string, options: ReadOptions): number {
  const view = openKey(r, db, key, ['zset', 'geo'], options)
  return view === undefined ? 0 : visibleCount(r, view)
}
