import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { ReedSolomon } from '../../src/storage/codec/reed-solomon.ts'
import { DEFAULT_REDUNDANCY_OPTIONS, parityFor } from '../../src/storage/keeper/redundancy.ts'
import { assertProperty } from '../utils/property.ts'

describe('parityFor', () => {
  const file = { k: 10, baseM: 4, critical: false, popularity: 0 }

  it('keeps baseM for ordinary data', () => {
    assert.equal(parityFor(file), 4)
    assert.equal(parityFor({ ...file, popularity: 99 }), 4)
  })

  it('adds criticalExtra for critical data', () => {
    assert.equal(parityFor({ ...file, critical: true }), 4 + DEFAULT_REDUNDANCY_OPTIONS.criticalExtra)
    assert.equal(parityFor({ ...file, critical: true }, { criticalExtra: 5 }), 9)
  })

  it('adds parity in logarithmic steps of popularity, up to maxPopularityExtra', () => {
    const m = (popularity: number): number => parityFor({ ...file, popularity })
    assert.equal(m(100), 5)
    assert.equal(m(299), 5)
    assert.equal(m(300), 6)
    assert.equal(m(700), 7)
    assert.equal(m(1500), 8)
    assert.equal(m(1e9), 8)
    assert.equal(parityFor({ ...file, critical: true, popularity: 1e9 }), 10)
  })

  it('is bounded by maxParity and by k + m ≤ 256, never below baseM', () => {
    assert.equal(parityFor({ ...file, critical: true, popularity: 1e9 }, { maxParity: 6 }), 6)
    assert.equal(parityFor({ k: 250, baseM: 4, critical: true, popularity: 1e9 }), 6)
    assert.equal(parityFor({ k: 250, baseM: 6, critical: true, popularity: 0 }), 6)
    assert.equal(parityFor({ ...file, baseM: 20 }), 20) // above maxParity already: kept
  })

  it('rejects bad input', () => {
    assert.throws(
      () => parityFor({ ...file, k: 0 }),
      (e) => isNodusError(e, 'ERASURE_INVALID'),
    )
    assert.throws(
      () => parityFor({ ...file, k: 250, baseM: 7 }),
      (e) => isNodusError(e, 'ERASURE_INVALID'),
    )
    assert.throws(
      () => parityFor({ ...file, popularity: -1 }),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(
      () => parityFor({ ...file, popularity: Number.NaN }),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(
      () => parityFor(file, { readsPerStep: 0 }),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(
      () => parityFor(file, { criticalExtra: -1 }),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
  })

  it('property: bounded, monotone in popularity and criticality', () => {
    assertProperty(
      fc.property(
        fc.integer({ min: 1, max: 256 }),
        fc.nat(256),
        fc.boolean(),
        fc.nat(1_000_000),
        fc.nat(1_000_000),
        (k, mRaw, critical, a, b) => {
          const baseM = mRaw % (257 - k)
          const input = { k, baseM, critical, popularity: Math.min(a, b) }
          const m = parityFor(input)
          assert.ok(m >= baseM && k + m <= 256)
          assert.ok(m <= Math.max(baseM, DEFAULT_REDUNDANCY_OPTIONS.maxParity))
          assert.ok(parityFor({ ...input, popularity: Math.max(a, b) }) >= m)
          assert.ok(parityFor({ ...input, critical: true }) >= m)
        },
      ),
      { numRuns: 500 },
    )
  })

  it('raising m keeps the existing parity shards valid (only new parity rows are added)', () => {
    // Repair relies on this: RS(k, m) parity row r depends on r and k, not on m.
    const k = 10
    const encode = (m: number): Uint8Array[] => {
      const shards: Uint8Array[] = []
      for (let i = 0; i < k + m; i++) {
        const s = new Uint8Array(256)
        if (i < k) for (let j = 0; j < s.length; j++) s[j] = (i * 131 + j * 17 + 7) & 0xff
        shards.push(s)
      }
      new ReedSolomon(k, m).encode(shards)
      return shards
    }
    const small = encode(4)
    const large = encode(parityFor({ k, baseM: 4, critical: true, popularity: 1000 }))
    assert.equal(large.length, k + 9)
    for (let i = 0; i < k + 4; i++) assert.deepEqual(large[i], small[i], `shard ${i}`)
  })
})
