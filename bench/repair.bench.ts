/**
 * Repair speed: the time for the keepers to rebuild everything one lost node held, per GiB of that
 * node's shards, on 8 in-process nodes (RS(4,2), 1 MiB segments, loopback, real disk). Peer: putting
 * the same number of bytes afresh through the same network (what re-uploading would cost).
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { NodusNode } from '../src/node/node.ts'
import type { RepairEvent } from '../src/storage/keeper/repair.ts'
import { startNodes } from '../test/utils/nodes.ts'
import type { BenchOptions, Row } from './lib.ts'

export const description =
  'Repair: 8 in-process nodes, RS(4,2), 1 MiB segments. One node that holds shards stops; the keepers run health rounds (grace 0) until every lost shard is rebuilt elsewhere. ours_MBps is GB of lost shards rebuilt per second (×1000); the note gives seconds per GiB.'

async function* chunks(buf: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.byteLength; i += 1 << 20) yield buf.subarray(i, i + (1 << 20))
}

export async function run(options: BenchOptions): Promise<Row[]> {
  const fileBytes = (options.quick ? 16 : 64) * 1024 * 1024
  const dir = await mkdtemp(join(tmpdir(), 'nodus-repair-bench-'))
  const events: RepairEvent[] = []
  const nodes: NodusNode[] = await startNodes(
    dir,
    8,
    {
      storage: { k: 4, m: 2, segmentSize: 1 << 20, manifestReplicas: 3 },
      repair: { intervalMs: 3_600_000, graceMs: 0, auditsPerRound: 0, maxRepairsPerRound: 10_000 },
    },
    (e) => events.push(e),
  )
  try {
    const up = nodes[0] as NodusNode
    const res = await up.files.put(chunks(randomBytes(fileBytes)))
    const cid = res.cid.toString()
    const victim = nodes.find((n) => n !== up && !n.watch.has(cid) && n.store.usage().shards > 0) as NodusNode
    const lostBytes = victim.store.usage().bytes
    const lostShards = victim.store.usage().shards
    await victim.stop()
    const alive = nodes.filter((n) => n !== victim)
    const t0 = performance.now()
    const rebuilt = (): number => events.reduce((n, e) => n + (e.type === 'finished' ? e.rebuilt : 0), 0)
    for (let round = 0; round < 20 && rebuilt() < lostShards; round++) {
      await Promise.all(alive.map((n) => n.repairer.runRound()))
    }
    const seconds = (performance.now() - t0) / 1000
    // Peer: put the same number of fresh bytes through the same network.
    const t1 = performance.now()
    await up.files.put(chunks(randomBytes(lostBytes)))
    const peerSeconds = (performance.now() - t1) / 1000
    const mbps = lostBytes / 1e6 / seconds
    const peerMbps = lostBytes / 1e6 / peerSeconds
    return [
      {
        name: `repair everything one node held (${lostShards} shards, ${(lostBytes / 2 ** 20).toFixed(1)} MiB)`,
        ours_MBps: Math.round(mbps * 10) / 10,
        peer: 'fresh put of the same bytes (RS(4,2))',
        peer_MBps: Math.round(peerMbps * 10) / 10,
        ratio: Math.round((mbps / peerMbps) * 100) / 100,
        note: `${(seconds / (lostBytes / 2 ** 30)).toFixed(1)} s per GiB lost; ${rebuilt()} shards rebuilt in ${seconds.toFixed(1)} s (k shards fetched, decoded, re-placed per segment)`,
      },
    ]
  } finally {
    await Promise.all(nodes.map((n) => n.stop().catch(() => {})))
    await rm(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const row of await run({ quick: process.argv.includes('--quick') })) console.log(JSON.stringify(row))
}
