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
  async function filled(
    patch: boolean,
  ): Promise<{ host: NodusLibp2p; table: Set<string>; self: Uint8Array }> {
    const host = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS)
    hosts.push(host)
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
    for (const p of peers) await kb.add(p.id)
    const contacts = (kb as unknown as { toIterable(): Iterable<{ peerId: PeerId }> }).toIterable()
    const table = new Set([...contacts].map((c) => c.peerId.toString()))
    return { host, table, self: await kadId(host.peerId) }
  }

  it('is applied by createHost (kad-dht 16 internals have the expected shape)', async () => {
    const host = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS)
    hosts.push(host)
    assert.equal(useKademliaSplitting(host.services.dht), true)
    assert.equal(useKademliaSplitting({}), false)
  })

  it('keeps the 20 peers closest to its own ID, where the default trie does not', {
    timeout: 120_000,
  }, async () => {
    const withRule = await filled(true)
    const closest = [...peers].sort((a, b) => xorLess(a.kad, b.kad, withRule.self)).slice(0, 20)
    const missing = closest.filter((p) => !withRule.table.has(p.id.toString())).length
    assert.equal(missing, 0, `${missing} of the 20 closest peers are not in the table`)
    const shape = routingTableShape(withRule.host.services.dht)
    const ownDepth = shape.find((b) => b.own)?.depth ?? 0
    assert.ok(ownDepth > 6, `own bucket at depth ${ownDepth}`)
    // Every leaf off the own path at depth ≥ 6 holds at most k peers; the table stays small.
    assert.ok(withRule.table.size < 64 * 20 + 20 * 10, `${withRule.table.size} contacts`)

    const plain = await filled(false)
    const closestPlain = [...peers].sort((a, b) => xorLess(a.kad, b.kad, plain.self)).slice(0, 20)
    const missingPlain = closestPlain.filter((p) => !plain.table.has(p.id.toString())).length
    assert.ok(missingPlain > 0, 'the default trie kept all 20 closest peers (the comparison shows nothing)')
    assert.ok(Math.max(...routingTableShape(plain.host.services.dht).map((b) => b.depth)) <= 6)
  })
})
