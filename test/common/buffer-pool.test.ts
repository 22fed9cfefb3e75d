import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BufferPool } from '../../src/common/buffer-pool.ts'
import { waitFor } from '../utils/wait.ts'

test('a buffer given back is taken again for the same size, up to maxBytes', () => {
  const pool = new BufferPool({ maxBytes: 3 * 65_536 })
  const a = pool.take(65_536)
  const b = pool.take(65_536)
  assert.notEqual(a, b)
  assert.equal(a.byteLength, 65_536)
  pool.give(a)
  assert.equal(pool.pooledBytes, 65_536)
  assert.equal(pool.take(65_536), a)
  assert.equal(pool.pooledBytes, 0)
  assert.notEqual(pool.take(65_536 * 2).byteLength, 65_536, 'other sizes get their own memory')
  const big = pool.take(4 * 65_536)
  pool.give(big)
  assert.equal(pool.pooledBytes, 0, 'beyond maxBytes: dropped')
  pool.clear()
})

test('views, small buffers and foreign slices are never pooled', () => {
  const pool = new BufferPool({ maxBytes: 1 << 24, minSize: 1024 })
  const whole = pool.take(8192)
  pool.give(whole.subarray(0, 4096))
  pool.give(whole.subarray(4096))
  pool.give(new Uint8Array(512))
  assert.equal(pool.pooledBytes, 0)
  const small = pool.take(512)
  assert.equal(small.byteLength, 512)
  assert.equal(pool.take(0).byteLength, 0)
})

test('the pool empties once unused for idleMs', async () => {
  const pool = new BufferPool({ maxBytes: 1 << 24, idleMs: 50 })
  pool.give(pool.take(1 << 20))
  assert.equal(pool.pooledBytes, 1 << 20)
  // The pool reads performance.now(), which no fake timer moves: poll for the drop.
  await waitFor(() => pool.pooledBytes === 0, { timeoutMs: 5_000, what: 'the idle pool to empty' })
})

test('with an allocator: its views are taken back (only as made), and reused', () => {
  // A view 16 bytes into a larger backing store, as common/direct-io.ts allocAligned makes them.
  const allocate = (size: number): Uint8Array => Buffer.allocUnsafeSlow(size + 4096).subarray(16, 16 + size)
  const pool = new BufferPool({ maxBytes: 1 << 24, minSize: 1024, allocate })
  const a = pool.take(8192)
  assert.equal(a.byteOffset, 16)
  assert.equal(a.byteLength, 8192)
  pool.give(a.subarray(4096)) // a different view of the same memory: refused
  pool.give(new Uint8Array(a.buffer, 0, 8192)) // starts elsewhere: refused
  assert.equal(pool.pooledBytes, 0)
  pool.give(a)
  assert.equal(pool.pooledBytes, 8192)
  assert.equal(pool.take(8192), a)
  // Views made elsewhere are still refused; whole buffers still accepted.
  pool.give(Buffer.allocUnsafeSlow(8192 + 32).subarray(16, 16 + 8192))
  assert.equal(pool.pooledBytes, 0)
  pool.give(new Uint8Array(8192))
  assert.equal(pool.pooledBytes, 8192)
})
