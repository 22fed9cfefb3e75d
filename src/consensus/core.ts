/**
 * One validator's consensus state machine (Mysticeti-C, Babel et al., arXiv 2310.14821, §3–4): inputs
 * in, outputs out, no timers and no I/O but the {@link ProposalStore}. The caller (the consensus area,
 * or a test driver) feeds it verified vertices ({@link Core.addVertex}), transactions
 * ({@link Core.submit}) and the time ({@link Core.propose}), and acts on each {@link CoreOutput}:
 * broadcast `proposed`, fetch `missing`, hand `commits` to the ledger, keep `equivocations`, call
 * {@link Core.propose} again at `wakeAtMs`.
 *
 * Proposing (the threshold clock): with vertices of a quorum (2f+1) of authors at round r, and r+1
 * above its last proposal, the validator proposes round r+1 once it also holds the leader vertex of
 * round r, or `roundTimeoutMs` after it first held that quorum. Parents: its own previous vertex first,
 * then for every other author its vertex of round r, or else its latest vertex not yet referenced
 * (so every vertex is eventually in some leader's history). Transactions come from a bounded FIFO pool.
 *
 * Idle pacing (`idleRoundDelayMs`): while nothing waits to be committed (the pool is empty and every
 * vertex carrying transactions that this core accepted is committed or below the DAG's floor), the
 * next vertex also waits until `idleRoundDelayMs` after this validator's previous one. Rounds then go
 * as fast as the network allows only while there is something to order, and an idle federation costs
 * little CPU; a transaction (submitted here, or in a vertex received) ends the wait at once. This is
 * the adaptive round pace of Narwhal's primaries, which make a header when a batch is ready or
 * `max_header_delay` has passed (Danezis et al., "Narwhal and Tusk", EuroSys 2022, §4); it does not
 * touch safety (when a validator proposes never does).
 *
 * Never equivocating: a vertex is persisted ({@link ProposalStore.save}) before `propose` returns it,
 * and a restarted core ({@link Core.open}) proposes only above the persisted round. A vertex of its own
 * received from the network (e.g. its last one, fetched back) also raises that floor.
 */
import { NodusError } from '../common/errors.ts'
import type { Committee } from './committee.ts'
import {
  type CommitOutput,
  type CommittedSubDag,
  Committer,
  type CommitterState,
  type LeaderDecision,
} from './committer.ts'
import { type AddResult, Dag, type EquivocationEvidence } from './dag.ts'
import type { ConsensusOptions } from './options.ts'
import type { ProposalStore } from './proposal-store.ts'
import {
  decodeVertex,
  digestKey,
  signVertex,
  type Vertex,
  type VertexLimits,
  type VertexRef,
  type VertexSigner,
} from './vertex.ts'

/** What a core needs. */
export interface CoreDeps {
  committee: Committee
  /** Signs this validator's vertices (its key in the committee). */
  signer: VertexSigner
  store: ProposalStore
}

/** A core's parameters: the genesis's and this node's (section `consensus`). */
export interface CoreOptions
  extends VertexLimits,
    Pick<ConsensusOptions, 'gcDepthRounds' | 'maxSuspendedVertices' | 'maxPendingTxs' | 'maxPendingTxBytes'> {
  /** This validator's index in the committee. */
  author: number
  /** From the genesis: how long to wait for a round's leader after a quorum of the round, ms. */
  roundTimeoutMs: number
  /** From the genesis (`createdAtMs`): the floor of commit timestamps, Unix ms. */
  initialTimestampMs: number
  /** How far ahead of `nowMs` a vertex's timestamp may be, ms (`consensus.maxFutureSkewMs`). */
  maxFutureSkewMs: number
  /**
   * Idle pacing (`consensus.idleRoundDelayMs`), ms: with no transaction in the pool and none in a
   * vertex not yet committed, propose at most once per this long (module doc). Absent or 0: never wait.
   */
  idleRoundDelayMs?: number
  /**
   * After a restart: the committer's state saved with the last commit applied
   * ({@link Committer.state}); commits go on from its `lastIndex + 1`, and the DAG starts at its GC
   * floor (nothing older is fetched). Absent: from the epoch's start (height 1).
   */
  restore?: CommitterState
}

/** What the caller must do after a call. Every list may be empty. */
export interface CoreOutput {
  /** This validator's new vertex, already persisted: broadcast it. */
  readonly proposed?: Vertex
  /** Sub-DAGs committed, in order: apply their transactions. */
  readonly commits: readonly CommittedSubDag[]
  /** Leader slots decided (commits and skips), in order. */
  readonly decisions: readonly LeaderDecision[]
  /** References to fetch from peers (parents of suspended vertices nobody holds). */
  readonly missing: readonly VertexRef[]
  /** Equivocations first seen: keep and publish the evidence. */
  readonly equivocations: readonly EquivocationEvidence[]
  /** Received vertices refused once their parents arrived (peerAction in the error). */
  readonly rejected: readonly { vertex: Vertex; error: NodusError }[]
  /** Call {@link Core.propose} again at this time (Unix ms), unless a vertex arrives first. */
  readonly wakeAtMs?: number
  /** Set once the core halted (`CONSENSUS_HALTED`): it neither commits nor proposes any more. */
  readonly halted?: NodusError
}

/** A snapshot of a core's state, for metrics and `GET /dag/status`. */
export interface CoreStatus {
  author: number
  /** Round of this validator's last vertex (0: none). */
  lastProposedRound: number
  /** Highest round held by a quorum of authors. */
  quorumRound: number
  highestRound: number
  lastCommitIndex: number
  lastDecidedRound: number
  dagVertices: number
  suspendedVertices: number
  pendingTxs: number
  equivocators: number[]
  halted: boolean
}

const empty = { commits: [], decisions: [], missing: [], equivocations: [], rejected: [] }

/** The validator state machine (module doc). Build with {@link Core.open}. */
export class Core {
  readonly dag: Dag
  readonly committer: Committer
  readonly #deps: CoreDeps
  readonly #o: CoreOptions
  #lastProposed: Vertex | undefined
  #lastProposedRound = 0
  #quorumRound = 0
  /** round → when this core first held a quorum of it (for the round timeout). */
  readonly #quorumAtMs = new Map<number, number>()
  /** author → latest vertex accepted, and the highest round referenced by this validator. */
  readonly #latest: (Vertex | undefined)[]
  readonly #referenced: number[]
  readonly #pool: Uint8Array[] = []
  #poolBytes = 0
  #proposing = false
  /** The restored last proposal, added by {@link start}. */
  #pendingOwn: Vertex | undefined
  /** Vertices carrying transactions, accepted and not yet committed: digest key → round (idle pacing). */
  readonly #toCommit = new Map<string, number>()
  /** When this core last proposed (its `nowMs`), for idle pacing; undefined before the first. */
  #lastProposeAtMs: number | undefined

  private constructor(deps: CoreDeps, options: CoreOptions) {
    this.#deps = deps
    this.#o = options
    this.dag = new Dag(deps.committee, { maxSuspended: options.maxSuspendedVertices })
    this.committer = new Committer(this.dag, {
      gcDepthRounds: options.gcDepthRounds,
      initialTimestampMs: options.initialTimestampMs,
      ...(options.restore === undefined ? {} : { restore: options.restore }),
    })
    const n = deps.committee.n
    this.#latest = this.dag.round(0).slice()
    this.#referenced = new Array<number>(n).fill(-1)
    this.#lastProposed = this.#latest[options.author]
  }

  /**
   * A core for `options.author`, restored from `deps.store`: it will propose only above the last
   * vertex it saved, once that vertex is back in its DAG (added here; its parents are in `missing`
   * of {@link Core.start}'s output until fetched).
   *
   * @throws NodusError `INVALID_ARGUMENT` when `author` is not in the committee or the stored vertex is
   *   not this validator's
   */
  static async open(deps: CoreDeps, options: CoreOptions): Promise<Core> {
    if (!deps.committee.has(options.author))
      throw new NodusError('INVALID_ARGUMENT', `author ${options.author} is not in the committee`)
    const core = new Core(deps, options)
    const saved = await deps.store.load()
    if (saved !== undefined) {
      const v = decodeVertex(saved, deps.committee, options)
      if (v.author !== options.author)
        throw new NodusError('INVALID_ARGUMENT', 'the stored proposal is not this validator’s')
      const { check: _c, ...vertex } = v
      core.#lastProposedRound = v.round
      core.#pendingOwn = vertex
    }
    return core
  }

  /** Start: re-adds the restored vertex; then what {@link propose} gives at `nowMs`. */
  async start(nowMs: number): Promise<CoreOutput> {
    const own = this.#pendingOwn
    this.#pendingOwn = undefined
    const result = own === undefined ? undefined : this.dag.add(own)
    // Below the restored GC floor: not kept, but still this validator's previous vertex (a parent
    // below a DAG's floor counts as present).
    if (own !== undefined && result?.status === 'stale') this.#lastProposed = own
    const added = result === undefined ? empty : this.#absorb(result)
    const proposed = await this.propose(nowMs)
    return merge(added, proposed)
  }

  /** Transactions waiting to be proposed. */
  get pendingTxs(): number {
    return this.#pool.length
  }

  /**
   * Queue a transaction for this validator's next vertices (FIFO).
   *
   * @param tx - opaque, 1 byte or more, at most a vertex's room
   * @throws NodusError `TX_POOL_FULL` past `maxPendingTxs` or `maxPendingTxBytes`; `INVALID_ARGUMENT`
   *   for an empty transaction or one that cannot fit in a vertex
   */
  submit(tx: Uint8Array): void {
    if (tx.byteLength === 0 || tx.byteLength + 16 > this.#txRoom())
      throw new NodusError('INVALID_ARGUMENT', `a transaction must be 1 to ${this.#txRoom() - 16} bytes`)
    if (
      this.#pool.length >= this.#o.maxPendingTxs ||
      this.#poolBytes + tx.byteLength > this.#o.maxPendingTxBytes
    )
      throw new NodusError('TX_POOL_FULL', 'the pending transaction pool is full', {
        details: { pending: this.#pool.length, bytes: this.#poolBytes },
      })
    this.#pool.push(tx)
    this.#poolBytes += tx.byteLength
  }

  /** The transactions waiting in the pool, oldest first (a copy: an epoch change hands them on). */
  poolTxs(): Uint8Array[] {
    return [...this.#pool]
  }

  /**
   * Add a vertex whose signature verified (vertex.ts), received from a peer or fetched.
   *
   * @param nowMs - this node's clock, Unix ms
   * @throws NodusError `VERTEX_FROM_FUTURE` (ignore) when its timestamp is more than
   *   `maxFutureSkewMs` ahead of `nowMs`; `VERTEX_WRONG_EPOCH` (ignore) for another epoch
   */
  addVertex(vertex: Vertex, nowMs: number): CoreOutput {
    if (vertex.epoch !== this.#deps.committee.epoch)
      throw new NodusError('VERTEX_WRONG_EPOCH', `vertex of epoch ${vertex.epoch}`, { peerAction: 'ignore' })
    if (vertex.timestampMs > nowMs + this.#o.maxFutureSkewMs)
      throw new NodusError(
        'VERTEX_FROM_FUTURE',
        `vertex timestamp ${vertex.timestampMs} is ahead of ${nowMs}`,
        {
          peerAction: 'ignore',
          details: { author: vertex.author, round: vertex.round, timestampMs: vertex.timestampMs, nowMs },
        },
      )
    if (vertex.author === this.#o.author && vertex.round > this.#lastProposedRound)
      this.#lastProposedRound = vertex.round
    return this.#absorb(this.dag.add(vertex), nowMs)
  }

  /**
   * Propose the next vertex if the rule allows it now (module doc): sign it, persist it, add it.
   * Calls made while one is signing return at once with nothing; the call that signs then returns
   * `wakeAtMs: nowMs` when what arrived meanwhile already allows the next vertex.
   *
   * @param nowMs - this node's clock, Unix ms (the vertex's timestamp, raised to its parents' if lower)
   * @throws what the signer or {@link ProposalStore.save} throws (the vertex is then not sent, and
   *   its transactions return to the pool; call again to retry)
   */
  async propose(nowMs: number): Promise<CoreOutput> {
    const halted = this.committer.halted
    if (halted !== undefined) return { ...empty, halted }
    if (this.#proposing) return empty
    const r = this.#quorumRound
    const own = this.#lastProposed
    if (r + 1 <= this.#lastProposedRound || own === undefined || own.round < this.#lastProposedRound)
      return empty
    const leader = this.#deps.committee.leader(r === 0 ? 1 : r)
    const since = this.#quorumAtMs.get(r) ?? nowMs
    this.#quorumAtMs.set(r, since)
    const deadline = since + this.#o.roundTimeoutMs
    if (r > 0 && this.dag.slot(r, leader).length === 0 && nowMs < deadline)
      return { ...empty, wakeAtMs: deadline }
    const pace = this.#o.idleRoundDelayMs ?? 0
    if (pace > 0 && this.#lastProposeAtMs !== undefined && this.#idle()) {
      const next = this.#lastProposeAtMs + pace
      if (nowMs < next) return { ...empty, wakeAtMs: next }
    }
    this.#proposing = true
    try {
      const parents: Vertex[] = [own]
      for (let a = 0; a < this.#deps.committee.n; a++) {
        if (a === this.#o.author) continue
        const v = this.dag.slot(r, a)[0] ?? this.#latest[a]
        if (
          v !== undefined &&
          v.round > (this.#referenced[a] ?? -1) &&
          v.round <= r &&
          v.round >= this.dag.floor
        )
          parents.push(v)
      }
      const txs = this.#takeTxs()
      const timestampMs = Math.max(nowMs, ...parents.map((p) => p.timestampMs))
      let vertex: Vertex
      try {
        vertex = await signVertex(
          {
            epoch: this.#deps.committee.epoch,
            round: r + 1,
            author: this.#o.author,
            parents,
            txs,
            timestampMs,
          },
          this.#deps.signer,
          this.#deps.committee,
          this.#o,
        )
        await this.#deps.store.save(vertex.bytes)
      } catch (err) {
        // Nothing left this validator: its transactions go back to the front of the pool.
        this.#pool.unshift(...txs)
        for (const t of txs) this.#poolBytes += t.byteLength
        throw err
      }
      for (const p of parents)
        this.#referenced[p.author] = Math.max(this.#referenced[p.author] ?? -1, p.round)
      this.#lastProposedRound = vertex.round
      this.#lastProposeAtMs = nowMs
      const out = this.#absorb(this.dag.add(vertex), nowMs)
      // Vertices that arrived while this one was signed may already allow the next: come back now.
      const again = this.#quorumRound >= this.#lastProposedRound && out.halted === undefined
      return { ...out, proposed: vertex, ...(again ? { wakeAtMs: nowMs } : {}) }
    } finally {
      this.#proposing = false
    }
  }

  /** A snapshot for metrics and status routes. */
  status(): CoreStatus {
    return {
      author: this.#o.author,
      lastProposedRound: this.#lastProposedRound,
      quorumRound: this.#quorumRound,
      highestRound: this.dag.highestRound,
      lastCommitIndex: this.committer.lastIndex,
      lastDecidedRound: this.committer.lastDecidedRound,
      dagVertices: this.dag.size,
      suspendedVertices: this.dag.suspendedCount,
      pendingTxs: this.#pool.length,
      equivocators: this.dag.equivocators,
      halted: this.committer.halted !== undefined,
    }
  }

  /** Nothing to order: no pending transaction, and every accepted vertex with transactions committed. */
  #idle(): boolean {
    if (this.#pool.length > 0) return false
    if (this.#toCommit.size === 0) return true
    const floor = this.dag.floor
    for (const [k, round] of this.#toCommit) if (round < floor) this.#toCommit.delete(k)
    return this.#toCommit.size === 0
  }

  /** Bytes a vertex has for transactions (its bound less parents, signature and framing). */
  #txRoom(): number {
    const sig = this.#deps.committee.signatureMode === 'hybrid' ? 3400 : 80
    return this.#o.maxVertexBytes - this.#deps.committee.n * 48 - sig - 128
  }

  #takeTxs(): Uint8Array[] {
    let room = this.#txRoom()
    let k = 0
    while (k < this.#pool.length && k < this.#o.maxTxsPerVertex) {
      const cost = (this.#pool[k] as Uint8Array).byteLength + 9
      if (cost > room) break
      room -= cost
      k++
    }
    const txs = this.#pool.splice(0, k)
    for (const t of txs) this.#poolBytes -= t.byteLength
    return txs
  }

  /** Track what the DAG accepted, run the committer, and say what to do next. */
  #absorb(added: AddResult, nowMs?: number): CoreOutput {
    for (const v of added.accepted) {
      if (v.txs.length > 0 && !this.committer.isCommitted(v)) this.#toCommit.set(digestKey(v.digest), v.round)
      const l = this.#latest[v.author]
      if (l === undefined || v.round > l.round) this.#latest[v.author] = v
      if (
        v.author === this.#o.author &&
        v.round >= this.#lastProposedRound &&
        (this.#lastProposed?.round ?? -1) < v.round
      )
        this.#lastProposed = v
    }
    // The highest round a quorum of authors holds (vertices a prune released count too).
    for (let r = this.dag.highestRound; r > this.#quorumRound; r--) {
      if (this.dag.authorsAt(r) < this.#deps.committee.quorum) continue
      this.#quorumRound = r
      if (nowMs !== undefined) this.#quorumAtMs.set(r, nowMs)
      break
    }
    for (const r of this.#quorumAtMs.keys()) if (r < this.#quorumRound) this.#quorumAtMs.delete(r)
    const c: CommitOutput =
      added.accepted.length > 0 ? this.committer.tryCommit() : { decisions: [], commits: [] }
    if (this.#toCommit.size > 0)
      for (const sub of c.commits) for (const v of sub.vertices) this.#toCommit.delete(digestKey(v.digest))
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
}

/** Two outputs of one step as one. */
function merge(a: CoreOutput, b: CoreOutput): CoreOutput {
  const out: CoreOutput = {
    commits: [...a.commits, ...b.commits],
    decisions: [...a.decisions, ...b.decisions],
    missing: b.missing.length > 0 || b.commits.length > 0 ? b.missing : a.missing,
    equivocations: [...a.equivocations, ...b.equivocations],
    rejected: [...a.rejected, ...b.rejected],
  }
  const proposed = b.proposed ?? a.proposed
  const wakeAtMs = b.wakeAtMs ?? a.wakeAtMs
  const halted = b.halted ?? a.halted
  return {
    ...out,
    ...(proposed === undefined ? {} : { proposed }),
    ...(wakeAtMs === undefined ? {} : { wakeAtMs }),
    ...(halted === undefined ? {} : { halted }),
  }
}
