/**
 * Crash safety of the shard store: a child process writing thousands of shards is SIGKILLed at seeded
 * random points; the store reopened in this process must run its recovery pass, leave index and files in
 * agreement, keep usage equal to the index contents, and hold every acknowledged shard byte for byte.
 * Also: the clean-shutdown marker, and the recovery pass on hand-made damage (orphans, lost files).
 *
 * Seed: NODUS_CRASH_SEED (default 0xc0ffee); rounds: NODUS_CRASH_ROUNDS (default 5).
 */

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, it, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { CID } from 'multiformats/cid'
import { ShardStore } from '../../src/storage/store/shard-store.ts'
import { bytesOf, cidOf, crashShard, prng } from './fixtures/shard-bytes.ts'

const WRITER = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url))
const SEED = Number(process.env.NODUS_CRASH_SEED ?? 0xc0ffee)
const ROUNDS = Number(process.env.NODUS_CRASH_ROUNDS ?? 5)
const OPS = 2000
const NOW_MS = 1_700_000_000_000

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-shard-crash-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function openStore(dir: string, warnings: object[] = [], removed: string[] = []): ShardStore {
  return new ShardStore(
    {
      clock: { now: () => NOW_MS },
      logger: { debug() {}, warn: (o) => void warnings.push(o) },
      onRemoved: (cid, size, reason) => void removed.push(`${cid} ${size} ${reason}`),
    },
    { dir, capacityBytes: 1 << 30, maxShardBytes: 1 << 20, minFreeDiskBytes: 0 },
  )
}

/** Every shard file under `dir`'s fan-out directories, with its size. */
async function shardFiles(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    if (!ent.isDirectory() || !/^[a-z2-7]{2}$/.test(ent.name)) continue
    for (const name of await readdir(join(dir, ent.name))) {
      out.set(name, (await stat(join(dir, ent.name, name))).size)
    }
  }
  return out
}

/** All records, page by page. */
function allRecords(store: ShardStore): Map<string, number> {
  const out = new Map<string, number>()
  let after: string | undefined
  for (;;) {
    const page = store.list(after === undefined ? { limit: 500 } : { limit: 500, after })
    if (page.length === 0) return out
    for (const r of page) out.set(r.cid, r.size)
    after = page.at(-1)?.cid
  }
}

/** Index and files agree, usage equals the index contents, tmp/ is empty. */
async function assertConsistent(dir: string, store: ShardStore): Promise<Map<string, number>> {
  const records = allRecords(store)
  const files = await shardFiles(dir)
  assert.deepEqual(
    [...files.entries()].sort(),
    [...records.entries()].sort(),
    'every record has a file of its size and every file has a record',
  )
  const usage = store.usage()
  assert.equal(usage.shards, records.size, 'usage.shards equals the number of records')
  assert.equal(
    usage.bytes,
    [...records.values()].reduce((a, b) => a + b, 0),
    'usage.bytes equals the sum of record sizes',
  )
  assert.deepEqual(await readdir(join(dir, 'tmp')), [])
  return records
}

interface Acks {
  /** put i → [size, cid] for acknowledged non-ephemeral puts. */
  puts: Map<string, { i: number; size: number }>
  /** CIDs a delete was issued for (acknowledged or not). */
  deleteIssued: Set<string>
  deleteAcked: Set<string>
  lines: number
}

/** Run the writer, SIGKILL it after `killAfter` acknowledgements, and collect every line it printed. */
async function runAndKill(
  dir: string,
  seed: number,
  killAfter: number,
): Promise<{ acks: Acks; killed: boolean }> {
  const child = spawn(process.execPath, [WRITER, dir, String(seed), String(OPS)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
  })
  const acks: Acks = { puts: new Map(), deleteIssued: new Set(), deleteAcked: new Set(), lines: 0 }
  let acked = 0
  let killed = false
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  for await (const line of createInterface({ input: child.stdout })) {
    const [tag, a, b, c, d] = line.split(' ')
    acks.lines++
    if (tag === 'P' && d === '0') acks.puts.set(c as string, { i: Number(a), size: Number(b) })
    else if (tag === 'd') acks.deleteIssued.add(a as string)
    else if (tag === 'D') acks.deleteAcked.add(a as string)
    if (tag === 'P' || tag === 'D') acked++
    if (!killed && acked >= killAfter) {
      killed = child.kill('SIGKILL')
    }
  }
  const code = await exited
  if (!killed) assert.equal(code, 0, `writer failed: ${stderr}`)
  return { acks, killed }
}

describe('ShardStore crash safety', () => {
  it(`keeps every acknowledged shard across ${ROUNDS} SIGKILLs at seeded random points`, async (t) => {
    const rng = prng(SEED)
    t.diagnostic(`seed ${SEED} (NODUS_CRASH_SEED)`)
    for (let round = 0; round < ROUNDS; round++) {
      const dir = await tempDir(t)
      const seed = SEED + round
      const killAfter = rng.int(20, Math.floor(OPS * 0.85))
      const { acks, killed } = await runAndKill(dir, seed, killAfter)
      t.diagnostic(`round ${round}: kill after ${killAfter} acks, ${acks.lines} lines, killed=${killed}`)
      assert.ok(killed, 'the writer was killed before it finished')

      const store = openStore(dir)
      await store.open()
      try {
        const report = store.lastRecovery
        t.diagnostic(
          `round ${round}: recovery removed ${report?.orphansRemoved} orphans, ${report?.tempFilesRemoved} temp files`,
        )
        assert.equal(report?.fullPass, true, 'no clean-shutdown marker: full pass')
        assert.deepEqual(store.lastRecovery?.lost, [], 'a crash loses no indexed shard')
        await assertConsistent(dir, store)
        for (const [cid, { i, size }] of acks.puts) {
          if (acks.deleteIssued.has(cid)) continue
          const bytes = await store.get(CID.parse(cid))
          assert.deepEqual(new Uint8Array(bytes), crashShard(seed, i, size), `acknowledged shard ${cid}`)
        }
        for (const cid of acks.deleteAcked) assert.equal(store.has(CID.parse(cid)), false, `deleted ${cid}`)
        // The expiry index survived too: cleanup removes exactly the expired (ephemeral) shards left.
        await store.cleanupExpired(1000)
        for (const r of store.list({ limit: 10_000 })) {
          assert.ok(r.expiresAt === undefined || r.expiresAt > 1000, `expired ${r.cid} was cleaned up`)
        }
        await assertConsistent(dir, store)
      } finally {
        await store.close()
      }
    }
  })

  it('a clean close writes the marker; the next open skips the full pass (and a crash after open does not)', async (t) => {
    const dir = await tempDir(t)
    const store = openStore(dir)
    await store.open()
    assert.equal(store.lastRecovery?.fullPass, true, 'a new store has no marker')
    const bytes = bytesOf(1000, 1)
    await store.put(cidOf(bytes), bytes)
    await store.close()
    assert.equal(existsSync(join(dir, 'clean-shutdown')), true)
    assert.deepEqual(await readdir(join(dir, 'tmp')), [])

    // An orphan planted while closed is not seen: the marker says the last shutdown was clean.
    const orphan = bytesOf(500, 2)
    const orphanKey = cidOf(orphan).toString()
    await mkdir(join(dir, orphanKey.slice(-3, -1)), { recursive: true })
    await writeFile(join(dir, orphanKey.slice(-3, -1), orphanKey), orphan)
    await writeFile(join(dir, 'tmp', 'left-over'), 'partial')
    const again = openStore(dir)
    await again.open()
    assert.deepEqual(again.lastRecovery, {
      fullPass: false,
      tempFilesRemoved: 1,
      orphansRemoved: 0,
      lost: [],
      lostCount: 0,
      usage: { bytes: 1000, shards: 1 },
      usageCorrected: false,
    })
    assert.equal(existsSync(join(dir, 'clean-shutdown')), false, 'open removes the marker')
    assert.equal(again.has(cidOf(orphan)), false)

    // Simulate a crash (no close): the next open runs the full pass and removes the orphan.
    const crashed = openStore(dir)
    t.after(() => crashed.close())
    await again.close()
    await rm(join(dir, 'clean-shutdown'))
    await crashed.open()
    assert.equal(crashed.lastRecovery?.fullPass, true)
    assert.equal(crashed.lastRecovery?.orphansRemoved, 1)
    await assertConsistent(dir, crashed)
    assert.deepEqual(new Uint8Array(await crashed.get(cidOf(bytes))), bytes)
  })

  it('the recovery pass removes lost records (missing or wrong-size file) from index and usage, and reports them', async (t) => {
    const dir = await tempDir(t)
    const warnings: object[] = []
    const store = openStore(dir, warnings)
    await store.open()
    const shards = [0, 1, 2, 3].map((i) => bytesOf(2000 + i, 10 + i))
    for (const [i, b] of shards.entries()) {
      await store.put(cidOf(b), b, i === 1 ? { expiresAt: 5000 } : {})
    }
    await store.close()
    const path = (b: Uint8Array): string => {
      const key = cidOf(b).toString()
      return join(dir, key.slice(-3, -1), key)
    }
    await rm(path(shards[1] as Uint8Array)) // missing file (with an expiry entry)
    await truncate(path(shards[2] as Uint8Array), 100) // wrong size
    await rm(join(dir, 'clean-shutdown'))

    const removed: string[] = []
    const again = openStore(dir, warnings, removed)
    t.after(() => again.close())
    await again.open()
    // Each lost record is reported once: missing file `lost`, wrong size `corrupt`.
    assert.deepEqual(
      removed.sort(),
      [
        `${cidOf(shards[1] as Uint8Array)} 2001 lost`,
        `${cidOf(shards[2] as Uint8Array)} 2002 corrupt`,
      ].sort(),
    )
    const report = again.lastRecovery
    assert.equal(report?.fullPass, true)
    assert.equal(report?.lostCount, 2)
    assert.deepEqual(
      [...(report?.lost ?? [])].sort(),
      [cidOf(shards[1] as Uint8Array).toString(), cidOf(shards[2] as Uint8Array).toString()].sort(),
    )
    assert.equal(report?.usageCorrected, false, 'the counters were right; only the lost records came off')
    assert.deepEqual(report?.usage, { bytes: 2000 + 2003, shards: 2 })
    const records = await assertConsistent(dir, again)
    assert.deepEqual(
      [...records.keys()].sort(),
      [cidOf(shards[0] as Uint8Array).toString(), cidOf(shards[3] as Uint8Array).toString()].sort(),
    )
    assert.ok(warnings.length >= 2, 'lost shards are logged')
    // The lost shard's expiry entry went with it: cleanup finds nothing to do.
    assert.deepEqual(await again.cleanupExpired(10_000), { deleted: 0, bytes: 0 })
    // A lost shard can be stored again.
    assert.equal((await again.put(cidOf(shards[2] as Uint8Array), shards[2] as Uint8Array)).created, true)
    assert.deepEqual(new Uint8Array(await readFile(path(shards[2] as Uint8Array))), shards[2])
  })
})
