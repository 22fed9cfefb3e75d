/**
 * An epoch change on the simulator: the REAL consensus core and follower (src/consensus, Mysticeti-C)
 * and the REAL ledger with its committee state (src/ledger/committee.ts) over consensus-net.ts's
 * simulated network, seeded, on a simulated clock.
 *
 * Nodes 0..initial−1 are epoch 0's validators; nodes initial..initial+added−1 run from the start as
 * followers (a node configured with the genesis learns its own membership from the ledger state).
 * At `proposeAtMs` node 0 submits `committee.propose` for epoch 1 (the `kept` lowest old members and
 * every added node); the `voters` lowest old members then submit `committee.vote`. Each node applies
 * commits to its ledger; the batch whose result says `decided` is the epoch's last (consensus
 * epoch.ts): the node builds epoch 1's committee from its ledger state and runs a core (a member) or a
 * follower (anyone else), with ledger heights continuing at base + commit index, hands on the
 * transactions it held, and replays the epoch-1 vertices it heard early (a bounded buffer). The DAG of
 * epoch 0 stays to answer fetches of nodes still reaching the boundary; a node without progress for
 * `syncIntervalMs` asks a peer for every vertex of its epoch from its quorum round up.
 *
 * The attack (`attacker`): the highest removed validator, once switched, keeps sending epoch-0
 * vertices (new ones, signed by its epoch-0 key) and vertices claiming epoch 1 in a member's slot
 * signed by its own key. Receivers ignore the first (`VERTEX_WRONG_EPOCH`) and refuse the second
 * (`SIGNATURE_INVALID`).
 *
 * The commit log: one line per ledger height, `height e<epoch> index leader@round time slots txs`; a
 * height's line must be the same at every node (a difference is a safety violation).
 */

import type { Ed25519PrivateKey } from '@libp2p/interface'
import { isNodusError, type NodusError } from '../common/errors.ts'
import {
  type CommittedSubDag,
  type Committee,
  Core,
  type CoreOutput,
  committeeOfEpoch,
  type DagView,
  DEFAULT_CONSENSUS_OPTIONS,
  decodeVertex,
  type EpochParams,
  Follower,
  GENESIS_DEFAULTS,
  genesisVertices,
  leftoverTxs,
  MemoryProposalStore,
  memberIndex,
  paramsOfEpoch,
  refOf,
  signVertex,
  type Vertex,
  type VertexRef,
  type VertexSigner,
  verifiedVertex,
  verifyVertex,
} from '../consensus/index.ts'
import { blake3, signEd25519 } from '../crypto/index.ts'
import { MemoryOrderedStore } from '../kv/index.ts'
import { checkTxs, type EpochState, encodeTx, Ledger, proposalHash, type TxAction } from '../ledger/index.ts'
import { type LatencySpec, SimNet } from './consensus-net.ts'
import { commitLine, refsToAsk, verticesAsked } from './consensus-sim.ts'
import {
  cachedVerify,
  FinalityTracker,
  hex,
  SIM_EPOCH_MS,
  seededKeys,
  TransferWorkload,
} from './consensus-workload.ts'
import { Rng } from './rng.ts'

/** What an epoch-change run simulates. */
export interface EpochSimOptions {
  seed: number
  /** Validators of epoch 0: nodes 0..initial−1. */
  initial: number
  /** Nodes following from the start that join the committee in epoch 1. */
  added: number
  /** Old validators kept in epoch 1 (the lowest indices); the others are removed. */
  kept: number
  /** Old validators that vote for the change (the lowest indices). */
  voters: number
  /** When node 0 proposes the change, simulated ms. */
  proposeAtMs: number
  durationMs: number
  latency: LatencySpec
  roundTimeoutMs: number
  /** Transfers submitted per simulated second (Poisson), to a validator of the node's epoch. */
  txPerSecond: number
  accounts: number
  /** Real Ed25519 signatures on vertices and transactions (the attack needs them). */
  signatures: boolean
  syncIntervalMs: number
  gcDepthRounds: number
  /** The highest removed validator attacks after the switch (module doc). */
  attacker: boolean
}

export const DEFAULT_EPOCH_SIM_OPTIONS: EpochSimOptions = Object.freeze({
  seed: 1,
  initial: 7,
  added: 3,
  kept: 4,
  voters: 7,
  proposeAtMs: 1_000,
  durationMs: 8_000,
  latency: { kind: 'lognormal' as const, medianMs: 20, sigma: 0.5 },
  roundTimeoutMs: GENESIS_DEFAULTS.roundTimeoutMs,
  txPerSecond: 100,
  accounts: 50,
  signatures: true,
  syncIntervalMs: 1_000,
  gcDepthRounds: DEFAULT_CONSENSUS_OPTIONS.gcDepthRounds,
  attacker: false,
})

/** What a run gives. */
export interface EpochSimReport {
  /** Per node: the ledger height whose batch decided epoch 1, or null. */
  switchHeights: (number | null)[]
  /** Per node: its epoch at the end. */
  epochs: number[]
  /** Per node: vertices it proposed, per epoch. */
  proposed: number[][]
  /** Per node: ledger height at the end. */
  heights: number[]
  /** One line per ledger height (module doc). */
  log: string[]
  /** BLAKE3 of the log (same seed, same hash). */
  logHash: string
  safetyViolations: number
  /** Every node's root at the lowest final height is the same. */
  stateRootsEqual: boolean
  /** Commits of epoch 1 in the log. */
  epoch1Commits: number
  /** Vertices refused or ignored at receivers, by error code. */
  refused: Record<string, number>
  /** Vertices the attacker sent after its switch: [epoch 0, claiming epoch 1]. */
  attackSent: [number, number]
  committedTxs: number
  submittedTxs: number
}

type Msg =
  | { t: 'vertex'; bytes: Uint8Array }
  | { t: 'fetch'; epoch: number; refs: readonly VertexRef[]; fromRound: number }
  | { t: 'vertices'; list: Uint8Array[] }
  | { t: 'tx'; bytes: Uint8Array }
  | { t: 'wake'; epoch: number }
  | { t: 'sync' }
  | { t: 'submit' }
  | { t: 'change' }
  | { t: 'vote'; node: number }
  | { t: 'attack' }

/** Most vertices of a later epoch a node keeps until it gets there. */
const MAX_FUTURE_VERTICES = 4_096
const ATTACK_INTERVAL_MS = 100

interface SimNode {
  index: number
  key: Ed25519PrivateKey
  signer: VertexSigner
  ledger: Ledger
  state: EpochState
  committee: Committee
  core: Core | undefined
  follower: Follower | undefined
  previous: { epoch: number; dag: DagView; core: Core | undefined; committee: Committee } | undefined
  switchHeight: number | null
  lastSyncRound: number
  syncPeer: number
  asked: Map<string, number>
  future: Uint8Array[]
  proposed: number[]
  nonce: number
}

/** Run an epoch change (module doc). */
export async function runEpochSim(o: EpochSimOptions): Promise<EpochSimReport> {
  return new EpochSim(o).run()
}

class EpochSim {
  readonly o: EpochSimOptions
  readonly n: number
  readonly net: SimNet<Msg>
  readonly rng: Rng
  readonly verify: ReturnType<typeof cachedVerify>
  readonly nodes: SimNode[] = []
  readonly canonical = new Map<number, string>()
  readonly refused: Record<string, number> = {}
  readonly decoded = new Map<string, Vertex>()
  readonly attackSent: [number, number] = [0, 0]
  workload!: TransferWorkload
  tracker!: FinalityTracker
  safetyViolations = 0
  chain!: Uint8Array
  genesisParams: EpochParams = {
    roundTimeoutMs: GENESIS_DEFAULTS.roundTimeoutMs,
    maxTxsPerVertex: GENESIS_DEFAULTS.maxTxsPerVertex,
    maxVertexBytes: GENESIS_DEFAULTS.maxVertexBytes,
  }

  constructor(o: EpochSimOptions) {
    if (o.kept > o.initial || o.voters > o.initial || o.initial < 1)
      throw new RangeError('kept and voters must be at most initial')
    this.o = o
    this.n = o.initial + o.added
    const rng = new Rng(o.seed, 22)
    this.rng = rng.fork(2)
    this.net = new SimNet<Msg>(
      { n: this.n, latency: o.latency, loss: 0, reorder: 0, reorderMaxMs: 0, partitions: [] },
      rng.fork(3),
    )
    this.verify = cachedVerify(o.signatures)
    this.genesisParams.roundTimeoutMs = o.roundTimeoutMs
  }

  get limits() {
    return {
      maxVertexBytes: this.genesisParams.maxVertexBytes,
      maxTxsPerVertex: this.genesisParams.maxTxsPerVertex,
    }
  }

  async run(): Promise<EpochSimReport> {
    const o = this.o
    const keys = await seededKeys(o.seed, 'validator', this.n)
    this.workload = await TransferWorkload.create(o.seed, o.accounts, o.signatures, this.rng.fork(4))
    this.chain = this.workload.genesis.chain
    const genesis = {
      ...this.workload.genesis,
      committee: {
        epoch: 0,
        leaderSeed: blake3(new TextEncoder().encode(`nodus/sim/leader/${o.seed}`)),
        signatureMode: 'ed25519' as const,
        members: keys.slice(0, o.initial).map((k) => ({ ed25519: k.publicKey.raw })),
      },
    }
    this.tracker = new FinalityTracker(this.n)
    for (const [index, key] of keys.entries()) {
      const ledger = await Ledger.open({ store: new MemoryOrderedStore() }, { genesis })
      const state = ledger.committee() as EpochState
      const node: SimNode = {
        index,
        key,
        signer: {
          scheme: 'ed25519',
          sign: o.signatures ? (m: Uint8Array) => signEd25519(key, m) : () => new Uint8Array(64),
        },
        ledger,
        state,
        committee: committeeOfEpoch(state),
        core: undefined,
        follower: undefined,
        previous: undefined,
        switchHeight: null,
        lastSyncRound: -1,
        syncPeer: (index + 1) % this.n,
        asked: new Map(),
        future: [],
        proposed: [0],
        nonce: 0,
      }
      this.nodes.push(node)
    }
    for (const node of this.nodes) await this.enter(node, [])
    this.net.control(o.proposeAtMs, { t: 'change' })
    if (o.txPerSecond > 0) this.net.control(this.rng.nextExp(o.txPerSecond / 1000), { t: 'submit' })
    for (;;) {
      const e = this.net.next(o.durationMs)
      if (e === undefined) break
      await this.step(e.to, e.from, e.msg)
    }
    return this.report()
  }

  nowMs(): number {
    return SIM_EPOCH_MS + Math.floor(this.net.now)
  }

  /** The DAG of the node's epoch: its core's or its follower's. */
  view(node: SimNode): Core | Follower {
    return (node.core ?? node.follower) as Core | Follower
  }

  /** Start the node's part in its ledger's epoch: a core if a member, else a follower; hand on `carry`. */
  async enter(node: SimNode, carry: readonly Uint8Array[]): Promise<void> {
    const st = node.state
    const params = paramsOfEpoch(this.genesisParams, st)
    const author = memberIndex(st, node.key.publicKey.raw)
    const common = {
      ...DEFAULT_CONSENSUS_OPTIONS,
      maxVertexBytes: params.maxVertexBytes,
      maxTxsPerVertex: params.maxTxsPerVertex,
      gcDepthRounds: this.o.gcDepthRounds,
      initialTimestampMs: st.startMs,
    }
    node.committee = committeeOfEpoch(st)
    node.proposed[st.epoch] = 0
    node.lastSyncRound = -1
    node.asked.clear()
    if (author >= 0) {
      node.follower = undefined
      node.core = await Core.open(
        { committee: node.committee, signer: node.signer, store: new MemoryProposalStore() },
        { ...common, author, roundTimeoutMs: params.roundTimeoutMs },
      )
      for (const tx of carry) this.submitTo(node, tx)
      await this.handle(node, await node.core.start(this.nowMs()))
    } else {
      node.core = undefined
      node.follower = new Follower(node.committee, common)
      for (const tx of carry) this.forward(node, tx)
    }
    this.net.timer(node.index, this.net.now + this.o.syncIntervalMs, { t: 'sync' })
  }

  /** The node index of epoch validator `author` of `node`'s epoch. */
  nodeOf(node: SimNode, author: number): number {
    const key = node.state.members[author]?.ed25519
    return this.nodes.findIndex((x) => key !== undefined && hex(x.key.publicKey.raw) === hex(key))
  }

  submitTo(node: SimNode, tx: Uint8Array): void {
    try {
      node.core?.submit(tx)
    } catch (err) {
      if (!isNodusError(err)) throw err
    }
  }

  /** A node outside the committee hands a transaction to a validator of its epoch. */
  forward(node: SimNode, tx: Uint8Array): void {
    const to = this.nodeOf(node, this.rng.nextInt(node.state.members.length))
    if (to >= 0) this.net.send(node.index, to, { t: 'tx', bytes: tx })
  }

  async step(to: number, from: number, msg: Msg): Promise<void> {
    if (msg.t === 'submit') return this.submit()
    if (msg.t === 'change') return this.change()
    if (msg.t === 'vote') return this.vote(msg.node)
    if (msg.t === 'attack') return this.attack()
    const node = this.nodes[to] as SimNode
    if (msg.t === 'vertex') await this.deliver(node, [msg.bytes], from)
    else if (msg.t === 'vertices') await this.deliver(node, msg.list, from)
    else if (msg.t === 'fetch') this.answer(node, from, msg)
    else if (msg.t === 'tx') {
      if (node.core !== undefined) this.submitTo(node, msg.bytes)
      else this.forward(node, msg.bytes)
    } else if (msg.t === 'wake' && msg.epoch !== node.state.epoch) return
    else if (msg.t === 'sync') {
      const s = this.view(node).status()
      if (!s.halted && s.quorumRound === node.lastSyncRound) this.sync(node)
      node.lastSyncRound = s.quorumRound
      this.net.timer(node.index, this.net.now + this.o.syncIntervalMs, { t: 'sync' })
    }
    await this.propose(node)
  }

  async propose(node: SimNode): Promise<void> {
    const core = node.core
    if (core !== undefined) await this.handle(node, await core.propose(this.nowMs()))
  }

  async submit(): Promise<void> {
    this.net.control(this.net.now + this.rng.nextExp(this.o.txPerSecond / 1000), { t: 'submit' })
    if (this.net.now >= this.o.durationMs - 2_000) return
    const client = this.nodes[this.rng.nextInt(this.n)] as SimNode
    const tx = await this.workload.next()
    this.tracker.submit(hex(tx.id), this.net.now)
    if (client.core !== undefined) this.submitTo(client, tx.bytes)
    else this.forward(client, tx.bytes)
  }

  /** A member's committee transaction, signed with its key (its account), submitted to its own core. */
  async committeeTx(node: SimNode, action: TxAction): Promise<void> {
    const signer = {
      publicKey: node.key.publicKey.raw,
      sign: this.o.signatures ? (m: Uint8Array) => signEd25519(node.key, m) : () => new Uint8Array(64),
    }
    const tx = await encodeTx({ chain: this.chain, nonce: node.nonce++, ...action }, signer)
    if (node.core !== undefined) this.submitTo(node, tx.bytes)
    else this.forward(node, tx.bytes)
  }

  /** The next committee: the `kept` lowest old validators and every added node. */
  nextMembers(): { ed25519: Uint8Array }[] {
    const o = this.o
    return this.nodes
      .filter((x) => x.index < o.kept || x.index >= o.initial)
      .map((x) => ({ ed25519: x.key.publicKey.raw }))
  }

  async change(): Promise<void> {
    const proposer = this.nodes[0] as SimNode
    await this.committeeTx(proposer, { kind: 'committee.propose', epoch: 1, members: this.nextMembers() })
    for (let i = 0; i < this.o.voters; i++)
      this.net.control(this.net.now + 500 + 50 * i, { t: 'vote', node: i })
  }

  async vote(i: number): Promise<void> {
    const proposal = proposalHash({ epoch: 1, members: this.nextMembers() })
    await this.committeeTx(this.nodes[i] as SimNode, { kind: 'committee.vote', epoch: 1, proposal })
  }

  count(code: string): void {
    this.refused[code] = (this.refused[code] ?? 0) + 1
  }

  /** Decode and verify (once per distinct bytes and epoch), then add to the core or follower. */
  async deliver(node: SimNode, list: readonly Uint8Array[], from: number): Promise<void> {
    for (const bytes of list) {
      const committee = node.committee
      const id = `${committee.epoch}:${hex(blake3(bytes))}`
      let vertex = this.decoded.get(id)
      try {
        if (vertex === undefined) {
          const d = decodeVertex(bytes, committee, this.limits)
          vertex = this.o.signatures ? verifyVertex(d) : verifiedVertex(d, true)
          this.decoded.set(id, vertex)
        }
        const out = this.view(node).addVertex(vertex, this.nowMs())
        if (await this.handle(node, out, from)) continue
      } catch (err) {
        if (!isNodusError(err)) throw err
        this.count(err.code)
        const ahead = (err as NodusError).details?.epoch
        if (err.code === 'VERTEX_WRONG_EPOCH' && typeof ahead === 'number' && ahead > committee.epoch) {
          if (node.future.length >= MAX_FUTURE_VERTICES) node.future.shift()
          node.future.push(bytes)
        }
      }
    }
  }

  /**
   * Act on a core's or follower's output (consensus README: apply, broadcast, fetch, wake).
   * @returns true when its commits ended the epoch (the rest of the output is the old epoch's)
   */
  async handle(node: SimNode, out: CoreOutput, from?: number): Promise<boolean> {
    if (out.commits.length > 0 && (await this.apply(node, out.commits))) return true
    for (const _ of out.rejected) this.count('rejected')
    if (out.proposed !== undefined) {
      node.proposed[node.state.epoch] = (node.proposed[node.state.epoch] ?? 0) + 1
      for (let j = 0; j < this.n; j++)
        if (j !== node.index) this.net.send(node.index, j, { t: 'vertex', bytes: out.proposed.bytes })
    }
    const refs = refsToAsk(node.asked, out.missing, this.net.now)
    if (refs.length > 0) {
      const peer = from !== undefined && from !== node.index ? from : this.peer(node)
      this.net.send(node.index, peer, { t: 'fetch', epoch: node.state.epoch, refs, fromRound: -1 })
    }
    if (out.wakeAtMs !== undefined)
      this.net.timer(node.index, out.wakeAtMs - SIM_EPOCH_MS, { t: 'wake', epoch: node.state.epoch })
    return false
  }

  /**
   * Apply commits in order; at the batch that decides the next epoch, switch and drop the rest.
   * @returns true when the epoch changed
   */
  async apply(node: SimNode, commits: readonly CommittedSubDag[]): Promise<boolean> {
    for (const [i, c] of commits.entries()) {
      const txs = c.vertices.flatMap((x) => x.txs)
      const checked = await checkTxs(txs, { verify: this.verify })
      const r = await node.ledger.applyBatch(
        { height: node.state.base + c.index, timestampMs: c.timestampMs, txs },
        { checked },
      )
      const line = `${r.height} e${node.state.epoch} ${commitLine(c)}`
      const seen = this.canonical.get(r.height)
      if (seen === undefined) this.canonical.set(r.height, line)
      else if (seen !== line) this.safetyViolations++
      for (const x of r.outcomes)
        if (x.code === undefined && x.id !== undefined) this.tracker.commit(hex(x.id), this.net.now)
      if (r.decided !== undefined) {
        await this.switchEpoch(node, r.decided, commits.slice(i + 1))
        return true
      }
    }
    return false
  }

  async switchEpoch(node: SimNode, next: EpochState, discarded: readonly CommittedSubDag[]): Promise<void> {
    const old = this.view(node)
    const carry = node.core === undefined ? [] : leftoverTxs(node.core, discarded)
    node.previous = { epoch: node.state.epoch, dag: old.dag, core: node.core, committee: node.committee }
    node.switchHeight = next.base
    node.state = next
    await this.enter(node, carry)
    const early = node.future
    node.future = []
    await this.deliver(node, early, node.index)
    this.sync(node)
    if (this.o.attacker && node.index === this.o.initial - 1)
      this.net.control(this.net.now + ATTACK_INTERVAL_MS, { t: 'attack' })
  }

  peer(node: SimNode): number {
    node.syncPeer = (node.syncPeer + 1) % this.n
    if (node.syncPeer === node.index) node.syncPeer = (node.syncPeer + 1) % this.n
    return node.syncPeer
  }

  /** Ask a peer for every vertex of this node's epoch from its quorum round up. */
  sync(node: SimNode): void {
    const s = this.view(node).status()
    this.net.send(node.index, this.peer(node), {
      t: 'fetch',
      epoch: node.state.epoch,
      refs: [],
      fromRound: s.quorumRound,
    })
  }

  /** Answer a fetch from the DAG of the epoch asked: the current one, or the one before (kept). */
  answer(node: SimNode, to: number, msg: Extract<Msg, { t: 'fetch' }>): void {
    const dag =
      msg.epoch === node.state.epoch
        ? this.view(node).dag
        : msg.epoch === node.previous?.epoch
          ? node.previous.dag
          : undefined
    if (dag === undefined) return
    const list = verticesAsked(dag, msg.refs, msg.fromRound)
    if (list.length > 0) this.net.send(node.index, to, { t: 'vertices', list })
  }

  /**
   * The removed validator's attack (module doc): a new epoch-0 vertex on top of its old DAG, and an
   * epoch-1 vertex in member 0's slot signed with its own key, to everyone.
   */
  async attack(): Promise<void> {
    if (this.net.now >= this.o.durationMs - 500) return
    this.net.control(this.net.now + ATTACK_INTERVAL_MS, { t: 'attack' })
    const node = this.nodes[this.o.initial - 1] as SimNode
    const prev = node.previous
    if (prev === undefined || prev.core === undefined) return
    const oldCommittee = prev.committee
    const author = prev.core.status().author
    const top = prev.dag.highestRound
    const parents = prev.dag.round(top).map(refOf)
    const own = parents.findIndex((p) => p.author === author)
    const sent: Vertex[] = []
    if (own >= 0 && parents.length >= oldCommittee.quorum) {
      const ordered = [parents[own] as VertexRef, ...parents.filter((_, i) => i !== own)]
      sent.push(
        await signVertex(
          { epoch: 0, round: top + 1, author, parents: ordered, txs: [], timestampMs: this.nowMs() },
          node.signer,
          oldCommittee,
          this.limits,
        ),
      )
      this.attackSent[0]++
    }
    const genesis1 = genesisVertices(node.committee).map(refOf).slice(0, node.committee.quorum)
    sent.push(
      await signVertex(
        {
          epoch: node.state.epoch,
          round: 1,
          author: 0,
          parents: genesis1,
          txs: [],
          timestampMs: this.nowMs(),
        },
        node.signer,
        node.committee,
        this.limits,
      ),
    )
    this.attackSent[1]++
    for (const v of sent)
      for (let j = 0; j < this.n; j++)
        if (j !== node.index) this.net.send(node.index, j, { t: 'vertex', bytes: v.bytes })
  }

  report(): EpochSimReport {
    const heights = this.nodes.map((x) => x.ledger.height)
    const minHeight = Math.min(...heights)
    const roots = new Set(this.nodes.map((x) => hex(x.ledger.rootAt(minHeight)?.root ?? new Uint8Array())))
    const log: string[] = []
    for (let h = 1; this.canonical.has(h); h++) log.push(this.canonical.get(h) as string)
    const s = this.tracker.summary()
    return {
      switchHeights: this.nodes.map((x) => x.switchHeight),
      epochs: this.nodes.map((x) => x.state.epoch),
      proposed: this.nodes.map((x) => [...x.proposed].map((v) => v ?? 0)),
      heights,
      log,
      logHash: hex(blake3(new TextEncoder().encode(log.join('\n')))),
      safetyViolations: this.safetyViolations,
      stateRootsEqual: roots.size === 1,
      epoch1Commits: log.filter((l) => l.split(' ')[1] === 'e1').length,
      refused: { ...this.refused },
      attackSent: [...this.attackSent],
      committedTxs: s.finalTxs,
      submittedTxs: this.tracker.submitted,
    }
  }
}
