import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import fc from 'fast-check'
import { BufferPool } from '../../src/common/buffer-pool.ts'
import {
  alignedSpan,
  alignUp,
  allocAligned,
  DIRECT_IO_ALIGN,
  directIoAvailable,
  probeDirectIo,
} from '../../src/common/direct-io.ts'
import { isNodusError } from '../../src/common/errors.ts'
import { nativeAddon } from '../../src/common/native.ts'
import { ShardStore } from '../../src/storage/store/shard-store.ts'
import { residentPages } from '../utils/page-cache.ts'
import { assertProperty } from '../utils/property.ts'
import { bytesOf, cidOf } from './fixtures/shard-bytes.ts'

const NOW_MS = 1_700_000_000_000
const addon = nativeAddon()
const skipNoAddon = addon === null ? 'native addon not built here' : false

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-direct-io-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function openStore(t: TestContext, dir: string): Promise<ShardStore> {
  const store = new ShardStore(
    { clock: { now: () => NOW_MS } },
    { dir, capacityBytes: 1 << 30, maxShardBytes: 4 << 20, cacheBytes: 0 },
  )
  t.after(() => store.close())
  await store.open()
  return store
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const c of it) parts.push(c)
  return new Uint8Array(Buffer.concat(parts))
}

describe('alignOffset (native)', { skip: skipNoAddon }, () => {
  it('gives the distance to the next aligned address, consistently across views of one buffer', () => {
    const a = addon as NonNullable<typeof addon>
    const buf = Buffer.allocUnsafeSlow(3 * DIRECT_IO_ALIGN)
    const base = a.alignOffset(buf, DIRECT_IO_ALIGN)
    assert.ok(base >= 0 && base < DIRECT_IO_ALIGN)
    for (const k of [0, 1, 15, 16, 511, 512, 4095, 4096, 5000]) {
      assert.equal(
        a.alignOffset(buf.subarray(k), DIRECT_IO_ALIGN),
        (base - k + 2 * DIRECT_IO_ALIGN) % DIRECT_IO_ALIGN,
      )
      assert.equal(a.alignOffset(new DataView(buf.buffer, buf.byteOffset + k), 512), (base - k + 8192) % 512)
    }
    assert.equal(a.alignOffset(buf, 1), 0)
    assert.throws(() => a.alignOffset(buf, 3), RangeError)
    assert.throws(() => a.alignOffset(buf, 0), RangeError)
    assert.throws(() => a.alignOffset({} as Uint8Array, 64), TypeError)
  })

  it('allocAligned, and a BufferPool allocating with it, give aligned buffers with room to round up', () => {
    // As the shard store's staging pool (shard-store-write.ts).
    const pool = new BufferPool({ maxBytes: 2 << 20, minSize: 1, allocate: allocAligned })
    for (const size of [1, 4095, 4096, 4097, 100_000, 1 << 20]) {
      const fresh = allocAligned(size)
      assert.equal(fresh.byteLength, size)
      const span = alignedSpan(fresh)
      assert.ok(span !== undefined)
      assert.equal(span.byteLength, alignUp(size))
      assert.equal((addon as NonNullable<typeof addon>).alignOffset(span, DIRECT_IO_ALIGN), 0)
      const pooled = pool.take(size)
      assert.equal(pooled.byteLength, size)
      assert.ok(alignedSpan(pooled) !== undefined)
      pool.give(pooled)
      assert.equal(pool.take(size).buffer, pooled.buffer, 'reused')
    }
    // An unaligned view, or an aligned one without room to round up, has no aligned span. (Where a
    // fresh ArrayBuffer lands is up to V8, so the offsets are computed from its alignment.)
    assert.equal(alignedSpan(allocAligned(8192).subarray(1)), undefined)
    const native = addon as NonNullable<typeof addon>
    const raw = new ArrayBuffer(3 * DIRECT_IO_ALIGN)
    const a = native.alignOffset(new Uint8Array(raw), DIRECT_IO_ALIGN)
    assert.equal(alignedSpan(new Uint8Array(raw, (a + 16) % DIRECT_IO_ALIGN, 100)), undefined)
    let end = a
    while (end + DIRECT_IO_ALIGN <= raw.byteLength) end += DIRECT_IO_ALIGN
    if (end + 100 <= raw.byteLength) assert.equal(alignedSpan(new Uint8Array(raw, end, 100)), undefined)
  })
})

describe('ShardStore with direct I/O', { skip: skipNoAddon }, () => {
  it('the probe finds direct I/O on this file system, and NODUS_DIRECT_IO=0 turns it off', async (t) => {
    const dir = await tempDir(t)
    assert.equal(directIoAvailable(), true)
    assert.equal(await probeDirectIo(dir), true)
    assert.deepEqual(await readdir(dir), [], 'the probe file is removed')
    const before = process.env.NODUS_DIRECT_IO
    process.env.NODUS_DIRECT_IO = '0'
    try {
      assert.equal(await probeDirectIo(dir), false)
      const store = await openStore(t, join(dir, 'off'))
      assert.equal(store.directIo, false)
    } finally {
      if (before === undefined) delete process.env.NODUS_DIRECT_IO
      else process.env.NODUS_DIRECT_IO = before
    }
    assert.equal((await openStore(t, join(dir, 'on'))).directIo, true)
  })

  it('a put leaves a file of the exact size and bytes, outside the page cache', async (t) => {
    const dir = await tempDir(t)
    const store = await openStore(t, dir)
    assert.equal(store.directIo, true)
    for (const [i, size] of [1, 4095, 4096, 4097, 8192 + 3, 1 << 20, (1 << 20) + 1].entries()) {
      // An unaligned view (staged through an aligned buffer) and an aligned one (written as is).
      const bytes = bytesOf(size, i + 1)
      const unaligned = Buffer.allocUnsafeSlow(size + 1).subarray(1)
      unaligned.set(bytes)
      const aligned = allocAligned(size)
      aligned.set(bytes)
      const cid = cidOf(bytes)
      assert.deepEqual(await store.put(cid, i % 2 === 0 ? unaligned : aligned), { size, created: true })
      const key = cid.toString()
      const path = join(dir, key.slice(-3, -1), key)
      assert.deepEqual(new Uint8Array(await readFile(path)), bytes, `size ${size}`)
      assert.deepEqual(await readdir(join(dir, 'tmp')), [])
      // readFile above went through the page cache; the direct reads below do not need it.
      assert.deepEqual(await collect(store.read(cid)), bytes)
      assert.deepEqual(new Uint8Array(await store.get(cid)), bytes)
    }
    const bytes = bytesOf(300_000, 99)
    const cid = cidOf(bytes)
    await store.put(cid, bytes)
    const key = cid.toString()
    const resident = residentPages(join(dir, key.slice(-3, -1), key))
    if (resident === undefined) t.diagnostic('fincore not installed: page-cache check skipped')
    else assert.equal(resident, 0, 'a direct write leaves nothing in the page cache')
    await collect(store.read(cid))
    assert.deepEqual(new Uint8Array(await store.get(cid)), bytes)
    if (resident !== undefined) assert.equal(residentPages(join(dir, key.slice(-3, -1), key)), 0)
  })

  it('ranged reads match the bytes at any offset and length (property)', async (t) => {
    const dir = await tempDir(t)
    const store = await openStore(t, dir)
    const sizes = [1, 4096, 4097, 300_001, 600_000]
    const shards = sizes.map((size, i) => ({
      bytes: bytesOf(size, 100 + i),
      cid: cidOf(bytesOf(size, 100 + i)),
    }))
    for (const s of shards) await store.put(s.cid, s.bytes)
    await assertProperty(
      fc.asyncProperty(
        fc.integer({ min: 0, max: shards.length - 1 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (which, a, b) => {
          const { bytes, cid } = shards[which] as (typeof shards)[number]
          const offset = Math.floor(a * bytes.byteLength)
          const length = Math.floor(b * (bytes.byteLength - offset + 1))
          const got = await collect(store.read(cid, { offset, length }))
          assert.deepEqual(got, bytes.subarray(offset, offset + length))
        },
      ),
      { numRuns: 200 },
    )
  })

  it('a whole read fills the cache from an aligned buffer; a shorter or longer file is SHARD_MISSING', async (t) => {
    const dir = await tempDir(t)
    const store = new ShardStore(
      { clock: { now: () => NOW_MS } },
      { dir, capacityBytes: 1 << 30, maxShardBytes: 4 << 20, cacheBytes: 8 << 20 },
    )
    t.after(() => store.close())
    await store.open()
    const bytes = bytesOf(250_001, 7)
    const cid = cidOf(bytes)
    await store.put(cid, bytes)
    assert.deepEqual(await collect(store.read(cid)), bytes)
    assert.deepEqual(await collect(store.read(cid)), bytes)
    const other = bytesOf(70_000, 8)
    const otherCid = cidOf(other)
    await store.put(otherCid, other)
    const key = otherCid.toString()
    await truncate(join(dir, key.slice(-3, -1), key), 4096 * 3 + 5)
    await assert.rejects(collect(store.read(otherCid, { offset: 60_000 })), (err: unknown) =>
      isNodusError(err, 'SHARD_MISSING'),
    )
    await assert.rejects(collect(store.read(otherCid)), (err: unknown) => isNodusError(err, 'SHARD_MISSING'))
    await assert.rejects(store.get(otherCid), (err: unknown) => isNodusError(err, 'SHARD_MISSING'))
    // A longer file is refused by get() as well (its size differs from the index).
    const third = bytesOf(9000, 9)
    const thirdCid = cidOf(third)
    await store.put(thirdCid, third)
    const thirdKey = thirdCid.toString()
    await truncate(join(dir, thirdKey.slice(-3, -1), thirdKey), 20_000)
    await assert.rejects(store.get(thirdCid), (err: unknown) => isNodusError(err, 'SHARD_MISSING'))
  })
})
