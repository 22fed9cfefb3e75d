import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { mulberry32 as rng } from '../../src/common/prng.ts'
import { baseWeights, type Candidate, placeScored } from '../../src/storage/placement/placement-scored.ts'
import { assertProperty } from '../utils/property.ts'

const REGIONS = ['eu-west', 'eu-central', 'us-east', 'us-west', 'ap-south', 'ap-northeast', 'sa-east']

function population(n: number, seed: number, regions = REGIONS, networks = 40): Candidate[] {
  const r = rng(seed)
  return Array.from({ length: n }, (_, i) => ({
    id: `peer${i}`,
    trust: r(),
    performance: 0.2 + 0.8 * r(),
    freeBytes: Math.floor(r() * 1e12),
    region: regions[i % regions.length] as string,
    network: `as${Math.floor(r() * networks)}`,
  }))
}

function counts<T>(xs: readonly T[]): Map<T, number> {
  const m = new Map<T, number>()
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1)
  return m
}

const candidateArb = fc.record({
  id: fc.string({ minLength: 1, maxLength: 4 }),
  trust: fc.double({ min: 0, max: 1, noNaN: true }),
  performance: fc.double({ min: 0, max: 1, noNaN: true }),
  freeBytes: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1e12 })),
  region: fc.constantFrom('r0', 'r1', 'r2', 'r3', 'r4'),
  network: fc.constantFrom('n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6'),
})
/** Candidate lists with distinct ids. */
const candidatesArb = fc
  .array(candidateArb, { minLength: 1, maxLength: 60 })
  .map((cs) => cs.map((c, i) => ({ ...c, id: `${c.id}#${i}` })))

describe('placeScored', () => {
  it('chooses n distinct peers, deterministically for a seed', () => {
    const cs = population(10_000, 1)
    const a = placeScored(cs, 14, {}, rng(7))
    const b = placeScored(cs, 14, {}, rng(7))
    assert.deepEqual(a, b)
    assert.equal(a.length, 14)
    assert.equal(new Set(a).size, 14)
    const c = placeScored(cs, 14, {}, rng(8))
    assert.notDeepEqual(a, c)
  })

  it('spreads over every region: 14 shards over 7 regions is exactly 2 each', () => {
    const cs = population(1000, 2)
    for (let s = 0; s < 50; s++) {
      const picks = placeScored(cs, 14, {}, rng(s))
      const perRegion = counts(picks.map((i) => cs[i]?.region))
      assert.equal(perRegion.size, 7)
      for (const c of perRegion.values()) assert.equal(c, 2)
    }
  })

  it('property: no region gets more than ceil(p / R) while the others have room; never a zero-capacity peer', () => {
    assertProperty(
      fc.property(candidatesArb, fc.integer({ min: 1, max: 20 }), fc.nat(), (cs, n, seed) => {
        const w = new Float64Array(cs.length)
        baseWeights(cs, {}, w)
        const eligible = cs.filter((_, i) => (w[i] as number) > 0)
        let picks: number[]
        try {
          picks = placeScored(cs, n, {}, rng(seed))
        } catch (e) {
          assert.ok(isNodusError(e, 'NOT_ENOUGH_PEERS'))
          assert.equal(eligible.length, 0)
          return
        }
        assert.equal(picks.length, n)
        for (const i of picks) {
          const c = cs[i] as Candidate
          assert.ok(c.freeBytes >= 1 && c.performance > 0, 'ineligible peer chosen')
        }
        const p = Math.min(n, eligible.length)
        const distinct = picks.slice(0, p)
        assert.equal(new Set(distinct).size, p, 'a peer got two shards while others remained')
        // Balance: with R regions and cap = ceil(p / R), if the regions can hold p picks under the cap,
        // no region exceeds it.
        const perRegion = counts(eligible.map((c) => c.region))
        const cap = Math.ceil(p / perRegion.size)
        let room = 0
        for (const e of perRegion.values()) room += Math.min(e, cap)
        if (room >= p) {
          for (const [region, got] of counts(distinct.map((i) => cs[i]?.region))) {
            assert.ok(got <= cap, `region ${region} got ${got} > ${cap}`)
          }
        }
      }),
      { numRuns: 500 },
    )
  })

  it('with fewer eligible peers than shards, deals them round-robin (counts differ by at most 1)', () => {
    const cs = population(8, 3).map((c, i) => (i < 5 ? c : { ...c, freeBytes: 0 }))
    const picks = placeScored(cs, 14, {}, rng(1))
    assert.equal(picks.length, 14)
    const per = counts(picks)
    assert.equal(per.size, 5)
    for (const i of per.keys()) assert.ok(i < 5, 'zero-capacity peer chosen')
    for (const c of per.values()) assert.ok(c === 2 || c === 3)
    assert.equal(new Set(picks.slice(0, 5)).size, 5)
  })

  it('respects minFreeBytes', () => {
    const cs = population(100, 4).map((c, i) => ({ ...c, freeBytes: i * 1000 }))
    for (let s = 0; s < 20; s++) {
      for (const i of placeScored(cs, 14, { minFreeBytes: 50_000 }, rng(s))) assert.ok(i >= 50)
    }
  })

  it('chooses higher-weight peers more often, in proportion to their weight', () => {
    // Two equal halves apart from trust: the first pick is drawn by base weight alone.
    const cs: Candidate[] = Array.from({ length: 20 }, (_, i) => ({
      id: `p${i}`,
      trust: i < 10 ? 1 : 0.25,
      performance: 1,
      freeBytes: 1e9,
      region: 'r',
      network: `n${i}`,
    }))
    const r = rng(99)
    let high = 0
    const trials = 20_000
    for (let t = 0; t < trials; t++) if ((placeScored(cs, 1, {}, r)[0] as number) < 10) high++
    // Expected share 1 / (1 + 0.25) = 0.8; binomial sd = sqrt(0.8·0.2/20000) ≈ 0.0028.
    const share = high / trials
    assert.ok(Math.abs(share - 0.8) < 0.015, `high-trust share ${share}`)
  })

  it('samples the diversity-weighted distribution exactly (rejection sampling check)', () => {
    // A and B share a region and network, C is elsewhere. After A, weights are B 1·½·¼ = ⅛ vs C 1.
    const cs: Candidate[] = [
      { id: 'A', trust: 1, performance: 1, freeBytes: 1, region: 'r1', network: 'n1' },
      { id: 'B', trust: 1, performance: 1, freeBytes: 1, region: 'r1', network: 'n1' },
      { id: 'C', trust: 1, performance: 1, freeBytes: 1, region: 'r2', network: 'n2' },
    ]
    const r = rng(5)
    let afterA = 0
    let cAfterA = 0
    for (let t = 0; t < 30_000; t++) {
      const [first, second] = placeScored(cs, 2, { balanceRegions: false }, r)
      if (first === 0) {
        afterA++
        if (second === 2) cAfterA++
      }
    }
    const share = cAfterA / afterA // expected 1 / (1 + 1/8) = 0.888…
    assert.ok(Math.abs(share - 8 / 9) < 0.015, `P(C | A first) = ${share}`)
  })

  it('the exact fallback keeps the distribution when rejections pile up (tiny penalty, one region)', () => {
    const cs: Candidate[] = Array.from({ length: 6 }, (_, i) => ({
      id: `p${i}`,
      trust: i === 0 ? 1 : 0.5,
      performance: 1,
      freeBytes: 1,
      region: 'only',
      network: `n${i}`,
    }))
    const picks = placeScored(cs, 6, { regionPenalty: 1e-9 }, rng(3))
    assert.equal(new Set(picks).size, 6)
    // Penalty 0 (strict) still never reuses a peer while others remain.
    const strict = placeScored(cs, 6, { regionPenalty: 0, networkPenalty: 0 }, rng(4))
    assert.equal(new Set(strict).size, 6)
  })

  it('the network penalty spreads shards across networks', (t) => {
    const cs = population(2000, 6, ['r'], 20)
    let withPenalty = 0
    let without = 0
    for (let s = 0; s < 100; s++) {
      withPenalty += counts(placeScored(cs, 14, {}, rng(s)).map((i) => cs[i]?.network)).size
      without += counts(placeScored(cs, 14, { networkPenalty: 1 }, rng(s)).map((i) => cs[i]?.network)).size
    }
    t.diagnostic(
      `mean distinct networks of 14 shards over 20 networks: ${withPenalty / 100} (no penalty: ${without / 100})`,
    )
    assert.ok(withPenalty / 100 > 12, `mean distinct networks ${withPenalty / 100}`)
    assert.ok(withPenalty / 100 > without / 100 + 1)
  })

  it('never picks the same peer id twice while other ids remain', () => {
    const base = population(10, 7)
    const cs = [...base, ...base.map((c) => ({ ...c }))] // every id twice
    for (let s = 0; s < 20; s++) {
      const picks = placeScored(cs, 10, {}, rng(s))
      assert.equal(new Set(picks.map((i) => cs[i]?.id)).size, 10)
    }
  })

  it('peers nobody rated yet are still tried (trust floor), zero-performance peers never', () => {
    const cs: Candidate[] = [
      { id: 'rated', trust: 0.5, performance: 1, freeBytes: 1, region: 'r', network: 'n1' },
      { id: 'new', trust: 0, performance: 1, freeBytes: 1, region: 'r', network: 'n2' },
      { id: 'dead', trust: 0.5, performance: 0, freeBytes: 1, region: 'r', network: 'n3' },
    ]
    const w = new Float64Array(3)
    assert.equal(baseWeights(cs, {}, w), 2)
    assert.ok(Math.abs((w[1] as number) / (w[0] as number) - 0.01) < 1e-12)
    assert.equal(w[2], 0)
    const picks = placeScored(cs, 3, {}, rng(1))
    assert.equal(picks.length, 3)
    assert.deepEqual([...new Set(picks)].sort(), [0, 1])
  })

  it('rejects bad arguments; no eligible peer is NOT_ENOUGH_PEERS', () => {
    const cs = population(5, 8)
    assert.throws(
      () => placeScored(cs, 0, {}, Math.random),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(
      () => placeScored(cs, 1.5, {}, Math.random),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(
      () => placeScored(cs, 3, { regionPenalty: 2 }, Math.random),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(
      () => placeScored(cs, 3, { weights: { trust: -1 } }, Math.random),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    const empty = cs.map((c) => ({ ...c, freeBytes: 0 }))
    assert.throws(
      () => placeScored(empty, 3, {}, Math.random),
      (e) => isNodusError(e, 'NOT_ENOUGH_PEERS'),
    )
    assert.throws(
      () => placeScored([], 3, {}, Math.random),
      (e) => isNodusError(e, 'NOT_ENOUGH_PEERS'),
    )
  })
})
