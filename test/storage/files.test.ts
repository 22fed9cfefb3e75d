import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { DEFAULT_FILE_OPTIONS, decodeManifest } from '../../src/storage/index.ts'
import { startCluster, startPeer, stopAll, type TestPeer } from '../utils/cluster.ts'
import { chunks, collect } from '../utils/streams.ts'

let peers: TestPeer[] = []

before(async () => {
  peers = await startCluster(8, { storage: { k: 4, m: 2, segmentSize: 64 * 1024, manifestReplicas: 3 } })
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

test('a get tries holders found unreachable in earlier segments last, not first in every segment', async () => {
  const storage = { k: 4, m: 2, segmentSize: 16 * 1024, manifestReplicas: 3 }
  const cluster = await startCluster(7, { storage })
  const failures = new Map<string, number>()
  const down = await startPeer({
    storage,
    onTransfer: (peer, op, outcome) => {
      if (op === 'get' && !outcome.ok) failures.set(peer, (failures.get(peer) ?? 0) + 1)
    },
  })
  try {
    for (const p of cluster) await down.libp2p.dial(p.libp2p.getMultiaddrs())
    const up = cluster[0] as TestPeer
    const data = randomBytes(40 * 16 * 1024 + 77)
    const res = await up.files.put(chunks(data, 50_000))
    // Stop the two peers that hold the most data shards (the ones a get asks first).
    const dataShards = new Map<string, number>()
    for (const seg of res.manifest.segments)
      for (const s of seg.shards.slice(0, 4)) {
        const h = s.holders[0] as string
        dataShards.set(h, (dataShards.get(h) ?? 0) + 1)
      }
    const byId = new Map(cluster.slice(1).map((p) => [p.id.peerId.toString(), p]))
    const victims = [...dataShards]
      .filter(([id]) => byId.has(id))
      .sort((a, b) => b[1] - a[1])
      .slice(0, 2)
    assert.equal(victims.length, 2)
    await Promise.all(victims.map(([id]) => (byId.get(id) as TestPeer).libp2p.stop()))
    assert.deepEqual(await collect(down.files.get(res.cid)), data)
    for (const [id, held] of victims) {
      const tries = failures.get(id) ?? 0
      assert.ok(tries >= 1, `victim ${id} was tried`)
      // Segments in flight at once may each try it before the first failure is known; later ones not.
      assert.ok(
        tries <= DEFAULT_FILE_OPTIONS.segmentsInFlight + 1,
        `victim holding ${held} data shards was tried ${tries} times`,
      )
    }
  } finally {
    await stopAll([...cluster, down])
  }
})

test('a segment with more than m shards lost fails with DECODE_FAILED', async () => {
  const cluster = await startCluster(7, { storage: { k: 3, m: 1, segmentSize: 30_000, manifestReplicas: 5 } })
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
