/**
 * The storage area's factory (the composition seam of docs/ARCHITECTURE.md): the shard store, the
 * shard protocol's server and client, the file service (put, get, pin), the keeper's repair and audit
 * rounds, the holder's accounts and policy, and the provider records of stored blocks. The policy that
 * joins them lives here, not in the composition root:
 *
 * - where shards go (scored placement from the trust area's scores and peers' capacity reports);
 * - which stored blocks are manifests to keep (committed by their uploader, or placed by a keeper);
 * - who may sign a holder update (the uploader or a peer responsible for the manifest);
 * - how much parity each kept file gets (critical pins, popularity);
 * - who hears of a lost copy (the keepers of its manifests);
 * - when provider records are announced (provide.ts).
 */
import { join } from 'node:path'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { mulberry32 } from '../common/prng.ts'
import { hybridPublicKey, signEd25519, signHybrid } from '../crypto/index.ts'
import { cidToString, parseCid } from './codec/cid.ts'
import type {
  Storage,
  StorageAreaOptions,
  StorageComponents,
  StorageStore,
  StorageStoreDeps,
} from './components.ts'
import { FileIndex } from './files/file-index.ts'
import { DEFAULT_FILE_OPTIONS, FileService } from './files/files.ts'
import { decodeManifest } from './files/manifest.ts'
import { PinService } from './files/pins-service.ts'
import { AuditRecords } from './keeper/audit-records.ts'
import { DEFAULT_HOLDER_UPDATE_INBOX_OPTIONS, HolderUpdateInbox } from './keeper/holder-update-inbox.ts'
import { ManifestWatch } from './keeper/manifest-watch.ts'
import { Popularity } from './keeper/popularity.ts'
import { parityFor } from './keeper/redundancy.ts'
import { DEFAULT_REPAIR_OPTIONS, type RepairEvent, Repairer } from './keeper/repair.ts'
import { responsibleFor } from './keeper/responsibility.ts'
import { placeScored } from './placement/placement-scored.ts'
import { StorageAccounts } from './protocol/accounts.ts'
import { HolderPolicy } from './protocol/holder-policy.ts'
import { Provider } from './protocol/provide.ts'
import { ShardClient } from './protocol/shard-client.ts'
import { SHARD_PROTOCOL } from './protocol/shard-messages.ts'
import { DEFAULT_SHARD_SERVER_OPTIONS, ShardServer } from './protocol/shard-server.ts'
import { ShardStore, startExpiryCleanup } from './store/shard-store.ts'

/**
 * Build the storage area. `beforeStart` opens its stores on disk (recovering after an unclean stop);
 * `start` registers `/nodus/shard/1.0.0`, serves the bulk channel and starts the repair rounds;
 * `beforeStop` stops the rounds and the provider queue; `afterStop` closes the stores.
 * The shard store is a `ShardStore` at `<dataDir>/shards`, or what `components.createStore` builds.
 */
export function createStorage(components: StorageComponents, options: StorageAreaOptions): Storage
export function createStorage<S extends StorageStore>(
  components: StorageComponents<S> & { createStore(deps: StorageStoreDeps): S },
  options: StorageAreaOptions,
): Storage<S>
export function createStorage(
  components: StorageComponents<StorageStore>,
  options: StorageAreaOptions,
): Storage<StorageStore> {
  const { clock, identity, trust, net, host, metrics, dataDir } = components
  const o = options.storage
  const logger = components.logger
  const self = identity.peerId.toString()
  const shardPeers = (): PeerId[] => net.peersSpeaking(SHARD_PROTOCOL)
  const popularity = new Popularity()
  const watch = new ManifestWatch(join(dataDir, 'watch'))
  const fileIndex = new FileIndex(join(dataDir, 'files'))
  const audits = new AuditRecords({ clock })
  // Who pays for what this node keeps for others (storage orders, commits, pins, quotas scaled by trust).
  const accounts = new StorageAccounts(
    { trust: (peer) => trust.standing(peer, host.getPeers().length + 1) },
    {
      path: join(dataDir, 'accounts'),
      quotaBytes: o.quotaBytes,
      quotaShards: o.quotaShards,
      quotaTrustMultiplier: o.quotaTrustMultiplier,
    },
  )
  const createStore =
    components.createStore ??
    ((deps: StorageStoreDeps): StorageStore =>
      new ShardStore(
        { logger: logger.child({ area: 'store' }), clock: deps.clock, metrics, onRemoved: deps.onRemoved },
        {
          dir: join(dataDir, 'shards'),
          capacityBytes: o.capacityBytes,
          maxShardBytes: o.maxShardBytes,
          cacheBytes: o.cacheBytes,
          minFreeDiskBytes: o.minFreeDiskBytes,
        },
      ))
  const store = createStore({
    clock,
    // A block left the store (expired, deleted, found lost or corrupt): its claims go with it, and
    // the keepers of the manifests it belongs to hear of a lost copy at once.
    onRemoved: (cid, _size, reason) => {
      if (reason === 'lost' || reason === 'corrupt') tellKeepers(cid)
      void accounts.removeBlock(cid).catch(() => {})
    },
  })
  const tuning = options.tuning ?? {}
  const shardClient = new ShardClient(
    {
      dialProtocol: (peer, protocol, opts) => host.dialProtocol(peer, protocol, opts),
      ...(net.bulk === undefined ? {} : { bulk: net.bulk }),
    },
    { requestTimeoutMs: options.net.requestTimeoutMs, maxShardBytes: o.maxShardBytes },
  )
  const lifetime = new AbortController()
  // This node lost its copy of `cid` (missing or corrupt on disk): tell the keepers of every manifest
  // its claims name (the XOR-closest shard peers to the manifest CID), so they repair without waiting
  // for an audit. Best effort: audits find it anyway.
  const tellKeepers = (cid: string): void => {
    const manifests = new Set<string>()
    for (const { claim } of accounts.claims(cid))
      if (claim.manifest !== undefined) manifests.add(claim.manifest)
    const byId = new Map(shardPeers().map((p) => [p.toString(), p]))
    for (const m of manifests) {
      const manifest = parseCid(m)
      for (const k of responsibleFor(manifest.bytes, [...byId.keys()], o.manifestReplicas)) {
        const peer = byId.get(k)
        if (peer === undefined) continue
        // The client applies its request timeout; the lifetime cancels it on stop.
        void shardClient.dropped(peer, manifest, [parseCid(cid)], { signal: lifetime.signal }).catch(() => {})
      }
    }
  }
  // A manifest block committed here by its uploader (or placed by a keeper): this node is now one of
  // its keepers.
  const watchIfManifest = async (cid: CID): Promise<void> => {
    // Already kept: no need to decode and verify it again (each commit or repair order names it).
    if (watch.has(cidToString(cid))) return
    try {
      decodeManifest(await store.get(cid), cid)
      await watch.add(cidToString(cid), clock.now())
    } catch {
      // not a manifest (or not valid): nothing to watch
    }
  }
  const holderPolicy = new HolderPolicy(
    {
      self,
      accounts,
      store,
      clock,
      onManifestCommitted: (cid) => watchIfManifest(cid),
      // Extra parity only for the manifest's uploader (or a pinner it granted): a keeper checks.
      onCriticalPin: async (cid, expiresAt, by) => {
        const key = cidToString(cid)
        if (!watch.has(key) || !store.has(cid)) return
        const signed = decodeManifest(await store.get(cid), cid)
        if (by.includes(signed.manifest.uploader.peerId)) await watch.markCritical(key, expiresAt)
      },
    },
    { maxLeaseMs: o.maxLeaseMs, provisionalLeaseMs: o.provisionalLeaseMs },
  )
  // Holder updates offered by peers: only the uploader or a peer responsible for the manifest (the
  // 2 × manifestReplicas closest to its CID among this node and its shard peers) may sign one.
  const updateInbox = new HolderUpdateInbox(
    {
      store,
      watch,
      responsible: (cid) =>
        responsibleFor(cid.bytes, [self, ...shardPeers().map((p) => p.toString())], o.manifestReplicas),
      onRefused: (signer) => trust.refused(signer),
      clock,
      logger: logger.child({ area: 'repair' }),
    },
    DEFAULT_HOLDER_UPDATE_INBOX_OPTIONS,
  )
  // Scored placement (issue 5): w = trust^a · performance^b · capacity^c · diversity. Free capacity,
  // region and network come from peers' signed capacity reports; a peer that sent none counts as
  // roomy and in region 'unknown'.
  const rng = mulberry32(Number.parseInt(self.slice(-8), 36))
  const files = new FileService(
    {
      selfPeerId: self,
      store,
      clock,
      client: shardClient,
      signEd25519: (data) => signEd25519(identity.ed25519, data),
      peers: {
        candidates: shardPeers,
        findProviders: async function* (cid, opts) {
          for await (const p of host.contentRouting.findProviders(cid, opts)) yield p.id
        },
        provide: (cid, opts) => host.contentRouting.provide(cid, opts),
      },
      sign: (msg) => signHybrid(identity, msg),
      publicKey: hybridPublicKey(identity),
      updates: { latest: (cid) => watch.latest(cidToString(cid))?.update },
      onManifestStored: (cid) => void watch.add(cidToString(cid), clock.now()).catch(() => {}),
      onCriticalPin: async (cid, expiresAt) => {
        await watch.markCritical(cidToString(cid), expiresAt)
      },
      observer: trust.observer,
      place: (candidates, n, _segment, shardBytes) => {
        const cands = candidates.map((id) => ({
          id,
          trust: trust.score(id),
          performance: trust.perf.score(id),
          freeBytes: trust.reports.get(id)?.freeBytes ?? Number.MAX_SAFE_INTEGER,
          region: trust.reports.get(id)?.region ?? 'unknown',
          network: trust.reports.get(id)?.networks[0] ?? 'unknown',
        }))
        return placeScored(cands, n, { minFreeBytes: shardBytes }, rng).map((i) => cands[i]?.id as string)
      },
      logger: logger.child({ area: 'files' }),
      metrics,
    },
    {
      ...DEFAULT_FILE_OPTIONS,
      k: o.k,
      m: o.m,
      segmentSize: o.segmentSize,
      segmentsInFlight: o.segmentsInFlight,
      manifestReplicas: o.manifestReplicas,
      leaseMs: o.leaseMs,
      hedgeDelayMs: tuning.hedgeDelayMs ?? DEFAULT_FILE_OPTIONS.hedgeDelayMs,
      dhtTimeoutMs: tuning.dhtTimeoutMs ?? DEFAULT_FILE_OPTIONS.dhtTimeoutMs,
    },
  )
  const provider = new Provider({
    batch: net.provideBatch,
    provide: (cid, opts) => host.contentRouting.provide(cid, opts),
    activity: () => ({
      transfers: files.transfers,
      inFlight: shardServer.inFlight,
      lastActivityMs: shardServer.lastActivityMs,
    }),
    clock,
    logger: logger.child({ area: 'net' }),
    metrics,
  })
  const shardServer = new ShardServer(
    {
      store,
      clock,
      peerId: self,
      sign: async (data) => signEd25519(identity.ed25519, data),
      policy: holderPolicy,
      onStored: (cid) => provider.announce(cid),
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
          if (latest !== undefined) popularity.record(key, clock.now(), requester)
          return latest?.update
        },
        // Checked (signature, authority, revision step, applies to the manifest) before it is kept.
        offer: (cid, bytes) => updateInbox.offer(cid, bytes),
      },
      peers: {
        isBanned: (peer) => trust.peerActions.isBanned(peer),
        onPeerError: (peer, err) => trust.peerActions.report(peer, err),
      },
      logger: logger.child({ area: 'shard' }),
      metrics,
    },
    {
      ...DEFAULT_SHARD_SERVER_OPTIONS,
      maxConcurrentRequests:
        tuning.maxConcurrentRequests ?? DEFAULT_SHARD_SERVER_OPTIONS.maxConcurrentRequests,
      maxShardBytes: o.maxShardBytes,
      maxRequestsPerPeer: options.net.maxRequestsPerPeer,
      maxRequestsPerSubnet: options.net.maxRequestsPerSubnet,
      subnetExempt: [...options.net.subnetExempt],
      minTransferBytesPerSec: options.net.minTransferBytesPerSec,
    },
  )
  const pins = new PinService({
    files,
    index: fileIndex,
    selfPeerId: self,
    signEd25519: (data) => signEd25519(identity.ed25519, data),
    clock,
    logger,
  })
  const r = options.repair
  const repairLog = logger.child({ area: 'repair' })
  const repairer = new Repairer(
    {
      selfPeerId: self,
      files,
      client: shardClient,
      store,
      watch,
      parityTarget: (signed) => {
        const key = cidToString(signed.cid)
        const now = clock.now()
        return parityFor(
          {
            k: signed.manifest.k,
            baseM: signed.manifest.m,
            critical: watch.isCritical(key, now),
            popularity: popularity.count(key, now),
          },
          {
            criticalExtra: r.criticalExtraParity,
            readsPerStep: r.readsPerParityStep,
            maxPopularityExtra: r.maxPopularityExtraParity,
            maxParity: r.maxParity,
          },
        )
      },
      connected: () => host.getPeers().map((p) => p.toString()),
      sign: (msg) => signHybrid(identity, msg),
      publicKey: hybridPublicKey(identity),
      clock,
      random: components.random,
      onUnanswered: (peer) => trust.observer.unanswered(peer),
      onAudit: (peer, result) => {
        audits.record(peer, result)
        metrics.audits.inc({ result })
        trust.observer.audit(peer, result)
      },
      logger: repairLog,
      metrics,
      onEvent: (e: RepairEvent) => {
        if (e.type !== 'round') repairLog.info(e, `repair ${e.type}`)
        components.onRepairEvent?.(e)
      },
    },
    {
      ...DEFAULT_REPAIR_OPTIONS,
      intervalMs: r.intervalMs,
      graceMs: r.graceMs,
      thresholdMargin: r.thresholdMargin,
      maxRepairsPerRound: r.maxRepairsPerRound,
      auditsPerRound: r.auditsPerRound,
    },
  )
  let cleanup: { stop(): Promise<void> } | undefined
  let sweepTimer: NodeJS.Timeout | undefined
  let renewTimer: NodeJS.Timeout | undefined
  let opened = false
  let started = false
  return {
    store,
    files,
    shardServer,
    shardClient,
    fileIndex,
    watch,
    repairer,
    audits,
    accounts,
    provider,
    pins,
    shardPeers,
    beforeStart: async () => {
      if (opened) return
      opened = true
      // Before the store: its start-up recovery reports removed blocks, whose claims go too.
      accounts.open()
      await store.open()
      const rec = store.lastRecovery
      if (rec?.fullPass === true) {
        // A new store has no clean-shutdown marker either: warn only when the pass found something.
        const found = rec.orphansRemoved + rec.lostCount + rec.tempFilesRemoved > 0 || rec.usageCorrected
        logger[found ? 'warn' : 'info'](
          { orphansRemoved: rec.orphansRemoved, lost: rec.lostCount, tempFilesRemoved: rec.tempFilesRemoved },
          found
            ? 'recovered the shard store after an unclean stop'
            : 'checked the shard store: nothing to recover',
        )
      }
      sweepTimer = setInterval(() => {
        void accounts.sweep(clock.now()).catch((err: unknown) => {
          logger.warn({ err: (err as Error).message }, 'storage account sweep failed')
        })
      }, o.cleanupIntervalMs)
      sweepTimer.unref()
      cleanup = startExpiryCleanup(store, {
        intervalMs: o.cleanupIntervalMs,
        clock,
        logger,
        onRun: (res) => {
          if ('deleted' in res && res.deleted > 0) logger.info(res, 'expired shards deleted')
        },
      })
      fileIndex.open()
      watch.open()
    },
    start: async () => {
      if (started) return
      started = true
      await host.handle(SHARD_PROTOCOL, shardServer.handler, shardServer.handleOptions)
      net.handleBulk((request, reply, signal) => shardServer.bulkHandler(request, reply, signal))
      repairer.start()
      renewTimer = setInterval(() => {
        void pins.renew(clock.now()).then((res) => {
          if (res.renewed + res.expired + res.failed > 0) logger.info(res, 'pins renewed')
        })
      }, o.renewIntervalMs)
      renewTimer.unref()
    },
    beforeStop: async () => {
      if (!started) return
      started = false
      clearInterval(renewTimer)
      await repairer.stop()
      lifetime.abort(new Error('node stopping'))
      await provider.stop()
    },
    stop: () => {},
    afterStop: async () => {
      if (!opened) return
      opened = false
      await fileIndex.close()
      await watch.close()
      clearInterval(sweepTimer)
      await cleanup?.stop()
      await store.close()
      await accounts.close()
    },
  }
}
