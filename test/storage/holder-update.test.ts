/** Holder updates with extra parity rows (dynamic redundancy): encoding, checks and application. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { hybridPublicKey, identityFromSeeds, signHybrid } from '../../src/crypto/index.ts'
import { cidForBytes } from '../../src/storage/cid.ts'
import {
  applyHolderUpdate,
  decodeHolderUpdate,
  extraParityOf,
  MAX_EXTRA_PARITY,
  type Manifest,
  signHolderUpdate,
  signManifest,
} from '../../src/storage/manifest.ts'

describe('holder updates with extra parity', async () => {
  const id = await identityFromSeeds(new Uint8Array(32).fill(7), new Uint8Array(32).fill(8))
  const pub = hybridPublicKey(id)
  const peerId = peerIdFromPublicKey(publicKeyFromRaw(pub.ed25519)).toString()
  const shard = (i: number) => cidForBytes(new Uint8Array([i, 1, 2, 3]))
  const man: Manifest = {
    version: 1,
    name: undefined,
    fileSize: 10,
    fileBlake3: new Uint8Array(32),
    k: 2,
    m: 1,
    segmentSize: 10,
    segments: [{ size: 10, shardSize: 5, shards: [0, 1, 2].map((i) => ({ cid: shard(i), holders: ['a'] })) }],
    uploader: { peerId, publicKey: pub },
    createdAt: 1,
    revision: 1,
  }
  const signed = await signManifest(man, (m) => signHybrid(id, m))
  const sign = (m: Uint8Array) => signHybrid(id, m)
  const base = { manifest: signed.cid, revision: 2, signer: { peerId, publicKey: pub }, createdAt: 2 }

  it('round-trips and appends the extra rows to each segment', async () => {
    const u = await signHolderUpdate(
      { ...base, holders: [[['b'], ['c'], ['d'], ['e'], ['f']]], parity: [[shard(3), shard(4)]] },
      sign,
    )
    const back = decodeHolderUpdate(u.bytes, signed).update
    assert.equal(back.parity?.[0]?.length, 2)
    const view = applyHolderUpdate(man, back)
    const seg = view.segments[0]
    assert.ok(seg !== undefined)
    assert.equal(seg.shards.length, 5)
    assert.equal(view.m, 1, 'm stays the signed one')
    assert.equal(extraParityOf(view, seg), 2)
    assert.ok(seg.shards[4]?.cid.equals(shard(4)))
    assert.deepEqual(seg.shards[3]?.holders, ['e'])
    assert.deepEqual(seg.shards[0]?.holders, ['b', 'a'])
  })

  it('an update without extra rows encodes as before (no parity field)', async () => {
    const u = await signHolderUpdate({ ...base, holders: [[['b'], ['c'], ['d']]], parity: [[]] }, sign)
    const body = (dagCbor.decode(u.bytes) as { body: Record<string, unknown> }).body
    assert.equal('parity' in body, false)
    assert.equal(
      applyHolderUpdate(man, decodeHolderUpdate(u.bytes, signed).update).segments[0]?.shards.length,
      3,
    )
  })

  it('rejects a holder table that does not match the extra rows, and too many rows', async () => {
    const short = await signHolderUpdate(
      { ...base, holders: [[['b'], ['c'], ['d']]], parity: [[shard(3)]] },
      sign,
    )
    assert.throws(() => decodeHolderUpdate(short.bytes, signed), { code: 'MANIFEST_INVALID' })
    const many = Array.from({ length: MAX_EXTRA_PARITY + 1 }, (_, i) => shard(10 + i))
    const tooMany = await signHolderUpdate(
      { ...base, holders: [[['b'], ['c'], ['d'], ...many.map(() => ['x'])]], parity: [many] },
      sign,
    )
    assert.throws(() => decodeHolderUpdate(tooMany.bytes, signed), { code: 'MANIFEST_INVALID' })
  })

  it('the signature covers the extra rows', async () => {
    const u = await signHolderUpdate(
      { ...base, holders: [[['b'], ['c'], ['d'], ['e']]], parity: [[shard(3)]] },
      sign,
    )
    const env = dagCbor.decode(u.bytes) as { body: Record<string, unknown>; sig: unknown }
    const forged = dagCbor.encode({ ...env, body: { ...env.body, parity: [[shard(9)]] } })
    assert.throws(() => decodeHolderUpdate(forged, signed), { code: 'SIGNATURE_INVALID' })
  })
})
