import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  DEFAULT_PLACEMENT_SIM_OPTIONS,
  PLACEMENTS,
  type PlacementFn,
  runPlacementSim,
} from '../../src/sim/placement-sim.ts'

const base = { ...DEFAULT_PLACEMENT_SIM_OPTIONS, nodes: 500, segments: 2000, seed: 3 }

describe('sim placement', () => {
  for (const [name, fn] of Object.entries(PLACEMENTS)) {
    it(`${name}: 14 distinct peers per segment, loads add up`, () => {
      const r = runPlacementSim(name, fn, base)
      assert.equal(r.samePeerViolations, 0)
      assert.ok(Math.abs(r.meanShardsPerNode - (base.segments * 14) / base.nodes) < 1e-9)
      assert.ok(r.maxShardsPerNode >= r.meanShardsPerNode)
    })
  }

  it('region round-robin spreads every segment over all six regions', () => {
    const r = runPlacementSim('region-rr', PLACEMENTS['region-rr'] as PlacementFn, base)
    assert.equal(r.minDistinctRegions, 6)
    assert.equal(r.regionLossSurvivableFraction, 1)
  })

  it('scored (the node’s placeScored) survives any one region loss and evens load better than region round-robin', () => {
    const scored = runPlacementSim('scored', PLACEMENTS.scored as PlacementFn, base)
    const rr = runPlacementSim('region-rr', PLACEMENTS['region-rr'] as PlacementFn, base)
    assert.equal(scored.regionLossSurvivableFraction, 1)
    assert.ok(scored.minDistinctRegions >= 5)
    assert.ok(
      scored.utilizationCoefficientOfVariation < rr.utilizationCoefficientOfVariation,
      `${scored.utilizationCoefficientOfVariation} vs ${rr.utilizationCoefficientOfVariation}`,
    )
  })

  it('takes a plugged-in placement function and is deterministic for a seed', () => {
    const firstN: PlacementFn = (candidates, n) => candidates.slice(0, n).map((_, i) => i)
    const r = runPlacementSim('first-n', firstN, { ...base, candidates: 100 })
    assert.equal(r.samePeerViolations, 0)
    const strip = (x: object): object => ({ ...x, seconds: 0, p50DecisionUs: 0, p99DecisionUs: 0 })
    const rnd = PLACEMENTS.random as PlacementFn
    assert.deepEqual(strip(runPlacementSim('random', rnd, base)), strip(runPlacementSim('random', rnd, base)))
  })
})
