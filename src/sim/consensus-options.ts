/**
 * The options of a `nodus sim consensus` run (Mysticeti-C side; Snowball takes the same network and
 * workload ones, snowball-sim.ts), and their defaults.
 */
import { DEFAULT_CONSENSUS_OPTIONS, GENESIS_DEFAULTS } from '../consensus/index.ts'
import type { NetOptions, OutageSpec } from './consensus-net.ts'

/** What a run simulates. */
export interface ConsensusSimOptions extends Omit<NetOptions, 'n'> {
  validators: number
  seed: number
  /** Transactions are submitted for this long, simulated ms. */
  durationMs: number
  /** Stop once every correct validator's DAG reached this round (`durationMs` still caps the run). */
  rounds?: number
  /** Validators that do not follow the protocol (the lowest indices). */
  byzantine: number
  /** Of those, how many equivocate (the rest are mute). */
  equivocators: number
  crashes: OutageSpec[]
  /** Validators that start late (`count@time`). */
  late: OutageSpec[]
  /** Transfers submitted per simulated second (Poisson). */
  txPerSecond: number
  accounts: number
  /** Real Ed25519 signatures (default) or none. */
  signatures: boolean
  roundTimeoutMs: number
  /** How often a validator without progress asks a peer for what it lacks, ms. */
  syncIntervalMs: number
  /** Time after the workload stops for the last transactions to commit, ms. */
  drainMs: number
  gcDepthRounds: number
  /** Called at every commit an honest validator applies (tests: who commits when). */
  onCommit?: (validator: number, index: number, atMs: number) => void
}

export const DEFAULT_CONSENSUS_SIM_OPTIONS: ConsensusSimOptions = Object.freeze({
  validators: 10,
  seed: 1,
  durationMs: 30_000,
  latency: { kind: 'lognormal' as const, medianMs: 20, sigma: 0.5 },
  loss: 0,
  reorder: 0,
  reorderMaxMs: 100,
  partitions: [],
  byzantine: 0,
  equivocators: 0,
  crashes: [],
  late: [],
  txPerSecond: 200,
  accounts: 100,
  signatures: true,
  roundTimeoutMs: GENESIS_DEFAULTS.roundTimeoutMs,
  syncIntervalMs: 1_000,
  drainMs: 3_000,
  gcDepthRounds: DEFAULT_CONSENSUS_OPTIONS.gcDepthRounds,
})
