/**
 * Lists: LPUSH/RPUSH order by HLC (LPUSH a b c gives c b a, before every older element), LRANGE with
 * Redis's start/stop (negative, clamped), removals and LSET naming element ids, LLEN.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { listElementId } from '../../src/kv/state/keys.ts'
import { type ListElement, llen, lrange } from '../../src/kv/state/list.ts'
import { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'
import { apply, at, DB, makeOp } from './state-ops.ts'

const values = (els: ListElement[]): unknown[] => els.map((e) => e.value)

test('pushes order by HLC like Redis; lrange takes negative and out-of-range indexes', async () => {
  const s = new MemoryOrderedStore()
  // Redis: RPUSH l x y; LPUSH l a b c; RPUSH l z -> c b a x y z. Applied out of order here.
  await apply(
    s,
    makeOp('list', 'rpush', 'l', ['z'], { at: 30 }),
    makeOp('list', 'lpush', 'l', ['a', 'b', 'c'], { at: 20 }),
    makeOp('list', 'rpush', 'l', ['x', 'y'], { at: 10 }),
  )
  const all = lrange(s, DB, 'l', 0, -1, at())
  assert.deepEqual(values(all), ['c', 'b', 'a', 'x', 'y', 'z'])
  assert.deepEqual(values(lrange(s, DB, 'l', 1, 2, at())), ['b', 'a'])
  assert.deepEqual(values(lrange(s, DB, 'l', -2, -1, at())), ['y', 'z'])
  assert.deepEqual(values(lrange(s, DB, 'l', -100, 1, at())), ['c', 'b'])
  assert.deepEqual(values(lrange(s, DB, 'l', 4, 100, at())), ['y', 'z'])
  assert.deepEqual(values(lrange(s, DB, 'l', 5, 2, at())), [])
  assert.deepEqual(values(lrange(s, DB, 'l', 6, 7, at())), [])
  assert.equal(llen(s, DB, 'l', at()), 6)
  assert.ok(all.every((e) => e.id.length === 45))

  // A later LPUSH goes before everything, a later RPUSH after everything.
  await apply(
    s,
    makeOp('list', 'lpush', 'l', ['first'], { at: 40 }),
    makeOp('list', 'rpush', 'l', ['last'], { at: 41 }),
  )
  assert.deepEqual(values(lrange(s, DB, 'l', 0, -1, at())), ['first', 'c', 'b', 'a', 'x', 'y', 'z', 'last'])
})

test('lpop/rpop/lrem remove the elements they name; lset replaces one; an older lset loses', async () => {
  const s = new MemoryOrderedStore()
  await apply(s, makeOp('list', 'rpush', 'l', ['a', 'b', 'c', 'd'], { at: 10 }))
  const [a, b, c, d] = lrange(s, DB, 'l', 0, -1, at()) as ListElement[]
  // LPOP: the writer names the head; RPOP the tail; LREM every element equal to a value.
  await apply(
    s,
    makeOp('list', 'lpop', 'l', [(a as ListElement).id], { at: 11 }),
    makeOp('list', 'rpop', 'l', [(d as ListElement).id], { at: 12 }),
    makeOp('list', 'lset', 'l', [(b as ListElement).id, 'B'], { at: 14 }),
    makeOp('list', 'lset', 'l', [(b as ListElement).id, 'older'], { at: 13 }),
  )
  assert.deepEqual(values(lrange(s, DB, 'l', 0, -1, at())), ['B', 'c'])
  // Two writers popping the same element concurrently remove it once.
  await apply(
    s,
    makeOp('list', 'lrem', 'l', [(c as ListElement).id], { at: 15 }),
    makeOp('list', 'rpop', 'l', [(c as ListElement).id], { at: 16 }),
  )
  assert.deepEqual(values(lrange(s, DB, 'l', 0, -1, at())), ['B'])
  assert.equal(llen(s, DB, 'l', at()), 1)
  // A removal arriving before the push it names still wins over it.
  const push = makeOp('list', 'rpush', 'l2', ['v'], { at: 20 })
  await apply(
    s,
    makeOp('list', 'lrem', 'l2', [listElementId('right', push.body.hlc, push.id, 0)], { at: 21 }),
    push,
  )
  assert.equal(llen(s, DB, 'l2', at()), 0)
})
