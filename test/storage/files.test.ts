import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { decodeManifest } from '../../src/storage/index.ts'
import { startCluster, stopAll, type TestPeer } from '../utils/cluster.ts'
import { chunks, collect } from '../utils/streams.ts'

let peers: TestPeer[] = []

before(async () => {
  peers = await startCluster(8, { k: 4, m: 2, segmentSize: 64 * 1024, manifestReplicas: 3 })
})
after(async () => {
  await stopAll(peers)
})

test('a file put through one node comes back from another after m holders stop', async () => {
  const [up, , , , , , , down] = peers as [
    TestPeer,
    TestPeer,
    TestPeer,
    TestPeer,
    TestPeer,
    TestPeer,
    TestPeer,
    TestPeer,
  ]
  const data = randomBytes(1024 * 1024 + 333)
  const res = await up.files.put(chunks(data, 50_000), { name: 'x.bin' })
  assert.equal(res.manifest.fileSize, data.byteLength)
  assert.equal(res.manifest.segments.length, Math.ceil(data.byteLength / (64 * 1024)))
  for (const seg of res.manifest.segments) {
    const holders = seg.shards.map((s) => s.holders[0])
    assert.equal(new Set(holders).size, 6, 'shards of a segment on distinct peers')
    assert.ok(!holders.includes(up.id.peerId.toString()))
  }
  assert.ok(res.manifestHolders.length >= 3)
  // Stop two shard holders that are neither the uploader nor the downloader.
  const victims = peers.slice(1, 3)
  await Promise.all(victims.map((p) => p.libp2p.stop()))
  const got = await collect(down.files.get(res.cid))
  assert.deepEqual(got, data)
})

test('a segment with more than m shards lost fails with DECODE_FAILED', async () => {
  const cluster = await startCluster(7, { k: 3, m: 1, segmentSize: 30_000, manifestReplicas: 5 })
  try {
    const up = cluster[0] as TestPeer
    const data = randomBytes(50_000)
    const res = await up.files.put(chunks(data, 10_000))
    const seg0 = res.manifest.segments[0]
    assert.ok(seg0)
    const holders = new Set(seg0.shards.slice(0, 2).map((s) => s.holders[0]))
    const down = cluster.find((p) => !holders.has(p.id.peerId.toString()) && p !== up) as TestPeer
    await Promise.all(cluster.filter((p) => holders.has(p.id.peerId.toString())).map((p) => p.libp2p.stop()))
    await assert.rejects(collect(down.files.get(res.cid)), (err) => isNodusError(err, 'DECODE_FAILED'))
  } finally {
    await stopAll(cluster)
  }
})

test('a tampered manifest is rejected', async () => {
  const up = peers[0] as TestPeer
  const res = await up.files.put(chunks(randomBytes(1000), 1000))
  const bytes = await up.store.get(res.cid)
  const bad = Uint8Array.from(bytes)
  bad[bad.byteLength - 10] = (bad[bad.byteLength - 10] ?? 0) ^ 1
  assert.throws(
    () => decodeManifest(bad, res.cid),
    (err) => isNodusError(err, 'CID_MISMATCH'),
  )
  assert.throws(
    () => decodeManifest(bad),
    (err) => isNodusError(err) && ['SIGNATURE_INVALID', 'MANIFEST_INVALID'].includes(err.code),
  )
})
