/**
 * Streams (ids `<ms>-<seq>` from the op's HLC or given, XRANGE/XREVRANGE with `-`, `+`, incomplete and
 * exclusive ids, COUNT, XDEL, XLEN) and time series (LWW per timestamp, range deletes that hold off
 * older late samples, TS.RANGE with aggregation windows, TS.GET).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { type StreamEntry, tsGet, tsRange, xlen, xrange, xrevrange } from '../../src/kv/state/stream.ts'
import { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'
import { apply, at, DB, makeOp } from './state-ops.ts'

const ids = (es: StreamEntry[]): string[] => es.map((e) => e.id)

test('xadd ids: from the HLC (ms, then counter and op id), or as given; entries in id order', async () => {
  const s = new MemoryOrderedStore()
  const a = makeOp('stream', 'xadd', 'x', ['*', 'temp', 20], { at: { ms: 1000, c: 1 } })
  const b = makeOp('stream', 'xadd', 'x', ['*', 'temp', 21], { at: { ms: 1000, c: 0 } })
  const c = makeOp('stream', 'xadd', 'x', ['*', 'temp', 22], { at: { ms: 1000, c: 0 }, expireAt: 10 ** 12 })
  await apply(s, a, b, c, makeOp('stream', 'xadd', 'x', ['999-7', 'given', true], { at: 5000 }))
  const all = xrange(s, DB, 'x', '-', '+', at())
  assert.equal(all.length, 4, 'two writers at the same HLC get different ids')
  assert.equal(all[0]?.id, '999-7')
  assert.deepEqual(all[0]?.fields, ['given', true])
  for (const e of all.slice(1)) assert.match(e.id, /^1000-\d+$/)
  const seqOf = (e: StreamEntry | undefined): number => Number(e?.id.split('-')[1])
  assert.ok(seqOf(all[3]) >= 2 ** 32, 'counter 1 sorts after counter 0')
  assert.deepEqual(all[3]?.fields, ['temp', 20])
  assert.equal(xlen(s, DB, 'x', at()), 4)
})

test('XRANGE / XREVRANGE bounds as Redis reads them', async () => {
  const s = new MemoryOrderedStore()
  const entries = ['1-0', '1-1', '2-0', '2-5', '3-0', '10-0']
  await apply(s, ...entries.map((id, i) => makeOp('stream', 'xadd', 'x', [id, 'n', i], { at: 100 + i })))
  const r = (start: string, end: string, count?: number): string[] =>
    ids(xrange(s, DB, 'x', start, end, count === undefined ? at() : { ...at(), count }))
  assert.deepEqual(r('-', '+'), entries)
  assert.deepEqual(r('-', '+', 2), ['1-0', '1-1'])
  assert.deepEqual(r('(1-1', '+', 2), ['2-0', '2-5'], 'paging with an exclusive start')
  assert.deepEqual(r('2', '2'), ['2-0', '2-5'], 'an incomplete id spans its millisecond')
  assert.deepEqual(r('(2', '3'), ['2-5', '3-0'], '(2 excludes 2-0 only')
  assert.deepEqual(r('1-1', '(3-0'), ['1-1', '2-0', '2-5'])
  assert.deepEqual(r('(2', '(3'), ['2-5', '3-0'], '(3 as an end excludes only 3-<max>')
  assert.deepEqual(r('4', '9'), [])
  assert.deepEqual(r('+', '-'), [])
  assert.deepEqual(ids(xrevrange(s, DB, 'x', '+', '-', { ...at(), count: 2 })), ['10-0', '3-0'])
  assert.deepEqual(ids(xrevrange(s, DB, 'x', '(3-0', '(1-0', at())), ['2-5', '2-0', '1-1'])
  await apply(s, makeOp('stream', 'xdel', 'x', ['2-0', '7-7'], { at: 200 }))
  assert.deepEqual(r('2', '2'), ['2-5'])
  assert.equal(xlen(s, DB, 'x', at()), 5)
  assert.throws(
    () => r('abc', '+'),
    (e) => isNodusError(e, 'INVALID_ARGUMENT'),
  )
})

test('time series: LWW per timestamp, range deletes, TS.GET', async () => {
  const s = new MemoryOrderedStore()
  await apply(
    s,
    makeOp('ts', 'ts.add', 't', [1000, 1], { at: 10 }),
    makeOp('ts', 'ts.add', 't', [2000, 2], { at: 10 }),
    makeOp('ts', 'ts.add', 't', [1000, 1.5], { at: 11 }),
    makeOp('ts', 'ts.add', 't', [1000, 0], { at: 9 }),
    makeOp('ts', 'ts.add', 't', ['*', 7], { at: 3000 }),
  )
  assert.deepEqual(tsRange(s, DB, 't', 0, Number.MAX_SAFE_INTEGER, at()), [
    [1000, 1.5],
    [2000, 2],
    [3000, 7],
  ])
  assert.deepEqual(tsGet(s, DB, 't', at()), [3000, 7])
  // TS.DEL 1000 2000 at HLC 20: a later add inside survives, an older one arriving late does not.
  await apply(
    s,
    makeOp('ts', 'ts.add', 't', [1500, 15], { at: 21 }),
    makeOp('ts', 'ts.del', 't', [1000, 2000], { at: 20 }),
    makeOp('ts', 'ts.add', 't', [1800, 18], { at: 19 }),
  )
  assert.deepEqual(tsRange(s, DB, 't', 0, 5000, at()), [
    [1500, 15],
    [3000, 7],
  ])
  assert.deepEqual(tsRange(s, DB, 't', 0, 5000, { ...at(), count: 1 }), [[1500, 15]])
  assert.deepEqual(tsRange(s, DB, 't', 1501, 2999, at()), [])
})

test('TS.RANGE aggregation over fixed windows aligned to 0', async () => {
  const s = new MemoryOrderedStore()
  const samples: [number, number][] = [
    [1000, 10],
    [1400, 20],
    [1999, 30],
    [2000, 5],
    [3500, -1],
    [3600, 3],
  ]
  await apply(s, ...samples.map(([t, v], i) => makeOp('ts', 'ts.add', 'temp', [t, v], { at: 100 + i })))
  const agg = (
    type: 'avg' | 'sum' | 'min' | 'max' | 'count' | 'first' | 'last',
    bucketMs = 1000,
  ): [number, number][] => tsRange(s, DB, 'temp', 0, 10_000, { ...at(), aggregation: { type, bucketMs } })
  assert.deepEqual(agg('avg'), [
    [1000, 20],
    [2000, 5],
    [3000, 1],
  ])
  assert.deepEqual(agg('sum'), [
    [1000, 60],
    [2000, 5],
    [3000, 2],
  ])
  assert.deepEqual(agg('min'), [
    [1000, 10],
    [2000, 5],
    [3000, -1],
  ])
  assert.deepEqual(agg('max'), [
    [1000, 30],
    [2000, 5],
    [3000, 3],
  ])
  assert.deepEqual(agg('count'), [
    [1000, 3],
    [2000, 1],
    [3000, 2],
  ])
  assert.deepEqual(agg('first', 5000), [[0, 10]])
  assert.deepEqual(agg('last', 5000), [[0, 3]])
  assert.deepEqual(agg('avg', 500), [
    [1000, 15],
    [1500, 30],
    [2000, 5],
    [3500, 1],
  ])
  assert.deepEqual(
    tsRange(s, DB, 'temp', 1400, 3500, { ...at(), aggregation: { type: 'count', bucketMs: 1000 }, count: 2 }),
    [
      [1000, 2],
      [2000, 1],
    ],
  )
  assert.throws(
    () => agg('avg', 0),
    (e) => isNodusError(e, 'INVALID_ARGUMENT'),
  )
})
