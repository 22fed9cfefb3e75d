import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import {
  type AuditRecord,
  AuditRecords,
  type AuditResult,
  BadCopies,
} from '../../src/storage/keeper/audit-records.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { assertProperty, propertySeed } from '../utils/property.ts'

/** The shared fake clock, starting at 1 s. */
const fakeClock = (start = 1_000): FakeClock => new FakeClock(start)

const invalid = (e: unknown): boolean => isNodusError(e, 'INVALID_ARGUMENT')

describe('AuditRecords', () => {
  it('counts passes, failures and timeouts; consecutive failures reset on a pass', () => {
    const clock = fakeClock()
    const r = new AuditRecords({ clock })
    assert.deepEqual(r.record('a', 'pass'), {
      peer: 'a',
      passed: 1,
      failed: 0,
      timedOut: 0,
      lastAt: 1_000,
      lastResult: 'pass',
      consecutiveFailures: 0,
    })
    clock.advance(500)
    r.record('a', 'fail')
    clock.advance(500)
    const after = r.record('a', 'timeout')
    assert.deepEqual(after, {
      peer: 'a',
      passed: 1,
      failed: 1,
      timedOut: 1,
      lastAt: 2_000,
      lastResult: 'timeout',
      consecutiveFailures: 2,
    })
    clock.advance(1)
    assert.equal(r.record('a', 'pass').consecutiveFailures, 0)
    assert.equal(r.get('a')?.lastAt, 2_001)
    assert.equal(r.get('b'), undefined)
    assert.equal(r.size, 1)
  })

  it('returns snapshots: changing one changes nothing inside', () => {
    const r = new AuditRecords({ clock: fakeClock() })
    const snap = r.record('a', 'pass')
    snap.passed = 99
    const got = r.get('a')
    assert.ok(got)
    got.failed = 99
    for (const rec of r.records()) rec.timedOut = 99
    assert.deepEqual(r.get('a'), { ...snap, passed: 1 })
  })

  it('keeps at most maxPeers, evicting the least recently updated (reads do not refresh)', () => {
    const r = new AuditRecords({ clock: fakeClock() }, { maxPeers: 3 })
    r.record('a', 'pass')
    r.record('b', 'pass')
    r.record('c', 'pass')
    r.get('a')
    r.record('b', 'fail') // b is now the most recent; a the least
    r.record('d', 'pass')
    assert.deepEqual(
      [...r.records()].map((x) => x.peer),
      ['c', 'b', 'd'],
    )
    assert.equal(r.delete('c'), true)
    assert.equal(r.delete('c'), false)
    assert.equal(r.size, 2)
  })

  it('round-trips through toJSON, JSON text and fromJSON, order included', () => {
    const clock = fakeClock()
    const r = new AuditRecords({ clock })
    r.record('x', 'fail')
    clock.advance(10)
    r.record('y', 'pass')
    clock.advance(10)
    r.record('x', 'timeout')
    const copy = AuditRecords.fromJSON(JSON.parse(JSON.stringify(r)), { clock })
    assert.deepEqual([...copy.records()], [...r.records()])
    assert.deepEqual(copy.toJSON(), r.toJSON())
    // Over the bound, the most recently updated are kept.
    const small = AuditRecords.fromJSON(r.toJSON(), { clock }, { maxPeers: 1 })
    assert.deepEqual(
      [...small.records()].map((x) => x.peer),
      ['x'],
    )
  })

  it('fromJSON rejects malformed or inconsistent input with INVALID_ARGUMENT', () => {
    const clock = fakeClock()
    const good: AuditRecord = {
      peer: 'p',
      passed: 1,
      failed: 2,
      timedOut: 0,
      lastAt: 5,
      lastResult: 'fail',
      consecutiveFailures: 2,
    }
    assert.equal(AuditRecords.fromJSON({ v: 1, peers: [good] }, { clock }).size, 1)
    const bad: unknown[] = [
      null,
      [],
      'records',
      { v: 2, peers: [] },
      { v: 1 },
      { v: 1, peers: {} },
      { v: 1, peers: [null] },
      { v: 1, peers: [good, good] },
      { v: 1, peers: [{ ...good, peer: '' }] },
      { v: 1, peers: [{ ...good, peer: 'p'.repeat(257) }] },
      { v: 1, peers: [{ ...good, passed: -1 }] },
      { v: 1, peers: [{ ...good, failed: 1.5 }] },
      { v: 1, peers: [{ ...good, timedOut: '0' }] },
      { v: 1, peers: [{ ...good, passed: 0, failed: 0, consecutiveFailures: 0, lastResult: 'pass' }] },
      { v: 1, peers: [{ ...good, consecutiveFailures: 3 }] },
      { v: 1, peers: [{ ...good, consecutiveFailures: 0 }] },
      { v: 1, peers: [{ ...good, lastResult: 'pass' }] },
      { v: 1, peers: [{ ...good, lastResult: 'maybe' }] },
      { v: 1, peers: [{ ...good, lastAt: Number.NaN }] },
      { v: 1, peers: [{ ...good, lastAt: '5' }] },
    ]
    for (const b of bad) assert.throws(() => AuditRecords.fromJSON(b, { clock }), invalid, JSON.stringify(b))
  })

  it('rejects bad options and arguments', () => {
    const clock = fakeClock()
    assert.throws(() => new AuditRecords({ clock }, { maxPeers: 0 }), invalid)
    assert.throws(() => new AuditRecords({ clock }, { maxPeers: 1.5 }), invalid)
    const r = new AuditRecords({ clock })
    assert.throws(() => r.record('', 'pass'), invalid)
    assert.throws(() => r.record('a', 'lost' as AuditResult), invalid)
    assert.equal(r.size, 0)
  })

  it(`property: matches a simple model for random sequences (seed ${propertySeed()})`, () => {
    const peers = ['a', 'b', 'c', 'd', 'e']
    assertProperty(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.array(
          fc.tuple(
            fc.constantFrom(...peers),
            fc.constantFrom<AuditResult>('pass', 'fail', 'timeout'),
            fc.nat(1000),
          ),
          { maxLength: 60 },
        ),
        (maxPeers, ops) => {
          const clock = fakeClock(0)
          const r = new AuditRecords({ clock }, { maxPeers })
          const model = new Map<string, AuditRecord>()
          for (const [peer, result, dt] of ops) {
            clock.advance(dt)
            const prev = model.get(peer)
            model.delete(peer)
            if (prev === undefined && model.size >= maxPeers) {
              const oldest = model.keys().next().value
              if (oldest !== undefined) model.delete(oldest)
            }
            const m: AuditRecord = prev ?? {
              peer,
              passed: 0,
              failed: 0,
              timedOut: 0,
              lastAt: 0,
              lastResult: result,
              consecutiveFailures: 0,
            }
            if (result === 'pass') m.passed++
            if (result === 'fail') m.failed++
            if (result === 'timeout') m.timedOut++
            m.consecutiveFailures = result === 'pass' ? 0 : m.consecutiveFailures + 1
            m.lastAt = clock.now()
            m.lastResult = result
            model.set(peer, m)
            r.record(peer, result)
          }
          assert.ok(r.size <= maxPeers)
          assert.deepEqual([...r.records()], [...model.values()])
          assert.deepEqual(
            [...AuditRecords.fromJSON(r.toJSON(), { clock }, { maxPeers }).records()],
            [...model.values()],
          )
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('BadCopies', () => {
  it('marks copies per (holder, shard), keeps the first mark, and clears one copy at a time', () => {
    const clock = fakeClock()
    const bad = new BadCopies({ clock })
    assert.equal(bad.mark('p1', 'c1', 'audit-failed'), true)
    clock.advance(5)
    assert.equal(bad.mark('p1', 'c1', 'reported'), false)
    assert.deepEqual(bad.get('p1', 'c1'), { holder: 'p1', cid: 'c1', reason: 'audit-failed', at: 1_000 })
    assert.equal(bad.has('p1', 'c2'), false, 'another shard of the same holder is not marked')
    assert.equal(bad.has('p2', 'c1'), false, 'another holder of the same shard is not marked')
    bad.mark('p2', 'c1', 'reported')
    assert.equal(bad.size, 2)
    assert.equal(bad.clear('p1', 'c1'), true)
    assert.equal(bad.clear('p1', 'c1'), false)
    assert.deepEqual(
      [...bad.entries()].map((m) => `${m.holder}/${m.cid}`),
      ['p2/c1'],
    )
  })

  it('is bounded: beyond maxEntries the oldest mark goes; retain keeps only what is still listed', () => {
    const bad = new BadCopies({ clock: fakeClock() }, { maxEntries: 3 })
    for (let i = 0; i < 5; i++) bad.mark(`p${i}`, `c${i}`, 'audit-failed')
    assert.equal(bad.size, 3)
    assert.equal(bad.has('p0', 'c0'), false)
    assert.equal(bad.has('p4', 'c4'), true)
    const listed = new Set(['p3/c3'])
    assert.equal(
      bad.retain((h, c) => listed.has(`${h}/${c}`)),
      2,
    )
    assert.deepEqual(
      [...bad.entries()].map((m) => m.holder),
      ['p3'],
    )
    assert.throws(() => new BadCopies({ clock: fakeClock() }, { maxEntries: 0 }), invalid)
  })
})
