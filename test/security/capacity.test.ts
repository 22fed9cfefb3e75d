/**
 * Capacity is the truth, and is not held by bytes that never arrive.
 *
 * Attacks (issue 17): a node whose data directory is on a 64 MB file system reported 107 GB free to its
 * peers (its configured capacity); and 80 stalled puts declaring 16 MiB each reserved 1.07 GB of capacity
 * without sending a byte. Now free capacity is the smaller of the configured capacity and what the file
 * system has (less the reserve), and a put reserves bytes as they arrive.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { ShardStore, type StatfsResult } from '../../src/storage/store/shard-store.ts'
import { CapacityGuard, USAGE_STATFS_TTL_MS } from '../../src/storage/store/shard-store-capacity.ts'
import { bytesOf, cidOf } from '../storage/fixtures/shard-bytes.ts'
import { startNodes } from '../utils/nodes.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB

async function tempDir(t: TestContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A statfs of a file system with `bytes` available (4 KiB blocks). */
function disk(bytes: number): (dir: string) => Promise<StatfsResult> {
  return async () => ({ bavail: Math.floor(bytes / 4096), bsize: 4096 })
}

/** A stream that yields `first` chunks, then stalls until `signal` aborts (a peer that stops sending). */
async function* stalled(
  first: Uint8Array[],
  signal: AbortSignal,
  onStall?: () => void,
): AsyncGenerator<Uint8Array> {
  for (const c of first) yield c
  onStall?.()
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
}

describe('capacity: free space is what the disk has', () => {
  it('usage().freeBytes is the smaller of capacity and file-system free less the reserve (injected statfs)', {
    timeout: 60_000,
  }, async (t) => {
    const dir = await tempDir(t, 'nodus-cap-')
    let free = 64 * MiB
    const store = new ShardStore(
      { statfs: async () => ({ bavail: free / 4096, bsize: 4096 }) },
      { dir, capacityBytes: 100 * GiB, maxShardBytes: 16 * MiB, minFreeDiskBytes: 4 * MiB },
    )
    await store.open()
    t.after(() => store.close())
    assert.equal(store.usage().freeBytes, 60 * MiB, '64 MiB on disk less the 4 MiB reserve, not 100 GiB')

    // A stored shard counts against the disk reading until the next statfs (as if written).
    const bytes = bytesOf(MiB, 1)
    await store.put(cidOf(bytes), bytes)
    assert.equal(store.usage().freeBytes, 59 * MiB)

    // A declared size the disk cannot take is refused at once, and nothing is reserved.
    free = 19 * MiB
    const big = bytesOf(16 * MiB, 2)
    await store.close()
    await store.open() // a fresh reading at open
    assert.equal(store.usage().freeBytes, 15 * MiB)
    const ac = new AbortController()
    t.after(() => ac.abort())
    await assert.rejects(
      store.put(cidOf(big), stalled([], ac.signal), { expectedSize: big.byteLength, signal: ac.signal }),
      (err: unknown) => isNodusError(err, 'STORE_FULL') && err.details.reason === 'disk reserve',
    )
    assert.equal(store.reservedBytes, 0)

    // The configured capacity still bounds it when it is the smaller.
    const small = new ShardStore(
      { statfs: disk(64 * GiB) },
      { dir: join(dir, 'small'), capacityBytes: 10 * MiB, maxShardBytes: MiB, minFreeDiskBytes: 4 * MiB },
    )
    await small.open()
    t.after(() => small.close())
    assert.equal(small.usage().freeBytes, 10 * MiB)
  })

  it('usage() never waits for statfs: a stale reading is served while a refresh runs in the background', {
    timeout: 10_000,
  }, async () => {
    let now = 0
    let pending: PromiseWithResolvers<StatfsResult> | undefined
    let calls = 0
    const guard = new CapacityGuard({
      dir: '/unused',
      capacityBytes: 100 * GiB,
      minFreeDiskBytes: 0,
      now: () => now,
      statfs: () => {
        calls++
        pending = Promise.withResolvers<StatfsResult>()
        return pending.promise
      },
    })
    // No reading yet: capacity alone, and a refresh was started.
    assert.equal(guard.freeBytes(0), 100 * GiB)
    assert.equal(calls, 1)
    pending?.resolve({ bavail: 1000, bsize: 4096 })
    await guard.refresh()
    assert.equal(guard.freeBytes(0), 1000 * 4096)
    assert.equal(calls, 1, 'a fresh reading is reused')
    // Stale: the old figure comes back at once while one refresh (not one per call) runs.
    now += USAGE_STATFS_TTL_MS
    assert.equal(guard.freeBytes(0), 1000 * 4096)
    assert.equal(guard.freeBytes(0), 1000 * 4096)
    assert.equal(calls, 2)
    pending?.resolve({ bavail: 10, bsize: 4096 })
    await guard.refresh()
    assert.equal(guard.freeBytes(0), 10 * 4096)
  })

  it('a node whose data directory is a 64 MB tmpfs reports at most 64 MB free to its peers', {
    timeout: 120_000,
  }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'nodus-cap-tmpfs-'))
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', dir], { encoding: 'utf8' })
    if (mounted.status !== 0) {
      await rm(dir, { recursive: true, force: true })
      if (/permission denied|not permitted|EPERM|must be superuser/i.test(mounted.stderr)) {
        t.skip(`cannot mount a tmpfs here (EPERM): ${mounted.stderr.trim()}`)
        return
      }
      assert.fail(`mount failed: ${mounted.stderr}`)
    }
    let nodes: NodusNode[] = []
    t.after(async () => {
      // Nodes first, then the file system under them, then its mount point.
      await Promise.all(nodes.map((n) => n.stop()))
      const r = spawnSync('umount', [dir], { encoding: 'utf8' })
      if (r.status !== 0) spawnSync('umount', ['-l', dir])
      await rm(dir, { recursive: true, force: true })
      assert.equal(r.status, 0, `umount failed: ${r.stderr}`)
    })
    // Configured capacity 100 GiB (the default), on a 64 MB file system.
    nodes = await startNodes(dir, 2, { storage: { minFreeDiskBytes: 4 * MiB, cacheBytes: 0 } })
    const [a, b] = nodes as [NodusNode, NodusNode]
    assert.equal(a.store.usage().capacityBytes, 100 * GiB)
    assert.ok(a.store.usage().freeBytes <= 64 * MiB - 4 * MiB, `reports ${a.store.usage().freeBytes}`)
    assert.ok(a.store.usage().freeBytes > 0)

    // Its peers see the same in its signed capacity report.
    assert.equal(await a.exchange.push(b.libp2p.peerId), true)
    const report = b.reports.get(a.peerId)
    assert.ok(report !== undefined, 'no capacity report received')
    assert.ok(report.freeBytes <= 64 * MiB, `report says ${report.freeBytes} bytes free`)

    // Honest puts still land while there is room, and what they take shows at once.
    const before = a.store.usage().freeBytes
    const small = bytesOf(256 * 1024, 3)
    assert.equal((await a.store.put(cidOf(small), small)).created, true)
    assert.ok(a.store.usage().freeBytes <= before - small.byteLength)
  })
})

describe('capacity: a put reserves bytes as they arrive, not as declared', () => {
  it('80 stalled puts declaring 16 MiB each reserve nothing; an honest put still lands', {
    timeout: 60_000,
  }, async (t) => {
    const dir = await tempDir(t, 'nodus-cap-stall-')
    // 64 MiB of capacity: four such declarations would have filled it.
    const store = new ShardStore({}, { dir, capacityBytes: 64 * MiB, maxShardBytes: 16 * MiB })
    await store.open()
    t.after(() => store.close())
    const ac = new AbortController()
    const free = store.usage().freeBytes
    const shards = Array.from({ length: 80 }, (_, i) => cidOf(bytesOf(4096, 1000 + i)))
    let stalls = 0
    const allStalled = Promise.withResolvers<void>()
    const onStall = (): void => {
      if (++stalls === shards.length) allStalled.resolve()
    }
    const puts = shards.map((cid) =>
      store
        .put(cid, stalled([], ac.signal, onStall), { expectedSize: 16 * MiB, signal: ac.signal })
        .catch((e) => e),
    )
    await allStalled.promise // every put waits on its stalled source
    assert.equal(store.reservedBytes, 0, 'stalled puts hold no capacity')
    assert.equal(store.usage().freeBytes, free)

    const honest = bytesOf(8 * MiB, 5)
    assert.equal((await store.put(cidOf(honest), honest)).created, true)
    ac.abort()
    for (const r of await Promise.all(puts)) assert.ok(isNodusError(r, 'ABORTED'), String(r))
    assert.equal(store.reservedBytes, 0)
  })

  it('a stalled put holds exactly the bytes it sent', { timeout: 60_000 }, async (t) => {
    const dir = await tempDir(t, 'nodus-cap-stall1-')
    const store = new ShardStore({}, { dir, capacityBytes: GiB, maxShardBytes: 16 * MiB })
    await store.open()
    t.after(() => store.close())
    const bytes = bytesOf(MiB, 6)
    const ac = new AbortController()
    const sent = Promise.withResolvers<void>()
    const source = async function* (): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, 64 * 1024)
      yield bytes.subarray(64 * 1024, 96 * 1024)
      sent.resolve()
      await new Promise<void>((resolve) => ac.signal.addEventListener('abort', () => resolve()))
    }
    const put = store.put(cidOf(bytes), source(), { expectedSize: MiB, signal: ac.signal })
    await sent.promise // the store asked for more after taking both chunks
    assert.equal(store.reservedBytes, 96 * 1024)
    ac.abort()
    await assert.rejects(put, (err: unknown) => isNodusError(err, 'ABORTED'))
    assert.equal(store.reservedBytes, 0)
    assert.equal(store.usage().bytes, 0)
  })
})
