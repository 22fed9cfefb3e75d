/**
 * What each `nodus kv` write puts in its op: the key, field and args of the op catalog
 * (src/kv/state/ops.ts) from the command's arguments, and the expiry from `--ttl` / `--expire-at`.
 * Arguments that must be numbers are checked here (INVALID_ARGUMENT, exit code 2); the node checks
 * the rest (KV_ARGS_INVALID).
 */
import { NodusError } from '../common/errors.ts'
import type { KvValue, OpInput } from '../kv/index.ts'
import type { ArgOptions, Flags } from './args.ts'
import { parseDuration } from './duration.ts'

export function num(text: string | undefined, what: string): number {
  const n = text === undefined || text.trim() === '' ? Number.NaN : Number(text)
  if (!Number.isFinite(n))
    throw new NodusError('INVALID_ARGUMENT', `${what} must be a number, got ${String(text)}`)
  return n
}

export const str = (f: Flags, name: string): string | undefined => {
  const v = f[name]
  return typeof v === 'string' ? v : undefined
}

/** `--path NAME` or `--path $.NAME`: the top-level member a json.set or json.del writes. */
function jsonMember(f: Flags): string | undefined {
  const p = str(f, 'path')
  if (p === undefined || p === '$') return undefined
  const m = /^(?:\$\.)?([^.[\]$]+)$/.exec(p)
  if (m === null)
    throw new NodusError(
      'INVALID_ARGUMENT',
      'json.set and json.del write the document or one top-level member: --path NAME',
    )
  return m[1]
}

/** What a write command puts in its op: key, field and args (the op catalog, src/kv/state/ops.ts). */
export interface WriteSpec {
  usage: string
  type: OpInput['type']
  /** Least positionals after KEY, and the group size of the rest (0: exactly `min`). */
  min: number
  group: number
  flags?: ArgOptions
  args(rest: string[], f: Flags): KvValue[]
  field?(f: Flags): string | undefined
}

const list = (
  usageText: string,
  type: OpInput['type'],
  map: (s: string) => KvValue = (s) => s,
): WriteSpec => ({
  usage: usageText,
  type,
  min: 1,
  group: 1,
  args: (rest) => rest.map(map),
})

const score = (s: string): KvValue => (/^[+-]?inf$/i.test(s) ? s.toLowerCase() : num(s, 'a score'))

export const WRITES: Record<string, WriteSpec> = {
  set: { usage: 'set KEY VALUE', type: 'string', min: 1, group: 0, args: (r) => r },
  del: { usage: 'del KEY', type: 'string', min: 0, group: 0, args: () => [] },
  hset: { usage: 'hset KEY FIELD VALUE [FIELD VALUE…]', type: 'hash', min: 2, group: 2, args: (r) => r },
  hdel: list('hdel KEY FIELD…', 'hash'),
  lpush: list('lpush KEY VALUE…', 'list'),
  rpush: list('rpush KEY VALUE…', 'list'),
  lrem: list(
    'lrem KEY ELEMENT_ID… (hex ids from get --json)',
    'list',
    (s) => new Uint8Array(Buffer.from(s, 'hex')),
  ),
  sadd: list('sadd KEY MEMBER…', 'set'),
  srem: list('srem KEY MEMBER…', 'set'),
  zadd: {
    usage: 'zadd KEY SCORE MEMBER [SCORE MEMBER…]',
    type: 'zset',
    min: 2,
    group: 2,
    args: (r) => r.map((s, i) => (i % 2 === 0 ? score(s) : s)),
  },
  zrem: list('zrem KEY MEMBER…', 'zset'),
  geoadd: {
    usage: 'geoadd KEY LON LAT MEMBER [LON LAT MEMBER…]',
    type: 'geo',
    min: 3,
    group: 3,
    args: (r) => r.map((s, i) => (i % 3 === 2 ? s : num(s, i % 3 === 0 ? 'a longitude' : 'a latitude'))),
  },
  'json.set': {
    usage: 'json.set KEY JSON [--path MEMBER]',
    type: 'json',
    min: 1,
    group: 0,
    flags: { path: { type: 'string' } },
    args: ([text]) => {
      try {
        return [JSON.parse(text as string) as KvValue]
      } catch (err) {
        throw new NodusError('INVALID_ARGUMENT', `not JSON: ${(err as Error).message}`)
      }
    },
    field: jsonMember,
  },
  'json.del': {
    usage: 'json.del KEY [--path MEMBER]',
    type: 'json',
    min: 0,
    group: 0,
    flags: { path: { type: 'string' } },
    args: () => [],
    field: jsonMember,
  },
  xadd: {
    usage: 'xadd KEY FIELD VALUE [FIELD VALUE…] [--id MS-SEQ]',
    type: 'stream',
    min: 2,
    group: 2,
    flags: { id: { type: 'string' } },
    args: (r, f) => [str(f, 'id') ?? '*', ...r],
  },
  xdel: list('xdel KEY ID…', 'stream'),
  'ts.add': {
    usage: 'ts.add KEY TIMESTAMP|* VALUE',
    type: 'ts',
    min: 2,
    group: 0,
    args: ([t, v]) => [t === '*' ? '*' : num(t, 'a timestamp (Unix ms)'), num(v, 'a value')],
  },
  'ts.del': {
    usage: 'ts.del KEY FROM_MS TO_MS',
    type: 'ts',
    min: 2,
    group: 0,
    args: (r) => r.map((s) => num(s, 'a timestamp (Unix ms)')),
  },
}

/** `--ttl` (a duration from now) or `--expire-at` (Unix ms). */
export function expireAt(f: Flags): number | undefined {
  const ttl = str(f, 'ttl')
  const at = str(f, 'expire-at')
  if (ttl !== undefined && at !== undefined)
    throw new NodusError('INVALID_ARGUMENT', 'give --ttl or --expire-at, not both')
  if (ttl !== undefined) return Date.now() + parseDuration(ttl) * 1000
  if (at === undefined) return undefined
  if (!/^\d+$/.test(at)) throw new NodusError('INVALID_ARGUMENT', '--expire-at must be Unix ms')
  return Number(at)
}
