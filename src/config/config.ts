/**
 * The node's configuration, assembled from the key tables each area declares in `src/<area>/options.ts`
 * (type, default, range, description; the environment variable follows from the key's path), from which
 * validation, the env parsing, the {@link NodusConfig} type and docs/CONFIG.md are all derived.
 * (Validation is a loop over these tables rather than a zod schema: zod cost about 13 MB of RSS in
 * every node process.)
 * Precedence: defaults < config file (`<dataDir>/config.json`) < environment (`NODUS_*`) < flags.
 * The result is validated once and frozen.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { API_OPTIONS } from '../api/options.ts'
import { NodusError } from '../common/errors.ts'
import type { OptionSpec, OptionsOf, OptionTable } from '../common/options.ts'
import { CONSENSUS_OPTIONS } from '../consensus/options.ts'
import { KV_OPTIONS, kvOptionProblems } from '../kv/options.ts'
import { LEDGER_OPTIONS } from '../ledger/options.ts'
import { MESSAGING_OPTIONS, messagingOptionProblems } from '../messaging/options.ts'
import { NET_OPTIONS } from '../net/options.ts'
import { LOG_OPTIONS } from '../node/options.ts'
import { REPAIR_OPTIONS, STORAGE_OPTIONS, storageOptionProblems } from '../storage/options.ts'
import { TRUST_OPTIONS } from '../trust/options.ts'

/**
 * The config file's sections, in docs/CONFIG.md order, each the key table its area declares in
 * `src/<area>/options.ts`. To add a section: declare its table in the area's options.ts and add it here.
 */
const SECTIONS = Object.freeze({
  net: NET_OPTIONS,
  api: API_OPTIONS,
  storage: STORAGE_OPTIONS,
  repair: REPAIR_OPTIONS,
  trust: TRUST_OPTIONS,
  messaging: MESSAGING_OPTIONS,
  kv: KV_OPTIONS,
  consensus: CONSENSUS_OPTIONS,
  ledger: LEDGER_OPTIONS,
  log: LOG_OPTIONS,
})
type Sections = typeof SECTIONS

/**
 * The node's configuration, frozen: `dataDir` and one object per section, typed from the sections' key
 * tables (`config.storage.k` is a number, `config.net.listen` a list of strings, `config.log.level`
 * one of its values).
 */
export type NodusConfig = { readonly dataDir: string } & {
  readonly [S in keyof Sections]: OptionsOf<Sections[S]>
}

/** One configuration key, as docs/CONFIG.md lists it. `path` is `section.key`. */
export type ConfigKey = OptionSpec & { readonly path: string }

/** Every configuration key (besides `dataDir`, which comes from `--data-dir` / `NODUS_DATA_DIR`), in docs order. */
export const CONFIG_KEYS: readonly ConfigKey[] = Object.freeze(
  Object.entries(SECTIONS).flatMap(([name, table]) =>
    Object.entries<OptionSpec>(table).map(([key, spec]) =>
      Object.freeze({ ...spec, path: `${name}.${key}` }),
    ),
  ),
)

/** `storage.capacityBytes` → `NODUS_STORAGE_CAPACITY_BYTES`. */
export function envName(path: string): string {
  return `NODUS_${path
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace('.', '_')
    .toUpperCase()}`
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The value of one key, or its default when absent; pushes a message to `issues` when invalid. */
function leafValue(path: string, k: OptionSpec, v: unknown, issues: string[]): unknown {
  if (v === undefined) return k.kind === 'strings' ? [...k.default] : k.default
  const bad = (what: string): undefined => {
    issues.push(`${path}: ${what}, got ${JSON.stringify(v)?.slice(0, 80) ?? String(v)}`)
    return undefined
  }
  switch (k.kind) {
    case 'string': {
      if (typeof v !== 'string') return bad('expected a string')
      const problem = k.check?.(v)
      return problem === undefined ? v : bad(problem)
    }
    case 'strings': {
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
        return bad('expected an array of strings')
      const problem = k.check?.(v)
      return problem === undefined ? [...v] : bad(problem)
    }
    case 'enum':
      if (typeof v !== 'string' || !k.values.includes(v)) return bad(`expected one of ${k.values.join(', ')}`)
      return v
    case 'int':
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) return bad('expected an integer')
      if (k.min !== undefined && v < k.min) return bad(`must be at least ${k.min}`)
      if (k.max !== undefined && v > k.max) return bad(`must be at most ${k.max}`)
      return v
  }
}

/**
 * Checks `raw` against {@link SECTIONS}: known sections and keys only, each value of its kind and
 * range (absent ones get their defaults), then the rules across keys. Returns the filled-in config
 * and the list of problems (`path: message`), empty when valid.
 */
function validate(raw: unknown): { config: NodusConfig; issues: string[] } {
  const issues: string[] = []
  const out: Record<string, unknown> = {}
  if (!isPlainObject(raw))
    return { config: out as unknown as NodusConfig, issues: ['(root): expected an object'] }
  for (const key of Object.keys(raw)) {
    if (key !== 'dataDir' && !Object.hasOwn(SECTIONS, key)) issues.push(`${key}: unknown key`)
  }
  if (typeof raw.dataDir !== 'string' || raw.dataDir.length === 0)
    issues.push('dataDir: expected a non-empty string')
  out.dataDir = raw.dataDir
  for (const [name, table] of Object.entries<OptionTable>(SECTIONS)) {
    const given = raw[name] ?? {}
    if (!isPlainObject(given)) {
      issues.push(`${name}: expected an object`)
      continue
    }
    for (const key of Object.keys(given)) {
      if (!Object.hasOwn(table, key)) issues.push(`${name}.${key}: unknown key`)
    }
    const section: Record<string, unknown> = {}
    for (const [key, spec] of Object.entries(table)) {
      section[key] = leafValue(`${name}.${key}`, spec, given[key], issues)
    }
    out[name] = section
  }
  const config = out as unknown as NodusConfig
  if (issues.length === 0)
    issues.push(
      ...storageOptionProblems(config.storage),
      ...messagingOptionProblems(config.messaging),
      ...kvOptionProblems(config.kv),
    )
  return { config, issues }
}

export const CONFIG_FILE = 'config.json'

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v)
    Object.freeze(o)
  }
  return o
}

/** Deep-merge plain objects; `over` wins; arrays and scalars replace. */
export function mergeConfig(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue
    const b = out[k]
    out[k] =
      typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      typeof b === 'object' &&
      b !== null &&
      !Array.isArray(b)
        ? mergeConfig(b as Record<string, unknown>, v as Record<string, unknown>)
        : v
  }
  return out
}

/** Validate a raw config object. Throws CONFIG_INVALID naming each bad key. */
export function parseConfig(raw: unknown): NodusConfig {
  const { config, issues } = validate(raw)
  if (issues.length > 0) {
    throw new NodusError('CONFIG_INVALID', `invalid config: ${issues.join('; ')}`, { details: { issues } })
  }
  return deepFreeze(config)
}

/**
 * Config values from `NODUS_*` environment variables (see docs/CONFIG.md). Lists are comma-separated.
 * Throws CONFIG_INVALID for a number that does not parse.
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of CONFIG_KEYS) {
    const raw = env[envName(k.path)]
    if (raw === undefined) continue
    let v: unknown = raw
    if (k.kind === 'int') {
      if (!/^\d+$/.test(raw.trim()))
        throw new NodusError('CONFIG_INVALID', `${envName(k.path)} must be a whole number, got "${raw}"`)
      v = Number(raw)
    } else if (k.kind === 'strings')
      v = raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
    const [sec, key] = k.path.split('.') as [string, string]
    out[sec] = { ...((out[sec] as Record<string, unknown> | undefined) ?? {}), [key]: v }
  }
  return out
}

/**
 * Load `<dataDir>/config.json` (if present), then `NODUS_*` env, then `overrides` (from flags).
 * Throws CONFIG_INVALID for unreadable JSON or bad values.
 */
export async function loadConfig(
  dataDir: string,
  overrides: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<NodusConfig> {
  let file: Record<string, unknown> = {}
  try {
    file = JSON.parse(await readFile(join(dataDir, CONFIG_FILE), 'utf8')) as Record<string, unknown>
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new NodusError(
        'CONFIG_INVALID',
        `cannot read ${join(dataDir, CONFIG_FILE)}: ${(err as Error).message}`,
      )
    }
  }
  return parseConfig(mergeConfig(mergeConfig(mergeConfig(file, configFromEnv(env)), { dataDir }), overrides))
}

/** docs/CONFIG.md, generated from {@link CONFIG_KEYS}. */
export function configMarkdown(): string {
  const rows = CONFIG_KEYS.map((k) => {
    const def = Array.isArray(k.default) ? `\`${JSON.stringify(k.default)}\`` : `\`${String(k.default)}\``
    const range =
      k.kind === 'enum'
        ? `one of ${k.values.join(', ')}`
        : k.kind === 'int'
          ? `integer${k.min !== undefined ? ` ≥ ${k.min}` : ''}${k.max !== undefined ? `, ≤ ${k.max}` : ''}`
          : k.kind === 'strings'
            ? 'list (env: comma-separated)'
            : 'text'
    return `| \`${k.path}\` | \`${envName(k.path)}\` | ${range} | ${def} | ${k.description} |`
  })
  return `# Configuration

Generated from src/config/config.ts by \`npm run docs\`; do not edit by hand.

A node reads, in increasing precedence: defaults, \`<data-dir>/config.json\` (written by \`nodus init\`,
a JSON object with the sections below), environment variables, and command-line flags
(\`--api-port\`, \`--listen\`, \`--bootstrap\`, \`--dht-protocol\`, \`--log-level\`). The data directory itself
comes from \`--data-dir\` or \`NODUS_DATA_DIR\` (default \`~/.nodus\`). Unknown keys and bad values stop
the node with \`CONFIG_INVALID\` naming the key. The loaded config is frozen.

Cross-key rules: \`storage.k + storage.m ≤ 256\`; \`storage.segmentSize / storage.k ≤ storage.maxShardBytes\`.

Process settings, not node config: every \`nodus\` process sets V8's incremental-marking triggers
(src/cli/gc-tuning.ts, why in docs/benchmarks-history.md "Session 5"), and \`nodus start\` runs one
memory-reducing collection 2 s after ready and starts V8 with \`--initial-old-space-size=128\` (bin/nodus.js
re-executes itself with it, same PID; "Session 6"). \`NODUS_V8_GC=default\` turns all three off;
\`NODUS_V8_GC_FLAGS="--flag=value ..."\` sets other V8 flags in place of the triggers, and
\`NODUS_V8_START_FLAGS="--flag ..."\` others in place of the start-up flag. \`nodus start\` also
returns malloc's free pages to the kernel after that collection and every 30 s (glibc \`malloc_trim\`
through the native addon, src/cli/memory-trim.ts; "Session 7"); \`NODUS_MALLOC_TRIM=0\` turns it off.
It runs with \`MALLOC_ARENA_MAX=2\` unless the environment sets another value (\`NODUS_V8_GC=default\` leaves
it out too). Shard files are written and read with direct I/O (O_DIRECT) where the file system allows it
(src/common/direct-io.ts; "Session 8"); \`NODUS_DIRECT_IO=0\` turns that off.

| key | environment | type | default | meaning |
|---|---|---|---|---|
${rows.join('\n')}
`
}
