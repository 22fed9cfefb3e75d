/**
 * The Mysticeti-C commit rule (Babel, Chursin, Danezis, Kokoris-Kogias, Sonnino, "Mysticeti: Reaching
 * the Limits of Latency with Uncertified DAGs", arXiv 2310.14821, §4, Algorithm 2), pipelined: a wave
 * of length 3 starts every round r ≥ 1 — leader round r, voting round r+1, decision round r+2 — with
 * one leader slot per round (the committee's schedule).
 *
 * - Support (vote): a voting-round vertex supports the leader vertex of slot (r, a) it has as a parent
 *   (at most one: one parent per author). A decision-round vertex is a certificate for a leader vertex
 *   L (the certificate pattern) when parents from a quorum (2f+1) of distinct authors support L.
 * - Direct decision: commit L when decision-round vertices of a quorum of distinct authors are
 *   certificates for it; skip the slot when voting-round vertices of a quorum of distinct authors do
 *   not support any of its vertices (they blame it). Otherwise undecided.
 * - Indirect decision, for an undecided slot: the anchor is the first slot of round ≥ r+3 that is not
 *   skipped; if the anchor is undecided so is the slot; if it is committed, L is committed when the
 *   anchor's causal history holds a certificate for it, and the slot skipped when it holds none.
 * - The commit sequence: slots are decided from the highest round that can have a decision round
 *   down to the last decided one, then emitted in round order up to the first undecided slot.
 * - Each committed leader's causal history not yet committed (and at most `gcDepthRounds` below it) is
 *   linearized, ordered by (round, author, digest), as a {@link CommittedSubDag}.
 *
 * With at most f equivocating authors, quorum intersection allows one certified vertex per slot, and
 * every honest validator commits the same sequence. When the DAG shows more than f equivocators, or two
 * certified vertices of one slot, the committer halts (`CONSENSUS_HALTED`) rather than fork silently.
 * Reference implementations read: Sui consensus/core (base_committer.rs, universal_committer.rs,
 * linearizer.rs) and Informal Systems' Quint specification of Mysticeti-C.
 */
import { NodusError } from '../common/errors.ts'
import type { DagView } from './dag.ts'
import { digestKey, refOf, refString, type Vertex, type VertexRef } from './vertex.ts'

/** Rounds of a wave: leader, voting, decision. */
export const WAVE_LENGTH = 3

/** A leader slot's decision. */
export type LeaderDecision =
  | { readonly kind: 'commit'; readonly round: number; readonly author: number; readonly leader: Vertex }
  | { readonly kind: 'skip'; readonly round: number; readonly author: number }

type SlotStatus =
  | LeaderDecision
  | { readonly kind: 'undecided'; readonly round: number; readonly author: number }

/** One committed leader and the part of its causal history it commits, in commit order. */
export interface CommittedSubDag {
  /** Height: 1 for the first commit of the epoch, then +1 per commit. */
  readonly index: number
  readonly leader: VertexRef
  /** The vertices committed, ordered by (round, author, digest); the leader last. */
  readonly vertices: readonly Vertex[]
  /** max(previous commit's timestamp, the leader's timestamp), Unix ms: never decreases. */
  readonly timestampMs: number
}

/** What one {@link Committer.tryCommit} call decided. */
export interface CommitOutput {
  /** Slots decided by this call, in round order (commits and skips). */
  readonly decisions: readonly LeaderDecision[]
  /** The sub-DAGs committed, in order. */
  readonly commits: readonly CommittedSubDag[]
}

/** Where a committer starts (a new epoch: all defaults). */
export interface CommitterOptions {
  /** Rounds below a committed leader that its sub-DAG may still include (`consensus.gcDepthRounds`). */
  gcDepthRounds: number
  /** The floor of commit timestamps (the genesis `createdAtMs`), Unix ms. Default 0. */
  initialTimestampMs?: number
  /** Resume after a restart from this state ({@link Committer.state}, saved with the last commit applied). */
  restore?: CommitterState
}

/**
 * What a committer must remember across a restart to go on with the same sequence: where it stands,
 * and the vertices committed within `gcDepthRounds` of the last committed leader (a later leader's
 * sub-DAG must not commit them again). Save it atomically with the last commit applied.
 */
export interface CommitterState {
  lastDecidedRound: number
  lastIndex: number
  lastTimestampMs: number
  lastCommittedRound: number
  /** Committed vertices at rounds ≥ lastCommittedRound − gcDepthRounds. */
  committed: VertexRef[]
}

/** Decides leader slots over a DAG ({@link DagView}) and emits the commit sequence. Deterministic. */
export class Committer {
  readonly #dag: DagView
  readonly #gcDepth: number
  #lastDecidedRound = 0
  #lastIndex = 0
  #lastTimestampMs: number
  #lastCommittedRound = 0
  /** round → digest key → vertices committed at that round (pruned with the DAG). */
  readonly #committed = new Map<number, Map<string, VertexRef>>()
  #halt: NodusError | undefined

  constructor(dag: DagView, options: CommitterOptions) {
    this.#dag = dag
    this.#gcDepth = options.gcDepthRounds
    this.#lastTimestampMs = options.initialTimestampMs ?? 0
    const r = options.restore
    if (r !== undefined) {
      this.#lastDecidedRound = r.lastDecidedRound
      this.#lastIndex = r.lastIndex
      this.#lastTimestampMs = Math.max(this.#lastTimestampMs, r.lastTimestampMs)
      this.#lastCommittedRound = r.lastCommittedRound
      for (const v of r.committed) this.#markCommitted(v)
      const floor = r.lastCommittedRound - this.#gcDepth
      if (floor > dag.floor) dag.prune(floor)
    }
  }

  /** Where this committer stands, to resume from after a restart (see {@link CommitterState}). */
  state(): CommitterState {
    const floor = this.#lastCommittedRound - this.#gcDepth
    const committed: VertexRef[] = []
    for (const [round, set] of this.#committed)
      if (round >= floor) for (const v of set.values()) committed.push(refOf(v))
    return {
      lastDecidedRound: this.#lastDecidedRound,
      lastIndex: this.#lastIndex,
      lastTimestampMs: this.#lastTimestampMs,
      lastCommittedRound: this.#lastCommittedRound,
      committed,
    }
  }

  #markCommitted(v: VertexRef): void {
    const set = this.#committed.get(v.round) ?? new Map<string, VertexRef>()
    this.#committed.set(v.round, set)
    set.set(digestKey(v.digest), refOf(v))
  }

  /** Round of the last decided slot (0: none yet). */
  get lastDecidedRound(): number {
    return this.#lastDecidedRound
  }

  /** Height of the last commit (0: none yet). */
  get lastIndex(): number {
    return this.#lastIndex
  }

  /** Round of the last committed leader (0: none yet). */
  get lastCommittedRound(): number {
    return this.#lastCommittedRound
  }

  /** Why the committer stopped (`CONSENSUS_HALTED`), or undefined while it runs. */
  get halted(): NodusError | undefined {
    return this.#halt
  }

  /** True when `v` was committed (and not garbage-collected since). */
  isCommitted(v: VertexRef): boolean {
    return this.#committed.get(v.round)?.has(digestKey(v.digest)) ?? false
  }

  /**
   * Decide what the DAG now allows and emit the commits, in order. Call after vertices are accepted.
   * Garbage-collects the DAG `gcDepthRounds` below the last committed leader.
   *
   * @returns the decisions and commits made by this call (empty once halted)
   */
  tryCommit(): CommitOutput {
    if (this.#halt !== undefined || this.#checkEquivocators()) return { decisions: [], commits: [] }
    const statuses: SlotStatus[] = []
    const highest = this.#dag.highestRound
    for (let round = highest - (WAVE_LENGTH - 1); round > this.#lastDecidedRound; round--) {
      const author = this.#dag.committee.leader(round)
      let status = this.#directDecide(round, author)
      if (status.kind === 'undecided') status = this.#indirectDecide(round, author, statuses)
      if (this.#halt !== undefined) return { decisions: [], commits: [] }
      statuses.unshift(status)
    }
    const decisions: LeaderDecision[] = []
    const commits: CommittedSubDag[] = []
    for (const s of statuses) {
      if (s.kind === 'undecided') break
      decisions.push(s)
      this.#lastDecidedRound = s.round
      if (s.kind === 'commit') commits.push(this.#linearize(s.leader))
    }
    if (commits.length > 0) this.#collect()
    return { decisions, commits }
  }

  /** Halts when more than f authors equivocated. */
  #checkEquivocators(): boolean {
    const eq = this.#dag.equivocators
    if (eq.length <= this.#dag.committee.f) return false
    this.#halt = new NodusError(
      'CONSENSUS_HALTED',
      `consensus halted: ${eq.length} validators equivocated, more than f = ${this.#dag.committee.f}`,
      { details: { equivocators: eq, f: this.#dag.committee.f } },
    )
    return true
  }

  /** The leader vertex of slot (round, author) that `voter` supports (its parent there), if any. */
  #supported(voter: Vertex, round: number, author: number): Uint8Array | undefined {
    return voter.parents.find((p) => p.author === author && p.round === round)?.digest
  }

  /** True when `d` is a certificate for `leader` (parents of a quorum of authors support it). */
  #isCertificate(d: Vertex, leader: Vertex): boolean {
    const key = digestKey(leader.digest)
    let votes = 0
    for (const p of d.parents) {
      if (p.round !== leader.round + 1) continue
      const voter = this.#dag.get(p.digest)
      const s = voter === undefined ? undefined : this.#supported(voter, leader.round, leader.author)
      if (s !== undefined && digestKey(s) === key) votes++
    }
    return votes >= this.#dag.committee.quorum
  }

  #directDecide(round: number, author: number): SlotStatus {
    const q = this.#dag.committee.quorum
    const blamers = new Set<number>()
    for (const v of this.#dag.round(round + 1))
      if (this.#supported(v, round, author) === undefined) blamers.add(v.author)
    if (blamers.size >= q) return { kind: 'skip', round, author }
    const decision = this.#dag.round(round + 2)
    const committed = this.#dag.slot(round, author).filter((leader) => {
      const certifiers = new Set<number>()
      for (const d of decision) if (this.#isCertificate(d, leader)) certifiers.add(d.author)
      return certifiers.size >= q
    })
    return this.#single(round, author, committed, 'undecided')
  }

  #indirectDecide(round: number, author: number, later: readonly SlotStatus[]): SlotStatus {
    for (const anchor of later) {
      if (anchor.round < round + WAVE_LENGTH) continue
      if (anchor.kind === 'skip') continue
      if (anchor.kind === 'undecided') break
      const certificates = this.#historyAt(anchor.leader, round + WAVE_LENGTH - 1)
      const certified = this.#dag
        .slot(round, author)
        .filter((leader) => certificates.some((d) => this.#isCertificate(d, leader)))
      return this.#single(round, author, certified, 'skip')
    }
    return { kind: 'undecided', round, author }
  }

  /** The one leader in `found` committed; none: `none`; several: halt. */
  #single(round: number, author: number, found: Vertex[], none: 'skip' | 'undecided'): SlotStatus {
    if (found.length > 1) {
      this.#halt = new NodusError(
        'CONSENSUS_HALTED',
        `consensus halted: two vertices of leader slot ${author}@${round} are certified`,
        { details: { round, author, vertices: found.map(refString), equivocators: this.#dag.equivocators } },
      )
    }
    const leader = found[0]
    if (leader === undefined) return { kind: none, round, author }
    return { kind: 'commit', round, author, leader }
  }

  /** The vertices of round `round` in the causal history of `from`. */
  #historyAt(from: Vertex, round: number): Vertex[] {
    const seen = new Set<string>([digestKey(from.digest)])
    const out: Vertex[] = []
    let frontier = [from]
    while (frontier.length > 0) {
      const next: Vertex[] = []
      for (const v of frontier)
        for (const p of v.parents) {
          if (p.round < round) continue
          const k = digestKey(p.digest)
          if (seen.has(k)) continue
          seen.add(k)
          const pv = this.#dag.get(p.digest)
          if (pv === undefined) continue
          if (pv.round === round) out.push(pv)
          else next.push(pv)
        }
      frontier = next
    }
    return out
  }

  /** The leader's uncommitted causal history, ordered, as the next sub-DAG; marks it committed. */
  #linearize(leader: Vertex): CommittedSubDag {
    const minRound = Math.max(1, leader.round - this.#gcDepth)
    const out: Vertex[] = []
    const seen = new Set<string>()
    const stack = [leader]
    seen.add(digestKey(leader.digest))
    while (stack.length > 0) {
      const v = stack.pop() as Vertex
      out.push(v)
      for (const p of v.parents) {
        const k = digestKey(p.digest)
        if (p.round < minRound || seen.has(k) || this.isCommitted(p)) continue
        seen.add(k)
        const pv = this.#dag.get(p.digest)
        if (pv !== undefined) stack.push(pv)
      }
    }
    out.sort((a, b) => a.round - b.round || a.author - b.author || Buffer.compare(a.digest, b.digest))
    for (const v of out) this.#markCommitted(v)
    this.#lastIndex++
    this.#lastCommittedRound = leader.round
    this.#lastTimestampMs = Math.max(this.#lastTimestampMs, leader.timestampMs)
    return {
      index: this.#lastIndex,
      leader: refOf(leader),
      vertices: out,
      timestampMs: this.#lastTimestampMs,
    }
  }

  /** Drop what is more than gcDepthRounds below the last committed leader. */
  #collect(): void {
    const floor = this.#lastCommittedRound - this.#gcDepth
    if (floor <= this.#dag.floor) return
    this.#dag.prune(floor)
    for (const r of this.#committed.keys()) if (r < floor) this.#committed.delete(r)
  }
}
