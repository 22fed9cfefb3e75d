/**
 * A hostile holder: its shard files are corrupted on disk (it serves bad bytes and fails audits).
 * Keepers audit it, record the failures, rebuild its shards elsewhere, and readers still get the file.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, open, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { NodusNode } from '../../src/node/node.ts'
import type { RepairEvent } from '../../src/storage/keeper/repair.ts'
import { startNodes } from '../utils/nodes.ts'

const N = 8
let dir = ''
const nodes: NodusNode[] = []
const events: RepairEvent[] = []

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-hostile-'))
  nodes.push(
    ...(await startNodes(
      dir,
      N,
      {
        storage: { k: 4, m: 2, segmentSize: 65536, manifestReplicas: 3 },
        repair: { intervalMs: 3_600_000, graceMs: 3_600_000, auditsPerRound: 10_000 },
      },
      (e) => events.push(e),
    )),
  )
})
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  await rm(dir, { recursive: true, force: true })
})

/** Flip one byte in every shard file under `shardsDir` (not the index). */
async function corruptAll(shardsDir: string): Promise<number> {
  let n = 0
  for (const sub of await readdir(shardsDir, { withFileTypes: true })) {
    if (!sub.isDirectory() || sub.name === 'index' || sub.name === 'tmp') continue
    for (const f of await readdir(join(shardsDir, sub.name))) {
      const fh = await open(join(shardsDir, sub.name, f), 'r+')
      try {
        const b = Buffer.alloc(1)
        await fh.read(b, 0, 1, 0)
        b[0] = (b[0] ?? 0) ^ 0xff
        await fh.write(b, 0, 1, 0)
        n++
      } finally {
        await fh.close()
      }
    }
  }
  return n
}

test('a holder serving corrupted shards fails audits, is recorded, its shards are rebuilt elsewhere, reads stay correct', {
  timeout: 120_000,
}, async () => {
  const up = nodes[0] as NodusNode
  const data = randomBytes(5 * 65536 - 7)
  const res = await up.files.put(
    (async function* () {
      yield data
    })(),
  )
  const cidStr = res.cid.toString()
  const holders = new Set(res.manifest.segments.flatMap((s) => s.shards.flatMap((sh) => sh.holders)))
  const hostile = nodes.find((n) => n !== up && holders.has(n.peerId) && !n.watch.has(cidStr)) as NodusNode
  assert.ok(hostile)
  const corrupted = await corruptAll(join(hostile.config.dataDir, 'shards'))
  assert.ok(corrupted > 0)

  const hostileShards = res.manifest.segments.flatMap((s, si) =>
    s.shards.flatMap((sh, j) => (sh.holders.includes(hostile.peerId) ? [{ si, j, cid: sh.cid }] : [])),
  )
  // Rounds until every hostile copy was caught and rebuilt (audits are sampled, and a holder answers
  // only a few at once, so one round may not reach them all). Bounded.
  const rebuiltCount = (): number => events.reduce((n, e) => n + (e.type === 'finished' ? e.rebuilt : 0), 0)
  const missingRebuilds = async (): Promise<string[]> => {
    const resolved = await up.files.resolveManifest(res.cid)
    return hostileShards
      .filter(({ si, j, cid }) => {
        const others =
          resolved.manifest.segments[si]?.shards[j]?.holders.filter((h) => h !== hostile.peerId) ?? []
        return !others.some((h) => nodes.find((n) => n.peerId === h)?.store.has(cid) === true)
      })
      .map(({ si, j }) => `${si}/${j}`)
  }
  for (let round = 0; round < 12 && (await missingRebuilds()).length > 0; round++) {
    await Promise.all(nodes.map((n) => n.repairer.runRound()))
  }
  assert.deepEqual(await missingRebuilds(), [], 'hostile shards not rebuilt elsewhere')
  // Keepers coordinate (the closest repairs, others wait by rank), so duplicates are rare; they are
  // harmless extra copies, never missing ones.
  assert.ok(rebuiltCount() >= hostileShards.length)
  assert.ok(
    rebuiltCount() <= 2 * hostileShards.length,
    `rebuilt ${rebuiltCount()} copies for ${hostileShards.length} hostile shards: ${JSON.stringify(events.filter((e) => e.type === 'finished'))}`,
  )

  // Keepers audited the hostile holder and recorded failures; its trust fell below an honest holder's.
  const keepers = nodes.filter((n) => n.watch.has(cidStr))
  const failed = keepers.reduce((sum, k) => sum + (k.audits.get(hostile.peerId)?.failed ?? 0), 0)
  assert.ok(failed > 0, 'no audit failure recorded for the hostile holder')
  const judge = keepers.find((k) => (k.audits.get(hostile.peerId)?.failed ?? 0) > 0) as NodusNode
  const honest = nodes.find(
    (n) => n !== hostile && (judge.audits.get(n.peerId)?.passed ?? 0) > 0,
  ) as NodusNode
  assert.ok(honest, 'no honest holder passed an audit')
  judge.trust.compute()
  assert.ok(
    judge.trust.score(hostile.peerId) < judge.trust.score(honest.peerId),
    'hostile holder not trusted less',
  )

  // A reader gets correct bytes even though the hostile holder still serves garbage.
  const reader = nodes.find((n) => n !== up && n !== hostile && !n.watch.has(cidStr)) as NodusNode
  const parts: Uint8Array[] = []
  for await (const p of reader.files.get(res.cid)) parts.push(p)
  assert.deepEqual(Buffer.concat(parts), data)
})
