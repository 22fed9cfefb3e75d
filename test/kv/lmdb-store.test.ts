/**
 * LmdbOrderedStore beyond the shared OrderedStore contract (test/kv/ordered.test.ts): what a resolved
 * write stored survives close and reopen, and a SIGKILL of the writing process (not a power loss,
 * which no test here can cause); a write is atomic.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { get } from '../../src/kv/state/basic.ts'
import { scan } from '../../src/kv/state/keyspace.ts'
import { LmdbOrderedStore } from '../../src/kv/store/lmdb-store.ts'
import { DB } from './state-ops.ts'

const WRITER = fileURLToPath(new URL('./fixtures/lmdb-crash-writer.ts', import.meta.url))

const k = (...b: number[]): Uint8Array => Uint8Array.from(b)

test('data of resolved writes survives close and reopen; an aborted write left nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-kv-lmdb-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const s = LmdbOrderedStore.open({ path: dir })
  const writes: Promise<unknown>[] = []
  for (let i = 0; i < 100; i++) writes.push(s.write((w) => w.put(k(1, i), k(i))))
  writes.push(
    s.write(() => {
      throw new Error('aborted')
    }),
  )
  const failed = writes.map((p) => p.catch(() => 'failed'))
  assert.equal((await Promise.all(failed)).filter((r) => r === 'failed').length, 1)
  await s.write((w) => {
    w.del(k(1, 0))
    w.put(k(2), new Uint8Array(5000).fill(7))
  })
  await s.close()

  const again = LmdbOrderedStore.open({ path: dir })
  const entries = [...again.range({ start: k(1), end: k(2) })]
  assert.equal(entries.length, 99)
  assert.deepEqual([...(again.get(k(1, 42)) ?? [])], [42])
  assert.equal(again.get(k(1, 0)), undefined)
  assert.equal(again.get(k(2))?.length, 5000)
  await again.close()
})

test('keys LMDB cannot hold throw inside the write, which then keeps nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-kv-lmdb-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const s = LmdbOrderedStore.open({ path: dir })
  await assert.rejects(
    s.write((w) => {
      w.put(k(1), k(1))
      w.put(new Uint8Array(0), k(1))
    }),
  )
  await assert.rejects(s.write((w) => w.put(new Uint8Array(4000), k(1))))
  assert.deepEqual([...s.range()], [])
  await s.close()
})

test('a SIGKILL keeps every acknowledged write, and each write whole or not at all', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-kv-crash-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const child = spawn(process.execPath, [WRITER, dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
  })
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()))
  const acked: number[] = []
  for await (const line of createInterface({ input: child.stdout })) {
    acked.push(Number(line.split(' ')[1]))
    if (acked.length === 100) child.kill('SIGKILL')
  }
  await closed
  assert.ok(acked.length >= 100, `the writer acknowledged ${acked.length} writes: ${stderr}`)

  const s = LmdbOrderedStore.open({ path: dir })
  t.after(() => s.close())
  for (const i of acked) assert.equal((get(s, DB, `b${i}-9`, { nowMs: 0 }) as unknown[])[0], i, `batch ${i}`)
  const keys = scan(s, DB, { nowMs: 0, limit: 100_000 }).keys
  const perBatch = new Map<string, number>()
  for (const k of keys) {
    const b = k.split('-')[0] as string
    perBatch.set(b, (perBatch.get(b) ?? 0) + 1)
  }
  for (const [b, n] of perBatch) assert.equal(n, 10, `batch ${b} is whole`)
  assert.ok(perBatch.size >= acked.length)
})
