/**
 * Delivery order and de-duplication per publisher (src/messaging/ordering.ts), with a fake clock.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { type Batch, OrderedInbox, type OrderedInboxOptions } from '../../src/messaging/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { assertProperty } from '../utils/property.ts'

const OPTIONS: OrderedInboxOptions = { reorderWindowMs: 1000, maxHeldBatches: 4, maxPublishers: 3 }

function batch(firstSeq: number, count: number, sessionStart = 100): Batch {
  return {
    sessionStart,
    firstSeq,
    timeMs: 0,
    entries: Array.from({ length: count }, () => ({ data: new Uint8Array(1), publishedAtMs: 0 })),
  }
}

function harness(options: Partial<OrderedInboxOptions> = {}) {
  const clock = new FakeClock(0)
  const delivered: string[] = []
  const drops: Record<string, number> = {}
  const inbox = new OrderedInbox(
    {
      clock,
      deliver: (topic, publisher, b, from) => {
        for (let i = from; i < b.entries.length; i++)
          delivered.push(`${topic}/${publisher}/${b.firstSeq + i}`)
      },
      dropped: (reason, n) => {
        drops[reason] = (drops[reason] ?? 0) + n
      },
    },
    { ...OPTIONS, ...options },
  )
  const seqs = (topic = 't', publisher = 'p') =>
    delivered.filter((d) => d.startsWith(`${topic}/${publisher}/`)).map((d) => Number(d.split('/')[2]))
  return { clock, inbox, delivered, drops, seqs }
}

describe('OrderedInbox', () => {
  it('delivers in order, holds a batch that arrives early until the gap fills, drops duplicates', () => {
    const h = harness()
    h.inbox.receive('t', 'p', batch(100, 2))
    h.inbox.receive('t', 'p', batch(104, 2)) // 102–103 missing
    assert.deepEqual(h.seqs(), [100, 101])
    assert.equal(h.inbox.heldBatches, 1)
    h.inbox.receive('t', 'p', batch(102, 2))
    assert.deepEqual(h.seqs(), [100, 101, 102, 103, 104, 105])
    h.inbox.receive('t', 'p', batch(102, 2))
    assert.equal(h.drops.duplicate, 2)
    assert.equal(h.inbox.heldBatches, 0)
  })

  it('skips a gap after reorderWindowMs and counts its messages lost', () => {
    const h = harness()
    h.inbox.receive('t', 'p', batch(100, 1))
    h.inbox.receive('t', 'p', batch(105, 1))
    h.clock.advance(999)
    h.inbox.tick()
    assert.deepEqual(h.seqs(), [100])
    h.clock.advance(1)
    h.inbox.tick()
    assert.deepEqual(h.seqs(), [100, 105])
    assert.equal(h.drops.gap, 4)
    // A late copy of the missing messages is now a duplicate.
    h.inbox.receive('t', 'p', batch(101, 4))
    assert.deepEqual(h.seqs(), [100, 105])
  })

  it('holds at most maxHeldBatches per publisher: one more skips the gap at once', () => {
    const h = harness()
    h.inbox.receive('t', 'p', batch(100, 1))
    for (const s of [103, 104, 105, 106]) h.inbox.receive('t', 'p', batch(s, 1))
    assert.deepEqual(h.seqs(), [100])
    h.inbox.receive('t', 'p', batch(107, 1))
    assert.deepEqual(h.seqs(), [100, 103, 104, 105, 106, 107])
    assert.equal(h.drops.gap, 2)
  })

  it('a newer session delivers at once; what the old one held goes first', () => {
    const h = harness()
    h.inbox.receive('t', 'p', batch(100, 1))
    h.inbox.receive('t', 'p', batch(102, 1)) // held: 101 missing
    h.inbox.receive('t', 'p', batch(5000, 2, 5000)) // restarted publisher
    assert.deepEqual(h.seqs(), [100, 102, 5000, 5001])
    assert.equal(h.drops.gap, 1)
  })

  it('keeps each (topic, publisher) apart and forgets the least recently heard beyond maxPublishers', () => {
    const h = harness()
    h.inbox.receive('t', 'a', batch(100, 1))
    h.inbox.receive('t', 'b', batch(100, 1))
    h.inbox.receive('u', 'a', batch(100, 1))
    h.inbox.receive('t', 'a', batch(101, 1)) // a on t heard again
    h.inbox.receive('t', 'c', batch(100, 1)) // evicts b on t
    assert.equal(h.inbox.publishers, 3)
    h.inbox.receive('t', 'b', batch(100, 1)) // b forgotten: delivered again as a first batch
    assert.deepEqual(h.seqs('t', 'b'), [100, 100])
    assert.deepEqual(h.seqs('t', 'a'), [100, 101])
  })

  it('delivers every message exactly once and in order, whatever the arrival order and duplicates', () => {
    assertProperty(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 60 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (sizes, order, dups) => {
          const h = harness({ maxHeldBatches: 100 })
          const batches: Batch[] = []
          let seq = 1000
          for (const n of sizes) {
            batches.push(batch(seq, n, 1000))
            seq += n
          }
          // The first batch first (a subscriber joined before it); the rest shuffled, with duplicates.
          const rest = batches.slice(1)
          for (let i = rest.length - 1; i > 0; i--) {
            const j = (order[i] ?? i) % (i + 1)
            ;[rest[i], rest[j]] = [rest[j] as Batch, rest[i] as Batch]
          }
          for (const d of dups)
            if (rest.length > 0) rest.splice(d % rest.length, 0, rest[d % rest.length] as Batch)
          h.inbox.receive('t', 'p', batches[0] as Batch)
          for (const b of rest) h.inbox.receive('t', 'p', b)
          assert.deepEqual(
            h.seqs(),
            Array.from({ length: seq - 1000 }, (_, i) => 1000 + i),
          )
          assert.equal(h.inbox.heldBatches, 0)
          assert.equal(h.drops.gap, undefined)
        },
      ),
    )
  })
})
