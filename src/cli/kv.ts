/**
 * `nodus kv …`: the signed, replicated database from the command line (src/kv/README.md). Writes are
 * signed here (kv-writer.ts) and sent as envelopes to `POST /kv/ops`; reads are `GET /kv/:db/:key`
 * with the range parameters of src/kv/key-read.ts; `host`, `sync` and `sync-status` are the node's
 * other kv routes. Text output by default, one JSON object with `--json`; exit codes as every
 * command: 0 ok, 1 an error (`error CODE: message`), 2 bad arguments.
 */
import { NodusError } from '../common/errors.ts'
import type { KvValue } from '../kv/index.ts'
import { type ArgOptions, apiTarget, CLIENT_FLAGS, dataDirOf, type Flags, out, parse } from './args.ts'
import { type ApiTarget, getJson, postJson } from './client.ts'
import { parseDuration } from './duration.ts'
import { expireAt, str, WRITES } from './kv-ops.ts'
import type { KvWriter } from './kv-writer.ts'

export const KV_USAGE = `usage: nodus kv <command> [--db DB] [options]

databases (DB: the id \`NAME-z6Mk…\` that create prints, or just NAME for your own):
  create NAME [--hybrid] [--sealed]           create a database owned by your key; prints its id
                                              --sealed: private, values sealed (shared with this node)
    [--index NAME=hash:FIELD | NAME=json:PATH]…  declare secondary indexes (PATH: RFC 9535, e.g. $.meta.score)
  share READER --db DB                        share a private database's keys with READER (a PeerId)
  rotate --db DB [READER…]                    a new key for a private database, shared with this node and READERs
  key [--hybrid]                              print your signing key (to be granted by an owner)
  grant WRITER [--expires-in 7d] [--prefix P] let WRITER (did:key, z6Mk…, PeerId or hex key) write; prints the grant id
  revoke GRANT_ID                             revoke a grant
  host DB | sync DB | sync-status [DB]        host a database here, sync it now, show ops held and the last sync
writes (each --db DB [--ttl 30s | --expire-at MS] [--cap GRANT_ID] [--hybrid]; prints the op id):
  set KEY VALUE · del KEY · hset KEY FIELD VALUE [FIELD VALUE…] · hdel KEY FIELD…
  lpush|rpush KEY VALUE… · lrem KEY ELEMENT_ID… · sadd|srem KEY MEMBER…
  zadd KEY SCORE MEMBER [SCORE MEMBER…] · zrem KEY MEMBER… · geoadd KEY LON LAT MEMBER [LON LAT MEMBER…]
  json.set KEY JSON [--path MEMBER] · json.del KEY [--path MEMBER]
  xadd KEY FIELD VALUE… [--id MS-SEQ] · xdel KEY ID… · ts.add KEY TIMESTAMP|* VALUE · ts.del KEY FROM TO
reads (each --db DB; at most 1,000 elements):
  get KEY [--path JSONPATH]                   the value of any type
  lrange KEY START STOP · zrange KEY START STOP [--byscore] [--rev] [--limit OFFSET COUNT]
  xrange KEY START END [--rev] [--count N] · ts.range KEY FROM_MS TO_MS [--count N]
  geosearch KEY (--member M | --lonlat LON,LAT) (--radius R | --box W,H) [--unit m|km|mi|ft] [--asc|--desc] [--count N]
keys: --key-dir DIR (default: the data dir) holds the identity that signs; the node never sees it.
common: --data-dir DIR | --api URL --token T, --json`

const WRITE_FLAGS = {
  ...CLIENT_FLAGS,
  db: { type: 'string' },
  'key-dir': { type: 'string' },
  hybrid: { type: 'boolean' },
  ttl: { type: 'string' },
  'expire-at': { type: 'string' },
  cap: { type: 'string' },
} as const
const READ_FLAGS = { ...CLIENT_FLAGS, db: { type: 'string' }, 'key-dir': { type: 'string' } } as const

const usage = (text: string): NodusError => new NodusError('INVALID_ARGUMENT', `usage: nodus kv ${text}`)

/**
 * Split `args` into flags and positionals: a flag's value is the next argument whatever it looks like
 * (`--lonlat -73.9,40.7`), `--limit` takes two, and anything else that starts with `-` but not `--`
 * (`-1`, `-inf`) is a positional, as Redis's ranges need. Then the flags are parsed strictly.
 */
function parseKv(
  args: string[],
  options: ArgOptions,
  withLimit = false,
): { f: Flags; p: string[]; limit?: [string, string] } {
  const flags: string[] = []
  const p: string[] = []
  let limit: [string, string] | undefined
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    if (a === '--') {
      p.push(...args.slice(i + 1))
      break
    }
    if (a === '--limit' && withLimit) {
      const [o, c] = [args[i + 1], args[i + 2]]
      if (o === undefined || c === undefined) throw usage('zrange KEY START STOP --limit OFFSET COUNT')
      limit = [o, c]
      i += 2
    } else if (a.startsWith('--') && !a.includes('=') && options[a.slice(2)]?.type === 'string') {
      const v = args[i + 1]
      flags.push(v === undefined ? a : `${a}=${v}`)
      i++
    } else if (a.startsWith('--') || a === '-h') flags.push(a)
    else p.push(a)
  }
  const { values } = parse(flags, options)
  return { f: values, p, ...(limit === undefined ? {} : { limit }) }
}

/** The identity directory: `--key-dir`, else the data dir. */
const keyDirOf = (f: Flags): string => str(f, 'key-dir') ?? dataDirOf(f)

async function openWriter(f: Flags): Promise<KvWriter> {
  const { KvWriter } = await import('./kv-writer.ts')
  return await KvWriter.open(keyDirOf(f))
}

/** `--db` (or `fallback`) as a database id; a bare name is this identity's database of that name. */
async function dbOf(f: Flags, fallback?: string, writer?: KvWriter): Promise<string> {
  const db = str(f, 'db') ?? fallback
  if (db === undefined) throw new NodusError('INVALID_ARGUMENT', 'which database? --db DB')
  if (db.includes('-z6Mk')) return db
  return (writer ?? (await openWriter(f))).dbId(db)
}

const path = (db: string, key?: string): string =>
  `/kv/${encodeURIComponent(db)}${key === undefined ? '' : `/${encodeURIComponent(key)}`}`

const fmt = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v))

/** One read answer as lines of text. */
function valueLines(type: string, value: unknown): string {
  if (type === 'string' || type === 'json' || !Array.isArray(value)) return fmt(value)
  if (type === 'ts' && typeof value[0] === 'number') return value.join('\t')
  return value
    .map((e) => {
      if (Array.isArray(e)) return e.map(fmt).join('\t') // hash [field, value], ts [ms, value]
      if (e !== null && typeof e === 'object') {
        const o = e as Record<string, unknown>
        if ('distance' in o) return `${fmt(o.member)}\t${fmt(o.distance)}`
        if ('score' in o) return `${fmt(o.member)}\t${fmt(o.score)}`
        if ('fields' in o) return `${fmt(o.id)}\t${(o.fields as unknown[]).map(fmt).join(' ')}`
        if ('value' in o) return fmt(o.value)
      }
      return fmt(e)
    })
    .join('\n')
}

async function read(
  api: ApiTarget,
  dataDir: string,
  json: boolean,
  db: string,
  key: string,
  q: Record<string, string | undefined>,
) {
  const qs = new URLSearchParams(Object.entries(q).filter((e): e is [string, string] => e[1] !== undefined))
  const r = await getJson<{ type: string; value: unknown }>(
    api,
    `${path(db, key)}${qs.size === 0 ? '' : `?${qs}`}`,
  )
  if (['string', 'hash', 'list', 'stream'].includes(r.type)) {
    const { openInput } = await import('./kv-sealed.ts')
    const { valueFromJson } = await import('../kv/client-transport.ts')
    const { valueToJson } = await import('../kv/index.ts')
    r.value = valueToJson(await openInput(api, dataDir, db, key, r.type, valueFromJson(r.value)))
  }
  const text = valueLines(r.type, r.value)
  if (json || text !== '') out(json, r, text)
}

interface SyncReport {
  peer: string
  rounds: number
  need: number
  have: number
  fetched: number
  pushed: number
  atMs?: number
  error?: string
}
interface DbStatus {
  db: string
  hosted: boolean
  ops: number
  lastSync?: SyncReport
}

const reportLine = (r: SyncReport): string =>
  r.error === undefined
    ? `with ${r.peer}: need ${r.need}, have ${r.have}, fetched ${r.fetched}, pushed ${r.pushed} (${r.rounds} rounds)`
    : `with ${r.peer} failed: ${r.error}`

const statusLine = (s: DbStatus): string =>
  `${s.db}  ${s.hosted ? 'hosted' : 'not hosted'}  ${s.ops} ops  ${
    s.lastSync === undefined
      ? 'never synced'
      : `last sync ${new Date(s.lastSync.atMs ?? 0).toISOString()} ${reportLine(s.lastSync)}`
  }`

async function admin(cmd: string, rest: string[]): Promise<number> {
  const { f, p } = parseKv(rest, READ_FLAGS)
  const json = f.json === true
  const api = await apiTarget(f)
  if (cmd === 'sync-status' && p[0] === undefined && f.db === undefined) {
    const { databases } = await getJson<{ databases: string[] }>(api, '/kv')
    const all: DbStatus[] = []
    for (const db of databases) all.push(await getJson<DbStatus>(api, path(db)))
    out(
      json,
      { databases: all },
      all.length === 0 ? 'this node hosts no database' : all.map(statusLine).join('\n'),
    )
    return 0
  }
  const db = await dbOf(f, p[0])
  if (cmd === 'host') {
    const s = await postJson<DbStatus>(api, `${path(db)}/host`, {})
    out(json, { ...s }, statusLine(s))
  } else if (cmd === 'sync') {
    const r = await postJson<{ reports: SyncReport[] }>(api, `${path(db)}/sync`, {})
    out(
      json,
      r,
      r.reports.length === 0
        ? `no other host or keeper of ${db} answered`
        : r.reports.map(reportLine).join('\n'),
    )
  } else {
    const s = await getJson<DbStatus>(api, path(db))
    out(json, { ...s }, statusLine(s))
  }
  return 0
}

async function readCommand(cmd: string, rest: string[]): Promise<number> {
  const extra: ArgOptions = {
    get: { path: { type: 'string' } },
    lrange: {},
    zrange: { byscore: { type: 'boolean' }, rev: { type: 'boolean' } },
    xrange: { rev: { type: 'boolean' }, count: { type: 'string' } },
    'ts.range': { count: { type: 'string' } },
    geosearch: {
      member: { type: 'string' },
      lonlat: { type: 'string' },
      radius: { type: 'string' },
      box: { type: 'string' },
      unit: { type: 'string' },
      asc: { type: 'boolean' },
      desc: { type: 'boolean' },
      count: { type: 'string' },
    },
  }[cmd] as ArgOptions
  const { f, p, limit } = parseKv(rest, { ...READ_FLAGS, ...extra }, cmd === 'zrange')
  const [key, a, b] = p
  const ranged = cmd !== 'get' && cmd !== 'geosearch'
  if (key === undefined || (ranged && (a === undefined || b === undefined)))
    throw usage(
      cmd === 'get'
        ? 'get KEY [--path JSONPATH]'
        : cmd === 'geosearch'
          ? 'geosearch KEY --member M|--lonlat LON,LAT --radius R|--box W,H'
          : `${cmd} KEY START STOP`,
    )
  const db = await dbOf(f)
  const q: Record<string, string | undefined> = { count: str(f, 'count') }
  if (cmd === 'get') q.path = str(f, 'path')
  if (ranged) Object.assign(q, { start: a, stop: b, rev: f.rev === true ? 'true' : undefined })
  if (cmd === 'zrange' && f.byscore === true) q.by = 'score'
  if (limit !== undefined) {
    if (f.byscore !== true) throw new NodusError('INVALID_ARGUMENT', '--limit needs --byscore (as in Redis)')
    Object.assign(q, { offset: limit[0], count: limit[1] })
  }
  if (cmd === 'geosearch') {
    const pair = (name: string): [string, string] | undefined => {
      const v = str(f, name)?.split(',')
      if (v === undefined) return undefined
      if (v.length !== 2) throw new NodusError('INVALID_ARGUMENT', `--${name} takes two numbers: X,Y`)
      return v as [string, string]
    }
    const lonlat = pair('lonlat')
    const box = pair('box')
    Object.assign(q, {
      member: str(f, 'member'),
      lon: lonlat?.[0],
      lat: lonlat?.[1],
      radius: str(f, 'radius'),
      width: box?.[0],
      height: box?.[1],
      unit: str(f, 'unit'),
      order: f.asc === true ? 'asc' : f.desc === true ? 'desc' : undefined,
    })
  }
  await read(await apiTarget(f), dataDirOf(f), f.json === true, db, key, q)
  return 0
}

async function writeCommand(cmd: string, rest: string[]): Promise<number> {
  const spec = WRITES[cmd]
  const dbOps: Record<string, ArgOptions> = {
    create: { sealed: { type: 'boolean' }, index: { type: 'string', multiple: true } },
    share: {},
    rotate: {},
    grant: { 'expires-in': { type: 'string' }, prefix: { type: 'string' } },
    revoke: {},
  }
  const { f, p } = parseKv(rest, { ...WRITE_FLAGS, ...(spec?.flags ?? dbOps[cmd] ?? {}) })
  const json = f.json === true
  const writer = await openWriter(f)
  const api = await apiTarget(f)
  const o = { hybrid: f.hybrid === true, ...(typeof f.cap === 'string' ? { cap: f.cap } : {}) }
  if (spec === undefined) {
    const [arg] = p
    if (cmd === 'share' || cmd === 'rotate') return await sealedAdmin(cmd, f, p, writer, api)
    if (arg === undefined || p.length > 1)
      throw usage(
        cmd === 'create'
          ? 'create NAME [--hybrid] [--index NAME=hash:FIELD|NAME=json:PATH]…'
          : cmd === 'grant'
            ? 'grant WRITER --db DB'
            : 'revoke GRANT_ID --db DB',
      )
    const db = cmd === 'create' ? writer.dbId(arg) : await dbOf(f, undefined, writer)
    const { createArgs, grantArgs, indexesOption, parseIndexText, revokeArgs } = await import(
      '../kv/index.ts'
    )
    const { hexBytes, parseWriterKey } = await import('./kv-writer.ts')
    let args: KvValue[]
    if (cmd === 'create') {
      const indexes = indexesOption(((f.index ?? []) as string[]).map((t) => parseIndexText(t)))
      args = createArgs({ ...(f.sealed === true ? { sealed: true } : {}), ...indexes })
    } else if (cmd === 'revoke') args = revokeArgs(hexBytes(arg, 'GRANT_ID', [32]))
    else {
      const expiresIn = str(f, 'expires-in')
      const prefix = str(f, 'prefix')
      args = grantArgs({
        writer: parseWriterKey(arg),
        ...(expiresIn === undefined ? {} : { expiresAt: Date.now() + parseDuration(expiresIn) * 1000 }),
        ...(prefix === undefined ? {} : { prefix }),
      })
    }
    const w = await writer.write(api, { db, key: '', type: 'db', op: cmd, args }, o)
    if (cmd === 'create' && f.sealed === true) {
      const { nodeRecipient, rotate } = await import('./kv-sealed.ts')
      await rotate(api, writer, db, await nodeRecipient(dataDirOf(f)), [])
    }
    const text = cmd === 'create' ? db : cmd === 'grant' ? w.id : `revoked ${arg}`
    out(json, { db, op: cmd, id: w.id, status: w.status, hlc: w.hlc }, text)
    return 0
  }
  const [key, ...vals] = p
  const ok =
    key !== undefined &&
    (spec.group === 0 ? vals.length === spec.min : vals.length >= spec.min && vals.length % spec.group === 0)
  if (!ok) throw usage(`${spec.usage} --db DB`)
  const db = await dbOf(f, undefined, writer)
  const field = spec.field?.(f)
  const exp = expireAt(f)
  const { sealInput } = await import('./kv-sealed.ts')
  const input = await sealInput(api, dataDirOf(f), {
    db,
    key,
    type: spec.type,
    op: cmd,
    args: spec.args(vals, f),
    ...(field === undefined ? {} : { field }),
    ...(exp === undefined ? {} : { expireAt: exp }),
  })
  const w = await writer.write(api, input, o)
  out(json, { db, key, op: cmd, id: w.id, status: w.status, hlc: w.hlc }, w.id)
  return 0
}

/** `share READER --db DB` and `rotate --db DB [READER…]` (kv-sealed.ts). */
async function sealedAdmin(
  cmd: string,
  f: Flags,
  p: string[],
  writer: KvWriter,
  api: ApiTarget,
): Promise<number> {
  const { dbKeyring, nodeRecipient, rotate, shareTo } = await import('./kv-sealed.ts')
  if (cmd === 'share' && p.length !== 1) throw usage('share READER_PEER_ID --db DB')
  const db = await dbOf(f, undefined, writer)
  const me = await nodeRecipient(dataDirOf(f))
  const { sealed, keys } = await dbKeyring(api, db, me)
  if (!sealed) throw new NodusError('INVALID_ARGUMENT', `${db} is not a private (sealed) database here`)
  if (cmd === 'rotate') {
    const epoch = await rotate(api, writer, db, me, p, keys)
    out(
      f.json === true,
      { db, epoch, readers: p },
      `${db}: key epoch ${epoch} shared with ${[me.peerId, ...p].join(', ')}`,
    )
    return 0
  }
  if (keys.size === 0)
    throw new NodusError('KV_DB_KEY_MISSING', `no key of ${db} is shared with this node (${me.peerId})`)
  const ids = await shareTo(api, writer, db, keys, p)
  out(f.json === true, { db, reader: p[0], epochs: [...keys.keys()], ids }, ids.join('\n'))
  return 0
}

/**
 * Run `nodus kv ARGS`. @returns the exit code
 * @throws NodusError `INVALID_ARGUMENT` (exit 2), the node's errors, `NODE_UNREACHABLE`, `KEYS_MISSING`
 */
export async function kvCommand(args: string[]): Promise<number> {
  const [cmd, ...rest] = args
  if (
    cmd === undefined ||
    cmd === 'help' ||
    rest.includes('--help') ||
    rest.includes('-h') ||
    cmd.startsWith('-')
  ) {
    process.stdout.write(`${KV_USAGE}\n`)
    return cmd === undefined || (cmd.startsWith('-') && cmd !== '--help' && cmd !== '-h') ? 2 : 0
  }
  if (cmd === 'key') {
    const { f } = parseKv(rest, { ...READ_FLAGS, hybrid: { type: 'boolean' } })
    const w = await openWriter(f)
    const ed25519 = Buffer.from(w.ownerKey).toString('hex')
    const hybrid = f.hybrid === true ? w.hybridKeyHex() : undefined
    out(
      f.json === true,
      {
        did: w.did,
        peerId: w.identity.peerId.toString(),
        ed25519,
        ...(hybrid === undefined ? {} : { hybrid }),
      },
      hybrid ?? w.did,
    )
    return 0
  }
  if (cmd === 'host' || cmd === 'sync' || cmd === 'sync-status') return await admin(cmd, rest)
  if (['get', 'lrange', 'zrange', 'xrange', 'ts.range', 'geosearch'].includes(cmd))
    return await readCommand(cmd, rest)
  if (cmd in WRITES || ['create', 'grant', 'revoke', 'share', 'rotate'].includes(cmd))
    return await writeCommand(cmd, rest)
  throw new NodusError('INVALID_ARGUMENT', `unknown kv command "${cmd}"; run \`nodus kv help\``)
}
