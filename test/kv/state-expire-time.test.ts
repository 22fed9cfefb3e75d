/**
 * expireTime (PEXPIRETIME): a string's expiry, one field's or member's, a key's as the latest of its
 * elements', none while an element has none, and nothing for a key that is gone.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { expireTime } from '../../src/kv/state/ttl.ts'
import { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'
import { apply, at, DB, makeOp } from './state-ops.ts'

test('expireTime of strings, fields, members and whole keys', async () => {
  const s = new MemoryOrderedStore()
  await apply(
    s,
    makeOp('string', 'set', 'str', ['v'], { at: 10, expireAt: 1000 }),
    makeOp('string', 'set', 'forever', ['v'], { at: 10 }),
    makeOp('hash', 'hset', 'h', ['a', 1], { at: 10, expireAt: 500 }),
    makeOp('hash', 'hset', 'h', ['b', 2], { at: 11, expireAt: 700 }),
    makeOp('hash', 'hset', 'mixed', ['a', 1], { at: 10, expireAt: 500 }),
    makeOp('hash', 'hset', 'mixed', ['b', 2], { at: 11 }),
    makeOp('zset', 'zadd', 'z', [1, 'm'], { at: 10, expireAt: 900 }),
    makeOp('json', 'json.set', 'j', [1], { at: 10, field: 'x', expireAt: 800 }),
    makeOp('list', 'rpush', 'l', ['a'], { at: 10, expireAt: 300 }),
  )
  const t = (key: string, nowMs = 0, field?: string) =>
    expireTime(s, DB, key, { ...at(nowMs), ...(field === undefined ? {} : { field }) })
  assert.deepEqual(t('str'), { exists: true, expireAt: 1000 })
  assert.deepEqual(t('str', 1000), { exists: false })
  assert.deepEqual(t('forever'), { exists: true })
  assert.deepEqual(t('h'), { exists: true, expireAt: 700 })
  assert.deepEqual(t('h', 600), { exists: true, expireAt: 700 }, 'a expired; b is left')
  assert.deepEqual(t('h', 0, 'a'), { exists: true, expireAt: 500 })
  assert.deepEqual(t('h', 600, 'a'), { exists: false })
  assert.deepEqual(t('h', 0, 'nope'), { exists: false })
  assert.deepEqual(t('mixed'), { exists: true }, 'field b never expires, so neither does the key')
  assert.deepEqual(t('mixed', 0, 'a'), { exists: true, expireAt: 500 })
  assert.deepEqual(t('z', 0, 'm'), { exists: true, expireAt: 900 })
  assert.deepEqual(t('j', 0, 'x'), { exists: true, expireAt: 800 })
  assert.deepEqual(t('l'), { exists: true, expireAt: 300 })
  assert.deepEqual(t('missing'), { exists: false })
  assert.throws(
    () => t('l', 0, 'a'),
    (e) => isNodusError(e, 'INVALID_ARGUMENT'),
  )
})
