/**
 * The bounded replay window (src/crypto/replay-window.ts): ids held until they expire, never more than
 * maxIds, and, once it overflowed, never a replay accepted (a model check against an unbounded set).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { ReplayWindow } from '../../src/crypto/replay-window.ts'
import { assertProperty } from '../utils/property.ts'

const id = (n: number): Uint8Array => {
  const b = new Uint8Array(16)
  new DataView(b.buffer).setUint32(0, n)
  return b
}

describe('ReplayWindow', () => {
  it('holds an id until it expires, then lets it go', () => {
    const w = new ReplayWindow({ maxIds: 10 })
    assert.equal(w.check(id(1), 1000, 0), 'fresh')
    w.add(id(1), 1000, 0)
    assert.equal(w.check(id(1), 1000, 999), 'seen')
    assert.equal(w.size, 1)
    assert.equal(w.check(id(1), 1000, 1000), 'fresh')
    assert.equal(w.size, 0)
    w.add(id(2), 500, 500) // already expired: not kept
    assert.equal(w.size, 0)
  })

  it('when full, forgets the id that expires first and refuses what expires by then', () => {
    const w = new ReplayWindow({ maxIds: 2 })
    w.add(id(1), 3000, 0)
    w.add(id(2), 1000, 0)
    w.add(id(3), 2000, 0) // evicts id 2 (expires first)
    assert.equal(w.size, 2)
    assert.equal(w.floorMs, 1000)
    assert.equal(w.check(id(2), 1000, 0), 'below-floor')
    assert.equal(w.check(id(9), 900, 0), 'below-floor')
    assert.equal(w.check(id(9), 1001, 0), 'fresh')
    assert.equal(w.check(id(1), 3000, 0), 'seen')
    assert.equal(w.check(id(3), 2000, 0), 'seen')
  })

  it('tells onForget of every id that expires or is evicted; forget takes an id back; the floor can be raised', () => {
    const gone: string[] = []
    const w = new ReplayWindow({ maxIds: 2, onForget: (k) => gone.push(k) })
    const hex = (n: number): string => Buffer.from(id(n)).toString('hex')
    w.add(id(1), 100, 0)
    w.add(id(2), 200, 0)
    w.add(hex(3), 300, 0) // a hex key is the same id as its bytes; evicts id 1
    assert.deepEqual(gone, [hex(1)])
    assert.equal(w.check(id(3), 300, 0), 'seen')
    assert.equal(w.floorMs, 100)
    // Taken back: fresh again, not reported, and its heap entry left behind does not count.
    assert.equal(w.forget(id(2)), true)
    assert.equal(w.forget(id(2)), false)
    assert.equal(w.check(id(2), 200, 0), 'fresh')
    assert.equal(w.size, 1)
    w.add(id(2), 200, 0)
    w.add(id(4), 400, 0) // evicts id 2 once (the stale entry is skipped)
    assert.deepEqual(gone, [hex(1), hex(2)])
    assert.equal(w.floorMs, 200)
    assert.equal(w.size, 2)
    w.prune(300) // id 3 expires
    assert.deepEqual(gone, [hex(1), hex(2), hex(3)])
    assert.equal(w.size, 1)
    w.raiseFloor(350)
    w.raiseFloor(10) // never lowers
    assert.equal(w.floorMs, 350)
    assert.equal(w.check(id(5), 350, 300), 'below-floor')
  })

  it('refuses a bound that is not a positive integer', () => {
    for (const maxIds of [0, -1, 1.5, Number.NaN]) {
      assert.throws(
        () => new ReplayWindow({ maxIds }),
        (e) => isNodusError(e, 'INVALID_ARGUMENT'),
      )
    }
  })

  it('property: never more than maxIds, and no id accepted twice before it expires', () => {
    const op = fc.record({
      id: fc.integer({ min: 0, max: 40 }),
      ttl: fc.integer({ min: 1, max: 200 }),
      advance: fc.integer({ min: 0, max: 30 }),
      /** Take the id back right after adding it (its write failed). */
      undo: fc.boolean(),
    })
    assertProperty(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { maxLength: 300 }), (maxIds, ops) => {
        // What a holder on disk mirrors: added, minus what onForget reported, minus what was taken back.
        const mirror = new Set<string>()
        const w = new ReplayWindow({
          maxIds,
          onForget: (k) => assert.ok(mirror.delete(k), `${k} reported twice`),
        })
        // The model: every accepted id and when it expires (ids are per message: expiry is fixed by its
        // first acceptance, as a message's sentAt is).
        const accepted = new Map<number, number>()
        let now = 0
        for (const o of ops) {
          now += o.advance
          const expires = accepted.get(o.id) ?? now + o.ttl
          const verdict = w.check(id(o.id), expires, now)
          const live = accepted.has(o.id) && (accepted.get(o.id) as number) > now
          if (live) assert.notEqual(verdict, 'fresh', `id ${o.id} accepted twice before it expired`)
          if (verdict === 'fresh') {
            w.add(id(o.id), expires, now)
            const key = Buffer.from(id(o.id)).toString('hex')
            if (expires > now) mirror.add(key)
            if (o.undo) {
              w.forget(id(o.id))
              mirror.delete(key)
            } else accepted.set(o.id, expires)
          }
          assert.ok(w.size <= maxIds)
          assert.equal(w.size, mirror.size)
        }
      }),
      { numRuns: 300 },
    )
  })
})
