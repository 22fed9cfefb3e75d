/**
 * Keepers learn of a lost copy at once (issue 17, "Audits prove the disk"): a holder whose shard file
 * went missing drops the copy when a read finds it, and tells the keepers of the manifest its commit
 * named; the closest keeper then repairs the segment in its next round, without any audit and with a
 * one-hour grace period for unanswered holders. A notice speaks only for its sender: a peer cannot
 * mark another holder's copy lost. Real nodes on loopback.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { CID } from 'multiformats/cid'
import type { NodusNode } from '../../src/node/node.ts'
import { cidToString, ShardClient } from '../../src/storage/index.ts'
import type { RepairEvent } from '../../src/storage/keeper/repair.ts'
import { startNodes } from '../utils/nodes.ts'
import { waitFor } from '../utils/wait.ts'

let dir = ''
let nodes: NodusNode[] = []
const events: RepairEvent[] = []

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-sec-dropped-'))
  nodes = await startNodes(
    dir,
    6,
    {
      storage: { k: 2, m: 1, segmentSize: 128 * 1024, manifestReplicas: 2 },
      repair: { intervalMs: 3_600_000, graceMs: 3_600_000, auditsPerRound: 0, thresholdMargin: 0 },
    },
    (e) => events.push(e),
  )
})

after(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  await rm(dir, { recursive: true, force: true })
})

function shardFile(node: NodusNode, cid: CID): string {
  const key = cidToString(cid)
  return join(node.config.dataDir, 'shards', key.slice(-3, -1), key)
}

test('a holder that finds its copy gone tells the keepers, who repair it in the next round', {
  timeout: 120_000,
}, async () => {
  const up = nodes[0] as NodusNode
  const data = randomBytes(100 * 1024)
  const res = await up.files.put(
    (async function* () {
      yield data
    })(),
  )
  const key = res.cid.toString()
  const keepers = nodes.filter((n) => n !== up && n.watch.has(key))
  assert.ok(keepers.length > 0)
  const seg = res.manifest.segments[0]
  assert.ok(seg !== undefined)
  const j = seg.shards.findIndex((sh) => {
    const h = nodes.find((n) => n.peerId === sh.holders[0])
    return h !== undefined && h !== up && !keepers.includes(h)
  })
  assert.ok(j >= 0, 'a shard on a holder that is neither uploader nor keeper')
  const cid = (seg.shards[j] as { cid: CID }).cid
  const holder = nodes.find((n) => n.peerId === seg.shards[j]?.holders[0]) as NodusNode

  // A stranger's notice about someone else's copy marks nothing: it speaks only for its sender.
  const other = nodes.find((n) => n !== up && n !== holder && !keepers.includes(n)) as NodusNode
  const stranger = new ShardClient(
    { dialProtocol: (p, proto, o) => other.libp2p.dialProtocol(p, proto, o) },
    { requestTimeoutMs: 10_000, maxShardBytes: 1 << 24 },
  )
  for (const k of keepers) await stranger.dropped(k.libp2p.peerId, res.cid, [cid])
  const quiet = events.length
  for (const k of keepers) await k.repairer.runRound()
  assert.equal(
    events.slice(quiet).filter((e) => e.type === 'started' && e.manifest === key).length,
    0,
    "another peer's notice does not make the keepers repair the holder's copy",
  )
  const before = keepers.map((k) => k.repairer.badCopies)
  const { rm: remove } = await import('node:fs/promises')
  await remove(shardFile(holder, cid))
  // The next read on the holder finds the file gone: the copy leaves its index, and the keepers hear of it.
  await assert.rejects(holder.store.get(cid))
  assert.equal(holder.store.has(cid), false)
  await waitFor(() => keepers.some((k, i) => k.repairer.badCopies > (before[i] ?? 0)), {
    timeoutMs: 20_000,
    what: 'the keepers to mark the copy lost',
  })

  // One round on every node that keeps the manifest (the uploader too): the closest repairs at once
  // (no audit, no grace period).
  const mark = events.length
  for (const k of nodes.filter((n) => n.watch.has(key))) await k.repairer.runRound()
  const finished = events.slice(mark).filter((e) => e.type === 'finished' && e.manifest === key) as Extract<
    RepairEvent,
    { type: 'finished' }
  >[]
  assert.ok(finished.length > 0, 'the segment was repaired in the next round')
  const chunks: Buffer[] = []
  for await (const c of other.files.get(res.cid)) chunks.push(Buffer.from(c))
  assert.ok(Buffer.concat(chunks).equals(data))
})
