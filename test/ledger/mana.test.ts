/**
 * Mana regeneration (src/ledger/mana.ts): exact integer arithmetic from commit times, additive over
 * split intervals (the carry), capped at capacity, never negative, the overflow path, reconfiguration.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  MAX_MANA_CAPACITY,
  type ManaAccount,
  manaAt,
  reconfigure,
  regenerate,
} from '../../src/ledger/index.ts'
import { assertProperty } from '../utils/property.ts'

const arbMana = fc
  .record({
    capacity: fc.integer({ min: 0, max: MAX_MANA_CAPACITY }),
    regenPerSecond: fc.oneof(
      fc.integer({ min: 0, max: 2000 }),
      fc.integer({ min: 0, max: MAX_MANA_CAPACITY }),
    ),
    fill: fc.double({ min: 0, max: 1, noNaN: true }),
    carry: fc.integer({ min: 0, max: 999 }),
  })
  .map(
    ({ capacity, regenPerSecond, fill, carry }): ManaAccount => ({
      capacity,
      regenPerSecond,
      balance: Math.floor(capacity * fill),
      lastUpdateMs: 1_000,
      carry,
    }),
  )

describe('mana', () => {
  it('regenerates rate × time, keeping the fraction, up to capacity', () => {
    const m: ManaAccount = { balance: 0, capacity: 100, regenPerSecond: 3, lastUpdateMs: 0, carry: 0 }
    assert.equal(regenerate(m, 500), 1) // 1.5 units: 1 now, 500 thousandths carried
    assert.deepEqual(m, { balance: 1, capacity: 100, regenPerSecond: 3, lastUpdateMs: 500, carry: 500 })
    assert.equal(regenerate(m, 1000), 2) // 1.5 + 0.5
    assert.equal(m.carry, 0)
    assert.equal(regenerate(m, 1000), 0) // no time passed
    assert.equal(regenerate(m, 500), 0) // time never goes back
    assert.equal(regenerate(m, 1_000_000), 97)
    assert.deepEqual(m, { balance: 100, capacity: 100, regenPerSecond: 3, lastUpdateMs: 1_000_000, carry: 0 })
  })

  it('touched every millisecond, regenerates exactly as much as touched once', () => {
    const often: ManaAccount = {
      balance: 0,
      capacity: 1_000_000,
      regenPerSecond: 7,
      lastUpdateMs: 0,
      carry: 0,
    }
    for (let t = 1; t <= 10_000; t++) regenerate(often, t)
    const once: ManaAccount = {
      balance: 0,
      capacity: 1_000_000,
      regenPerSecond: 7,
      lastUpdateMs: 0,
      carry: 0,
    }
    regenerate(once, 10_000)
    assert.equal(often.balance, 70)
    assert.deepEqual(often, once)
  })

  it('is additive over split intervals and stays within [0, capacity] (property)', () => {
    assertProperty(
      fc.property(
        arbMana,
        fc.array(fc.integer({ min: 0, max: 2 ** 40 }), { minLength: 1, maxLength: 20 }),
        (m0, steps) => {
          const split = { ...m0 }
          let t = m0.lastUpdateMs
          let gained = 0
          for (const dt of steps) {
            t += dt
            gained += regenerate(split, t)
            assert.ok(
              split.balance >= 0 && split.balance <= split.capacity && Number.isSafeInteger(split.balance),
            )
            assert.ok(split.carry >= 0 && split.carry < 1000)
          }
          const whole = { ...m0 }
          const once = regenerate(whole, t)
          assert.equal(split.balance, whole.balance)
          assert.equal(gained, once)
          assert.equal(split.balance - m0.balance, gained)
        },
      ),
      { numRuns: 500 },
    )
  })

  it('fills at once when rate × time is beyond 2^53', () => {
    const m: ManaAccount = {
      balance: 5,
      capacity: MAX_MANA_CAPACITY,
      regenPerSecond: MAX_MANA_CAPACITY,
      lastUpdateMs: 0,
      carry: 999,
    }
    assert.equal(regenerate(m, 2 ** 40), MAX_MANA_CAPACITY - 5)
    assert.equal(m.balance, MAX_MANA_CAPACITY)
  })

  it('reconfigure regenerates first, then cuts a balance above the new capacity', () => {
    const m: ManaAccount = { balance: 50, capacity: 100, regenPerSecond: 10, lastUpdateMs: 0, carry: 0 }
    assert.deepEqual(reconfigure(m, 2000, 30, 1), { gained: 20, clipped: 40 })
    assert.deepEqual(m, { balance: 30, capacity: 30, regenPerSecond: 1, lastUpdateMs: 2000, carry: 0 })
    const view = manaAt({ ...m, balance: 0 }, 7000)
    assert.equal(view.balance, 5)
    assert.equal(m.balance, 30, 'manaAt does not change its argument')
  })
})
