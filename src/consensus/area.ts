/**
 * The consensus area (README.md): a federation's DAG over the node's network, active when the node
 * starts with a genesis (`consensus.genesis`). A committee member runs a {@link Core} (a validator);
 * any other node a {@link Follower} (the DAG and committer only: it derives and checks the commits).
 *
 * - Vertices spread over the messaging area's gossip, topic `consensus/<first 16 hex digits of the
 *   genesis id>`; each is decoded, its signature verified in a VerifyPool, then added. A peer that
 *   sends a malformed or forged vertex is reported (its error's peerAction).
 * - Missing parents are fetched with `/nodus/consensus-fetch/1.0.0` (fetcher.ts).
 * - A follower hands transactions to a validator with `/nodus/consensus-submit/1.0.0`:
 *   `{ txs: [bytes] }` → `{ ok: true, results: [code | null] }`.
 * - The core's `wakeAtMs` is a timer; `propose` runs after each vertex added.
 * - Commits go to the ledger in order ({@link CommitSink}); the committer's state is saved after the
 *   ledger applied them, so a restart resumes at or below the ledger's height (commits the ledger
 *   already holds are skipped: its height is the commit index).
 * - On disk, `<dataDir>/consensus` (vertex-store.ts): vertices, the committer state, the last proposal.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import type { Clock } from '../common/clock.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import { FairSlots } from '../common/fair-slots.ts'
import type { Logger } from '../common/logger.ts'
import type { Random } from '../common/random.ts'
import { type NodeIdentity, signEd25519, signHybrid, VerifyPool } from '../crypto/index.ts'
import { LmdbOrderedStore, type OrderedStore } from '../kv/index.ts'
import {
  CatchUp,
  CONSENSUS_SNAPSHOT_PROTOCOL,
  SNAPSHOT_FRAME_OVERHEAD,
  SNAPSHOT_MAX_REQUEST_BYTES,
  type SnapshotLedger,
} from './catchup.ts'
import type { Committee } from './committee.ts'
import type { CommittedSubDag, CommitterState } from './committer.ts'
import { Core, type CoreOutput, type CoreStatus } from './core.ts'
import type { EquivocationEvidence } from './dag.ts'
import { CONSENSUS_FETCH_PROTOCOL, Fetcher } from './fetcher.ts'
import { Follower } from './follower.ts'
import { committeeOf, type Genesis, genesisFromJson } from './genesis.ts'
import type { ConsensusMetrics } from './metrics.ts'
import { observeCoreOutput, observeCoreStatus } from './observe.ts'
import type { ConsensusOptions } from './options.ts'
import { OrderedProposalStore } from './proposal-store.ts'
import {
  decodeVertex,
  digestKey,
  type Vertex,
  type VertexLimits,
  type VertexSigner,
  verifiedVertex,
} from './vertex.ts'
import { VertexStore } from './vertex-store.ts'
import { VouchLog } from './vouch.ts'
import { Wire, type WireHost, wireInvalid } from './wire.ts'

export const CONSENSUS_SUBMIT_PROTOCOL = '/nodus/consensus-submit/1.0.0'
export { CONSENSUS_FETCH_PROTOCOL, CONSENSUS_SNAPSHOT_PROTOCOL }

/** The gossip topic of a genesis's DAG. */
export const consensusTopic = (genesisId: Uint8Array): string =>
  `consensus/${Buffer.from(genesisId).toString('hex').slice(0, 16)}`

/**
 * Read and verify a genesis file.
 * @throws NodusError `GENESIS_INVALID`; the file system's errors
 */
export async function loadGenesisFile(path: string): Promise<Genesis> {
  return genesisFromJson(await readFile(path, 'utf8'))
}

/** Where commits go, in order: the ledger area. Its height is the last commit index it applied. */
export interface CommitSink {
  height(): number
  apply(commit: CommittedSubDag): Promise<void>
  /** Apply consecutive commits in one write (when given, used for every commit queued together). */
  applyAll?(commits: readonly CommittedSubDag[]): Promise<void>
  /** The transactions of a vertex that verified: check them now, before their commit. */
  preverify?(txs: readonly Uint8Array[]): void
}

/** What the consensus area needs of the messaging area. */
export interface ConsensusPubsub {
  publish(topic: string, data: Uint8Array): unknown
  subscribe(topic: string): AsyncIterable<{ publisher: string; data: Uint8Array }> & { close(): void }
  topicPeers(topic: string): string[]
}

export interface ConsensusComponents {
  logger: Logger
  clock: Clock
  random: Random
  metrics: ConsensusMetrics
  self: string
  identity: Pick<NodeIdentity, 'ed25519' | 'mldsa'>
  dataDir: string
  genesis: Genesis
  host: WireHost
  pubsub: ConsensusPubsub
  peers: { report(peer: string, err: unknown): unknown; isBanned(peer: string): boolean }
  commits: CommitSink
  /** The ledger's snapshots: with them the node serves and takes catch-up snapshots (catchup.ts). */
  snapshots?: SnapshotLedger
  /** Checks a transaction before a validator pools it (the ledger's decode, chain and signature). */
  checkTx?(bytes: Uint8Array): Promise<void>
  /** Default LMDB at `<dataDir>/consensus`. */
  createStore?: () => OrderedStore
  /** A signature pool to share (its owner closes it); default: this area's own (`verifyThreads`). */
  verifyPool?: VerifyPool
}

/** `GET /dag/status`. */
export interface DagStatus extends CoreStatus {
  federation: string
  genesisId: string
  epoch: number
  role: 'validator' | 'follower'
  validators: number
  f: number
  topicPeers: number
  fetch: { wanted: number; inFlight: number; requests: number; vertices: number; failed: number }
  evidence: { author: number; round: number; digests: [string, string] }[]
}

/** The consensus area's public services. */
export interface Consensus {
  readonly genesis: Genesis
  readonly committee: Committee
  /** This node's index in the committee, or undefined for a follower. */
  readonly author: number | undefined
  /**
   * Hand a signed transaction to the DAG: a validator pools it; a follower forwards it to a validator.
   * @throws TX_POOL_FULL, INVALID_ARGUMENT (too large), CONSENSUS_NO_VALIDATOR, NOT_STARTED, and what `checkTx` throws
   */
  submitTx(bytes: Uint8Array, options?: { signal?: AbortSignal }): Promise<void>
  status(): DagStatus
  /** A vertex by digest (in the DAG or the store), decoded. */
  vertex(digest: Uint8Array): Vertex | undefined
  evidence(): readonly EquivocationEvidence[]
  beforeStart(): Promise<void>
  start(): Promise<void>
  beforeStop(): Promise<void>
  stop(): Promise<void>
  afterStop(): Promise<void>
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

/** Build the consensus area for `components.genesis`. Nothing runs until the lifecycle phases. */
export function createConsensus(components: ConsensusComponents, options: ConsensusOptions): Consensus {
  const { clock, random, metrics, pubsub, peers, genesis, identity } = components
  const log = components.logger.child({ area: 'consensus' })
  const committee = committeeOf(genesis)
  const g = genesis.body
  const limits: VertexLimits = { maxVertexBytes: g.maxVertexBytes, maxTxsPerVertex: g.maxTxsPerVertex }
  const ownKey = identity.ed25519.publicKey.raw
  const authorIndex = committee.validators.findIndex((v) => Buffer.compare(v.ed25519, ownKey) === 0)
  const author = authorIndex < 0 ? undefined : authorIndex
  const topic = consensusTopic(genesis.id)
  const validatorPeers = committee.validators
    .map((v) => peerIdFromPublicKey(publicKeyFromRaw(v.ed25519) as Parameters<typeof peerIdFromPublicKey>[0]))
    .filter((p) => p.toString() !== components.self)
  const pool =
    components.verifyPool ??
    new VerifyPool({ threads: options.verifyThreads, maxBatch: 64, maxQueued: 16_384, inlineMaxBatch: 2 })
  const wireOpts = {
    maxFrameBytes: Math.max(options.fetchMaxBytes, g.maxVertexBytes) + 64 * 1024,
    perPeer: options.fetchPeerConcurrency,
    maxInbound: Math.max(8, options.fetchPeerConcurrency * 16),
    timeoutMs: options.fetchTimeoutMs,
  }
  const fetchWire = new Wire(components.host, log, { ...wireOpts, protocol: CONSENSUS_FETCH_PROTOCOL })
  const submitWire = new Wire(components.host, log, { ...wireOpts, protocol: CONSENSUS_SUBMIT_PROTOCOL })
  const snapshotWire = new Wire(components.host, log, {
    ...wireOpts,
    maxFrameBytes: (components.snapshots?.chunkBytes ?? 0) + SNAPSHOT_FRAME_OVERHEAD,
    maxRequestBytes: SNAPSHOT_MAX_REQUEST_BYTES,
    protocol: CONSENSUS_SNAPSHOT_PROTOCOL,
  })
  const vouch = new VouchLog(options.gcDepthRounds, options.catchupVouchHeights)
  const signer: VertexSigner =
    g.signatureMode === 'hybrid'
      ? { scheme: 'hybrid', sign: (m) => signHybrid(identity as NodeIdentity, m) }
      : { scheme: 'ed25519', sign: (m) => signEd25519(identity.ed25519, m) }

  let vstore: VertexStore | undefined
  let engine: Core | Follower | undefined
  let lifetime = new AbortController()
  let sub: { close(): void } | undefined
  let wakeTimer: ReturnType<typeof setTimeout> | undefined
  let wakeAt = Number.POSITIVE_INFINITY
  let retryTimer: ReturnType<typeof setInterval> | undefined
  let catchupTimer: ReturnType<typeof setInterval> | undefined
  let applyTail: Promise<void> = Promise.resolve()
  let saveTail: Promise<void> = Promise.resolve()
  let haltLogged = false
  const evidence: EquivocationEvidence[] = []
  /** Digest → the peer that sent a vertex still waiting for its parents (bounded), to report it. */
  const senders = new Map<string, string>()

  const report = (peer: string | undefined, err: unknown): void => {
    if (peer === undefined || peer === components.self) return
    if (isNodusError(err) && (err.peerAction === 'reject' || err.peerAction === 'ban'))
      peers.report(peer, err)
  }

  /** Peers on the DAG's topic (connected), not banned, not this node. */
  const topicPeers = (): string[] =>
    pubsub.topicPeers(topic).filter((p) => p !== components.self && !peers.isBanned(p))

  const fetcher = new Fetcher(
    {
      wire: fetchWire,
      log,
      random,
      peers: topicPeers,
      held: (ref) => engine === undefined || engine.dag.has(ref) || engine.dag.holds(ref),
      missing: () => engine?.dag.missing() ?? [],
      deliver: (bytes, peer) => receive(bytes, peer),
      report,
      signal: () => lifetime.signal,
    },
    { maxRefs: options.fetchMaxRefs, maxInFlight: options.fetchMaxInFlight },
  )

  const snapshots = components.snapshots
  const catchUp =
    snapshots === undefined
      ? undefined
      : new CatchUp(
          {
            wire: snapshotWire,
            log,
            clock,
            random,
            ledger: snapshots,
            vouch,
            validity: committee.validity,
            maxCommittedRefs: committee.n * (options.gcDepthRounds + 2),
            slots: new FairSlots({
              global: options.catchupServeSlots,
              perPeer: options.catchupServePerPeer,
              perGroup: options.catchupServeSlots,
            }),
            // Connected peers only (catchup.ts module doc: a bare PeerId's dial can block others).
            validators: () => {
              const near = new Set(topicPeers())
              return validatorPeers.map((p) => p.toString()).filter((p) => near.has(p))
            },
            sources: topicPeers,
            servedFloor: () =>
              Math.max(0, (engine?.committer.lastCommittedRound ?? 0) - 2 * options.gcDepthRounds),
            dagFloor: () => engine?.dag.floor ?? 0,
            waiting: () => (engine?.dag.suspendedCount ?? 0) > 0,
            lastCommittedRound: () => engine?.committer.lastCommittedRound ?? 0,
            serial: (fn) => serial(fn),
            restore: async (state) => {
              await vstore?.saveCommitterState(state)
              await openEngine(state)
            },
            report,
            counted: (result) => metrics.consensusCatchups.inc({ result }),
            signal: () => lifetime.signal,
          },
          {
            maxSnapshotBytes: options.catchupMaxSnapshotBytes,
            cacheSnapshots: options.catchupCacheSnapshots,
            cacheMs: options.catchupCacheMs,
            cacheRounds: Math.max(1, Math.floor(options.gcDepthRounds / 2)),
            headPeers: options.catchupHeadPeers,
          },
        )

  const schedule = (atMs: number): void => {
    if (atMs >= wakeAt) return
    clearTimeout(wakeTimer)
    wakeAt = atMs
    wakeTimer = setTimeout(
      () => {
        wakeAt = Number.POSITIVE_INFINITY
        void proposeNow()
      },
      Math.max(0, atMs - clock.now()),
    )
    wakeTimer.unref()
  }

  /** Commits waiting for the ledger, and the committer state after the last of them. */
  let queued: CommittedSubDag[] = []
  let queuedState: CommitterState | undefined
  /**
   * Apply commits in order, then save the committer state they lead to (module doc). Commits that
   * arrive while the ledger writes wait and then go together: one ledger write and one committer-state
   * save for the group.
   */
  const enqueueCommits = (commits: readonly CommittedSubDag[], state: CommitterState): void => {
    const first = queued.length === 0
    queued.push(...commits)
    queuedState = state
    if (!first) return
    applyTail = applyTail.then(async () => {
      const group = queued
      const after = queuedState as CommitterState
      queued = []
      queuedState = undefined
      try {
        const sink = components.commits
        const todo = group.filter((c) => c.index > sink.height())
        if (sink.applyAll !== undefined) await sink.applyAll(todo)
        else for (const c of todo) await sink.apply(c)
        for (const c of group) vouch.record(c)
        // A core replaced by a catch-up may still hand over commits below the snapshot: not saved.
        if (after.lastIndex < sink.height()) return
        // Saved after the ledger holds these commits (a restart resumes at or below its height), but
        // not waited for: the next group's ledger write goes on meanwhile (another store, another sync).
        const store = vstore
        saveTail = saveTail
          .then(() => store?.saveCommitterState(after))
          .catch((err) => {
            if (!lifetime.signal.aborted)
              log.warn({ err: (err as Error).message }, 'could not save the committer state')
          })
      } catch (err) {
        if (!lifetime.signal.aborted) log.error({ err: (err as Error).message }, 'applying a commit failed')
      }
    })
  }

  /** Run `fn` in the apply queue: no commit is applied meanwhile. */
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = applyTail.then(fn)
    applyTail = p.then(
      () => {},
      () => {},
    )
    return p
  }

  /** Act on a core's output (README "How the area drives a core"). */
  const handle = (out: CoreOutput, from: string | undefined): void => {
    const now = clock.now()
    observeCoreOutput(metrics, out, now)
    if (engine !== undefined) observeCoreStatus(metrics, engine.status())
    if (out.proposed !== undefined) {
      const v = out.proposed
      void vstore
        ?.put([v])
        .catch((err) => log.warn({ err: (err as Error).message }, 'could not store a vertex'))
      try {
        pubsub.publish(topic, v.bytes)
      } catch (err) {
        // Peers fetch it as the parent of this validator's next vertex.
        log.debug({ err: (err as Error).message, round: v.round }, 'could not gossip a vertex')
      }
    }
    if (out.missing.length > 0) fetcher.want(out.missing, from)
    for (const e of out.equivocations) {
      evidence.push(e)
      if (evidence.length > options.maxEvidence) evidence.shift()
      log.warn({ author: e.author, round: e.round }, 'equivocation: two vertices for one slot')
    }
    for (const r of out.rejected) {
      const k = digestKey(r.vertex.digest)
      report(senders.get(k), r.error)
      senders.delete(k)
    }
    if (out.commits.length > 0 && engine !== undefined) enqueueCommits(out.commits, engine.committer.state())
    if (out.halted !== undefined && !haltLogged) {
      haltLogged = true
      log.error({ err: out.halted.message }, 'consensus halted')
    }
    if (out.wakeAtMs !== undefined) schedule(out.wakeAtMs)
  }

  const proposeNow = async (): Promise<void> => {
    if (!(engine instanceof Core) || lifetime.signal.aborted) return
    try {
      handle(await engine.propose(clock.now()), undefined)
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'proposing failed; retrying')
      schedule(clock.now() + 100)
    }
  }

  /** A vertex from `peer` (gossip or fetch): decode, verify, keep, add. */
  const receive = async (bytes: Uint8Array, peer: string | undefined): Promise<void> => {
    if (engine === undefined) return
    let v: Vertex
    try {
      const d = decodeVertex(bytes, committee, limits)
      if (engine.dag.holds(d)) return
      v = verifiedVertex(d, await pool.verify(d.check, { signal: lifetime.signal }))
    } catch (err) {
      if (lifetime.signal.aborted) return
      report(peer, err)
      log.debug({ peer, err: (err as Error).message }, 'refused a vertex')
      return
    }
    if (v.txs.length > 0) components.commits.preverify?.(v.txs)
    let out: CoreOutput
    try {
      out = engine.addVertex(v, clock.now())
    } catch (err) {
      log.debug({ peer, err: (err as Error).message }, 'vertex not added')
      return
    }
    if (peer !== undefined && !engine.dag.has(v)) {
      if (senders.size >= 10_000) senders.clear()
      senders.set(digestKey(v.digest), peer)
    }
    void vstore
      ?.put([v])
      .catch((err) => log.warn({ err: (err as Error).message }, 'could not store a vertex'))
    handle(out, peer)
    void proposeNow()
  }

  /** A new core (or follower) at `restore`, its DAG rebuilt from the store above the floor. */
  const openEngine = async (restore: CommitterState | undefined): Promise<number> => {
    const vs = vstore as VertexStore
    vouch.reset(restore, g.createdAtMs)
    const common = {
      gcDepthRounds: options.gcDepthRounds,
      maxSuspendedVertices: options.maxSuspendedVertices,
      maxFutureSkewMs: options.maxFutureSkewMs,
      initialTimestampMs: g.createdAtMs,
      ...(restore === undefined ? {} : { restore }),
    }
    engine =
      author === undefined
        ? new Follower(committee, common)
        : await Core.open(
            { committee, signer, store: new OrderedProposalStore(vs.store, g.epoch) },
            {
              ...common,
              ...limits,
              author,
              roundTimeoutMs: g.roundTimeoutMs,
              maxPendingTxs: options.maxPendingTxs,
              maxPendingTxBytes: options.maxPendingTxBytes,
              idleRoundDelayMs: options.idleRoundDelayMs,
            },
          )
    // Rebuild the DAG above the floor from the store (each vertex verified when it arrived).
    const floor = restore === undefined ? 0 : Math.max(0, restore.lastCommittedRound - options.gcDepthRounds)
    let loaded = 0
    for (const bytes of vs.above(floor)) {
      try {
        const { check: _c, ...v } = decodeVertex(bytes, committee, limits)
        handle(engine.addVertex(v, clock.now()), undefined)
        loaded++
      } catch (err) {
        log.debug({ err: (err as Error).message }, 'a stored vertex was not added')
      }
    }
    if (engine instanceof Core) handle(await engine.start(clock.now()), undefined)
    return loaded
  }

  const listen = (): { close(): void } => {
    const s = pubsub.subscribe(topic)
    void (async () => {
      try {
        for await (const m of s) if (m.publisher !== components.self) void receive(m.data, m.publisher)
      } catch (err) {
        if (!lifetime.signal.aborted) log.warn({ err: (err as Error).message }, 'consensus topic ended')
      }
    })()
    return s
  }

  const serveFetch = async (req: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const refs = req.refs
    if (
      !Array.isArray(refs) ||
      refs.length > options.fetchMaxRefs ||
      !refs.every((r) => r instanceof Uint8Array && r.byteLength === 32)
    )
      throw wireInvalid(
        CONSENSUS_FETCH_PROTOCOL,
        `refs must be at most ${options.fetchMaxRefs} 32-byte digests`,
      )
    const vertices: Uint8Array[] = []
    let bytes = 0
    for (const d of refs as Uint8Array[]) {
      const v = engine?.dag.get(d)?.bytes ?? vstore?.get(d)
      if (v === undefined || v.byteLength === 0) continue
      if (vertices.length > 0 && bytes + v.byteLength > options.fetchMaxBytes) break
      vertices.push(v)
      bytes += v.byteLength
    }
    return { vertices }
  }

  const serveSubmit = async (req: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const txs = req.txs
    if (
      !Array.isArray(txs) ||
      txs.length > options.maxForwardTxs ||
      !txs.every((t) => t instanceof Uint8Array)
    )
      throw wireInvalid(
        CONSENSUS_SUBMIT_PROTOCOL,
        `txs must be at most ${options.maxForwardTxs} byte strings`,
      )
    if (!(engine instanceof Core))
      throw new NodusError('CONSENSUS_NO_VALIDATOR', 'this node is not a validator', { peerAction: 'ignore' })
    const results: (string | null)[] = []
    for (const t of txs as Uint8Array[]) {
      try {
        await poolTx(t)
        results.push(null)
      } catch (err) {
        results.push(isNodusError(err) ? err.code : 'INVALID_ARGUMENT')
      }
    }
    return { results }
  }

  /** Check and pool a transaction on this validator. */
  const poolTx = async (tx: Uint8Array): Promise<void> => {
    if (!(engine instanceof Core)) throw new NodusError('NOT_STARTED', 'consensus has not started')
    await components.checkTx?.(tx)
    engine.submit(tx)
    metrics.consensusPendingTxs.set(engine.pendingTxs)
    void proposeNow()
  }

  const forward = async (tx: Uint8Array, signal?: AbortSignal): Promise<void> => {
    const order = [...validatorPeers].sort(() => random.next() - 0.5)
    let lastErr: unknown
    for (const p of order) {
      if (peers.isBanned(p.toString())) continue
      try {
        const r = await submitWire.request(p, { txs: [tx] }, signal)
        const code = Array.isArray(r.results) ? r.results[0] : 'PROTOCOL_ERROR'
        if (code === null) return
        // The validator refused the transaction itself (invalid, pool full): another would too, or not.
        lastErr = new NodusError(
          'CONSENSUS_NO_VALIDATOR',
          `a validator refused the transaction: ${String(code)}`,
          {
            details: { remoteCode: String(code) },
          },
        )
        if (code !== 'TX_POOL_FULL') throw lastErr
      } catch (err) {
        if (signal?.aborted === true) throw err
        lastErr = err
        if (isNodusError(err) && err.code === 'CONSENSUS_NO_VALIDATOR') throw err
      }
    }
    throw new NodusError('CONSENSUS_NO_VALIDATOR', 'no validator took the transaction', {
      details: { tried: order.length, last: (lastErr as Error | undefined)?.message },
    })
  }

  return {
    genesis,
    committee,
    author,
    async submitTx(tx, o = {}) {
      if (engine === undefined) throw new NodusError('NOT_STARTED', 'consensus has not started')
      if (engine instanceof Core) await poolTx(tx)
      else await forward(tx, o.signal)
    },
    status() {
      const s = engine?.status() ?? new Follower(committee, { ...options, initialTimestampMs: 0 }).status()
      return {
        ...s,
        federation: g.federation,
        genesisId: hex(genesis.id),
        epoch: g.epoch,
        role: author === undefined ? 'follower' : 'validator',
        validators: committee.n,
        f: committee.f,
        topicPeers: pubsub.topicPeers(topic).length,
        fetch: { wanted: fetcher.wanted, inFlight: fetcher.inFlight, ...fetcher.stats },
        evidence: evidence.map((e) => ({
          author: e.author,
          round: e.round,
          digests: [hex(e.vertices[0].digest), hex(e.vertices[1].digest)],
        })),
      }
    },
    vertex(digest) {
      const held = engine?.dag.get(digest)
      if (held !== undefined) return held
      const bytes = vstore?.get(digest)
      if (bytes === undefined) return undefined
      const { check: _c, ...v } = decodeVertex(bytes, committee, limits)
      return v
    },
    evidence: () => evidence,
    async beforeStart() {
      const store =
        components.createStore?.() ?? LmdbOrderedStore.open({ path: join(components.dataDir, 'consensus') })
      vstore = new VertexStore(store)
      await vstore.bind(genesis.id)
    },
    async start() {
      lifetime = new AbortController()
      const vs = vstore as VertexStore
      let restore = vs.committerState()
      const height = components.commits.height()
      if (restore !== undefined && restore.lastIndex > height) {
        log.warn(
          { saved: restore.lastIndex, ledger: height },
          'the ledger is behind the saved committer state: replaying',
        )
        restore = undefined
      }
      const loaded = await openEngine(restore)
      log.info(
        {
          role: author === undefined ? 'follower' : 'validator',
          author,
          loaded,
          commitIndex: restore?.lastIndex ?? 0,
          topic,
        },
        'consensus started',
      )
      sub = listen()
      await fetchWire.start(serveFetch, report)
      await submitWire.start(serveSubmit, report)
      if (catchUp !== undefined) {
        await snapshotWire.start(catchUp.serve, report)
        const check = (): void => {
          if (!lifetime.signal.aborted) void catchUp.check().catch(() => {})
        }
        catchupTimer = setInterval(check, options.catchupCheckMs)
        catchupTimer.unref()
        check()
      }
      let lastHighest = -1
      retryTimer = setInterval(() => {
        fetcher.tick()
        if (engine instanceof Core) {
          // No progress since the last round of retries: the last vertex may have been lost (gossip
          // before the mesh formed, a partition): send it again. Peers drop it as a duplicate otherwise.
          const s = engine.status()
          if (s.highestRound === lastHighest) {
            const own = engine.dag.slot(s.lastProposedRound, engine.status().author)[0]
            if (own !== undefined && own.bytes.byteLength > 0) {
              try {
                pubsub.publish(topic, own.bytes)
              } catch {
                // gossip full: the next round tries again
              }
            }
            void proposeNow()
          }
          lastHighest = s.highestRound
        }
        const e = engine
        if (e !== undefined) {
          const floorNow = e.committer.lastCommittedRound - 2 * options.gcDepthRounds
          if (floorNow > 0) void vs.prune(floorNow).catch(() => {})
        }
      }, options.fetchRetryMs)
      retryTimer.unref()
    },
    async beforeStop() {
      clearInterval(retryTimer)
      clearInterval(catchupTimer)
      clearTimeout(wakeTimer)
      wakeAt = Number.POSITIVE_INFINITY
      lifetime.abort(new NodusError('ABORTED', 'the node is stopping'))
      sub?.close()
    },
    async stop() {
      await fetchWire.stop()
      await submitWire.stop()
      await snapshotWire.stop()
      await applyTail
      await saveTail
    },
    async afterStop() {
      if (components.verifyPool === undefined) await pool.close()
      await vstore?.store.close()
      vstore = undefined
      engine = undefined
    },
  }
}
