/**
 * What the `nodus` commands share to read their arguments (main.ts, kv.ts): flags parsed strictly
 * (a bad one is INVALID_ARGUMENT, exit code 2), the data directory, the API a client command talks to,
 * and one line of output (text, or JSON with `--json`).
 */
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { NodusError } from '../common/errors.ts'
import { type ApiTarget, apiFromDataDir } from './client.ts'

export type Flags = Record<string, string | boolean | string[] | undefined>

/** Flags of every command. */
export const COMMON = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'log-level': { type: 'string' },
} as const

/** Flags of the commands that talk to a running node's API. */
export const CLIENT_FLAGS = {
  ...COMMON,
  'data-dir': { type: 'string' },
  api: { type: 'string' },
  token: { type: 'string' },
} as const

export type ArgOptions = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>['options']>

/** The data directory: `--data-dir`, else `$NODUS_DATA_DIR`, else `~/.nodus` (absolute). */
export function dataDirOf(f: Flags): string {
  const d = f['data-dir']
  return resolve(typeof d === 'string' ? d : (process.env.NODUS_DATA_DIR ?? join(homedir(), '.nodus')))
}

/** A whole-number flag, or `def`. @throws NodusError `INVALID_ARGUMENT` */
export function intFlag(f: Flags, name: string, def: number): number {
  const v = f[name]
  if (v === undefined) return def
  const n = Number(v)
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(n)) {
    throw new NodusError('INVALID_ARGUMENT', `--${name} must be a whole number, got ${String(v)}`)
  }
  return n
}

/** Parse `args` strictly against `options`. @throws NodusError `INVALID_ARGUMENT` */
export function parse(args: string[], options: ArgOptions): { values: Flags; positionals: string[] } {
  try {
    const r = parseArgs({ args, options, strict: true, allowPositionals: true })
    return { values: r.values as Flags, positionals: r.positionals }
  } catch (err) {
    throw new NodusError('INVALID_ARGUMENT', (err as Error).message.split('\n')[0] ?? 'bad arguments')
  }
}

/** Print one result: `obj` as a JSON line with `--json`, else `text`. */
export function out(json: boolean, obj: Record<string, unknown>, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(obj)}\n` : `${text}\n`)
}

/** The API to talk to: `--api URL` (token from `--token` or `$NODUS_API_TOKEN`), else the data dir's run file. */
export async function apiTarget(f: Flags): Promise<ApiTarget> {
  if (typeof f.api === 'string') {
    return {
      url: f.api.replace(/\/$/, ''),
      token: typeof f.token === 'string' ? f.token : process.env.NODUS_API_TOKEN,
    }
  }
  return await apiFromDataDir(dataDirOf(f))
}
