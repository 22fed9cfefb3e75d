/**
 * The batch format (src/messaging/batch.ts): round trips, golden encodings (versions 1 and 2) later
 * versions must still read, and every malformed or over-bound batch refused with BATCH_INVALID
 * (peerAction reject).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { type Batch, type BatchLimits, decodeBatch, encodeBatch } from '../../src/messaging/index.ts'
import { assertProperty } from '../utils/property.ts'

const LIMITS: BatchLimits = {
  maxBatchBytes: 64 * 1024,
  maxMessageBytes: 60 * 1024,
  maxMessagesPerBatch: 1024,
}

const entryMarksArb = fc.record(
  {
    mqttTopic: fc.stringMatching(/^[a-z0-9$/é€😀 -]{1,40}$/u),
    fromMqtt: fc.boolean(),
  },
  { requiredKeys: [] },
)

const batchArb = fc
  .record({
    sessionStart: fc.integer({ min: 0, max: 2 ** 52 }),
    skip: fc.integer({ min: 0, max: 1000 }),
    timeMs: fc.integer({ min: 0, max: 2 ** 50 }),
    entries: fc.array(
      fc.record({ data: fc.uint8Array({ maxLength: 300 }), dt: fc.nat(5000), marks: entryMarksArb }),
      { minLength: 1, maxLength: 50 },
    ),
    flagged: fc.boolean(),
  })
  .map(
    ({ sessionStart, skip, timeMs, entries, flagged }): Batch => ({
      sessionStart,
      firstSeq: sessionStart + skip,
      timeMs,
      entries: entries
        .sort((a, b) => a.dt - b.dt)
        .map((e) => ({ data: e.data, publishedAtMs: timeMs + e.dt, ...(flagged ? e.marks : {}) })),
    }),
  )

/** What a decoded entry says about its marks, absent ones as undefined / false. */
const marksOf = (e: Batch['entries'][number]) => [e.mqttTopic, e.fromMqtt === true]

function rejected(bytes: Uint8Array, limits: BatchLimits = LIMITS): string {
  try {
    decodeBatch(bytes, limits)
  } catch (err) {
    assert.ok(isNodusError(err, 'BATCH_INVALID'), String(err))
    assert.equal(err.peerAction, 'reject')
    return err.message
  }
  assert.fail('decoded a bad batch')
}

describe('batch format', () => {
  it('decodes what it encodes, every field and byte', () => {
    assertProperty(
      fc.property(batchArb, (batch) => {
        const back = decodeBatch(encodeBatch(batch), LIMITS)
        assert.equal(back.sessionStart, batch.sessionStart)
        assert.equal(back.firstSeq, batch.firstSeq)
        assert.equal(back.timeMs, batch.timeMs)
        assert.deepEqual(
          back.entries.map((e) => [e.publishedAtMs, [...e.data], marksOf(e)]),
          batch.entries.map((e) => [e.publishedAtMs, [...e.data], marksOf(e)]),
        )
      }),
    )
  })

  it('writes version 1 unless a message carries an MQTT topic or the from-MQTT mark', () => {
    const plain = { data: new Uint8Array([1]), publishedAtMs: 10 }
    const batch = (entries: Batch['entries']): Batch => ({
      sessionStart: 1,
      firstSeq: 1,
      timeMs: 10,
      entries,
    })
    assert.equal(encodeBatch(batch([plain, plain]))[0], 1)
    assert.equal(encodeBatch(batch([plain, { ...plain, fromMqtt: true }]))[0], 2)
    assert.equal(encodeBatch(batch([{ ...plain, mqttTopic: 'a' }]))[0], 2)
    assert.equal(encodeBatch(batch([{ ...plain, fromMqtt: false }]))[0], 1)
  })

  it('reads the golden version-2 encoding (flags and MQTT topic per message)', () => {
    const batch: Batch = {
      sessionStart: 5,
      firstSeq: 5,
      timeMs: 1000,
      entries: [
        { data: new TextEncoder().encode('hi'), publishedAtMs: 1000, mqttTopic: 'a/b', fromMqtt: true },
        { data: new Uint8Array([255]), publishedAtMs: 1002 },
      ],
    }
    // version 2, sessionStart 5, firstSeq 5, timeMs 1000, count 2; then per message: flags (3: from
    // MQTT + topic), topic length 3, "a/b", dt 0, length 2, "hi"; flags 0, dt 2, length 1, ff.
    const golden = ['02', '05', '05', 'e807', '02', '0303612f62', '0002', '6869', '00', '0201', 'ff'].join('')
    assert.equal(Buffer.from(encodeBatch(batch)).toString('hex'), golden)
    const back = decodeBatch(Buffer.from(golden, 'hex'), LIMITS)
    assert.deepEqual(back.entries.map(marksOf), [
      ['a/b', true],
      [undefined, false],
    ])
  })

  it('refuses bad version-2 marks: unknown flag bits, an empty, non-UTF-8 or wildcard MQTT topic', () => {
    // version 2, session 0, seq 0, time 0, one message: flags, [topic], dt 0, length 0.
    const one = (...marks: number[]) => Uint8Array.from([2, 0, 0, 0, 1, ...marks, 0, 0])
    assert.equal(decodeBatch(one(1), LIMITS).entries[0]?.fromMqtt, true)
    assert.match(rejected(one(4)), /unknown message flags/)
    assert.match(rejected(one(2, 0)), /MQTT topic of 0 bytes/)
    assert.match(rejected(one(2, 1, 0xff)), /not UTF-8/)
    assert.match(rejected(one(2, 1, 0x23)), /wildcard/)
    assert.match(rejected(one(2, 1, 0x00)), /U\+0000/)
    assert.match(rejected(Uint8Array.from([2, 0, 0, 0, 1, 2, 5, 0x61])), /truncated/)
    assert.throws(
      () =>
        encodeBatch({
          sessionStart: 0,
          firstSeq: 0,
          timeMs: 0,
          entries: [{ data: new Uint8Array(0), publishedAtMs: 0, mqttTopic: '' }],
        }),
      (err) => isNodusError(err, 'INVALID_ARGUMENT'),
    )
  })

  it('reads the golden encoding (a format change must keep reading it)', () => {
    const batch: Batch = {
      sessionStart: 1_700_000_000_000_000,
      firstSeq: 1_700_000_000_000_002,
      timeMs: 1_700_000_000_000,
      entries: [
        { data: new TextEncoder().encode('hello'), publishedAtMs: 1_700_000_000_000 },
        { data: new Uint8Array([0, 255]), publishedAtMs: 1_700_000_000_003 },
      ],
    }
    // Computed independently (Python, unsigned LEB128).
    // version, sessionStart, firstSeq, timeMs, count, then (dt, length, bytes) twice.
    const golden = [
      '01',
      '8080f9c0c1c48203',
      '8280f9c0c1c48203',
      '80d095ffbc31',
      '02',
      '0005',
      '68656c6c6f',
      '0302',
      '00ff',
    ].join('')
    assert.equal(Buffer.from(encodeBatch(batch)).toString('hex'), golden)
    const back = decodeBatch(Buffer.from(golden, 'hex'), LIMITS)
    assert.equal(back.firstSeq, batch.firstSeq)
    assert.equal(new TextDecoder().decode(back.entries[0]?.data), 'hello')
    assert.equal(back.entries[1]?.publishedAtMs, 1_700_000_000_003)
  })

  it('refuses malformed batches and batches over a bound', () => {
    const good = encodeBatch({
      sessionStart: 10,
      firstSeq: 12,
      timeMs: 1000,
      entries: [
        { data: new Uint8Array(100), publishedAtMs: 1000 },
        { data: new Uint8Array(100), publishedAtMs: 1001 },
      ],
    })
    assert.equal(decodeBatch(good, LIMITS).entries.length, 2)
    assert.match(rejected(new Uint8Array(0)), /empty/)
    assert.match(rejected(Uint8Array.from([3, ...good.subarray(1)])), /version/)
    assert.match(rejected(good.subarray(0, good.length - 1)), /truncated/)
    assert.match(rejected(Uint8Array.from([...good, 0])), /after the last message/)
    assert.match(rejected(good, { ...LIMITS, maxBatchBytes: good.length - 1 }), /over/)
    assert.match(rejected(good, { ...LIMITS, maxMessageBytes: 99 }), /over 99/)
    assert.match(rejected(good, { ...LIMITS, maxMessagesPerBatch: 1 }), /2 messages/)
    // firstSeq below sessionStart; a count of 0; a non-canonical varint; a varint over 2^53 - 1.
    assert.match(rejected(Uint8Array.from([1, 5, 4, 0, 1, 0, 0])), /before sessionStart/)
    assert.match(rejected(Uint8Array.from([1, 0, 0, 0, 0])), /0 messages/)
    assert.match(rejected(Uint8Array.from([1, 0x80, 0x00, 0, 0, 1, 0, 0])), /non-canonical/)
    assert.match(
      rejected(Uint8Array.from([1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 1, 0, 0])),
      /2\^53/,
    )
    assert.match(
      rejected(Uint8Array.from([1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])),
      /too long/,
    )
  })

  it('refuses random bytes without throwing anything but BATCH_INVALID', () => {
    assertProperty(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeBatch(bytes, LIMITS)
        } catch (err) {
          assert.ok(isNodusError(err, 'BATCH_INVALID'), String(err))
        }
      }),
    )
  })
})
