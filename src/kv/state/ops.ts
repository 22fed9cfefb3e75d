/**
 * The kv op catalog: which ops each type has, what args they take, and their parse into an
 * {@link Intent} the state machine applies. Every value is absolute, so last-writer-wins works: the
 * writer resolves INCR, HINCRBY, ZINCRBY, LPOP, LREM … into the absolute value or the named elements
 * it sets or removes before signing.
 *
 * | type | op | field | args |
 * |---|---|---|---|
 * | any | `del` | – | `[]`: key-level delete (every element older than the op) |
 * | string | `set` | – | `[value]` (`expireAt` hides the whole value) |
 * | hash | `hset` | f | `[value]`, or no field and `[f1, v1, f2, v2, …]` |
 * | hash | `hdel` | f | `[]`, or no field and `[f1, f2, …]` |
 * | list | `lpush`, `rpush` | – | `[v1, v2, …]`: LPUSH a b c gives c b a |
 * | list | `lrem`, `lpop`, `rpop` | – | `[id1, id2, …]`: 45-byte element ids (from lrange) to remove |
 * | list | `lset` | – | `[id, value]` |
 * | set | `sadd`, `srem` | – | `[m1, m2, …]` |
 * | zset | `zadd` | – | `[score1, m1, score2, m2, …]`; a score is a number or `'+inf'`/`'-inf'` |
 * | zset, geo | `zrem` | – | `[m1, m2, …]` |
 * | geo | `geoadd` | – | `[lon1, lat1, m1, …]`; lon in [−180, 180], lat in [−85.05112878, 85.05112878] |
 * | json | `json.set` | member? | `[value]` (JSON: no byte strings): the document, or a top-level member |
 * | json | `json.del` | member? | `[]`: the document, or a top-level member |
 * | stream | `xadd` | – | `[id, f1, v1, …]`; id `'*'` (from the op's HLC, keys.ts) or `'<ms>-<seq>'` |
 * | stream | `xdel` | – | `['<ms>-<seq>', …]` |
 * | ts | `ts.add` | – | `[timestamp, value]`; timestamp Unix ms or `'*'` (the op's HLC ms) |
 * | ts | `ts.del` | – | `[from, to]`: samples with from ≤ timestamp ≤ to |
 *
 * Fields and members (hash, set, zset, geo, json, stream field names) are strings of at most 512
 * UTF-8 bytes; keys at most 512, database ids at most 128 (keys.ts: what LMDB keys can hold). Repeated members or fields in one op: the last one counts.
 */
import { NodusError } from '../../common/errors.ts'
import type { KvType, KvValue, OpBody } from '../op-types.ts'
import {
  LIST_ID_BYTES,
  MAX_DB_BYTES,
  MAX_ELEMENT_BYTES,
  MAX_KEY_BYTES,
  MAX_STREAM_SEQ,
  utf8,
} from './keys.ts'

/** Ops of each type (`del` is key-level and valid with any type). */
export const KV_OPS: { readonly [T in KvType]: readonly string[] } = {
  string: ['set', 'del'],
  hash: ['hset', 'hdel', 'del'],
  list: ['lpush', 'rpush', 'lrem', 'lpop', 'rpop', 'lset', 'del'],
  set: ['sadd', 'srem', 'del'],
  zset: ['zadd', 'zrem', 'del'],
  json: ['json.set', 'json.del', 'del'],
  stream: ['xadd', 'xdel', 'del'],
  ts: ['ts.add', 'ts.del', 'del'],
  geo: ['geoadd', 'zrem', 'del'],
}

/** Redis's geo limits (EPSG:3857): longitudes and latitudes outside them are refused. */
export const GEO_LAT_LIMIT = 85.05112878
export const GEO_LON_LIMIT = 180

/** A JSON value (a KvValue without byte strings). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue }

/** What an op does, parsed and checked. */
export type Intent =
  | { kind: 'del' }
  | { kind: 'set'; value: KvValue }
  | { kind: 'hset'; entries: [string, KvValue][] }
  | { kind: 'hdel'; fields: string[] }
  | { kind: 'push'; side: 'left' | 'right'; values: KvValue[] }
  | { kind: 'lrem'; ids: Uint8Array[] }
  | { kind: 'lset'; id: Uint8Array; value: KvValue }
  | { kind: 'sadd'; members: string[] }
  | { kind: 'srem'; members: string[] }
  | { kind: 'zadd'; entries: [string, number][] }
  | { kind: 'zrem'; members: string[] }
  | { kind: 'geoadd'; entries: [string, number, number][] }
  | { kind: 'jset'; member: string | undefined; value: JsonValue }
  | { kind: 'jdel'; member: string | undefined }
  | { kind: 'xadd'; id: [number, number] | undefined; fields: KvValue[] }
  | { kind: 'xdel'; ids: [number, number][] }
  | { kind: 'tsadd'; t: number | undefined; value: number }
  | { kind: 'tsdel'; from: number; to: number }

function bad(body: OpBody, message: string): NodusError {
  return new NodusError('KV_ARGS_INVALID', `${body.type}.${body.op}: ${message}`, {
    details: { db: body.db, key: body.key, type: body.type, op: body.op },
    peerAction: 'reject',
  })
}

function name(body: OpBody, v: KvValue | undefined, what: string): string {
  if (typeof v !== 'string') throw bad(body, `${what} must be a string`)
  if (utf8(v).length > MAX_ELEMENT_BYTES) throw bad(body, `${what} is over ${MAX_ELEMENT_BYTES} bytes`)
  return v
}

/** Last occurrence of each name wins (one op has one stamp, so in-op order must be resolved here). */
function lastWins<T extends [string, ...unknown[]]>(entries: T[]): T[] {
  const m = new Map<string, T>()
  for (const e of entries) {
    m.delete(e[0])
    m.set(e[0], e)
  }
  return [...m.values()]
}

function names(body: OpBody, args: KvValue[], what: string): string[] {
  if (args.length === 0) throw bad(body, `needs at least one ${what}`)
  return [...new Set(args.map((a) => name(body, a, what)))]
}

function pairs(body: OpBody, args: KvValue[], what: string): [KvValue, KvValue][] {
  if (args.length === 0 || args.length % 2 !== 0) throw bad(body, `args must be ${what} pairs`)
  const out: [KvValue, KvValue][] = []
  for (let i = 0; i < args.length; i += 2) out.push([args[i] as KvValue, args[i + 1] as KvValue])
  return out
}

function num(body: OpBody, v: KvValue | undefined, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(body, `${what} must be a finite number`)
  return v
}

function timestamp(body: OpBody, v: KvValue | undefined, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw bad(body, `${what} must be a non-negative integer (Unix ms)`)
  return v
}

/** A zadd score: a number or '+inf' / '-inf' / 'inf'. */
function score(body: OpBody, v: KvValue | undefined): number {
  if (v === '+inf' || v === 'inf') return Number.POSITIVE_INFINITY
  if (v === '-inf') return Number.NEGATIVE_INFINITY
  return num(body, v, 'score')
}

function isJson(v: KvValue): v is JsonValue {
  if (v instanceof Uint8Array) return false
  if (Array.isArray(v)) return v.every(isJson)
  if (v !== null && typeof v === 'object') return Object.values(v).every(isJson)
  return true
}

/** Parse a stream id `<ms>-<seq>` (or `<ms>`, seq 0). Undefined when malformed. */
export function parseStreamId(s: string): [number, number] | undefined {
  const m = /^(\d{1,16})(?:-(\d{1,16}))?$/.exec(s)
  if (m === null) return undefined
  const ms = Number(m[1])
  const seq = m[2] === undefined ? 0 : Number(m[2])
  if (!Number.isSafeInteger(ms) || !Number.isSafeInteger(seq) || seq > MAX_STREAM_SEQ) return undefined
  return [ms, seq]
}

function streamId(body: OpBody, v: KvValue | undefined): [number, number] {
  const id = typeof v === 'string' && v.includes('-') ? parseStreamId(v) : undefined
  if (id === undefined) throw bad(body, `stream id must be '<ms>-<seq>', not ${JSON.stringify(v)}`)
  return id
}

function listId(body: OpBody, v: KvValue | undefined): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== LIST_ID_BYTES || (v[0] as number) > 1)
    throw bad(body, `a list element id is ${LIST_ID_BYTES} bytes from lrange`)
  return v
}

function noField(body: OpBody): void {
  if (body.field !== undefined) throw bad(body, 'takes no field')
}

function count(body: OpBody, n: number): void {
  if (body.args.length !== n) throw bad(body, `takes ${n} arg${n === 1 ? '' : 's'}`)
}

function parseBody(body: OpBody): Intent {
  const { args } = body
  switch (body.op) {
    case 'del':
      noField(body)
      count(body, 0)
      return { kind: 'del' }
    case 'set':
      noField(body)
      count(body, 1)
      return { kind: 'set', value: args[0] as KvValue }
    case 'hset':
      if (body.field !== undefined) {
        count(body, 1)
        return { kind: 'hset', entries: [[name(body, body.field, 'field'), args[0] as KvValue]] }
      }
      return {
        kind: 'hset',
        entries: lastWins(pairs(body, args, 'field/value').map(([f, v]) => [name(body, f, 'field'), v])),
      }
    case 'hdel':
      if (body.field !== undefined) {
        count(body, 0)
        return { kind: 'hdel', fields: [name(body, body.field, 'field')] }
      }
      return { kind: 'hdel', fields: names(body, args, 'field') }
    case 'lpush':
    case 'rpush':
      noField(body)
      if (args.length === 0) throw bad(body, 'needs at least one value')
      return { kind: 'push', side: body.op === 'lpush' ? 'left' : 'right', values: args }
    case 'lrem':
    case 'lpop':
    case 'rpop':
      noField(body)
      if (args.length === 0) throw bad(body, 'needs at least one element id')
      return { kind: 'lrem', ids: args.map((a) => listId(body, a)) }
    case 'lset':
      noField(body)
      count(body, 2)
      return { kind: 'lset', id: listId(body, args[0]), value: args[1] as KvValue }
    case 'sadd':
    case 'srem':
      noField(body)
      return { kind: body.op, members: names(body, args, 'member') }
    case 'zadd':
      noField(body)
      return {
        kind: 'zadd',
        entries: lastWins(
          pairs(body, args, 'score/member').map(([s, m]) => [name(body, m, 'member'), score(body, s)]),
        ),
      }
    case 'zrem':
      noField(body)
      return { kind: 'zrem', members: names(body, args, 'member') }
    case 'geoadd': {
      noField(body)
      if (args.length === 0 || args.length % 3 !== 0) throw bad(body, 'args must be lon/lat/member triples')
      const entries: [string, number, number][] = []
      for (let i = 0; i < args.length; i += 3) {
        const lon = num(body, args[i], 'longitude')
        const lat = num(body, args[i + 1], 'latitude')
        if (Math.abs(lon) > GEO_LON_LIMIT || Math.abs(lat) > GEO_LAT_LIMIT)
          throw bad(body, `invalid longitude,latitude pair ${lon},${lat}`)
        entries.push([name(body, args[i + 2], 'member'), lon, lat])
      }
      return { kind: 'geoadd', entries: lastWins(entries) }
    }
    case 'json.set': {
      count(body, 1)
      const value = args[0] as KvValue
      if (!isJson(value)) throw bad(body, 'a JSON value holds no byte strings')
      return {
        kind: 'jset',
        member: body.field === undefined ? undefined : name(body, body.field, 'member'),
        value,
      }
    }
    case 'json.del':
      count(body, 0)
      return { kind: 'jdel', member: body.field === undefined ? undefined : name(body, body.field, 'member') }
    case 'xadd': {
      noField(body)
      if (args.length < 3 || args.length % 2 !== 1) throw bad(body, 'args are an id then field/value pairs')
      const id = args[0] === '*' ? undefined : streamId(body, args[0])
      const fields = args.slice(1)
      for (let i = 0; i < fields.length; i += 2) name(body, fields[i], 'field')
      return { kind: 'xadd', id, fields }
    }
    case 'xdel':
      noField(body)
      if (args.length === 0) throw bad(body, 'needs at least one id')
      return { kind: 'xdel', ids: args.map((a) => streamId(body, a)) }
    case 'ts.add':
      noField(body)
      count(body, 2)
      return {
        kind: 'tsadd',
        t: args[0] === '*' ? undefined : timestamp(body, args[0], 'timestamp'),
        value: num(body, args[1], 'value'),
      }
    case 'ts.del': {
      noField(body)
      count(body, 2)
      const from = timestamp(body, args[0], 'from')
      const to = timestamp(body, args[1], 'to')
      if (from > to) throw bad(body, 'from must not be after to')
      return { kind: 'tsdel', from, to }
    }
    default:
      throw bad(body, 'unknown op')
  }
}

/**
 * Check `body` against the catalog and parse what it does. `type: 'db'` ops are not state ops.
 *
 * @throws NodusError `KV_ARGS_INVALID` (peerAction `reject`) when the type, op, db, key, field,
 *   args or expireAt do not fit
 */
export function parseOp(body: OpBody): Intent {
  if (body.type === 'db' || !Object.hasOwn(KV_OPS, body.type)) throw bad(body, 'not a kv value type')
  if (!KV_OPS[body.type].includes(body.op)) throw bad(body, `${body.type} has no op ${body.op}`)
  const db = utf8(body.db).length
  if (db === 0 || db > MAX_DB_BYTES) throw bad(body, `db id must be 1 to ${MAX_DB_BYTES} bytes`)
  const key = utf8(body.key).length
  if (key === 0 || key > MAX_KEY_BYTES) throw bad(body, `key must be 1 to ${MAX_KEY_BYTES} bytes`)
  if (body.expireAt !== undefined && (!Number.isSafeInteger(body.expireAt) || body.expireAt < 0))
    throw bad(body, 'expireAt must be a non-negative integer (Unix ms)')
  return parseBody(body)
}
