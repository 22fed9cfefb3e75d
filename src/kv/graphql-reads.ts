/**
 * The resolvers of the kv GraphQL queries (graphql-schema.ts): each a state reader (state/) with
 * Redis's semantics, at the node's clock, with collections bounded by `kv.graphqlMaxElements`.
 */
import type { Clock } from '../common/clock.ts'
import { NodusError } from '../common/errors.ts'
import type { Kv } from './area.ts'
import type { KvEngine } from './engine.ts'
import { decodeOp, type OpLimits } from './op.ts'
import { hlcToBytes, type KvType } from './op-types.ts'
import { keyHlc, keyId } from './reconcile/fingerprint.ts'
import {
  byIndex,
  expireTime,
  type GeoSearch,
  type GeoUnit,
  geodist,
  geopos,
  geosearch,
  get,
  hget,
  hgetall,
  indexQueryOf,
  jsonGet,
  keyType,
  lrange,
  parseScoreBound,
  scan,
  sismember,
  smembers,
  type TsAggregation,
  tsGet,
  tsRange,
  xrange,
  xrevrange,
  type ZRangeSpec,
  zrange,
  zscore,
} from './state/index.ts'

/** What the read resolvers use. */
export interface KvReadsDeps {
  kv: Pick<Kv, 'hosted' | 'status'> & { engine: Pick<KvEngine, 'reader' | 'getOp' | 'index'> }
  clock: Clock
}

export interface KvReadsOptions {
  /** Most elements one field returns (`kv.graphqlMaxElements`). */
  maxElements: number
  /** The bounds ops were accepted with (section `kv`), to decode logged ops. */
  limits: OpLimits
}

type Args = Record<string, unknown>
type Db = { db: string }
type DbKey = { db: string; key: string }

const invalid = (message: string, details: Record<string, unknown> = {}): NodusError =>
  new NodusError('INVALID_ARGUMENT', message, { details })

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
const b64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')

/** A rank: an integer in a string (ZRANGE's start and stop without BYSCORE). */
function rank(s: string, what: string): number {
  if (!/^-?\d{1,15}$/.test(s))
    throw invalid(`${what} must be an integer rank without byScore, not ${JSON.stringify(s)}`)
  return Number(s)
}

/** The read resolvers, by field of `Query`. */
export function kvReadResolvers(deps: KvReadsDeps, options: KvReadsOptions) {
  const { kv, clock } = deps
  const max = options.maxElements
  const now = () => ({ nowMs: clock.now() })
  const r = () => kv.engine.reader
  /** A COUNT / LIMIT: absent → `fallback`; negative → all (as Redis), i.e. the bound; over the bound: refused. */
  const bounded = (n: number | null | undefined, fallback = max): number => {
    if (n === undefined || n === null || n < 0) return fallback
    if (n > max) throw invalid(`count or limit ${n} is over kv.graphqlMaxElements (${max})`, { max })
    return n
  }
  const cut = <T>(xs: T[]): T[] => (xs.length > max ? xs.slice(0, max) : xs)

  return {
    databases: () => kv.hosted(),
    database: (_: unknown, a: Db) => kv.status(a.db),
    keyType: (_: unknown, a: DbKey) => keyType(r(), a.db, a.key, now()),
    get: (_: unknown, a: DbKey) => get(r(), a.db, a.key, now()) ?? null,
    hget: (_: unknown, a: DbKey & { field: string }) => hget(r(), a.db, a.key, a.field, now()) ?? null,
    hgetall: (_: unknown, a: DbKey) =>
      cut(hgetall(r(), a.db, a.key, now())).map(([field, value]) => ({ field, value })),
    lrange: (_: unknown, a: DbKey & { start: number; stop: number }) =>
      cut(lrange(r(), a.db, a.key, a.start, a.stop, now())).map((e) => ({ id: hex(e.id), value: e.value })),
    smembers: (_: unknown, a: DbKey) => cut(smembers(r(), a.db, a.key, now())),
    sismember: (_: unknown, a: DbKey & { member: string }) => sismember(r(), a.db, a.key, a.member, now()),
    zrange: (
      _: unknown,
      a: DbKey & {
        start: string
        stop: string
        byScore: boolean
        rev: boolean
        offset?: number | null
        count?: number | null
      },
    ) => {
      let spec: ZRangeSpec
      if (!a.byScore) {
        if (a.offset != null || a.count != null)
          throw invalid('offset and count (LIMIT) need byScore, as in Redis')
        spec = { by: 'rank', start: rank(a.start, 'start'), stop: rank(a.stop, 'stop'), rev: a.rev }
      } else {
        // Redis: ZRANGE key max min BYSCORE REV.
        const [lo, hi] = a.rev ? [a.stop, a.start] : [a.start, a.stop]
        spec = {
          by: 'score',
          min: parseScoreBound(lo),
          max: parseScoreBound(hi),
          rev: a.rev,
          offset: a.offset ?? 0,
          count: bounded(a.count),
        }
      }
      return cut(zrange(r(), a.db, a.key, spec, now()))
    },
    zscore: (_: unknown, a: DbKey & { member: string }) => zscore(r(), a.db, a.key, a.member, now()) ?? null,
    jsonGet: (_: unknown, a: DbKey & { path?: string | null }) => {
      if (a.path == null) return jsonGet(r(), a.db, a.key, now()) ?? null
      return cut(jsonGet(r(), a.db, a.key, { ...now(), path: a.path }))
    },
    xrange: (_: unknown, a: DbKey & { start: string; end: string; count?: number | null }) =>
      xrange(r(), a.db, a.key, a.start, a.end, { ...now(), count: bounded(a.count) }),
    xrevrange: (_: unknown, a: DbKey & { start: string; end: string; count?: number | null }) =>
      xrevrange(r(), a.db, a.key, a.end, a.start, { ...now(), count: bounded(a.count) }),
    tsRange: (
      _: unknown,
      a: DbKey & {
        from: number
        to?: number | null
        aggregation?: TsAggregation | null
        bucketMs?: number | null
        count?: number | null
      },
    ) => {
      if ((a.aggregation == null) !== (a.bucketMs == null))
        throw invalid('aggregation and bucketMs go together (AGGREGATION type bucketMs)')
      const o = {
        ...now(),
        count: bounded(a.count),
        ...(a.aggregation == null
          ? {}
          : { aggregation: { type: a.aggregation, bucketMs: a.bucketMs as number } }),
      }
      return tsRange(r(), a.db, a.key, a.from, a.to ?? Number.MAX_SAFE_INTEGER, o).map(
        ([timestamp, value]) => ({
          timestamp,
          value,
        }),
      )
    },
    tsGet: (_: unknown, a: DbKey) => {
      const s = tsGet(r(), a.db, a.key, now())
      return s === undefined ? null : { timestamp: s[0], value: s[1] }
    },
    geopos: (_: unknown, a: DbKey & { members: string[] }) => {
      if (a.members.length > max) throw invalid(`more than ${max} members (kv.graphqlMaxElements)`)
      return geopos(r(), a.db, a.key, a.members, now()).map((p) =>
        p === undefined ? null : { lon: p[0], lat: p[1] },
      )
    },
    geodist: (_: unknown, a: DbKey & { member1: string; member2: string; unit: GeoUnit }) =>
      geodist(r(), a.db, a.key, a.member1, a.member2, { ...now(), unit: a.unit }) ?? null,
    geosearch: (_: unknown, a: DbKey & GeoArgs) =>
      cut(geosearch(r(), a.db, a.key, geoSearchOf(a, bounded), now())),
    scan: (
      _: unknown,
      a: Db & { prefix?: string | null; after?: string | null; type?: string | null; limit: number },
    ) => {
      const page = scan(r(), a.db, {
        ...now(),
        limit: bounded(a.limit),
        ...(a.prefix == null ? {} : { prefix: a.prefix }),
        ...(a.after == null ? {} : { after: a.after }),
        ...(a.type == null ? {} : { type: a.type as KvType }),
      })
      return { keys: page.keys, cursor: page.cursor ?? null }
    },
    byIndex: (_: unknown, a: Db & { name: string; limit: number } & Args) =>
      byIndex(r(), a.db, a.name, indexQueryOf(a, invalid), { ...now(), limit: bounded(a.limit) }),
    ttl: (_: unknown, a: DbKey & { field?: string | null }) => {
      const o = now()
      const t = expireTime(r(), a.db, a.key, { ...o, ...(a.field == null ? {} : { field: a.field }) })
      return t.expireAt === undefined
        ? { exists: t.exists, expireAt: null, ttlMs: null }
        : { exists: t.exists, expireAt: t.expireAt, ttlMs: t.expireAt - o.nowMs }
    },
    opsSince: async (
      _: unknown,
      a: Db & { after?: { ms: number; c: number } | null; cursor?: string | null; limit: number },
    ) => {
      const limit = bounded(a.limit)
      let lo: Uint8Array = new Uint8Array(0)
      if (a.cursor != null) {
        const last = Buffer.from(a.cursor, 'base64url')
        if (last.length !== 40) throw invalid('cursor is not one opsSince returned')
        lo = Buffer.concat([last, Uint8Array.of(0)])
      } else if (a.after != null) {
        const { ms, c } = a.after
        if (!Number.isSafeInteger(ms) || ms < 0 || ms >= 2 ** 48 || c < 0 || c >= 2 ** 16)
          throw invalid('after must be { ms: Unix ms below 2^48, c: 0 to 65,535 }')
        lo = hlcToBytes({ ms, c })
      }
      const index = await kv.engine.index(a.db)
      const items = limit === 0 ? [] : index.items(r(), lo, undefined, limit)
      const limits = { ...options.limits, maxOpBytes: Number.MAX_SAFE_INTEGER }
      const ops = []
      for (const item of items) {
        const bytes = kv.engine.getOp(keyId(item))
        if (bytes === undefined) continue // removed since (a revoke voided it)
        const d = decodeOp(bytes, limits)
        ops.push({ id: hex(d.id), hlc: keyHlc(item), envelope: b64(bytes), body: d.body })
      }
      const last = items.at(-1)
      return {
        ops,
        cursor: items.length === limit && last !== undefined ? Buffer.from(last).toString('base64url') : null,
      }
    },
  }
}

interface GeoArgs {
  member?: string | null
  lon?: number | null
  lat?: number | null
  radius?: number | null
  width?: number | null
  height?: number | null
  unit: GeoUnit
  order?: 'asc' | 'desc' | null
  count?: number | null
}

/** GEOSEARCH's FROMMEMBER | FROMLONLAT and BYRADIUS | BYBOX, exactly one of each. */
function geoSearchOf(
  a: GeoArgs,
  bounded: (n: number | null | undefined, fallback?: number) => number,
): GeoSearch {
  const byMember = a.member != null
  const byPos = a.lon != null && a.lat != null
  if (byMember === byPos) throw invalid('give member, or lon and lat (FROMMEMBER or FROMLONLAT)')
  const byRadius = a.radius != null
  const byBox = a.width != null && a.height != null
  if (byRadius === byBox) throw invalid('give radius, or width and height (BYRADIUS or BYBOX)')
  const q: GeoSearch = {
    from: byMember ? { member: a.member as string } : { lon: a.lon as number, lat: a.lat as number },
    by: byRadius
      ? { radius: a.radius as number, unit: a.unit }
      : { width: a.width as number, height: a.height as number, unit: a.unit },
  }
  if (a.order != null) q.order = a.order
  if (a.count != null) q.count = bounded(a.count)
  return q
}
