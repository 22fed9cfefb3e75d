import assert from 'node:assert/strict'
import { test } from 'node:test'
import { bytesEqual } from '../../src/common/bytes.ts'

test('bytesEqual compares contents of views at any offset, lengths first', () => {
  const base = Uint8Array.from([9, 1, 2, 3, 9, 1, 2, 3])
  assert.equal(bytesEqual(base.subarray(1, 4), base.subarray(5, 8)), true)
  assert.equal(bytesEqual(base.subarray(1, 4), Uint8Array.from([1, 2, 4])), false)
  assert.equal(bytesEqual(base.subarray(1, 4), base.subarray(1, 3)), false)
  assert.equal(bytesEqual(new Uint8Array(0), new Uint8Array(0)), true)
})
