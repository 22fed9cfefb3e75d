import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { PerfMonitor } from '../../src/trust/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { assertProperty } from '../utils/property.ts'

const close = (a: number | undefined, b: number, tol = 1e-9): void =>
  assert.ok(a !== undefined && Math.abs(a - b) <= tol, `${a} ≠ ${b}`)

describe('PerfMonitor', () => {
  it('one sample is its own mean', () => {
    const m = new PerfMonitor({ clock: new FakeClock() })
    m.record('a', { ok: true, latencyMs: 80, bytes: 2_000_000, durationMs: 1000 })
    const s = m.stats('a')
    close(s?.latencyMs, 80)
    close(s?.throughputBps, 2_000_000)
    close(s?.samples, 1)
    // (1 + 0.9 × 2) / (1 + 2)
    close(s?.successRate, 2.8 / 3)
  })

  it('older samples weigh half per half-life', () => {
    const clock = new FakeClock()
    const m = new PerfMonitor({ clock }, { halfLifeMs: 1000, priorWeight: 0 })
    m.record('a', { ok: true, latencyMs: 100 })
    clock.ms = 1000
    m.record('a', { ok: true, latencyMs: 300 })
    close(m.stats('a')?.latencyMs, (100 * 0.5 + 300) / 1.5)
    clock.ms = 2000
    m.record('a', { ok: false })
    // success: (0.5·0.5 + 0.5 + 0) / (0.25 + 0.5 + 1)
    close(m.stats('a')?.successRate, 0.75 / 1.75)
    close(m.stats('a')?.samples, 1.75)
  })

  it('samples at the same instant all count', () => {
    const m = new PerfMonitor({ clock: new FakeClock() }, { priorWeight: 0 })
    m.record('a', { ok: true, latencyMs: 10 })
    m.record('a', { ok: true, latencyMs: 30 })
    m.record('a', { ok: false })
    close(m.stats('a')?.latencyMs, 20)
    close(m.stats('a')?.successRate, 2 / 3)
  })

  it('throughput is decayed bytes over decayed seconds', () => {
    const m = new PerfMonitor({ clock: new FakeClock() })
    m.record('a', { ok: true, bytes: 1_000_000, durationMs: 1000 })
    m.record('a', { ok: true, bytes: 9_000_000, durationMs: 1000 })
    m.record('a', { ok: false, bytes: 9_000_000, durationMs: 1 }) // failures do not count
    close(m.stats('a')?.throughputBps, 5_000_000)
  })

  it('scores: faster and more reliable is higher; unknown peers score the prior', () => {
    const m = new PerfMonitor({ clock: new FakeClock() })
    for (let i = 0; i < 20; i++) {
      m.record('fast', { ok: true, latencyMs: 20, bytes: 10_000_000, durationMs: 1000 })
      m.record('slow', { ok: true, latencyMs: 800, bytes: 200_000, durationMs: 1000 })
      m.record('flaky', { ok: i % 2 === 0, latencyMs: 20, bytes: 10_000_000, durationMs: 1000 })
    }
    assert.ok(m.score('fast') > m.score('slow'))
    assert.ok(m.score('fast') > m.score('flaky'))
    close(m.score('unknown'), 0.45)
    assert.equal(m.stats('unknown'), undefined)
  })

  it('forgets: after many half-lives a failing peer drifts back toward the prior', () => {
    const clock = new FakeClock()
    const m = new PerfMonitor({ clock }, { halfLifeMs: 1000 })
    for (let i = 0; i < 10; i++) m.record('a', { ok: false })
    const low = m.stats('a')?.successRate as number
    clock.ms = 20_000
    const later = m.stats('a')?.successRate as number
    assert.ok(low < 0.2)
    assert.ok(later > 0.89)
  })

  it('tracks at most maxPeers (least recently updated evicted)', () => {
    const m = new PerfMonitor({ clock: new FakeClock() }, { maxPeers: 2 })
    m.record('a', { ok: true })
    m.record('b', { ok: true })
    m.record('a', { ok: true })
    m.record('c', { ok: true })
    assert.equal(m.size, 2)
    assert.equal(m.stats('b'), undefined)
    assert.notEqual(m.stats('a'), undefined)
  })

  it('rejects bad samples and options', () => {
    const m = new PerfMonitor({ clock: new FakeClock() })
    assert.throws(
      () => m.record('a', { ok: true, latencyMs: -1 }),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(() => m.record('a', { ok: true, bytes: Number.POSITIVE_INFINITY }))
    assert.throws(() => new PerfMonitor({ clock: new FakeClock() }, { halfLifeMs: 0 }))
    assert.throws(() => new PerfMonitor({ clock: new FakeClock() }, { maxPeers: 0 }))
    assert.throws(() => new PerfMonitor({ clock: new FakeClock() }, { priorSuccessRate: 2 }))
  })

  it('score is always in [0, 1]', () => {
    const sample = fc.record({
      ok: fc.boolean(),
      latencyMs: fc.option(fc.double({ min: 0, max: 1e6, noNaN: true }), { nil: undefined }),
      bytes: fc.option(fc.double({ min: 0, max: 1e12, noNaN: true }), { nil: undefined }),
      durationMs: fc.option(fc.double({ min: 0, max: 1e6, noNaN: true }), { nil: undefined }),
      advanceMs: fc.nat(10_000_000),
    })
    assertProperty(
      fc.property(fc.array(sample, { maxLength: 30 }), (samples) => {
        const clock = new FakeClock()
        const m = new PerfMonitor({ clock })
        for (const { advanceMs, ...s } of samples) {
          clock.ms += advanceMs
          const clean = Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined))
          m.record('p', clean as { ok: boolean })
          const score = m.score('p')
          assert.ok(score >= 0 && score <= 1, `score ${score}`)
        }
      }),
      { numRuns: 200 },
    )
  })
})
