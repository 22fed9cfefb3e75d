/**
 * JSON: whole-document and top-level member writes (LWW, the document a floor for older member
 * writes), json.del of a member or the document, and JSONPath queries per RFC 9535.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { jsonGet } from '../../src/kv/state/json.ts'
import { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'
import { apply, at, DB, makeOp } from './state-ops.ts'

const store = {
  book: [
    { category: 'reference', author: 'Nigel Rees', price: 8.95 },
    { category: 'fiction', author: 'Evelyn Waugh', price: 12.99 },
    { category: 'fiction', author: 'Herman Melville', price: 8.99, isbn: '0-553-21311-3' },
  ],
  bicycle: { color: 'red', price: 399 },
}

test('members override the document; a newer document replaces older members', async () => {
  const s = new MemoryOrderedStore()
  await apply(
    s,
    makeOp('json', 'json.set', 'j', [{ a: 1, b: 2 }], { at: 10 }),
    makeOp('json', 'json.set', 'j', [5], { at: 11, field: 'a' }),
    makeOp('json', 'json.set', 'j', [{ x: [1, 2] }], { at: 12, field: 'c' }),
    makeOp('json', 'json.del', 'j', [], { at: 13, field: 'b' }),
    makeOp('json', 'json.set', 'j', [0], { at: 9, field: 'z' }), // older than the document: gone
  )
  assert.deepEqual(jsonGet(s, DB, 'j', at()), { a: 5, c: { x: [1, 2] } })
  await apply(
    s,
    makeOp('json', 'json.set', 'j', [{ fresh: true }], { at: 20 }),
    makeOp('json', 'json.set', 'j', [7], { at: 15, field: 'a' }),
  )
  assert.deepEqual(jsonGet(s, DB, 'j', at()), { fresh: true })
  await apply(s, makeOp('json', 'json.set', 'j', [[1, 2]], { at: 21 }))
  await apply(s, makeOp('json', 'json.set', 'j', ['v'], { at: 22, field: 'm' }))
  assert.deepEqual(jsonGet(s, DB, 'j', at()), { m: 'v' }, 'a member set on a non-object starts an object')
  await apply(s, makeOp('json', 'json.del', 'j', [], { at: 30 }))
  assert.equal(jsonGet(s, DB, 'j', at()), undefined)
})

test('JSONPath (RFC 9535) queries, filters included; invalid queries are INVALID_ARGUMENT', async () => {
  const s = new MemoryOrderedStore()
  await apply(s, makeOp('json', 'json.set', 'doc', [{ store }], { at: 1 }))
  assert.deepEqual(jsonGet(s, DB, 'doc', { ...at(), path: '$.store.book[*].author' }), [
    'Nigel Rees',
    'Evelyn Waugh',
    'Herman Melville',
  ])
  assert.deepEqual(jsonGet(s, DB, 'doc', { ...at(), path: '$.store.book[?@.price < 10].author' }), [
    'Nigel Rees',
    'Herman Melville',
  ])
  assert.deepEqual(jsonGet(s, DB, 'doc', { ...at(), path: '$..isbn' }), ['0-553-21311-3'])
  assert.deepEqual(jsonGet(s, DB, 'doc', { ...at(), path: '$.store.bicycle.color' }), ['red'])
  assert.deepEqual(jsonGet(s, DB, 'doc', { ...at(), path: '$.nothing' }), [])
  assert.deepEqual(jsonGet(s, DB, 'missing', { ...at(), path: '$.a' }), [])
  for (const bad of ['$[?(@.a', 'store.book', '$.a[']) {
    assert.throws(
      () => jsonGet(s, DB, 'doc', { ...at(), path: bad }),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
      bad,
    )
  }
})
