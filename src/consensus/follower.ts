/**
 * A node outside the committee follows the DAG: it adds the vertices it hears (their signatures
 * verified by the caller, as for a {@link Core}), runs the same {@link Committer}, and so derives the
 * same commit sequence, which it checks rather than trusts. It never proposes; transactions submitted
 * to it go to a validator (the area forwards them).
 */
import { NodusError } from '../common/errors.ts'
import type { Committee } from './committee.ts'
import { Committer, type CommitterState } from './committer.ts'
import type { CoreOutput, CoreStatus } from './core.ts'
import { Dag } from './dag.ts'

export interface FollowerOptions {
  gcDepthRounds: number
  maxSuspendedVertices: number
  maxFutureSkewMs: number
  initialTimestampMs: number
  restore?: CommitterState
}

/** The DAG and committer of a follower; the same outputs as a core, never a `proposed`. */
export class Follower {
  readonly dag: Dag
  readonly committer: Committer
  readonly #committee: Committee
  readonly #o: FollowerOptions

  constructor(committee: Committee, options: FollowerOptions) {
    this.#committee = committee
    this.#o = options
    this.dag = new Dag(committee, { maxSuspended: options.maxSuspendedVertices })
    this.committer = new Committer(this.dag, {
      gcDepthRounds: options.gcDepthRounds,
      initialTimestampMs: options.initialTimestampMs,
      ...(options.restore === undefined ? {} : { restore: options.restore }),
    })
  }

  /**
   * Add a vertex whose signature verified.
   * @throws NodusError `VERTEX_WRONG_EPOCH`, `VERTEX_FROM_FUTURE` (both peerAction ignore), as a core does
   */
  addVertex(vertex: Parameters<Dag['add']>[0], nowMs: number): CoreOutput {
    if (vertex.epoch !== this.#committee.epoch)
      throw new NodusError('VERTEX_WRONG_EPOCH', `vertex of epoch ${vertex.epoch}`, { peerAction: 'ignore' })
    if (vertex.timestampMs > nowMs + this.#o.maxFutureSkewMs)
      throw new NodusError(
        'VERTEX_FROM_FUTURE',
        `vertex timestamp ${vertex.timestampMs} is ahead of ${nowMs}`,
        {
          peerAction: 'ignore',
        },
      )
    const added = this.dag.add(vertex)
    const c = added.accepted.length > 0 ? this.committer.tryCommit() : { decisions: [], commits: [] }
    const halted = this.committer.halted
    return {
      commits: c.commits,
      decisions: c.decisions,
      missing: added.missing,
      equivocations: added.equivocations,
      rejected: added.rejected,
      ...(halted === undefined ? {} : { halted }),
    }
  }

  /** A status in a core's shape (`author` −1: not a validator). */
  status(): CoreStatus {
    let quorumRound = 0
    for (let r = this.dag.highestRound; r > 0; r--)
      if (this.dag.authorsAt(r) >= this.#committee.quorum) {
        quorumRound = r
        break
      }
    return {
      author: -1,
      lastProposedRound: 0,
      quorumRound,
      highestRound: this.dag.highestRound,
      lastCommitIndex: this.committer.lastIndex,
      lastDecidedRound: this.committer.lastDecidedRound,
      dagVertices: this.dag.size,
      suspendedVertices: this.dag.suspendedCount,
      pendingTxs: 0,
      equivocators: this.dag.equivocators,
      halted: this.committer.halted !== undefined,
    }
  }
}
