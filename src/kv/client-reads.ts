/**
 * The reads of the kv client (client.ts): one GraphQL query each, with Redis's commands and
 * semantics (graphql-schema.ts). Each sees the node's state when it answers; collections hold at most
 * `kv.graphqlMaxElements` elements.
 */
import type { AbortOptions } from '../common/abort.ts'
import { KvGraphqlTransport, valueFromJson } from './client-transport.ts'
import type { Hlc, KvType, KvValue } from './op-types.ts'
import type { GeoUnit, TsAggregation } from './state/index.ts'

export interface ZRangeOptions extends AbortOptions {
  byScore?: boolean
  rev?: boolean
  offset?: number
  count?: number
}

export interface GeoSearchQuery {
  member?: string
  lon?: number
  lat?: number
  radius?: number
  width?: number
  height?: number
  unit?: GeoUnit
  order?: 'asc' | 'desc'
  count?: number
}

/** An operation of the log (`opsSince`). */
export interface LoggedOp {
  id: string
  hlc: Hlc
  /** The signed envelope, base64. */
  envelope: string
  /** Its body, as JSON (bytes as `{ $bytes }`). */
  body: Record<string, unknown>
}

/** The reads of a node's kv GraphQL interface (open: no token needed). */
export class KvReadClient extends KvGraphqlTransport {
  databases = (o: AbortOptions = {}) => this.read<string[]>('databases', {}, '', o)
  keyType = (db: string, key: string, o: AbortOptions = {}) =>
    this.read<KvType | 'none'>('keyType', { db: ['String!', db], key: ['String!', key] }, '', o)
  get = async (db: string, key: string, o: AbortOptions = {}) =>
    valueFromJson(await this.read('get', { db: ['String!', db], key: ['String!', key] }, '', o)) ?? undefined
  hget = async (db: string, key: string, field: string, o: AbortOptions = {}) =>
    valueFromJson(
      await this.read(
        'hget',
        { db: ['String!', db], key: ['String!', key], field: ['String!', field] },
        '',
        o,
      ),
    ) ?? undefined
  hgetall = async (db: string, key: string, o: AbortOptions = {}) => {
    const r = await this.read<{ field: string; value: unknown }[]>(
      'hgetall',
      { db: ['String!', db], key: ['String!', key] },
      'field value',
      o,
    )
    return Object.fromEntries(r.map((f) => [f.field, valueFromJson(f.value)])) as { [f: string]: KvValue }
  }
  lrange = async (db: string, key: string, start = 0, stop = -1, o: AbortOptions = {}) => {
    const r = await this.read<{ id: string; value: unknown }[]>(
      'lrange',
      { db: ['String!', db], key: ['String!', key], start: ['Int', start], stop: ['Int', stop] },
      'id value',
      o,
    )
    return r.map((e) => ({ id: e.id, value: valueFromJson(e.value) }))
  }
  smembers = (db: string, key: string, o: AbortOptions = {}) =>
    this.read<string[]>('smembers', { db: ['String!', db], key: ['String!', key] }, '', o)
  sismember = (db: string, key: string, member: string, o: AbortOptions = {}) =>
    this.read<boolean>(
      'sismember',
      { db: ['String!', db], key: ['String!', key], member: ['String!', member] },
      '',
      o,
    )
  /** ZRANGE key start stop [BYSCORE] [REV] [LIMIT offset count] (Redis's argument order, also with REV). */
  zrange = (db: string, key: string, start: string | number, stop: string | number, o: ZRangeOptions = {}) =>
    this.read<{ member: string; score: number | string }[]>(
      'zrange',
      {
        db: ['String!', db],
        key: ['String!', key],
        start: ['String!', String(start)],
        stop: ['String!', String(stop)],
        byScore: ['Boolean', o.byScore],
        rev: ['Boolean', o.rev],
        offset: ['Int', o.offset],
        count: ['Int', o.count],
      },
      'member score',
      o,
    ).then((r) => r.map((m) => ({ member: m.member, score: scoreOf(m.score) })))
  zscore = async (db: string, key: string, member: string, o: AbortOptions = {}) => {
    const s = await this.read<number | string | null>(
      'zscore',
      { db: ['String!', db], key: ['String!', key], member: ['String!', member] },
      '',
      o,
    )
    return s === null ? undefined : scoreOf(s)
  }
  /** JSON.GET: the document, or with `path` (RFC 9535 JSONPath) the values it selects. */
  jsonGet = (db: string, key: string, path?: string, o: AbortOptions = {}) =>
    this.read<unknown>(
      'jsonGet',
      { db: ['String!', db], key: ['String!', key], path: ['String', path] },
      '',
      o,
    )
  xrange = (db: string, key: string, start = '-', end = '+', o: AbortOptions & { count?: number } = {}) =>
    this.#stream('xrange', db, key, start, end, o)
  /** XREVRANGE key end start (Redis's order). */
  xrevrange = (db: string, key: string, end = '+', start = '-', o: AbortOptions & { count?: number } = {}) =>
    this.#stream('xrevrange', db, key, start, end, o)
  async #stream(
    field: string,
    db: string,
    key: string,
    start: string,
    end: string,
    o: AbortOptions & { count?: number },
  ) {
    const r = await this.read<{ id: string; fields: unknown }[]>(
      field,
      {
        db: ['String!', db],
        key: ['String!', key],
        start: ['String', start],
        end: ['String', end],
        count: ['Int', o.count],
      },
      'id fields',
      o,
    )
    return r.map((e) => ({ id: e.id, fields: valueFromJson(e.fields) as KvValue[] }))
  }
  tsRange = (
    db: string,
    key: string,
    from: number,
    to: number,
    o: AbortOptions & { aggregation?: TsAggregation; bucketMs?: number; count?: number } = {},
  ) =>
    this.read<{ timestamp: number; value: number }[]>(
      'tsRange',
      {
        db: ['String!', db],
        key: ['String!', key],
        from: ['Float', from],
        to: ['Float', to],
        aggregation: ['TsAggregation', o.aggregation],
        bucketMs: ['Float', o.bucketMs],
        count: ['Int', o.count],
      },
      'timestamp value',
      o,
    )
  tsGet = async (db: string, key: string, o: AbortOptions = {}) =>
    (await this.read<{ timestamp: number; value: number } | null>(
      'tsGet',
      { db: ['String!', db], key: ['String!', key] },
      'timestamp value',
      o,
    )) ?? undefined
  geopos = (db: string, key: string, members: string[], o: AbortOptions = {}) =>
    this.read<({ lon: number; lat: number } | null)[]>(
      'geopos',
      { db: ['String!', db], key: ['String!', key], members: ['[String!]!', members] },
      'lon lat',
      o,
    )
  geodist = async (
    db: string,
    key: string,
    member1: string,
    member2: string,
    unit: GeoUnit = 'm',
    o: AbortOptions = {},
  ) =>
    (await this.read<number | null>(
      'geodist',
      {
        db: ['String!', db],
        key: ['String!', key],
        member1: ['String!', member1],
        member2: ['String!', member2],
        unit: ['GeoUnit', unit],
      },
      '',
      o,
    )) ?? undefined
  geosearch = (db: string, key: string, q: GeoSearchQuery, o: AbortOptions = {}) =>
    this.read<{ member: string; distance: number; lon: number; lat: number; score: number }[]>(
      'geosearch',
      {
        db: ['String!', db],
        key: ['String!', key],
        member: ['String', q.member],
        lon: ['Float', q.lon],
        lat: ['Float', q.lat],
        radius: ['Float', q.radius],
        width: ['Float', q.width],
        height: ['Float', q.height],
        unit: ['GeoUnit', q.unit],
        order: ['GeoOrder', q.order],
        count: ['Int', q.count],
      },
      'member distance lon lat score',
      o,
    )
  /** SCAN: keys by prefix; pass `cursor` back as `after` for the next page. */
  scan = (
    db: string,
    q: { prefix?: string; after?: string; type?: KvType; limit?: number } = {},
    o: AbortOptions = {},
  ) =>
    this.read<{ keys: string[]; cursor: string | null }>(
      'scan',
      {
        db: ['String!', db],
        prefix: ['String', q.prefix],
        after: ['String', q.after],
        type: ['KvType', q.type],
        limit: ['Int', q.limit],
      },
      'keys cursor',
      o,
    )
  /** Keys whose value in the declared secondary index `name` equals `eq` or lies within the bounds. */
  byIndex = (
    db: string,
    name: string,
    q: {
      eq?: string | number
      gt?: string | number
      gte?: string | number
      lt?: string | number
      lte?: string | number
      limit?: number
    },
    o: AbortOptions = {},
  ) =>
    this.read<string[]>(
      'byIndex',
      {
        db: ['String!', db],
        name: ['String!', name],
        eq: ['JSON', q.eq],
        gt: ['JSON', q.gt],
        gte: ['JSON', q.gte],
        lt: ['JSON', q.lt],
        lte: ['JSON', q.lte],
        limit: ['Int', q.limit],
      },
      '',
      o,
    )
  /** When a key (or one field or member) expires: `expireAt` Unix ms, absent when never. */
  ttl = (db: string, key: string, field?: string, o: AbortOptions = {}) =>
    this.read<{ exists: boolean; expireAt: number | null; ttlMs: number | null }>(
      'ttl',
      { db: ['String!', db], key: ['String!', key], field: ['String', field] },
      'exists expireAt ttlMs',
      o,
    )
  /** The op log from HLC `after` on (inclusive), in (HLC, id) order; pass `cursor` for the next page. */
  opsSince = (db: string, q: { after?: Hlc; cursor?: string; limit?: number } = {}, o: AbortOptions = {}) =>
    this.read<{ ops: LoggedOp[]; cursor: string | null }>(
      'opsSince',
      {
        db: ['String!', db],
        after: ['HlcInput', q.after],
        cursor: ['String', q.cursor],
        limit: ['Int', q.limit],
      },
      'ops { id hlc { ms c } envelope body } cursor',
      o,
    )
}

function scoreOf(s: number | string): number {
  return s === '+inf' ? Number.POSITIVE_INFINITY : s === '-inf' ? Number.NEGATIVE_INFINITY : Number(s)
}
