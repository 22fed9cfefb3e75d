/**
 * The publishing side's batching (src/messaging/batcher.ts): where a batch is cut (linger, bytes,
 * count), seqs and sessions, and the bounds (message size, publish queue). Timers and clock are fakes.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { type Batch, Batcher, type BatcherOptions, decodeBatch } from '../../src/messaging/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'

const OPTIONS: BatcherOptions = {
  lingerMs: 2,
  maxBatchBytes: 4096,
  maxMessageBytes: 1000,
  maxMessagesPerBatch: 10,
  publishQueueBytes: 64 * 1024,
  maxBatchesInFlight: 2,
  maxPublishTopics: 3,
}

function harness(options: Partial<BatcherOptions> = {}) {
  const clock = new FakeClock(1_000_000)
  const timers: { fn: () => void; ms: number; cancelled: boolean }[] = []
  const sent: { topic: string; bytes: Uint8Array; batch: Batch }[] = []
  const gates: (() => void)[] = []
  let holdSends = false
  const batcher = new Batcher(
    {
      clock,
      send: async (topic, bytes, batch) => {
        if (holdSends) await new Promise<void>((r) => gates.push(r))
        sent.push({ topic, bytes, batch })
      },
      onSendError: () => {},
      setTimer: (fn, ms) => {
        const t = { fn, ms, cancelled: false }
        timers.push(t)
        return () => {
          t.cancelled = true
        }
      },
    },
    { ...OPTIONS, ...options },
  )
  const fire = (): void => {
    for (const t of timers.splice(0)) if (!t.cancelled) t.fn()
  }
  return {
    clock,
    batcher,
    sent,
    timers,
    fire,
    gates,
    hold: (v: boolean) => {
      holdSends = v
    },
  }
}

const msg = (n: number, fill = 7) => new Uint8Array(n).fill(fill)

describe('Batcher', () => {
  it('sends the messages published within lingerMs as one batch, numbered from the clock × 1000', async () => {
    const h = harness()
    assert.equal(h.batcher.publish('a', msg(10)), 1_000_000_000)
    h.clock.advance(1)
    assert.equal(h.batcher.publish('a', msg(20)), 1_000_000_001)
    assert.equal(h.timers.length, 1, 'one linger timer per batch')
    assert.equal(h.timers[0]?.ms, 2)
    assert.equal(h.sent.length, 0)
    h.fire()
    await h.batcher.onIdle()
    assert.equal(h.sent.length, 1)
    const b = decodeBatch(h.sent[0]?.bytes as Uint8Array, { ...OPTIONS })
    assert.equal(b.sessionStart, 1_000_000_000)
    assert.equal(b.firstSeq, 1_000_000_000)
    assert.deepEqual(
      b.entries.map((e) => [e.data.length, e.publishedAtMs]),
      [
        [10, 1_000_000],
        [20, 1_000_001],
      ],
    )
    // The next message starts a new batch, with the next seq.
    h.batcher.publish('a', msg(5))
    h.fire()
    await h.batcher.onIdle()
    assert.equal(h.sent[1]?.batch.firstSeq, 1_000_000_002)
  })

  it('cuts a batch at maxMessagesPerBatch and before maxBatchBytes, never above them', async () => {
    const h = harness()
    for (let i = 0; i < 25; i++) h.batcher.publish('count', msg(1))
    await new Promise((r) => setImmediate(r)) // the full batches' sends (5 messages still linger)
    assert.deepEqual(
      h.sent.map((s) => s.batch.entries.length),
      [10, 10],
      'two full batches left at once',
    )
    h.fire()
    await h.batcher.onIdle()
    assert.deepEqual(
      h.sent.map((s) => s.batch.entries.length),
      [10, 10, 5],
    )
    const b = harness()
    for (let i = 0; i < 9; i++) b.batcher.publish('bytes', msg(1000, i))
    b.fire()
    await b.batcher.onIdle()
    for (const s of b.sent)
      assert.ok(s.bytes.byteLength <= OPTIONS.maxBatchBytes, `${s.bytes.byteLength} bytes`)
    assert.deepEqual(
      b.sent.map((s) => s.batch.entries.length),
      [4, 4, 1],
    )
    // Seqs run on across the batches.
    assert.deepEqual(
      b.sent.map((s) => s.batch.firstSeq - 1_000_000_000),
      [0, 4, 8],
    )
  })

  it('keeps one seq counter per topic', async () => {
    const h = harness()
    h.batcher.publish('x', msg(1))
    h.batcher.publish('y', msg(1))
    h.batcher.publish('x', msg(1))
    h.fire()
    await h.batcher.onIdle()
    const byTopic = Object.fromEntries(h.sent.map((s) => [s.topic, s.batch]))
    assert.equal(byTopic.x?.entries.length, 2)
    assert.equal(byTopic.y?.firstSeq, 1_000_000_000)
  })

  it('refuses a message over maxMessageBytes and a publish over the queue bound, and frees the queue as batches leave', async () => {
    const h = harness({ publishQueueBytes: 2500, maxBatchesInFlight: 1 })
    assert.throws(
      () => h.batcher.publish('a', msg(1001)),
      (e) => isNodusError(e, 'MESSAGE_TOO_LARGE'),
    )
    h.hold(true)
    h.batcher.publish('a', msg(1000))
    h.batcher.publish('a', msg(1000))
    assert.throws(
      () => h.batcher.publish('a', msg(1000)),
      (e) => isNodusError(e, 'QUEUE_FULL'),
    )
    assert.equal(h.batcher.queuedBytes, 2000)
    h.fire()
    assert.equal(h.batcher.inFlight, 1)
    h.hold(false)
    for (const g of h.gates.splice(0)) g()
    await h.batcher.onIdle()
    assert.equal(h.batcher.queuedBytes, 0)
    h.batcher.publish('a', msg(1000))
  })

  it('sends at most maxBatchesInFlight at once, in the order cut', async () => {
    const h = harness({ maxBatchesInFlight: 2 })
    h.hold(true)
    for (const t of ['a', 'b', 'c', 'd']) h.batcher.publish(t, msg(1))
    h.fire()
    assert.equal(h.batcher.inFlight, 2)
    h.hold(false)
    while (h.gates.length > 0) {
      for (const g of h.gates.splice(0)) g()
      await new Promise((r) => setImmediate(r))
    }
    await h.batcher.onIdle()
    assert.deepEqual(
      h.sent.map((s) => s.topic),
      ['a', 'b', 'c', 'd'],
    )
  })

  it('forgets the least recently published topic beyond maxPublishTopics: its next message starts a new session', async () => {
    const h = harness({ maxPublishTopics: 2 })
    h.batcher.publish('a', msg(1))
    h.fire()
    await h.batcher.onIdle()
    h.clock.advance(10)
    h.batcher.publish('b', msg(1))
    h.batcher.publish('c', msg(1))
    h.fire()
    await h.batcher.onIdle()
    h.clock.advance(10)
    const seq = h.batcher.publish('a', msg(1))
    assert.equal(seq, 1_000_020_000, 'a new session above the old one')
  })

  it('stop() sends what is pending and refuses new messages', async () => {
    const h = harness()
    h.batcher.publish('a', msg(3))
    await h.batcher.stop()
    assert.equal(h.sent.length, 1)
    assert.throws(
      () => h.batcher.publish('a', msg(3)),
      (e) => isNodusError(e, 'NOT_STARTED'),
    )
  })
})
