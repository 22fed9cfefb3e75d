/**
 * Redis-compatible geohash scores and distances (Redis src/geohash.c, geohash_helper.c; the method,
 * re-written here): a position is a 52-bit integer, 26 bits of latitude in [−85.05112878, 85.05112878]
 * (EPSG:3857's limits) interleaved with 26 bits of longitude in [−180, 180], latitude in the even
 * bits. The score of a member is that integer, so GEOADD, GEOPOS and GEODIST give Redis's numbers
 * (GEODIST Palermo Catania = 166274.1516 m). ngeohash is not used because it spans latitude ±90, so its
 * scores and decoded positions differ from Redis's.
 *
 * Search: the shape's bounding box is covered by the geohash cells of one step (cell size about the
 * search radius, as Redis's geohashEstimateStepsByRadius picks it, made coarser until at most 16 cells
 * cover the box); each cell is one score range `[hash << (52 − 2·step), (hash + 1) << (52 − 2·step))`,
 * and every candidate is then checked by exact distance.
 */
import { GEO_LAT_LIMIT, GEO_LON_LIMIT } from './ops.ts'

/** Bits per coordinate. */
export const GEO_STEP = 26
/** Redis's earth radius, m (EARTH_RADIUS_IN_METERS). */
export const EARTH_RADIUS_M = 6372797.560856
/** Half the Mercator world width, m (Redis's MERCATOR_MAX). */
const MERCATOR_MAX_M = 20037726.37

const LAT_MIN = -GEO_LAT_LIMIT
const LAT_SCALE = 2 * GEO_LAT_LIMIT
const LON_MIN = -GEO_LON_LIMIT
const LON_SCALE = 2 * GEO_LON_LIMIT

/** Units of GEODIST and GEOSEARCH and their metres (Redis's extractUnitOrReply). */
export const GEO_UNITS = { m: 1, km: 1000, mi: 1609.34, ft: 0.3048 } as const
export type GeoUnit = keyof typeof GEO_UNITS

const degRad = (d: number): number => (d * Math.PI) / 180
const radDeg = (r: number): number => (r * 180) / Math.PI

/** Bit i of a 16-bit x to bit 2i (32-bit arithmetic). */
function spread(x: number): number {
  x = (x | (x << 8)) & 0x00ff00ff
  x = (x | (x << 4)) & 0x0f0f0f0f
  x = (x | (x << 2)) & 0x33333333
  return (x | (x << 1)) & 0x55555555
}

/** Inverse of {@link spread}: the even bits of x, packed. */
function squash(x: number): number {
  x &= 0x55555555
  x = (x | (x >>> 1)) & 0x33333333
  x = (x | (x >>> 2)) & 0x0f0f0f0f
  x = (x | (x >>> 4)) & 0x00ff00ff
  return (x | (x >>> 8)) & 0x0000ffff
}

/** Interleave two values of up to 26 bits: `lat` in the even bits, `lon` in the odd ones. */
export function interleave(lat: number, lon: number): number {
  const lo = spread(lat & 0x1fff) | (spread(lon & 0x1fff) << 1)
  const hi = spread(lat >>> 13) | (spread(lon >>> 13) << 1)
  return hi * 2 ** 26 + (lo >>> 0)
}

/** Inverse of {@link interleave}: `[lat, lon]` bits. */
export function deinterleave(hash: number): [number, number] {
  const hi = Math.floor(hash / 2 ** 26)
  const lo = hash % 2 ** 26
  return [squash(lo) | (squash(hi) << 13), squash(lo >>> 1) | (squash(hi >>> 1) << 13)]
}

/** Cell indexes of a position at `step` bits: `[latIndex, lonIndex]`. */
function cellOf(lon: number, lat: number, step: number): [number, number] {
  const n = 2 ** step
  const ilat = Math.min(Math.floor(((lat - LAT_MIN) / LAT_SCALE) * n), n - 1)
  const ilon = Math.min(Math.floor(((lon - LON_MIN) / LON_SCALE) * n), n - 1)
  return [Math.max(ilat, 0), Math.max(ilon, 0)]
}

/** The 52-bit geohash score of a position (Redis's GEOADD score). */
export function geohashScore(lon: number, lat: number): number {
  const [ilat, ilon] = cellOf(lon, lat, GEO_STEP)
  return interleave(ilat, ilon)
}

/** The position a score stands for, `[lon, lat]`: the centre of its cell (Redis's GEOPOS). */
export function geohashDecode(score: number): [number, number] {
  const [ilat, ilon] = deinterleave(score)
  const n = 2 ** GEO_STEP
  const latMin = LAT_MIN + (ilat / n) * LAT_SCALE
  const latMax = LAT_MIN + ((ilat + 1) / n) * LAT_SCALE
  const lonMin = LON_MIN + (ilon / n) * LON_SCALE
  const lonMax = LON_MIN + ((ilon + 1) / n) * LON_SCALE
  const lon = Math.min(Math.max((lonMin + lonMax) / 2, LON_MIN), GEO_LON_LIMIT)
  const lat = Math.min(Math.max((latMin + latMax) / 2, LAT_MIN), GEO_LAT_LIMIT)
  return [lon, lat]
}

/** Distance along a meridian between two latitudes, m. */
export function latDistance(lat1: number, lat2: number): number {
  return EARTH_RADIUS_M * Math.abs(degRad(lat2) - degRad(lat1))
}

/** Great-circle distance by the haversine formula on Redis's sphere, m. */
export function geoDistance(lon1: number, lat1: number, lon2: number, lat2: number): number {
  const v = Math.sin((degRad(lon2) - degRad(lon1)) / 2)
  if (v === 0) return latDistance(lat1, lat2)
  const u = Math.sin((degRad(lat2) - degRad(lat1)) / 2)
  const a = u * u + Math.cos(degRad(lat1)) * Math.cos(degRad(lat2)) * v * v
  return 2 * EARTH_RADIUS_M * Math.asin(Math.sqrt(a))
}

/** The search shape, in metres: a circle or a box (width along the parallel, height along the meridian). */
export type GeoShape = { radiusM: number } | { widthM: number; heightM: number }

/**
 * Distance from the centre to a point when the point is inside `shape`, else undefined. A box holds a
 * point whose latitude distance is at most height/2 and whose distance along its own parallel to the
 * centre's meridian is at most width/2 (Redis's geohashGetDistanceIfInRectangle).
 */
export function distanceIfInside(
  shape: GeoShape,
  lon: number,
  lat: number,
  cLon: number,
  cLat: number,
): number | undefined {
  if ('radiusM' in shape) {
    const d = geoDistance(cLon, cLat, lon, lat)
    return d > shape.radiusM ? undefined : d
  }
  if (latDistance(lat, cLat) > shape.heightM / 2) return undefined
  if (geoDistance(lon, lat, cLon, lat) > shape.widthM / 2) return undefined
  return geoDistance(cLon, cLat, lon, lat)
}

/** Redis's step estimate: the coarsest step whose cells are still about `rangeM` wide. */
function estimateStep(rangeM: number, lat: number): number {
  if (rangeM === 0) return GEO_STEP
  let step = 1
  for (let r = rangeM; r < MERCATOR_MAX_M; r *= 2) step++
  step -= 2
  if (Math.abs(lat) > 66) step--
  if (Math.abs(lat) > 80) step--
  return Math.min(Math.max(step, 1), GEO_STEP)
}

/** Most cells one search scans. */
const MAX_CELLS = 16

/**
 * Score ranges `[lo, hi)` whose members may lie in `shape` around (cLon, cLat): the cells of one step
 * that meet the shape's bounding box, merged where adjacent. Candidates still need
 * {@link distanceIfInside}.
 */
export function searchRanges(shape: GeoShape, cLon: number, cLat: number): [number, number][] {
  const halfW = 'radiusM' in shape ? shape.radiusM : shape.widthM / 2
  const halfH = 'radiusM' in shape ? shape.radiusM : shape.heightM / 2
  const latDelta = radDeg(halfH / EARTH_RADIUS_M)
  const minLat = Math.max(cLat - latDelta, LAT_MIN)
  const maxLat = Math.min(cLat + latDelta, GEO_LAT_LIMIT)
  const edge = Math.max(Math.abs(cLat - latDelta), Math.abs(cLat + latDelta))
  const cos = Math.cos(degRad(Math.min(edge, 90)))
  const lonDelta = cos <= 1e-12 ? 360 : radDeg(halfW / EARTH_RADIUS_M / cos)
  const rangeM = 'radiusM' in shape ? shape.radiusM : Math.hypot(halfW, halfH)
  for (let step = estimateStep(rangeM, cLat); ; step--) {
    const n = 2 ** step
    const [iy0] = cellOf(0, minLat, step)
    const [iy1] = cellOf(0, maxLat, step)
    const ix0 = Math.floor(((cLon - lonDelta - LON_MIN) / LON_SCALE) * n)
    const ix1 = Math.floor(((cLon + lonDelta - LON_MIN) / LON_SCALE) * n)
    const nx = Math.min(ix1 - ix0 + 1, n)
    if (nx * (iy1 - iy0 + 1) > MAX_CELLS && step > 1) continue
    const shift = 2 ** (2 * (GEO_STEP - step))
    const ranges: [number, number][] = []
    for (let iy = iy0; iy <= iy1; iy++) {
      for (let k = 0; k < nx; k++) {
        const ix = (((ix0 + k) % n) + n) % n
        const h = interleave(iy, ix)
        ranges.push([h * shift, (h + 1) * shift])
      }
    }
    ranges.sort((a, b) => a[0] - b[0])
    const merged: [number, number][] = []
    for (const r of ranges) {
      const last = merged.at(-1)
      if (last !== undefined && last[1] >= r[0]) last[1] = Math.max(last[1], r[1])
      else merged.push([r[0], r[1]])
    }
    return merged
  }
}
