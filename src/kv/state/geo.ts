/**
 * Geo readers (Redis's GEOPOS, GEODIST, GEOSEARCH): members are sorted-set members whose score is a
 * 52-bit geohash (geohash.ts), so positions are the centres of their cells as in Redis. GEOSEARCH scans
 * the score ranges of the geohash cells that cover the shape, then keeps members by exact distance.
 */
import { NodusError } from '../../common/errors.ts'
import type { OrderedReader } from '../store/ordered.ts'
import { elemKey } from './element.ts'
import {
  distanceIfInside,
  GEO_UNITS,
  type GeoShape,
  type GeoUnit,
  geoDistance,
  geohashDecode,
  searchRanges,
} from './geohash.ts'
import { concat, f64, fromUtf8, readF64, readU64, utf8, zidxPrefix } from './keys.ts'
import { type KeyView, openKey, type ReadOptions } from './read.ts'
import { decodeNumber, decodeRecord, visible } from './record.ts'

/** A position `[longitude, latitude]` in degrees. */
export type GeoPos = [number, number]

/** A GEOSEARCH result. */
export interface GeoHit {
  member: string
  /** Distance from the centre, in the search's unit. */
  distance: number
  lon: number
  lat: number
  /** The geohash score. */
  score: number
}

/** GEOSEARCH's arguments. */
export interface GeoSearch {
  /** FROMMEMBER or FROMLONLAT. */
  from: { member: string } | { lon: number; lat: number }
  /** BYRADIUS radius unit, or BYBOX width height unit. */
  by: { radius: number; unit: GeoUnit } | { width: number; height: number; unit: GeoUnit }
  /** ASC / DESC by distance; absent: score order, or ascending when `count` is given (as Redis). */
  order?: 'asc' | 'desc'
  /** COUNT: at most this many, the nearest (or farthest with DESC). */
  count?: number
}

function scoreOf(r: OrderedReader, view: KeyView, member: string): number | undefined {
  const b = r.get(elemKey(view.dk, view.meta.type === 'zset' ? 'zset' : 'geo', utf8(member)))
  if (b === undefined) return undefined
  const rec = decodeRecord(b)
  return visible(rec, view.nowMs) ? decodeNumber(rec.payload) : undefined
}

/** GEOPOS: each member's position, or undefined for a missing one. */
export function geopos(
  r: OrderedReader,
  db: string,
  key: string,
  members: string[],
  options: ReadOptions,
): (GeoPos | undefined)[] {
  const view = openKey(r, db, key, ['geo', 'zset'], options)
  return members.map((m) => {
    const s = view === undefined ? undefined : scoreOf(r, view, m)
    return s === undefined ? undefined : geohashDecode(s)
  })
}

/** GEODIST: the haversine distance between two members in `unit` (default m), or undefined if one is missing. */
export function geodist(
  r: OrderedReader,
  db: string,
  key: string,
  a: string,
  b: string,
  options: ReadOptions & { unit?: GeoUnit },
): number | undefined {
  const [pa, pb] = geopos(r, db, key, [a, b], options)
  if (pa === undefined || pb === undefined) return undefined
  return geoDistance(pa[0], pa[1], pb[0], pb[1]) / GEO_UNITS[options.unit ?? 'm']
}

/**
 * GEOSEARCH: members inside a circle or a box around a member or a position.
 *
 * @throws NodusError `KV_WRONG_TYPE`; `INVALID_ARGUMENT` for an unknown unit, a negative size or
 *   count, or a FROMMEMBER member that is not in the key
 */
export function geosearch(
  r: OrderedReader,
  db: string,
  key: string,
  q: GeoSearch,
  options: ReadOptions,
): GeoHit[] {
  const unit = GEO_UNITS[q.by.unit]
  if (unit === undefined)
    throw new NodusError('INVALID_ARGUMENT', 'unsupported unit provided. please use M, KM, FT, MI')
  const sizes = 'radius' in q.by ? [q.by.radius] : [q.by.width, q.by.height]
  if (sizes.some((s) => !(s >= 0) || !Number.isFinite(s)) || (q.count !== undefined && !(q.count > 0)))
    throw new NodusError('INVALID_ARGUMENT', 'radius, width, height and COUNT must be positive numbers')
  const view = openKey(r, db, key, ['geo', 'zset'], options)
  if (view === undefined) return []
  let center: GeoPos
  if ('member' in q.from) {
    const s = scoreOf(r, view, q.from.member)
    if (s === undefined) throw new NodusError('INVALID_ARGUMENT', 'could not decode requested zset member')
    center = geohashDecode(s)
  } else center = [q.from.lon, q.from.lat]
  const shape: GeoShape =
    'radius' in q.by
      ? { radiusM: q.by.radius * unit }
      : { widthM: q.by.width * unit, heightM: q.by.height * unit }
  const zp = zidxPrefix(view.dk)
  const hits: GeoHit[] = []
  for (const [lo, hi] of searchRanges(shape, center[0], center[1])) {
    for (const [k, v] of r.range({ start: concat(zp, f64(lo)), end: concat(zp, f64(hi)) })) {
      if (v.length === 8 && options.nowMs >= readU64(v)) continue
      const score = readF64(k, zp.length)
      const [lon, lat] = geohashDecode(score)
      const d = distanceIfInside(shape, lon, lat, center[0], center[1])
      if (d !== undefined)
        hits.push({ member: fromUtf8(k.subarray(zp.length + 8)), distance: d / unit, lon, lat, score })
    }
  }
  const order = q.order ?? (q.count === undefined ? undefined : 'asc')
  if (order !== undefined)
    hits.sort((a, b) => (order === 'asc' ? a.distance - b.distance : b.distance - a.distance))
  return q.count === undefined ? hits : hits.slice(0, q.count)
}
