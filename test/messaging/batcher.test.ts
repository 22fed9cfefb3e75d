/**
 * The publishing side's batching (src/messaging/batcher.ts): where a batch is cut (linger, bytes,
 * count), seqs and sessions, and the bounds (message size, publish queue). Timers and clock are fakes.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import {
  type Batch,
  Batcher,
  type BatcherOptions,
  decodeBatch,
  encodeBatch,
} from '../../src/messaging/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { assertProperty } from '../utils/property.ts'

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

  it('with MQTT marks (batch version 2): every batch fits maxBatchBytes exactly as tightly, marks intact', async () => {
    // Mostly unmarked small messages, so long runs of them meet a marked one (which makes the batch
    // version 2 and gives each of them a flags byte) and marked batches hold many unmarked ones.
    const unmarked = fc.record({
      size: fc.integer({ min: 0, max: 12 }),
      mqttTopic: fc.constant(undefined),
      fromMqtt: fc.constant(false),
    })
    const marked = fc.record({
      size: fc.integer({ min: 0, max: 60 }),
      mqttTopic: fc.option(fc.stringMatching(/^[a-z/é]{1,30}$/), { nil: undefined }),
      fromMqtt: fc.constant(true),
    })
    const message = fc.oneof({ arbitrary: unmarked, weight: 6 }, { arbitrary: marked, weight: 1 })
    await assertProperty(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 150, size: 'max' }), async (messages) => {
        // Small batches of small messages: many cuts, each a chance for a byte miscounted per message.
        const h = harness({ maxMessagesPerBatch: 1000, maxBatchBytes: 300 })
        for (const m of messages) {
          const marks = {
            ...(m.mqttTopic === undefined ? {} : { mqttTopic: m.mqttTopic }),
            fromMqtt: m.fromMqtt,
          }
          h.batcher.publish('t', msg(m.size), marks)
        }
        h.fire()
        await h.batcher.onIdle()
        const decoded = h.sent.flatMap(
          (s) => decodeBatch(s.bytes, { ...OPTIONS, maxBatchBytes: 300, maxMessagesPerBatch: 1000 }).entries,
        )
        assert.deepEqual(
          decoded.map((e) => [e.data.length, e.mqttTopic, e.fromMqtt === true]),
          messages.map((m) => [m.size, m.mqttTopic, m.fromMqtt]),
        )
        for (let i = 0; i < h.sent.length; i++) {
          const s = h.sent[i] as (typeof h.sent)[number]
          assert.ok(s.bytes.byteLength <= 300, `${s.bytes.byteLength} bytes`)
          const next = h.sent[i + 1]?.batch.entries[0]
          if (next === undefined) continue
          // Cut only because the next message did not fit: the accounting is exact, not conservative.
          const grown = encodeBatch({ ...s.batch, entries: [...s.batch.entries, next] })
          assert.ok(grown.byteLength > 300, `cut at ${s.bytes.byteLength} bytes`)
        }
      }),
      { numRuns: 200 },
    )
  })

  it('refuses a message that with its MQTT topic would not fit a batch', () => {
    const h = harness({ maxBatchBytes: 1100, maxMessageBytes: 1000 })
    h.batcher.publish('t', msg(1000))
    assert.throws(
      () => h.batcher.publish('t', msg(1000), { mqttTopic: 'x'.repeat(40) }),
      (e) => isNodusError(e, 'MESSAGE_TOO_LARGE'),
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
