/**
 * The consensus area's config keys: section `consensus` of the config file (docs/CONFIG.md). These
 * are this node's own bounds (memory, clock skew, garbage collection); the parameters every validator
 * must share (committee, round timeout, vertex bounds, leader seed, signature mode) are in the signed
 * genesis file instead (genesis.ts). Pure table; the type {@link ConsensusOptions} is derived from it.
 */
import { defineOptions, MiB, type OptionsOf } from '../common/options.ts'

/** Section `consensus`. */
export const CONSENSUS_OPTIONS = defineOptions({
  gcDepthRounds: {
    kind: 'int',
    default: 50,
    min: 5,
    max: 100_000,
    description:
      'rounds of the DAG kept below the last committed leader; older vertices are dropped and never committed (a vertex that reaches no leader within this depth is lost, its transactions must be resubmitted); every validator must use the same value',
  },
  maxSuspendedVertices: {
    kind: 'int',
    default: 10_000,
    min: 16,
    max: 10_000_000,
    description:
      'vertices held while their parents are fetched; beyond it the newest arrivals are dropped (and fetched again when referenced)',
  },
  maxPendingTxs: {
    kind: 'int',
    default: 100_000,
    min: 1,
    max: 100_000_000,
    description: 'transactions waiting to be proposed by this validator; more: TX_POOL_FULL',
  },
  maxPendingTxBytes: {
    kind: 'int',
    default: 64 * MiB,
    min: 1024,
    max: 4096 * MiB,
    description: 'bytes of transactions waiting to be proposed by this validator; more: TX_POOL_FULL',
  },
  maxFutureSkewMs: {
    kind: 'int',
    default: 5_000,
    min: 0,
    max: 3_600_000,
    description:
      'how far ahead of this node’s clock a vertex’s timestamp may be, ms; further: VERTEX_FROM_FUTURE (refused now, accepted once the clock catches up)',
  },
})

/** The values of section `consensus`. */
export type ConsensusOptions = OptionsOf<typeof CONSENSUS_OPTIONS>

/** The defaults of section `consensus`. */
export const DEFAULT_CONSENSUS_OPTIONS: ConsensusOptions = Object.freeze(
  Object.fromEntries(Object.entries(CONSENSUS_OPTIONS).map(([k, v]) => [k, v.default])) as ConsensusOptions,
)
