/**
 * Kademlia splitting for kad-dht 16's routing table (src/net/kad-table.ts): with it, a node's table
 * keeps splitting toward its own ID and holds the peers closest to it; kad-dht's default trie stops at
 * depth 6 and keeps only the first 20 peers of its own prefix.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { sha256 } from 'multiformats/hashes/sha2'
import { createHost, DEFAULT_HOST_OPTIONS, type NodusLibp2p } from '../../src/net/host.ts'
import { routingTableShape, useKademliaSplitting } from '../../src/net/kad-table.ts'

const PEERS = 1_500

async function kadId(p: PeerId): Promise<Uint8Array> {
  return (await sha256.digest(p.toMultihash().bytes)).digest
}

function xorLess(a: Uint8Array, b: Uint8Array, target: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const x = (a[i] as number) ^ (target[i] as number)
    const y = (b[i] as number) ^ (target[i] as number)
    if (x !== y) return x - y
  }
  return 0
}

describe('kad-dht routing table with Kademlia splitting', () => {
  const hosts: NodusLibp2p[] = []
  let peers: { id: PeerId; kad: Uint8Array }[] = []

  before(async () => {
    for (let i = 0; i < PEERS; i++) {
      const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
      peers.push({ id, kad: await kadId(id) })
    }
  })
  after(async () => {
    await Promise.all(hosts.map((h) => h.stop()))
    peers = []
  })

  /** A started host whose table accepts contacts without pinging them, filled with every peer. */
  async function filled(patch: boolean): Promise<{
    host: NodusLibp2p
    table: Set<string>
    self: Uint8Array
    peers: { id: PeerId; kad: Uint8Array }[]
  }> {
    const host = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS)
    hosts.push(host)
    const self = await kadId(host.peerId)
    // The comparison needs more than k peers in the host's own 6-bit prefix (1,500 random peers give
    // about 23, and fewer than 21 a quarter of the time): add peers of that prefix until there are 40.
    const mine = [...peers]
    let own = mine.filter((p) => (p.kad[0] as number) >> 2 === (self[0] as number) >> 2).length
    for (let tries = 0; own < 40 && tries < 20_000; tries++) {
      const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
      const kad = await kadId(id)
      if ((kad[0] as number) >> 2 !== (self[0] as number) >> 2) continue
      mine.push({ id, kad })
      own++
    }
    assert.ok(own >= 40, `only ${own} peers share the host's prefix`)
    const dht = host.services.dht as unknown as {
      routingTable: { kb: { verify: () => Promise<boolean>; add(p: PeerId): Promise<void> } }
    }
    if (!patch) {
      // Undo: a fresh table without the rule (createHost applies it).
      const kb = dht.routingTable.kb as unknown as Record<string, unknown>
      Object.defineProperty(kb, 'prefixLength', { value: 6, writable: true, configurable: true })
    }
    await host.start()
    const kb = dht.routingTable.kb
    kb.verify = async () => true
    for (const p of mine) await kb.add(p.id)
    const contacts = (kb as unknown as { toIterable(): Iterable<{ peerId: PeerId }> }).toIterable()
    const table = new Set([...contacts].map((c) => c.peerId.toString()))
    return { host, table, self, peers: mine }
  }

  it('is applied by createHost (kad-dht 16 internals have the expected shape)', async () => {
    const host = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS)
    hosts.push(host)
    assert.equal(useKademliaSplitting(host.services.dht), true)
    assert.equal(useKademliaSplitting({}), false)
  })

  it('splits toward its own ID and keeps every peer of its own leaf, where the default trie stops at depth 6', {
    timeout: 120_000,
  }, async () => {
    const withRule = await filled(true)
    const shape = routingTableShape(withRule.host.services.dht)
    const ownDepth = shape.find((b) => b.own)?.depth ?? 0
    // 40 peers share the own 6-bit prefix, more than one bucket of 20 can hold: the own leaf split.
    assert.ok(ownDepth > 6, `own bucket at depth ${ownDepth}`)
    // Kademlia's guarantee (a bucket per common-prefix length on the own path): for each length c
    // from 6 to the own leaf's depth, the table holds min(k, peers with exactly c leading bits in
    // common); the own leaf holds every peer sharing at least ownDepth bits.
    const cpl = (kad: Uint8Array): number => {
      for (let i = 0; i < kad.length; i++) {
        const x = (kad[i] as number) ^ (withRule.self[i] as number)
        if (x !== 0) return i * 8 + Math.clz32(x) - 24
      }
      return kad.length * 8
    }
    for (let c = 6; c <= ownDepth; c++) {
      const all = withRule.peers.filter((p) => (c === ownDepth ? cpl(p.kad) >= c : cpl(p.kad) === c))
      const kept = all.filter((p) => withRule.table.has(p.id.toString())).length
      assert.equal(kept, c === ownDepth ? all.length : Math.min(20, all.length), `common prefix ${c}`)
    }
    // Every leaf off the own path at depth ≥ 6 holds at most k peers; the table stays small.
    assert.ok(withRule.table.size < 64 * 20 + 20 * 10, `${withRule.table.size} contacts`)

    const plain = await filled(false)
    const closestPlain = [...plain.peers].sort((a, b) => xorLess(a.kad, b.kad, plain.self)).slice(0, 20)
    const missingPlain = closestPlain.filter((p) => !plain.table.has(p.id.toString())).length
    assert.ok(missingPlain > 0, 'the default trie kept all 20 closest peers (the comparison shows nothing)')
    assert.ok(Math.max(...routingTableShape(plain.host.services.dht).map((b) => b.depth)) <= 6)
  })
})
