/**
 * Key-level reads (EXISTS, TYPE, SCAN by prefix with cursor and type filter), key-level del keeping
 * newer elements, and secondary indexes (hash field and JSONPath; equality and ranges; kept in step
 * with writes, deletes, type changes and gc; unknown index names).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { hgetall } from '../../src/kv/state/basic.ts'
import { exists, gc, keyType, scan } from '../../src/kv/state/keyspace.ts'
import { byIndex, defineIndex, dropIndex } from '../../src/kv/state/secondary.ts'
import { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'
import { apply, at, DB, makeOp } from './state-ops.ts'

test('del removes what is older than it, keeps newer elements; exists and type follow', async () => {
  const s = new MemoryOrderedStore()
  await apply(
    s,
    makeOp('hash', 'hset', 'h', ['old', 1], { at: 10 }),
    makeOp('hash', 'hset', 'h', ['new', 2], { at: 30 }),
    makeOp('list', 'del', 'h', [], { at: 20 }),
  )
  assert.deepEqual(hgetall(s, DB, 'h', at()), [['new', 2]])
  assert.equal(keyType(s, DB, 'h', at()), 'hash')
  await apply(s, makeOp('hash', 'del', 'h', [], { at: 40 }))
  assert.equal(exists(s, DB, 'h', at()), false)
  assert.equal(keyType(s, DB, 'h', at()), 'none')
  assert.equal(keyType(s, DB, 'never', at()), 'none')
})

test('scan by prefix in key order, with cursor, limit and type filter; deleted keys are skipped', async () => {
  const s = new MemoryOrderedStore()
  const keys = ['user:1', 'user:10', 'user:2', 'user\u0000x', 'users', 'admin', 'user:3']
  await apply(
    s,
    ...keys.map((k, i) =>
      makeOp(i % 2 === 0 ? 'string' : 'set', i % 2 === 0 ? 'set' : 'sadd', k, ['v'], { at: 10 + i }),
    ),
  )
  await apply(s, makeOp('string', 'del', 'user:2', [], { at: 100 }))
  assert.deepEqual(scan(s, DB, at()).keys, ['admin', 'user\u0000x', 'user:1', 'user:10', 'user:3', 'users'])
  assert.deepEqual(scan(s, DB, { ...at(), prefix: 'user:' }).keys, ['user:1', 'user:10', 'user:3'])
  const p1 = scan(s, DB, { ...at(), prefix: 'user', limit: 2 })
  assert.deepEqual(p1.keys, ['user\u0000x', 'user:1'])
  assert.ok(p1.cursor !== undefined)
  const p2 = scan(s, DB, { ...at(), prefix: 'user', limit: 2, after: p1.cursor })
  assert.deepEqual(p2.keys, ['user:10', 'user:3'])
  const p3 = scan(s, DB, { ...at(), prefix: 'user', limit: 2, after: p2.cursor as string })
  assert.deepEqual(p3, { keys: ['users'] })
  assert.deepEqual(scan(s, DB, { ...at(), type: 'set' }).keys, ['admin', 'user\u0000x', 'user:10'])
  assert.deepEqual(scan(s, 'other-db', at()).keys, [])
})

test('secondary indexes: hash field and JSONPath, equality and ranges, kept in step', async () => {
  const s = new MemoryOrderedStore()
  await apply(
    s,
    makeOp('hash', 'hset', 'u1', ['city', 'Oslo', 'age', 30], { at: 10 }),
    makeOp('hash', 'hset', 'u2', ['city', 'Bergen', 'age', 41], { at: 10 }),
    makeOp('json', 'json.set', 'd1', [{ meta: { score: 7 }, city: 'Oslo' }], { at: 10 }),
  )
  // Declared after data: built from the existing keys.
  await s.write((w) => {
    defineIndex(w, DB, { name: 'city', type: 'hash', field: 'city' })
    defineIndex(w, DB, { name: 'age', type: 'hash', field: 'age' })
    defineIndex(w, DB, { name: 'score', type: 'json', path: '$.meta.score' })
  })
  await apply(
    s,
    makeOp('hash', 'hset', 'u3', ['city', 'Oslo', 'age', 25], { at: 11 }),
    makeOp('json', 'json.set', 'd2', [{ meta: { score: 3 } }], { at: 11 }),
    makeOp('hash', 'hset', 'u4', ['city', 'Oslo'], { at: 11, expireAt: 500 }),
  )
  const q = (name: string, query: Parameters<typeof byIndex>[3], nowMs = 0): string[] =>
    byIndex(s, DB, name, query, at(nowMs))
  assert.deepEqual(q('city', { eq: 'Oslo' }), ['u1', 'u3', 'u4'])
  assert.deepEqual(q('city', { eq: 'Oslo' }, 500), ['u1', 'u3'], 'expired values do not match')
  assert.deepEqual(q('age', { gte: 25, lt: 41 }), ['u3', 'u1'])
  assert.deepEqual(q('age', { gt: 25 }), ['u1', 'u2'])
  assert.deepEqual(q('city', { gte: 'B', lt: 'O' }), ['u2'])
  assert.deepEqual(q('score', { lte: 7 }), ['d2', 'd1'])
  // Changes: a field update moves the key; hdel, del and a type change remove it.
  await apply(
    s,
    makeOp('hash', 'hset', 'u1', ['city', 'Bergen'], { at: 20 }),
    makeOp('hash', 'hdel', 'u3', ['city'], { at: 20 }),
    makeOp('json', 'del', 'd1', [], { at: 20 }),
    makeOp('string', 'set', 'u2', ['now a string'], { at: 20 }),
  )
  assert.deepEqual(q('city', { eq: 'Bergen' }), ['u1'])
  assert.deepEqual(q('city', { eq: 'Oslo' }), ['u4'])
  assert.deepEqual(q('score', { gte: 0 }), ['d2'])
  await s.write((w) => gc(w, 1000, 10))
  assert.deepEqual(q('city', { eq: 'Oslo' }), [], 'gc removes the entries of what it buries')
  assert.throws(
    () => q('age', { gt: 1, lt: 'x' }),
    (e) => isNodusError(e, 'INVALID_ARGUMENT'),
  )
  await s.write((w) => dropIndex(w, DB, 'city'))
  assert.throws(
    () => q('city', { eq: 'Oslo' }),
    (e) => isNodusError(e, 'KV_INDEX_NOT_FOUND'),
  )
  await assert.rejects(
    s.write((w) => defineIndex(w, DB, { name: 'bad', type: 'json', path: 'not a path' })),
    (e) => isNodusError(e, 'INVALID_ARGUMENT'),
  )
})
