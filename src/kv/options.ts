/**
 * The kv area's config keys: section `kv` of the config file (docs/CONFIG.md): the bounds of an
 * operation (docs/PROTOCOLS.md, "KV operations"), the clock skew an operation may have, and the
 * signature verification pool. Pure table; the type {@link KvOptions} is derived from it.
 */
import { defineOptions, MiB, type OptionsOf } from '../common/options.ts'

/** Bytes in a kibibyte (2^10). */
const KiB = 1024

/** Section `kv`. */
export const KV_OPTIONS = defineOptions({
  maxOpBytes: {
    kind: 'int',
    default: 56 * KiB,
    min: 8 * KiB,
    max: 4 * MiB,
    description:
      'largest signed operation accepted or signed, bytes (the whole envelope; a hybrid signature and key take about 5.4 KB of it); keep it below messaging.maxMessageBytes so an operation fits one gossip message; larger: KV_OP_TOO_LARGE',
  },
  maxKeyBytes: {
    kind: 'int',
    default: 512,
    min: 1,
    max: 64 * KiB,
    description: 'longest key (and grant key prefix), UTF-8 bytes; longer: KV_OP_TOO_LARGE',
  },
  maxFieldBytes: {
    kind: 'int',
    default: 512,
    min: 1,
    max: 64 * KiB,
    description: 'longest field (hash field, JSON path, sub-key), UTF-8 bytes; longer: KV_OP_TOO_LARGE',
  },
  maxValueBytes: {
    kind: 'int',
    default: 48 * KiB,
    min: 1,
    max: 4 * MiB,
    description:
      'largest argument of an operation (a value, member, document), bytes of its dag-cbor encoding; larger: KV_OP_TOO_LARGE',
  },
  maxFutureSkewMs: {
    kind: 'int',
    default: 60_000,
    min: 1000,
    max: 3_600_000,
    description:
      'how far ahead of this node’s clock an operation’s HLC may be, ms; further: KV_OP_FROM_FUTURE (and the node’s own HLC never moves further ahead)',
  },
  verifyThreads: {
    kind: 'int',
    default: 2,
    min: 0,
    max: 64,
    description:
      'worker threads verifying operation signatures off the event loop (0: verify on the event loop itself, for a one-core machine); on 2 cores, 2 threads verify about 18,000 Ed25519 signatures/s, the event loop alone about 10,000 (bench/verify-pool.bench.ts)',
  },
  verifyBatchSize: {
    kind: 'int',
    default: 64,
    min: 1,
    max: 4096,
    description:
      'most signatures sent to a verification worker in one task (signatures arriving in one event-loop turn share a task)',
  },
  verifyQueueMax: {
    kind: 'int',
    default: 16_384,
    min: 1,
    max: 1_048_576,
    description:
      'signatures waiting for or in verification at once; beyond it a verification fails with QUEUE_FULL',
  },
})

/** The values of section `kv`. */
export type KvOptions = OptionsOf<typeof KV_OPTIONS>

/**
 * Problems between keys of section `kv` (each `kv.<key>: message`), empty when consistent.
 * A key's own range is checked by the config loader.
 */
export function kvOptionProblems(o: KvOptions): string[] {
  const out: string[] = []
  if (o.maxValueBytes > o.maxOpBytes) out.push('kv.maxValueBytes: must be at most kv.maxOpBytes')
  if (o.maxKeyBytes + o.maxFieldBytes > o.maxOpBytes)
    out.push('kv.maxKeyBytes: kv.maxKeyBytes + kv.maxFieldBytes must be at most kv.maxOpBytes')
  if (o.verifyQueueMax < o.verifyBatchSize) out.push('kv.verifyQueueMax: must be at least kv.verifyBatchSize')
  return out
}
