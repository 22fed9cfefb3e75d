/**
 * The kv area's HTTP routes (docs/API.md):
 * - `POST /kv/ops` `{ ops: [base64 envelope] }` → `{ results: [{ id?, status, code?, message? }] }`:
 *   apply signed operations (the client signs; the node never sees a writer's private key);
 * - `GET /kv` → the databases this node hosts; `GET /kv/:db` → one database's sync status;
 * - `POST /kv/:db/host` → host it (and sync it now); `POST /kv/:db/sync` → sync it now;
 * - `GET /kv/:db/:key` → the key's type and value; query parameters select a range as Redis's
 *   LRANGE, ZRANGE, GEOSEARCH, XRANGE, TS.RANGE and JSON.GET do (key-read.ts; at most 1,000
 *   elements: GraphQL reads longer ranges).
 *
 * Values in JSON: strings, numbers, booleans, null, lists and maps as they are; bytes as
 * `{ "$bytes": "<base64>" }`.
 */
import type { ApiRoutes } from '../api/index.ts'
import type { Clock } from '../common/clock.ts'
import type { Kv } from './area.ts'
import type { KvEngine } from './engine.ts'
import { KEY_READ_QUERY_SCHEMA, type KeyReadQuery, readKey } from './key-read.ts'

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
          summary: 'A database: hosted here (kept: for peers, as a keeper), ops held and their bytes (kv.maxDbBytes), the last sync',
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
