/**
 * KeptDbs (src/kv/keepers.ts): a node keeps a peer's database only when it ranks within kv.keepers +
 * kv.keeperSlack of the id in its own view, at most kv.maxKeptDbsPerOwner per owner and
 * kv.maxHostedDbs in all; hosting one through the API frees its owner's place.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { identityFromSeeds } from '../../src/crypto/index.ts'
import { formatDbId } from '../../src/kv/db-id.ts'
import { KeptDbs } from '../../src/kv/keepers.ts'
import { kadId, xorCompare } from '../../src/net/index.ts'

const peers = await Promise.all(
  Array.from({ length: 10 }, async (_, i) =>
    peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(i + 1))),
  ),
)
const [self, ...others] = peers as [PeerId, ...PeerId[]]
const owner = await identityFromSeeds(new Uint8Array(32).fill(3), new Uint8Array(32).fill(4))
const dbOf = (i: number): string => formatDbId(`db${i}`, owner.ed25519.publicKey.raw)
const enc = new TextEncoder()
/** How many of `others` are closer to `db` than this node. */
const rank = (db: string): number => {
  const t = kadId(enc.encode(db))
  const me = kadId(self.toMultihash().bytes)
  return others.filter((p) => xorCompare(kadId(p.toMultihash().bytes), me, t) < 0).length
}
/** The view: every other peer, closest first (as net's closestPeersLocal answers). */
const closestPeersLocal = (key: Uint8Array, n: number): PeerId[] => {
  const t = kadId(key)
  return [...others]
    .sort((a, b) => xorCompare(kadId(a.toMultihash().bytes), kadId(b.toMultihash().bytes), t))
    .slice(0, n)
}
const kept = (o: Partial<ConstructorParameters<typeof KeptDbs>[1]> = {}) =>
  new KeptDbs(
    { self: self.toString(), closestPeersLocal },
    { keepers: 2, keeperSlack: 1, maxKeptDbsPerOwner: 2, maxHostedDbs: 100, ...o },
  )

test('a keeper ranks within kv.keepers + kv.keeperSlack of the id in its own view', () => {
  const k = kept()
  for (let i = 0; i < 60; i++) assert.equal(k.isKeeper(dbOf(i)), rank(dbOf(i)) < 3, dbOf(i))
  assert.equal(kept({ keepers: 0, keeperSlack: 5 }).isKeeper(dbOf(0)), false, 'kv.keepers 0 keeps nothing')
  const lonely = new KeptDbs(
    { self: self.toString(), closestPeersLocal: () => others.slice(0, 1) },
    { keepers: 2, keeperSlack: 1, maxKeptDbsPerOwner: 2, maxHostedDbs: 100 },
  )
  assert.equal(lonely.isKeeper(dbOf(0)), true, 'a view of fewer peers than that: a keeper')
})

test('refusals: not a database, all hosted, not a keeper, the owner’s share kept', () => {
  const k = kept()
  const mine = Array.from({ length: 80 }, (_, i) => dbOf(i)).filter((d) => rank(d) < 3)
  const notMine = Array.from({ length: 80 }, (_, i) => dbOf(i)).find((d) => rank(d) >= 3) as string
  assert.ok(mine.length >= 3)
  assert.equal(k.refusal('not-an-id', 0)?.reason, 'db_invalid')
  assert.equal(k.refusal(mine[0] as string, 100)?.reason, 'hosted_full')
  assert.equal(k.refusal(notMine, 0)?.reason, 'not_keeper')
  assert.equal(k.refusal(mine[0] as string, 0), undefined)
  k.mark(mine[0] as string, true)
  k.mark(mine[1] as string, true)
  k.mark(mine[1] as string, true) // idempotent
  assert.equal(k.refusal(mine[2] as string, 2)?.reason, 'owner_full')
  // Hosted through the API: no longer kept, and the owner has a place again.
  k.mark(mine[0] as string, false)
  assert.equal(k.has(mine[0] as string), false)
  assert.equal(k.refusal(mine[2] as string, 2), undefined)
})
