import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { blake3 } from '@napi-rs/blake-hash'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { create } from 'multiformats/hashes/digest'
import { type ErrorCode, isNodusError } from '../../src/common/errors.ts'
import { ShardStore, type ShardStoreOptions } from '../../src/storage/shard-store.ts'

const NOW_MS = 1_700_000_000_000
const MiB = 1024 * 1024

const cidOf = (bytes: Uint8Array): CID => CID.createV1(0x55, create(0x1e, blake3(bytes)))

/** Deterministic pseudo-random bytes (xorshift32), so tests need no unseeded randomness. */
function bytesOf(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length)
  let x = seed | 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

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
  store(options?: Partial<ShardStoreOptions>): Promise<ShardStore>
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
    async store(options = {}) {
      const s = new ShardStore(
        { clock: { now: () => NOW_MS } },
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
    const seed = Number(process.env.FC_SEED ?? 0x5eed)
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
    await fc.assert(prop, { seed, numRuns: 30 })
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

  it('SHARD_MISSING (logged) when an indexed shard lost its file', async (t) => {
    const h = await harness(t)
    const warnings: object[] = []
    const store = new ShardStore(
      { logger: { debug() {}, warn: (obj) => void warnings.push(obj) } },
      { dir: h.dir, capacityBytes: 1 << 20, maxShardBytes: 1 << 20 },
    )
    await store.open()
    t.after(() => store.close())
    const bytes = bytesOf(100, 28)
    const cid = cidOf(bytes)
    await store.put(cid, bytes)
    await rm(h.shardFile(cid))
    await assert.rejects(store.get(cid), hasCode('SHARD_MISSING'))
    await assert.rejects(collect(store.read(cid)), hasCode('SHARD_MISSING'))
    assert.equal(warnings.length, 2)
    // deleting it still fixes the index and the counters
    assert.equal(await store.delete(cid), true)
    assert.deepEqual(store.usage().shards, 0)
  })

  it('rejects bad options (INVALID_ARGUMENT)', () => {
    const make = (o: Partial<ShardStoreOptions>) => () =>
      new ShardStore({}, { dir: '/nonexistent', capacityBytes: 1, maxShardBytes: 1, ...o })
    assert.throws(make({ capacityBytes: -1 }), hasCode('INVALID_ARGUMENT'))
    assert.throws(make({ maxShardBytes: 0 }), hasCode('INVALID_ARGUMENT'))
    assert.throws(make({ maxShardBytes: 1.5 }), hasCode('INVALID_ARGUMENT'))
  })
})
