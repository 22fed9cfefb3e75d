/**
 * Audits prove the disk.
 *
 * Attacks (issue 17): a shard file deleted from disk on a running holder was still served whole and
 * valid from the RAM cache, audits included, with nothing logged; a truncated or corrupted copy stayed
 * in the index (`has` true, counted in usage) failing an audit every round without ever being dropped;
 * and a failed audit counted for one round only, so repair waited for the grace period.
 *
 * Here each damage is done to a shard file on a running holder whose cache holds the shard. One repair
 * round later the holder has dropped the copy (index, usage, cache; counted by reason), the keepers
 * have marked it lost, and the segment is rebuilt elsewhere — with a grace period of an hour, which a
 * copy proven bad does not wait for. Readers get the file whole.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, open, rm, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { CID } from 'multiformats/cid'
import { isNodusError } from '../../src/common/errors.ts'
import type { NodusNode } from '../../src/node/node.ts'
import type { RepairEvent } from '../../src/storage/keeper/repair.ts'
import { ShardStore } from '../../src/storage/store/shard-store.ts'
import { bytesOf, cidOf } from '../storage/fixtures/shard-bytes.ts'
import { startNodes } from '../utils/nodes.ts'

const N = 8
const SEGMENT = 65536
let dir = ''
let nodes: NodusNode[] = []
const events: RepairEvent[] = []

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-audit-disk-'))
  nodes = await startNodes(
    dir,
    N,
    {
      storage: { k: 4, m: 2, segmentSize: SEGMENT, manifestReplicas: 3 },
      // Rounds are driven by the test; every live copy is audited each round; an hour of grace, which a
      // copy proven bad must not wait for.
      repair: { intervalMs: 3_600_000, graceMs: 3_600_000, auditsPerRound: 10_000 },
    },
    (e) => events.push(e),
  )
})
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  await rm(dir, { recursive: true, force: true })
})

function shardFile(node: NodusNode, cid: CID): string {
  const key = cid.toString()
  return join(node.config.dataDir, 'shards', key.slice(-3, -1), key)
}

async function removedCount(node: NodusNode, reason: string): Promise<number> {
  const m = await node.metrics.shardsRemoved.get()
  return m.values.find((v) => v.labels.reason === reason)?.value ?? 0
}

async function readAll(node: NodusNode, cid: CID): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const p of node.files.get(cid)) parts.push(p)
  return Buffer.concat(parts)
}

/**
 * Upload a file, damage one shard file on a holder that is not a keeper (its cache holding the shard), run
 * repair rounds, and check the copy was dropped, marked lost and rebuilt elsewhere within two rounds.
 */
async function damagedCopyIsCaught(
  damage: (path: string, size: number) => Promise<void>,
  reason: 'lost' | 'corrupt',
): Promise<void> {
  const up = nodes[0] as NodusNode
  const data = randomBytes(4 * SEGMENT - 13)
  const res = await up.files.put(
    (async function* () {
      yield data
    })(),
  )
  const cidStr = res.cid.toString()
  const keepers = nodes.filter((n) => n.watch.has(cidStr))
  assert.ok(keepers.length > 0)
  const holder = nodes.find(
    (n) =>
      n !== up &&
      !n.watch.has(cidStr) &&
      res.manifest.segments.some((s) => s.shards.some((sh) => sh.holders.includes(n.peerId))),
  ) as NodusNode
  assert.ok(holder, 'no holder outside the keepers')
  const si = res.manifest.segments.findIndex((s) => s.shards.some((sh) => sh.holders.includes(holder.peerId)))
  const seg = res.manifest.segments[si]
  const j = seg?.shards.findIndex((sh) => sh.holders.includes(holder.peerId)) ?? -1
  const cid = seg?.shards[j]?.cid as CID
  const size = holder.store.stat(cid)?.size as number
  assert.ok(size > 0)

  // The shard is hot on the holder: two whole reads put it in the cache (second-read admission).
  await holder.store.get(cid)
  await holder.store.get(cid)
  assert.ok(holder.store.isCached(cid), 'the shard is cached')
  const usageBefore = holder.store.usage()
  const removedBefore = await removedCount(holder, reason)
  const failedBefore = keepers.reduce((n, k) => n + (k.audits.get(holder.peerId)?.failed ?? 0), 0)
  const eventsBefore = events.length

  await damage(shardFile(holder, cid), size)
  // The attack: the cache still holds the shard whole and valid.
  assert.ok(holder.store.has(cid))

  // One round: keepers audit every live copy; the holder answers from disk, finds the damage and drops it.
  await Promise.all(nodes.map((n) => n.repairer.runRound()))
  assert.equal(holder.store.has(cid), false, '`has` no longer claims the copy')
  assert.equal(holder.store.usage().bytes, usageBefore.bytes - size, 'usage no longer counts it')
  assert.equal(holder.store.usage().shards, usageBefore.shards - 1)
  assert.equal(await removedCount(holder, reason), removedBefore + 1, `one removal counted as ${reason}`)
  // (Other shards may enter the cache meanwhile: repair reads them from this holder.)
  assert.equal(holder.store.isCached(cid), false, 'its cache entry is gone')
  await assert.rejects(holder.store.get(cid), (err: unknown) => isNodusError(err, 'SHARD_MISSING'))
  const failedAfter = keepers.reduce((n, k) => n + (k.audits.get(holder.peerId)?.failed ?? 0), 0)
  assert.ok(failedAfter > failedBefore, 'a keeper recorded the failed audit')

  // Repaired within one more round at most, although the grace period is an hour.
  const rebuilt = async (): Promise<boolean> => {
    const m = await up.files.resolveManifest(res.cid)
    const holders = m.manifest.segments[si]?.shards[j]?.holders ?? []
    return holders.some(
      (h) => h !== holder.peerId && nodes.find((n) => n.peerId === h)?.store.has(cid) === true,
    )
  }
  if (!(await rebuilt())) await Promise.all(nodes.map((n) => n.repairer.runRound()))
  assert.ok(await rebuilt(), 'the copy was not rebuilt elsewhere within two rounds')
  const finished = events
    .slice(eventsBefore)
    .filter((e) => e.type === 'finished' && e.manifest === cidStr && e.segment === si)
  assert.ok(finished.length >= 1, 'no repair of the segment finished')

  // Honest reads are unaffected.
  const reader = nodes.find((n) => n !== up && n !== holder && !n.watch.has(cidStr)) as NodusNode
  assert.deepEqual(await readAll(reader, res.cid), data)
}

describe('audits prove the disk (real nodes)', { timeout: 180_000 }, () => {
  it('a shard file deleted on a running holder fails its next audit, leaves index and usage, and is repaired', async () => {
    await damagedCopyIsCaught((path) => rm(path), 'lost')
  })

  it('a truncated shard file fails its next audit, leaves index and usage, and is repaired', async () => {
    await damagedCopyIsCaught((path, size) => truncate(path, Math.floor(size / 2)), 'corrupt')
  })

  it('a corrupted shard file (same size) fails its next audit, leaves index and usage, and is repaired', async () => {
    await damagedCopyIsCaught(async (path, size) => {
      const fh = await open(path, 'r+')
      try {
        const b = Buffer.alloc(1)
        const at = Math.floor(size / 3)
        await fh.read(b, 0, 1, at)
        b[0] = (b[0] ?? 0) ^ 0x01
        await fh.write(b, 0, 1, at)
      } finally {
        await fh.close()
      }
    }, 'corrupt')
  })
})

describe('the store reports every dropped copy once (onRemoved)', () => {
  it('an audit read, a read and the start-up check each drop a bad copy once, with its reason', async (t) => {
    const d = await mkdtemp(join(tmpdir(), 'nodus-audit-store-'))
    t.after(() => rm(d, { recursive: true, force: true }))
    const removed: string[] = []
    const store = new ShardStore(
      { onRemoved: (cid, size, reason) => void removed.push(`${cid} ${size} ${reason}`) },
      { dir: d, capacityBytes: 1 << 30, maxShardBytes: 1 << 20 },
    )
    await store.open()
    t.after(() => store.close())
    const put = async (seed: number): Promise<{ cid: CID; path: string }> => {
      const bytes = bytesOf(50_000, seed)
      const cid = cidOf(bytes)
      await store.put(cid, bytes)
      const key = cid.toString()
      return { cid, path: join(d, key.slice(-3, -1), key) }
    }
    const gone = await put(1)
    const flipped = await put(2)
    const cut = await put(3)
    const fine = await put(4)
    await rm(gone.path)
    const fh = await open(flipped.path, 'r+')
    await fh.write(Buffer.from([0xff, 0xff, 0xff]), 0, 3, 100)
    await fh.close()
    const missing = (err: unknown): boolean => isNodusError(err, 'SHARD_MISSING')
    // Concurrent audit reads of one bad copy drop it once.
    await assert.rejects(Promise.all([store.readForAudit(gone.cid), store.readForAudit(gone.cid)]), missing)
    await assert.rejects(store.readForAudit(flipped.cid), missing)
    assert.equal((await store.readForAudit(fine.cid)).byteLength, 50_000)
    assert.deepEqual(removed, [`${gone.cid} 50000 lost`, `${flipped.cid} 50000 corrupt`])
    assert.deepEqual(store.usage().shards, 2)

    // Truncated while the node was down (a clean stop): the background check at the next start drops it.
    await store.close()
    await truncate(cut.path, 10)
    await store.open()
    assert.deepEqual(await store.startupCheck, { checked: 2, dropped: 1 })
    assert.deepEqual(removed.slice(2), [`${cut.cid} 50000 corrupt`])
    assert.equal(store.has(cut.cid), false)
    assert.equal(store.has(fine.cid), true)
    // Deletes and expiry are reported too.
    assert.equal(await store.delete(fine.cid), true)
    assert.deepEqual(removed.slice(3), [`${fine.cid} 50000 deleted`])
  })
})
