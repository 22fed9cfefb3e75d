/**
 * A holder that accepts shard streams but never answers (it times out): keepers count its copies as
 * lost, record the timeouts against it, rebuild its shards elsewhere, and readers still get the file.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { NodusNode } from '../../src/node/node.ts'
import { SHARD_PROTOCOL } from '../../src/storage/index.ts'
import type { RepairEvent } from '../../src/storage/keeper/repair.ts'
import { startNodes } from '../utils/nodes.ts'

let dir = ''
let nodes: NodusNode[] = []
const events: RepairEvent[] = []

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-silent-'))
  nodes = await startNodes(
    dir,
    8,
    {
      net: { requestTimeoutMs: 1_500 },
      storage: { k: 4, m: 2, segmentSize: 65536, manifestReplicas: 3 },
      repair: { intervalMs: 3_600_000, graceMs: 0, auditsPerRound: 0 },
    },
    (e) => events.push(e),
  )
})
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  await rm(dir, { recursive: true, force: true })
})

test('a holder that never answers is timed out, recorded, and its shards are rebuilt elsewhere', {
  timeout: 120_000,
}, async () => {
  const up = nodes[0] as NodusNode
  const data = randomBytes(4 * 65536 - 11)
  const res = await up.files.put(
    (async function* () {
      yield data
    })(),
  )
  const cidStr = res.cid.toString()
  const holders = new Set(res.manifest.segments.flatMap((s) => s.shards.flatMap((sh) => sh.holders)))
  const silent = nodes.find((n) => n !== up && holders.has(n.peerId) && !n.watch.has(cidStr)) as NodusNode
  assert.ok(silent)
  // The recorded rating (sat − unsat), not the floored s_ij: a keeper at 0 before can still fall.
  const rowValue = (k: NodusNode): number => k.trust.rating(k.peerId, silent.peerId)
  const before = new Map(nodes.map((k) => [k.peerId, rowValue(k)]))
  // From now on it takes shard streams and says nothing (and has no bulk channel to answer on).
  await silent.bulk?.stop()
  await silent.libp2p.unhandle(SHARD_PROTOCOL)
  await silent.libp2p.handle(SHARD_PROTOCOL, () => {}, { maxInboundStreams: 256 })

  const silentShards = res.manifest.segments.flatMap((s, si) =>
    s.shards.flatMap((sh, j) => (sh.holders.includes(silent.peerId) ? [{ si, j, cid: sh.cid }] : [])),
  )
  const missing = async (): Promise<number> => {
    const m = await up.files.resolveManifest(res.cid)
    return silentShards.filter(({ si, j, cid }) => {
      const others = m.manifest.segments[si]?.shards[j]?.holders.filter((h) => h !== silent.peerId) ?? []
      return !others.some((h) => nodes.find((n) => n.peerId === h)?.store.has(cid) === true)
    }).length
  }
  for (let round = 0; round < 6 && (await missing()) > 0; round++) {
    await Promise.all(nodes.map((n) => n.repairer.runRound()))
  }
  assert.equal(await missing(), 0, "the silent holder's shards were not rebuilt elsewhere")

  // The records show it: a keeper saw the silent holder fail (performance record) and rated it down
  // (its local trust row for the silent holder fell).
  const keeper = nodes.find(
    (k) => k.watch.has(cidStr) && (k.perf.stats(silent.peerId)?.successRate ?? 1) < 0.9,
  ) as NodusNode
  assert.ok(keeper, 'no keeper recorded the silent holder failing')
  assert.ok(
    rowValue(keeper) < (before.get(keeper.peerId) ?? 0),
    'the keeper did not rate the silent holder down',
  )

  // A reader still gets the file (requests to the silent holder time out; others answer).
  const reader = nodes.find((n) => n !== up && n !== silent && !n.watch.has(cidStr)) as NodusNode
  const parts: Uint8Array[] = []
  for await (const p of reader.files.get(res.cid)) parts.push(p)
  assert.deepEqual(Buffer.concat(parts), data)
})
