/**
 * Batched provider announcements (src/net/provide-batch.ts): the message kad-dht decodes, the exact
 * k closest peers per key whatever lookups are reused, failures counted, and records that real
 * kad-dht hosts on loopback find.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
// kad-dht's own codec, read from its dist: the package exports only its entry point.
import { Message, MessageType } from '../../node_modules/@libp2p/kad-dht/dist/src/message/dht.js'
import { mulberry32 } from '../../src/common/prng.ts'
import { createHost, DEFAULT_HOST_OPTIONS, type NodusLibp2p } from '../../src/net/host.ts'
import {
  announceBatch,
  encodeAddProvider,
  kadId,
  type ProvideBatchDeps,
  provideBatchDepsFor,
} from '../../src/net/provide-batch.ts'
import { waitFor } from '../utils/wait.ts'

const RAW = 0x55

function randomCid(rand: () => number): CID {
  const d = new Uint8Array(32)
  for (let i = 0; i < 32; i++) d[i] = Math.floor(rand() * 256)
  return CID.createV1(RAW, Digest.create(0x1e, d))
}

async function peerIds(n: number): Promise<PeerId[]> {
  return await Promise.all(
    Array.from({ length: n }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))),
  )
}

/** The true k closest of `peers` to `key` (multihash bytes), by XOR of SHA-256 Kademlia IDs. */
function trueClosest(peers: PeerId[], key: Uint8Array, k: number): string[] {
  const y = kadId(key)
  return peers
    .map((p) => ({ p, d: kadId(p.toMultihash().bytes) ^ y }))
    .sort((a, b) => (a.d < b.d ? -1 : 1))
    .slice(0, k)
    .map((x) => x.p.toString())
    .sort()
}

/** Deps over a simulated network whose lookups return the exact k closest; streams record messages. */
function simulated(
  network: PeerId[],
  k: number,
  options: { failLookups?: boolean; failPeer?: string } = {},
): { deps: ProvideBatchDeps; got: Map<string, string[]>; lookups: number[] } {
  const got = new Map<string, string[]>()
  const lookups: number[] = []
  const self = { id: randomBytes(34), addrs: [multiaddr('/ip4/127.0.0.1/tcp/4001').bytes] }
  const deps: ProvideBatchDeps = {
    k,
    closestPeers: async (key) => {
      lookups.push(1)
      if (options.failLookups === true) throw new Error('lookup failed')
      const want = new Set(trueClosest(network, key, k))
      return network.filter((p) => want.has(p.toString()))
    },
    addLocal: async () => {},
    self: () => self,
    openStream: async (peer) => {
      const id = peer.toString()
      if (id === options.failPeer) throw new Error('dial failed')
      const keys: string[] = got.get(id) ?? []
      got.set(id, keys)
      return {
        writeStatus: 'writable',
        send(data: Uint8Array): boolean {
          let off = 0
          while (((data[off] as number) & 0x80) !== 0) off++ // skip the varint length prefix
          const msg = Message.decode(data.subarray(off + 1))
          keys.push(Buffer.from(msg.key as Uint8Array).toString('hex'))
          return true
        },
        close: async () => {},
        abort: () => {},
      } as unknown as Stream
    },
  }
  return { deps, got, lookups }
}

test('ADD_PROVIDER as encoded here is what kad-dht decodes', () => {
  const rand = mulberry32(7)
  const cid = randomCid(rand)
  const id = new Uint8Array(randomBytes(38))
  const addrs = [multiaddr('/ip4/127.0.0.1/tcp/4001').bytes, multiaddr('/ip6/::1/tcp/4002').bytes]
  const msg = Message.decode(encodeAddProvider(cid.multihash.bytes, { id, addrs }))
  assert.equal(msg.type, MessageType.ADD_PROVIDER)
  assert.deepEqual(msg.key, cid.multihash.bytes)
  assert.equal(msg.providers.length, 1)
  assert.deepEqual(msg.providers[0]?.id, id)
  assert.deepEqual(msg.providers[0]?.multiaddrs, addrs)
  assert.equal(msg.closer.length, 0)
})

test('every key goes to exactly its k closest peers, whichever lookups are reused', async () => {
  const all = await peerIds(60)
  for (const [n, k, seed] of [
    [3, 5, 1],
    [8, 5, 2],
    [12, 3, 3],
    [20, 4, 4],
    [60, 3, 5],
  ] as const) {
    const network = all.slice(0, n)
    const rand = mulberry32(seed)
    const cids = Array.from({ length: 80 }, () => randomCid(rand))
    const { deps, got, lookups } = simulated(network, k)
    const r = await announceBatch(deps, cids, AbortSignal.timeout(30_000))
    const sentTo = new Map<string, string[]>()
    for (const [peer, keys] of got)
      for (const key of keys) sentTo.set(key, [...(sentTo.get(key) ?? []), peer])
    for (const cid of cids) {
      assert.deepEqual(
        (sentTo.get(Buffer.from(cid.multihash.bytes).toString('hex')) ?? []).sort(),
        trueClosest(network, cid.multihash.bytes, k),
        `n=${n} k=${k}: ${cid}`,
      )
    }
    assert.equal(r.lookups, lookups.length)
    assert.equal(r.records, cids.length * Math.min(k, n))
    assert.equal(r.failedPeers, 0)
    // A network smaller than k is found whole by the first lookup; every later key reuses it.
    if (n < k) assert.equal(r.lookups, 1)
  }
})

test('a failed lookup or peer is counted and the rest still go out', async () => {
  const network = await peerIds(6)
  const rand = mulberry32(11)
  const cids = Array.from({ length: 10 }, () => randomCid(rand))
  const lost = network[2]?.toString() as string
  const one = simulated(network, 20, { failPeer: lost })
  const r = await announceBatch(one.deps, cids, AbortSignal.timeout(30_000))
  assert.equal(r.failedPeers, 1)
  assert.equal(r.records, cids.length * 5)
  assert.equal(one.got.has(lost), false)
  const two = simulated(network, 20, { failLookups: true })
  const r2 = await announceBatch(two.deps, cids, AbortSignal.timeout(30_000))
  assert.equal(r2.records, 0)
  assert.equal(r2.lookups, cids.length, 'a failed lookup covers no later key')
  await assert.rejects(announceBatch(one.deps, cids, AbortSignal.abort(new Error('stop'))), /stop/)
})

test('real kad-dht hosts on loopback find every record of a batch', { timeout: 120_000 }, async () => {
  const hosts: NodusLibp2p[] = []
  try {
    for (let i = 0; i < 6; i++) {
      const h = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS)
      await h.start()
      hosts.push(h)
    }
    const [a, ...rest] = hosts as [NodusLibp2p, ...NodusLibp2p[]]
    for (const h of rest) await h.dial(a.getMultiaddrs())
    // Each host learns the others through its lookups of its own ID (kad-dht's self-query): look up
    // until every table holds the five others (no event says when a table is complete).
    const tableSize = (h: NodusLibp2p): number =>
      (h.services.dht as unknown as { routingTable: { size: number } }).routingTable.size
    await waitFor(
      async () => {
        for (const h of hosts) {
          if (tableSize(h) < 5)
            for await (const _ of h.services.dht.getClosestPeers(h.peerId.toMultihash().bytes, {
              signal: AbortSignal.timeout(10_000),
            })) {
              // drain
            }
        }
        return hosts.every((h) => tableSize(h) >= 5)
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'every routing table to hold the five other hosts' },
    )
    const announcer = rest[0] as NodusLibp2p
    const deps = provideBatchDepsFor(announcer, DEFAULT_HOST_OPTIONS.dhtProtocol, 20)
    assert.ok(deps !== undefined, 'kad-dht 16 exposes its provider store')
    const rand = mulberry32(23)
    const cids = Array.from({ length: 40 }, () => randomCid(rand))
    const r = await announceBatch(deps, cids, AbortSignal.timeout(60_000))
    assert.equal(r.lookups, 1, 'six hosts are fewer than k: one lookup covers the batch')
    assert.equal(r.peers, 5)
    assert.equal(r.failedPeers, 0)
    assert.equal(r.records, cids.length * 5)
    // The last messages may still be in the receivers' handlers when the sender's close() returns.
    const storeOf = (h: NodusLibp2p): { getProviders(c: CID): Promise<PeerId[]> } =>
      (h.services.dht as unknown as { providers: { getProviders(c: CID): Promise<PeerId[]> } }).providers
    const recordsOn = async (h: NodusLibp2p): Promise<number> => {
      let n = 0
      for (const cid of cids) {
        const ids = (await storeOf(h).getProviders(cid)).map((p) => p.toString())
        if (ids.includes(announcer.peerId.toString())) n++
      }
      return n
    }
    for (const h of hosts) {
      if (h === announcer) continue
      await waitFor(async () => (await recordsOn(h)) === cids.length, {
        timeoutMs: 10_000,
        intervalMs: 50,
        what: `every record of the batch on ${h.peerId}`,
      })
      assert.equal(await recordsOn(h), cids.length, `records on ${h.peerId}`)
    }
    // A host that joins afterwards holds no record: it asks the others (GET_PROVIDERS) for each key.
    const late = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS)
    await late.start()
    hosts.push(late)
    await late.dial(a.getMultiaddrs())
    const asker = late
    assert.deepEqual(await storeOf(late).getProviders(cids[0] as CID), [])
    for (const cid of cids) {
      const found: string[] = []
      for await (const p of asker.contentRouting.findProviders(cid, {
        signal: AbortSignal.timeout(10_000),
      })) {
        found.push(p.id.toString())
        break
      }
      assert.deepEqual(found, [announcer.peerId.toString()], `provider of ${cid}`)
    }
    // kad-dht's own per-key provide of a BLAKE3 CID now reaches the other hosts too.
    const single = randomCid(rand)
    const other = hosts[2] as NodusLibp2p
    await other.contentRouting.provide(single, { signal: AbortSignal.timeout(30_000) })
    // ADD_PROVIDER has no answer: provide() can resolve before the receivers have stored the record.
    const holdersOf = (): Promise<number[]> =>
      Promise.all(
        hosts.filter((h) => h !== other).map(async (h) => (await storeOf(h).getProviders(single)).length),
      )
    let holders: number[] = []
    await waitFor(
      async () => {
        holders = await holdersOf()
        return holders.filter((n) => n === 1).length >= 5
      },
      { timeoutMs: 10_000, intervalMs: 50, what: 'the record of a single provide on the five other hosts' },
    )
    assert.ok(holders.filter((n) => n === 1).length >= 5, `records on ${holders}`)
  } finally {
    await Promise.all(hosts.map((h) => h.stop()))
  }
})
