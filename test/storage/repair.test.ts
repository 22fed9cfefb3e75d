/**
 * Repair with real nodes (in process, loopback, real disk): holders go away, the manifest's keepers
 * notice, rebuild the lost shards on other peers and publish a signed holder update.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import type { NodusNode } from '../../src/node/node.ts'
import { parseCid } from '../../src/storage/index.ts'
import type { RepairEvent } from '../../src/storage/keeper/repair.ts'
import { startNodes } from '../utils/nodes.ts'
import { chunks, collect } from '../utils/streams.ts'

const N = 9
let dir = ''
const nodes: NodusNode[] = []
const events: RepairEvent[] = []

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-repair-'))
  nodes.push(
    ...(await startNodes(
      dir,
      N,
      {
        storage: { k: 4, m: 2, segmentSize: 65536, manifestReplicas: 3 },
        repair: { intervalMs: 3_600_000, graceMs: 0 },
      },
      (e) => events.push(e),
    )),
  )
})
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  await rm(dir, { recursive: true, force: true })
})

test('lost shards are rebuilt elsewhere, a holder update is published, and the file survives more losses', {
  timeout: 120_000,
}, async () => {
  const up = nodes[0] as NodusNode
  const data = randomBytes(7 * 65536 - 100)
  const res = await up.files.put(chunks(data))
  const cidStr = res.cid.toString()
  // The uploader and the manifest replicas watch the manifest.
  const keepers = nodes.filter((n) => n.watch.has(cidStr))
  assert.ok(keepers.length >= 3, `only ${keepers.length} keepers`)

  // Two shard holders that are not keepers go away.
  const holders = new Set(res.manifest.segments.flatMap((s) => s.shards.flatMap((sh) => sh.holders)))
  const victims = nodes.filter((n) => n !== up && holders.has(n.peerId) && !n.watch.has(cidStr)).slice(0, 2)
  assert.equal(victims.length, 2)
  await Promise.all(victims.map((v) => v.stop()))
  const alive = nodes.filter((n) => !victims.includes(n))

  // One health round on every live node: exactly one keeper (the closest to the CID) repairs.
  await Promise.all(alive.map((n) => n.repairer.runRound()))
  const finishedSegments = new Set(events.flatMap((e) => (e.type === 'finished' ? [e.segment] : [])))
  const lostSegments = new Set(
    res.manifest.segments.flatMap((s, si) =>
      s.shards.some((sh) => victims.some((v) => sh.holders.includes(v.peerId))) ? [si] : [],
    ),
  )
  assert.deepEqual([...finishedSegments].sort(), [...lostSegments].sort())
  assert.ok(events.some((e) => e.type === 'published' && e.revision === 2))
  assert.equal(events.filter((e) => e.type === 'failed').length, 0)

  // Every segment is back to k+m live shards, none on a victim.
  const resolved = await up.files.resolveManifest(res.cid)
  assert.equal(resolved.manifest.revision, 2)
  for (const seg of resolved.manifest.segments) {
    let healthy = 0
    for (const sh of seg.shards) {
      for (const h of sh.holders) {
        if (victims.some((v) => v.peerId === h)) continue
        const owner = alive.find((n) => n.peerId === h)
        if (owner?.store.has(sh.cid) === true) {
          healthy++
          break
        }
      }
    }
    assert.equal(healthy, 6)
  }

  // A reader that is not a keeper learns the new holders and reads the file, even after two more
  // original holders go away (4 of the original placement lost in all: more than m = 2 per segment
  // would be unrecoverable without the repair).
  const more = alive.filter((n) => n !== up && !n.watch.has(cidStr) && holders.has(n.peerId)).slice(0, 2)
  await Promise.all(more.map((v) => v.stop()))
  const reader = alive.find((n) => !more.includes(n) && n !== up && !n.watch.has(cidStr)) ?? up
  const got = await collect(reader.files.get(parseCid(cidStr)))
  assert.deepEqual(got, data)
  // The repaired copies are announced under the repairers' names; the holder update is signed.
  assert.ok(peerIdFromString(resolved.manifest.uploader.peerId))
})
