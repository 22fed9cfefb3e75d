/**
 * closestPeersLocal (src/net/closest.ts): this node's own view of the peers XOR-closest to a key, from
 * its kad-dht routing table and its connections, never itself, with no request.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { Connection, PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { closestPeersLocal, kadId, xorCompare } from '../../src/net/closest.ts'

const peers = await Promise.all(
  Array.from({ length: 12 }, async (_, i) =>
    peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(i + 1))),
  ),
)
const [self, ...others] = peers as [PeerId, ...PeerId[]]
const key = new TextEncoder().encode('notes-z6MkExample')
const byDistance = (ps: PeerId[]): string[] =>
  [...ps]
    .sort((a, b) => xorCompare(kadId(a.toMultihash().bytes), kadId(b.toMultihash().bytes), kadId(key)))
    .map(String)

test('the routing table’s closest and the connected peers, sorted by XOR distance, never this node', () => {
  const table = others.slice(0, 8)
  const connected = [...others.slice(6), self]
  let asked: { kadId: Uint8Array; count?: number } | undefined
  const host = {
    peerId: self,
    getConnections: () => connected.map((remotePeer) => ({ remotePeer }) as unknown as Connection),
    services: {
      dht: {
        routingTable: {
          closestPeers: (k: Uint8Array, o?: { count?: number }) => {
            asked = { kadId: k, ...(o?.count === undefined ? {} : { count: o.count }) }
            return [...table, self]
          },
        },
      },
    },
  }
  const got = closestPeersLocal(host, key, 5)
  assert.deepEqual(asked, { kadId: kadId(key), count: 5 }, 'the table is asked by the key’s kad id')
  assert.deepEqual(got.map(String), byDistance(others).slice(0, 5))
  assert.equal(closestPeersLocal(host, key, 0).length, 0)
  // Without a routing table (no dht service): the connections alone.
  const bare = { peerId: self, getConnections: host.getConnections, services: {} }
  assert.deepEqual(closestPeersLocal(bare, key, 20).map(String), byDistance(others.slice(6)))
})
