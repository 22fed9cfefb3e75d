/**
 * What GET /kv/:db/:key answers (src/kv/key-read.ts): each type's value, the ranges its query
 * parameters select as Redis's range commands do, the 1,000-element bound, ±inf scores as strings,
 * and typed errors.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MAX_READ_ELEMENTS, readKey } from '../../src/kv/key-read.ts'
import { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'
import { apply, DB, makeOp } from './state-ops.ts'

async function store(): Promise<MemoryOrderedStore> {
  const s = new MemoryOrderedStore()
  const many = Array.from({ length: 1200 }, (_, i) => `v${i}`)
  await apply(
    s,
    makeOp('string', 'set', 'str', ['hello'], { at: 1 }),
    makeOp('list', 'rpush', 'list', many, { at: 2 }),
    makeOp('zset', 'zadd', 'z', [1, 'one', 2, 'two', 3, 'three', '-inf', 'low'], { at: 3 }),
    makeOp('stream', 'xadd', 's', ['5-1', 'f', 'a'], { at: 4 }),
    makeOp('stream', 'xadd', 's', ['7-0', 'f', 'b'], { at: 5 }),
    makeOp('ts', 'ts.add', 't', [1000, 1.5], { at: 6 }),
    makeOp('ts', 'ts.add', 't', [2000, 2.5], { at: 7 }),
    makeOp('ts', 'ts.add', 't', [3000, 3.5], { at: 8 }),
    makeOp('json', 'json.set', 'j', [{ a: 1, b: [1, 2] }], { at: 9 }),
    makeOp('geo', 'geoadd', 'g', [13.361389, 38.115556, 'Palermo', 15.087269, 37.502669, 'Catania'], {
      at: 10,
    }),
    makeOp('string', 'set', 'gone', ['x'], { at: 11, expireAt: 50 }),
  )
  return s
}

const read = (s: MemoryOrderedStore, key: string, q = {}, nowMs = 0) => readKey(s, DB, key, q, nowMs).value

test('plain reads: a string; a list capped at 1,000 elements; a JSONPath', async () => {
  const s = await store()
  assert.deepEqual(readKey(s, DB, 'str', {}, 0), { type: 'string', value: 'hello' })
  const list = read(s, 'list') as { id: string; value: string }[]
  assert.equal(list.length, MAX_READ_ELEMENTS)
  assert.equal(list[0]?.value, 'v0')
  assert.match(list[0]?.id ?? '', /^[0-9a-f]{90}$/)
  const tail = read(s, 'list', { start: '-2', stop: '-1' }) as { value: string }[]
  assert.deepEqual(
    tail.map((e) => e.value),
    ['v1198', 'v1199'],
  )
  assert.equal((read(s, 'list', { start: '100', count: 5 }) as unknown[]).length, 5)
  assert.deepEqual(read(s, 'j', { path: '$.b[*]' }), [1, 2])
})

test('sorted sets: ranks, scores (exclusive, REV, LIMIT); -inf as a string', async () => {
  const s = await store()
  assert.deepEqual(read(s, 'z', { start: '0', stop: '0' }), [{ member: 'low', score: '-inf' }])
  const members = (q: object): string[] => (read(s, 'z', q) as { member: string }[]).map((m) => m.member)
  assert.deepEqual(members({ start: '-2', stop: '-1', rev: true }), ['one', 'low'])
  assert.deepEqual(members({ by: 'score', start: '(1', stop: '+inf' }), ['two', 'three'])
  assert.deepEqual(members({ by: 'score', start: '-inf', stop: '3', rev: true, offset: 1, count: 2 }), [
    'two',
    'one',
  ])
})

test('streams, time series and geo search', async () => {
  const s = await store()
  assert.deepEqual(read(s, 's', { start: '(5-1' }), [{ id: '7-0', fields: ['f', 'b'] }])
  assert.deepEqual(
    (read(s, 's', { rev: true, count: 1 }) as { id: string }[]).map((e) => e.id),
    ['7-0'],
  )
  assert.deepEqual(read(s, 't'), [3000, 3.5])
  assert.deepEqual(read(s, 't', { start: '1500', stop: '3000' }), [
    [2000, 2.5],
    [3000, 3.5],
  ])
  const hits = read(s, 'g', { lon: 15, lat: 37, radius: 200, unit: 'km', order: 'asc' }) as {
    member: string
    distance: number
  }[]
  assert.deepEqual(
    hits.map((h) => h.member),
    ['Catania', 'Palermo'],
  )
  assert.ok(Math.abs((hits[0]?.distance ?? 0) - 56.4413) < 0.001)
  assert.deepEqual(
    (
      read(s, 'g', { member: 'Palermo', width: 400, height: 400, unit: 'km', count: 1 }) as {
        member: string
      }[]
    ).map((h) => h.member),
    ['Palermo'],
  )
})

test('typed errors: absent or expired key, wrong bounds, an incomplete geo search', async () => {
  const s = await store()
  assert.throws(() => read(s, 'nothing'), { code: 'KV_KEY_NOT_FOUND' })
  assert.equal(read(s, 'gone', {}, 49), 'x')
  assert.throws(() => read(s, 'gone', {}, 50), { code: 'KV_KEY_NOT_FOUND' })
  assert.throws(() => read(s, 'z', { start: 'x' }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => read(s, 'z', { by: 'score', start: 'nope' }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => read(s, 't', { start: '-5' }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => read(s, 'g', { radius: 5 }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => read(s, 'g', { lon: 1, lat: 2 }), { code: 'INVALID_ARGUMENT' })
  assert.throws(() => read(s, 'j', { path: '$[' }), { code: 'INVALID_ARGUMENT' })
})
