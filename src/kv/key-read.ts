/**
 * What `GET /kv/:db/:key` reads (routes.ts): the key's type and its value, or with query parameters a
 * range of it, as Redis's range commands select one. Every collection answer holds at most
 * {@link MAX_READ_ELEMENTS} elements; GraphQL reads longer ranges page by page.
 *
 * | type | parameters | as Redis |
 * |---|---|---|
 * | list | `start`, `stop` (ranks, negative from the end; default 0, -1) | LRANGE |
 * | zset, geo | `start`, `stop` (ranks), `rev` | ZRANGE start stop [REV] |
 * | zset, geo | `by=score`, `start`, `stop` (score bounds: a number, `-inf`, `+inf`, `(` for exclusive), `rev`, `offset`, `count` | ZRANGE min max BYSCORE [REV] [LIMIT offset count] |
 * | geo, zset | `radius` or `width` and `height`, `unit` (m, km, mi, ft; default m), `member` or `lon` and `lat`, `order` (asc, desc), `count` | GEOSEARCH … BYRADIUS / BYBOX |
 * | stream | `start`, `stop` (ids `<ms>-<seq>`, `-`, `+`, `(` for exclusive; default `-`, `+`), `rev`, `count` | XRANGE / XREVRANGE |
 * | ts | `start`, `stop` (Unix ms), `count`; neither: the latest sample | TS.RANGE / TS.GET |
 * | json | `path` (JSONPath, RFC 9535): the values it selects | JSON.GET |
 *
 * Any geo search parameter makes the read a GEOSEARCH (which then needs its centre and its shape).
 * Scores of ±infinity are answered as the strings `+inf` and `-inf` (JSON has no infinity).
 */
import { NodusError } from '../common/errors.ts'
import type { KvType, KvValue } from './op-types.ts'
import {
  GEO_UNITS,
  type GeoSearch,
  type GeoUnit,
  geosearch,
  get,
  hgetall,
  jsonGet,
  keyType,
  llen,
  lrange,
  parseScoreBound,
  smembers,
  tsGet,
  tsRange,
  xrange,
  xrevrange,
  type ZMember,
  zcard,
  zrange,
} from './state/index.ts'
import type { OrderedReader } from './store/ordered.ts'

/** Most elements of a collection one read returns. */
export const MAX_READ_ELEMENTS = 1000

/** The query parameters of `GET /kv/:db/:key` (module doc); all optional. */
export interface KeyReadQuery {
  start?: string
  stop?: string
  by?: 'rank' | 'score'
  rev?: boolean
  offset?: number
  count?: number
  member?: string
  lon?: number
  lat?: number
  radius?: number
  width?: number
  height?: number
  unit?: GeoUnit
  order?: 'asc' | 'desc'
  path?: string
}

/** The JSON schema of {@link KeyReadQuery}, for the route. */
export const KEY_READ_QUERY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    start: { type: 'string', maxLength: 64, description: 'range start: rank, score bound, stream id or ms' },
    stop: { type: 'string', maxLength: 64, description: 'range stop (inclusive unless `(`)' },
    by: { type: 'string', enum: ['rank', 'score'], description: 'zset: ranks (default) or scores' },
    rev: { type: 'boolean', description: 'zset, stream: highest first' },
    offset: { type: 'integer', minimum: 0, description: 'zset by score: LIMIT offset' },
    count: { type: 'integer', minimum: 1, maximum: MAX_READ_ELEMENTS, description: 'at most this many' },
    member: { type: 'string', maxLength: 512, description: 'geo search: from this member' },
    lon: { type: 'number', minimum: -180, maximum: 180, description: 'geo search: from this longitude' },
    lat: { type: 'number', minimum: -90, maximum: 90, description: 'geo search: from this latitude' },
    radius: { type: 'number', minimum: 0, description: 'geo search: within this radius' },
    width: { type: 'number', minimum: 0, description: 'geo search: within this box' },
    height: { type: 'number', minimum: 0, description: 'geo search: within this box' },
    unit: { type: 'string', enum: Object.keys(GEO_UNITS), description: 'geo search: unit (default m)' },
    order: { type: 'string', enum: ['asc', 'desc'], description: 'geo search: by distance' },
    path: { type: 'string', maxLength: 1024, description: 'json: a JSONPath (RFC 9535)' },
  },
} as const

const bad = (message: string): NodusError => new NodusError('INVALID_ARGUMENT', message)

/** An integer query parameter (a rank), or `def`. */
function rank(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def
  const n = Number(v)
  if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n)) throw bad(`${name} must be a whole number (a rank)`)
  return n
}

/** Unix ms, or `def`. */
function ms(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def
  const n = Number(v)
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw bad(`${name} must be Unix ms`)
  return n
}

/** Ranks `start..stop` of `length` elements as non-negative bounds, at most `max` of them; undefined: none. */
function window(start: number, stop: number, length: number, max: number): [number, number] | undefined {
  const s = Math.max(start < 0 ? start + length : start, 0)
  const e = Math.min(stop < 0 ? stop + length : stop, length - 1, s + max - 1)
  return s > e ? undefined : [s, e]
}

const scoreJson = (s: number): number | string =>
  s === Number.POSITIVE_INFINITY ? '+inf' : s === Number.NEGATIVE_INFINITY ? '-inf' : s

const zJson = (ms: ZMember[]): KvValue[] => ms.map((m) => ({ member: m.member, score: scoreJson(m.score) }))

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

function geoQuery(q: KeyReadQuery, count: number): GeoSearch {
  let from: GeoSearch['from']
  if (q.member !== undefined) from = { member: q.member }
  else if (q.lon !== undefined && q.lat !== undefined) from = { lon: q.lon, lat: q.lat }
  else throw bad('a geo search needs member, or lon and lat')
  const unit = q.unit ?? 'm'
  let by: GeoSearch['by']
  if (q.radius !== undefined) by = { radius: q.radius, unit }
  else if (q.width !== undefined && q.height !== undefined) by = { width: q.width, height: q.height, unit }
  else throw bad('a geo search needs radius, or width and height')
  return { from, by, count, ...(q.order === undefined ? {} : { order: q.order }) }
}

/**
 * Read (db, key) as the module doc says.
 *
 * @param nowMs - the clock, Unix ms: what expired at or before it is hidden
 * @returns the key's type and its value (KvValues; list elements `{ id: hex, value }`, zset members
 *   `{ member, score }`, geo hits `{ member, distance, lon, lat, score }`, streams `{ id, fields }`,
 *   time series samples `[ms, value]`)
 * @throws NodusError `KV_KEY_NOT_FOUND`, `KV_WRONG_TYPE`, `INVALID_ARGUMENT` (a bad bound, JSONPath or
 *   geo search)
 */
export function readKey(
  reader: OrderedReader,
  db: string,
  key: string,
  q: KeyReadQuery,
  nowMs: number,
): { type: KvType; value: KvValue } {
  const o = { nowMs }
  const type = keyType(reader, db, key, o)
  if (type === 'none')
    throw new NodusError('KV_KEY_NOT_FOUND', `no key ${key} in ${db}`, { details: { db, key } })
  const n = q.count ?? MAX_READ_ELEMENTS
  const value = ((): KvValue => {
    switch (type) {
      case 'string':
        return get(reader, db, key, o) ?? null
      case 'hash':
        return hgetall(reader, db, key, o).slice(0, n)
      case 'set':
        return smembers(reader, db, key, o).slice(0, n)
      case 'json':
        return q.path === undefined
          ? (jsonGet(reader, db, key, o) ?? null)
          : jsonGet(reader, db, key, { ...o, path: q.path })
      case 'list': {
        const w = window(rank(q.start, 'start', 0), rank(q.stop, 'stop', -1), llen(reader, db, key, o), n)
        if (w === undefined) return []
        return lrange(reader, db, key, w[0], w[1], o).map((e) => ({ id: hex(e.id), value: e.value }))
      }
      case 'zset':
      case 'geo': {
        const geo = [q.radius, q.width, q.height, q.member, q.lon, q.lat, q.unit, q.order]
        if (geo.some((v) => v !== undefined)) {
          return geosearch(reader, db, key, geoQuery(q, n), o).map((h) => ({
            ...h,
            score: scoreJson(h.score),
          }))
        }
        const rev = q.rev ?? false
        if (q.by === 'score') {
          const min = parseScoreBound(q.start ?? '-inf')
          const max = parseScoreBound(q.stop ?? '+inf')
          return zJson(
            zrange(reader, db, key, { by: 'score', min, max, rev, offset: q.offset ?? 0, count: n }, o),
          )
        }
        const w = window(rank(q.start, 'start', 0), rank(q.stop, 'stop', -1), zcard(reader, db, key, o), n)
        if (w === undefined) return []
        return zJson(zrange(reader, db, key, { by: 'rank', start: w[0], stop: w[1], rev }, o))
      }
      case 'stream': {
        const start = q.start ?? '-'
        const stop = q.stop ?? '+'
        const entries = q.rev
          ? xrevrange(reader, db, key, stop, start, { ...o, count: n })
          : xrange(reader, db, key, start, stop, { ...o, count: n })
        return entries.map((e) => ({ id: e.id, fields: e.fields }))
      }
      case 'ts':
        if (q.start === undefined && q.stop === undefined) return tsGet(reader, db, key, o) ?? null
        return tsRange(
          reader,
          db,
          key,
          ms(q.start, 'start', 0),
          ms(q.stop, 'stop', Number.MAX_SAFE_INTEGER),
          {
            ...o,
            count: n,
          },
        )
    }
  })()
  return { type, value }
}
