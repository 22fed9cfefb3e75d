/**
 * The kv area: a signed, replicated database of typed keys (README.md; docs/PROTOCOLS.md, "KV
 * operations", "KV reconciliation", "KV sync").
 *
 * A node hosts a database when it writes to it, when asked to (`host`), or when a peer syncs it with
 * this node as one of its keepers (the `kv.keepers` peers XOR-closest to the database id). It keeps a
 * database for a peer only if it is plausibly one of its keepers (among the `kv.keepers +
 * kv.keeperSlack` XOR-closest in its own view, no lookup), at most `kv.maxKeptDbsPerOwner` per owner
 * key; every database's ops are bounded in bytes (`kv.maxDbBytes`, `kv.maxBytes`; quota.ts). For each
 * hosted database it:
 * - subscribes to the gossip topic `kv/<db>` and applies every op heard there (engine.ts);
 * - publishes every op written here to that topic;
 * - runs anti-entropy (sync.ts) with one of the database's other hosts or keepers every
 *   `kv.syncIntervalMs`, at start and when it begins hosting, so a lost gossip message is repaired
 *   and a node that was away catches up by exchanging only what it missed.
 *
 * Storage: one LMDB environment, `<dataDir>/kv`, holding the op log, the authorization records, the
 * typed state, the reconciliation index, the byte counters (prefix 0x0d) and the list of hosted
 * databases (prefix 0x0e; value empty: hosted, `0x01`: kept for peers).
 */
import type { AbortOptions, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Clock } from '../common/clock.ts'
import { NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import type { Random } from '../common/random.ts'
import { VerifyPool } from '../crypto/index.ts'
import { ActiveDbs } from './active.ts'
import { parseDbIdFast } from './db-id.ts'
import { type AppliedEvent, KvEngine, type OpSource, type SubmitResult } from './engine.ts'
import { gossipDropper } from './fault.ts'
import { HlcClock } from './hlc.ts'
import { KeptDbs } from './keepers.ts'
import type { KvMetrics } from './metrics.ts'
import type { KvOptions } from './options.ts'
import { dbBytes } from './quota.ts'
import { fingerprint } from './reconcile/fingerprint.ts'
import { LmdbOrderedStore } from './store/lmdb-store.ts'
import type { OrderedStore } from './store/ordered.ts'
import { KvSync, type SyncHost, type SyncRefusal, type SyncReport } from './sync.ts'

/** Key prefix of the hosted databases: 0x0e ‖ db id (UTF-8) → empty (hosted) or 0x01 (kept for peers). */
export const HOSTED_PREFIX = 0x0e
/** The value of a database kept for peers (not hosted through this node's API). */
const KEPT = Uint8Array.of(1)
/** The gossip topic of a database. */
export const kvTopic = (db: string): string => `kv/${db}`

/** What the kv area needs of the messaging area. */
export interface KvPubsub {
  publish(topic: string, data: Uint8Array): unknown
  subscribe(topic: string): AsyncIterable<{ publisher: string; data: Uint8Array }> & {
    close(): void
    /** Messages waiting to be read. */
    readonly size?: number
  }
  /** Peers subscribed to `topic` (PeerId strings), as gossipsub sees them. */
  topicPeers(topic: string): string[]
  /** Hear when a peer subscribes to a topic (gossipsub's subscription-change). @returns a function that stops it */
  onTopicPeer?(listener: (topic: string, peer: PeerId) => void): () => void
}

/** Most gossiped ops applied in one submission. */
const GOSSIP_BATCH_OPS = 1024

/** How long after a sync with a peer a new subscription of it starts no other, ms. */
const PEER_SYNC_GAP_MS = 5_000

export interface KvComponents {
  logger: Logger
  clock: Clock
  random: Random
  metrics: KvMetrics
  /** The node's PeerId string. */
  self: string
  /** The node's data directory: the kv store is `<dataDir>/kv`. */
  dataDir: string
  host: SyncHost
  pubsub: KvPubsub
  /** Up to `n` peers XOR-closest to `key` (a DHT lookup, bounded in time), never this node. */
  closestPeers(key: Uint8Array, n: number, options: AbortOptions): Promise<PeerId[]>
  /** Up to `n` peers XOR-closest to `key` in this node's own view (routing table, connections), no lookup, never this node. */
  closestPeersLocal(key: Uint8Array, n: number): PeerId[]
  /** The trust area's peer actions: a peer that sends malformed or forged ops is reported. */
  peers: { report(peer: string, err: unknown): unknown; isBanned(peer: string): boolean }
  /** The store; default LMDB under `dataDir` (tests pass a MemoryOrderedStore). */
  createStore?: () => OrderedStore
}

/** What `status(db)` reports. */
export interface KvDbStatus {
  db: string
  hosted: boolean
  /** Ops held. */
  ops: number
  /** Bytes of the ops held (counted against `kv.maxDbBytes`). */
  bytes: number
  /** Whether this node keeps it for peers (a keeper) rather than hosting it through its API. */
  kept: boolean
  /**
   * The fingerprint of the ops held (hex; reconcile/fingerprint.ts): two nodes with equal fingerprints
   * hold the same ops, so (the state machine being deterministic) the same state.
   */
  fingerprint: string
  /** The last sync this node started for it, if any. */
  lastSync?: SyncReport & { atMs: number; error?: string }
}

/** The kv area's public services. */
export interface Kv {
  readonly engine: KvEngine
  /**
   * Apply signed envelopes written through this node's API, publish those applied to their
   * databases' topics, and host those databases.
   * @throws NodusError `KV_DB_NOT_HOSTED` when a new database would pass `kv.maxHostedDbs`
   */
  submit(envelopes: Uint8Array[], options?: AbortOptions): Promise<SubmitResult[]>
  /** Host `db` (persisted; already hosted: no change) and sync it now. @throws KV_DB_ID_INVALID, KV_DB_NOT_HOSTED */
  host(db: string, options?: AbortOptions): Promise<void>
  /** Stop hosting `db` (its ops stay in the store). */
  unhost(db: string): Promise<void>
  hosted(): string[]
  /** Sync `db` now with up to `peers` (default 3) of its other hosts and keepers. */
  sync(db: string, options?: AbortOptions & { peers?: number }): Promise<SyncReport[]>
  status(db: string): Promise<KvDbStatus>
  onApplied(listener: (e: AppliedEvent) => void): () => void
  beforeStart(): Promise<void>
  start(): Promise<void>
  afterStart(): void
  beforeStop(): Promise<void>
  stop(): Promise<void>
  afterStop(): Promise<void>
}

const utf8 = new TextEncoder()

const refuse = (): never => {
  throw new NodusError('NOT_STARTED', 'the kv store is not open (the node has not started)')
}
/** The store before beforeStart and after afterStop. */
const notOpen: OrderedStore = {
  get: refuse,
  range: refuse,
  write: async () => refuse(),
  close: async () => {},
}
const fromUtf8 = new TextDecoder()

/** Build the kv area. Nothing runs until the lifecycle phases. */
export function createKv(components: KvComponents, options: KvOptions): Kv {
  const { clock, random, metrics, self, pubsub, peers } = components
  const log = components.logger.child({ area: 'kv' })
  // Opened in beforeStart (a node touches no file until it starts); until then a store that refuses.
  let store: OrderedStore = notOpen
  const pool = new VerifyPool({
    threads: options.verifyThreads,
    maxBatch: options.verifyBatchSize,
    maxQueued: options.verifyQueueMax,
  })
  const hlc = new HlcClock({ clock }, { maxFutureSkewMs: options.maxFutureSkewMs })
  const engine = new KvEngine(
    {
      store: {
        get: (k) => store.get(k),
        range: (o) => store.range(o),
        write: (fn) => store.write(fn),
        close: () => store.close(),
      },
      clock,
      hlc,
      random,
      verify: (check, o) => pool.verify(check, o),
      onResult: (r, source: OpSource) => {
        if (r.status === 'applied') metrics.kvOpsApplied.inc({ source })
        else
          metrics.kvOpsRefused.inc({
            reason: r.status === 'duplicate' ? 'kv_op_duplicate' : r.code.toLowerCase(),
          })
      },
    },
    {
      limits: {
        maxOpBytes: options.maxOpBytes,
        maxKeyBytes: options.maxKeyBytes,
        maxFieldBytes: options.maxFieldBytes,
        maxValueBytes: options.maxValueBytes,
      },
      quota: { maxDbBytes: options.maxDbBytes, maxBytes: options.maxBytes },
    },
  )
  const hostedDbs = new Map<string, { close(): void }>()
  /** The test aid kv.testGossipDropPerMille (fault.ts): off unless configured. */
  const drop = gossipDropper(options.testGossipDropPerMille, options.testGossipDropSeed, self)
  const dropped = (): boolean => {
    if (drop === undefined || !drop()) return false
    metrics.kvGossipDropped.inc()
    return true
  }
  /** Of {@link hostedDbs}, those kept for peers (as a keeper). */
  const kept = new KeptDbs({ self, closestPeersLocal: components.closestPeersLocal }, options)
  /** Databases with recent traffic, synced on the fast schedule (active.ts). */
  const active = new ActiveDbs(options)
  const lastSync = new Map<string, KvDbStatus['lastSync']>()
  let lifetime = new AbortController()
  /** `${db} ${peer}` → when a sync with it was last started (bounded). */
  const peerSynced = new Map<string, number>()
  let stopTopicPeers: (() => void) | undefined
  let timer: ReturnType<typeof setInterval> | undefined
  let started = false

  const sync = new KvSync(
    {
      engine,
      host: components.host,
      log,
      metrics,
      mayServe: (db) => mayKeep(db),
      onRefused: (reason) => metrics.kvSyncRefused.inc({ reason }),
      report: (peer, err) => peers.report(peer, err),
    },
    {
      recon: options,
      maxFrameBytes: Math.max(options.reconMaxMessageBytes, 1024 * 1024) + 64 * 1024,
      sessionTimeoutMs: options.syncTimeoutMs,
      maxSessions: options.maxSyncSessions,
      maxSessionsPerPeer: options.maxSyncSessionsPerPeer,
    },
  )

  /**
   * May this node serve `db` to a peer that syncs it? Yes when it hosts or keeps it; otherwise it
   * starts keeping it when it is plausibly a keeper and within `kv.maxHostedDbs` and
   * `kv.maxKeptDbsPerOwner` (keepers.ts).
   */
  const mayKeep = (db: string): true | SyncRefusal => {
    if (hostedDbs.has(db)) return true
    const refused = kept.refusal(db, hostedDbs.size)
    if (refused !== undefined) return refused
    void hostDb(db, true).catch((err) =>
      log.debug({ db, err: (err as Error).message }, 'could not keep a database'),
    )
    return true
  }

  /** Listen to a database's topic, applying what others publish. */
  /**
   * Listen to a database's topic, applying what others publish. The ops waiting when one submission
   * ends go together into the next (up to {@link GOSSIP_BATCH_OPS}): they share the verification
   * pool's tasks and one store commit, where one op at a time would wait for a flush each.
   */
  const listen = (db: string): { close(): void } => {
    const sub = pubsub.subscribe(kvTopic(db))
    const it = sub[Symbol.asyncIterator]()
    void (async () => {
      for (;;) {
        const first = await it.next()
        if (first.done === true) return
        const batch = [first.value]
        while ((sub.size ?? 0) > 0 && batch.length < GOSSIP_BATCH_OPS) {
          const next = await it.next()
          if (next.done === true) break
          batch.push(next.value)
        }
        if (batch.some((m) => m.publisher !== self)) active.touch(db, clock.now())
        const theirs = batch.filter((m) => m.publisher !== self && !dropped())
        if (theirs.length === 0) continue
        try {
          const results = await engine.submit(
            theirs.map((m) => m.data),
            'gossip',
            { signal: lifetime.signal },
          )
          results.forEach((r, i) => {
            if (r.status === 'refused' && (r.peerAction === 'reject' || r.peerAction === 'ban'))
              peers.report(
                (theirs[i] as { publisher: string }).publisher,
                new NodusError(r.code, r.message, { peerAction: r.peerAction }),
              )
          })
        } catch (err) {
          if (lifetime.signal.aborted) return
          log.warn({ db, err: (err as Error).message }, 'applying gossiped kv ops failed')
        }
      }
    })()
    return sub
  }

  const hostedKey = (db: string): Uint8Array => Uint8Array.from([HOSTED_PREFIX, ...utf8.encode(db)])

  /**
   * Host `db` (`keep`: kept for peers, as a keeper; else hosted through this node's API, which turns
   * a kept database into a hosted one). @returns whether it was not hosted before
   */
  const hostDb = async (db: string, keep = false): Promise<boolean> => {
    if (hostedDbs.has(db)) {
      if (keep || !kept.has(db)) return false
      kept.mark(db, false)
      await store.write((w) => w.put(hostedKey(db), new Uint8Array(0)))
      return false
    }
    parseDbIdFast(db)
    if (hostedDbs.size >= options.maxHostedDbs)
      throw new NodusError(
        'KV_DB_NOT_HOSTED',
        `this node hosts ${hostedDbs.size} databases (kv.maxHostedDbs)`,
        {
          details: { db },
        },
      )
    hostedDbs.set(db, started ? listen(db) : { close() {} })
    kept.mark(db, keep)
    await store.write((w) => w.put(hostedKey(db), keep ? KEPT : new Uint8Array(0)))
    return true
  }

  /** The database's other hosts and keepers, topic peers first, at most `n`. */
  const partners = async (db: string, n: number, signal: AbortSignal): Promise<PeerId[]> => {
    const out = new Map<string, PeerId>()
    const topic = pubsub.topicPeers(kvTopic(db)).filter((p) => p !== self && !peers.isBanned(p))
    // A random start, so rounds spread over the hosts.
    const startAt = topic.length === 0 ? 0 : Math.floor(random.next() * topic.length)
    for (let i = 0; i < topic.length && out.size < n; i++) {
      const p = topic[(startAt + i) % topic.length] as string
      out.set(p, peerIdFromString(p))
    }
    if (out.size < n && options.keepers > 0) {
      const keepers = await components.closestPeers(utf8.encode(db), options.keepers, { signal })
      for (const k of keepers) if (out.size < n && k.toString() !== self) out.set(k.toString(), k)
    }
    return [...out.values()]
  }

  /** One sync session with `peer`, recorded in metrics and `lastSync`. @throws only when `signal` aborted */
  const syncWith = async (db: string, peer: PeerId, signal: AbortSignal): Promise<SyncReport | undefined> => {
    try {
      const r = await sync.sync(peer, db, { signal })
      metrics.kvSyncs.inc({ result: 'done' })
      metrics.kvSyncedOps.inc({ direction: 'fetched' }, r.fetched)
      metrics.kvSyncedOps.inc({ direction: 'pushed' }, r.pushed)
      lastSync.set(db, { ...r, atMs: clock.now() })
      return r
    } catch (err) {
      if (signal.aborted) throw err
      metrics.kvSyncs.inc({ result: 'failed' })
      lastSync.set(db, {
        db,
        peer: peer.toString(),
        rounds: 0,
        reconBytes: 0,
        need: 0,
        have: 0,
        fetched: 0,
        pushed: 0,
        atMs: clock.now(),
        error: (err as Error).message,
      })
      log.debug({ db, peer: peer.toString(), err: (err as Error).message }, 'kv sync failed')
      return undefined
    }
  }

  const syncDb = async (db: string, o: AbortOptions & { peers?: number } = {}): Promise<SyncReport[]> => {
    const signal = o.signal === undefined ? lifetime.signal : AbortSignal.any([o.signal, lifetime.signal])
    const reports: SyncReport[] = []
    for (const peer of await partners(db, o.peers ?? 3, signal)) {
      peerSynced.set(`${db} ${peer.toString()}`, clock.now())
      const r = await syncWith(db, peer, signal)
      if (r !== undefined) reports.push(r)
    }
    return reports
  }

  const background = (what: string, p: () => Promise<unknown>): void => {
    p().catch((err) => {
      if (!lifetime.signal.aborted) log.debug({ err: (err as Error).message }, `${what} failed`)
    })
  }

  /**
   * A peer subscribed to a hosted database's topic: it has just started hosting it, or came back.
   * Sync with it now, so neither waits for the periodic round.
   */
  const onTopicPeer = (topic: string, peer: PeerId): void => {
    if (!started || !topic.startsWith('kv/')) return
    const db = topic.slice(3)
    const who = peer.toString()
    if (!hostedDbs.has(db) || who === self || peers.isBanned(who)) return
    const key = `${db} ${who}`
    const last = peerSynced.get(key)
    if (last !== undefined && clock.now() - last < PEER_SYNC_GAP_MS) return
    if (peerSynced.size >= 4096) peerSynced.clear()
    peerSynced.set(key, clock.now())
    background('kv sync with a new subscriber', () => syncWith(db, peer, lifetime.signal))
  }

  let activeTimer: ReturnType<typeof setInterval> | undefined
  /** One fast round: each active database with one partner, unless its last one still runs. */
  const activeRound = (): void => {
    for (const db of active.due(clock.now())) {
      if (!hostedDbs.has(db)) {
        active.done(db)
        active.forget(db)
        continue
      }
      background('kv active sync', () => syncDb(db, { peers: 1 }).finally(() => active.done(db)))
    }
  }

  /** One anti-entropy round: each hosted database with one partner. */
  const round = async (): Promise<void> => {
    for (const db of [...hostedDbs.keys()]) {
      if (lifetime.signal.aborted) return
      await syncDb(db, { peers: 1 })
    }
  }

  return {
    engine,
    async submit(envelopes, o = {}) {
      const results = await engine.submit(envelopes, 'local', o)
      for (const r of results) {
        if (r.status !== 'applied') continue
        const db = r.op.body.db
        if (await hostDb(db)) background('first sync', () => syncDb(db))
        active.touch(db, clock.now())
        try {
          pubsub.publish(kvTopic(db), r.op.bytes)
        } catch (err) {
          // Anti-entropy carries it when gossip cannot (a full publish queue, say).
          log.debug({ db, err: (err as Error).message }, 'publishing a kv op failed')
        }
      }
      return results
    },
    async host(db, o = {}) {
      await hostDb(db)
      await syncDb(db, o)
    },
    async unhost(db) {
      hostedDbs.get(db)?.close()
      hostedDbs.delete(db)
      kept.mark(db, false)
      active.forget(db)
      await store.write((w) => w.del(hostedKey(db)))
    },
    hosted: () => [...hostedDbs.keys()],
    sync: (db, o) => syncDb(db, o),
    async status(db) {
      const index = await engine.index(db)
      const ls = lastSync.get(db)
      const all = index.prefix(store, undefined)
      return {
        db,
        hosted: hostedDbs.has(db),
        ops: all.count,
        bytes: dbBytes(store, db),
        kept: kept.has(db),
        fingerprint: Buffer.from(fingerprint(all)).toString('hex'),
        ...(ls === undefined ? {} : { lastSync: ls }),
      }
    },
    onApplied: (l) => engine.onApplied(l),
    async beforeStart() {
      store = components.createStore?.() ?? LmdbOrderedStore.open({ path: `${components.dataDir}/kv` })
      for (const [k, v] of store.range({
        start: Uint8Array.of(HOSTED_PREFIX),
        end: Uint8Array.of(HOSTED_PREFIX + 1),
      })) {
        const db = fromUtf8.decode(k.subarray(1))
        hostedDbs.set(db, { close() {} })
        if (v[0] === KEPT[0]) kept.mark(db, true)
      }
    },
    async start() {
      lifetime = new AbortController()
      started = true
      for (const db of hostedDbs.keys()) hostedDbs.set(db, listen(db))
      await sync.start()
      stopTopicPeers = pubsub.onTopicPeer?.(onTopicPeer)
      timer = setInterval(() => background('kv anti-entropy', round), options.syncIntervalMs)
      timer.unref()
      if (options.activeSyncIntervalMs > 0) {
        activeTimer = setInterval(activeRound, options.activeSyncIntervalMs)
        activeTimer.unref()
      }
    },
    afterStart() {
      background('kv start-up sync', round)
    },
    async beforeStop() {
      clearInterval(timer)
      clearInterval(activeTimer)
      stopTopicPeers?.()
      lifetime.abort(new NodusError('ABORTED', 'the node is stopping'))
      for (const s of hostedDbs.values()) s.close()
      started = false
    },
    async stop() {
      await sync.stop()
    },
    async afterStop() {
      await pool.close()
      await store.close()
      store = notOpen
    },
  }
}
