/**
 * Stream and time-series readers.
 *
 * Streams (Redis's XRANGE, XREVRANGE, XLEN): entries by id `<ms>-<seq>`; a bound is `-` / `+` (the
 * first / last id), `<ms>` (seq 0 as a start, the largest seq as an end), `<ms>-<seq>`, and any of the
 * last two after `(` to exclude it.
 *
 * Time series (RedisTimeSeries's TS.RANGE, TS.GET): samples by timestamp (Unix ms); TS.RANGE may
 * aggregate over fixed windows of `bucketMs` aligned to 0 (a bucket starts at `t − t mod bucketMs`,
 * as TS.RANGE … AGGREGATION does by default); empty buckets are left out.
 */
import { NodusError } from '../../common/errors.ts'
import type { KvValue } from '../op-types.ts'
import type { OrderedReader } from '../store/ordered.ts'
import { MAX_STREAM_SEQ, prefixEnd, readU64, streamIdBytes, TS_SAMPLE, u64 } from './keys.ts'
import { parseStreamId } from './ops.ts'
import { countLimit, openKey, type ReadOptions, visibleCount, visibleElements } from './read.ts'
import { decodeNumber, decodeValue } from './record.ts'

/** A stream entry: its id and its field/value list as added. */
export interface StreamEntry {
  id: string
  fields: KvValue[]
}

type Id = [number, number]

/** Parse an XRANGE bound; `side` says which end an incomplete or exclusive bound is for. */
function bound(s: string, side: 'start' | 'end'): Id | undefined {
  if (s === '-') return [0, 0]
  if (s === '+') return [Number.MAX_SAFE_INTEGER, MAX_STREAM_SEQ]
  const exclusive = s.startsWith('(')
  const t = exclusive ? s.slice(1) : s
  const id = parseStreamId(t)
  if (id === undefined) throw new NodusError('INVALID_ARGUMENT', `invalid stream ID ${JSON.stringify(s)}`)
  if (!t.includes('-') && side === 'end') id[1] = MAX_STREAM_SEQ
  if (!exclusive) return id
  // Exclusive: the next id after a start, the one before an end (undefined: nothing is in range).
  if (side === 'start') {
    if (id[1] < MAX_STREAM_SEQ) return [id[0], id[1] + 1]
    return id[0] < Number.MAX_SAFE_INTEGER ? [id[0] + 1, 0] : undefined
  }
  if (id[1] > 0) return [id[0], id[1] - 1]
  return id[0] > 0 ? [id[0] - 1, MAX_STREAM_SEQ] : undefined
}

function streamRange(
  r: OrderedReader,
  db: string,
  key: string,
  start: string,
  end: string,
  reverse: boolean,
  options: ReadOptions & { count?: number },
): StreamEntry[] {
  const view = openKey(r, db, key, ['stream'], options)
  const lo = bound(start, 'start')
  const hi = bound(end, 'end')
  if (view === undefined || lo === undefined || hi === undefined) return []
  const count = countLimit(options.count)
  const out: StreamEntry[] = []
  if (count === 0) return out
  const range = { start: streamIdBytes(lo[0], lo[1]), end: prefixEnd(streamIdBytes(hi[0], hi[1])), reverse }
  for (const [el, rec] of visibleElements(r, view, 'stream', undefined, range)) {
    out.push({ id: `${readU64(el, 0)}-${readU64(el, 8)}`, fields: decodeValue(rec.payload) as KvValue[] })
    if (out.length >= count) break
  }
  return out
}

/**
 * XRANGE key start end [COUNT n]: entries with start ≤ id ≤ end, oldest first.
 *
 * @throws NodusError `KV_WRONG_TYPE`, `INVALID_ARGUMENT` (a malformed id)
 */
export function xrange(
  r: OrderedReader,
  db: string,
  key: string,
  start: string,
  end: string,
  options: ReadOptions & { count?: number },
): StreamEntry[] {
  return streamRange(r, db, key, start, end, false, options)
}

/** XREVRANGE key end start [COUNT n]: the same entries, newest first (note the argument order). */
export function xrevrange(
  r: OrderedReader,
  db: string,
  key: string,
  end: string,
  start: string,
  options: ReadOptions & { count?: number },
): StreamEntry[] {
  return streamRange(r, db, key, start, end, true, options)
}

/** XLEN: how many entries. */
export function xlen(r: OrderedReader, db: string, key: string, options: ReadOptions): number {
  const view = openKey(r, db, key, ['stream'], options)
  return view === undefined ? 0 : visibleCount(r, view)
}

/** A time-series sample `[timestamp ms, value]`. */
export type Sample = [number, number]

/** TS.RANGE aggregations. */
export const TS_AGGREGATIONS = ['avg', 'sum', 'min', 'max', 'count', 'first', 'last'] as const
export type TsAggregation = (typeof TS_AGGREGATIONS)[number]

function* samples(
  r: OrderedReader,
  db: string,
  key: string,
  from: number,
  to: number,
  reverse: boolean,
  options: ReadOptions,
): Generator<Sample> {
  const view = openKey(r, db, key, ['ts'], options)
  if (view === undefined || from > to) return
  const range = {
    start: u64(Math.max(from, 0)),
    end: prefixEnd(u64(Math.min(to, Number.MAX_SAFE_INTEGER))),
    reverse,
  }
  for (const [el, rec] of visibleElements(r, view, 'ts', TS_SAMPLE, range))
    yield [readU64(el, 1), decodeNumber(rec.payload)]
}

/**
 * TS.RANGE key from to [AGGREGATION type bucketMs] [COUNT n]: samples with from ≤ t ≤ to in time
 * order, or one `[bucketStart, aggregate]` per non-empty bucket.
 *
 * @throws NodusError `KV_WRONG_TYPE`, `INVALID_ARGUMENT` (bucketMs not a positive integer)
 */
export function tsRange(
  r: OrderedReader,
  db: string,
  key: string,
  from: number,
  to: number,
  options: ReadOptions & { aggregation?: { type: TsAggregation; bucketMs: number }; count?: number },
): Sample[] {
  const count = countLimit(options.count)
  const agg = options.aggregation
  const out: Sample[] = []
  if (count === 0) return out
  if (agg === undefined) {
    for (const s of samples(r, db, key, from, to, false, options)) {
      out.push(s)
      if (out.length >= count) break
    }
    return out
  }
  if (!Number.isSafeInteger(agg.bucketMs) || agg.bucketMs <= 0)
    throw new NodusError('INVALID_ARGUMENT', 'bucketMs must be a positive integer')
  let bucket = -1
  let acc: Acc | undefined
  for (const [t, v] of samples(r, db, key, from, to, false, options)) {
    const b = t - (t % agg.bucketMs)
    if (acc !== undefined && b !== bucket) {
      out.push([bucket, result(agg.type, acc)])
      if (out.length >= count) return out
      acc = undefined
    }
    bucket = b
    if (acc === undefined) acc = { n: 1, sum: v, min: v, max: v, first: v, last: v }
    else {
      acc.n++
      acc.sum += v
      acc.min = Math.min(acc.min, v)
      acc.max = Math.max(acc.max, v)
      acc.last = v
    }
  }
  if (acc !== undefined) out.push([bucket, result(agg.type, acc)])
  return out
}

/** One bucket's running aggregates. */
interface Acc {
  n: number
  sum: number
  min: number
  max: number
  first: number
  last: number
}

function result(type: TsAggregation, a: Acc): number {
  switch (type) {
    case 'avg':
      return a.sum / a.n
    case 'count':
      return a.n
    default:
      return a[type]
  }
}

/** TS.GET: the latest sample, or undefined. */
export function tsGet(r: OrderedReader, db: string, key: string, options: ReadOptions): Sample | undefined {
  for (const s of samples(r, db, key, 0, Number.MAX_SAFE_INTEGER, true, options)) return s
  return undefined
}
