/**
 * LmdbOrderedStore beyond the shared OrderedStore contract (test/kv/ordered.test.ts): what a resolved
 * write stored survives close and reopen; a write's reads go through its own transaction.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { LmdbOrderedStore } from '../../src/kv/store/lmdb-store.ts'

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
