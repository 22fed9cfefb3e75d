/**
 * The gossip-drop test aid (src/kv/fault.ts): off at 0, about the configured fraction otherwise,
 * reproducible per (seed, node), independent between nodes.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { gossipDropper } from '../../src/kv/fault.ts'
import { KV_OPTIONS } from '../../src/kv/options.ts'

const draws = (f: () => boolean, n: number): boolean[] => Array.from({ length: n }, () => f())

describe('gossipDropper', () => {
  it('is off by default and at 0', () => {
    assert.equal(KV_OPTIONS.testGossipDropPerMille.default, 0)
    assert.equal(gossipDropper(0, 1, 'peer-a'), undefined)
  })

  it('drops about perMille of every 1,000 messages', () => {
    for (const perMille of [50, 500]) {
      const drop = gossipDropper(perMille, 7, 'peer-a')
      assert.ok(drop !== undefined)
      const n = draws(drop, 100_000).filter(Boolean).length
      // Binomial(100,000, p): 6 standard deviations either side, with a fixed seed.
      const mean = 100 * perMille
      const sd = Math.sqrt(100_000 * (perMille / 1000) * (1 - perMille / 1000))
      assert.ok(Math.abs(n - mean) < 6 * sd, `${n} dropped at ${perMille}‰`)
    }
    const all = gossipDropper(1000, 7, 'peer-a')
    assert.ok(all !== undefined)
    assert.ok(draws(all, 1000).every(Boolean))
  })

  it('repeats for one (seed, node) and differs between nodes and seeds', () => {
    const seq = (seed: number, self: string) => draws(gossipDropper(100, seed, self) as () => boolean, 2000)
    assert.deepEqual(seq(3, 'peer-a'), seq(3, 'peer-a'))
    assert.notDeepEqual(seq(3, 'peer-a'), seq(3, 'peer-b'))
    assert.notDeepEqual(seq(3, 'peer-a'), seq(4, 'peer-a'))
  })
})
