import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { checkHlcSkew, HlcClock } from '../../src/kv/hlc.ts'
import { compareHlc, HLC_COUNTER_LIMIT, type Hlc } from '../../src/kv/op-types.ts'
import { refused } from '../crypto/refused.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { assertProperty } from '../utils/property.ts'

const SKEW = 60_000
const T0 = 1_750_000_000_000

function clockAt(ms = T0): { clock: FakeClock; hlc: HlcClock } {
  const clock = new FakeClock(ms)
  return { clock, hlc: new HlcClock({ clock }, { maxFutureSkewMs: SKEW }) }
}

describe('HlcClock: local events', () => {
  it('follows the wall clock and counts within one millisecond', () => {
    const { clock, hlc } = clockAt()
    assert.deepEqual(hlc.now(), { ms: T0, c: 0 })
    assert.deepEqual(hlc.now(), { ms: T0, c: 1 })
    clock.advance(5)
    assert.deepEqual(hlc.now(), { ms: T0 + 5, c: 0 })
  })

  it('never goes back when the wall clock does', () => {
    const { clock, hlc } = clockAt()
    hlc.now()
    clock.ms = T0 - 10_000
    assert.deepEqual(hlc.now(), { ms: T0, c: 1 })
  })

  it('carries a counter overflow into the next millisecond', () => {
    const { hlc } = clockAt()
    let last: Hlc = hlc.now()
    for (let i = 1; i < HLC_COUNTER_LIMIT; i++) last = hlc.now()
    assert.deepEqual(last, { ms: T0, c: HLC_COUNTER_LIMIT - 1 })
    assert.deepEqual(hlc.now(), { ms: T0 + 1, c: 0 })
  })

  it('refuses to overflow past the skew bound, and changes nothing', () => {
    const clock = new FakeClock(T0)
    const hlc = new HlcClock(
      { clock },
      { maxFutureSkewMs: SKEW, last: { ms: T0 + SKEW, c: HLC_COUNTER_LIMIT - 1 } },
    )
    assert.throws(
      () => hlc.now(),
      (e) => isNodusError(e, 'KV_CLOCK_EXHAUSTED') && e.peerAction === undefined,
    )
    assert.deepEqual(hlc.last, { ms: T0 + SKEW, c: HLC_COUNTER_LIMIT - 1 })
    clock.advance(1)
    assert.deepEqual(hlc.now(), { ms: T0 + SKEW + 1, c: 0 })
  })

  it('starts after the last timestamp it is given', () => {
    const clock = new FakeClock(T0)
    const hlc = new HlcClock({ clock }, { maxFutureSkewMs: SKEW, last: { ms: T0 + 5, c: 3 } })
    assert.deepEqual(hlc.now(), { ms: T0 + 5, c: 4 })
    assert.throws(
      () => new HlcClock({ clock }, { maxFutureSkewMs: SKEW, last: { ms: -1, c: 0 } }),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
  })
})

describe('HlcClock: received timestamps', () => {
  it('merges per Kulkarni et al.: the larger l wins, its counter plus one', () => {
    const { hlc } = clockAt()
    assert.deepEqual(hlc.receive({ ms: T0 + 10, c: 7 }), { ms: T0 + 10, c: 8 })
    assert.deepEqual(hlc.receive({ ms: T0 + 10, c: 2 }), { ms: T0 + 10, c: 9 })
    assert.deepEqual(hlc.receive({ ms: T0 + 10, c: 20 }), { ms: T0 + 10, c: 21 })
    assert.deepEqual(hlc.receive({ ms: T0 - 5, c: 900 }), { ms: T0 + 10, c: 22 })
    assert.deepEqual(hlc.now(), { ms: T0 + 10, c: 23 })
  })

  it('restarts the counter when the wall clock is ahead of both', () => {
    const { clock, hlc } = clockAt()
    hlc.receive({ ms: T0 + 10, c: 7 })
    clock.advance(100)
    assert.deepEqual(hlc.receive({ ms: T0 + 50, c: 3 }), { ms: T0 + 100, c: 0 })
  })

  it('refuses a timestamp too far ahead, and never moves toward it', () => {
    const { hlc } = clockAt()
    assert.throws(() => hlc.check({ ms: T0 + SKEW + 1, c: 0 }), refused('KV_OP_FROM_FUTURE', 'ignore'))
    assert.throws(() => hlc.receive({ ms: T0 + SKEW + 1, c: 0 }), refused('KV_OP_FROM_FUTURE', 'ignore'))
    assert.deepEqual(hlc.last, { ms: 0, c: 0 })
    hlc.check({ ms: T0 + SKEW, c: 5 })
    // At the bound with its counter used up: the merge would pass the bound.
    assert.throws(
      () => hlc.receive({ ms: T0 + SKEW, c: HLC_COUNTER_LIMIT - 1 }),
      refused('KV_OP_FROM_FUTURE', 'ignore'),
    )
    assert.deepEqual(hlc.receive({ ms: T0 + SKEW, c: 5 }), { ms: T0 + SKEW, c: 6 })
    assert.throws(() => checkHlcSkew({ ms: 2001, c: 0 }, 1000, 1000), refused('KV_OP_FROM_FUTURE', 'ignore'))
    checkHlcSkew({ ms: 2000, c: 0 }, 1000, 1000)
  })

  it('refuses a malformed timestamp', () => {
    const { hlc } = clockAt()
    for (const bad of [
      { ms: 1.5, c: 0 },
      { ms: 0, c: HLC_COUNTER_LIMIT },
      { ms: 2 ** 48, c: 0 },
    ]) {
      assert.throws(
        () => hlc.receive(bad),
        (e) => isNodusError(e, 'INVALID_ARGUMENT'),
      )
    }
  })
})

/** A step of a random history: the wall clock moves (any direction), a local event, or a receive. */
type Step =
  | { kind: 'tick'; deltaMs: number }
  | { kind: 'now' }
  | { kind: 'receive'; aheadMs: number; c: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('tick' as const), deltaMs: fc.integer({ min: -5_000, max: 5_000 }) }),
  fc.record({ kind: fc.constant('now' as const) }),
  fc.record({
    kind: fc.constant('receive' as const),
    aheadMs: fc.integer({ min: -SKEW, max: SKEW + 10 }),
    c: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: HLC_COUNTER_LIMIT - 1 })),
  }),
)

describe('HlcClock: properties', () => {
  it('is monotonic, dominates what it received, and stays within the skew bound of the wall clock', () => {
    assertProperty(
      fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
        const { clock, hlc } = clockAt()
        let prev: Hlc = hlc.last
        for (const s of steps) {
          if (s.kind === 'tick') {
            clock.advance(s.deltaMs)
            continue
          }
          let next: Hlc
          if (s.kind === 'now') {
            try {
              next = hlc.now()
            } catch (e) {
              // Only with the counter used up at the largest timestamp it may issue.
              assert.ok(isNodusError(e, 'KV_CLOCK_EXHAUSTED'))
              assert.equal(prev.c, HLC_COUNTER_LIMIT - 1)
              assert.ok(prev.ms >= clock.ms + SKEW)
              assert.deepEqual(hlc.last, prev, 'a refused event changed the clock')
              continue
            }
          } else {
            const remote = { ms: clock.ms + s.aheadMs, c: s.c }
            try {
              next = hlc.receive(remote)
            } catch (e) {
              assert.ok(isNodusError(e, 'KV_OP_FROM_FUTURE'))
              assert.ok(remote.ms >= clock.ms + SKEW, 'refused a timestamp within the bound')
              assert.deepEqual(hlc.last, prev, 'a refused receive changed the clock')
              continue
            }
            assert.ok(compareHlc(next, remote) > 0, 'not after the received timestamp')
          }
          assert.ok(compareHlc(next, prev) > 0, 'not after the previous timestamp')
          assert.ok(next.ms >= clock.ms, 'behind the wall clock')
          // It moves ahead of the wall clock only within the skew bound (or stays where it was).
          assert.ok(next.ms <= Math.max(prev.ms, clock.ms + SKEW), 'moved past the skew bound')
          assert.ok(next.c < HLC_COUNTER_LIMIT)
          prev = next
        }
      }),
    )
  })

  it('orders a message after its send on every node (happened-before implies HLC order)', () => {
    assertProperty(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })), {
          minLength: 1,
          maxLength: 100,
        }),
        fc.array(fc.integer({ min: -50, max: 50 }), { minLength: 3, maxLength: 3 }),
        (messages, offsets) => {
          // Three nodes whose wall clocks disagree by up to 50 ms; each message: send on one, receive on another.
          const clocks = offsets.map((o) => new FakeClock(T0 + o))
          const nodes = clocks.map((clock) => new HlcClock({ clock }, { maxFutureSkewMs: SKEW }))
          for (const [from, to] of messages) {
            const sent = (nodes[from] as HlcClock).now()
            const got = (nodes[to] as HlcClock).receive(sent)
            assert.ok(compareHlc(got, sent) > 0)
            for (const c of clocks) c.advance(1)
          }
        },
      ),
    )
  })
})
