/**
 * MemoryOrderedStore: bytewise order, half-open ranges both ways, limits, and a throwing write that
 * leaves nothing behind.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'

const k = (...b: number[]): Uint8Array => Uint8Array.from(b)
const keys = (it: Iterable<[Uint8Array, Uint8Array]>): number[][] => [...it].map(([key]) => [...key])

test('ranges are [start, end), bytewise, forward and reverse, with limits', async () => {
  const s = new MemoryOrderedStore()
  await s.write((w) => {
    for (const key of [k(2), k(1), k(1, 0), k(3), k(2, 255)]) w.put(key, k(9))
  })
  assert.deepEqual(keys(s.range()), [[1], [1, 0], [2], [2, 255], [3]])
  assert.deepEqual(keys(s.range({ start: k(1, 0), end: k(3) })), [[1, 0], [2], [2, 255]])
  assert.deepEqual(keys(s.range({ start: k(1, 0), end: k(3), reverse: true })), [[2, 255], [2], [1, 0]])
  assert.deepEqual(keys(s.range({ end: k(2), reverse: true, limit: 1 })), [[1, 0]])
  assert.deepEqual(keys(s.range({ start: k(2), limit: 2 })), [[2], [2, 255]])
  assert.deepEqual(keys(s.range({ limit: 0 })), [])
})

test('a write sees its own writes; a throwing write keeps nothing', async () => {
  const s = new MemoryOrderedStore()
  await s.write((w) => w.put(k(1), k(1)))
  const seen = await s.write((w) => {
    w.put(k(2), k(2))
    w.del(k(1))
    return keys(w.range())
  })
  assert.deepEqual(seen, [[2]])
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
})
