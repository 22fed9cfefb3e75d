/**
 * The node's configuration: one zod schema, defaults < config file < flags, frozen after load.
 * docs/CONFIG.md describes every key.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { NodusError } from '../common/errors.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB

export const ConfigSchema = z
  .object({
    /** Data directory: keys, index, shards, run files. */
    dataDir: z.string().min(1),
    net: z
      .object({
        /** libp2p listen multiaddrs. */
        listen: z.array(z.string()).default(['/ip4/127.0.0.1/tcp/0']),
        /** Multiaddrs (with /p2p/ID) to dial at start. */
        bootstrap: z.array(z.string()).default([]),
        /** Kademlia protocol id; `/ipfs/kad/1.0.0` to join standard libp2p DHTs. */
        dhtProtocol: z.string().startsWith('/').default('/nodus/kad/1.0.0'),
        /** Maximum open connections. */
        maxConnections: z.number().int().min(1).default(300),
      })
      .strict()
      .prefault({}),
    api: z
      .object({
        /** Address the HTTP API binds; loopback by default. */
        host: z.string().default('127.0.0.1'),
        /** Port of the HTTP API; 0 picks a free one. */
        port: z.number().int().min(0).max(65535).default(0),
      })
      .strict()
      .prefault({}),
    storage: z
      .object({
        /** Bytes this node offers for shards. */
        capacityBytes: z
          .number()
          .int()
          .min(0)
          .default(100 * GiB),
        /** Largest shard accepted, bytes. */
        maxShardBytes: z
          .number()
          .int()
          .min(1024)
          .default(16 * MiB),
        /** Data shards per segment (k). */
        k: z.number().int().min(1).max(255).default(10),
        /** Parity shards per segment (m). */
        m: z.number().int().min(0).max(255).default(4),
        /** Segment size, bytes. */
        segmentSize: z
          .number()
          .int()
          .min(1024)
          .default(10 * MiB),
        /** Segments in flight per put or get (memory bound). */
        segmentsInFlight: z.number().int().min(1).max(16).default(2),
        /** Peers besides this one that keep each manifest. */
        manifestReplicas: z.number().int().min(0).default(4),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        /** pino level. */
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
        /** Log file; empty writes to stderr. */
        file: z.string().default(''),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .refine((c) => c.storage.k + c.storage.m <= 256, { message: 'storage.k + storage.m must be at most 256' })
  .refine((c) => Math.ceil(c.storage.segmentSize / c.storage.k) <= c.storage.maxShardBytes, {
    message: 'segmentSize / k must not exceed maxShardBytes',
  })

export type NodusConfig = Readonly<z.infer<typeof ConfigSchema>>
/** A partial config as it appears in a file or is built from flags. */
export type ConfigInput = z.input<typeof ConfigSchema>

export const CONFIG_FILE = 'config.json'

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v)
    Object.freeze(o)
  }
  return o
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
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
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v
  }
  return out
}

/** Validate a raw config object. Throws CONFIG_INVALID naming each bad key. */
export function parseConfig(raw: unknown): NodusConfig {
  const r = ConfigSchema.safeParse(raw)
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    throw new NodusError('CONFIG_INVALID', `invalid config: ${issues.join('; ')}`, { details: { issues } })
  }
  return deepFreeze(r.data)
}

/**
 * Load `<dataDir>/config.json` (if present) and apply `overrides` (from flags) on top.
 * Throws CONFIG_INVALID for unreadable JSON or bad values.
 */
export async function loadConfig(
  dataDir: string,
  overrides: Record<string, unknown> = {},
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
  return parseConfig(merge(merge(file, { dataDir }), overrides))
}
