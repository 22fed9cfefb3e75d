import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  failureRatePerYear,
  HOURS_PER_YEAR,
  lossMonteCarlo,
  lossProbability,
  lossProbabilityNoRepair,
  mttdlYears,
  type Scheme,
} from '../../src/sim/durability.ts'
import { assertProperty } from '../utils/property.ts'

const SEED = Number(process.env.SIM_TEST_SEED ?? 20240611)
const rs = (k: number, m: number, repairAt = k + 2): Scheme => ({ name: `RS(${k},${m})`, k, m, repairAt })

describe('sim durability', () => {
  it('without repair, the Markov chain equals the binomial tail', () => {
    assertProperty(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 6 }),
        fc.double({ min: 0.001, max: 0.9, noNaN: true }),
        (k, m, f) => {
          const s = rs(k, m)
          const lambda = failureRatePerYear(f)
          const markov = lossProbability(s, lambda, Number.POSITIVE_INFINITY)
          const exact = lossProbabilityNoRepair(s, lambda)
          assert.ok(Math.abs(markov - exact) <= 1e-9 * exact + 1e-300, `${markov} vs ${exact}`)
        },
      ),
      { numRuns: 60 },
    )
  })

  it('monthly churn f gives P(shard survives a month) = 1 - f', () => {
    assert.ok(Math.abs(Math.exp(-failureRatePerYear(0.1) / 12) - 0.9) < 1e-12)
  })

  it('MTTDL of 2x replication with eager repair matches (3 lambda + mu) / (2 lambda^2)', () => {
    const lambda = 2
    const repairHours = 24
    const mu = HOURS_PER_YEAR / repairHours
    const got = mttdlYears({ name: '2x', k: 1, m: 1, repairAt: 1 }, lambda, repairHours)
    const want = (3 * lambda + mu) / (2 * lambda * lambda)
    assert.ok(Math.abs(got - want) / want < 1e-12, `${got} vs ${want}`)
  })

  it('repair lowers the loss probability; an earlier trigger lowers it more', () => {
    const lambda = failureRatePerYear(0.1)
    const none = lossProbability(rs(10, 4), lambda, Number.POSITIVE_INFINITY)
    const lazy = lossProbability(rs(10, 4), lambda, 24)
    const eager = lossProbability(rs(10, 4, 13), lambda, 24)
    assert.ok(eager < lazy && lazy < none, `${eager} ${lazy} ${none}`)
    // tiny probabilities keep relative precision (no cancellation): small churn, fast repair
    const tiny = lossProbability(rs(10, 4), failureRatePerYear(0.001), 1)
    assert.ok(tiny > 0 && tiny < 1e-12, String(tiny))
  })

  it('Monte Carlo of the same chain agrees with the exact value', () => {
    const lambda = failureRatePerYear(0.25)
    const exact = lossProbability(rs(10, 4), lambda, 24)
    const mc = lossMonteCarlo(rs(10, 4), lambda, 24, 40_000, SEED)
    assert.ok(exact >= mc.low95 * 0.9 && exact <= mc.high95 * 1.1, `${exact} vs ${JSON.stringify(mc)}`)
  })
})
