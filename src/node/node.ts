/**
 * The composition root: builds every area in order, starts them, stops them in reverse.
 */

import { randomBytes } from 'node:crypto'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import { type ApiServer, createApiServer, readApiToken } from '../api/index.ts'
import { withDeadline } from '../common/abort.ts'
import { BatchQueue } from '../common/batch-queue.ts'
import { systemClock } from '../common/clock.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import { createLogger, type Logger } from '../common/logger.ts'
import { mulberry32 } from '../common/prng.ts'
import type { NodusConfig } from '../config/index.ts'
import {
  didKeyFromEd25519,
  hybridPublicKey,
  loadIdentity,
  type NodeIdentity,
  signEd25519,
  signHybrid,
} from '../crypto/index.ts'
import { NodusMetrics } from '../metrics/index.ts'
import {
  announceBatch,
  BulkChannel,
  createHost,
  DEFAULT_BULK_OPTIONS,
  DEFAULT_HOST_OPTIONS,
  type NodusLibp2p,
  netRoutes,
  provideBatchDepsFor,
} from '../net/index.ts'
import {
  AuditRecords,
  allocAligned,
  cidToString,
  DEFAULT_FILE_OPTIONS,
  DEFAULT_HOLDER_UPDATE_INBOX_OPTIONS,
  DEFAULT_REPAIR_OPTIONS,
  DEFAULT_SHARD_SERVER_OPTIONS,
  decodeManifest,
  directIoAvailable,
  FileIndex,
  FileService,
  HolderPolicy,
  HolderUpdateInbox,
  ManifestWatch,
  PinService,
  Popularity,
  parityFor,
  parseCid,
  placeScored,
  type RepairEvent,
  Repairer,
  responsibleFor,
  SHARD_PROTOCOL,
  ShardClient,
  ShardServer,
  ShardStore,
  StorageAccounts,
  startExpiryCleanup,
  storageRoutes,
} from '../storage/index.ts'
import { REPORTS_PROTOCOL, ReportExchange } from '../trust/exchange.ts'
import {
  type CapacityReport,
  CapacityReportInbox,
  checkReport,
  EigenTrust,
  LmdbBanStore,
  PeerActions,
  PerfMonitor,
  signCapacityReport,
  signTrustVector,
  TrustVectorInbox,
  trustVectorFromLocalTrust,
} from '../trust/index.ts'
import { identityInfo, nodeRoutes } from './routes.ts'
import { RUN_FILE } from './run-file.ts'

export { RUN_FILE }

/** Announce provider records only after this long without shard traffic, ms. */
const ANNOUNCE_QUIET_MS = 2_000
/** ...or once a record has waited this long, ms. */
const ANNOUNCE_MAX_DEFER_MS = 60_000
/** Provider records announced together (net/provide-batch.ts): lookups and streams are shared. */
const PROVIDE_BATCH = 512

export interface NodeInfo {
  peerId: string
  did: string
  multiaddrs: string[]
  api: string
}

/** A running nodus node. Build with {@link createNode}. */
export class NodusNode {
  readonly config: NodusConfig
  readonly identity: NodeIdentity
  readonly logger: Logger
  readonly libp2p: NodusLibp2p
  readonly store: ShardStore
  readonly files: FileService
  readonly shardServer: ShardServer
  readonly fileIndex: FileIndex
  /** This node's pins (the file index), their renewal, and pin grants. */
  readonly pins: PinService
  readonly watch: ManifestWatch
  readonly repairer: Repairer
  readonly trust: EigenTrust
  readonly perf: PerfMonitor
  readonly audits: AuditRecords
  readonly exchange: ReportExchange
  /** Peer faults: penalize, disconnect, ban (bans persisted in `<dataDir>/bans`). */
  readonly peerActions: PeerActions
  /** Who pays for the blocks this node keeps for others, and their quotas (`<dataDir>/accounts`). */
  readonly accounts: StorageAccounts
  /** Peers' latest verified capacity/locality reports. */
  readonly reports: ReadonlyMap<string, CapacityReport>
  readonly metrics: NodusMetrics
  readonly #api: ApiServer
  readonly #provideQueue: BatchQueue<{ cid: CID; at: number }>
  readonly #lifetime: AbortController
  /** The bulk channel (undefined when `net.bulk` is off). */
  readonly bulk: BulkChannel | undefined
  #started = false
  #did: string | undefined
  #cleanup: { stop(): Promise<void> } | undefined
  #renewTimer: NodeJS.Timeout | undefined
  #sweepTimer: NodeJS.Timeout | undefined
  #exchangeTimer: NodeJS.Timeout | undefined
  #apiUrl = ''

  constructor(parts: {
    config: NodusConfig
    identity: NodeIdentity
    logger: Logger
    libp2p: NodusLibp2p
    store: ShardStore
    files: FileService
    shardServer: ShardServer
    fileIndex: FileIndex
    pins: PinService
    watch: ManifestWatch
    repairer: Repairer
    trust: EigenTrust
    perf: PerfMonitor
    audits: AuditRecords
    exchange: ReportExchange
    peerActions: PeerActions
    accounts: StorageAccounts
    reports: ReadonlyMap<string, CapacityReport>
    metrics: NodusMetrics
    api: ApiServer
    provideQueue: BatchQueue<{ cid: CID; at: number }>
    lifetime: AbortController
    bulk: BulkChannel | undefined
  }) {
    this.config = parts.config
    this.identity = parts.identity
    this.logger = parts.logger
    this.libp2p = parts.libp2p
    this.store = parts.store
    this.files = parts.files
    this.shardServer = parts.shardServer
    this.fileIndex = parts.fileIndex
    this.pins = parts.pins
    this.watch = parts.watch
    this.repairer = parts.repairer
    this.bulk = parts.bulk
    this.trust = parts.trust
    this.perf = parts.perf
    this.audits = parts.audits
    this.exchange = parts.exchange
    this.peerActions = parts.peerActions
    this.accounts = parts.accounts
    this.reports = parts.reports
    this.metrics = parts.metrics
    this.#api = parts.api
    this.#provideQueue = parts.provideQueue
    this.#lifetime = parts.lifetime
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
    return this.#provideQueue.size
  }

  /** The node's DID and public keys (base64). */
  identityInfo(): { peerId: string; did: string; ed25519PublicKey: string; mldsa65PublicKey: string } {
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

  /** Announce a stored block as a provider record in the DHT (queued, bounded). */
  announce(cid: CID): void {
    try {
      this.#provideQueue.push({ cid, at: Date.now() })
    } catch (err) {
      this.logger.warn(
        { cid: cidToString(cid), code: isNodusError(err) ? err.code : 'unknown' },
        'provide queue full; skipped',
      )
    }
  }

  /**
   * Renew this node's pins on their holders (leases) and drop pins whose TTL passed. Runs every
   * `storage.renewIntervalMs`; callable directly (tests pass `now`). Never throws.
   */
  async renewPins(now = Date.now()): Promise<{ renewed: number; expired: number; failed: number }> {
    return await this.pins.renew(now)
  }

  /** Open the store, start libp2p, register protocols, dial bootstrap peers, start the API. Idempotent. */
  async start(): Promise<void> {
    if (this.#started) return
    this.#started = true
    // Before the store: its start-up recovery reports removed blocks, whose claims go too.
    this.accounts.open()
    await this.store.open()
    const rec = this.store.lastRecovery
    if (rec?.fullPass === true) {
      // A new store has no clean-shutdown marker either: warn only when the pass found something.
      const found = rec.orphansRemoved + rec.lostCount + rec.tempFilesRemoved > 0 || rec.usageCorrected
      this.logger[found ? 'warn' : 'info'](
        { orphansRemoved: rec.orphansRemoved, lost: rec.lostCount, tempFilesRemoved: rec.tempFilesRemoved },
        found
          ? 'recovered the shard store after an unclean stop'
          : 'checked the shard store: nothing to recover',
      )
    }
    this.#sweepTimer = setInterval(() => {
      void this.accounts.sweep(Date.now()).catch((err: unknown) => {
        this.logger.warn({ err: (err as Error).message }, 'storage account sweep failed')
      })
    }, this.config.storage.cleanupIntervalMs)
    this.#sweepTimer.unref()
    this.#cleanup = startExpiryCleanup(this.store, {
      intervalMs: this.config.storage.cleanupIntervalMs,
      logger: this.logger,
      onRun: (r) => {
        if ('deleted' in r && r.deleted > 0) this.logger.info(r, 'expired shards deleted')
      },
    })
    this.fileIndex.open()
    this.watch.open()
    // Bans before the first connection: the connection gater reads them.
    await this.peerActions.start()
    try {
      await this.libp2p.start()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' || /EADDRINUSE/.test(String(err))) {
        throw new NodusError(
          'PORT_IN_USE',
          `a listen address is in use: ${this.config.net.listen.join(', ')}`,
          { cause: err },
        )
      }
      throw err
    }
    await this.libp2p.handle(SHARD_PROTOCOL, this.shardServer.handler, this.shardServer.handleOptions)
    try {
      await this.bulk?.start()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new NodusError('PORT_IN_USE', `bulk port ${this.config.net.bulkPort} is in use`, { cause: err })
      }
      throw err
    }
    await this.libp2p.handle(REPORTS_PROTOCOL, this.exchange.handler, {
      maxInboundStreams: 4,
      maxOutboundStreams: 4,
    })
    this.#exchangeTimer = setInterval(() => {
      for (const p of this.libp2p.getPeers().slice(0, 64)) void this.exchange.push(p).catch(() => {})
    }, this.config.trust.exchangeIntervalMs)
    this.#exchangeTimer.unref()
    await Promise.allSettled(
      this.config.net.bootstrap.map(async (addr) => {
        try {
          await this.libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) })
        } catch (err) {
          this.logger.warn({ addr, err: (err as Error).message }, 'bootstrap dial failed')
        }
      }),
    )
    this.#apiUrl = await this.#api.listen(this.config.api.host, this.config.api.port)
    this.repairer.start()
    this.#renewTimer = setInterval(() => {
      void this.renewPins().then((r) => {
        if (r.renewed + r.expired + r.failed > 0) this.logger.info(r, 'pins renewed')
      })
    }, this.config.storage.renewIntervalMs)
    this.#renewTimer.unref()
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

  /** Stop in reverse order: API, provide queue, libp2p, store. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    await this.#api.close()
    clearInterval(this.#renewTimer)
    clearInterval(this.#exchangeTimer)
    await this.repairer.stop()
    this.#lifetime.abort(new Error('node stopping'))
    await this.#provideQueue.stop()
    await this.bulk?.stop()
    await this.libp2p.stop()
    await this.peerActions.stop()
    await this.fileIndex.close()
    await this.watch.close()
    clearInterval(this.#sweepTimer)
    await this.#cleanup?.stop()
    await this.store.close()
    await this.accounts.close()
    await rm(join(this.config.dataDir, RUN_FILE), { force: true })
    this.logger.info({}, 'node stopped')
  }
}

/** The bulk listener's host: that of the first /ip4 listen address, else loopback. */
function bulkHost(listen: readonly string[]): string {
  for (const addr of listen) {
    const m = /^\/ip4\/([0-9.]+)\//.exec(addr)
    if (m?.[1] !== undefined) return m[1]
  }
  return '127.0.0.1'
}

/** Resolve once `cond()` holds (checked every 200 ms) or after `maxWaitMs`; reject when `signal` aborts. */
async function waitUntil(cond: () => boolean, maxWaitMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + maxWaitMs
  while (!cond() && Date.now() < deadline) {
    signal.throwIfAborted()
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 200)
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t)
          resolve()
        },
        { once: true },
      )
    })
  }
  signal.throwIfAborted()
}

/** Peers we are connected to that speak the shard protocol, sorted by PeerId string. */
function shardPeers(libp2p: NodusLibp2p, protocolsOf: Map<string, boolean>): PeerId[] {
  return libp2p
    .getPeers()
    .filter((p) => protocolsOf.get(p.toString()) !== false)
    .sort((a, b) => (a.toString() < b.toString() ? -1 : 1))
}

/**
 * Build a node from config: load keys, create the store, libp2p host, shard protocol, file service and
 * API. Throws KEYS_MISSING if `nodus init` was not run for this data directory.
 */
export async function createNode(
  config: NodusConfig,
  options: { logger?: Logger; onRepairEvent?: (e: RepairEvent) => void } = {},
): Promise<NodusNode> {
  const logger =
    options.logger ?? createLogger(config.log.level, config.log.file === '' ? 2 : config.log.file)
  const identity = await loadIdentity(config.dataDir)
  const metrics = new NodusMetrics()
  const store = new ShardStore(
    {
      logger: logger.child({ area: 'store' }),
      metrics,
      // A block left the store (expired, deleted, found lost or corrupt): its claims go with it, and
      // the keepers of the manifests it belongs to hear of a lost copy at once.
      onRemoved: (cid, _size, reason) => {
        if (reason === 'lost' || reason === 'corrupt') tellKeepers(cid)
        void accounts.removeBlock(cid).catch(() => {})
      },
    },
    {
      dir: join(config.dataDir, 'shards'),
      capacityBytes: config.storage.capacityBytes,
      maxShardBytes: config.storage.maxShardBytes,
      cacheBytes: config.storage.cacheBytes,
      minFreeDiskBytes: config.storage.minFreeDiskBytes,
    },
  )
  // Banned peers are refused both ways by the connection gater (peer actions are built below).
  let isBanned: (peer: string) => boolean = () => false
  const libp2p = await createHost(
    identity.ed25519,
    {
      ...DEFAULT_HOST_OPTIONS,
      listen: config.net.listen,
      dhtProtocol: config.net.dhtProtocol,
      maxConnections: config.net.maxConnections,
      encrypter: config.net.encrypter,
    },
    { isBanned: (peer) => isBanned(peer) },
  )
  const netLog = logger.child({ area: 'net' })
  // Remember which peers speak the shard protocol (learned by identify).
  const protocolsOf = new Map<string, boolean>()
  libp2p.addEventListener('peer:identify', (evt) => {
    protocolsOf.set(evt.detail.peerId.toString(), evt.detail.protocols.includes(SHARD_PROTOCOL))
  })
  libp2p.addEventListener('peer:disconnect', (evt) => {
    protocolsOf.delete(evt.detail.toString())
  })

  // Provider records are announced in the background, one at a time, and only once this node has
  // served no shard request for ANNOUNCE_QUIET_MS (or the record has waited ANNOUNCE_MAX_DEFER_MS):
  // announcing is many small DHT RPCs, and on a busy node they would compete with the transfers
  // they describe. (Measured on a 16-process devnet: announcing during a put cut it from 28 to 6 MB/s.)
  const lifetime = new AbortController()
  let shardServer: ShardServer | undefined
  const watch = new ManifestWatch(join(config.dataDir, 'watch'))
  // Trust and performance, learned from this node's own transfers (trust-vector gossip: not yet).
  const self = identity.peerId.toString()
  const perf = new PerfMonitor({ clock: Date })
  const trust = new EigenTrust({ preTrusted: config.trust.preTrusted })
  // Peers pay for their faults (docs/ERRORS.md, "What each code does to the peer").
  const peerActions = new PeerActions(
    {
      self,
      clock: Date,
      trust,
      perf,
      disconnect: async (peer) => {
        await libp2p.hangUp(peerIdFromString(peer))
      },
      bans: new LmdbBanStore(join(config.dataDir, 'bans')),
      logger: logger.child({ area: 'trust' }),
      metrics,
    },
    {
      banMs: config.trust.banMs,
      rejectWindowMs: config.trust.rejectWindowMs,
      rejectsToDisconnect: config.trust.rejectsToDisconnect,
      maxBans: config.trust.maxBans,
    },
  )
  isBanned = (peer) => peerActions.isBanned(peer)
  let trustComputedAt = 0
  const trustScore = (peer: string): number => {
    if (Date.now() - trustComputedAt > 10_000) {
      trust.compute()
      trustComputedAt = Date.now()
    }
    return trust.score(peer)
  }
  // Peers' latest capacity/locality reports, and what we saw them do (to check the reports).
  const reports = new Map<string, CapacityReport>()
  const refusals = new Map<string, { atMs: number; bytes: number }[]>()
  const accepted = new Map<string, { atMs: number; bytes: number }[]>()
  const remember = (m: Map<string, { atMs: number; bytes: number }[]>, peer: string, bytes: number): void => {
    const list = m.get(peer) ?? []
    list.push({ atMs: Date.now(), bytes })
    if (list.length > 64) list.shift()
    m.set(peer, list)
    if (m.size > 10_000) m.delete(m.keys().next().value as string)
  }
  const popularity = new Popularity()
  const rng = mulberry32(Number.parseInt(self.slice(-8), 36))
  // A manifest block committed here by its uploader (or placed by a keeper): this node is now one of
  // its keepers.
  const watchIfManifest = async (cid: CID): Promise<void> => {
    // Already kept: no need to decode and verify it again (each commit or repair order names it).
    if (watch.has(cidToString(cid))) return
    try {
      decodeManifest(await store.get(cid), cid)
      await watch.add(cidToString(cid), Date.now())
    } catch {
      // not a manifest (or not valid): nothing to watch
    }
  }
  // Who pays for what this node keeps for others (storage orders, commits, pins, quotas scaled by trust).
  const accounts = new StorageAccounts(
    {
      trust: (peer) => {
        if (config.trust.preTrusted.includes(peer)) return 1
        // Standing above the average (score 1/N): none for an average peer or a stranger (EigenTrust
        // gives a peer nobody vouches for about the average), all of it at four times the average.
        const relative = trustScore(peer) * (libp2p.getPeers().length + 1)
        return Math.min(1, Math.max(0, (relative - 1) / 3))
      },
    },
    {
      path: join(config.dataDir, 'accounts'),
      quotaBytes: config.storage.quotaBytes,
      quotaShards: config.storage.quotaShards,
      quotaTrustMultiplier: config.storage.quotaTrustMultiplier,
    },
  )
  const holderPolicy = new HolderPolicy(
    {
      self,
      accounts,
      store,
      clock: Date,
      onManifestCommitted: (cid) => watchIfManifest(cid),
      // Extra parity only for the manifest's uploader (or a pinner it granted): a keeper checks.
      onCriticalPin: async (cid, expiresAt, by) => {
        const key = cidToString(cid)
        if (!watch.has(key) || !store.has(cid)) return
        const signed = decodeManifest(await store.get(cid), cid)
        if (by.includes(signed.manifest.uploader.peerId)) await watch.markCritical(key, expiresAt)
      },
    },
    { maxLeaseMs: config.storage.maxLeaseMs, provisionalLeaseMs: config.storage.provisionalLeaseMs },
  )
  const provideDeps = provideBatchDepsFor(libp2p, config.net.dhtProtocol, DEFAULT_HOST_OPTIONS.dhtKBucketSize)
  const provideQueue = new BatchQueue<{ cid: CID; at: number }>(
    async (items) => {
      const signal = lifetime.signal
      if (provideDeps === undefined) {
        // kad-dht's internals differ from 16.x: one provide per key, as kad-dht does it.
        for (const { cid } of items) {
          using deadline = withDeadline(signal, 30_000, 'provide')
          await libp2p.contentRouting
            .provide(cid, { signal: deadline.signal })
            .catch((err: unknown) =>
              netLog.debug({ cid: cidToString(cid), err: (err as Error).message }, 'provide failed'),
            )
        }
        return
      }
      const r = await announceBatch(
        provideDeps,
        items.map((i) => i.cid),
        signal,
      )
      metrics.providerRecords.inc(r.records)
      metrics.providerLookups.inc(r.lookups)
      netLog.debug(r, 'provider records announced')
    },
    {
      batchSize: PROVIDE_BATCH,
      maxPending: 100_000,
      gate: async ({ at }, signal) => {
        // Quiet: no shard served for ANNOUNCE_QUIET_MS and no put or get of this node's own running.
        const quiet = (): boolean =>
          files.transfers === 0 &&
          (shardServer === undefined ||
            (shardServer.inFlight === 0 && Date.now() - shardServer.lastActivityMs > ANNOUNCE_QUIET_MS))
        await waitUntil(quiet, at + ANNOUNCE_MAX_DEFER_MS - Date.now(), signal)
      },
      onError: (err, items) =>
        netLog.debug({ keys: items.length, err: (err as Error).message }, 'provide batch failed'),
    },
  )

  // The bulk channel carries shard bytes over direct TLS sockets keyed through libp2p.
  const bulk =
    config.net.bulk === 'on'
      ? new BulkChannel(
          {
            handle: (protocol, handler, o) => libp2p.handle(protocol, handler, o),
            dialProtocol: (peer, protocol, o) => libp2p.dialProtocol(peer, protocol, o),
            remoteHost: (peer) => {
              for (const c of libp2p.getConnections(peer)) {
                if (c.status !== 'open') continue
                // Only a direct IP connection (not a relay or memory address) leads to the peer's host.
                const [first, second] = c.remoteAddr.getComponents()
                if ((first?.name === 'ip4' || first?.name === 'ip6') && second?.name === 'tcp')
                  return first.value
              }
              return undefined
            },
            handler: (request, reply, signal) => {
              if (shardServer === undefined) throw new NodusError('NOT_STARTED', 'shard server not ready')
              return shardServer.bulkHandler(request, reply, signal)
            },
            logger: netLog,
            clock: systemClock,
            // Aligned put bodies: the shard store writes them with direct I/O as they are.
            allocateBody: directIoAvailable() ? allocAligned : undefined,
            isBanned: (peer) => peerActions.isBanned(peer.toString()),
            onPeerError: (peer, err) => peerActions.report(peer.toString(), err),
          },
          { ...DEFAULT_BULK_OPTIONS, host: bulkHost(config.net.listen), port: config.net.bulkPort },
        )
      : undefined
  const shardClient = new ShardClient(
    {
      dialProtocol: (peer, protocol, o) => libp2p.dialProtocol(peer, protocol, o),
      ...(bulk === undefined ? {} : { bulk }),
    },
    { requestTimeoutMs: config.net.requestTimeoutMs, maxShardBytes: config.storage.maxShardBytes },
  )
  // This node lost its copy of `cid` (missing or corrupt on disk): tell the keepers of every manifest
  // its claims name (the XOR-closest shard peers to the manifest CID), so they repair without waiting
  // for an audit. Best effort: audits find it anyway.
  const tellKeepers = (cid: string): void => {
    const manifests = new Set<string>()
    for (const { claim } of accounts.claims(cid))
      if (claim.manifest !== undefined) manifests.add(claim.manifest)
    const peers = shardPeers(libp2p, protocolsOf)
    const byId = new Map(peers.map((p) => [p.toString(), p]))
    for (const m of manifests) {
      const manifest = parseCid(m)
      const keepers = responsibleFor(manifest.bytes, [...byId.keys()], config.storage.manifestReplicas)
      for (const k of keepers) {
        const peer = byId.get(k)
        if (peer === undefined) continue
        // The client applies its request timeout; the node's lifetime cancels it on stop.
        void shardClient.dropped(peer, manifest, [parseCid(cid)], { signal: lifetime.signal }).catch(() => {})
      }
    }
  }
  // Holder updates offered by peers: only the uploader or a peer responsible for the manifest (the
  // 2 × manifestReplicas closest to its CID among this node and its shard peers) may sign one.
  const updateInbox = new HolderUpdateInbox(
    {
      store,
      watch,
      responsible: (cid) =>
        responsibleFor(
          cid.bytes,
          [self, ...shardPeers(libp2p, protocolsOf).map((p) => p.toString())],
          config.storage.manifestReplicas,
        ),
      onRefused: (signer) => trust.recordInteraction(self, signer, 'shard-bad'),
      clock: Date,
      logger: logger.child({ area: 'repair' }),
    },
    DEFAULT_HOLDER_UPDATE_INBOX_OPTIONS,
  )
  let node: NodusNode | undefined
  shardServer = new ShardServer(
    {
      store,
      clock: systemClock,
      peerId: identity.peerId.toString(),
      sign: async (data) => signEd25519(identity.ed25519, data),
      policy: holderPolicy,
      onStored: (cid) => node?.announce(cid),
      // A holder says it lost its copies: a keeper of the manifest repairs them in its next round.
      onDropped: (peer, manifest, cids) => {
        if (!watch.has(cidToString(manifest))) return
        for (const c of cids) repairer.markBad(peer, cidToString(c))
      },
      updates: {
        latest: (cid, requester) => {
          const key = cidToString(cid)
          const latest = watch.latest(key)
          // Every get asks the closest keepers for the latest update: that is our read counter
          // (each requester counts once per hour, so one peer cannot buy extra parity).
          if (latest !== undefined) popularity.record(key, Date.now(), requester)
          return latest?.update
        },
        // Checked (signature, authority, revision step, applies to the manifest) before it is kept.
        offer: (cid, bytes) => updateInbox.offer(cid, bytes),
      },
      peers: {
        isBanned: (peer) => peerActions.isBanned(peer),
        onPeerError: (peer, err) => peerActions.report(peer, err),
      },
      logger: logger.child({ area: 'shard' }),
      metrics,
    },
    {
      ...DEFAULT_SHARD_SERVER_OPTIONS,
      maxShardBytes: config.storage.maxShardBytes,
      maxRequestsPerPeer: config.net.maxRequestsPerPeer,
      maxRequestsPerSubnet: config.net.maxRequestsPerSubnet,
      subnetExempt: config.net.subnetExempt,
      minTransferBytesPerSec: config.net.minTransferBytesPerSec,
    },
  )
  const files = new FileService(
    {
      selfPeerId: identity.peerId.toString(),
      store,
      clock: systemClock,
      client: shardClient,
      signEd25519: (data) => signEd25519(identity.ed25519, data),
      peers: {
        candidates: () => shardPeers(libp2p, protocolsOf),
        findProviders: async function* (cid, o) {
          for await (const p of libp2p.contentRouting.findProviders(cid, o)) yield p.id
        },
        provide: (cid, o) => libp2p.contentRouting.provide(cid, o),
      },
      sign: (msg) => signHybrid(identity, msg),
      publicKey: hybridPublicKey(identity),
      updates: { latest: (cid) => watch.latest(cidToString(cid))?.update },
      onManifestStored: (cid) => void watch.add(cidToString(cid), Date.now()).catch(() => {}),
      onCriticalPin: async (cid, expiresAt) => {
        await watch.markCritical(cidToString(cid), expiresAt)
      },
      observer: {
        transfer: (peer, op, o) => {
          // A fault of the peer's (CID_MISMATCH, SIGNATURE_INVALID, PROTOCOL_ERROR...): peer actions
          // penalize (trust and performance), disconnect or ban. Other outcomes are recorded here.
          const effect =
            o.peerAction === undefined
              ? 'none'
              : peerActions.apply(peer, o.peerAction, { code: o.code ?? '' })
          if (effect === 'none' || effect === 'ignore') {
            perf.record(peer, { ok: o.ok, latencyMs: o.ms, bytes: o.bytes, durationMs: o.ms })
            trust.recordInteraction(
              self,
              peer,
              o.ok ? (op === 'get' ? 'shard-served' : 'shard-stored') : 'timeout',
            )
          }
          if (op === 'put' && o.ok) remember(accepted, peer, o.bytes)
          if (op === 'put' && o.code === 'STORE_FULL') {
            remember(refusals, peer, 16 * 1024 * 1024)
            const report = reports.get(peer)
            if (report !== undefined) {
              const check = checkReport(
                report,
                { refusals: refusals.get(peer) ?? [], accepted: accepted.get(peer) ?? [] },
                { nowMs: Date.now() },
              )
              if (!check.consistent && !check.stale)
                trust.recordInteraction(self, peer, 'report-inconsistent')
            }
          }
        },
      },
      // Scored placement (issue 5): w = trust^a · performance^b · capacity^c · diversity. Free capacity,
      // region and network come from peers' signed capacity reports; a peer that sent none counts as
      // roomy and in region 'unknown'.
      place: (candidates, n, _segment, shardBytes) => {
        const cands = candidates.map((id) => ({
          id,
          trust: trustScore(id),
          performance: perf.score(id),
          freeBytes: reports.get(id)?.freeBytes ?? Number.MAX_SAFE_INTEGER,
          region: reports.get(id)?.region ?? 'unknown',
          network: reports.get(id)?.networks[0] ?? 'unknown',
        }))
        return placeScored(cands, n, { minFreeBytes: shardBytes }, rng).map((i) => cands[i]?.id as string)
      },
      logger: logger.child({ area: 'files' }),
      metrics,
    },
    {
      ...DEFAULT_FILE_OPTIONS,
      k: config.storage.k,
      m: config.storage.m,
      segmentSize: config.storage.segmentSize,
      segmentsInFlight: config.storage.segmentsInFlight,
      manifestReplicas: config.storage.manifestReplicas,
      leaseMs: config.storage.leaseMs,
    },
  )
  // Signed trust vectors and capacity reports, pushed to peers (trust.exchangeIntervalMs).
  const signer = { peerId: identity.peerId, ed25519: identity.ed25519 }
  const exchange = new ReportExchange({
    trustInbox: new TrustVectorInbox({ clock: Date }),
    capacityInbox: new CapacityReportInbox({ clock: Date }),
    onTrustVector: (issuer, entries) => {
      if (issuer !== self) trust.setLocalTrust(issuer, entries)
    },
    onCapacityReport: (r) => {
      reports.set(r.peer, r)
      if (reports.size > 10_000) reports.delete(reports.keys().next().value as string)
    },
    // Signed afresh for every push (two Ed25519 signatures); seq is the time, so it only grows.
    ownMessages: async () => {
      const now = Date.now()
      const u = store.usage()
      const row = trust.localTrust().get(self) ?? new Map<string, number>()
      const tv = await signTrustVector(trustVectorFromLocalTrust(self, now, now, row), signer)
      const cr = await signCapacityReport(
        {
          peer: self,
          seq: now,
          timestampMs: now,
          freeBytes: u.freeBytes,
          capacityBytes: u.capacityBytes,
          region: config.trust.region,
          networks: config.trust.networks,
        },
        signer,
      )
      return { trust: tv.bytes, capacity: cr.bytes }
    },
    dialProtocol: (peer, protocol, o) => libp2p.dialProtocol(peer, protocol, o),
    logger: netLog,
    onPeerError: (peer, err) => peerActions.report(peer, err, 'report-inconsistent'),
  })
  libp2p.addEventListener('peer:identify', (evt) => {
    if (evt.detail.protocols.includes(REPORTS_PROTOCOL)) void exchange.push(evt.detail.peerId).catch(() => {})
  })
  const fileIndex = new FileIndex(join(config.dataDir, 'files'))
  const pins = new PinService({
    files,
    index: fileIndex,
    selfPeerId: self,
    signEd25519: (data) => signEd25519(identity.ed25519, data),
    clock: systemClock,
    logger,
  })
  const repairLog = logger.child({ area: 'repair' })
  const audits = new AuditRecords({ clock: Date })
  const repairer = new Repairer(
    {
      selfPeerId: identity.peerId.toString(),
      files,
      client: shardClient,
      store,
      watch,
      parityTarget: (signed) => {
        const key = cidToString(signed.cid)
        const now = Date.now()
        return parityFor(
          {
            k: signed.manifest.k,
            baseM: signed.manifest.m,
            critical: watch.isCritical(key, now),
            popularity: popularity.count(key, now),
          },
          {
            criticalExtra: config.repair.criticalExtraParity,
            readsPerStep: config.repair.readsPerParityStep,
            maxPopularityExtra: config.repair.maxPopularityExtraParity,
            maxParity: config.repair.maxParity,
          },
        )
      },
      connected: () => libp2p.getPeers().map((p) => p.toString()),
      sign: (msg) => signHybrid(identity, msg),
      publicKey: hybridPublicKey(identity),
      clock: Date,
      random: { bytes: (n) => randomBytes(n), next: () => Math.random() },
      onUnanswered: (peer) => {
        perf.record(peer, { ok: false })
        trust.recordInteraction(self, peer, 'timeout')
      },
      onAudit: (peer, result) => {
        audits.record(peer, result)
        metrics.audits.inc({ result })
        // A failed audit is a reject (docs/ERRORS.md): penalized, disconnected when repeated.
        if (result === 'fail')
          peerActions.apply(peer, 'reject', { code: 'AUDIT_FAILED', kind: 'audit-failed' })
        else trust.recordInteraction(self, peer, result === 'pass' ? 'audit-passed' : 'timeout')
      },
      logger: repairLog,
      metrics,
      onEvent: (e: RepairEvent) => {
        if (e.type !== 'round') repairLog.info(e, `repair ${e.type}`)
        options.onRepairEvent?.(e)
      },
    },
    {
      ...DEFAULT_REPAIR_OPTIONS,
      intervalMs: config.repair.intervalMs,
      graceMs: config.repair.graceMs,
      thresholdMargin: config.repair.thresholdMargin,
      maxRepairsPerRound: config.repair.maxRepairsPerRound,
      auditsPerRound: config.repair.auditsPerRound,
    },
  )
  const token = await readApiToken(config.dataDir)
  const api = createApiServer(
    {
      token,
      logger: logger.child({ area: 'api' }),
      routes: [
        nodeRoutes({ identity, libp2p, store, shardServer, provideQueue }),
        netRoutes({ libp2p, trust, perf }),
        storageRoutes({ store, files, pins }),
      ],
      metrics,
    },
    {
      mutatingPerMinute: config.api.mutatingPerMinute,
      unauthenticatedPerMinute: config.api.unauthenticatedPerMinute,
      allowedHosts: config.api.allowedHosts,
      maxUploadBytes: config.api.maxUploadBytes,
    },
  )
  metrics.attach({
    storage: () => store.usage(),
    connections: () => libp2p.getConnections().length,
    provideQueueDepth: () => provideQueue.size,
    shardRequestsInFlight: () => shardServer?.inFlight ?? 0,
    bannedPeers: () => peerActions.bannedCount,
  })
  node = new NodusNode({
    config,
    identity,
    logger,
    libp2p,
    store,
    files,
    shardServer,
    fileIndex,
    pins,
    watch,
    repairer,
    trust,
    perf,
    audits,
    exchange,
    peerActions,
    accounts,
    reports,
    metrics,
    api,
    provideQueue,
    lifetime,
    bulk,
  })
  return node
}
