/**
 * In-process clusters of real libp2p hosts on loopback, each with an in-memory store, a shard server
 * and a file service. For integration tests of the protocols and the put/get paths.
 */
import { mkdtempSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { systemClock } from '../../src/common/clock.ts'
import { silentLogger } from '../../src/common/logger.ts'
import {
  generateIdentity,
  hybridPublicKey,
  type NodeIdentity,
  signEd25519,
  signHybrid,
} from '../../src/crypto/index.ts'
import { createHost, DEFAULT_HOST_OPTIONS, type NodusLibp2p } from '../../src/net/index.ts'
import {
  DEFAULT_FILE_OPTIONS,
  DEFAULT_SHARD_SERVER_OPTIONS,
  FileService,
  type FileServiceDeps,
  type FileServiceOptions,
  SHARD_PROTOCOL,
  ShardClient,
  ShardServer,
} from '../../src/storage/index.ts'
import { StorageAccounts } from '../../src/storage/protocol/accounts.ts'
import { HolderPolicy } from '../../src/storage/protocol/holder-policy.ts'
import { signOrder } from '../../src/storage/protocol/orders.ts'
import type { Receipt } from '../../src/storage/protocol/shard-messages.ts'
import { MemoryStore } from './memory-store.ts'

export interface TestPeer {
  accounts: StorageAccounts
  accountsDir: string
  id: NodeIdentity
  libp2p: NodusLibp2p
  store: MemoryStore
  server: ShardServer
  client: ShardClient
  files: FileService
}

export async function startHost(): Promise<NodusLibp2p> {
  const key = await generateKeyPair('Ed25519')
  const h = await createHost(key, { ...DEFAULT_HOST_OPTIONS })
  await h.start()
  return h
}

export async function startPeer(
  fileOptions: Partial<FileServiceOptions> = {},
  serverMaxConcurrent?: number,
  fileDeps: Partial<FileServiceDeps> = {},
): Promise<TestPeer> {
  const id = await generateIdentity()
  const libp2p = await createHost(id.ed25519, { ...DEFAULT_HOST_OPTIONS })
  await libp2p.start()
  const store = new MemoryStore()
  const logger = silentLogger()
  const self = id.peerId.toString()
  // A clock in fileDeps drives the holder policy and the shard server too (receipts' storedAt).
  const clock = fileDeps.clock ?? systemClock
  const accountsDir = mkdtempSync(join(tmpdir(), 'nodus-accounts-'))
  const accounts = new StorageAccounts(
    { trust: () => 0 },
    { path: accountsDir, quotaBytes: 1 << 30, quotaShards: 65_536, quotaTrustMultiplier: 1 },
  )
  accounts.open()
  const policy = new HolderPolicy(
    { self, accounts, store, clock },
    { maxLeaseMs: 90 * 24 * 3600 * 1000, provisionalLeaseMs: 3600 * 1000 },
  )
  const server = new ShardServer(
    { store, peerId: self, sign: (d) => id.ed25519.sign(d) as Promise<Uint8Array>, logger, policy, clock },
    {
      ...DEFAULT_SHARD_SERVER_OPTIONS,
      ...(serverMaxConcurrent === undefined ? {} : { maxConcurrentRequests: serverMaxConcurrent }),
    },
  )
  await libp2p.handle(SHARD_PROTOCOL, server.handler, server.handleOptions)
  const client = new ShardClient(
    { dialProtocol: (p, proto, o) => libp2p.dialProtocol(p, proto, o) },
    { requestTimeoutMs: 20_000, maxShardBytes: 16 * 1024 * 1024 },
  )
  const files = new FileService(
    {
      selfPeerId: id.peerId.toString(),
      store,
      client,
      peers: {
        candidates: (): PeerId[] => libp2p.getPeers().sort((a, b) => (a.toString() < b.toString() ? -1 : 1)),
        findProviders: async function* () {},
        provide: async () => {},
      },
      sign: (m) => signHybrid(id, m),
      signEd25519: (d) => signEd25519(id.ed25519, d),
      publicKey: hybridPublicKey(id),
      logger,
      clock,
      ...fileDeps,
    },
    { ...DEFAULT_FILE_OPTIONS, hedgeDelayMs: 500, dhtTimeoutMs: 1_000, ...fileOptions },
  )
  return { id, libp2p, store, server, client, files, accounts, accountsDir }
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

/** Start `n` peers and connect every pair. */
export async function startCluster(
  n: number,
  fileOptions: Partial<FileServiceOptions> = {},
): Promise<TestPeer[]> {
  const peers = await Promise.all(Array.from({ length: n }, () => startPeer(fileOptions)))
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      await (peers[i] as TestPeer).libp2p.dial((peers[j] as TestPeer).libp2p.getMultiaddrs())
    }
  }
  return peers
}

export async function stopAll(peers: TestPeer[]): Promise<void> {
  await Promise.all(
    peers.map(async (p) => {
      await p.libp2p.stop()
      await p.accounts.close()
      await rm(p.accountsDir, { recursive: true, force: true })
    }),
  )
}
