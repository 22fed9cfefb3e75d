/**
 * Sorted sets against Redis's documented ZRANGE / ZRANGEBYSCORE / ZREVRANGEBYSCORE examples: ranks
 * (negative, clamped, REV), BYSCORE with exclusive bounds, ±inf, LIMIT offset count, REV; score
 * updates move a member; ties order by member; negative and infinite scores.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { parseScoreBound, type ZMember, zcard, zrange, zscore } from '../../src/kv/state/zset.ts'
import { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'
import { apply, at, DB, makeOp } from './state-ops.ts'

const names = (ms: ZMember[]): string[] => ms.map((m) => m.member)
const b = parseScoreBound

async function myzset(): Promise<MemoryOrderedStore> {
  const s = new MemoryOrderedStore()
  await apply(s, makeOp('zset', 'zadd', 'z', [1, 'one', 2, 'two', 3, 'three'], { at: 10 }))
  return s
}

test('ZRANGE by rank, as Redis documents it', async () => {
  const s = await myzset()
  const r = (start: number, stop: number, rev = false): string[] =>
    names(zrange(s, DB, 'z', { by: 'rank', start, stop, rev }, at()))
  assert.deepEqual(r(0, -1), ['one', 'two', 'three'])
  assert.deepEqual(r(2, 3), ['three'])
  assert.deepEqual(r(-2, -1), ['two', 'three'])
  assert.deepEqual(r(0, -1, true), ['three', 'two', 'one'])
  assert.deepEqual(r(5, 10), [])
  assert.deepEqual(zrange(s, DB, 'z', { by: 'rank', start: 0, stop: 1 }, at()), [
    { member: 'one', score: 1 },
    { member: 'two', score: 2 },
  ])
  assert.equal(zcard(s, DB, 'z', at()), 3)
})

test('BYSCORE: -inf/+inf, exclusive bounds, LIMIT, REV (ZRANGEBYSCORE / ZREVRANGEBYSCORE examples)', async () => {
  const s = await myzset()
  const q = (
    min: string,
    max: string,
    extra: { rev?: boolean; offset?: number; count?: number } = {},
  ): string[] => names(zrange(s, DB, 'z', { by: 'score', min: b(min), max: b(max), ...extra }, at()))
  assert.deepEqual(q('-inf', '+inf'), ['one', 'two', 'three'])
  assert.deepEqual(q('1', '2'), ['one', 'two'])
  assert.deepEqual(q('(1', '2'), ['two'])
  assert.deepEqual(q('(1', '(2'), [])
  assert.deepEqual(q('(1', 'inf'), ['two', 'three'])
  assert.deepEqual(q('3', '1'), [], 'min above max')
  // ZREVRANGEBYSCORE myzset +inf -inf / 2 1 / 2 (1 / (2 (1
  assert.deepEqual(q('-inf', '+inf', { rev: true }), ['three', 'two', 'one'])
  assert.deepEqual(q('1', '2', { rev: true }), ['two', 'one'])
  assert.deepEqual(q('(1', '2', { rev: true }), ['two'])
  assert.deepEqual(q('(1', '(2', { rev: true }), [])
  // LIMIT offset count, both ways; negative count means all.
  assert.deepEqual(q('-inf', '+inf', { offset: 1, count: 1 }), ['two'])
  assert.deepEqual(q('-inf', '+inf', { offset: 1, count: -1 }), ['two', 'three'])
  assert.deepEqual(q('-inf', '+inf', { rev: true, offset: 0, count: 2 }), ['three', 'two'])
  assert.deepEqual(q('(1', '+inf', { offset: 5, count: 2 }), [])
  assert.throws(
    () => b('abc'),
    (e) => isNodusError(e, 'INVALID_ARGUMENT'),
  )
})

test('scores move members; ties order by member; negative, zero and infinite scores', async () => {
  const s = await myzset()
  await apply(
    s,
    makeOp(
      'zset',
      'zadd',
      'z',
      [2, 'one', -1.5, 'neg', 0, 'zero', '+inf', 'top', '-inf', 'bottom', 2, 'a-two'],
      { at: 11 },
    ),
    makeOp('zset', 'zadd', 'z', [100, 'one'], { at: 9 }), // older: loses to the score 2 above
    makeOp('zset', 'zrem', 'z', ['three'], { at: 12 }),
  )
  assert.deepEqual(names(zrange(s, DB, 'z', { by: 'rank', start: 0, stop: -1 }, at())), [
    'bottom',
    'neg',
    'zero',
    'a-two',
    'one',
    'two',
    'top',
  ])
  assert.equal(zscore(s, DB, 'z', 'one', at()), 2)
  assert.equal(zscore(s, DB, 'z', 'top', at()), Number.POSITIVE_INFINITY)
  assert.equal(zscore(s, DB, 'z', 'three', at()), undefined)
  assert.deepEqual(names(zrange(s, DB, 'z', { by: 'score', min: b('(-inf'), max: b('(2') }, at())), [
    'neg',
    'zero',
  ])
  assert.deepEqual(names(zrange(s, DB, 'z', { by: 'score', min: b(2), max: b(2), rev: true }, at())), [
    'two',
    'one',
    'a-two',
  ])
  assert.deepEqual(names(zrange(s, DB, 'z', { by: 'score', min: b('-1.5'), max: b('0') }, at())), [
    'neg',
    'zero',
  ])
})
