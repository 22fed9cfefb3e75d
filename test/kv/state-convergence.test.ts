/**
 * The convergence property: random sequences of ops of every type (type conflicts, key-level dels,
 * tombstones, TTLs, list removals naming pushed elements, JSON whole-document and member writes,
 * time-series range deletes) applied in two random orders with duplicates give byte-identical stores,
 * secondary index entries included (one store declares its indexes first, the other last, so the
 * backfill must agree with the incremental upkeep). Seeded (test/utils/property.ts). Runs on
 * MemoryOrderedStore, and once on LmdbOrderedStore.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import fc from 'fast-check'
import { mulberry32 } from '../../src/common/prng.ts'
import type { KvType, KvValue, Op } from '../../src/kv/op-types.ts'
import { applyOp } from '../../src/kv/state/apply.ts'
import { get, hgetall, smembers } from '../../src/kv/state/basic.ts'
import { geosearch } from '../../src/kv/state/geo.ts'
import { jsonGet } from '../../src/kv/state/json.ts'
import { listElementId } from '../../src/kv/state/keys.ts'
import { gc, keyType, scan } from '../../src/kv/state/keyspace.ts'
import { lrange } from '../../src/kv/state/list.ts'
import { byIndex, defineIndex, type IndexSpec } from '../../src/kv/state/secondary.ts'
import { tsRange, xrevrange } from '../../src/kv/state/stream.ts'
import { parseScoreBound, zrange } from '../../src/kv/state/zset.ts'
import { LmdbOrderedStore } from '../../src/kv/store/lmdb-store.ts'
import { MemoryOrderedStore, type OrderedReader, type OrderedStore } from '../../src/kv/store/ordered.ts'
import { assertProperty } from '../utils/property.ts'
import { DB, dump, makeOp } from './state-ops.ts'

const KEYS = ['a', 'b', 'c']
const MEMBERS = ['m0', 'm1', 'm2', 'm3']
const INDEXES: IndexSpec[] = [
  { name: 'byM0', type: 'hash', field: 'm0' },
  { name: 'byM1', type: 'json', path: '$.m1' },
]

/** One generated op, as numbers turned into an Op by {@link build}. */
const rawOp = fc.record({
  kind: fc.nat({ max: 22 }),
  key: fc.nat({ max: KEYS.length - 1 }),
  member: fc.nat({ max: MEMBERS.length - 1 }),
  value: fc.integer({ min: -5, max: 5 }),
  ms: fc.integer({ min: 1, max: 30 }),
  c: fc.nat({ max: 1 }),
  ttl: fc.option(fc.integer({ min: 1, max: 40 }), { freq: 4 }),
  pick: fc.nat(),
})
type Raw = typeof rawOp extends fc.Arbitrary<infer T> ? T : never

const DEL_TYPES: KvType[] = ['string', 'hash', 'list', 'json']

/** Turn generated records into ops; list removals name elements of earlier pushes. */
function build(raws: Raw[]): Op[] {
  const ops: Op[] = []
  const pushed: Uint8Array[] = []
  for (const r of raws) {
    // Mostly a key per type; one op in eight on a shared key, where types conflict.
    const keyOf = (type: KvType): string => (r.pick % 8 === 0 ? `shared${r.key}` : `${type}-${KEYS[r.key]}`)
    const m = MEMBERS[r.member] as string
    const extra = { at: { ms: r.ms, c: r.c }, ...(r.ttl === null ? {} : { expireAt: r.ttl }) }
    const some = (): Uint8Array => pushed[r.pick % pushed.length] as Uint8Array
    const o = (type: KvType, op: string, args: KvValue[], field?: string): Op =>
      makeOp(
        type,
        op,
        keyOf(op === 'del' ? (DEL_TYPES[r.member] as KvType) : type),
        args,
        field === undefined ? extra : { ...extra, field },
      )
    const byKind: (() => Op | undefined)[] = [
      () => o('string', 'set', [r.value]),
      () => o(DEL_TYPES[r.pick % DEL_TYPES.length] as KvType, 'del', []),
      () => o('hash', 'hset', [m, r.value]),
      () => o('hash', 'hdel', [m]),
      () => o('list', 'lpush', r.value > 0 ? [r.value, m] : [r.value]),
      () => o('list', 'rpush', [r.value, m]),
      () => (pushed.length === 0 ? undefined : o('list', 'lrem', [some()])),
      () => (pushed.length === 0 ? undefined : o('list', 'lset', [some(), r.value])),
      () => o('set', 'sadd', [m, 'm9']),
      () => o('set', 'srem', [m]),
      () => o('zset', 'zadd', [r.value / 2, m, r.pick % 3, 'm9']),
      () => o('zset', 'zrem', [m]),
      () => o('geo', 'geoadd', [r.value * 30, r.value * 15, m]),
      () => o('geo', 'zrem', [m]),
      () => o('json', 'json.set', [{ m0: r.value, m1: m, n: { x: r.pick % 5 } }]),
      () => o('json', 'json.set', [r.value], m),
      () => o('json', 'json.del', [], m),
      () => o('json', 'json.del', []),
      () => o('stream', 'xadd', ['*', 'f', r.value]),
      () => o('stream', 'xadd', [`${r.pick % 4}-${r.member}`, 'f', r.value]),
      () => o('stream', 'xdel', [`${r.pick % 4}-${r.member}`]),
      () => o('ts', 'ts.add', [r.pick % 20, r.value]),
      () => o('ts', 'ts.del', [r.pick % 10, (r.pick % 10) + r.member * 3]),
    ]
    const op = byKind[r.kind]?.()
    if (op === undefined) continue
    ops.push(op)
    if (op.body.op === 'lpush' || op.body.op === 'rpush')
      op.body.args.forEach((_, i) => {
        pushed.push(listElementId(op.body.op === 'lpush' ? 'left' : 'right', op.body.hlc, op.id, i))
      })
  }
  return ops
}

/** `ops` shuffled by `seed`, with `extra` duplicates inserted at random places. */
function reorder(ops: Op[], seed: number, extra: number): Op[] {
  const rnd = mulberry32(seed)
  const out = [...ops]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    ;[out[i], out[j]] = [out[j] as Op, out[i] as Op]
  }
  for (let i = 0; i < extra && ops.length > 0; i++)
    out.splice(Math.floor(rnd() * (out.length + 1)), 0, ops[Math.floor(rnd() * ops.length)] as Op)
  return out
}

async function feed(store: OrderedStore, ops: Op[], indexesFirst: boolean): Promise<void> {
  await store.write((w) => {
    if (indexesFirst) for (const spec of INDEXES) defineIndex(w, DB, spec)
    for (const op of ops) applyOp(w, op)
    if (!indexesFirst) for (const spec of INDEXES) defineIndex(w, DB, spec)
  })
}

const scenario = fc.record({
  raws: fc.array(rawOp, { minLength: 1, maxLength: 40 }),
  seed: fc.integer(),
  dups: fc.nat({ max: 8 }),
})

test('any order of the same ops, with duplicates, gives byte-identical stores', async () => {
  await assertProperty(
    fc.asyncProperty(scenario, async ({ raws, seed, dups }) => {
      const ops = build(raws)
      const a = new MemoryOrderedStore()
      const b = new MemoryOrderedStore()
      await feed(a, ops, true)
      await feed(b, reorder(ops, seed, dups), false)
      assert.deepEqual(dump(b), dump(a))
      const again = await a.write((w) => ops.map((op) => applyOp(w, op).changed))
      assert.ok(
        again.every((changed) => !changed),
        'applying an op twice changes nothing',
      )
    }),
    { numRuns: 300 },
  )
})

test('gc is local and invisible: a store that gc-ed midway reads like one that never did', async () => {
  await assertProperty(
    fc.asyncProperty(scenario, fc.integer({ min: 0, max: 45 }), async ({ raws, seed }, gcAt) => {
      // Few elements, so expired elements gc buries are often written again by older ops later.
      const ops = reorder(build(raws.map((r) => ({ ...r, key: 0, member: r.member % 2 }))), seed, 0)
      const half = Math.floor(ops.length / 2)
      const gced = new MemoryOrderedStore()
      const plain = new MemoryOrderedStore()
      await feed(gced, ops.slice(0, half), true)
      await gced.write((w) => {
        while (gc(w, gcAt, 3).more);
      })
      await gced.write((w) => {
        for (const op of ops.slice(half)) applyOp(w, op)
      })
      await feed(plain, ops, true)
      for (const nowMs of [gcAt, gcAt + 1, 50]) assert.deepEqual(readAll(gced, nowMs), readAll(plain, nowMs))
    }),
    { numRuns: 500 },
  )
})

test('ops applied one write each, in another order, on LMDB give the same bytes as in memory', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-kv-conv-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const lmdb = LmdbOrderedStore.open({ path: dir })
  t.after(() => lmdb.close())
  const [sample] = fc.sample(fc.array(rawOp, { minLength: 300, maxLength: 300 }), { numRuns: 1, seed: 42 })
  const ops = build(sample as Raw[])
  const mem = new MemoryOrderedStore()
  await feed(mem, ops, true)
  for (const spec of INDEXES) await lmdb.write((w) => defineIndex(w, DB, spec))
  await Promise.all(reorder(ops, 7, 50).map((op) => lmdb.write((w) => applyOp(w, op))))
  assert.ok(dump(mem).length > 200, 'the sample fills the store')
  assert.deepEqual(dump(lmdb), dump(mem))
  assert.deepEqual(readAll(lmdb, 15), readAll(mem, 15), 'readers agree on both stores')
})

/** Everything the readers say about the database at `nowMs`, key by key. */
function readAll(r: OrderedReader, nowMs: number): unknown[] {
  const o = { nowMs }
  return scan(r, DB, { ...o, limit: 1000 }).keys.map((key) => {
    const type = keyType(r, DB, key, o)
    const read: Record<string, () => unknown> = {
      string: () => get(r, DB, key, o),
      hash: () => hgetall(r, DB, key, o),
      list: () => lrange(r, DB, key, 0, -1, o),
      set: () => smembers(r, DB, key, o),
      zset: () =>
        zrange(
          r,
          DB,
          key,
          { by: 'score', min: parseScoreBound('-inf'), max: parseScoreBound('+inf'), rev: true },
          o,
        ),
      geo: () =>
        geosearch(
          r,
          DB,
          key,
          { from: { lon: 0, lat: 0 }, by: { radius: 20_000, unit: 'km' }, order: 'asc' },
          o,
        ),
      json: () => jsonGet(r, DB, key, o),
      stream: () => xrevrange(r, DB, key, '+', '-', o),
      ts: () => tsRange(r, DB, key, 0, 100, { ...o, aggregation: { type: 'avg', bucketMs: 3 } }),
    }
    return [key, type, read[type]?.(), byIndex(r, DB, 'byM0', { gte: -5 }, o)]
  })
}
