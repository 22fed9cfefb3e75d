/**
 * Strings, hashes and sets: last writer wins per element, tombstones that keep older ops from bringing
 * elements back, the type rule (the latest op's type wins; older elements of another type are gone),
 * key-level del, WRONGTYPE, and args refused with KV_ARGS_INVALID.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { applyOp } from '../../src/kv/state/apply.ts'
import { get, hget, hgetall, hkeys, hlen, scard, sismember, smembers } from '../../src/kv/state/basic.ts'
import { exists, keyType } from '../../src/kv/state/keyspace.ts'
import { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'
import { apply, at, DB, dump, makeOp } from './state-ops.ts'

test('string: set, the later HLC wins in either order, del hides older sets only', async () => {
  const a = makeOp('string', 'set', 'k', ['one'], { at: 10 })
  const b = makeOp('string', 'set', 'k', ['two'], { at: 20 })
  const s1 = new MemoryOrderedStore()
  const s2 = new MemoryOrderedStore()
  await apply(s1, a, b)
  await apply(s2, b, a, b)
  assert.equal(get(s1, DB, 'k', at()), 'two')
  assert.deepEqual(dump(s1), dump(s2))

  await apply(s1, makeOp('string', 'del', 'k', [], { at: 15 }))
  assert.equal(get(s1, DB, 'k', at()), 'two', 'a del older than the value leaves it')
  await apply(s1, makeOp('hash', 'del', 'k', [], { at: 25 }))
  assert.equal(get(s1, DB, 'k', at()), undefined, 'del of any type removes the key')
  assert.equal(exists(s1, DB, 'k', at()), false)
  await apply(s1, makeOp('string', 'set', 'k', ['late'], { at: 22 }))
  assert.equal(get(s1, DB, 'k', at()), undefined, 'an op older than the del stays hidden')
  await apply(s1, makeOp('string', 'set', 'k', [{ n: 1.5, b: new Uint8Array([1]) }], { at: 30 }))
  assert.deepEqual(get(s1, DB, 'k', at()), { n: 1.5, b: new Uint8Array([1]) })
})

test('hash: LWW per field; hdel leaves a tombstone an older hset cannot pass', async () => {
  const s = new MemoryOrderedStore()
  await apply(
    s,
    makeOp('hash', 'hset', 'h', ['a', 1, 'b', 2, 'a', 3], { at: 10 }),
    makeOp('hash', 'hset', 'h', [9], { at: 12, field: 'c' }),
    makeOp('hash', 'hdel', 'h', [], { at: 11, field: 'b' }),
    makeOp('hash', 'hset', 'h', ['b', 'old'], { at: 5 }),
  )
  assert.deepEqual(hgetall(s, DB, 'h', at()), [
    ['a', 3],
    ['c', 9],
  ])
  assert.deepEqual(hkeys(s, DB, 'h', at()), ['a', 'c'])
  assert.equal(hlen(s, DB, 'h', at()), 2)
  assert.equal(hget(s, DB, 'h', 'b', at()), undefined)
  await apply(s, makeOp('hash', 'hset', 'h', ['b', 'new'], { at: 13 }))
  assert.equal(hget(s, DB, 'h', 'b', at()), 'new')
  assert.equal(keyType(s, DB, 'h', at()), 'hash')
  assert.throws(
    () => get(s, DB, 'h', at()),
    (e) => isNodusError(e, 'KV_WRONG_TYPE'),
  )
})

test('set: sadd/srem LWW per member', async () => {
  const s = new MemoryOrderedStore()
  await apply(
    s,
    makeOp('set', 'sadd', 's', ['x', 'y', 'z'], { at: 10 }),
    makeOp('set', 'srem', 's', ['y'], { at: 11 }),
    makeOp('set', 'sadd', 's', ['y'], { at: 9 }),
    makeOp('set', 'srem', 's', ['z'], { at: 8 }),
  )
  assert.deepEqual(smembers(s, DB, 's', at()), ['x', 'z'])
  assert.equal(sismember(s, DB, 's', 'y', at()), false)
  assert.equal(sismember(s, DB, 's', 'z', at()), true)
  assert.equal(scard(s, DB, 's', at()), 2)
})

test('type conflict: the latest op decides the type; older elements of another type are gone', async () => {
  const ops = [
    makeOp('hash', 'hset', 'k', ['f1', 1], { at: 10 }),
    makeOp('string', 'set', 'k', ['str'], { at: 20 }),
    makeOp('hash', 'hset', 'k', ['f2', 2], { at: 30 }),
    makeOp('hash', 'hset', 'k', ['f3', 3], { at: 15 }), // older than the set: gone with f1
    makeOp('list', 'rpush', 'k', ['x'], { at: 25 }), // replaced by the hset at 30
  ]
  const orders = [
    [0, 1, 2, 3, 4],
    [4, 3, 2, 1, 0],
    [2, 0, 4, 1, 3],
    [1, 3, 0, 4, 2],
  ]
  const dumps = []
  for (const order of orders) {
    const s = new MemoryOrderedStore()
    await apply(s, ...order.map((i) => ops[i] as (typeof ops)[number]))
    assert.equal(keyType(s, DB, 'k', at()), 'hash')
    assert.deepEqual(hgetall(s, DB, 'k', at()), [['f2', 2]])
    dumps.push(dump(s))
  }
  for (const d of dumps) assert.deepEqual(d, dumps[0])
})

test('ops that do not fit the catalog are refused and write nothing', async () => {
  const s = new MemoryOrderedStore()
  const bad = [
    makeOp('zset', 'zadd', 'z', ['notanumber', 'm'], { at: 1 }),
    makeOp('zset', 'zadd', 'z', [1], { at: 1 }),
    makeOp('hash', 'set', 'h', ['v'], { at: 1 }),
    makeOp('string', 'set', 'x'.repeat(513), ['v'], { at: 1 }),
    makeOp('set', 'sadd', 's', ['m'.repeat(513)], { at: 1 }),
    makeOp('list', 'lrem', 'l', [new Uint8Array(3)], { at: 1 }),
    makeOp('geo', 'geoadd', 'g', [0, 86, 'm'], { at: 1 }),
    makeOp('json', 'json.set', 'j', [new Uint8Array(1)], { at: 1 }),
    makeOp('stream', 'xadd', 'x', ['1', 'f', 'v'], { at: 1 }),
    makeOp('ts', 'ts.del', 't', [5, 1], { at: 1 }),
    makeOp('string', 'set', 'k', ['v'], { at: 1, expireAt: -1 }),
  ]
  for (const op of bad) {
    await assert.rejects(
      s.write((w) => applyOp(w, op)),
      (e) => isNodusError(e, 'KV_ARGS_INVALID') && (e as { peerAction?: string }).peerAction === 'reject',
      `${op.body.type}.${op.body.op}`,
    )
  }
  assert.deepEqual(dump(s), [])
})
