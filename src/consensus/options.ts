/**
 * The consensus area's config keys: section `consensus` of the config file (docs/CONFIG.md). These
 * are this node's own bounds (memory, clock skew, garbage collection); the parameters every validator
 * must share (committee, round timeout, vertex bounds, leader seed, signature mode) are in the signed
 * genesis file instead (genesis.ts). Pure table; the type {@link ConsensusOptions} is derived from it.
 */
import { defineOptions, MiB, type OptionsOf } from '../common/options.ts'

/** Section `consensus`. */
export const CONSENSUS_OPTIONS = defineOptions({
  genesis: {
    kind: 'string',
    default: '',
    description:
      'path of the federation’s signed genesis file (`nodus genesis`; `nodus start --genesis FILE`); empty: consensus and the ledger are off. A member of its committee runs a validator, any other node follows',
  },
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
  idleRoundDelayMs: {
    kind: 'int',
    default: 100,
    min: 0,
    max: 60_000,
    description:
      'with nothing to carry (no pending transactions here and none in vertices not yet committed), a validator proposes at most one vertex per this many ms, so an idle federation does not run rounds as fast as the network allows; a transaction arriving ends the wait at once. 0: never wait (as Narwhal’s max_header_delay, Danezis et al., EuroSys 2022)',
  },
  maxFutureSkewMs: {
    kind: 'int',
    default: 5_000,
    min: 0,
    max: 3_600_000,
    description:
      'how far ahead of this node’s clock a vertex’s timestamp may be, ms; further: VERTEX_FROM_FUTURE (refused now, accepted once the clock catches up)',
  },
  fetchMaxRefs: {
    kind: 'int',
    default: 64,
    min: 1,
    max: 4096,
    description:
      'most vertex references in one /nodus/consensus-fetch/1.0.0 request (asked and served); a longer request is refused',
  },
  fetchMaxBytes: {
    kind: 'int',
    default: 4 * MiB,
    min: 64 * 1024,
    max: 256 * MiB,
    description:
      'largest fetch response, bytes: the vertices that fit are sent, the client asks again for the rest (at least one vertex is always sent)',
  },
  fetchPeerConcurrency: {
    kind: 'int',
    default: 4,
    min: 1,
    max: 256,
    description:
      'fetch requests served at once for one peer (and sent at once to one peer); more are refused with PEER_BUSY',
  },
  fetchMaxInFlight: {
    kind: 'int',
    default: 4096,
    min: 16,
    max: 1_000_000,
    description: 'missing vertices being fetched at once by this node; more wait for the next retry round',
  },
  fetchTimeoutMs: {
    kind: 'int',
    default: 5_000,
    min: 100,
    max: 600_000,
    description: 'time one fetch or transaction-forward request may take, ms',
  },
  fetchRetryMs: {
    kind: 'int',
    default: 1_000,
    min: 10,
    max: 600_000,
    description:
      'how often vertices still missing (a fetch failed, a peer refused) are asked again from other peers, ms',
  },
  catchupCheckMs: {
    kind: 'int',
    default: 5_000,
    min: 10,
    max: 3_600_000,
    description:
      'how often this node asks a few connected peers for their ledger height, ms: when its own height did not move since the previous check and a peer is ahead and has pruned the rounds this node’s DAG wants, it catches up from a ledger snapshot (/nodus/consensus-snapshot/1.0.0) vouched for by f+1 validators',
  },
  catchupMaxSnapshotBytes: {
    kind: 'int',
    default: 256 * MiB,
    min: 64 * 1024,
    max: 4 * 1024 * MiB,
    description:
      'largest ledger snapshot exported for or downloaded by catch-up, bytes (held in memory while it is served or checked); chunks are at most ledger.snapshotChunkBytes, and an offer of larger chunks is skipped',
  },
  catchupCacheSnapshots: {
    kind: 'int',
    default: 2,
    min: 1,
    max: 64,
    description:
      'exported snapshots kept in memory to serve catch-up requests (the oldest is dropped): at most this × catchupMaxSnapshotBytes bytes',
  },
  catchupCacheMs: {
    kind: 'int',
    default: 30_000,
    min: 0,
    max: 3_600_000,
    description:
      'how long the newest exported snapshot is offered to catch-up requests before a new one is exported, ms; also only while fewer than gcDepthRounds / 2 rounds were committed since (the taker must still find the DAG above it). An export holds commits back while it reads the ledger',
  },
  catchupVouchHeights: {
    kind: 'int',
    default: 4_096,
    min: 16,
    max: 10_000_000,
    description:
      'recent commit heights whose committer-state digest this node keeps to vouch for other nodes’ catch-up snapshots',
  },
  catchupServePerPeer: {
    kind: 'int',
    default: 2,
    min: 1,
    max: 64,
    description:
      'snapshot requests (head, vouch, offer, chunk) served at once for one peer; more: PEER_BUSY. A taker fetches chunks one at a time, so this bounds the concurrent snapshot transfers one peer gets',
  },
  catchupServeSlots: {
    kind: 'int',
    default: 8,
    min: 1,
    max: 1_024,
    description: 'snapshot requests served at once for all peers together; more: PEER_BUSY',
  },
  catchupHeadPeers: {
    kind: 'int',
    default: 8,
    min: 1,
    max: 256,
    description: 'peers asked for their ledger height at each catch-up check',
  },
  verifyThreads: {
    kind: 'int',
    default: 1,
    min: 0,
    max: 64,
    description: 'worker threads verifying vertex and transaction signatures (0: on the main thread)',
  },
  maxEvidence: {
    kind: 'int',
    default: 256,
    min: 1,
    max: 100_000,
    description: 'equivocation proofs kept in memory and shown by GET /dag/status (the oldest are dropped)',
  },
  maxForwardTxs: {
    kind: 'int',
    default: 256,
    min: 1,
    max: 100_000,
    description:
      'transactions in one /nodus/consensus-submit/1.0.0 request from a follower to a validator (sent and accepted)',
  },
})

/** The values of section `consensus`. */
export type ConsensusOptions = OptionsOf<typeof CONSENSUS_OPTIONS>

/** The defaults of section `consensus`. */
export const DEFAULT_CONSENSUS_OPTIONS: ConsensusOptions = Object.freeze(
  Object.fromEntries(Object.entries(CONSENSUS_OPTIONS).map(([k, v]) => [k, v.default])) as ConsensusOptions,
)
