/**
 * TTL: what an op with expireAt wrote is hidden once now ≥ expireAt (values, hash fields, zset members
 * in ranges, stream entries, counts, EXISTS); gc turns expired elements into tombstones in bounded
 * batches, so an older op arriving after gc still loses; a key-level expireAt on `set` hides the value.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { get, hgetall, hlen, scard, smembers } from '../../src/kv/state/basic.ts'
import { exists, gc, keyType, scan } from '../../src/kv/state/keyspace.ts'
import { xlen, xrange } from '../../src/kv/state/stream.ts'
import { zcard, zrange } from '../../src/kv/state/zset.ts'
import { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'
import { apply, at, DB, dump, makeOp } from './state-ops.ts'

test('expired values are hidden at and after expireAt, on every read', async () => {
  const s = new MemoryOrderedStore()
  await apply(
    s,
    makeOp('string', 'set', 'str', ['v'], { at: 10, expireAt: 1000 }),
    makeOp('hash', 'hset', 'h', ['keep', 1], { at: 10 }),
    makeOp('hash', 'hset', 'h', ['gone', 2], { at: 11, expireAt: 1000 }),
    makeOp('zset', 'zadd', 'z', [1, 'a', 2, 'b'], { at: 10, expireAt: 1000 }),
    makeOp('zset', 'zadd', 'z', [3, 'c'], { at: 10 }),
    makeOp('stream', 'xadd', 'x', ['1-1', 'f', 1], { at: 10, expireAt: 1000 }),
    makeOp('set', 'sadd', 'onlyttl', ['m'], { at: 10, expireAt: 1000 }),
  )
  assert.equal(get(s, DB, 'str', at(999)), 'v')
  assert.equal(get(s, DB, 'str', at(1000)), undefined)
  assert.equal(exists(s, DB, 'str', at(999)), true)
  assert.equal(exists(s, DB, 'str', at(1000)), false)
  assert.equal(keyType(s, DB, 'str', at(1000)), 'none')
  assert.deepEqual(hgetall(s, DB, 'h', at(1000)), [['keep', 1]])
  assert.equal(hlen(s, DB, 'h', at(999)), 2)
  assert.equal(hlen(s, DB, 'h', at(1000)), 1)
  assert.deepEqual(
    zrange(s, DB, 'z', { by: 'rank', start: 0, stop: -1 }, at(1000)).map((m) => m.member),
    ['c'],
  )
  assert.equal(zcard(s, DB, 'z', at(1000)), 1)
  assert.deepEqual(xrange(s, DB, 'x', '-', '+', at(1000)), [])
  assert.equal(xlen(s, DB, 'x', at(1000)), 0)
  assert.deepEqual(smembers(s, DB, 'onlyttl', at(1000)), [])
  assert.deepEqual(scan(s, DB, at(999)).keys, ['h', 'onlyttl', 'str', 'x', 'z'])
  assert.deepEqual(scan(s, DB, at(1000)).keys, ['h', 'z'])
})

test('gc buries expired elements in bounded batches; later older ops still lose; reads unchanged', async () => {
  const s = new MemoryOrderedStore()
  await apply(
    s,
    makeOp('string', 'set', 'str', ['v'], { at: 10, expireAt: 1000 }),
    makeOp('set', 'sadd', 'set', ['a', 'b', 'c'], { at: 10, expireAt: 500 }),
    makeOp('set', 'sadd', 'set', ['d'], { at: 10 }),
    makeOp('zset', 'zadd', 'z', [1, 'a'], { at: 10, expireAt: 2000 }),
  )
  const before = dump(s)
  assert.deepEqual(await s.write((w) => gc(w, 400, 10)), { buried: 0, more: false })
  assert.deepEqual(dump(s), before, 'nothing expired yet: nothing changes')

  assert.deepEqual(await s.write((w) => gc(w, 1000, 2)), { buried: 2, more: true })
  assert.deepEqual(await s.write((w) => gc(w, 1000, 2)), { buried: 2, more: true })
  assert.deepEqual(await s.write((w) => gc(w, 1000, 2)), { buried: 0, more: false })
  assert.deepEqual(smembers(s, DB, 'set', at(1000)), ['d'])
  assert.equal(scard(s, DB, 'set', at(1000)), 1)
  assert.equal(get(s, DB, 'str', at(1000)), undefined)
  assert.equal(exists(s, DB, 'str', at(0)), false, 'after gc the value is gone at any time')
  assert.equal(zcard(s, DB, 'z', at(1000)), 1, 'not expired yet: kept')

  // An older write arriving after gc loses to the buried element, as it would have to the live one.
  await apply(
    s,
    makeOp('string', 'set', 'str', ['older'], { at: 5 }),
    makeOp('set', 'sadd', 'set', ['a'], { at: 9 }),
  )
  assert.equal(get(s, DB, 'str', at(0)), undefined)
  assert.deepEqual(smembers(s, DB, 'set', at(0)), ['d'])
  // A newer one wins.
  await apply(s, makeOp('string', 'set', 'str', ['newer'], { at: 11 }))
  assert.equal(get(s, DB, 'str', at(5000)), 'newer')
  assert.equal(zcard(s, DB, 'z', at(2000)), 0)
  assert.deepEqual(await s.write((w) => gc(w, 5000, 100)), { buried: 1, more: false })
  assert.deepEqual(zrange(s, DB, 'z', { by: 'rank', start: 0, stop: -1 }, at(0)), [])
})
