import assert from 'node:assert/strict'
import { test } from 'node:test'
import { bytesEqual, concatBytes, freeIfWhole } from '../../src/common/bytes.ts'

test('bytesEqual compares contents of views at any offset, lengths first', () => {
  const base = Uint8Array.from([9, 1, 2, 3, 9, 1, 2, 3])
  assert.equal(bytesEqual(base.subarray(1, 4), base.subarray(5, 8)), true)
  assert.equal(bytesEqual(base.subarray(1, 4), Uint8Array.from([1, 2, 4])), false)
  assert.equal(bytesEqual(base.subarray(1, 4), base.subarray(1, 3)), false)
  assert.equal(bytesEqual(new Uint8Array(0), new Uint8Array(0)), true)
})

test('freeIfWhole frees only views that span a whole, plain ArrayBuffer', () => {
  const whole = Buffer.allocUnsafeSlow(1 << 16).fill(7)
  assert.equal(freeIfWhole(whole), true)
  assert.equal(whole.byteLength, 0)
  assert.equal(whole.buffer.detached, true)

  // Small Buffers are slices of Node's shared 8 KiB pool: freeing one would break its neighbours.
  const a = Buffer.from('pooled a')
  const b = Buffer.from('pooled b')
  assert.equal(freeIfWhole(a), false)
  assert.equal(b.toString(), 'pooled b')

  const big = new Uint8Array(100).fill(1)
  assert.equal(freeIfWhole(big.subarray(0, 50)), false)
  assert.equal(freeIfWhole(big.subarray(10)), false)
  assert.equal(big.byteLength, 100)

  const shared = new Uint8Array(new SharedArrayBuffer(64))
  assert.equal(freeIfWhole(shared), false)
  assert.equal(freeIfWhole(new Uint8Array(new ArrayBuffer(8, { maxByteLength: 16 }))), false)
  assert.equal(freeIfWhole(new Uint8Array(0)), false)
})

test('concatBytes joins views in order into a new Uint8Array', () => {
  const base = Uint8Array.from([9, 1, 2, 3])
  const out = concatBytes([base.subarray(1, 3), new Uint8Array(0), Uint8Array.of(7)])
  assert.deepEqual(out, Uint8Array.from([1, 2, 7]))
  assert.equal(Object.getPrototypeOf(out), Uint8Array.prototype)
  assert.deepEqual(concatBytes([]), new Uint8Array(0))
})
