/**
 * The OrderedStore contract, run against both implementations (MemoryOrderedStore and
 * LmdbOrderedStore): bytewise order, half-open ranges both ways, limits, and a throwing write that
 * leaves nothing behind.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { LmdbOrderedStore } from '../../src/kv/store/lmdb-store.ts'
import { MemoryOrderedStore, type OrderedStore } from '../../src/kv/store/ordered.ts'

const k = (...b: number[]): Uint8Array => Uint8Array.from(b)
const keys = (it: Iterable<[Uint8Array, Uint8Array]>): number[][] => [...it].map(([key]) => [...key])

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

const IMPLEMENTATIONS: [string, () => Promise<OrderedStore>][] = [
  ['MemoryOrderedStore', async () => new MemoryOrderedStore()],
  [
    'LmdbOrderedStore',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'nodus-kv-ordered-'))
      dirs.push(dir)
      return LmdbOrderedStore.open({ path: dir })
    },
  ],
]

for (const [name, make] of IMPLEMENTATIONS) {
  describe(name, () => {
    test('ranges are [start, end), bytewise, forward and reverse, with limits', async () => {
      const s = await make()
      await s.write((w) => {
        for (const key of [k(2), k(1), k(1, 0), k(3), k(2, 255)]) w.put(key, k(9))
      })
      assert.deepEqual(keys(s.range()), [[1], [1, 0], [2], [2, 255], [3]])
      assert.deepEqual(keys(s.range({ start: k(1, 0), end: k(3) })), [[1, 0], [2], [2, 255]])
      assert.deepEqual(keys(s.range({ start: k(1, 0), end: k(3), reverse: true })), [[2, 255], [2], [1, 0]])
      assert.deepEqual(keys(s.range({ end: k(2), reverse: true, limit: 1 })), [[1, 0]])
      assert.deepEqual(keys(s.range({ start: k(2), limit: 2 })), [[2], [2, 255]])
      assert.deepEqual(keys(s.range({ limit: 0 })), [])
      // Bounds that are not keys, bounds past either end, and an empty range, both ways.
      assert.deepEqual(keys(s.range({ start: k(1, 5), end: k(2, 128), reverse: true })), [[2]])
      assert.deepEqual(keys(s.range({ start: k(3), reverse: true })), [[3]])
      assert.deepEqual(keys(s.range({ start: k(0), end: k(9), reverse: true, limit: 2 })), [[3], [2, 255]])
      assert.deepEqual(keys(s.range({ start: k(2), end: k(2), reverse: true })), [])
      assert.deepEqual(keys(s.range({ start: k(2), end: k(2) })), [])
      await s.close()
    })

    test('a write sees its own writes; a throwing write keeps nothing', async () => {
      const s = await make()
      await s.write((w) => w.put(k(1), k(1)))
      const seen = await s.write((w) => {
        w.put(k(2), k(2))
        w.del(k(1))
        return [keys(w.range()), keys(w.range({ reverse: true, start: k(2) })), [...(w.get(k(2)) ?? [])]]
      })
      assert.deepEqual(seen, [[[2]], [[2]], [2]])
      await assert.rejects(
        s.write((w) => {
          w.put(k(3), k(3))
          w.del(k(2))
          throw new Error('boom')
        }),
        /boom/,
      )
      assert.deepEqual(keys(s.range()), [[2]])
      const buf = k(7)
      await s.write((w) => w.put(buf, buf))
      buf[0] = 8
      assert.deepEqual([...(s.get(k(7)) ?? [])], [7], 'put copies its arguments')
      await s.close()
    })

    test('writes queued in one turn apply in order; a throwing one among them aborts only itself', async () => {
      const s = await make()
      const results = await Promise.allSettled([
        s.write((w) => {
          w.put(k(1), k(1))
          return 'a'
        }),
        s.write((w) => {
          w.put(k(2), k(2))
          throw new Error('boom')
        }),
        s.write((w) => {
          // Sees the first write of the batch: writes apply in the order they were queued.
          w.put(k(3), w.get(k(1)) ?? k(0))
          return 'c'
        }),
      ])
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      )
      assert.deepEqual(keys(s.range()), [[1], [3]])
      assert.deepEqual([...(s.get(k(3)) ?? [])], [1])
      await s.close()
    })
  })
}
