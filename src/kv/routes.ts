/**
 * The kv area's HTTP routes (docs/API.md):
 * - `POST /kv/ops` `{ ops: [base64 envelope] }` → `{ results: [{ id?, status, code?, message? }] }`:
 *   apply signed operations (the client signs; the node never sees a writer's private key);
 * - `GET /kv` → the databases this node hosts; `GET /kv/:db` → one database's sync status;
 * - `POST /kv/:db/host` → host it (and sync it now); `POST /kv/:db/sync` → sync it now;
 * - `GET /kv/:db/:key` → the key's type and value; query parameters select a range as Redis's
 *   LRANGE, ZRANGE, GEOSEARCH, XRANGE, TS.RANGE and JSON.GET do (key-read.ts; at most 1,000
 *   elements: GraphQL reads longer ranges).
 * - `GET /kv/:db/index/:name?eq=V` or `?gt=…&gte=…&lt=…&lte=…` [`&limit=N`] → `{ db, index, keys }`:
 *   the keys whose value in a secondary index the database declares (index-spec.ts) equals `eq` or
 *   lies within the bounds, by value then key, at most `limit` (default and most 1,000). A value is
 *   a number when it reads as a JSON number (`42`, `-1.5e3`), a string as a JSON string (`"42"`),
 *   else the text itself (`Paris`). `KV_INDEX_NOT_FOUND` (404) for an undeclared index.
 *
 * Values in JSON: strings, numbers, booleans, null, lists and maps as they are; bytes as
 * `{ "$bytes": "<base64>" }`.
 */
import type { ApiRoutes } from '../api/index.ts'
import type { Clock } from '../common/clock.ts'
import { NodusError } from '../common/errors.ts'
import type { Kv } from './area.ts'
import type { KvEngine } from './engine.ts'
import { KEY_READ_QUERY_SCHEMA, type KeyReadQuery, MAX_READ_ELEMENTS, readKey } from './key-read.ts'
import { byIndex, indexQueryOf } from './state/index.ts'

/** What the kv routes use. */
export interface KvRoutesDeps {
  kv: Pick<Kv, 'submit' | 'host' | 'sync' | 'status' | 'hosted'> & { engine: Pick<KvEngine, 'reader'> }
  clock: Clock
}

/** Largest body of POST /kv/ops, bytes (8 MiB): beyond it 413 MESSAGE_TOO_LARGE. */
export const KV_OPS_BODY_BYTES = 8 * 1024 * 1024
/** Most ops in one POST /kv/ops. */
export const MAX_OPS_PER_REQUEST = 1024

/** A KvValue as JSON (bytes as `{ $bytes: base64 }`). */
export function valueToJson(v: unknown): unknown {
  if (v instanceof Uint8Array)
    return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') }
  if (Array.isArray(v)) return v.map(valueToJson)
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) out[k] = valueToJson(x)
    return out
  }
  return v
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

const DbParams = {
  type: 'object',
  properties: { db: { type: 'string', minLength: 1, maxLength: 128 } },
  required: ['db'],
} as const

const INDEX_BOUNDS = ['eq', 'gt', 'gte', 'lt', 'lte'] as const
type IndexReadQuery = { [k in (typeof INDEX_BOUNDS)[number]]?: string } & { limit?: number }

/** A query-string value of an index lookup: a JSON number or string as such, else the text itself. */
function indexScalar(text: string | undefined): string | number | undefined {
  if (text === undefined) return undefined
  try {
    const v: unknown = JSON.parse(text)
    if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) return v
  } catch {
    // not JSON: the text
  }
  return text
}

/** The kv routes, as a plugin for createApiServer. */
export function kvRoutes(deps: KvRoutesDeps): ApiRoutes {
  const { kv, clock } = deps
  return (r, ctx) => {
    r.post<{ Body: { ops: string[] } }>(
      '/kv/ops',
      {
        ...ctx.unmetered,
        // 1,024 envelopes in base64: larger than the API's 64 KiB default for JSON bodies.
        bodyLimit: KV_OPS_BODY_BYTES,
        schema: {
          tags: ['kv'],
          summary: 'Apply signed kv operations (base64 envelopes, at most 1,024); each gets its own result',
          security: [{ bearer: [] }],
          body: {
            type: 'object',
            properties: {
              ops: { type: 'array', minItems: 1, maxItems: MAX_OPS_PER_REQUEST, items: { type: 'string' } },
            },
            required: ['ops'],
          },
        },
      },
      async (req) => {
        const envelopes = req.body.ops.map((b) => new Uint8Array(Buffer.from(b, 'base64')))
        const results = await kv.submit(envelopes)
        return {
          results: results.map((x) =>
            x.status === 'refused'
              ? {
                  ...(x.id === undefined ? {} : { id: hex(x.id) }),
                  status: x.status,
                  code: x.code,
                  message: x.message,
                }
              : { id: hex(x.id), status: x.status },
          ),
        }
      },
    )
    r.get(
      '/kv',
      { schema: { tags: ['kv'], summary: 'The databases this node hosts or keeps' } },
      async () => ({
        databases: kv.hosted(),
      }),
    )
    r.get<{ Params: { db: string } }>(
      '/kv/:db',
      {
        schema: {
          tags: ['kv'],
          summary:
            'A database: hosted here (kept: for peers, as a keeper), ops held and their bytes (kv.maxDbBytes), the last sync',
          params: DbParams,
        },
      },
      async (req) => kv.status(req.params.db),
    )
    r.post<{ Params: { db: string } }>(
      '/kv/:db/host',
      {
        ...ctx.mutating,
        schema: {
          tags: ['kv'],
          summary: 'Host a database here: follow its gossip, keep its ops, sync it now',
          security: [{ bearer: [] }],
          params: DbParams,
        },
      },
      async (req) => {
        await kv.host(req.params.db)
        return kv.status(req.params.db)
      },
    )
    r.post<{ Params: { db: string } }>(
      '/kv/:db/sync',
      {
        ...ctx.mutating,
        schema: {
          tags: ['kv'],
          summary: 'Run anti-entropy for a database now, with up to 3 of its other hosts and keepers',
          security: [{ bearer: [] }],
          params: DbParams,
        },
      },
      async (req) => ({ reports: await kv.sync(req.params.db) }),
    )
    r.get<{ Params: { db: string; name: string }; Querystring: IndexReadQuery }>(
      '/kv/:db/index/:name',
      {
        schema: {
          tags: ['kv'],
          summary:
            'Keys by a declared secondary index: eq, or bounds gt/gte/lt/lte (JSON numbers are numbers; other text is a string); at most 1,000',
          params: {
            type: 'object',
            properties: { db: { type: 'string', maxLength: 128 }, name: { type: 'string', maxLength: 64 } },
            required: ['db', 'name'],
          },
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              ...Object.fromEntries(INDEX_BOUNDS.map((k) => [k, { type: 'string', maxLength: 1024 }])),
              limit: { type: 'integer', minimum: 1, maximum: MAX_READ_ELEMENTS },
            },
          },
        },
      },
      async (req) => {
        const { db, name } = req.params
        const parts = Object.fromEntries(INDEX_BOUNDS.map((k) => [k, indexScalar(req.query[k])]))
        const q = indexQueryOf(parts, (m) => new NodusError('INVALID_ARGUMENT', m))
        const limit = req.query.limit ?? MAX_READ_ELEMENTS
        return {
          db,
          index: name,
          keys: byIndex(kv.engine.reader, db, name, q, { nowMs: clock.now(), limit }),
        }
      },
    )
    r.get<{ Params: { db: string; key: string }; Querystring: KeyReadQuery }>(
      '/kv/:db/:key',
      {
        schema: {
          tags: ['kv'],
          summary:
            'A key’s type and value, or a range of it (list, zset and stream ranks or bounds, geo search, time-series range, JSONPath; at most 1,000 elements)',
          params: {
            type: 'object',
            properties: { db: { type: 'string', maxLength: 128 }, key: { type: 'string', maxLength: 1024 } },
            required: ['db', 'key'],
          },
          querystring: KEY_READ_QUERY_SCHEMA,
        },
      },
      async (req) => {
        const { db, key } = req.params
        const { type, value } = readKey(kv.engine.reader, db, key, req.query, clock.now())
        return { db, key, type, value: valueToJson(value) }
      },
    )
  }
}
