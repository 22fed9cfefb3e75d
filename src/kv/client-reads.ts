/**
 * The reads of the kv client (client.ts): one GraphQL query each, with Redis's commands and
 * semantics (graphql-schema.ts). Each sees the node's state when it answers; collections hold at most
 * `kv.graphqlMaxElements` elements.
 */
import type { AbortOptions } from '../common/abort.ts'
import { type Clock, systemClock } from '../common/clock.ts'
import type { RecipientKeys } from '../crypto/index.ts'
import { KvKeyring, type ReaderKeyRecord } from './client-sealed.ts'
import { KvGraphqlTransport, type KvTransportOptions, valueFromJson } from './client-transport.ts'
import type { Hlc, KvType, KvValue } from './op-types.ts'
import type { DbSharesAnswer, ReaderKeyAnswer } from './sealed-routes.ts'
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

/** Options of {@link KvReadClient}. */
export interface KvReadClientOptions extends KvTransportOptions {
  /**
   * The reader's PeerId and X-Wing key pairs (secret: they stay here), to open private databases'
   * values on read and seal them on write (client-sealed.ts). Without them, reads of a private
   * database return the sealed bytes as the node holds them (`Uint8Array`s starting with "NKS").
   */
  readerKeys?: RecipientKeys
  /** The wall clock (the keyring's cache ages; the writer's HLC); default the system clock. */
  clock?: Clock
  /** Most private databases whose keys are cached; default 1,024. */
  keyringMaxDbs?: number
  /** Age after which a database's sealed status and shares are asked again, ms; default 60,000. */
  keyringMaxAgeMs?: number
}

/** A node's key record as `readerKey` returns it (public part; the node looked it up). */
export interface ReaderKey extends ReaderKeyRecord {
  epoch: number
  /** Unix ms, inclusive. */
  notBefore: number
  /** Unix ms, exclusive. */
  notAfter: number
}

/**
 * The reads of a node's kv GraphQL interface (open: no token needed). Reads of a private database's
 * values (get, hget, hgetall, lrange, xrange, xrevrange) come back opened when the client has reader
 * keys with a share (else `KV_DB_KEY_MISSING`), sealed bytes when it has none; subscription events
 * and `opsSince` bodies carry the values as signed (sealed).
 */
export class KvReadClient extends KvGraphqlTransport {
  /** The database keys this client opened (client-sealed.ts). */
  protected readonly keyring: KvKeyring

  constructor(options: KvReadClientOptions) {
    super(options)
    this.keyring = new KvKeyring(
      { shares: (db, kid, o) => this.shares(db, kid, o), clock: options.clock ?? systemClock },
      { readerKeys: options.readerKeys, maxDbs: options.keyringMaxDbs, maxAgeMs: options.keyringMaxAgeMs },
    )
  }

  /** A value as read, opened when its database is private (see the class doc). */
  #open = (db: string, key: string, type: KvType, value: KvValue, o: AbortOptions) =>
    this.keyring.open(db, key, type, value, o)

  /**
   * Whether `db` is private, and the signed `share` envelopes (base64) the node holds sealed to the
   * X-Wing key `kid` (64 hex characters).
   */
  shares = (db: string, kid: string, o: AbortOptions = {}) =>
    this.read<DbSharesAnswer>('shares', { db: ['String!', db], kid: ['String!', kid] }, 'db sealed shares', o)
  /**
   * A node's X-Wing key record as the node finds it (its own, or a verified one from the DHT): what
   * `share` seals a database key to. The client trusts the node for the lookup.
   * @throws NodusError as the node's lookup (`KEY_RECORD_NOT_FOUND`, `TIMEOUT`, …)
   */
  readerKey = async (peer: string, o: AbortOptions = {}): Promise<ReaderKey> => {
    const r = await this.read<ReaderKeyAnswer>(
      'readerKey',
      { peer: ['String!', peer] },
      'peer keyId epoch xwing notBefore notAfter',
      o,
    )
    return {
      ...r,
      keyId: new Uint8Array(Buffer.from(r.keyId, 'hex')),
      xwing: new Uint8Array(Buffer.from(r.xwing, 'base64')),
    }
  }
  databases = (o: AbortOptions = {}) => this.read<string[]>('databases', {}, '', o)
  keyType = (db: string, key: string, o: AbortOptions = {}) =>
    this.read<KvType | 'none'>('keyType', { db: ['String!', db], key: ['String!', key] }, '', o)
  get = async (db: string, key: string, o: AbortOptions = {}) => {
    const v = valueFromJson(await this.read('get', { db: ['String!', db], key: ['String!', key] }, '', o))
    return (await this.#open(db, key, 'string', v, o)) ?? undefined
  }
  hget = async (db: string, key: string, field: string, o: AbortOptions = {}) => {
    const v = valueFromJson(
      await this.read(
        'hget',
        { db: ['String!', db], key: ['String!', key], field: ['String!', field] },
        '',
        o,
      ),
    )
    if (v === null) return undefined
    const [[, opened] = []] = (await this.#open(db, key, 'hash', [[field, v]], o)) as KvValue[][]
    return opened ?? undefined
  }
  hgetall = async (db: string, key: string, o: AbortOptions = {}) => {
    const r = await this.read<{ field: string; value: unknown }[]>(
      'hgetall',
      { db: ['String!', db], key: ['String!', key] },
      'field value',
      o,
    )
    const pairs = r.map((f) => [f.field, valueFromJson(f.value)])
    return Object.fromEntries((await this.#open(db, key, 'hash', pairs, o)) as KvValue[][]) as {
      [f: string]: KvValue
    }
  }
  lrange = async (db: string, key: string, start = 0, stop = -1, o: AbortOptions = {}) => {
    const r = await this.read<{ id: string; value: unknown }[]>(
      'lrange',
      { db: ['String!', db], key: ['String!', key], start: ['Int', start], stop: ['Int', stop] },
      'id value',
      o,
    )
    const elements = r.map((e) => ({ id: e.id, value: valueFromJson(e.value) }))
    return (await this.#open(db, key, 'list', elements, o)) as { id: string; value: KvValue }[]
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
    const entries = r.map((e) => ({ id: e.id, fields: valueFromJson(e.fields) as KvValue[] }))
    return (await this.#open(db, key, 'stream', entries, o)) as { id: string; fields: KvValue[] }[]
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
