/**
 * The storage area's config keys: sections `storage` (shard store, leases, quotas, erasure coding) and
 * `repair` (the keeper: repair, audits, dynamic redundancy) of the config file (docs/CONFIG.md), and the
 * rules across storage keys. Pure tables; the types {@link StorageOptions} and {@link RepairOptions}
 * are derived from them.
 */
import { defineOptions, GiB, MiB, type OptionsOf } from '../common/options.ts'

/** Section `storage`. */
export const STORAGE_OPTIONS = defineOptions({
  capacityBytes: {
    kind: 'int',
    default: 100 * GiB,
    min: 0,
    description: 'bytes this node offers for shards',
  },
  maxShardBytes: {
    kind: 'int',
    default: 16 * MiB,
    min: 1024,
    description: 'largest shard accepted, bytes',
  },
  cacheBytes: {
    kind: 'int',
    default: 64 * MiB,
    min: 0,
    description:
      'bytes of hot shards kept in memory (LRU; a shard is cached on its second read, so a file streamed once does not fill it); 0 turns the cache off',
  },
  minFreeDiskBytes: {
    kind: 'int',
    default: 256 * MiB,
    min: 0,
    description: 'refuse new shards when the filesystem has less free space than this, bytes',
  },
  cleanupIntervalMs: {
    kind: 'int',
    default: 60_000,
    min: 100,
    description: 'time between deletions of expired shards, ms',
  },
  leaseMs: {
    kind: 'int',
    default: 30 * 24 * 3600 * 1000,
    min: 1000,
    description: 'holders keep an unpinned shard this long; pins renew it, ms',
  },
  maxLeaseMs: {
    kind: 'int',
    default: 90 * 24 * 3600 * 1000,
    min: 60_000,
    description:
      "longest lease this node grants another peer on any order, commit or pin, ms (nothing is kept forever on a peer's word)",
  },
  provisionalLeaseMs: {
    kind: 'int',
    default: 3600 * 1000,
    min: 1_000,
    description:
      'how long a shard stored for a peer is kept before its upload is committed, ms; aborted uploads expire after it',
  },
  quotaBytes: {
    kind: 'int',
    default: 4 * GiB,
    min: 0,
    description: 'bytes one peer (uploader or paying pinner) may keep on this node at trust 0',
  },
  quotaShards: {
    kind: 'int',
    default: 65_536,
    min: 0,
    description: 'blocks one peer may keep on this node at trust 0',
  },
  quotaTrustMultiplier: {
    kind: 'int',
    default: 16,
    min: 1,
    description:
      'quota multiplier for a peer at full trust: none at or below the average EigenTrust score (strangers), all of it at four times the average or for pre-trusted peers, linear between',
  },
  renewIntervalMs: {
    kind: 'int',
    default: 24 * 3600 * 1000,
    min: 100,
    description: "time between renewals of this node's pins on their holders, ms",
  },
  k: {
    kind: 'int',
    default: 10,
    min: 1,
    max: 255,
    description: 'data shards per segment (k)',
  },
  m: {
    kind: 'int',
    default: 4,
    min: 0,
    max: 255,
    description: 'parity shards per segment (m)',
  },
  segmentSize: {
    kind: 'int',
    default: 20 * MiB,
    min: 1024,
    description: 'segment size, bytes (20 MiB: 2 MiB shards with k = 10)',
  },
  segmentsInFlight: {
    kind: 'int',
    default: 2,
    min: 1,
    max: 16,
    description: 'segments in memory per put or get (bounds memory)',
  },
  manifestReplicas: {
    kind: 'int',
    default: 4,
    min: 0,
    description: 'peers besides this one that keep each manifest',
  },
})

/** Section `repair`. */
export const REPAIR_OPTIONS = defineOptions({
  intervalMs: {
    kind: 'int',
    default: 60_000,
    min: 100,
    description: 'time between health-and-repair rounds over the manifests this node keeps, ms',
  },
  graceMs: {
    kind: 'int',
    default: 120_000,
    min: 0,
    description:
      'a copy whose holder does not answer this long counts as lost (hysteresis against restarts), ms; a copy its holder says it lacks, or that failed an audit, counts as lost at once',
  },
  thresholdMargin: {
    kind: 'int',
    default: 2,
    min: 0,
    description: 'repair a segment when its healthy shards fall to k + this',
  },
  maxRepairsPerRound: {
    kind: 'int',
    default: 32,
    min: 1,
    description: 'segments one node repairs per round at most (rate limit)',
  },
  auditsPerRound: {
    kind: 'int',
    default: 8,
    min: 0,
    description: 'random shard copies of watched manifests audited per round',
  },
  criticalExtraParity: {
    kind: 'int',
    default: 2,
    min: 0,
    max: 32,
    description: 'parity shards added per segment to files pinned as critical (dynamic redundancy)',
  },
  readsPerParityStep: {
    kind: 'int',
    default: 100,
    min: 1,
    description:
      'reads in 24 h per popularity step (each requester counts once per hour): extra parity = floor(log2(1 + reads / this))',
  },
  maxPopularityExtraParity: {
    kind: 'int',
    default: 4,
    min: 0,
    max: 32,
    description: 'most parity shards added for popularity',
  },
  maxParity: {
    kind: 'int',
    default: 16,
    min: 0,
    max: 255,
    description: 'upper bound on parity shards per segment, whatever the flags (never below the upload m)',
  },
})

/** The values of section `storage` (config.storage). */
export type StorageOptions = OptionsOf<typeof STORAGE_OPTIONS>
/** The values of section `repair` (config.repair). */
export type RepairOptions = OptionsOf<typeof REPAIR_OPTIONS>

/**
 * The rules across `storage` keys, checked once every key is valid: `k + m ≤ 256` (GF(2^8) Reed-Solomon)
 * and a segment's shard (`segmentSize / k`, rounded up) fits `maxShardBytes`. Returns the problems as
 * `keys: message`, empty when none.
 */
export function storageOptionProblems(s: StorageOptions): string[] {
  const problems: string[] = []
  if (s.k + s.m > 256) problems.push('storage.k + storage.m: must be at most 256')
  if (Math.ceil(s.segmentSize / s.k) > s.maxShardBytes)
    problems.push('storage.segmentSize / storage.k: must not exceed storage.maxShardBytes')
  return problems
}
