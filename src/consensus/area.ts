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
 * - Epochs (epoch.ts, README "Epoch changes"): the committee is the ledger's. At start the area runs
 *   the epoch the ledger is in (a restart after a switch resumes there). When the ledger reports that
 *   a commit decided the next committee (`CommitSink.applyAll` → `decided`), the epoch ends at that
 *   commit: later commits of it are dropped, a new core (this node a member) or follower runs the next
 *   committee with commit indexes from 1 (ledger height = base + index) and timestamps from the
 *   deciding commit's, the old core's leftover transactions are handed on, vertices of the new epoch
 *   heard early (kept, bounded) are replayed, vertices of the old epoch are ignored, and the old DAG
 *   answers fetches until the new epoch prunes its first rounds.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
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
import type { DagView, EquivocationEvidence } from './dag.ts'
import { committeeOfEpoch, type EpochCommittee, leftoverTxs, memberIndex, paramsOfEpoch } from './epoch.ts'
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

/** What applying commits did: when `decided` is set, the last commit applied ended the epoch. */
export interface CommitResult {
  /** The next epoch's committee (the ledger's), decided by the last commit applied. */
  decided?: EpochCommittee
}

/**
 * Where commits go, in order: the ledger area. Its height is the last height applied: the epoch's
 * `base` + the commit index.
 */
export interface CommitSink {
  height(): number
  /**
   * The committee the ledger holds now (its epoch, base, members, leader seed); absent or undefined:
   * the genesis's, and no epoch change.
   */
  epoch?(): EpochCommittee | undefined
  /** Apply a commit of `epoch` (height = base + index); one of another epoch is not applied. */
  // biome-ignore lint/suspicious/noConfusingVoidType: a sink may return nothing (no epoch change)
  apply(commit: CommittedSubDag, epoch: number): Promise<CommitResult | undefined | void>
  /**
   * Apply consecutive commits of `epoch` in one write (when given, used for every commit queued
   * together). The ledger stops after a commit that decides the next epoch and says so (`decided`).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a sink may return nothing (no epoch change)
  applyAll?(commits: readonly CommittedSubDag[], epoch: number): Promise<CommitResult | undefined | void>
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
  /** The epoch this node runs (the ledger's committee). */
  epoch: number
  role: 'validator' | 'follower'
  validators: number
  f: number
  /** The epoch's committee: ledger height before its first commit, commit time it starts from, members. */
  committee: {
    base: number
    startMs: number
    members: { index: number; ed25519: string; name?: string }[]
  }
  topicPeers: number
  fetch: { wanted: number; inFlight: number; requests: number; vertices: number; failed: number }
  evidence: { author: number; round: number; digests: [string, string] }[]
}

/** The consensus area's public services. */
export interface Consensus {
  readonly genesis: Genesis
  /** The committee of the epoch this node runs (it changes at an epoch switch). */
  readonly committee: Committee
  /** The epoch this node runs. */
  readonly epoch: number
  /** This node's index in the epoch's committee, or undefined for a follower. */
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

/** Most vertices of a later epoch kept until this node gets there (replayed after its switch). */
export const MAX_FUTURE_VERTICES = 4_096
/** Bytes of such vertices kept at most (64 MiB). */
export const MAX_FUTURE_BYTES = 64 * 1024 * 1024

/** The epoch a node runs: its committee, parameters and this node's part. */
interface EpochRun {
  epoch: number
  /** Ledger height before the epoch's first commit. */
  base: number
  startMs: number
  committee: Committee
  limits: VertexLimits
  roundTimeoutMs: number
  author: number | undefined
  /** The other validators, as PeerIds. */
  validatorPeers: PeerId[]
}

/** Build the consensus area for `components.genesis`. Nothing runs until the lifecycle phases. */
export function createConsensus(components: ConsensusComponents, options: ConsensusOptions): Consensus {
  const { clock, random, metrics, pubsub, peers, genesis, identity } = components
  const log = components.logger.child({ area: 'consensus' })
  const g = genesis.body
  const ownKey = identity.ed25519.publicKey.raw
  const topic = consensusTopic(genesis.id)

  /** The epoch of the ledger's committee `e` (undefined: the genesis's). */
  const runOf = (e: EpochCommittee | undefined): EpochRun => {
    const committee = e === undefined ? committeeOf(genesis) : committeeOfEpoch(e)
    const params = e === undefined ? g : paramsOfEpoch(g, e)
    const index =
      e === undefined
        ? committee.validators.findIndex((v) => Buffer.compare(v.ed25519, ownKey) === 0)
        : memberIndex(e, ownKey)
    return {
      epoch: committee.epoch,
      base: e?.base ?? 0,
      startMs: e?.startMs ?? g.createdAtMs,
      committee,
      limits: { maxVertexBytes: params.maxVertexBytes, maxTxsPerVertex: params.maxTxsPerVertex },
      roundTimeoutMs: params.roundTimeoutMs,
      author: index < 0 ? undefined : index,
      validatorPeers: committee.validators
        .map((v) =>
          peerIdFromPublicKey(publicKeyFromRaw(v.ed25519) as Parameters<typeof peerIdFromPublicKey>[0]),
        )
        .filter((p) => p.toString() !== components.self),
    }
  }
  /** The epoch this node runs: the genesis's until start reads the ledger's. */
  let run = runOf(undefined)
  /** The epoch that ended here last, its DAG kept to answer fetches until this epoch prunes. */
  let previous: { run: EpochRun; dag: DagView } | undefined
  /** Vertices of a later epoch, or heard while switching: replayed after the switch (bounded). */
  const future: Uint8Array[] = []
  let switching = false
  // Unverified until the switch, so bounded in bytes as well as count: a peer claiming a later epoch
  // cannot hold more than MAX_FUTURE_BYTES of this node's memory (the oldest are dropped first).
  let futureBytes = 0
  const keepFuture = (bytes: Uint8Array): void => {
    future.push(bytes)
    futureBytes += bytes.byteLength
    while (future.length > MAX_FUTURE_VERTICES || futureBytes > MAX_FUTURE_BYTES)
      futureBytes -= (future.shift() as Uint8Array).byteLength
  }
  const takeFuture = (): Uint8Array[] => {
    futureBytes = 0
    return future.splice(0)
  }
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
            // The committee this node runs (it changes at an epoch switch): README "Catch-up".
            get validity() {
              return run.committee.validity
            },
            get maxCommittedRefs() {
              return run.committee.n * (options.gcDepthRounds + 2)
            },
            slots: new FairSlots({
              global: options.catchupServeSlots,
              perPeer: options.catchupServePerPeer,
              perGroup: options.catchupServeSlots,
            }),
            // Connected peers only (catchup.ts module doc: a bare PeerId's dial can block others).
            validators: () => {
              const near = new Set(topicPeers())
              return run.validatorPeers.map((p) => p.toString()).filter((p) => near.has(p))
            },
            sources: topicPeers,
            servedFloor: (epoch) => {
              const kept = (lastCommittedRound: number): number =>
                Math.max(0, lastCommittedRound - 2 * options.gcDepthRounds)
              if (epoch === undefined || epoch === run.epoch)
                return kept(engine?.committer.lastCommittedRound ?? 0)
              // The epoch that ended here: its DAG serves until pruned (the committer's last round is its floor's).
              if (epoch === previous?.run.epoch) return previous.dag.floor
              return 2 ** 32 - 1
            },
            epoch: () => run.epoch,
            dagFloor: () => engine?.dag.floor ?? 0,
            waiting: () => (engine?.dag.suspendedCount ?? 0) > 0,
            lastCommittedRound: () => engine?.committer.lastCommittedRound ?? 0,
            serial: (fn) => serial(fn),
            restore: async (vouched) => {
              // The installed ledger's committee: the epoch the snapshot stands in.
              const next = runOf(components.commits.epoch?.())
              let state: CommitterState | undefined = vouched
              if ((vouched.epoch ?? 0) !== next.epoch || (vouched.base ?? 0) !== next.base) {
                // Not the ledger's epoch (f+1 vouched it: should not happen): the ledger decides.
                log.error(
                  {
                    state: { epoch: vouched.epoch, base: vouched.base },
                    ledger: { epoch: next.epoch, base: next.base },
                  },
                  'the vouched committer state is not of the installed ledger’s epoch: not restored',
                )
                state = undefined
              }
              if (next.epoch !== run.epoch) {
                // Vertices heard meanwhile wait for the new engine (as in a switch).
                switching = true
                previous = undefined
                fetcher.clear()
                enterEpoch(next)
              }
              try {
                if (state !== undefined) await vstore?.saveCommitterState(state, run.epoch)
                vouch.reset(state, run.startMs, { epoch: run.epoch, base: run.base })
                await openEngine(state)
              } finally {
                switching = false
              }
              for (const bytes of takeFuture()) void receive(bytes, undefined)
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

  /** Commits waiting for the ledger, the committer state after the last of them, and their epoch. */
  let queued: CommittedSubDag[] = []
  let queuedState: CommitterState | undefined
  let queuedRun: EpochRun | undefined
  /**
   * Apply commits in order, then save the committer state they lead to (module doc). Commits that
   * arrive while the ledger writes wait and then go together: one ledger write and one committer-state
   * save for the group. A commit that decides the next committee ends the epoch (module doc).
   */
  const enqueueCommits = (commits: readonly CommittedSubDag[], state: CommitterState): void => {
    const first = queued.length === 0
    queued.push(...commits)
    queuedState = state
    queuedRun = run
    if (!first) return
    applyTail = applyTail.then(async () => {
      const group = queued
      const after = queuedState
      const r = queuedRun
      queued = []
      queuedState = undefined
      // Commits of an epoch that ended meanwhile are not applied (dropped at the switch).
      if (group.length === 0 || after === undefined || r !== run) return
      try {
        const sink = components.commits
        const todo = group.filter((c) => r.base + c.index > sink.height())
        let decided: EpochCommittee | undefined
        if (sink.applyAll !== undefined) decided = (await sink.applyAll(todo, r.epoch))?.decided ?? undefined
        else
          for (const c of todo) {
            decided = (await sink.apply(c, r.epoch))?.decided ?? undefined
            if (decided !== undefined) break
          }
        if (decided !== undefined) {
          // The deciding commit is the last the ledger applied: the epoch ends there.
          const lastIndex = sink.height() - r.base
          for (const c of group) if (c.index <= lastIndex) vouch.record(c)
          await switchEpoch(
            decided,
            group.filter((c) => c.index > lastIndex),
          )
          return
        }
        for (const c of group) vouch.record(c)
        // A core replaced by a catch-up may still hand over commits below the snapshot: not saved.
        if (r.base + after.lastIndex < sink.height()) return
        // Saved after the ledger holds these commits (a restart resumes at or below its height), but
        // not waited for: the next group's ledger write goes on meanwhile (another store, another sync).
        const store = vstore
        saveTail = saveTail
          .then(() => store?.saveCommitterState(after, r.epoch))
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

  /**
   * Act on the output of `eng` (README "How the area drives a core"); nothing when `eng` is no longer
   * the engine (its epoch ended, or a catch-up replaced it): its commits are not applied.
   */
  const handle = (out: CoreOutput, from: string | undefined, eng: Core | Follower): void => {
    if (eng !== engine) return
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
    const core = engine
    if (!(core instanceof Core) || lifetime.signal.aborted || switching) return
    try {
      handle(await core.propose(clock.now()), undefined, core)
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'proposing failed; retrying')
      schedule(clock.now() + 100)
    }
  }

  /**
   * A vertex from `peer` (gossip or fetch): decode, verify, keep, add. One of a later epoch (or heard
   * while switching) is kept for the switch; one of an earlier epoch is ignored (`VERTEX_WRONG_EPOCH`).
   */
  const receive = async (bytes: Uint8Array, peer: string | undefined): Promise<void> => {
    if (switching) {
      keepFuture(bytes)
      return
    }
    const eng = engine
    const r = run
    if (eng === undefined) return
    let v: Vertex
    try {
      const d = decodeVertex(bytes, r.committee, r.limits)
      if (eng.dag.holds(d)) return
      v = verifiedVertex(d, await pool.verify(d.check, { signal: lifetime.signal }))
    } catch (err) {
      if (lifetime.signal.aborted) return
      if (isNodusError(err) && err.code === 'VERTEX_WRONG_EPOCH') {
        const epoch = err.details?.epoch
        if (typeof epoch === 'number' && epoch > r.epoch) keepFuture(bytes)
        else metrics.consensusVerticesIgnored.inc({ reason: 'older-epoch' })
        return
      }
      report(peer, err)
      log.debug({ peer, err: (err as Error).message }, 'refused a vertex')
      return
    }
    // The epoch changed (or a catch-up replaced the engine) while it verified: take it again.
    if (switching || engine !== eng) return receive(bytes, peer)
    if (v.txs.length > 0) components.commits.preverify?.(v.txs)
    let out: CoreOutput
    try {
      out = eng.addVertex(v, clock.now())
    } catch (err) {
      log.debug({ peer, err: (err as Error).message }, 'vertex not added')
      return
    }
    if (peer !== undefined && !eng.dag.has(v)) {
      if (senders.size >= 10_000) senders.clear()
      senders.set(digestKey(v.digest), peer)
    }
    void vstore
      ?.put([v])
      .catch((err) => log.warn({ err: (err as Error).message }, 'could not store a vertex'))
    handle(out, peer, eng)
    void proposeNow()
  }

  /** Run epoch `next` from now on (its engine is opened by the caller). */
  const enterEpoch = (next: EpochRun): void => {
    run = next
    metrics.consensusEpoch.set(next.epoch)
    haltLogged = false
  }

  /**
   * A new core (or follower) of the epoch this node runs, at `restore`, its DAG rebuilt from the store
   * above the floor. The vouch log is the caller's to reset.
   */
  const openEngine = async (restore: CommitterState | undefined): Promise<number> => {
    const vs = vstore as VertexStore
    const r = run
    const common = {
      gcDepthRounds: options.gcDepthRounds,
      maxSuspendedVertices: options.maxSuspendedVertices,
      maxFutureSkewMs: options.maxFutureSkewMs,
      initialTimestampMs: r.startMs,
      ...(restore === undefined ? {} : { restore }),
    }
    const eng =
      r.author === undefined
        ? new Follower(r.committee, common)
        : await Core.open(
            { committee: r.committee, signer, store: new OrderedProposalStore(vs.store, r.epoch) },
            {
              ...common,
              ...r.limits,
              author: r.author,
              roundTimeoutMs: r.roundTimeoutMs,
              maxPendingTxs: options.maxPendingTxs,
              maxPendingTxBytes: options.maxPendingTxBytes,
              idleRoundDelayMs: options.idleRoundDelayMs,
            },
          )
    engine = eng
    // Rebuild the DAG above the floor from the store (each vertex verified when it arrived).
    const floor = restore === undefined ? 0 : Math.max(0, restore.lastCommittedRound - options.gcDepthRounds)
    let loaded = 0
    for (const bytes of vs.above(r.epoch, floor)) {
      try {
        const { check: _c, ...v } = decodeVertex(bytes, r.committee, r.limits)
        handle(eng.addVertex(v, clock.now()), undefined, eng)
        loaded++
      } catch (err) {
        log.debug({ err: (err as Error).message }, 'a stored vertex was not added')
      }
    }
    if (eng instanceof Core) handle(await eng.start(clock.now()), undefined, eng)
    return loaded
  }

  /**
   * The commit applied last decided the next committee (`next`, the ledger's): end this epoch there
   * (module doc). Runs in the apply queue; `discarded` are this epoch's commits after the deciding one.
   */
  const switchEpoch = async (next: EpochCommittee, discarded: CommittedSubDag[]): Promise<void> => {
    switching = true
    try {
      const old = engine
      const oldRun = run
      // Commits of the ended epoch still queued are dropped too.
      discarded.push(...queued)
      queued = []
      queuedState = undefined
      const carry = old instanceof Core ? leftoverTxs(old, discarded) : []
      clearTimeout(wakeTimer)
      wakeAt = Number.POSITIVE_INFINITY
      fetcher.clear()
      if (old !== undefined) previous = { run: oldRun, dag: old.dag }
      enterEpoch(runOf(next))
      vouch.startEpoch(run.epoch, run.base, run.startMs)
      engine = undefined
      await openEngine(undefined)
      log.info(
        {
          epoch: run.epoch,
          height: run.base,
          role: run.author === undefined ? 'follower' : 'validator',
          author: run.author,
          validators: run.committee.n,
          carried: carry.length,
          dropped: discarded.length,
        },
        'the epoch changed: running the next committee',
      )
      handOn(carry)
    } finally {
      switching = false
    }
    // Vertices of this epoch heard early, and those that came during the switch.
    for (const bytes of takeFuture()) void receive(bytes, undefined)
    void proposeNow()
  }

  /** Transactions an ended epoch's core still held: to this node's new core, or to a validator. */
  const handOn = (txs: readonly Uint8Array[]): void => {
    if (txs.length === 0) return
    const core = engine
    if (core instanceof Core) {
      for (const tx of txs) {
        try {
          core.submit(tx)
        } catch {
          // the pool is full: the client submits again
        }
      }
      metrics.consensusPendingTxs.set(core.pendingTxs)
      return
    }
    void (async () => {
      for (let i = 0; i < txs.length && !lifetime.signal.aborted; i += options.maxForwardTxs) {
        try {
          await forwardBatch(txs.slice(i, i + options.maxForwardTxs), lifetime.signal)
        } catch (err) {
          log.debug({ err: (err as Error).message }, 'leftover transactions were not handed on')
        }
      }
    })()
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
      const v = engine?.dag.get(d)?.bytes ?? previous?.dag.get(d)?.bytes ?? vstore?.get(d)
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

  /** Hand transactions to one validator of this epoch that takes them (per-transaction refusals ignored). */
  const forwardBatch = async (txs: Uint8Array[], signal: AbortSignal): Promise<void> => {
    const order = run.validatorPeers.filter((p) => !peers.isBanned(p.toString()))
    order.sort(() => random.next() - 0.5)
    for (const p of order) {
      try {
        await submitWire.request(p, { txs }, signal)
        return
      } catch (err) {
        if (signal.aborted) throw err
      }
    }
    throw new NodusError('CONSENSUS_NO_VALIDATOR', 'no validator took the transactions', {
      details: { tried: order.length },
    })
  }

  const forward = async (tx: Uint8Array, signal?: AbortSignal): Promise<void> => {
    const order = [...run.validatorPeers].sort(() => random.next() - 0.5)
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

  /** Decode a stored vertex of this epoch or the one before (undefined: another epoch's). */
  const decodeKnown = (bytes: Uint8Array): Vertex | undefined => {
    for (const r of previous === undefined ? [run] : [run, previous.run]) {
      try {
        const { check: _c, ...v } = decodeVertex(bytes, r.committee, r.limits)
        return v
      } catch (err) {
        if (!isNodusError(err) || err.code !== 'VERTEX_WRONG_EPOCH') throw err
      }
    }
    return undefined
  }

  return {
    genesis,
    get committee() {
      return run.committee
    },
    get epoch() {
      return run.epoch
    },
    get author() {
      return run.author
    },
    async submitTx(tx, o = {}) {
      if (engine === undefined) throw new NodusError('NOT_STARTED', 'consensus has not started')
      if (engine instanceof Core) await poolTx(tx)
      else await forward(tx, o.signal)
    },
    status() {
      const c = run.committee
      const s = engine?.status() ?? new Follower(c, { ...options, initialTimestampMs: 0 }).status()
      return {
        ...s,
        federation: g.federation,
        genesisId: hex(genesis.id),
        epoch: run.epoch,
        role: run.author === undefined ? 'follower' : 'validator',
        validators: c.n,
        f: c.f,
        committee: {
          base: run.base,
          startMs: run.startMs,
          members: c.validators.map((v) => ({
            index: v.index,
            ed25519: hex(v.ed25519),
            ...(v.name === undefined ? {} : { name: v.name }),
          })),
        },
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
      const held = engine?.dag.get(digest) ?? previous?.dag.get(digest)
      if (held !== undefined) return held
      const bytes = vstore?.get(digest)
      return bytes === undefined ? undefined : decodeKnown(bytes)
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
      // The epoch the ledger is in: after a switch, a restart resumes in the new epoch.
      enterEpoch(runOf(components.commits.epoch?.()))
      previous = undefined
      let restore = vs.committerState(run.epoch)
      const index = components.commits.height() - run.base
      if (restore !== undefined && restore.lastIndex > index) {
        log.warn(
          { saved: restore.lastIndex, ledger: index, epoch: run.epoch },
          'the ledger is behind the saved committer state: replaying',
        )
        restore = undefined
      }
      vouch.reset(restore, run.startMs, { epoch: run.epoch, base: run.base })
      const loaded = await openEngine(restore)
      log.info(
        {
          role: run.author === undefined ? 'follower' : 'validator',
          author: run.author,
          epoch: run.epoch,
          base: run.base,
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
          if (floorNow > 0) {
            // Pruning this epoch's first rounds ends the service of the one before (README "Epoch changes").
            previous = undefined
            void vs.prune(run.epoch, floorNow).catch(() => {})
          }
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
      previous = undefined
      takeFuture()
    },
  }
}
