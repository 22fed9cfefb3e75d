/**
 * The storage area's seam (docs/ARCHITECTURE.md): what `createStorage` needs (its components,
 * each a narrow structural interface: the host, the net and trust areas' services, the shard store),
 * the config keys it reads, the internal tunings tests may set, and the services it returns. The
 * factory, `createStorage`, is area.ts.
 */
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { Clock } from '../common/clock.ts'
import type { PeerAction } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import type { Random } from '../common/random.ts'
import type { NodeIdentity } from '../crypto/index.ts'
import type { BulkChannel, BulkHandler, ProvideBatchDeps } from '../net/index.ts'
import type { NetMetrics } from '../net/metrics.ts'
import type { FileIndex } from './files/file-index.ts'
import type { FileService } from './files/files.ts'
import type { PinService } from './files/pins-service.ts'
import type { AuditRecords } from './keeper/audit-records.ts'
import type { ManifestWatch } from './keeper/manifest-watch.ts'
import type { RepairEvent, Repairer } from './keeper/repair.ts'
import type { StorageMetrics } from './metrics.ts'
import type { StorageAccounts } from './protocol/accounts.ts'
import type { Provider } from './protocol/provide.ts'
import type { ShardClient } from './protocol/shard-client.ts'
import type { ShardServer, ShardServerStore } from './protocol/shard-server.ts'
import type {
  ExpiryCleanupStore,
  RemovalReason,
  ShardStore,
  ShardStoreRecovery,
} from './store/shard-store.ts'

/** The host services the storage area uses (a libp2p node satisfies it). */
export interface StorageHost {
  handle(
    protocol: string,
    handler: ShardServer['handler'],
    options: ShardServer['handleOptions'],
  ): Promise<void>
  dialProtocol: ConstructorParameters<typeof ShardClient>[0]['dialProtocol']
  getPeers(): PeerId[]
  contentRouting: {
    provide(cid: CID, options: { signal: AbortSignal }): Promise<void>
    findProviders(cid: CID, options: { signal?: AbortSignal }): AsyncIterable<{ id: PeerId }>
  }
}

/** What the storage area needs from the net area. */
export interface StorageNet {
  /** Connected peers speaking a protocol (sorted by PeerId string). */
  peersSpeaking(protocol: string): PeerId[]
  /** The bulk channel, when on. */
  readonly bulk: BulkChannel | undefined
  /** Serve bulk requests with the shard server. */
  handleBulk(handler: BulkHandler): void
  /** Batched provider records (net's `provideBatchDepsFor`), or undefined. */
  provideBatch: ProvideBatchDeps | undefined
}

/** What the storage area needs from the trust area. */
export interface StorageTrust {
  score(peer: string): number
  standing(peer: string, peers: number): number
  readonly perf: { score(peer: string): number }
  readonly reports: ReadonlyMap<string, { freeBytes: number; region: string; networks: readonly string[] }>
  readonly observer: {
    transfer(
      peer: string,
      op: 'put' | 'get',
      outcome: { ok: boolean; code?: string; peerAction?: PeerAction; bytes: number; ms: number },
    ): void
    audit(peer: string, result: 'pass' | 'fail' | 'timeout'): void
    unanswered(peer: string): void
  }
  readonly peerActions: {
    isBanned(peer: string): boolean
    report(peer: string, err: unknown): unknown
  }
  /** A peer signed something it had no authority to sign (a holder update). */
  refused(peer: string): void
}

/**
 * The shard store as the storage area and its parts use it (ShardStore documents each method:
 * src/storage/store/shard-store.ts): puts checked against the CID, reads, audit reads, expiry that only
 * grows and its cleanup, usage. `ShardStore` in a node; tests pass an in-memory store
 * (test/utils/memory-store.ts) through {@link StorageComponents.createStore}.
 */
export interface StorageStore extends ShardServerStore, ExpiryCleanupStore {
  /** Make the store usable (a ShardStore creates, recovers and indexes its directory). Idempotent. */
  open(): Promise<void>
  /** Wait for writes in flight, then close; operations then throw STORE_CLOSED. Idempotent. */
  close(): Promise<void>
  /** The whole shard, a buffer the caller owns. @throws NodusError SHARD_MISSING, CID_INVALID */
  get(cid: CID, options?: { signal?: AbortSignal }): Promise<Uint8Array>
  /**
   * Set the shard's expiry (ms since the Unix epoch; undefined = never) to the later of it and the
   * current one; resolves false when the shard is not stored.
   */
  extendExpiry(cid: CID, expiresAt: number | undefined): Promise<boolean>
  /** What the last open() recovered after an unclean stop (logged by the area); absent: nothing to say. */
  readonly lastRecovery?:
    | Pick<
        ShardStoreRecovery,
        'fullPass' | 'orphansRemoved' | 'lostCount' | 'tempFilesRemoved' | 'usageCorrected'
      >
    | undefined
}

/** What the storage area wires into the shard store it builds (see {@link StorageComponents.createStore}). */
export interface StorageStoreDeps {
  /** The area's clock: `storedAt` and the clean-shutdown marker's time. */
  clock: Clock
  /**
   * Call once for every block that leaves the store, after it left: `size` in bytes, `reason` as
   * ShardStoreDeps.onRemoved says (`expired`, `deleted`, `lost`, `corrupt`). Never throws.
   */
  onRemoved(cid: string, size: number, reason: RemovalReason): void
}

/** What `createStorage` (area.ts) needs. */
export interface StorageComponents<S extends StorageStore = ShardStore> {
  logger: Logger
  clock: Clock
  random: Random
  /** The storage area's metrics, and the provider-record counters of the net area's (metrics.ts). */
  metrics: StorageMetrics & Pick<NetMetrics, 'providerRecords' | 'providerLookups'>
  identity: NodeIdentity
  /** The node's data directory: shards/, accounts/, files/, watch/ go under it. */
  dataDir: string
  host: StorageHost
  net: StorageNet
  trust: StorageTrust
  /** Told about every repair event (tests and the chaos run watch them). */
  onRepairEvent?: ((e: RepairEvent) => void) | undefined
  /**
   * Builds the shard store from what the area wires into it. Default: a `ShardStore` at
   * `<dataDir>/shards` with the `storage.*` capacity, shard size, cache and disk-reserve keys, the
   * area's logger and metrics. Tests pass an in-memory store (test/utils/cluster.ts).
   */
  createStore?: ((deps: StorageStoreDeps) => S) | undefined
}

/**
 * Internal tunings that are not config keys. A node leaves them at their defaults; tests
 * (test/utils/cluster.ts) set them to run faster or to provoke a condition. None changes a wire or
 * disk format.
 */
export interface StorageTuning {
  /** FileService: on get, one more shard request when a segment is not complete after this long, ms. Default 3,000. */
  hedgeDelayMs?: number | undefined
  /** FileService: timeout of DHT provider look-ups and announcements, ms. Default 20,000. */
  dhtTimeoutMs?: number | undefined
  /** ShardServer: shard puts and gets served at once, of every peer (0 refuses all: PEER_BUSY). Default 64. */
  maxConcurrentRequests?: number | undefined
}

/** The config keys the storage area reads (`storage.*`, `repair.*` and the shard protocol's `net.*`). */
export interface StorageAreaOptions {
  storage: {
    capacityBytes: number
    maxShardBytes: number
    cacheBytes: number
    minFreeDiskBytes: number
    cleanupIntervalMs: number
    renewIntervalMs: number
    leaseMs: number
    maxLeaseMs: number
    provisionalLeaseMs: number
    quotaBytes: number
    quotaShards: number
    quotaTrustMultiplier: number
    k: number
    m: number
    segmentSize: number
    segmentsInFlight: number
    manifestReplicas: number
  }
  repair: {
    intervalMs: number
    graceMs: number
    thresholdMargin: number
    maxRepairsPerRound: number
    auditsPerRound: number
    criticalExtraParity: number
    readsPerParityStep: number
    maxPopularityExtraParity: number
    maxParity: number
  }
  net: {
    requestTimeoutMs: number
    maxRequestsPerPeer: number
    maxRequestsPerSubnet: number
    subnetExempt: readonly string[]
    minTransferBytesPerSec: number
  }
  /** Not config keys (the node's config has no `tuning` section): see {@link StorageTuning}. */
  tuning?: StorageTuning | undefined
}

/** The storage area's public services; `store` is the shard store it was built with. */
export interface Storage<S extends StorageStore = ShardStore> {
  readonly store: S
  readonly files: FileService
  readonly shardServer: ShardServer
  readonly shardClient: ShardClient
  readonly fileIndex: FileIndex
  readonly watch: ManifestWatch
  readonly repairer: Repairer
  readonly audits: AuditRecords
  readonly accounts: StorageAccounts
  readonly provider: Provider
  /** This node's pins (the file index), their renewal every `storage.renewIntervalMs`, pin grants. */
  readonly pins: PinService
  /** Connected peers that speak the shard protocol, sorted by PeerId string. */
  shardPeers(): PeerId[]
  beforeStart(): Promise<void>
  start(): Promise<void>
  beforeStop(): Promise<void>
  stop(): void
  afterStop(): Promise<void>
}
