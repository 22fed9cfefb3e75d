import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, open, readdir, readFile, rm, statfs, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { open as openLmdb } from 'lmdb'
import { CID } from 'multiformats/cid'
import { create } from 'multiformats/hashes/digest'
import { type ErrorCode, isNodusError } from '../../src/common/errors.ts'
import { SEEN_KEYS, ShardCache } from '../../src/storage/store/shard-cache.ts'
import {
  ShardStore,
  type ShardStoreDeps,
  type ShardStoreOptions,
  startExpiryCleanup,
} from '../../src/storage/store/shard-store.ts'
import { CapacityGuard } from '../../src/storage/store/shard-store-capacity.ts'
import { assertProperty } from '../utils/property.ts'
import { bytesOf, cidOf } from './fixtures/shard-bytes.ts'

const NOW_MS = 1_700_000_000_000
const MiB = 1024 * 1024

/** Yield `bytes` cut at the given chunk sizes (the rest as one last chunk), one event-loop turn apart. */
async function* chunked(bytes: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let at = 0
  for (const n of sizes) {
    await Promise.resolve()
    yield bytes.subarray(at, Math.min(bytes.byteLength, at + n))
    at = Math.min(bytes.byteLength, at + n)
  }
  if (at < bytes.byteLength) yield bytes.subarray(at)
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<{ bytes: Uint8Array; chunks: number[] }> {
  const parts: Uint8Array[] = []
  for await (const c of it) parts.push(c)
  return { bytes: new Uint8Array(Buffer.concat(parts)), chunks: parts.map((p) => p.byteLength) }
}

const hasCode =
  (code: ErrorCode) =>
  (err: unknown): boolean => {
    assert.ok(isNodusError(err, code), `expected ${code}, got ${String(err)}`)
    return true
  }

interface Harness {
  dir: string
  /** A store on the harness dir (opened), closed at the end of the test. */
  store(options?: Partial<ShardStoreOptions>, deps?: ShardStoreDeps): Promise<ShardStore>
  tmpFiles(): Promise<string[]>
  shardFile(cid: CID): string
}

/** A fresh temp dir per test; every store made through it is closed and the dir removed afterwards. */
async function harness(t: TestContext): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-shard-store-'))
  const stores: ShardStore[] = []
  t.after(async () => {
    for (const s of stores) await s.close()
    await rm(dir, { recursive: true, force: true })
  })
  return {
    dir,
    async store(options = {}, deps = {}) {
      const s = new ShardStore(
        { clock: { now: () => NOW_MS }, ...deps },
        { dir, capacityBytes: 1 << 30, maxShardBytes: 16 * MiB, ...options },
      )
      stores.push(s)
      await s.open()
      return s
    },
    tmpFiles: () => readdir(join(dir, 'tmp')),
    shardFile(cid) {
      const key = cid.toString()
      return join(dir, key.slice(-3, -1), key)
    },
  }
}

describe('ShardStore', () => {
  it('put/get/has/stat/list/delete round trip, file in the next-to-last/2 fan-out', async (t) => {
    const h = await harness(t)
    const store = await h.store()
    const bytes = bytesOf(5000, 1)
    const cid = cidOf(bytes)

    assert.equal(store.has(cid), false)
    assert.equal(store.stat(cid), undefined)
    assert.deepEqual(await store.put(cid, bytes), { size: 5000, created: true })
    assert.equal(store.has(cid), true)
    assert.deepEqual(store.stat(cid), { cid: cid.toString(), size: 5000, storedAt: NOW_MS })
    assert.deepEqual(new Uint8Array(await store.get(cid)), bytes)
    assert.deepEqual(store.list(), [{ cid: cid.toString(), size: 5000, storedAt: NOW_MS }])
    assert.deepEqual(store.usage(), {
      bytes: 5000,
      shards: 1,
      capacityBytes: 1 << 30,
      freeBytes: (1 << 30) - 5000,
    })
    assert.deepEqual(new Uint8Array(await readFile(h.shardFile(cid))), bytes)
    assert.deepEqual(await h.tmpFiles(), [])

    assert.deepEqual(await store.put(cid, bytes), { size: 5000, created: false })
    assert.equal(store.usage().shards, 1)

    assert.equal(await store.delete(cid), true)
    assert.equal(store.has(cid), false)
    assert.equal(existsSync(h.shardFile(cid)), false)
    await assert.rejects(store.get(cid), hasCode('SHARD_MISSING'))
    assert.equal(await store.delete(cid), false)
    assert.deepEqual(store.usage(), { bytes: 0, shards: 0, capacityBytes: 1 << 30, freeBytes: 1 << 30 })
  })

  it('stores an empty shard', async (t) => {
    const store = await (await harness(t)).store()
    const cid = cidOf(new Uint8Array(0))
    assert.deepEqual(await store.put(cid, new Uint8Array(0)), { size: 0, created: true })
    assert.equal((await store.get(cid)).byteLength, 0)
    assert.deepEqual(await collect(store.read(cid)), { bytes: new Uint8Array(0), chunks: [] })
  })

  it('streams a put from an async iterable of uneven chunks, with and without expectedSize', async (t) => {
    const store = await (await harness(t)).store()
    const a = bytesOf(250_000, 2)
    const b = bytesOf(70_001, 3)
    const sizes = [1, 0, 7, 65_536, 3, 100_000, 13]
    assert.deepEqual(await store.put(cidOf(a), chunked(a, sizes)), { size: 250_000, created: true })
    assert.deepEqual(await store.put(cidOf(b), chunked(b, [5, 65_535]), { expectedSize: 70_001 }), {
      size: 70_001,
      created: true,
    })
    assert.deepEqual(new Uint8Array(await store.get(cidOf(a))), a)
    assert.deepEqual(new Uint8Array(await store.get(cidOf(b))), b)
    assert.deepEqual(store.usage().bytes, 320_001)
  })

  it('CID_MISMATCH leaves no file, no index record and unchanged usage', async (t) => {
    const h = await harness(t)
    const store = await h.store()
    const kept = bytesOf(1000, 4)
    await store.put(cidOf(kept), kept)
    const before = store.usage()

    const claimed = bytesOf(3000, 5)
    const cid = cidOf(claimed)
    const other = bytesOf(3000, 6)
    await assert.rejects(store.put(cid, other), hasCode('CID_MISMATCH'))
    await assert.rejects(store.put(cid, chunked(other, [100, 900])), hasCode('CID_MISMATCH'))
    assert.equal(store.has(cid), false)
    assert.equal(existsSync(h.shardFile(cid)), false)
    assert.deepEqual(await h.tmpFiles(), [])
    assert.deepEqual(store.usage(), before)
    assert.deepEqual(
      store.list().map((r) => r.cid),
      [cidOf(kept).toString()],
    )
  })

  it('rejects CIDs that are not CIDv1 with a BLAKE3-256 multihash (CID_INVALID)', async (t) => {
    const store = await (await harness(t)).store()
    const bytes = bytesOf(10, 7)
    const sha = CID.createV1(0x55, create(0x12, new Uint8Array(32)))
    await assert.rejects(store.put(sha, bytes), hasCode('CID_INVALID'))
    assert.throws(() => store.has(sha), hasCode('CID_INVALID'))
  })

  it('SHARD_TOO_LARGE for buffers, declared sizes and streams that pass the limit', async (t) => {
    const h = await harness(t)
    const store = await h.store({ maxShardBytes: 1000 })
    const big = bytesOf(1001, 8)
    const cid = cidOf(big)
    await assert.rejects(store.put(cid, big), hasCode('SHARD_TOO_LARGE'))

    let pulled = 0
    const counting = async function* (): AsyncGenerator<Uint8Array> {
      pulled++
      yield big
    }
    await assert.rejects(store.put(cid, counting(), { expectedSize: 1001 }), hasCode('SHARD_TOO_LARGE'))
    assert.equal(pulled, 0, 'a declared oversize shard is refused before reading')

    await assert.rejects(store.put(cid, chunked(big, [500, 500, 1])), hasCode('SHARD_TOO_LARGE'))
    assert.deepEqual(await h.tmpFiles(), [])
    assert.equal(store.has(cid), false)
    assert.deepEqual(store.usage().bytes, 0)

    const exact = bytesOf(1000, 9)
    assert.equal((await store.put(cidOf(exact), chunked(exact, [999]))).created, true)
  })

  it('INVALID_ARGUMENT when a stream is not the declared expectedSize', async (t) => {
    const h = await harness(t)
    const store = await h.store()
    const bytes = bytesOf(100, 10)
    const cid = cidOf(bytes)
    await assert.rejects(
      store.put(cid, chunked(bytes, [50]), { expectedSize: 99 }),
      hasCode('INVALID_ARGUMENT'),
    )
    await assert.rejects(
      store.put(cid, chunked(bytes, [50]), { expectedSize: 101 }),
      hasCode('INVALID_ARGUMENT'),
    )
    await assert.rejects(store.put(cid, bytes, { expectedSize: 101 }), hasCode('INVALID_ARGUMENT'))
    await assert.rejects(store.put(cid, bytes, { expectedSize: -1 }), hasCode('INVALID_ARGUMENT'))
    assert.deepEqual(await h.tmpFiles(), [])
    assert.equal(store.has(cid), false)
  })

  it('STORE_FULL before writing, counting bytes reserved by concurrent puts', async (t) => {
    const h = await harness(t)
    const store = await h.store({ capacityBytes: 100 })
    const a = bytesOf(60, 11)
    await store.put(cidOf(a), a)
    const b = bytesOf(50, 12)
    await assert.rejects(store.put(cidOf(b), b), hasCode('STORE_FULL'))
    await assert.rejects(store.put(cidOf(b), chunked(b, [1]), { expectedSize: 50 }), hasCode('STORE_FULL'))
    await assert.rejects(store.put(cidOf(b), chunked(b, [10, 10, 10, 10])), hasCode('STORE_FULL'))
    assert.deepEqual(await h.tmpFiles(), [])
    assert.deepEqual(store.usage(), { bytes: 60, shards: 1, capacityBytes: 100, freeBytes: 40 })
    // a duplicate of a stored shard needs no space
    assert.deepEqual(await store.put(cidOf(a), a), { size: 60, created: false })
  })

  it('STORE_FULL: two concurrent puts that together overshoot, only one lands', async (t) => {
    const h = await harness(t)
    const store = await h.store({ capacityBytes: 100 })
    const a = bytesOf(60, 13)
    const b = bytesOf(60, 14)
    const results = await Promise.allSettled([store.put(cidOf(a), a), store.put(cidOf(b), b)])
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected'],
    )
    assert.ok(results[1]?.status === 'rejected' && isNodusError(results[1].reason, 'STORE_FULL'))
    assert.deepEqual(store.usage(), { bytes: 60, shards: 1, capacityBytes: 100, freeBytes: 40 })

    // streams without a declared size reserve as bytes arrive: they cannot jointly overshoot either
    const c = bytesOf(30, 15)
    const d = bytesOf(30, 16)
    const streamed = await Promise.allSettled([
      store.put(cidOf(c), chunked(c, [6, 6, 6, 6])),
      store.put(cidOf(d), chunked(d, [6, 6, 6, 6])),
    ])
    assert.ok(streamed.some((r) => r.status === 'rejected' && isNodusError(r.reason, 'STORE_FULL')))
    assert.ok(streamed.filter((r) => r.status === 'fulfilled').length <= 1)
    assert.ok(store.usage().bytes <= 100)
    assert.deepEqual(await h.tmpFiles(), [])
  })

  it('usage counters match a model after puts, duplicate puts, bad puts and deletes (seeded property)', async (t) => {
    const h = await harness(t)
    const pool = [0, 1, 100, 1000, 4096, 70_000, 12_345].map((n, i) => bytesOf(n, 100 + i))
    const capacityBytes = 90_000
    type Op =
      | { kind: 'put'; i: number; chunks: number[] | undefined }
      | { kind: 'bad'; i: number }
      | { kind: 'delete'; i: number }
    const index = fc.integer({ min: 0, max: pool.length - 1 })
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 5,
        arbitrary: fc.record({
          kind: fc.constant('put' as const),
          i: index,
          chunks: fc.option(fc.array(fc.nat(20_000)), { nil: undefined }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('bad' as const), i: index }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), i: index }) },
    )
    let run = 0
    const prop = fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (ops) => {
      const dir = join(h.dir, `run-${run++}`)
      const open = async (): Promise<ShardStore> => {
        const s = new ShardStore({ clock: { now: () => NOW_MS } }, { dir, capacityBytes, maxShardBytes: MiB })
        await s.open()
        return s
      }
      let store = await open()
      try {
        const model = new Map<string, number>()
        const modelBytes = (): number => [...model.values()].reduce((a, b) => a + b, 0)
        for (const o of ops) {
          const bytes = pool[o.i] as Uint8Array
          const cid = cidOf(bytes)
          const key = cid.toString()
          if (o.kind === 'put') {
            const data = o.chunks === undefined ? bytes : chunked(bytes, o.chunks)
            if (!model.has(key) && modelBytes() + bytes.byteLength > capacityBytes) {
              await assert.rejects(store.put(cid, data), hasCode('STORE_FULL'))
            } else {
              const r = await store.put(cid, data)
              assert.deepEqual(r, { size: bytes.byteLength, created: !model.has(key) })
              model.set(key, bytes.byteLength)
            }
          } else if (o.kind === 'bad') {
            const wrong = pool[(o.i + 1) % pool.length] as Uint8Array
            if (model.has(key)) assert.equal((await store.put(cid, wrong)).created, false)
            else {
              await assert.rejects(
                store.put(cid, wrong),
                (e: unknown) => isNodusError(e, 'CID_MISMATCH') || isNodusError(e, 'STORE_FULL'),
              )
            }
          } else {
            assert.equal(await store.delete(cid), model.delete(key))
          }
          const u = store.usage()
          assert.equal(u.bytes, modelBytes())
          assert.equal(u.shards, model.size)
        }
        const expectList = [...model.entries()]
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([cid, size]) => ({ cid, size, storedAt: NOW_MS }))
        assert.deepEqual(store.list(), expectList)
        await store.close()
        store = await open()
        assert.deepEqual(store.usage(), {
          bytes: modelBytes(),
          shards: model.size,
          capacityBytes,
          freeBytes: capacityBytes - modelBytes(),
        })
        assert.deepEqual(store.list(), expectList)
        assert.deepEqual(await readdir(join(dir, 'tmp')), [])
      } finally {
        await store.close()
        await rm(dir, { recursive: true, force: true })
      }
    })
    await assertProperty(prop, { numRuns: 30 })
  })

  it('usage and shards survive close and reopen (same instance and a new one)', async (t) => {
    const h = await harness(t)
    const store = await h.store()
    const a = bytesOf(1234, 17)
    const b = bytesOf(4321, 18)
    await store.put(cidOf(a), a)
    await store.put(cidOf(b), b)
    await store.delete(cidOf(a))
    await store.close()
    await store.close()
    await store.open()
    assert.deepEqual(store.usage().bytes, 4321)
    await store.close()
    const again = await h.store()
    assert.deepEqual(again.usage(), {
      bytes: 4321,
      shards: 1,
      capacityBytes: 1 << 30,
      freeBytes: (1 << 30) - 4321,
    })
    assert.deepEqual(new Uint8Array(await again.get(cidOf(b))), b)
    assert.equal(again.has(cidOf(a)), false)
  })

  it('list pages in CID order', async (t) => {
    const store = await (await harness(t)).store()
    const keys: string[] = []
    for (let i = 0; i < 7; i++) {
      const bytes = bytesOf(10 + i, 200 + i)
      await store.put(cidOf(bytes), bytes)
      keys.push(cidOf(bytes).toString())
    }
    keys.sort()
    const seen: string[] = []
    let after: string | undefined
    for (;;) {
      const page = store.list(after === undefined ? { limit: 3 } : { limit: 3, after })
      if (page.length === 0) break
      assert.ok(page.length <= 3)
      seen.push(...page.map((r) => r.cid))
      after = page.at(-1)?.cid
    }
    assert.deepEqual(seen, keys)
  })

  it('read streams exactly the requested byte range in chunks of at most 64 KiB', async (t) => {
    const store = await (await harness(t)).store()
    const bytes = bytesOf(200_000, 19)
    const cid = cidOf(bytes)
    await store.put(cid, bytes)

    const whole = await collect(store.read(cid))
    assert.deepEqual(whole.bytes, bytes)
    assert.deepEqual(whole.chunks, [65_536, 65_536, 65_536, 3_392])

    const ranges: Array<[number, number | undefined]> = [
      [0, 1],
      [65_535, 2],
      [1, 199_998],
      [150_000, undefined],
      [100_000, 1_000_000],
      [200_000, undefined],
      [7, 0],
    ]
    for (const [offset, length] of ranges) {
      const got = await collect(store.read(cid, length === undefined ? { offset } : { offset, length }))
      const end = length === undefined ? bytes.byteLength : Math.min(bytes.byteLength, offset + length)
      assert.deepEqual(got.bytes, bytes.subarray(offset, end), `range ${offset}+${length}`)
      assert.ok(got.chunks.every((n) => n > 0 && n <= 65_536))
    }
    await assert.rejects(collect(store.read(cid, { offset: 200_001 })), hasCode('INVALID_ARGUMENT'))
    await assert.rejects(collect(store.read(cid, { offset: 0, length: -1 })), hasCode('INVALID_ARGUMENT'))
    await assert.rejects(collect(store.read(cidOf(bytesOf(5, 20)))), hasCode('SHARD_MISSING'))

    const ac = new AbortController()
    const reader = store.read(cid, { signal: ac.signal })
    await reader.next()
    ac.abort()
    await assert.rejects(reader.next(), hasCode('ABORTED'))
  })

  it('abort mid-put rejects ABORTED and leaves no temp file, even while the source is stalled', async (t) => {
    const h = await harness(t)
    const store = await h.store()
    const bytes = bytesOf(10_000, 21)
    const cid = cidOf(bytes)
    const ac = new AbortController()
    const firstChunkTaken = Promise.withResolvers<void>()
    const stalled = async function* (): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, 4000)
      firstChunkTaken.resolve()
      await new Promise<never>(() => {}) // a peer that stops sending
    }
    const put = store.put(cid, stalled(), { signal: ac.signal })
    await firstChunkTaken.promise
    assert.equal((await h.tmpFiles()).length, 1)
    ac.abort()
    await assert.rejects(put, hasCode('ABORTED'))
    assert.deepEqual(await h.tmpFiles(), [])
    assert.equal(store.has(cid), false)
    assert.deepEqual(store.usage().freeBytes, 1 << 30, 'reservation released')

    await assert.rejects(store.put(cid, bytes, { signal: AbortSignal.abort() }), hasCode('ABORTED'))
    // the lock was released: a later put succeeds
    assert.equal((await store.put(cid, bytes)).created, true)
  })

  it('concurrent puts of the same CID store it once', async (t) => {
    const h = await harness(t)
    const store = await h.store()
    const bytes = bytesOf(100_000, 22)
    const cid = cidOf(bytes)
    const results = await Promise.all([
      store.put(cid, bytes),
      store.put(cid, chunked(bytes, [3, 70_000])),
      store.put(cid, bytes),
      store.put(cid, chunked(bytes, [1000]), { expectedSize: 100_000 }),
      store.put(cid, bytes),
    ])
    assert.equal(results.filter((r) => r.created).length, 1)
    assert.ok(results.every((r) => r.size === 100_000))
    assert.deepEqual(store.usage().bytes, 100_000)
    assert.deepEqual(store.usage().shards, 1)
    assert.deepEqual(await readdir(join(h.dir, cid.toString().slice(-3, -1))), [cid.toString()])
    assert.deepEqual(await h.tmpFiles(), [])
    assert.deepEqual(new Uint8Array(await store.get(cid)), bytes)
  })

  it('a failed put does not block a concurrent put of the same CID with the right bytes', async (t) => {
    const store = await (await harness(t)).store()
    const bytes = bytesOf(5000, 23)
    const cid = cidOf(bytes)
    const [bad, good] = await Promise.allSettled([store.put(cid, bytesOf(5000, 24)), store.put(cid, bytes)])
    assert.ok(bad.status === 'rejected' && isNodusError(bad.reason, 'CID_MISMATCH'))
    assert.deepEqual(good.status === 'fulfilled' && good.value, { size: 5000, created: true })
  })

  it('put and delete of the same CID are serialized', async (t) => {
    const h = await harness(t)
    const store = await h.store()
    const bytes = bytesOf(3000, 25)
    const cid = cidOf(bytes)
    const [put, del] = await Promise.all([store.put(cid, bytes), store.delete(cid)])
    assert.deepEqual(put, { size: 3000, created: true })
    assert.equal(del, true)
    assert.equal(store.has(cid), false)
    assert.equal(existsSync(h.shardFile(cid)), false)
    assert.deepEqual(store.usage().bytes, 0)
  })

  it('close waits for an in-flight put; the shard is there after reopen', async (t) => {
    const h = await harness(t)
    const store = await h.store()
    const bytes = bytesOf(9000, 26)
    const cid = cidOf(bytes)
    const started = Promise.withResolvers<void>()
    const gate = Promise.withResolvers<void>()
    const slow = async function* (): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, 100)
      started.resolve()
      await gate.promise
      yield bytes.subarray(100)
    }
    const put = store.put(cid, slow())
    await started.promise
    let closed = false
    const closing = store.close().then(() => {
      closed = true
    })
    assert.throws(() => store.has(cid), hasCode('STORE_CLOSED'))
    await assert.rejects(store.put(cidOf(bytesOf(1, 1)), bytesOf(1, 1)), hasCode('STORE_CLOSED'))
    assert.equal(closed, false)
    gate.resolve()
    assert.deepEqual(await put, { size: 9000, created: true })
    await closing
    const again = await h.store()
    assert.equal(again.has(cid), true)
  })

  it('operations throw NOT_STARTED before open and STORE_CLOSED after close', async (t) => {
    const h = await harness(t)
    const bytes = bytesOf(10, 27)
    const cid = cidOf(bytes)
    const fresh = new ShardStore({}, { dir: h.dir, capacityBytes: 1000, maxShardBytes: 1000 })
    assert.throws(() => fresh.usage(), hasCode('NOT_STARTED'))

    const store = await h.store()
    await store.put(cid, bytes)
    await store.close()
    await store.close()
    const closed = hasCode('STORE_CLOSED')
    await assert.rejects(store.put(cid, bytes), closed)
    await assert.rejects(store.get(cid), closed)
    await assert.rejects(store.delete(cid), closed)
    await assert.rejects(collect(store.read(cid)), closed)
    assert.throws(() => store.has(cid), closed)
    assert.throws(() => store.stat(cid), closed)
    assert.throws(() => store.usage(), closed)
    assert.throws(() => store.list(), closed)
  })

  it('open removes temp files left by a crash', async (t) => {
    const h = await harness(t)
    const store = await h.store()
    await store.close()
    await writeFile(join(h.dir, 'tmp', 'left-over'), 'partial')
    await store.open()
    assert.deepEqual(await h.tmpFiles(), [])
  })

  it('SHARD_MISSING when an indexed shard lost its file: the copy is dropped, logged and reported once', async (t) => {
    const h = await harness(t)
    const warnings: object[] = []
    const removed: [string, number, string][] = []
    const store = new ShardStore(
      {
        logger: { debug() {}, warn: (obj) => void warnings.push(obj) },
        onRemoved: (cid, size, reason) => void removed.push([cid, size, reason]),
      },
      { dir: h.dir, capacityBytes: 1 << 20, maxShardBytes: 1 << 20 },
    )
    await store.open()
    t.after(() => store.close())
    await store.startupCheck
    const bytes = bytesOf(100, 28)
    const cid = cidOf(bytes)
    await store.put(cid, bytes)
    await rm(h.shardFile(cid))
    await assert.rejects(
      Promise.all([store.get(cid), store.get(cid), collect(store.read(cid))]),
      hasCode('SHARD_MISSING'),
    )
    await assert.rejects(collect(store.read(cid)), hasCode('SHARD_MISSING'))
    assert.deepEqual(removed, [[cid.toString(), 100, 'lost']])
    assert.equal(warnings.length, 1)
    assert.equal(store.has(cid), false)
    assert.deepEqual(store.usage().shards, 0)
    assert.equal(await store.delete(cid), false)
    // it can be stored again
    assert.equal((await store.put(cid, bytes)).created, true)
    assert.deepEqual(new Uint8Array(await store.get(cid)), bytes)
  })

  it('rejects bad options (INVALID_ARGUMENT)', () => {
    const make = (o: Partial<ShardStoreOptions>) => () =>
      new ShardStore({}, { dir: '/nonexistent', capacityBytes: 1, maxShardBytes: 1, ...o })
    assert.throws(make({ capacityBytes: -1 }), hasCode('INVALID_ARGUMENT'))
    assert.throws(make({ maxShardBytes: 0 }), hasCode('INVALID_ARGUMENT'))
    assert.throws(make({ maxShardBytes: 1.5 }), hasCode('INVALID_ARGUMENT'))
  })
})

describe('ShardStore expiry', () => {
  it('a shard expires at the latest of its pins; "never" beats any time; stat and list show it', async (t) => {
    const store = await (await harness(t)).store()
    const bytes = bytesOf(1000, 300)
    const cid = cidOf(bytes)
    const key = cid.toString()
    assert.deepEqual(await store.put(cid, bytes, { expiresAt: 5000 }), { size: 1000, created: true })
    assert.deepEqual(store.stat(cid), { cid: key, size: 1000, storedAt: NOW_MS, expiresAt: 5000 })
    assert.deepEqual(await store.put(cid, bytes, { expiresAt: 3000 }), { size: 1000, created: false })
    assert.equal(store.stat(cid)?.expiresAt, 5000, 'an earlier-expiring put does not shorten it')
    await store.put(cid, bytes, { expiresAt: 9000 })
    assert.equal(store.stat(cid)?.expiresAt, 9000, 'a later one extends it')
    assert.deepEqual(store.list(), [{ cid: key, size: 1000, storedAt: NOW_MS, expiresAt: 9000 }])
    await store.put(cid, bytes)
    assert.deepEqual(store.stat(cid), { cid: key, size: 1000, storedAt: NOW_MS }, 'no expiry wins')
    await store.put(cid, bytes, { expiresAt: 99_999 })
    assert.equal(store.stat(cid)?.expiresAt, undefined, 'and stays')
    assert.deepEqual(store.usage().shards, 1)
    await assert.rejects(store.put(cid, bytes, { expiresAt: -1 }), hasCode('INVALID_ARGUMENT'))
    await assert.rejects(store.put(cid, bytes, { expiresAt: 1.5 }), hasCode('INVALID_ARGUMENT'))
  })

  it('extendExpiry follows the same max rule, is durable, and resolves false for an absent shard', async (t) => {
    const h = await harness(t)
    const store = await h.store()
    const bytes = bytesOf(100, 301)
    const cid = cidOf(bytes)
    assert.equal(await store.extendExpiry(cid, 1000), false)
    await store.put(cid, bytes, { expiresAt: 2000 })
    assert.equal(await store.extendExpiry(cid, 1000), true)
    assert.equal(store.stat(cid)?.expiresAt, 2000)
    assert.equal(await store.extendExpiry(cid, 4000), true)
    assert.equal(store.stat(cid)?.expiresAt, 4000)
    await store.close()
    const again = await h.store()
    assert.equal(again.stat(cid)?.expiresAt, 4000)
    assert.equal(await again.extendExpiry(cid, undefined), true)
    assert.equal(again.stat(cid)?.expiresAt, undefined)
    assert.deepEqual(await again.cleanupExpired(Number.MAX_SAFE_INTEGER - 1), { deleted: 0, bytes: 0 })
    await assert.rejects(again.extendExpiry(cid, -5), hasCode('INVALID_ARGUMENT'))
  })

  it('cleanupExpired deletes expired shards oldest first up to the limit, with files, usage and cache', async (t) => {
    const h = await harness(t)
    const requests: string[] = []
    const metrics = { cacheRequests: { inc: (l: { result: string }) => void requests.push(l.result) } }
    const store = await h.store({}, { metrics })
    const shards = [4000, 1000, 3000, 2000, undefined, 9000].map((expiresAt, i) => ({
      bytes: bytesOf(100 * (i + 1), 310 + i),
      expiresAt,
    }))
    for (const s of shards) {
      await store.put(cidOf(s.bytes), s.bytes, s.expiresAt === undefined ? {} : { expiresAt: s.expiresAt })
    }
    await store.get(cidOf((shards[1] as { bytes: Uint8Array }).bytes)) // cached
    const total = shards.reduce((n, s) => n + s.bytes.byteLength, 0)
    assert.deepEqual(await store.cleanupExpired(999), { deleted: 0, bytes: 0 })

    // expired at 3500: expiresAt 1000, 2000, 3000 (shards 1, 3, 2); limit 2 takes the two oldest
    assert.deepEqual(await store.cleanupExpired(3500, { limit: 2 }), { deleted: 2, bytes: 200 + 400 })
    for (const i of [1, 3]) {
      const cid = cidOf((shards[i] as { bytes: Uint8Array }).bytes)
      assert.equal(store.has(cid), false)
      assert.equal(existsSync(h.shardFile(cid)), false)
    }
    assert.equal(store.cacheStats().entries, 0, 'the cached copy went with the shard')
    await assert.rejects(
      store.get(cidOf((shards[1] as { bytes: Uint8Array }).bytes)),
      hasCode('SHARD_MISSING'),
    )
    assert.deepEqual(store.usage().bytes, total - 600)
    assert.deepEqual(await store.cleanupExpired(3500), { deleted: 1, bytes: 300 })
    assert.deepEqual(await store.cleanupExpired(3500), { deleted: 0, bytes: 0 })
    // expiresAt is inclusive: a shard expiring at `now` goes
    assert.deepEqual(await store.cleanupExpired(4000), { deleted: 1, bytes: 100 })
    assert.deepEqual(
      store.list().map((r) => r.expiresAt),
      store.list().map((r) => (r.size === 500 ? undefined : 9000)),
    )
    assert.deepEqual(store.usage(), {
      bytes: 500 + 600,
      shards: 2,
      capacityBytes: 1 << 30,
      freeBytes: (1 << 30) - 1100,
    })
    assert.deepEqual(await store.cleanupExpired(Number.MAX_SAFE_INTEGER - 1), { deleted: 1, bytes: 600 })
    assert.deepEqual(
      store.list().map((r) => r.size),
      [500],
      'a shard with no expiry is never cleaned up',
    )
    assert.deepEqual(await store.cleanupExpired(0, { limit: 0 }), { deleted: 0, bytes: 0 })
    await assert.rejects(store.cleanupExpired(-1), hasCode('INVALID_ARGUMENT'))
    await assert.rejects(store.cleanupExpired(1, { limit: -1 }), hasCode('INVALID_ARGUMENT'))
    await assert.rejects(store.cleanupExpired(1, { signal: AbortSignal.abort() }), hasCode('ABORTED'))
  })

  it('shards shared by two pins stay until the last pin expires', async (t) => {
    const store = await (await harness(t)).store()
    const shared = bytesOf(1000, 320)
    const onlyA = bytesOf(2000, 321)
    const onlyB = bytesOf(3000, 322)
    // pin A (expires at 10 s) stores onlyA + shared; pin B (expires at 20 s) stores shared + onlyB
    await store.put(cidOf(onlyA), onlyA, { expiresAt: 10_000 })
    await store.put(cidOf(shared), shared, { expiresAt: 10_000 })
    await store.put(cidOf(shared), shared, { expiresAt: 20_000 })
    await store.put(cidOf(onlyB), onlyB, { expiresAt: 20_000 })
    // and the other order of pins gives the same expiry
    assert.equal(store.stat(cidOf(shared))?.expiresAt, 20_000)

    assert.deepEqual(await store.cleanupExpired(15_000), { deleted: 1, bytes: 2000 })
    assert.equal(store.has(cidOf(onlyA)), false)
    assert.deepEqual(new Uint8Array(await store.get(cidOf(shared))), shared, 'still held for pin B')
    assert.deepEqual(await store.cleanupExpired(20_000), { deleted: 2, bytes: 4000 })
    assert.deepEqual(store.usage().shards, 0)
  })

  it('matches a model under puts, extensions, deletes, cleanups and reopens (seeded property)', async (t) => {
    const h = await harness(t)
    const pool = Array.from({ length: 6 }, (_, i) => bytesOf(50 + 37 * i, 400 + i))
    const keys = pool.map((b) => cidOf(b).toString())
    type Op =
      | { kind: 'put' | 'extend'; i: number; expiresAt: number | undefined }
      | { kind: 'delete'; i: number }
      | { kind: 'cleanup'; now: number; limit: number }
      | { kind: 'reopen' }
    const i = fc.integer({ min: 0, max: pool.length - 1 })
    const time = fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined, freq: 4 })
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('put' as const), i, expiresAt: time }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('extend' as const), i, expiresAt: time }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), i }) },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('cleanup' as const),
          now: fc.integer({ min: 0, max: 110 }),
          limit: fc.integer({ min: 0, max: 4 }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
    )
    let run = 0
    const later = (a: number | undefined, b: number | undefined): number | undefined =>
      a === undefined || b === undefined ? undefined : Math.max(a, b)
    const prop = fc.asyncProperty(fc.array(op, { maxLength: 30 }), async (ops) => {
      const dir = join(h.dir, `expiry-${run++}`)
      const make = async (): Promise<ShardStore> => {
        const s = new ShardStore(
          { clock: { now: () => NOW_MS } },
          { dir, capacityBytes: 1 << 20, maxShardBytes: MiB },
        )
        await s.open()
        return s
      }
      let store = await make()
      /** CID -> expiresAt (undefined = never) of the shards the model holds. */
      const model = new Map<string, number | undefined>()
      try {
        for (const o of ops) {
          if (o.kind === 'put') {
            const bytes = pool[o.i] as Uint8Array
            const key = keys[o.i] as string
            const r = await store.put(
              cidOf(bytes),
              bytes,
              o.expiresAt === undefined ? {} : { expiresAt: o.expiresAt },
            )
            assert.equal(r.created, !model.has(key))
            model.set(key, model.has(key) ? later(model.get(key), o.expiresAt) : o.expiresAt)
          } else if (o.kind === 'extend') {
            const key = keys[o.i] as string
            assert.equal(
              await store.extendExpiry(cidOf(pool[o.i] as Uint8Array), o.expiresAt),
              model.has(key),
            )
            if (model.has(key)) model.set(key, later(model.get(key), o.expiresAt))
          } else if (o.kind === 'delete') {
            assert.equal(
              await store.delete(cidOf(pool[o.i] as Uint8Array)),
              model.delete(keys[o.i] as string),
            )
          } else if (o.kind === 'cleanup') {
            const due = [...model.entries()]
              .filter((e): e is [string, number] => e[1] !== undefined && e[1] <= o.now)
              .sort(([ka, a], [kb, b]) => a - b || (ka < kb ? -1 : 1))
              .slice(0, o.limit)
            const r = await store.cleanupExpired(o.now, { limit: o.limit })
            const sizeOf = (k: string): number => (pool[keys.indexOf(k)] as Uint8Array).byteLength
            assert.deepEqual(r, { deleted: due.length, bytes: due.reduce((n, [k]) => n + sizeOf(k), 0) })
            for (const [k] of due) model.delete(k)
          } else {
            await store.close()
            store = await make()
          }
          const expected = [...model.entries()].sort(([a], [b]) => (a < b ? -1 : 1))
          assert.deepEqual(
            store.list().map((r) => [r.cid, r.expiresAt]),
            expected,
          )
          assert.equal(store.usage().shards, model.size)
        }
      } finally {
        await store.close()
        await rm(dir, { recursive: true, force: true })
      }
    })
    await assertProperty(prop, { numRuns: 40 })
  })

  it('startExpiryCleanup runs cleanupExpired on its timer until stopped', async (t) => {
    const store = await (await harness(t)).store()
    const bytes = bytesOf(700, 330)
    await store.put(cidOf(bytes), bytes, { expiresAt: 50 })
    const runs: Array<{ deleted: number; bytes: number } | { error: unknown }> = []
    const firstDeletion = Promise.withResolvers<void>()
    const task = startExpiryCleanup(store, {
      intervalMs: 1,
      clock: { now: () => 100 },
      onRun: (r) => {
        runs.push(r)
        if ('deleted' in r && r.deleted > 0) firstDeletion.resolve()
      },
    })
    t.after(() => task.stop())
    await firstDeletion.promise
    await task.stop()
    await task.stop()
    const count = runs.length
    assert.equal(store.has(cidOf(bytes)), false)
    assert.deepEqual(runs.at(-1), { deleted: 1, bytes: 700 })
    assert.ok(runs.every((r) => 'deleted' in r))
    assert.equal(runs.length, count, 'no run after stop()')
    assert.throws(() => startExpiryCleanup(store, { intervalMs: 0 }), hasCode('INVALID_ARGUMENT'))
  })

  it('opens a format-1 index (no expiry) and upgrades it in place', async (t) => {
    const h = await harness(t)
    // A format-1 index as the previous release wrote it: 16-byte records, version 1, no expiry database.
    const a = bytesOf(1234, 340)
    const b = bytesOf(99, 341)
    const root = openLmdb<unknown, string>({ path: join(h.dir, 'index'), maxDbs: 4 })
    const shards = root.openDB<unknown, string>({ name: 'shards', encoding: 'binary' })
    const meta = root.openDB<unknown, string>({ name: 'meta', encoding: 'binary' })
    const u64s = (...xs: number[]): Uint8Array => {
      const out = new Uint8Array(8 * xs.length)
      for (const [i, x] of xs.entries()) new DataView(out.buffer).setBigUint64(8 * i, BigInt(x))
      return out
    }
    await root.transaction(() => {
      void shards.put(cidOf(a).toString(), u64s(1234, 111))
      void shards.put(cidOf(b).toString(), u64s(99, 222))
      void meta.put('formatVersion', new Uint8Array([0, 0, 0, 1]))
      void meta.put('usage', u64s(1333, 2))
    })
    await root.close()
    for (const bytes of [a, b]) {
      await mkdir(dirname(h.shardFile(cidOf(bytes))), { recursive: true })
      await writeFile(h.shardFile(cidOf(bytes)), bytes)
    }

    const store = await h.store()
    assert.deepEqual(store.lastRecovery?.lost, [])
    assert.deepEqual(store.usage().bytes, 1333)
    assert.deepEqual(store.stat(cidOf(a)), { cid: cidOf(a).toString(), size: 1234, storedAt: 111 })
    assert.equal(await store.extendExpiry(cidOf(b), 500), true)
    await store.put(cidOf(b), b, { expiresAt: 500 })
    assert.equal(store.stat(cidOf(b))?.expiresAt, undefined, 'a format-1 shard never expires')
    await store.close()
    const check = openLmdb<unknown, string>({ path: join(h.dir, 'index'), maxDbs: 4, readOnly: true })
    const version = check.openDB<unknown, string>({ name: 'meta', encoding: 'binary' }).get('formatVersion')
    await check.close()
    assert.deepEqual(version instanceof Uint8Array ? [...version] : version, [0, 0, 0, 2])
  })
})

describe('ShardStore cache', () => {
  it('get() and whole-shard read() are served from the cache; range reads stream from disk', async (t) => {
    const h = await harness(t)
    const requests: string[] = []
    const metrics = {
      cacheRequests: { inc: (l: { result: 'hit' | 'miss' }) => void requests.push(l.result) },
    }
    const store = await h.store({ cacheBytes: 4 * MiB, cacheAdmitAfterMisses: 1 }, { metrics })
    const bytes = bytesOf(200_000, 500)
    const cid = cidOf(bytes)
    await store.put(cid, bytes)

    const first = await store.get(cid)
    assert.deepEqual(new Uint8Array(first), bytes)
    assert.deepEqual(requests, ['miss'])
    first.fill(0) // the caller owns what get() returns: the cached copy is untouched
    const second = await store.get(cid)
    assert.deepEqual(new Uint8Array(second), bytes)
    assert.deepEqual(requests, ['miss', 'hit'])

    // the file is gone from disk, yet whole reads are served from the cache ...
    await rm(h.shardFile(cid))
    const whole = await collect(store.read(cid))
    assert.deepEqual(whole.bytes, bytes)
    assert.deepEqual(whole.chunks, [65_536, 65_536, 65_536, 3_392])
    assert.deepEqual(requests, ['miss', 'hit', 'hit'])
    // ... while a byte range goes to disk (and is not counted), finds the file missing and drops the copy:
    // out of the index and the cache, so nothing serves it any more
    await assert.rejects(collect(store.read(cid, { offset: 1, length: 10 })), hasCode('SHARD_MISSING'))
    assert.deepEqual(requests, ['miss', 'hit', 'hit'])
    assert.deepEqual(store.cacheStats(), { bytes: 0, maxBytes: 4 * MiB, entries: 0, hits: 2, misses: 1 })
    assert.equal(store.has(cid), false)
    await assert.rejects(store.get(cid), hasCode('SHARD_MISSING'))
    await assert.rejects(collect(store.read(cid)), hasCode('SHARD_MISSING'))

    // delete drops the cached copy: a deleted shard is never served
    await store.put(cid, bytes)
    await store.get(cid)
    assert.equal(store.cacheStats().entries, 1)
    assert.equal(await store.delete(cid), true)
    assert.equal(store.cacheStats().entries, 0)
    await assert.rejects(store.get(cid), hasCode('SHARD_MISSING'))
    await assert.rejects(collect(store.read(cid)), hasCode('SHARD_MISSING'))
  })

  it('a whole-shard read() miss fills the cache while streaming; an abandoned one does not', async (t) => {
    const h = await harness(t)
    const store = await h.store({ cacheBytes: 4 * MiB, cacheAdmitAfterMisses: 1 })
    const bytes = bytesOf(150_000, 501)
    const cid = cidOf(bytes)
    await store.put(cid, bytes)

    const reader = store.read(cid)
    await reader.next()
    await reader.return()
    assert.equal(store.cacheStats().entries, 0, 'a read stopped early caches nothing')

    const [a, b] = await Promise.all([collect(store.read(cid)), collect(store.read(cid))])
    assert.deepEqual(a.bytes, bytes)
    assert.deepEqual(b.bytes, bytes)
    assert.equal(store.cacheStats().entries, 1)
    assert.equal(store.cacheStats().bytes, 150_000)
    const hitsBefore = store.cacheStats().hits
    assert.deepEqual((await collect(store.read(cid))).bytes, bytes)
    assert.equal(store.cacheStats().hits, hitsBefore + 1)
  })

  it('is bounded in bytes and evicts the least recently used; cacheBytes 0 disables it', async (t) => {
    const h = await harness(t)
    const requests: string[] = []
    const metrics = {
      cacheRequests: { inc: (l: { result: 'hit' | 'miss' }) => void requests.push(l.result) },
    }
    // 400 KB cache: entries up to 100 KB (a quarter) are admitted
    const store = await h.store({ cacheBytes: 400_000, cacheAdmitAfterMisses: 1 }, { metrics })
    const shards = [0, 1, 2, 3, 4].map((i) => bytesOf(90_000, 510 + i))
    for (const s of shards) await store.put(cidOf(s), s)
    for (const s of shards.slice(0, 4)) await store.get(cidOf(s)) // cache 0..3 (360 KB)
    await store.get(cidOf(shards[0] as Uint8Array)) // 0 is now the most recent
    await store.get(cidOf(shards[4] as Uint8Array)) // evicts 1, the least recently used
    assert.ok(store.cacheStats().bytes <= 400_000)
    assert.equal(store.cacheStats().entries, 4)
    requests.length = 0
    for (const i of [0, 2, 3, 4, 1]) await store.get(cidOf(shards[i] as Uint8Array))
    assert.deepEqual(requests, ['hit', 'hit', 'hit', 'hit', 'miss'])

    const big = bytesOf(100_001, 520)
    await store.put(cidOf(big), big)
    requests.length = 0
    await store.get(cidOf(big))
    await store.get(cidOf(big))
    assert.deepEqual(requests, [], 'a shard too large to cache is not counted either')

    await store.close()
    const off = await h.store({ cacheBytes: 0 }, { metrics })
    await off.get(cidOf(shards[0] as Uint8Array))
    await collect(off.read(cidOf(shards[0] as Uint8Array)))
    assert.deepEqual(requests, [])
    assert.equal(off.cacheStats().entries, 0)
  })

  it('by default caches a shard on its second miss: a file read once leaves the cache as it was', async (t) => {
    const h = await harness(t)
    const requests: string[] = []
    const metrics = {
      cacheRequests: { inc: (l: { result: 'hit' | 'miss' }) => void requests.push(l.result) },
    }
    const store = await h.store({ cacheBytes: 4 * MiB }, { metrics })
    const hot = bytesOf(100_000, 530)
    await store.put(cidOf(hot), hot)
    await store.get(cidOf(hot))
    assert.equal(store.cacheStats().entries, 0, 'one read is not enough')
    await store.get(cidOf(hot))
    assert.equal(store.cacheStats().entries, 1, 'the second miss admits it')
    assert.deepEqual(new Uint8Array(await store.get(cidOf(hot))), hot)
    assert.deepEqual(requests, ['miss', 'miss', 'hit'])

    // A scan: 60 shards read once each, by get() and by whole read(): none is cached, the hot one stays.
    const scan = Array.from({ length: 60 }, (_, i) => bytesOf(100_000, 600 + i))
    for (const s of scan) await store.put(cidOf(s), s)
    for (const [i, s] of scan.entries()) {
      if (i % 2 === 0) assert.deepEqual(new Uint8Array(await store.get(cidOf(s))), s)
      else assert.deepEqual((await collect(store.read(cidOf(s)))).bytes, s)
    }
    assert.equal(store.cacheStats().entries, 1)
    assert.equal(store.cacheStats().bytes, 100_000)
    requests.length = 0
    await store.get(cidOf(hot))
    assert.deepEqual(requests, ['hit'])

    // read() counts as a read too: a shard read once by get() and once by read() is admitted.
    const s0 = scan[1] as Uint8Array
    assert.deepEqual((await collect(store.read(cidOf(s0)))).bytes, s0)
    assert.equal(store.cacheStats().entries, 2)
  })

  it('only verified bytes enter the cache: a corrupt copy is dropped when get() or a whole read() would admit it', async (t) => {
    const h = await harness(t)
    const removed: string[] = []
    const store = await h.store(
      { cacheBytes: 4 * MiB },
      { onRemoved: (cid, _size, reason) => void removed.push(`${cid} ${reason}`) },
    )
    await store.startupCheck
    const flip = async (cid: CID): Promise<void> => {
      const fh = await open(h.shardFile(cid), 'r+')
      await fh.write(Buffer.from([0x55]), 0, 1, 777)
      await fh.close()
    }
    const a = bytesOf(100_000, 801)
    const b = bytesOf(100_000, 802)
    await store.put(cidOf(a), a)
    await store.put(cidOf(b), b)
    await flip(cidOf(a))
    await flip(cidOf(b))
    // A first miss is served from disk unverified (the reader checks the CID): no extra hash on the get path.
    assert.equal((await store.get(cidOf(a))).byteLength, 100_000)
    assert.equal((await collect(store.read(cidOf(b)))).bytes.byteLength, 100_000)
    // The second miss would cache it: verified first, found corrupt, dropped.
    await assert.rejects(store.get(cidOf(a)), hasCode('SHARD_MISSING'))
    await assert.rejects(collect(store.read(cidOf(b))), hasCode('SHARD_MISSING'))
    assert.deepEqual(removed, [`${cidOf(a)} corrupt`, `${cidOf(b)} corrupt`])
    assert.equal(store.cacheStats().entries, 0)
    assert.equal(store.has(cidOf(a)) || store.has(cidOf(b)), false)
    assert.equal(store.usage().shards, 0)
    assert.deepEqual(await readdir(dirname(h.shardFile(cidOf(a)))), [], 'the bad file is removed')
  })

  it('readForAudit reads the disk, never the cache, and drops a copy whose file is gone or bad', async (t) => {
    const h = await harness(t)
    const removed: string[] = []
    const store = await h.store(
      { cacheBytes: 4 * MiB, cacheAdmitAfterMisses: 1 },
      { onRemoved: (cid, size, reason) => void removed.push(`${cid} ${size} ${reason}`) },
    )
    const bytes = bytesOf(70_000, 803)
    const cid = cidOf(bytes)
    await store.put(cid, bytes)
    await store.get(cid)
    assert.equal(store.cacheStats().entries, 1)
    assert.deepEqual(new Uint8Array(await store.readForAudit(cid)), bytes)
    await rm(h.shardFile(cid))
    // The cache would still serve it ...
    assert.deepEqual(new Uint8Array(await store.get(cid)), bytes)
    // ... an audit read does not: the copy is dropped, cache entry included.
    await assert.rejects(store.readForAudit(cid), hasCode('SHARD_MISSING'))
    assert.deepEqual(removed, [`${cid} 70000 lost`])
    assert.equal(store.cacheStats().entries, 0)
    await assert.rejects(store.get(cid), hasCode('SHARD_MISSING'))
  })

  it('a ranged read checks the file size: a file longer or shorter than its record is dropped', async (t) => {
    const h = await harness(t)
    const removed: string[] = []
    const store = await h.store({}, { onRemoved: (cid, _s, reason) => void removed.push(`${cid} ${reason}`) })
    const a = bytesOf(20_000, 804)
    const b = bytesOf(20_000, 805)
    await store.put(cidOf(a), a)
    await store.put(cidOf(b), b)
    await truncate(h.shardFile(cidOf(a)), 30_000)
    await truncate(h.shardFile(cidOf(b)), 15_000)
    // The ranges asked for are within what each file has: only the size check finds them.
    await assert.rejects(collect(store.read(cidOf(a), { offset: 0, length: 10 })), hasCode('SHARD_MISSING'))
    await assert.rejects(collect(store.read(cidOf(b), { offset: 0, length: 10 })), hasCode('SHARD_MISSING'))
    assert.deepEqual(removed, [`${cidOf(a)} corrupt`, `${cidOf(b)} corrupt`])
    assert.equal(store.usage().shards, 0)
  })

  it('ShardCache.admitOnMiss: the doorkeeper remembers a bounded number of keys', () => {
    const cache = new ShardCache({ maxBytes: 1000, maxEntryBytes: 100 })
    assert.equal(cache.admitOnMiss('a', 10), false)
    assert.equal(cache.admitOnMiss('a', 10), true)
    assert.equal(cache.admitOnMiss('a', 10), false, 'admitting forgets the key')
    assert.equal(cache.admitOnMiss('big', 101), false)
    assert.equal(cache.admitOnMiss('big', 101), false, 'too large is never admitted')
    assert.equal(cache.admitOnMiss('b', 10), false)
    for (let i = 0; i < SEEN_KEYS; i++) cache.admitOnMiss(`k${i}`, 10)
    assert.equal(cache.admitOnMiss('b', 10), false, 'b was pushed out by SEEN_KEYS newer misses')
    assert.equal(cache.admitOnMiss(`k${SEEN_KEYS - 1}`, 10), true)
    const lru = new ShardCache({ maxBytes: 1000, admitAfterMisses: 1 })
    assert.equal(lru.admitOnMiss('x', 10), true)
    assert.equal(new ShardCache({ maxBytes: 0 }).admitOnMiss('x', 0), false)
  })

  it('ShardCache: LRU by bytes, admission by size, recency on get', () => {
    const cache = new ShardCache({ maxBytes: 100, maxEntryBytes: 40 })
    assert.equal(cache.set('a', new Uint8Array(40)), true)
    assert.equal(cache.set('b', new Uint8Array(30)), true)
    assert.equal(cache.set('huge', new Uint8Array(41)), false)
    assert.equal(cache.has('huge'), false)
    assert.ok(cache.get('a') !== undefined) // a is now more recent than b
    assert.equal(cache.set('c', new Uint8Array(40)), true) // 110 > 100: evicts b
    assert.deepEqual([cache.has('a'), cache.has('b'), cache.has('c')], [true, false, true])
    assert.equal(cache.bytes, 80)
    assert.equal(cache.set('a', new Uint8Array(10)), true) // replacing keeps the count exact
    assert.equal(cache.bytes, 50)
    assert.equal(cache.delete('a'), true)
    assert.equal(cache.delete('a'), false)
    assert.equal(cache.get('zzz'), undefined)
    assert.deepEqual(cache.stats, { hits: 1, misses: 1 })
    cache.clear()
    assert.deepEqual([cache.bytes, cache.size], [0, 0])
    assert.equal(new ShardCache({ maxBytes: 0 }).set('x', new Uint8Array(0)), false)
    assert.throws(() => new ShardCache({ maxBytes: -1 }), RangeError)
  })
})

describe('ShardStore capacity', () => {
  it('reuses a statfs for a second, less every byte reserved and released since', async (t) => {
    const h = await harness(t)
    const MiB = 1024 * 1024
    const s = await statfs(h.dir)
    let now = 0
    let calls = 0
    // 64 MiB above the reserve now; the disk itself is not written to by this test.
    const guard = new CapacityGuard({
      dir: h.dir,
      capacityBytes: Number.MAX_SAFE_INTEGER,
      minFreeDiskBytes: s.bavail * s.bsize - 64 * MiB,
      now: () => now,
      statfs: (d) => {
        calls++
        return statfs(d)
      },
    })
    await guard.checkDiskReserve('a')
    guard.reserve('a', 40 * MiB, () => 0).release() // as if 40 MiB had been written
    await guard.checkDiskReserve('b')
    guard.reserve('b', 40 * MiB, () => 0).release()
    await assert.rejects(guard.checkDiskReserve('c'), hasCode('STORE_FULL'))
    assert.equal(calls, 1)
    // After the TTL a fresh statfs shows that nothing was written.
    now += 1_000
    await guard.checkDiskReserve('d')
    assert.equal(calls, 2)
  })

  it('STORE_FULL when the file system would keep less than minFreeDiskBytes; nothing is written', async (t) => {
    const h = await harness(t)
    const store = await h.store({ minFreeDiskBytes: Number.MAX_SAFE_INTEGER })
    const bytes = bytesOf(1000, 600)
    await assert.rejects(store.put(cidOf(bytes), bytes), (err: unknown) => {
      assert.ok(isNodusError(err, 'STORE_FULL'))
      assert.equal(err.details.reason, 'disk reserve')
      assert.equal(typeof err.details.freeDiskBytes, 'number')
      return true
    })
    await assert.rejects(store.put(cidOf(bytes), chunked(bytes, [10])), hasCode('STORE_FULL'))
    assert.deepEqual(await h.tmpFiles(), [])
    assert.equal(store.has(cidOf(bytes)), false)
    assert.equal(store.reservedBytes, 0, 'reservation released')
    assert.equal(store.usage().freeBytes, 0, 'free capacity is what the disk has less the reserve')
    await store.close()
    // a shard already stored needs no space
    const roomy = await h.store({ minFreeDiskBytes: 0 })
    await roomy.put(cidOf(bytes), bytes)
    await roomy.close()
    const full = await h.store({ minFreeDiskBytes: Number.MAX_SAFE_INTEGER })
    assert.deepEqual(await full.put(cidOf(bytes), bytes), { size: 1000, created: false })
    assert.throws(
      () => new ShardStore({}, { dir: h.dir, capacityBytes: 1, maxShardBytes: 1, minFreeDiskBytes: -1 }),
      hasCode('INVALID_ARGUMENT'),
    )
  })

  it('ENOSPC while writing is STORE_FULL with no temp file and nothing visible (real full tmpfs)', async (t) => {
    // Needs a private mount namespace (unshare -r -m) to mount a 2 MiB tmpfs; skipped where not allowed.
    const dir = await mkdtemp(join(tmpdir(), 'nodus-shard-nospace-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const writer = fileURLToPath(new URL('./fixtures/nospace-writer.ts', import.meta.url))
    const script =
      `mount -t tmpfs -o size=2m tmpfs "$1" && mkdir "$1/index" && ` +
      `mount -t tmpfs -o size=64m tmpfs "$1/index" && exec "$2" "$3" "$1"`
    const probe = spawnSync('unshare', ['-r', '-m', 'sh', '-c', 'mount -t tmpfs tmpfs "$1"', 'sh', dir], {
      encoding: 'utf8',
      timeout: 10_000,
    })
    if (probe.status !== 0) {
      t.skip(`cannot mount a tmpfs in a user namespace here: ${probe.error ?? probe.stderr.trim()}`)
      return
    }
    const r = spawnSync('unshare', ['-r', '-m', 'sh', '-c', script, 'sh', dir, process.execPath, writer], {
      encoding: 'utf8',
      timeout: 30_000,
    })
    assert.equal(r.status, 0, r.stderr)
    const out = JSON.parse(r.stdout) as Record<string, unknown>
    assert.ok((out.stored as number) > 0)
    assert.deepEqual(out.bufferFailure, { code: 'STORE_FULL', reason: 'ENOSPC' })
    assert.deepEqual(out.streamFailure, { code: 'STORE_FULL', reason: 'ENOSPC' })
    assert.deepEqual(out.tmpAfterFull, [], 'the temp files were removed')
    assert.equal(out.listed, out.stored, 'only the acknowledged shards are indexed')
    assert.equal((out.usageAfterFull as { shards: number }).shards, out.stored)
    assert.equal(out.readBack, out.stored, 'every stored shard reads back intact')
    assert.deepEqual(out.reserveFailure, { code: 'STORE_FULL', reason: 'disk reserve' })
    assert.equal(out.duplicateCreated, false)
    assert.deepEqual(out.tmpAfterReserve, [])
  })
})
