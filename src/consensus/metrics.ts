/**
 * The consensus area's metrics (docs/METRICS.md): the validator's rounds, commits and their latency,
 * decisions, the DAG's size, equivocations and the halt. Pure: creates them on the registry given;
 * observe.ts updates them from a core's outputs and status.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/** Creates the consensus metrics on `registry`. */
export function createConsensusMetrics(registry: Registry) {
  const registers = [registry]
  return {
    consensusRound: new Gauge({
      name: 'nodus_consensus_round',
      help: 'Rounds of this validator: proposed (its last vertex), quorum (highest round held by 2f+1 authors), highest (highest vertex held), by kind',
      labelNames: ['kind'],
      registers,
    }),
    consensusCommitIndex: new Gauge({
      name: 'nodus_consensus_commit_index',
      help: 'Height of the last committed sub-DAG',
      registers,
    }),
    consensusCommitLatency: new Histogram({
      name: 'nodus_consensus_commit_latency_seconds',
      help: "From a committed leader vertex's timestamp (its author's clock) to its commit on this node, seconds",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    consensusDecisions: new Counter({
      name: 'nodus_consensus_decisions_total',
      help: 'Leader slots decided, by decision (commit, skip)',
      labelNames: ['decision'],
      registers,
    }),
    consensusCommittedVertices: new Counter({
      name: 'nodus_consensus_committed_vertices_total',
      help: 'Vertices committed (in committed sub-DAGs)',
      registers,
    }),
    consensusCommittedTxs: new Counter({
      name: 'nodus_consensus_committed_txs_total',
      help: 'Transactions in committed vertices (before the ledger applies or refuses them)',
      registers,
    }),
    consensusDagVertices: new Gauge({
      name: 'nodus_consensus_dag_vertices',
      help: 'Vertices held, by state (accepted, suspended: waiting for parents)',
      labelNames: ['state'],
      registers,
    }),
    consensusPendingTxs: new Gauge({
      name: 'nodus_consensus_pending_txs',
      help: 'Transactions waiting in this validator’s pool to be proposed',
      registers,
    }),
    consensusEquivocations: new Counter({
      name: 'nodus_consensus_equivocations_total',
      help: 'Validators seen signing two vertices for one round (evidence kept)',
      registers,
    }),
    consensusEpoch: new Gauge({
      name: 'nodus_consensus_epoch',
      help: 'The consensus epoch this node runs (its committee: GET /dag/status)',
      registers,
    }),
    consensusVerticesIgnored: new Counter({
      name: 'nodus_consensus_vertices_ignored_total',
      help: 'Vertices received and dropped without a report, by reason (older-epoch: a vertex of an epoch this node has left)',
      labelNames: ['reason'],
      registers,
    }),
    consensusHalted: new Gauge({
      name: 'nodus_consensus_halted',
      help: '1 once the core halted (more than f equivocators, or two certified vertices in one slot), else 0',
      registers,
    }),
    consensusCatchups: new Counter({
      name: 'nodus_consensus_catchups_total',
      help: 'Catch-ups from a ledger snapshot, by result (installed; refused: the peer sent a bad snapshot and was reported; failed: unvouched, unreachable, unavailable)',
      labelNames: ['result'],
      registers,
    }),
  }
}

/** The consensus metrics, as fields. */
export type ConsensusMetrics = ReturnType<typeof createConsensusMetrics>
