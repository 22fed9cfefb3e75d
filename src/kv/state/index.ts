/**
 * The kv area's typed state: applyOp folds signed, checked ops into materialized state per type
 * (last writer wins per element, commutative and idempotent), readers per type with Redis's
 * semantics, TTL gc and secondary indexes. Everything runs inside an OrderedStore read or write.
 */
export { type ApplyResult, applyOp } from './apply.ts'
export { get, hget, hgetall, hkeys, hlen, scard, sismember, smembers } from './basic.ts'
export { type GeoHit, type GeoPos, type GeoSearch, geodist, geopos, geosearch } from './geo.ts'
export { EARTH_RADIUS_M, GEO_UNITS, type GeoUnit, geohashDecode, geohashScore } from './geohash.ts'
export { jsonGet, jsonQuery } from './json.ts'
export { MAX_DB_BYTES, MAX_ELEMENT_BYTES, MAX_KEY_BYTES } from './keys.ts'
export { exists, type GcResult, gc, keyType, type ScanPage, scan } from './keyspace.ts'
export { type ListElement, llen, lrange } from './list.ts'
export { type Intent, type JsonValue, KV_OPS, parseOp, parseStreamId } from './ops.ts'
export type { ReadOptions } from './read.ts'
export {
  byIndex,
  defineIndex,
  dropIndex,
  type IndexQuery,
  type IndexSpec,
  indexQueryOf,
  loadIndexDefs,
} from './secondary.ts'
export {
  type Sample,
  type StreamEntry,
  TS_AGGREGATIONS,
  type TsAggregation,
  tsGet,
  tsRange,
  xlen,
  xrange,
  xrevrange,
} from './stream.ts'
export { type ExpireTime, expireTime } from './ttl.ts'
export {
  parseScoreBound,
  type ScoreBound,
  type ZMember,
  type ZRangeSpec,
  zcard,
  zrange,
  zscore,
} from './zset.ts'
