/**
 * `nodus sim consensus --protocol mysticeti`: the REAL consensus core (src/consensus: Mysticeti-C,
 * Babel et al., arXiv 2310.14821) and the REAL ledger (src/ledger, on a MemoryOrderedStore per
 * validator) over the simulated network of consensus-net.ts, seeded, on a simulated clock.
 *
 * - Vertices are broadcast to every validator (one message each). A validator fetches missing parents
 *   by request/response (`fetch` → `vertices`), from the peer that sent the child first; and every
 *   `syncIntervalMs` a validator whose quorum round has not moved asks one peer (round-robin) for every
 *   vertex from its quorum round up. A peer that has garbage-collected those rounds answers with a
 *   ledger snapshot and its committer state instead (the catch-up path of a late or partitioned node).
 * - Byzantine validators are the lowest indices: the first `equivocators` of them sign two vertices per
 *   round (the second without transactions) and send one to the even validators, the other to the odd;
 *   the others are mute (never send). Crashed validators are the highest honest indices, then late
 *   joiners below them. A crash keeps the ledger store, the committer state saved with the last commit
 *   applied and the ProposalStore (so a restarted validator never equivocates).
 * - Signatures: real Ed25519 (keys from the seed) on vertices and transactions, each distinct signature
 *   verified once; or none (`signatures: false`, blank signatures, not checked). The commit log names
 *   vertices by slot and transaction content, not digest, so it does not depend on that choice.
 * - The commit log: one line per height, `index leader@round time-ms slots txs-hash`; a height's line
 *   must be the same at every honest validator (a difference is a safety violation); the report
 *   carries the BLAKE3 of the log: the same seed gives the same hash.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { concatBytes } from '../common/bytes.ts'
import { isNodusError } from '../common/errors.ts'
import {
  type CommittedSubDag,
  Committee,
  type CommitterState,
  Core,
  type CoreOutput,
  type DagView,
  DEFAULT_CONSENSUS_OPTIONS,
  decodeVertex,
  GENESIS_DEFAULTS,
  MemoryProposalStore,
  signVertex,
  type Vertex,
  type VertexRef,
  type VertexSigner,
  verifiedVertex,
  verifyVertex,
} from '../consensus/index.ts'
import { blake3, signEd25519 } from '../crypto/index.ts'
import { MemoryOrderedStore } from '../kv/index.ts'
import { checkTxs, exportSnapshot, importSnapshot, Ledger } from '../ledger/index.ts'
import type { OutageSpec } from './consensus-net.ts'
import { SimNet } from './consensus-net.ts'
import type { ConsensusSimOptions } from './consensus-options.ts'
import {
  cachedVerify,
  FinalityTracker,
  hex,
  type ProtocolReport,
  SIM_EPOCH_MS,
  seededKeys,
  TransferWorkload,
} from './consensus-workload.ts'
import { Rng } from './rng.ts'
import { round } from './stats.ts'

type Msg =
  | { t: 'vertex'; bytes: Uint8Array }
  | { t: 'fetch'; refs: readonly VertexRef[]; fromRound: number; height: number }
  | { t: 'vertices'; list: Uint8Array[] }
  | { t: 'snapshot'; chunks: Uint8Array[]; state: CommitterState; height: number }
  | { t: 'tx'; bytes: Uint8Array }
  | { t: 'wake' }
  | { t: 'sync' }
  | { t: 'submit' }
  | { t: 'up'; node: number; up: boolean }

/** Most vertices in one `vertices` answer. */
const MAX_SYNC_VERTICES = 10_000
/** A missing reference is asked again after this long, ms. */
const FETCH_RETRY_MS = 300

interface Validator {
  index: number
  role: 'honest' | 'equivocator' | 'mute'
  /** Honest, never down, started at 0: finality counts at these. */
  correct: boolean
  core: Core | undefined
  ledger: Ledger | undefined
  ledgerStore: MemoryOrderedStore
  readonly proposals: MemoryProposalStore
  /** The committer state saved with the last commit applied. */
  saved: CommitterState | undefined
  lastSyncRound: number
  syncPeer: number
  readonly asked: Map<string, number>
  snapshots: number
}

/** The Mysticeti run's report (module doc); `details` holds the commit log hash and network counters. */
export async function runMysticetiSim(o: ConsensusSimOptions): Promise<ProtocolReport & { log: string[] }> {
  return new MysticetiSim(o).run()
}

class MysticetiSim {
  readonly o: ConsensusSimOptions
  readonly net: SimNet<Msg>
  readonly vs: Validator[] = []
  readonly canonical = new Map<number, string>()
  readonly decoded = new WeakMap<Uint8Array, Vertex>()
  readonly verify: ReturnType<typeof cachedVerify>
  committee!: Committee
  signers: VertexSigner[] = []
  workload!: TransferWorkload
  tracker!: FinalityTracker
  safetyViolations = 0
  equivocationsSeen = new Set<number>()
  rejected = 0
  lastCommitAt = 0
  readonly rng: Rng
  readonly limits = {
    maxVertexBytes: GENESIS_DEFAULTS.maxVertexBytes,
    maxTxsPerVertex: GENESIS_DEFAULTS.maxTxsPerVertex,
  }

  constructor(o: ConsensusSimOptions) {
    this.o = o
    const rng = new Rng(o.seed, 21)
    this.rng = rng.fork(2)
    this.net = new SimNet<Msg>({ ...o, n: o.validators }, rng.fork(3))
    this.verify = cachedVerify(o.signatures)
  }

  async run(): Promise<ProtocolReport & { log: string[] }> {
    const o = this.o
    const n = o.validators
    const keys = await seededKeys(o.seed, 'validator', n)
    this.committee = new Committee(
      0,
      keys.map((k, index) => ({ index, ed25519: k.publicKey.raw })),
      blake3(new TextEncoder().encode(`nodus/sim/leader/${o.seed}`)),
      'ed25519',
    )
    this.signers = keys.map((k) => ({
      scheme: 'ed25519' as const,
      sign: o.signatures ? (m: Uint8Array) => signEd25519(k, m) : () => new Uint8Array(64),
    }))
    this.workload = await TransferWorkload.create(o.seed, o.accounts, o.signatures, this.rng.fork(4))
    const late = new Set<number>()
    let top = n - 1
    for (let i = 0; i < n; i++) {
      const role = i < o.equivocators ? 'equivocator' : i < o.byzantine ? 'mute' : 'honest'
      this.vs.push({
        index: i,
        role,
        correct: role === 'honest',
        core: undefined,
        ledger: undefined,
        ledgerStore: new MemoryOrderedStore(),
        proposals: new MemoryProposalStore(),
        saved: undefined,
        lastSyncRound: -1,
        syncPeer: (i + 1) % n,
        asked: new Map(),
        snapshots: 0,
      })
    }
    const assign = (specs: OutageSpec[], isLate: boolean) => {
      for (const s of specs)
        for (let k = 0; k < s.count; k++, top--) {
          const v = this.vs[top]
          if (v === undefined || v.role !== 'honest')
            throw new RangeError('more outages than honest validators')
          v.correct = false
          if (isLate) {
            late.add(top)
            this.net.control(s.fromMs, { t: 'up', node: top, up: true })
          } else {
            this.net.control(s.fromMs, { t: 'up', node: top, up: false })
            if (s.toMs !== undefined) this.net.control(s.toMs, { t: 'up', node: top, up: true })
          }
        }
    }
    assign(o.crashes, false)
    assign(o.late, true)
    this.tracker = new FinalityTracker(this.vs.filter((v) => v.correct).length)
    for (const v of this.vs) {
      if (v.role === 'mute' || late.has(v.index)) this.net.setUp(v.index, false)
      else await this.start(v)
    }
    if (o.txPerSecond > 0) this.net.control(this.rng.nextExp(o.txPerSecond / 1000), { t: 'submit' })
    const endMs = o.durationMs + (o.rounds === undefined ? o.drainMs : 0)
    for (;;) {
      const e = this.net.next(endMs)
      if (e === undefined) break
      await this.step(e.to, e.from, e.msg)
      if (o.rounds !== undefined && this.reached(o.rounds)) break
    }
    return this.report()
  }

  reached(rounds: number): boolean {
    return this.vs.every((v) => !v.correct || (v.core?.dag.highestRound ?? 0) >= rounds)
  }

  /** Start (or restart) a validator from what it kept: ledger store, committer state, ProposalStore. */
  async start(v: Validator): Promise<void> {
    this.net.setUp(v.index, true)
    v.ledger = await Ledger.open({ store: v.ledgerStore }, { genesis: this.workload.genesis })
    v.core = await Core.open(
      { committee: this.committee, signer: this.signers[v.index] as VertexSigner, store: v.proposals },
      {
        ...DEFAULT_CONSENSUS_OPTIONS,
        ...this.limits,
        gcDepthRounds: this.o.gcDepthRounds,
        author: v.index,
        roundTimeoutMs: this.o.roundTimeoutMs,
        initialTimestampMs: SIM_EPOCH_MS,
        ...(v.saved === undefined ? {} : { restore: v.saved }),
      },
    )
    v.asked.clear()
    v.lastSyncRound = -1
    await this.handle(v, await v.core.start(this.nowMs()))
    if (this.net.now > 0) this.sync(v)
    this.net.timer(v.index, this.net.now + this.o.syncIntervalMs, { t: 'sync' })
  }

  nowMs(): number {
    return SIM_EPOCH_MS + Math.floor(this.net.now)
  }

  async step(to: number, from: number, msg: Msg): Promise<void> {
    if (msg.t === 'submit') return this.submit()
    if (msg.t === 'up') {
      const v = this.vs[msg.node] as Validator
      if (msg.up) return this.start(v)
      v.core = undefined
      v.ledger = undefined
      this.net.setUp(v.index, false)
      return
    }
    const v = this.vs[to] as Validator
    const core = v.core
    if (core === undefined) return
    if (msg.t === 'vertex') await this.deliver(v, [msg.bytes], from)
    else if (msg.t === 'vertices') await this.deliver(v, msg.list, from)
    else if (msg.t === 'fetch') await this.answer(v, from, msg)
    else if (msg.t === 'snapshot') await this.install(v, msg)
    else if (msg.t === 'tx') {
      try {
        core.submit(msg.bytes)
      } catch (err) {
        if (!isNodusError(err)) throw err
      }
    } else if (msg.t === 'sync') {
      const s = core.status()
      if (!s.halted && s.quorumRound === v.lastSyncRound) this.sync(v)
      v.lastSyncRound = s.quorumRound
      this.net.timer(v.index, this.net.now + this.o.syncIntervalMs, { t: 'sync' })
    }
    if (v.core === core) await this.propose(v, core)
  }

  async submit(): Promise<void> {
    this.net.control(this.net.now + this.rng.nextExp(this.o.txPerSecond / 1000), { t: 'submit' })
    if (this.net.now >= this.o.durationMs) return
    const targets = this.vs.filter((v) => v.role === 'honest' && v.core !== undefined)
    const target = targets[this.rng.nextInt(targets.length)]
    if (target === undefined) return
    const tx = await this.workload.next()
    this.tracker.submit(hex(tx.id), this.net.now)
    const client = this.rng.nextInt(this.o.validators)
    this.net.timer(target.index, this.net.now + this.net.delay(client, target.index), {
      t: 'tx',
      bytes: tx.bytes,
    })
  }

  /** Decode and verify (once per distinct bytes), then add to the core. */
  async deliver(v: Validator, list: readonly Uint8Array[], from: number): Promise<void> {
    for (const bytes of list) {
      const core = v.core
      if (core === undefined) return
      let vertex = this.decoded.get(bytes)
      try {
        if (vertex === undefined) {
          const d = decodeVertex(bytes, this.committee, this.limits)
          vertex = this.o.signatures ? verifyVertex(d) : verifiedVertex(d, true)
          this.decoded.set(bytes, vertex)
        }
        await this.handle(v, core.addVertex(vertex, this.nowMs()), from)
      } catch (err) {
        if (!isNodusError(err)) throw err
        this.rejected++
      }
    }
  }

  async propose(v: Validator, core: Core): Promise<void> {
    const out = await core.propose(this.nowMs())
    await this.handle(v, out)
  }

  /** Act on a core's output (core.ts README: broadcast, fetch, apply, wake). */
  async handle(v: Validator, out: CoreOutput, from?: number): Promise<void> {
    if (out.commits.length > 0) await this.apply(v, out.commits)
    for (const ev of out.equivocations) this.equivocationsSeen.add(ev.author)
    if (out.rejected.length > 0) this.rejected += out.rejected.length
    if (out.proposed !== undefined) await this.broadcast(v, out.proposed)
    const now = this.net.now
    const refs = refsToAsk(v.asked, out.missing, now)
    if (refs.length > 0) {
      const peer = from !== undefined && from !== v.index ? from : this.peer(v)
      this.net.send(v.index, peer, { t: 'fetch', refs, fromRound: -1, height: v.ledger?.height ?? 0 })
    }
    if (v.asked.size > 4096) for (const [k, at] of v.asked) if (now - at >= FETCH_RETRY_MS) v.asked.delete(k)
    if (out.wakeAtMs !== undefined) this.net.timer(v.index, out.wakeAtMs - SIM_EPOCH_MS, { t: 'wake' })
  }

  async broadcast(v: Validator, vertex: Vertex): Promise<void> {
    let twin: Vertex | undefined
    if (v.role === 'equivocator')
      twin = await signVertex(
        { ...vertex, txs: [], timestampMs: vertex.timestampMs + 1 },
        this.signers[v.index] as VertexSigner,
        this.committee,
        this.limits,
      )
    for (let j = 0; j < this.o.validators; j++)
      if (j !== v.index)
        this.net.send(v.index, j, {
          t: 'vertex',
          bytes: (twin !== undefined && j % 2 === 1 ? twin : vertex).bytes,
        })
  }

  peer(v: Validator): number {
    const n = this.o.validators
    v.syncPeer = (v.syncPeer + 1) % n
    if (v.syncPeer === v.index) v.syncPeer = (v.syncPeer + 1) % n
    return v.syncPeer
  }

  /** Ask a peer for every vertex from this validator's quorum round up. */
  sync(v: Validator): void {
    const s = v.core?.status()
    if (s === undefined) return
    const msg: Msg = { t: 'fetch', refs: [], fromRound: s.quorumRound, height: v.ledger?.height ?? 0 }
    this.net.send(v.index, this.peer(v), msg)
  }

  /** Answer a fetch: the vertices asked for and, for a sync, the rounds asked; or a snapshot. */
  async answer(v: Validator, to: number, msg: Extract<Msg, { t: 'fetch' }>): Promise<void> {
    const core = v.core as Core
    const ledger = v.ledger as Ledger
    const dag = core.dag
    if (msg.fromRound >= 0 && msg.fromRound < dag.floor && ledger.height > msg.height) {
      const chunks: Uint8Array[] = []
      for await (const c of exportSnapshot(ledger)) chunks.push(c)
      this.net.send(v.index, to, {
        t: 'snapshot',
        chunks,
        state: core.committer.state(),
        height: ledger.height,
      })
      return
    }
    const list = verticesAsked(dag, msg.refs, msg.fromRound)
    if (list.length > 0) this.net.send(v.index, to, { t: 'vertices', list })
  }

  /** Catch up from a peer's snapshot: a new ledger store and a core restored at its commit. */
  async install(v: Validator, msg: Extract<Msg, { t: 'snapshot' }>): Promise<void> {
    if ((v.ledger?.height ?? 0) >= msg.height) return
    const store = new MemoryOrderedStore()
    await importSnapshot(store, msg.chunks, { expectHeight: msg.height })
    v.ledgerStore = store
    v.saved = msg.state
    v.snapshots++
    await this.start(v)
  }

  /** Apply commits to the ledger, check them against the other honest validators, save the state. */
  async apply(v: Validator, commits: readonly CommittedSubDag[]): Promise<void> {
    const ledger = v.ledger as Ledger
    for (const c of commits) {
      const txs = c.vertices.flatMap((x) => x.txs)
      const checked = await checkTxs(txs, { verify: this.verify })
      await ledger.applyBatch({ height: c.index, timestampMs: c.timestampMs, txs }, { checked })
      if (v.role !== 'honest') continue
      this.o.onCommit?.(v.index, c.index, this.net.now)
      const line = commitLine(c)
      const seen = this.canonical.get(c.index)
      if (seen === undefined) this.canonical.set(c.index, line)
      else if (seen !== line) this.safetyViolations++
      if (v.correct) {
        this.lastCommitAt = this.net.now
        for (const t of checked) if (t.tx !== undefined) this.tracker.commit(hex(t.tx.id), this.net.now)
      }
    }
    v.saved = v.core?.committer.state()
  }

  report(): ProtocolReport & { log: string[] } {
    const o = this.o
    const honest = this.vs.filter((v) => v.role === 'honest' && v.ledger !== undefined)
    const heights = honest.map((v) => (v.ledger as Ledger).height)
    const minHeight = Math.min(...heights)
    const honestRoots = this.vs.map((v) =>
      v.role !== 'honest' || v.ledger === undefined
        ? null
        : hex(v.ledger.rootAt(minHeight)?.root ?? new Uint8Array()),
    )
    const roots = new Set(honestRoots.filter((x) => x !== null))
    const log: string[] = []
    for (let i = 1; this.canonical.has(i); i++) log.push(this.canonical.get(i) as string)
    const simulatedMs = Math.min(this.net.now, o.durationMs + o.drainMs)
    const haltedCore = this.vs.some((v) => v.role === 'honest' && v.core?.committer.halted !== undefined)
    const stallMs = Math.max(2_000, 10 * o.roundTimeoutMs)
    const s = this.tracker.summary()
    const workloadSeconds = Math.min(simulatedMs, o.durationMs) / 1000
    return {
      protocol: 'mysticeti',
      validators: o.validators,
      byzantine: o.byzantine,
      simulatedMs: round(simulatedMs, 0),
      p50FinalityMs: s.p50FinalityMs,
      p99FinalityMs: s.p99FinalityMs,
      commits: log.length,
      submittedTxs: this.tracker.submitted,
      committedTxs: s.finalTxs,
      committedTxsPerSecond: workloadSeconds > 0 ? round(s.finalTxs / workloadSeconds, 1) : 0,
      safetyViolations: this.safetyViolations,
      halted: haltedCore || this.net.now - this.lastCommitAt > stallMs,
      stateRootsEqual: roots.size === 1,
      details: {
        commitLogHash: hex(blake3(new TextEncoder().encode(log.join('\n')))),
        haltedCore,
        equivocators: [...this.equivocationsSeen].sort((a, b) => a - b),
        heights,
        minHeight,
        rounds: this.vs.map((v) => v.core?.dag.highestRound ?? null),
        floors: this.vs.map((v) => v.core?.dag.floor ?? null),
        rootsAtMinHeight: honestRoots,
        snapshotsInstalled: this.vs.map((v) => v.snapshots),
        rejectedVertices: this.rejected,
        signatures: o.signatures ? 'ed25519' : 'none',
        net: { ...this.net.stats },
      },
      log,
    }
  }
}

/**
 * What a fetch asks of `dag`: the vertices of `refs` it holds and, for a sync (`fromRound` ≥ 0), every
 * vertex from that round up (at most {@link MAX_SYNC_VERTICES} in all), as bytes.
 */
export function verticesAsked(dag: DagView, refs: readonly VertexRef[], fromRound: number): Uint8Array[] {
  const list: Uint8Array[] = []
  for (const r of refs) {
    const x = dag.get(r.digest)
    if (x !== undefined && x.bytes.byteLength > 0) list.push(x.bytes)
  }
  if (fromRound >= 0)
    for (let r = Math.max(fromRound, dag.floor, 1); r <= dag.highestRound; r++)
      for (const x of dag.round(r)) if (list.length < MAX_SYNC_VERTICES) list.push(x.bytes)
  return list
}

/** The references of `missing` not asked for in the last {@link FETCH_RETRY_MS} (`asked`: digest → when). */
export function refsToAsk(
  asked: Map<string, number>,
  missing: readonly VertexRef[],
  now: number,
): VertexRef[] {
  return missing.filter((r) => {
    const k = hex(r.digest)
    const at = asked.get(k)
    if (at !== undefined && now - at < FETCH_RETRY_MS) return false
    asked.set(k, now)
    return true
  })
}

/** A transaction without its signature: the signed body bytes (tx.ts), or all of it if it does not decode. */
function txBody(t: Uint8Array): Uint8Array {
  try {
    const env = dagCbor.decode(t) as { body?: unknown }
    return env.body instanceof Uint8Array ? env.body : t
  } catch {
    return t
  }
}

/**
 * A commit as one line: height, leader slot, time since the start, the vertices' slots, and a hash of
 * the transactions' signed bodies (so the line is the same with or without signatures).
 */
export function commitLine(c: CommittedSubDag): string {
  const parts: Uint8Array[] = []
  for (const v of c.vertices)
    for (const t of v.txs) {
      const b = txBody(t)
      parts.push(Uint8Array.of(b.byteLength >>> 8, b.byteLength & 255), b)
    }
  const slots = c.vertices.map((v) => `${v.author}@${v.round}`).join(',')
  return `${c.index} ${c.leader.author}@${c.leader.round} ${c.timestampMs - SIM_EPOCH_MS} ${slots} ${hex(blake3(concatBytes(parts))).slice(0, 16)}`
}
