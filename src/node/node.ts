/**
 * The composition root: builds every area in order from its factory, starts them in that order and
 * stops them in reverse (the lifecycle phases of common/lifecycle.ts). The API is built last. The
 * policy that joins areas lives in the areas (storage/area.ts, trust/area.ts, net/area.ts), not here.
 * docs/ARCHITECTURE.md describes the seam a new area plugs into.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { SubscriptionChangeData } from '@libp2p/gossipsub'
import { type ApiServer, createApiServer } from '../api/index.ts'
import { type Clock, systemClock } from '../common/clock.ts'
import { RUN_FILE, readApiToken } from '../common/data-dir.ts'
import type { Startable } from '../common/lifecycle.ts'
import { startAll, stopAll } from '../common/lifecycle.ts'
import { createLogger, type Logger } from '../common/logger.ts'
import { type Random, systemRandom } from '../common/random.ts'
import type { NodusConfig } from '../config/index.ts'
import { type Consensus, consensusRoutes, createConsensus, loadGenesisFile } from '../consensus/index.ts'
import { didKeyFromEd25519, loadIdentity, type NodeIdentity } from '../crypto/index.ts'
import { createKv, type Kv, kvGraphql, kvRoutes, kvSealedRoutes } from '../kv/index.ts'
import { createLedger, type LedgerArea, ledgerRoutes } from '../ledger/index.ts'
import {
  createDirectMessaging,
  createMessaging,
  type DirectMessaging,
  directRoutes,
  GOSSIP_TOPIC_PREFIX,
  gossipsubInit,
  KEY_RECORD_DHT_NAMESPACE,
  keyRecordSelector,
  keyRecordValidator,
  type Messaging,
  messagingRoutes,
  PeerPenalties,
} from '../messaging/index.ts'
import { NodusMetrics } from '../metrics/index.ts'
import {
  closestPeers,
  closestPeersLocal,
  createNet,
  DEFAULT_HOST_OPTIONS,
  type Net,
  netRoutes,
  provideBatchDepsFor,
} from '../net/index.ts'
import {
  allocAligned,
  createStorage,
  directIoAvailable,
  type RepairEvent,
  type Storage,
  storageRoutes,
} from '../storage/index.ts'
import {
  createTrust,
  createTrustExchange,
  LmdbBanStore,
  type Trust,
  type TrustExchange,
} from '../trust/index.ts'
import { type IdentityInfo, identityInfo, nodeRoutes } from './routes.ts'

export interface NodeInfo {
  peerId: string
  did: string
  multiaddrs: string[]
  api: string
}

/** The areas of a node, in build (and start) order. */
export interface NodeAreas {
  trust: Trust
  net: Net
  storage: Storage
  exchange: TrustExchange
  messaging: Messaging
  /** Encrypted direct messages (the messaging area's, started after pub/sub). */
  direct: DirectMessaging
  kv: Kv
  /** The ledger and the DAG: present when the node starts with a genesis (`consensus.genesis`). */
  ledger?: LedgerArea
  consensus?: Consensus
}

/**
 * Build a node from config: load keys, then each area in order (trust, net, storage, the reports
 * exchange, messaging), then the API. Nothing starts until {@link NodusNode.start}.
 * @throws NodusError `KEYS_MISSING` if `nodus init` was not run for this data directory
 */
export async function createNode(
  config: NodusConfig,
  options: { logger?: Logger; clock?: Clock; random?: Random; onRepairEvent?: (e: RepairEvent) => void } = {},
): Promise<NodusNode> {
  const logger =
    options.logger ?? createLogger(config.log.level, config.log.file === '' ? 2 : config.log.file)
  const clock = options.clock ?? systemClock
  const random = options.random ?? systemRandom
  const identity = await loadIdentity(config.dataDir)
  const metrics = new NodusMetrics()
  const self = identity.peerId.toString()

  const trust = createTrust(
    { logger, clock, self, bans: new LmdbBanStore(join(config.dataDir, 'bans')), metrics },
    config.trust,
  )
  // Gossipsub runs in the host (net); its P5 score reads the penalties the messaging area gives.
  const pubsubPenalties = new PeerPenalties(clock, config.messaging.maxPenalizedPeers)
  const net = await createNet(
    {
      logger,
      clock,
      privateKey: identity.ed25519,
      peers: trust.peerActions,
      metrics,
      random,
      // Aligned bulk bodies: the shard store writes a put's body with direct I/O as it is.
      allocateBody: directIoAvailable() ? allocAligned : undefined,
      pubsub: gossipsubInit(config.messaging, pubsubPenalties),
      // Key records of direct messages live in the DHT under /nodus-key/<PeerId>.
      dhtRecords: {
        validators: { [KEY_RECORD_DHT_NAMESPACE]: keyRecordValidator(clock) },
        selectors: { [KEY_RECORD_DHT_NAMESPACE]: keyRecordSelector() },
      },
    },
    config.net,
  )
  const storage = createStorage(
    {
      logger,
      clock,
      random,
      metrics,
      identity,
      dataDir: config.dataDir,
      host: net.libp2p,
      net: {
        peersSpeaking: net.peersSpeaking,
        bulk: net.bulk,
        handleBulk: net.handleBulk,
        provideBatch: provideBatchDepsFor(
          net.libp2p,
          config.net.dhtProtocol,
          DEFAULT_HOST_OPTIONS.dhtKBucketSize,
        ),
      },
      trust: {
        score: trust.score,
        standing: trust.standing,
        perf: trust.perf,
        reports: trust.reports,
        observer: trust.observer,
        peerActions: trust.peerActions,
        refused: (peer) => trust.eigentrust.recordInteraction(self, peer, 'shard-bad'),
      },
      onRepairEvent: options.onRepairEvent,
    },
    config,
  )
  const exchange = createTrustExchange(
    {
      logger,
      clock,
      host: net.libp2p,
      trust,
      signer: { peerId: identity.peerId, ed25519: identity.ed25519 },
      capacity: () => storage.store.usage(),
    },
    config.trust,
  )
  const messaging = createMessaging(
    {
      logger,
      clock,
      random,
      metrics,
      self,
      pubsub: net.pubsub as NonNullable<Net['pubsub']>,
      penalties: pubsubPenalties,
      peers: trust.peerActions,
    },
    config.messaging,
  )
  const direct = createDirectMessaging(
    {
      logger,
      clock,
      random,
      metrics,
      identity,
      dataDir: config.dataDir,
      host: net.libp2p,
      peers: trust.peerActions,
    },
    config.messaging,
  )
  const gossip = net.pubsub as NonNullable<Net['pubsub']>
  const kv = createKv(
    {
      logger,
      clock,
      random,
      metrics,
      self,
      dataDir: config.dataDir,
      host: net.libp2p,
      pubsub: {
        publish: (topic, data) => messaging.publish(topic, data),
        subscribe: (topic) => messaging.subscribe(topic),
        topicPeers: (topic) => gossip.getSubscribers(GOSSIP_TOPIC_PREFIX + topic).map((p) => p.toString()),
        onTopicPeer: (listener) => {
          const on = (evt: CustomEvent<SubscriptionChangeData>): void => {
            for (const s of evt.detail.subscriptions)
              if (s.subscribe && s.topic.startsWith(GOSSIP_TOPIC_PREFIX))
                listener(s.topic.slice(GOSSIP_TOPIC_PREFIX.length), evt.detail.peerId)
          }
          gossip.addEventListener('subscription-change', on)
          return () => gossip.removeEventListener('subscription-change', on)
        },
      },
      closestPeers: (key, n, o) =>
        closestPeers(net.libp2p, key, n, {
          signal: o.signal ?? AbortSignal.timeout(config.messaging.keyLookupTimeoutMs),
          timeoutMs: config.messaging.keyLookupTimeoutMs,
        }),
      closestPeersLocal: (key, n) => closestPeersLocal(net.libp2p, key, n),
      peers: trust.peerActions,
    },
    config.kv,
  )
  // Agreement (issue 21): only with a genesis file. The ledger opens first: consensus resumes from its height.
  let ledger: LedgerArea | undefined
  let consensus: Consensus | undefined
  if (config.consensus.genesis !== '') {
    const genesis = await loadGenesisFile(resolve(config.dataDir, config.consensus.genesis))
    const l = createLedger(
      {
        logger,
        metrics,
        clock,
        dataDir: config.dataDir,
        genesis,
        verifyThreads: config.consensus.verifyThreads,
      },
      config.ledger,
    )
    ledger = l
    consensus = createConsensus(
      {
        logger,
        clock,
        random,
        metrics,
        self,
        identity,
        dataDir: config.dataDir,
        genesis,
        host: net.libp2p,
        pubsub: {
          publish: (topic, data) => messaging.publish(topic, data),
          // The DAG orders vertices itself: no wait for a publisher's missing earlier batch.
          subscribe: (topic) => messaging.subscribe(topic, { unordered: true }),
          topicPeers: (topic) => gossip.getSubscribers(GOSSIP_TOPIC_PREFIX + topic).map((p) => p.toString()),
        },
        peers: trust.peerActions,
        commits: {
          height: () => l.height(),
          epoch: () => l.epoch(),
          apply: (c, epoch) => l.apply({ ...c, epoch }),
          applyAll: (cs, epoch) => l.applyAll(cs.map((c) => ({ ...c, epoch }))),
          preverify: (t) => l.preverify(t),
        },
        snapshots: {
          chunkBytes: config.ledger.snapshotChunkBytes,
          height: () => l.height(),
          rootAt: (h) => l.ledger.rootAt(h),
          exportSnapshot: (signal) => l.exportSnapshot(signal),
          installSnapshot: (chunks, o) => l.installSnapshot(chunks, o),
        },
        checkTx: async (bytes) => {
          await l.checkTx(bytes)
        },
        verifyPool: l.verifyPool,
      },
      config.consensus,
    )
  }
  metrics.attach({
    messagesQueued: () => messaging.queuedMessages,
    subscriptions: () => messaging.subscriptionCount,
    storage: () => storage.store.usage(),
    connections: () => net.libp2p.getConnections().length,
    provideQueueDepth: () => storage.provider.size,
    shardRequestsInFlight: () => storage.shardServer.inFlight,
    bannedPeers: () => trust.peerActions.bannedCount,
  })
  /** A node's key record (this node's own, or a verified one from the DHT): kv's sealed reads. */
  const keyRecord = async (peer: string, signal: AbortSignal) =>
    peer === identity.peerId.toString() ? direct.keys.record.value : await direct.keys.lookup(peer, signal)
  const api = createApiServer(
    {
      token: await readApiToken(config.dataDir),
      logger: logger.child({ area: 'api' }),
      routes: [
        nodeRoutes({
          identity,
          libp2p: net.libp2p,
          store: storage.store,
          shardServer: storage.shardServer,
          provideQueue: storage.provider,
        }),
        netRoutes({ libp2p: net.libp2p, trust, perf: trust.perf }),
        storageRoutes({ store: storage.store, files: storage.files, pins: storage.pins }),
        messagingRoutes({ messaging, maxMessageBytes: config.messaging.maxMessageBytes }),
        directRoutes({ direct, maxBodyBytes: config.messaging.directMaxBodyBytes }),
        kvRoutes({ kv, clock }),
        kvSealedRoutes({ kv, keyRecord }),
        kvGraphql({ kv, clock, metrics, keyRecord }, config.kv),
        consensusRoutes({ consensus }),
        ledgerRoutes({
          ledger,
          submit: consensus === undefined ? undefined : (tx, o) => consensus.submitTx(tx, o),
        }),
      ],
      metrics,
    },
    config.api,
  )
  return new NodusNode({
    config,
    identity,
    logger,
    metrics,
    areas: {
      trust,
      net,
      storage,
      exchange,
      messaging,
      direct,
      kv,
      ...(ledger === undefined ? {} : { ledger }),
      ...(consensus === undefined ? {} : { consensus }),
    },
    api,
  })
}

/** A running nodus node: its areas, and the façade the CLI, the API and tests use. */
export class NodusNode {
  readonly config: NodusConfig
  readonly identity: NodeIdentity
  readonly logger: Logger
  readonly metrics: NodusMetrics
  readonly areas: NodeAreas
  readonly #api: ApiServer
  readonly #startables: Startable[]
  #started = false
  #did: string | undefined
  #apiUrl = ''

  constructor(parts: {
    config: NodusConfig
    identity: NodeIdentity
    logger: Logger
    metrics: NodusMetrics
    areas: NodeAreas
    api: ApiServer
  }) {
    this.config = parts.config
    this.identity = parts.identity
    this.logger = parts.logger
    this.metrics = parts.metrics
    this.areas = parts.areas
    this.#api = parts.api
    const { trust, net, storage, exchange, messaging, direct, kv, ledger, consensus } = parts.areas
    const api: Startable = {
      start: async () => {
        this.#apiUrl = await this.#api.listen(this.config.api.host, this.config.api.port)
      },
      beforeStop: () => this.#api.close(),
      stop: () => {},
    }
    const agreement: Startable[] = ledger === undefined || consensus === undefined ? [] : [ledger, consensus]
    this.#startables = [trust, net, storage, exchange, messaging, direct, kv, ...agreement, api]
  }

  // The areas' main services, for the CLI, the API and tests.
  get libp2p() {
    return this.areas.net.libp2p
  }
  get bulk() {
    return this.areas.net.bulk
  }
  get store() {
    return this.areas.storage.store
  }
  get files() {
    return this.areas.storage.files
  }
  get shardServer() {
    return this.areas.storage.shardServer
  }
  get fileIndex() {
    return this.areas.storage.fileIndex
  }
  get watch() {
    return this.areas.storage.watch
  }
  get repairer() {
    return this.areas.storage.repairer
  }
  get audits() {
    return this.areas.storage.audits
  }
  get accounts() {
    return this.areas.storage.accounts
  }
  get trust() {
    return this.areas.trust.eigentrust
  }
  get perf() {
    return this.areas.trust.perf
  }
  get peerActions() {
    return this.areas.trust.peerActions
  }
  get reports() {
    return this.areas.trust.reports
  }
  get exchange() {
    return this.areas.exchange.exchange
  }
  get messaging() {
    return this.areas.messaging
  }
  get direct() {
    return this.areas.direct
  }

  get peerId(): string {
    return this.identity.peerId.toString()
  }

  /** The node's did:key (computed once: validating the key is costly on a hot API route). */
  get did(): string {
    this.#did ??= didKeyFromEd25519(this.identity.ed25519.publicKey.raw)
    return this.#did
  }

  /** Provider records waiting to be announced. */
  get provideQueueDepth(): number {
    return this.areas.storage.provider.size
  }

  /** The node's DID and public keys (base64). */
  identityInfo(): IdentityInfo {
    return identityInfo(this.identity, this.did)
  }

  info(): NodeInfo {
    return {
      peerId: this.peerId,
      did: this.did,
      multiaddrs: this.libp2p.getMultiaddrs().map((m) => m.toString()),
      api: this.#apiUrl,
    }
  }

  /** Renew this node's pins now (storage's PinService; it also runs every `storage.renewIntervalMs`). */
  renewPins(now?: number): Promise<{ renewed: number; expired: number; failed: number }> {
    return this.areas.storage.pins.renew(now)
  }

  /** Start every area in order (stores, libp2p, protocols, API, bootstrap dials). Idempotent. */
  async start(): Promise<void> {
    if (this.#started) return
    this.#started = true
    await startAll(this.#startables)
    await mkdir(this.config.dataDir, { recursive: true })
    await writeFile(
      join(this.config.dataDir, RUN_FILE),
      JSON.stringify({ url: this.#apiUrl, pid: process.pid }),
      {
        mode: 0o600,
      },
    )
    this.logger.info(this.info(), 'node started')
  }

  /** Stop every area in reverse order. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    await stopAll(this.#startables)
    await rm(join(this.config.dataDir, RUN_FILE), { force: true })
    this.logger.info({}, 'node stopped')
  }
}
