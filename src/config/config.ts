/**
 * The node's configuration: one table of keys (type, default, description, environment variable)
 * from which validation, the env parsing and docs/CONFIG.md are all derived. (Validation is a loop over
 * this table rather than a zod schema: zod cost about 13 MB of RSS in every node process.)
 * Precedence: defaults < config file (`<dataDir>/config.json`) < environment (`NODUS_*`) < flags.
 * The result is validated once and frozen.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { NodusError } from '../common/errors.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB

type Kind = 'string' | 'int' | 'strings' | 'enum'

/** A DNS host name (letters, digits, hyphens, dots; optional trailing dot), as `api.allowedHosts` takes. */
const HOST_NAME =
  /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/

/** One configuration key. `path` is `section.key`. */
export interface ConfigKey {
  path: string
  kind: Kind
  default: string | number | string[]
  description: string
  min?: number
  max?: number
  values?: readonly string[]
}

/** Every configuration key (besides `dataDir`, which comes from `--data-dir` / `NODUS_DATA_DIR`). */
export const CONFIG_KEYS: readonly ConfigKey[] = Object.freeze([
  {
    path: 'net.listen',
    kind: 'strings',
    default: ['/ip4/127.0.0.1/tcp/0'],
    description: 'libp2p listen multiaddrs',
  },
  {
    path: 'net.bootstrap',
    kind: 'strings',
    default: [],
    description: 'multiaddrs (with /p2p/ID) to dial at start',
  },
  {
    path: 'net.dhtProtocol',
    kind: 'string',
    default: '/nodus/kad/1.0.0',
    description: 'Kademlia protocol id; `/ipfs/kad/1.0.0` joins standard libp2p DHTs',
  },
  {
    path: 'net.requestTimeoutMs',
    kind: 'int',
    default: 60_000,
    min: 100,
    description: 'time allowed for one shard-protocol request to a peer, ms',
  },
  {
    path: 'net.encrypter',
    kind: 'enum',
    default: 'noise',
    values: ['noise', 'tls'],
    description:
      'preferred connection encryption (the other is offered second): noise = cheaper handshakes, tls = faster bulk transfer (docs/benchmarks-history.md, "Data plane")',
  },
  {
    path: 'net.bulk',
    kind: 'enum',
    default: 'on',
    values: ['on', 'off'],
    description:
      'shard transfers over a direct TLS 1.3 socket per peer pair, keyed over libp2p (src/net/bulk.ts); off = libp2p streams only',
  },
  {
    path: 'net.bulkPort',
    kind: 'int',
    default: 0,
    min: 0,
    max: 65_535,
    description:
      'TCP port of the bulk channel listener (on the host of the first /ip4 listen address); 0 = any free port',
  },
  {
    path: 'net.maxConnections',
    kind: 'int',
    default: 300,
    min: 1,
    description: 'maximum open libp2p connections',
  },
  {
    path: 'net.maxRequestsPerPeer',
    kind: 'int',
    default: 8,
    min: 1,
    description: 'shard puts and gets one peer may have served at once (of 64 in all); beyond it PEER_BUSY',
  },
  {
    path: 'net.maxRequestsPerSubnet',
    kind: 'int',
    default: 16,
    min: 1,
    description: 'shard puts and gets one IPv4 /24 or IPv6 /64 may have served at once; beyond it PEER_BUSY',
  },
  {
    path: 'net.subnetExempt',
    kind: 'strings',
    default: ['127.', '::1', '::ffff:127.'],
    description: 'address prefixes exempt from the per-subnet limit (loopback and private test networks)',
  },
  {
    path: 'net.minTransferBytesPerSec',
    kind: 'int',
    default: 64 * 1024,
    min: 1,
    description: 'a shard put body arriving slower than this (bytes/s over 5 s) is cut off',
  },
  {
    path: 'api.host',
    kind: 'string',
    default: '127.0.0.1',
    description: 'address the HTTP API binds (loopback by default)',
  },
  {
    path: 'api.port',
    kind: 'int',
    default: 0,
    min: 0,
    max: 65535,
    description: 'HTTP API port; 0 picks a free one',
  },
  {
    path: 'api.mutatingPerMinute',
    kind: 'int',
    default: 600,
    min: 1,
    description:
      'requests per minute to token-protected routes carrying the valid token (one bucket for the token holder, whatever the client address)',
  },
  {
    path: 'api.unauthenticatedPerMinute',
    kind: 'int',
    default: 120,
    min: 1,
    description:
      'requests per minute per client address to token-protected routes without the valid token (401 up to this, then 429); counted apart from the token holder, so they never use up its bucket',
  },
  {
    path: 'api.allowedHosts',
    kind: 'strings',
    default: [],
    description:
      'host names (no port) accepted in the Host header besides localhost, IP literals and `api.host`; any other Host gets 403 HOST_NOT_ALLOWED (DNS-rebinding defence). Add the name a reverse proxy or your browser uses',
  },
  {
    path: 'api.maxUploadBytes',
    kind: 'int',
    default: 64 * GiB,
    min: 1,
    description:
      'largest file accepted by `POST /files`, bytes; a larger Content-Length gets 413 before the body is read, a chunked body is cut off with 413 past it',
  },
  {
    path: 'storage.capacityBytes',
    kind: 'int',
    default: 100 * GiB,
    min: 0,
    description: 'bytes this node offers for shards',
  },
  {
    path: 'storage.maxShardBytes',
    kind: 'int',
    default: 16 * MiB,
    min: 1024,
    description: 'largest shard accepted, bytes',
  },
  {
    path: 'storage.cacheBytes',
    kind: 'int',
    default: 64 * MiB,
    min: 0,
    description:
      'bytes of hot shards kept in memory (LRU; a shard is cached on its second read, so a file streamed once does not fill it); 0 turns the cache off',
  },
  {
    path: 'storage.minFreeDiskBytes',
    kind: 'int',
    default: 256 * MiB,
    min: 0,
    description: 'refuse new shards when the filesystem has less free space than this, bytes',
  },
  {
    path: 'storage.cleanupIntervalMs',
    kind: 'int',
    default: 60_000,
    min: 100,
    description: 'time between deletions of expired shards, ms',
  },
  {
    path: 'storage.leaseMs',
    kind: 'int',
    default: 30 * 24 * 3600 * 1000,
    min: 1000,
    description: 'holders keep an unpinned shard this long; pins renew it, ms',
  },
  {
    path: 'storage.maxLeaseMs',
    kind: 'int',
    default: 90 * 24 * 3600 * 1000,
    min: 60_000,
    description:
      "longest lease this node grants another peer on any order, commit or pin, ms (nothing is kept forever on a peer's word)",
  },
  {
    path: 'storage.provisionalLeaseMs',
    kind: 'int',
    default: 3600 * 1000,
    min: 1_000,
    description:
      'how long a shard stored for a peer is kept before its upload is committed, ms; aborted uploads expire after it',
  },
  {
    path: 'storage.quotaBytes',
    kind: 'int',
    default: 4 * GiB,
    min: 0,
    description: 'bytes one peer (uploader or paying pinner) may keep on this node at trust 0',
  },
  {
    path: 'storage.quotaShards',
    kind: 'int',
    default: 65_536,
    min: 0,
    description: 'blocks one peer may keep on this node at trust 0',
  },
  {
    path: 'storage.quotaTrustMultiplier',
    kind: 'int',
    default: 16,
    min: 1,
    description:
      'quota multiplier for a peer at full trust: none at or below the average EigenTrust score (strangers), all of it at four times the average or for pre-trusted peers, linear between',
  },
  {
    path: 'storage.renewIntervalMs',
    kind: 'int',
    default: 24 * 3600 * 1000,
    min: 100,
    description: "time between renewals of this node's pins on their holders, ms",
  },
  {
    path: 'storage.k',
    kind: 'int',
    default: 10,
    min: 1,
    max: 255,
    description: 'data shards per segment (k)',
  },
  {
    path: 'storage.m',
    kind: 'int',
    default: 4,
    min: 0,
    max: 255,
    description: 'parity shards per segment (m)',
  },
  {
    path: 'storage.segmentSize',
    kind: 'int',
    default: 20 * MiB,
    min: 1024,
    description: 'segment size, bytes (20 MiB: 2 MiB shards with k = 10)',
  },
  {
    path: 'storage.segmentsInFlight',
    kind: 'int',
    default: 2,
    min: 1,
    max: 16,
    description: 'segments in memory per put or get (bounds memory)',
  },
  {
    path: 'storage.manifestReplicas',
    kind: 'int',
    default: 4,
    min: 0,
    description: 'peers besides this one that keep each manifest',
  },
  {
    path: 'repair.intervalMs',
    kind: 'int',
    default: 60_000,
    min: 100,
    description: 'time between health-and-repair rounds over the manifests this node keeps, ms',
  },
  {
    path: 'repair.graceMs',
    kind: 'int',
    default: 120_000,
    min: 0,
    description:
      'a copy whose holder does not answer this long counts as lost (hysteresis against restarts), ms; a copy its holder says it lacks, or that failed an audit, counts as lost at once',
  },
  {
    path: 'repair.thresholdMargin',
    kind: 'int',
    default: 2,
    min: 0,
    description: 'repair a segment when its healthy shards fall to k + this',
  },
  {
    path: 'repair.maxRepairsPerRound',
    kind: 'int',
    default: 32,
    min: 1,
    description: 'segments one node repairs per round at most (rate limit)',
  },
  {
    path: 'repair.auditsPerRound',
    kind: 'int',
    default: 8,
    min: 0,
    description: 'random shard copies of watched manifests audited per round',
  },
  {
    path: 'repair.criticalExtraParity',
    kind: 'int',
    default: 2,
    min: 0,
    max: 32,
    description: 'parity shards added per segment to files pinned as critical (dynamic redundancy)',
  },
  {
    path: 'repair.readsPerParityStep',
    kind: 'int',
    default: 100,
    min: 1,
    description:
      'reads in 24 h per popularity step (each requester counts once per hour): extra parity = floor(log2(1 + reads / this))',
  },
  {
    path: 'repair.maxPopularityExtraParity',
    kind: 'int',
    default: 4,
    min: 0,
    max: 32,
    description: 'most parity shards added for popularity',
  },
  {
    path: 'repair.maxParity',
    kind: 'int',
    default: 16,
    min: 0,
    max: 255,
    description: 'upper bound on parity shards per segment, whatever the flags (never below the upload m)',
  },
  {
    path: 'trust.preTrusted',
    kind: 'strings',
    default: [],
    description: 'PeerIds whose trust EigenTrust starts from (pre-trusted peers); empty: uniform',
  },
  {
    path: 'trust.region',
    kind: 'string',
    default: 'unknown',
    description: "this node's region tag in its capacity reports (lower case, e.g. eu-west)",
  },
  {
    path: 'trust.networks',
    kind: 'strings',
    default: ['unknown'],
    description: "this node's network tags (the first is primary, e.g. an AS number as13335)",
  },
  {
    path: 'trust.exchangeIntervalMs',
    kind: 'int',
    default: 60_000,
    min: 100,
    description: 'time between pushes of the signed trust vector and capacity report to peers, ms',
  },
  {
    path: 'trust.banMs',
    kind: 'int',
    default: 86_400_000,
    min: 1_000,
    description:
      'how long a peer stays banned after a `ban` fault (e.g. CID_MISMATCH, SIGNATURE_INVALID; docs/ERRORS.md), ms',
  },
  {
    path: 'trust.rejectWindowMs',
    kind: 'int',
    default: 600_000,
    min: 1_000,
    description: "window in which a peer's `reject` faults are counted toward a disconnect, ms",
  },
  {
    path: 'trust.rejectsToDisconnect',
    kind: 'int',
    default: 10,
    min: 1,
    description: '`reject` faults within `trust.rejectWindowMs` after which the peer is disconnected',
  },
  {
    path: 'trust.maxBans',
    kind: 'int',
    default: 10_000,
    min: 1,
    description: 'most bans kept (persisted in `<dataDir>/bans`); beyond it the oldest ban is lifted',
  },
  {
    path: 'log.level',
    kind: 'enum',
    default: 'info',
    values: ['trace', 'debug', 'info', 'warn', 'error', 'silent'],
    description: 'pino log level',
  },
  {
    path: 'log.file',
    kind: 'string',
    default: '',
    description: 'log file; empty writes JSON lines to stderr',
  },
])

/** `storage.capacityBytes` → `NODUS_STORAGE_CAPACITY_BYTES`. */
export function envName(path: string): string {
  return `NODUS_${path
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace('.', '_')
    .toUpperCase()}`
}

interface Shape {
  dataDir: string
  net: {
    listen: string[]
    bootstrap: string[]
    dhtProtocol: string
    encrypter: 'noise' | 'tls'
    bulk: 'on' | 'off'
    bulkPort: number
    maxConnections: number
    requestTimeoutMs: number
    maxRequestsPerPeer: number
    maxRequestsPerSubnet: number
    subnetExempt: string[]
    minTransferBytesPerSec: number
  }
  api: {
    host: string
    port: number
    mutatingPerMinute: number
    unauthenticatedPerMinute: number
    allowedHosts: string[]
    maxUploadBytes: number
  }
  storage: {
    capacityBytes: number
    maxShardBytes: number
    cacheBytes: number
    minFreeDiskBytes: number
    cleanupIntervalMs: number
    leaseMs: number
    maxLeaseMs: number
    provisionalLeaseMs: number
    quotaBytes: number
    quotaShards: number
    quotaTrustMultiplier: number
    renewIntervalMs: number
    k: number
    m: number
    segmentSize: number
    segmentsInFlight: number
    manifestReplicas: number
  }
  repair: {
    intervalMs: number
    graceMs: number
    thresholdMargin: number
    maxRepairsPerRound: number
    auditsPerRound: number
    criticalExtraParity: number
    readsPerParityStep: number
    maxPopularityExtraParity: number
    maxParity: number
  }
  trust: {
    preTrusted: string[]
    region: string
    networks: string[]
    exchangeIntervalMs: number
    banMs: number
    rejectWindowMs: number
    rejectsToDisconnect: number
    maxBans: number
  }
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent'; file: string }
}

const SECTIONS = ['net', 'api', 'storage', 'repair', 'trust', 'log'] as const

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The value of one key, or its default when absent; pushes a message to `issues` when invalid. */
function leafValue(k: ConfigKey, v: unknown, issues: string[]): unknown {
  if (v === undefined) return Array.isArray(k.default) ? [...k.default] : k.default
  const bad = (what: string): undefined => {
    issues.push(`${k.path}: ${what}, got ${JSON.stringify(v)?.slice(0, 80) ?? String(v)}`)
    return undefined
  }
  switch (k.kind) {
    case 'string':
      if (typeof v !== 'string') return bad('expected a string')
      if (k.path === 'net.dhtProtocol' && !v.startsWith('/')) return bad('must start with "/"')
      return v
    case 'strings':
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
        return bad('expected an array of strings')
      if (k.path === 'api.allowedHosts' && !v.every((x) => HOST_NAME.test(x)))
        return bad('expected host names without scheme, port or path')
      return [...v]
    case 'enum':
      if (typeof v !== 'string' || !(k.values ?? []).includes(v))
        return bad(`expected one of ${(k.values ?? []).join(', ')}`)
      return v
    case 'int':
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) return bad('expected an integer')
      if (k.min !== undefined && v < k.min) return bad(`must be at least ${k.min}`)
      if (k.max !== undefined && v > k.max) return bad(`must be at most ${k.max}`)
      return v
  }
}

/**
 * Checks `raw` against {@link CONFIG_KEYS}: known sections and keys only, each value of its kind and
 * range (absent ones get their defaults), then the rules across keys. Returns the filled-in config
 * and the list of problems (`path: message`), empty when valid.
 */
function validate(raw: unknown): { config: Shape; issues: string[] } {
  const issues: string[] = []
  const out: Record<string, unknown> = {}
  if (!isPlainObject(raw)) return { config: out as unknown as Shape, issues: ['(root): expected an object'] }
  for (const key of Object.keys(raw)) {
    if (key !== 'dataDir' && !(SECTIONS as readonly string[]).includes(key))
      issues.push(`${key}: unknown key`)
  }
  if (typeof raw.dataDir !== 'string' || raw.dataDir.length === 0)
    issues.push('dataDir: expected a non-empty string')
  out.dataDir = raw.dataDir
  for (const name of SECTIONS) {
    const given = raw[name] ?? {}
    if (!isPlainObject(given)) {
      issues.push(`${name}: expected an object`)
      continue
    }
    const keys = CONFIG_KEYS.filter((k) => k.path.startsWith(`${name}.`))
    for (const key of Object.keys(given)) {
      if (!keys.some((k) => k.path === `${name}.${key}`)) issues.push(`${name}.${key}: unknown key`)
    }
    const section: Record<string, unknown> = {}
    for (const k of keys) {
      const leaf = k.path.slice(name.length + 1)
      section[leaf] = leafValue(k, given[leaf], issues)
    }
    out[name] = section
  }
  const config = out as unknown as Shape
  if (issues.length === 0) {
    const { k, m, segmentSize, maxShardBytes } = config.storage
    if (k + m > 256) issues.push('storage.k + storage.m: must be at most 256')
    if (Math.ceil(segmentSize / k) > maxShardBytes)
      issues.push('storage.segmentSize / storage.k: must not exceed storage.maxShardBytes')
  }
  return { config, issues }
}

export type NodusConfig = Readonly<Shape>

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
        ? `one of ${(k.values ?? []).join(', ')}`
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
(src/node/gc-tuning.ts, why in docs/benchmarks-history.md "Session 5"), and \`nodus start\` runs one
memory-reducing collection 2 s after ready and starts V8 with \`--initial-old-space-size=128\` (bin/nodus.js
re-executes itself with it, same PID; "Session 6"). \`NODUS_V8_GC=default\` turns all three off;
\`NODUS_V8_GC_FLAGS="--flag=value ..."\` sets other V8 flags in place of the triggers, and
\`NODUS_V8_START_FLAGS="--flag ..."\` others in place of the start-up flag. \`nodus start\` also
returns malloc's free pages to the kernel after that collection and every 30 s (glibc \`malloc_trim\`
through the native addon, src/node/memory-trim.ts; "Session 7"); \`NODUS_MALLOC_TRIM=0\` turns it off.
It runs with \`MALLOC_ARENA_MAX=2\` unless the environment sets another value (\`NODUS_V8_GC=default\` leaves
it out too). Shard files are written and read with direct I/O (O_DIRECT) where the file system allows it
(src/common/direct-io.ts; "Session 8"); \`NODUS_DIRECT_IO=0\` turns that off.

| key | environment | type | default | meaning |
|---|---|---|---|---|
${rows.join('\n')}
`
}
