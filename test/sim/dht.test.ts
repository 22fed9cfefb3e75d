import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { DEFAULT_DHT_SIM_OPTIONS, runDhtSim } from '../../src/sim/dht-sim.ts'
import type { IdSpace } from '../../src/sim/ids.ts'
import { commonPrefixLength, prefixRange, randomIds } from '../../src/sim/ids.ts'
import { buildLatencyModel } from '../../src/sim/latency.ts'
import { DEFAULT_LOOKUP_OPTIONS, LookupEngine, trueClosest } from '../../src/sim/lookup.ts'
import { Rng } from '../../src/sim/rng.ts'
import { buildRoutingTables, type RoutingTables, tableHealth } from '../../src/sim/routing-table.ts'
import { assertProperty } from '../utils/property.ts'

const SEED = Number(process.env.SIM_TEST_SEED ?? 20240611)

function xorLess(ids: IdSpace, kh: number, kl: number) {
  return (a: number, b: number): number => {
    const ah = ((ids.hi[a] as number) ^ kh) >>> 0
    const bh = ((ids.hi[b] as number) ^ kh) >>> 0
    if (ah !== bh) return ah - bh
    return (((ids.lo[a] as number) ^ kl) >>> 0) - (((ids.lo[b] as number) ^ kl) >>> 0)
  }
}

function inc(a: number[], i: number): void {
  a[i] = (a[i] ?? 0) + 1
}

function contacts(t: RoutingTables, x: number): number[] {
  return Array.from(t.entries.subarray(t.offsets[x] as number, t.offsets[x + 1] as number))
}

describe('sim ids', () => {
  it('are sorted and unique; prefixRange matches a scan', () => {
    const ids = randomIds(3000, new Rng(SEED))
    for (let i = 1; i < ids.n; i++) {
      const a = (ids.hi[i - 1] as number) * 2 ** 32 + (ids.lo[i - 1] as number)
      const b = (ids.hi[i] as number) * 2 ** 32 + (ids.lo[i] as number)
      assert.ok(a <= b)
    }
    assertProperty(
      fc.property(fc.integer({ min: 0, max: ids.n - 1 }), fc.integer({ min: 0, max: 40 }), (x, depth) => {
        const h = ids.hi[x] as number
        const l = ids.lo[x] as number
        const [s, e] = prefixRange(ids, h, l, depth)
        let count = 0
        for (let r = 0; r < ids.n; r++) {
          if (commonPrefixLength(h, l, ids.hi[r] as number, ids.lo[r] as number) >= depth) {
            assert.ok(r >= s && r < e, `rank ${r} outside [${s}, ${e})`)
            count++
          }
        }
        assert.equal(count, e - s)
      }),
      { numRuns: 200 },
    )
  })
})

describe('sim routing tables', () => {
  const ids = randomIds(2000, new Rng(SEED))
  const k = 20

  it('kademlia: bucket i holds min(k, eligible) contacts sharing exactly i leading bits with the owner', () => {
    const t = buildRoutingTables(ids, { model: 'kademlia', k, prefixLength: 6 }, new Rng(SEED + 1))
    for (let x = 0; x < ids.n; x += 7) {
      const h = ids.hi[x] as number
      const l = ids.lo[x] as number
      const eligible = new Array<number>(65).fill(0)
      for (let r = 0; r < ids.n; r++) {
        if (r !== x) inc(eligible, commonPrefixLength(h, l, ids.hi[r] as number, ids.lo[r] as number))
      }
      const got = new Array<number>(65).fill(0)
      const list = contacts(t, x)
      assert.equal(new Set(list).size, list.length, 'no duplicate contacts')
      let last = -1
      for (const c of list) {
        assert.notEqual(c, x, 'a node is not its own contact')
        const b = commonPrefixLength(h, l, ids.hi[c] as number, ids.lo[c] as number)
        assert.ok(b >= last, 'contacts are stored bucket by bucket')
        last = b
        inc(got, b)
      }
      for (let b = 0; b < 65; b++)
        assert.equal(got[b], Math.min(k, eligible[b] as number), `node ${x} bucket ${b}`)
    }
  })

  it('trie (js kad-dht 16): up to k contacts per 6-bit prefix, at most 64 x k', () => {
    const t = buildRoutingTables(ids, { model: 'trie', k, prefixLength: 6 }, new Rng(SEED + 2))
    for (let x = 0; x < ids.n; x += 13) {
      const per = new Array<number>(64).fill(0)
      const eligible = new Array<number>(64).fill(0)
      for (let r = 0; r < ids.n; r++) if (r !== x) inc(eligible, (ids.hi[r] as number) >>> 26)
      for (const c of contacts(t, x)) inc(per, (ids.hi[c] as number) >>> 26)
      for (let p = 0; p < 64; p++) assert.equal(per[p], Math.min(k, eligible[p] as number))
    }
  })

  it('nodus (kad-dht 16 + own-ID splitting): the trie outside its own 6-bit prefix, Kademlia buckets inside', () => {
    const t = buildRoutingTables(ids, { model: 'nodus', k, prefixLength: 6 }, new Rng(SEED + 8))
    for (let x = 0; x < ids.n; x += 11) {
      const h = ids.hi[x] as number
      const l = ids.lo[x] as number
      const own = h >>> 26
      const per = new Array<number>(64).fill(0)
      const eligible = new Array<number>(64).fill(0)
      const perCpl = new Array<number>(65).fill(0)
      const eligibleCpl = new Array<number>(65).fill(0)
      for (let r = 0; r < ids.n; r++) {
        if (r === x) continue
        const p = (ids.hi[r] as number) >>> 26
        if (p !== own) inc(eligible, p)
        else inc(eligibleCpl, commonPrefixLength(h, l, ids.hi[r] as number, ids.lo[r] as number))
      }
      const list = contacts(t, x)
      assert.equal(new Set(list).size, list.length, 'no duplicate contacts')
      for (const c of list) {
        assert.notEqual(c, x)
        const p = (ids.hi[c] as number) >>> 26
        if (p !== own) inc(per, p)
        else inc(perCpl, commonPrefixLength(h, l, ids.hi[c] as number, ids.lo[c] as number))
      }
      for (let p = 0; p < 64; p++) assert.equal(per[p], Math.min(k, eligible[p] as number), `prefix ${p}`)
      for (let b = 6; b < 65; b++)
        assert.equal(perCpl[b], Math.min(k, eligibleCpl[b] as number), `node ${x} own bucket ${b}`)
    }
  })

  it('at 30,000 nodes lookups over nodus tables find the exact k closest; over the plain trie they miss', () => {
    const base = { ...DEFAULT_DHT_SIM_OPTIONS, nodes: 30_000, lookups: 300, seed: SEED }
    const nodus = runDhtSim({ ...base, table: 'nodus' })
    const trie = runDhtSim({ ...base, table: 'trie' })
    assert.equal(nodus.exactKRate, 1)
    assert.ok(nodus.p99Hops <= 4, `p99 ${nodus.p99Hops}`)
    assert.ok(trie.exactKRate < 0.9, `trie exact-k rate ${trie.exactKRate}`)
  })

  it('health: live entry fraction follows the offline fraction', () => {
    const t = buildRoutingTables(ids, { model: 'kademlia', k, prefixLength: 6 }, new Rng(SEED + 3))
    const alive = new Uint8Array(ids.n).fill(1)
    const rng = new Rng(SEED + 4)
    for (let i = 0; i < ids.n; i++) if (rng.nextFloat() < 0.3) alive[i] = 0
    const h = tableHealth(ids, t, alive)
    assert.ok(Math.abs(h.liveEntryFraction - 0.7) < 0.03, String(h.liveEntryFraction))
    assert.equal(tableHealth(ids, t, new Uint8Array(ids.n).fill(1)).liveEntryFraction, 1)
  })
})

describe('sim lookups', () => {
  const n = 2000
  const ids = randomIds(n, new Rng(SEED))
  const tables = buildRoutingTables(ids, { model: 'kademlia', k: 20, prefixLength: 6 }, new Rng(SEED + 5))
  const alive = new Uint8Array(n).fill(1)
  const net = { ids, tables, alive, latency: buildLatencyModel(n, new Rng(SEED + 6)) }

  for (const strategy of ['kad-dht', 'rounds'] as const) {
    it(`${strategy}: always finds the true k closest (brute-force XOR sort) on ${n} nodes`, () => {
      const engine = new LookupEngine(net, { ...DEFAULT_LOOKUP_OPTIONS, strategy })
      const rng = new Rng(SEED + 7)
      for (let i = 0; i < 300; i++) {
        const src = rng.nextInt(n)
        const kh = rng.nextU32()
        const kl = rng.nextU32()
        const r = engine.lookup(src, kh, kl)
        const all = [...Array(n).keys()].filter((x) => x !== src).sort(xorLess(ids, kh, kl))
        assert.deepEqual(r.found, all.slice(0, 20), `lookup ${i}`)
        assert.deepEqual(trueClosest(ids, alive, kh, kl, 20, src), all.slice(0, 20))
        assert.ok(r.hops >= 1 && r.hops <= r.deepestHop)
        assert.ok(r.latencyMs >= r.closestFoundMs && r.closestFoundMs > 0)
      }
    })
  }

  it('offline contacts cost a timeout and the lookup still finds the closest live node', () => {
    const down = new Uint8Array(n).fill(1)
    const rng = new Rng(SEED + 8)
    for (let i = 0; i < n; i++) if (rng.nextFloat() < 0.2) down[i] = 0
    const engine = new LookupEngine({ ...net, alive: down }, DEFAULT_LOOKUP_OPTIONS)
    let found = 0
    let timeouts = 0
    for (let i = 0; i < 200; i++) {
      let src = rng.nextInt(n)
      while (down[src] !== 1) src = rng.nextInt(n)
      const kh = rng.nextU32()
      const kl = rng.nextU32()
      const r = engine.lookup(src, kh, kl)
      timeouts += r.timeouts
      if (r.found[0] === trueClosest(ids, down, kh, kl, 20, src)[0]) found++
      assert.ok(
        r.found.every((x) => down[x] === 1),
        'only live nodes are returned',
      )
      if (r.timeouts > 0) assert.ok(r.latencyMs >= DEFAULT_LOOKUP_OPTIONS.timeoutMs)
    }
    assert.ok(timeouts > 0)
    assert.ok(found >= 196, `closest live node found in ${found}/200`)
  })

  it('hop counts grow roughly with log N and stay within 6 at p99', () => {
    const means: number[] = []
    for (const nodes of [1000, 10_000, 100_000]) {
      const r = runDhtSim({ ...DEFAULT_DHT_SIM_OPTIONS, nodes, lookups: 400, seed: SEED })
      means.push(r.meanHops)
      assert.ok(r.p99Hops <= 6)
      assert.equal(r.successRate, 1)
    }
    const [a, b, c] = means as [number, number, number]
    assert.ok(a < b && b < c, `mean hops ${means.join(', ')} increase with N`)
    // each 10x adds between a quarter and one and a half hops (log_{2^b} growth, b ~ 3..4 bits per hop)
    assert.ok(b - a > 0.25 && b - a < 1.5 && c - b > 0.25 && c - b < 1.5, means.join(', '))
  })
})
