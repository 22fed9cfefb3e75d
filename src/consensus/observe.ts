/**
 * Updates the consensus metrics (metrics.ts) from what a core says: each {@link CoreOutput} as it
 * comes, and its {@link CoreStatus} (at scrape time or after each step).
 */
import type { CoreOutput, CoreStatus } from './core.ts'
import type { ConsensusMetrics } from './metrics.ts'

/** Count an output's decisions, commits, equivocations; observe commit latency against `nowMs` (Unix ms). */
export function observeCoreOutput(m: ConsensusMetrics, out: CoreOutput, nowMs: number): void {
  for (const d of out.decisions) m.consensusDecisions.inc({ decision: d.kind })
  for (const c of out.commits) {
    const leader = c.vertices.at(-1)
    if (leader !== undefined) m.consensusCommitLatency.observe(Math.max(0, nowMs - leader.timestampMs) / 1000)
    m.consensusCommittedVertices.inc(c.vertices.length)
    m.consensusCommittedTxs.inc(c.vertices.reduce((n, v) => n + v.txs.length, 0))
  }
  if (out.equivocations.length > 0) m.consensusEquivocations.inc(out.equivocations.length)
}

/** Set the gauges from a core's status. */
export function observeCoreStatus(m: ConsensusMetrics, s: CoreStatus): void {
  m.consensusRound.set({ kind: 'proposed' }, s.lastProposedRound)
  m.consensusRound.set({ kind: 'quorum' }, s.quorumRound)
  m.consensusRound.set({ kind: 'highest' }, s.highestRound)
  m.consensusCommitIndex.set(s.lastCommitIndex)
  m.consensusDagVertices.set({ state: 'accepted' }, s.dagVertices)
  m.consensusDagVertices.set({ state: 'suspended' }, s.suspendedVertices)
  m.consensusPendingTxs.set(s.pendingTxs)
  m.consensusHalted.set(s.halted ? 1 : 0)
}
