import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import {
  DEFAULT_INTERACTION_WEIGHTS,
  INTERACTION_KINDS,
  InteractionRecords,
  IssuerGate,
  TokenBucketLimiter,
} from '../../src/trust/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'

/** The shared fake clock, starting at this file's epoch. */
const clockAt = (): FakeClock => new FakeClock(1_000_000)

describe('InteractionRecords', () => {
  it('has a weight for every kind: good kinds positive, bad kinds negative', () => {
    for (const kind of INTERACTION_KINDS) assert.equal(typeof DEFAULT_INTERACTION_WEIGHTS[kind], 'number')
    assert.ok(DEFAULT_INTERACTION_WEIGHTS['shard-served'] > 0)
    assert.ok(DEFAULT_INTERACTION_WEIGHTS['audit-passed'] > 0)
    assert.ok(DEFAULT_INTERACTION_WEIGHTS['audit-failed'] < DEFAULT_INTERACTION_WEIGHTS['shard-bad'])
    assert.ok(DEFAULT_INTERACTION_WEIGHTS.timeout < 0)
  })

  it('local trust is max(sat − unsat, 0)', () => {
    const r = new InteractionRecords()
    r.record('B', 'shard-served', 4)
    r.record('B', 'timeout')
    assert.deepEqual(r.get('B'), { sat: 4, unsat: 1 })
    assert.equal(r.localTrust('B'), 3)
    r.record('C', 'shard-stored')
    r.record('C', 'audit-failed')
    assert.equal(r.localTrust('C'), 0)
    assert.equal(r.localTrust('nobody'), 0)
    assert.deepEqual([...r.entries()], [['B', 3]])
  })

  it('topLocalTrust orders by trust then id, and honours n', () => {
    const r = new InteractionRecords()
    r.record('b', 'shard-served', 2)
    r.record('a', 'shard-served', 2)
    r.record('c', 'audit-passed', 5)
    assert.deepEqual(r.topLocalTrust(2), [
      ['c', 10],
      ['a', 2],
    ])
    assert.deepEqual(r.topLocalTrust(0), [])
  })

  it('is bounded: the least recently updated peer is forgotten', () => {
    const r = new InteractionRecords({ maxPeers: 2 })
    r.record('a', 'shard-served')
    r.record('b', 'shard-served')
    r.record('a', 'shard-served') // a is now the most recent
    r.record('c', 'shard-served') // evicts b
    assert.equal(r.size, 2)
    assert.equal(r.get('b'), undefined)
    assert.equal(r.localTrust('a'), 2)
  })

  it('rejects bad counts and weight tables', () => {
    const r = new InteractionRecords()
    assert.throws(
      () => r.record('a', 'timeout', -1),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(
      () => r.record('a', 'timeout', Number.NaN),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(
      () => new InteractionRecords({ weights: { ...DEFAULT_INTERACTION_WEIGHTS, timeout: Number.NaN } }),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(
      () => new InteractionRecords({ maxPeers: 0 }),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
  })
})

describe('TokenBucketLimiter', () => {
  it('allows a burst, then one per interval as the clock advances', () => {
    const clock = clockAt()
    const l = new TokenBucketLimiter({ clock }, { intervalMs: 1000, burst: 3 })
    assert.equal(l.tryTake('x'), true)
    assert.equal(l.tryTake('x'), true)
    assert.equal(l.tryTake('x'), true)
    assert.equal(l.tryTake('x'), false)
    assert.equal(l.tryTake('y'), true) // buckets are per key
    clock.ms += 999
    assert.equal(l.tryTake('x'), false)
    clock.ms += 1
    assert.equal(l.tryTake('x'), true)
    clock.ms += 1_000_000 // refills up to the burst only
    assert.equal(l.tokens('x'), 3)
  })

  it('take throws RATE_LIMITED with peerAction ignore', () => {
    const l = new TokenBucketLimiter({ clock: clockAt() }, { intervalMs: 1000, burst: 1 })
    l.take('x')
    assert.throws(
      () => l.take('x'),
      (e) => isNodusError(e, 'RATE_LIMITED') && e.peerAction === 'ignore',
    )
  })

  it('a clock stepping back refills nothing', () => {
    const clock = clockAt()
    const l = new TokenBucketLimiter({ clock }, { intervalMs: 1000, burst: 1 })
    l.take('x')
    clock.ms -= 10_000
    assert.equal(l.tryTake('x'), false)
    clock.ms += 10_000
    assert.equal(l.tryTake('x'), false) // no refill for time it already counted
    clock.ms += 1000
    assert.equal(l.tryTake('x'), true)
  })

  it('tracks at most maxKeys keys', () => {
    const l = new TokenBucketLimiter({ clock: clockAt() }, { intervalMs: 1000, burst: 1, maxKeys: 3 })
    for (let i = 0; i < 10; i++) l.tryTake(`k${i}`)
    assert.equal(l.size, 3)
  })

  it('rejects bad options', () => {
    const clock = clockAt()
    assert.throws(() => new TokenBucketLimiter({ clock }, { intervalMs: 0, burst: 1 }))
    assert.throws(() => new TokenBucketLimiter({ clock }, { intervalMs: 1, burst: 0 }))
    assert.throws(() => new TokenBucketLimiter({ clock }, { intervalMs: 1, burst: 1, maxKeys: 0 }))
  })
})

describe('IssuerGate', () => {
  it('rejects replays and spends tokens only on commit', () => {
    const clock = clockAt()
    const g = new IssuerGate(
      { clock },
      { intervalMs: 1000, burst: 1, maxIssuers: 10 },
      'TRUST_VECTOR_INVALID',
      'trust vector',
    )
    g.check('a', 1)
    g.check('a', 1) // nothing spent
    g.commit('a', 1)
    assert.equal(g.lastSeq('a'), 1)
    assert.throws(
      () => g.check('a', 1),
      (e) => isNodusError(e, 'TRUST_VECTOR_INVALID') && e.peerAction === 'ignore',
    )
    assert.throws(
      () => g.check('a', 2),
      (e) => isNodusError(e, 'RATE_LIMITED'),
    )
    clock.ms += 1000
    g.commit('a', 2)
  })
})
