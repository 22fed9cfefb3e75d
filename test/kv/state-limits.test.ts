/**
 * The size limits keep every table key within LMDB's: a database id, key and members at their
 * longest, made of NUL characters (each escaped to two bytes), with a TTL, a sorted-set score and a
 * secondary index, all store on LmdbOrderedStore and read back.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { hget } from '../../src/kv/state/basic.ts'
import { MAX_DB_BYTES, MAX_ELEMENT_BYTES, MAX_INDEXED_BYTES, MAX_KEY_BYTES } from '../../src/kv/state/keys.ts'
import { gc, scan } from '../../src/kv/state/keyspace.ts'
import { byIndex, defineIndex, MAX_INDEX_NAME_BYTES } from '../../src/kv/state/secondary.ts'
import { zscore } from '../../src/kv/state/zset.ts'
import { LmdbOrderedStore } from '../../src/kv/store/lmdb-store.ts'
import { apply, at, makeOp } from './state-ops.ts'

test('the longest names, all NULs, fit every table on LMDB', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-kv-limits-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const s = LmdbOrderedStore.open({ path: dir })
  t.after(() => s.close())
  const db = '\u0000'.repeat(MAX_DB_BYTES)
  const key = '\u0000'.repeat(MAX_KEY_BYTES)
  const member = '\u0000'.repeat(MAX_ELEMENT_BYTES)
  const value = '\u0000'.repeat(MAX_INDEXED_BYTES * 2)
  const index = '\u0000'.repeat(MAX_INDEX_NAME_BYTES)
  await s.write((w) => defineIndex(w, db, { name: index, type: 'hash', field: member }))
  await apply(
    s,
    makeOp('hash', 'hset', key, [member, value], { at: 1, db, expireAt: 100 }),
    makeOp('zset', 'zadd', `${key.slice(1)}z`, [1.5, member], { at: 1, db, expireAt: 100 }),
  )
  assert.equal(hget(s, db, key, member, at()), value)
  assert.equal(zscore(s, db, `${key.slice(1)}z`, member, at()), 1.5)
  assert.deepEqual(byIndex(s, db, index, { eq: value }, at()), [key])
  assert.equal(scan(s, db, at()).keys.length, 2)
  assert.deepEqual(await s.write((w) => gc(w, 100, 10)), { buried: 2, more: false })
})
