/**
 * In-process clusters of nodus peers on loopback, for integration tests of the protocols and the
 * put/get paths. Each peer is built as `createNode` builds a node, from the real area factories
 * (`createTrust`, `createNet`, `createStorage`) run through the lifecycle of src/common/lifecycle.ts,
 * with in-memory stores where a node has disk: a {@link MemoryStore} for shards and a `MemoryBanStore`
 * for bans (the accounts, the file index and the watched manifests are LMDB in a temp directory).
 * Left out: the API and the reports exchange. The bulk channel is off (test/net/bulk.test.ts builds
 * its own); repair rounds run once an hour unless a test sets `repair.intervalMs`.
 */
import { mkdtempSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { type Clock, systemClock } from '../../src/common/clock.ts'
import { startAll, stopAll as stopAreas } from '../../src/common/lifecycle.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { systemRandom } from '../../src/common/random.ts'
import { type NodusConfig, parseConfig } from '../../src/config/index.ts'
import { generateIdentity, type NodeIdentity, signEd25519 } from '../../src/crypto/index.ts'
import { NodusMetrics } from '../../src/metrics/index.ts'
import {
  createHost,
  createNet,
  DEFAULT_HOST_OPTIONS,
  type Net,
  type NodusLibp2p,
  provideBatchDepsFor,
} from '../../src/net/index.ts'
import {
  createStorage,
  type FileService,
  type Receipt,
  type ShardClient,
  type ShardServer,
  type Storage,
  type StorageAccounts,
  type StorageTuning,
  signOrder,
} from '../../src/storage/index.ts'
import { createTrust, MemoryBanStore, type PeerObserver, type Trust } from '../../src/trust/index.ts'
import { MemoryStore } from './memory-store.ts'

/** One peer of a cluster: its identity, its areas, and their main services. */
export interface TestPeer {
  id: NodeIdentity
  libp2p: NodusLibp2p
  store: MemoryStore
  server: ShardServer
  client: ShardClient
  files: FileService
  accounts: StorageAccounts
  trust: Trust
  net: Net
  storage: Storage<MemoryStore>
  /** The peer's metrics (one registry per peer, as a node's). */
  metrics: NodusMetrics
  /** Where the peer's LMDB stores are (accounts/, files/, watch/); {@link stopAll} removes it. */
  dataDir: string
}

/** How a test wants its peers; every field is optional. */
export interface TestPeerOptions {
  /** `storage.*` config keys (docs/CONFIG.md) over the cluster's: capacity and quota 1 GiB, quota multiplier 1. */
  storage?: Partial<NodusConfig['storage']>
  /** `repair.*` config keys over the cluster's (`intervalMs` one hour). */
  repair?: Partial<NodusConfig['repair']>
  /** Storage tunings over the cluster's: `hedgeDelayMs` 500, `dhtTimeoutMs` 1,000. */
  tuning?: StorageTuning
  /** The clock of every area; default the system clock. */
  clock?: Clock
  /** Told about each shard transfer the file service makes, after the trust area's observer. */
  onTransfer?: PeerObserver['transfer']
}

/** A bare libp2p host on loopback, started (no nodus areas). */
export async function startHost(): Promise<NodusLibp2p> {
  const key = await generateKeyPair('Ed25519')
  const h = await createHost(key, { ...DEFAULT_HOST_OPTIONS })
  await h.start()
  return h
}

/** Build and start one peer (not connected to any other). */
export async function startPeer(options: TestPeerOptions = {}): Promise<TestPeer> {
  const id = await generateIdentity()
  const self = id.peerId.toString()
  const dataDir = mkdtempSync(join(tmpdir(), 'nodus-peer-'))
  const config = parseConfig({
    dataDir,
    net: { listen: ['/ip4/127.0.0.1/tcp/0'], bulk: 'off', requestTimeoutMs: 20_000 },
    storage: { capacityBytes: 1 << 30, quotaBytes: 1 << 30, quotaTrustMultiplier: 1, ...options.storage },
    repair: { intervalMs: 3_600_000, ...options.repair },
  })
  const logger = silentLogger()
  const clock = options.clock ?? systemClock
  const metrics = new NodusMetrics()
  const trust = createTrust({ logger, clock, self, bans: new MemoryBanStore(), metrics }, config.trust)
  const net = await createNet({ logger, clock, privateKey: id.ed25519, peers: trust.peerActions }, config.net)
  const { onTransfer } = options
  const observer: PeerObserver =
    onTransfer === undefined
      ? trust.observer
      : {
          ...trust.observer,
          transfer: (peer, op, outcome) => {
            trust.observer.transfer(peer, op, outcome)
            onTransfer(peer, op, outcome)
          },
        }
  const storage = createStorage(
    {
      logger,
      clock,
      random: systemRandom,
      metrics,
      identity: id,
      dataDir,
      host: net.libp2p,
      net: {
        ...net,
        provideBatch: provideBatchDepsFor(
          net.libp2p,
          config.net.dhtProtocol,
          DEFAULT_HOST_OPTIONS.dhtKBucketSize,
        ),
      },
      trust: {
        ...trust,
        observer,
        refused: (peer) => trust.eigentrust.recordInteraction(self, peer, 'shard-bad'),
      },
      createStore: (deps) =>
        new MemoryStore(deps, {
          capacityBytes: config.storage.capacityBytes,
          maxShardBytes: config.storage.maxShardBytes,
        }),
    },
    { ...config, tuning: { hedgeDelayMs: 500, dhtTimeoutMs: 1_000, ...options.tuning } },
  )
  await startAll([trust, net, storage])
  return {
    id,
    libp2p: net.libp2p,
    store: storage.store,
    server: storage.shardServer,
    client: storage.shardClient,
    files: storage.files,
    accounts: storage.accounts,
    trust,
    net,
    storage,
    metrics,
    dataDir,
  }
}

/** A storage order from `from` for `to` covering `cids` (each at most `maxBytes`), for one day. */
export function orderFor(
  from: TestPeer,
  to: PeerId,
  cids: CID[],
  maxBytes = 16 * 1024 * 1024,
): Promise<Uint8Array> {
  return signOrder(
    {
      uploader: from.id.peerId.toString(),
      holder: to.toString(),
      cids,
      maxBytes,
      expiresAt: Date.now() + 24 * 3600 * 1000,
      issuedAt: Date.now(),
    },
    (d) => signEd25519(from.id.ed25519, d),
  )
}

/** `client.put` of `bytes` to `to` under a storage order signed by `from`. */
export async function putOrdered(
  from: TestPeer,
  client: ShardClient,
  to: PeerId,
  cid: CID,
  bytes: Uint8Array,
): Promise<Receipt> {
  return client.put(to, cid, bytes, { order: await orderFor(from, to, [cid], bytes.byteLength) })
}

/** Start `n` peers with the same options and connect every pair. */
export async function startCluster(n: number, options: TestPeerOptions = {}): Promise<TestPeer[]> {
  const peers = await Promise.all(Array.from({ length: n }, () => startPeer(options)))
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      await (peers[i] as TestPeer).libp2p.dial((peers[j] as TestPeer).libp2p.getMultiaddrs())
    }
  }
  return peers
}

/** Stop every peer's areas (in reverse build order, as a node stops) and remove its data directory. */
export async function stopAll(peers: TestPeer[]): Promise<void> {
  await Promise.all(
    peers.map(async (p) => {
      await stopAreas([p.trust, p.net, p.storage])
      await rm(p.dataDir, { recursive: true, force: true })
    }),
  )
}
