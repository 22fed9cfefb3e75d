/**
 * FingerprintIndex on MemoryOrderedStore: every range summary, count, item list and split agrees with
 * a plain scan of the same set (the reference ArraySet) after random inserts and removes; the stored
 * structure depends only on the set (not on the order of inserts); ranges cost O(log n) store reads.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { seededRandom } from '../../src/common/random.ts'
import { fingerprint, summaryEquals } from '../../src/kv/reconcile/fingerprint.ts'
import { dbScope, FingerprintIndex } from '../../src/kv/reconcile/fingerprint-index.ts'
import { MemoryOrderedStore, type OrderedReader, type RangeOptions } from '../../src/kv/store/ordered.ts'
import { assertProperty } from '../utils/property.ts'
import { ArraySet, indexedSet, keyOf, keys } from '../utils/recon.ts'

const SCOPE = { scope: Uint8Array.of(7) }

/** A bound: a prefix (8…40 bytes) of a key, or of a key near it, or the empty key. */
function boundsFrom(all: Uint8Array[], rnd: ReturnType<typeof seededRandom>, n: number): Uint8Array[] {
  const out: Uint8Array[] = [new Uint8Array(0)]
  for (let i = 0; i < n; i++) {
    const k = all[Math.floor(rnd.next() * all.length)] ?? keyOf(1_700_000_000_000, 0, i)
    const b = k.slice(0, 8 + Math.floor(rnd.next() * 33))
    if (rnd.next() < 0.3) b[b.length - 1] = (b[b.length - 1] as number) ^ 1
    out.push(b)
  }
  return out.sort(Buffer.compare)
}

test('summaries, counts, items and predecessors of random ranges match a scan, after inserts and removes', async () => {
  await assertProperty(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 600 }),
      fc.integer({ min: 0, max: 300 }),
      fc.integer({ min: 1, max: 2 ** 31 }),
      async (n, removeCount, seed) => {
        const all = keys(n, seed)
        const rnd = seededRandom(seed)
        const removed = all.filter(() => rnd.next() < removeCount / 600)
        const store = new MemoryOrderedStore()
        const index = await FingerprintIndex.open(store, { random: seededRandom(seed) }, SCOPE)
        await store.write((w) => {
          for (const k of all) assert.equal(index.insert(w, k), true)
          assert.equal(index.insert(w, all[0] ?? keyOf(1, 0, 1)), all.length === 0) // a duplicate is refused
        })
        await store.write((w) => {
          for (const k of removed) assert.equal(index.remove(w, k), true)
          if (removed[0] !== undefined) assert.equal(index.remove(w, removed[0]), false)
        })
        const gone = new Set(removed.map((k) => Buffer.from(k).toString('hex')))
        const ref = new ArraySet(all.filter((k) => !gone.has(Buffer.from(k).toString('hex'))))
        const bounds = boundsFrom(all, rnd, 12)
        for (let i = 0; i < bounds.length; i++) {
          for (const hi of [...bounds.slice(i + 1), undefined]) {
            const lo = bounds[i] as Uint8Array
            const got = index.summarize(store, lo, hi)
            const want = ref.summarize(lo, hi)
            assert.ok(summaryEquals(got, want), `summary of a range: ${got.count} vs ${want.count}`)
            assert.deepEqual(index.items(store, lo, hi, 5), ref.items(lo, hi, 5))
          }
          const before = ref.items(new Uint8Array(0), bounds[i]).at(-1)
          assert.deepEqual(index.before(store, bounds[i] as Uint8Array), before)
        }
        assert.equal(index.count(store, new Uint8Array(0), undefined), ref.keys.length)
        for (const k of all.slice(0, 20)) assert.equal(index.has(store, k), ref.has(k))
      },
    ),
    { numRuns: 40 },
  )
})

test('split: consecutive parts whose summaries add up, ends strictly inside the range, about equal counts', async () => {
  const all = keys(30_000, 11)
  const { store, index } = await indexedSet(all)
  const ref = new ArraySet(all)
  const rnd = seededRandom(3)
  const bounds = boundsFrom(all, rnd, 30)
  for (const parts of [2, 16, 64]) {
    for (let i = 0; i + 1 < bounds.length; i += 3) {
      const lo = bounds[i] as Uint8Array
      const hi = i + 5 < bounds.length ? bounds[i + 5] : undefined
      const total = ref.summarize(lo, hi)
      const split = index.split(store, lo, hi, parts)
      assert.ok(split.length <= parts)
      if (total.count >= 2) assert.ok(split.length >= 2, `a range of ${total.count} is split`)
      assert.equal(split.at(-1)?.end, hi)
      let start = lo
      let sum = 0
      for (const p of split) {
        if (p.end !== undefined) assert.ok(Buffer.compare(start, p.end) < 0, 'ends increase')
        assert.ok(summaryEquals(p.summary, ref.summarize(start, p.end)), 'part summary')
        sum += p.summary.count
        if (p !== split[0]) assert.ok(p.summary.count >= 1, 'parts after the first hold items')
        if (p.end !== undefined) start = p.end
      }
      assert.equal(sum, total.count)
      if (total.count >= 50 * parts) {
        const largest = Math.max(...split.map((p) => p.summary.count))
        assert.ok(largest <= (4 * total.count) / parts, `largest part ${largest} of ${total.count}/${parts}`)
      }
    }
  }
})

test('the stored structure depends only on the set: any insert order, and inserts undone by removes', async () => {
  const all = keys(3000, 5)
  const extra = keys(500, 6)
  const snapshot = (s: MemoryOrderedStore): string =>
    [...s.range()]
      .map(([k, v]) => `${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`)
      .join()
  const a = await indexedSet(all, 9)
  const rnd = seededRandom(8)
  const shuffled = all
    .map((k) => ({ k, r: rnd.next() }))
    .sort((x, y) => x.r - y.r)
    .map((x) => x.k)
  const b = await indexedSet([...extra, ...shuffled], 9)
  await b.store.write((w) => {
    for (const k of extra) b.index.remove(w, k)
  })
  assert.equal(snapshot(b.store), snapshot(a.store))
  // One load of the sorted keys writes the same structure.
  const c = await indexedSet(all, 9, 'load')
  assert.equal(snapshot(c.store), snapshot(a.store))
  for (const n of [0, 1, 2]) {
    const one = await indexedSet(all.slice(0, n), 9)
    const loaded = await indexedSet(all.slice(0, n), 9, 'load')
    assert.equal(snapshot(loaded.store), snapshot(one.store))
  }
})

test('load refuses a set that is not empty, short keys and keys out of order, keeping nothing', async () => {
  const ks = keys(10, 3)
  const { store, index } = await indexedSet(ks.slice(0, 2))
  const before = store.size
  const invalid = (e: unknown): boolean => isNodusError(e, 'INVALID_ARGUMENT')
  await assert.rejects(
    store.write((w) => index.load(w, ks.slice(2))),
    invalid,
  )
  const empty = await indexedSet([])
  await assert.rejects(
    empty.store.write((w) => empty.index.load(w, [ks[3] as Uint8Array, ks[1] as Uint8Array])),
    invalid,
  )
  await assert.rejects(
    empty.store.write((w) => empty.index.load(w, [ks[1] as Uint8Array, ks[1] as Uint8Array])),
    invalid,
  )
  await assert.rejects(
    empty.store.write((w) => empty.index.load(w, [new Uint8Array(8)])),
    invalid,
  )
  assert.equal(store.size, before)
  assert.equal(empty.store.size, 1) // the salt
})

/** A reader that counts the entries it yields and the seeks it makes. */
function counting(r: OrderedReader): OrderedReader & { entries: number; seeks: number } {
  const c = {
    entries: 0,
    seeks: 0,
    get: (k: Uint8Array) => {
      c.seeks++
      return r.get(k)
    },
    *range(o?: RangeOptions) {
      c.seeks++
      for (const e of r.range(o)) {
        c.entries++
        yield e
      }
    },
  }
  return c
}

test('a range summary reads O(log n) store entries: the same few hundred at 2,000 and at 64,000 items', async (t) => {
  const perRange: number[] = []
  for (const n of [2000, 64_000]) {
    const all = keys(n, 21)
    const { store, index } = await indexedSet(all)
    const rnd = seededRandom(4)
    const bounds = boundsFrom(all, rnd, 40)
    let worst = 0
    for (let i = 0; i + 1 < bounds.length; i++) {
      const r = counting(store)
      index.summarize(r, bounds[i] as Uint8Array, bounds[i + 1])
      worst = Math.max(worst, r.entries)
      assert.ok(r.seeks <= 2 * 7, `${r.seeks} seeks`)
    }
    perRange.push(worst)
  }
  t.diagnostic(`worst entries read per range summary: ${perRange.join(', ')}`)
  // A scan would read up to n entries; the levels read about 16 per level per bound.
  assert.ok((perRange[1] as number) < 600, `worst range at 64k items read ${perRange[1]} entries`)
  assert.ok((perRange[1] as number) < 3 * (perRange[0] as number) + 100, `growth ${perRange.join(' -> ')}`)
})

test('the salt is made once per store and kept; scopes do not mix; keys must be 40 bytes', async () => {
  const store = new MemoryOrderedStore()
  const a = await FingerprintIndex.open(store, { random: seededRandom(1) }, { scope: dbScope('notes-abc') })
  const ks = keys(400, 2)
  await store.write((w) => {
    for (const k of ks) a.insert(w, k)
  })
  // Reopened with another random source: the stored salt wins, so the structure stays valid.
  const again = await FingerprintIndex.open(
    store,
    { random: seededRandom(99) },
    { scope: dbScope('notes-abc') },
  )
  const other = await FingerprintIndex.open(
    store,
    { random: seededRandom(1) },
    { scope: dbScope('notes-xyz') },
  )
  await store.write((w) => {
    for (const k of ks.slice(0, 10)) other.insert(w, k)
    for (const k of ks.slice(0, 100)) again.remove(w, k)
  })
  const ref = new ArraySet(ks.slice(100))
  const lo = new Uint8Array(0)
  assert.deepEqual(fingerprint(a.summarize(store, lo, undefined)), fingerprint(ref.summarize(lo, undefined)))
  assert.equal(other.count(store, lo, undefined), 10)
  await store.write((w) => {
    assert.throws(
      () => a.insert(w, new Uint8Array(39)),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
  })
  assert.throws(
    () => new FingerprintIndex({ salt: new Uint8Array(32) }, { scope: new Uint8Array(0) }),
    (e) => isNodusError(e, 'INVALID_ARGUMENT'),
  )
})
