/**
 * Reconciliation messages: every mode round-trips; garbage, truncations and each broken rule are
 * refused with RECON_MESSAGE_INVALID (peerAction reject) or RECON_VERSION_UNSUPPORTED (ignore),
 * never another error, both by the decoder and by a Reconciler receiving them.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { reconcile } from '../../src/kv/reconcile/harness.ts'
import { Reconciler } from '../../src/kv/reconcile/protocol.ts'
import { decodeMessage, MessageWriter, MIN_MESSAGE_BYTES } from '../../src/kv/reconcile/wire.ts'
import { assertProperty } from '../utils/property.ts'
import { ArraySet, keyOf, keys, RECON_DEFAULTS } from '../utils/recon.ts'

const MAX = 1024 * 1024
const refused = (e: unknown): boolean => isNodusError(e, 'RECON_MESSAGE_INVALID') && e.peerAction === 'reject'

/** A message with one range of every mode, bounds near 2^48. */
function sample(): { bytes: Uint8Array; ks: Uint8Array[] } {
  const ks = keys(6, 1, 2 ** 48 - 1000, 50)
  const w = new MessageWriter(MAX)
  const b1 = (ks[0] as Uint8Array).slice(0, 9)
  const b2 = (ks[2] as Uint8Array).slice(0, 8)
  const b3 = (ks[4] as Uint8Array).slice(0, 40)
  w.fingerprint(b1, 3, new Uint8Array(16).fill(7))
  w.idList(
    b2,
    [ks[0] as Uint8Array, ks[1] as Uint8Array].filter((k) => Buffer.compare(k, b1) >= 0),
  )
  w.idDiff(
    b3,
    [true, false, true, true, false, false, false, false, true],
    [ks[2] as Uint8Array, ks[3] as Uint8Array],
  )
  w.skip(undefined)
  return { bytes: w.finish(), ks }
}

test('every mode round-trips, with bounds and keys near the 48-bit HLC limit', () => {
  const w = new MessageWriter(MAX)
  const ks = keys(5, 2, 2 ** 48 - 100, 5)
  w.fingerprint((ks[1] as Uint8Array).slice(0, 8), 0, new Uint8Array(16))
  w.idList((ks[3] as Uint8Array).slice(0, 12), [ks[1] as Uint8Array, ks[2] as Uint8Array])
  w.idDiff(undefined, [true, false, true], [ks[3] as Uint8Array, ks[4] as Uint8Array])
  const msg = decodeMessage(w.finish(), MAX)
  assert.equal(msg.maxBytes, MAX)
  assert.deepEqual(
    msg.ranges.map((r) => r.mode),
    ['fingerprint', 'idlist', 'iddiff'],
  )
  const [fp, list, diff] = msg.ranges
  assert.ok(fp?.mode === 'fingerprint' && fp.count === 0)
  assert.ok(list?.mode === 'idlist')
  assert.deepEqual(
    list.keys.map((k) => [...k]),
    [[...(ks[1] as Uint8Array)], [...(ks[2] as Uint8Array)]],
  )
  assert.ok(diff?.mode === 'iddiff' && diff.end === undefined)
  assert.deepEqual(diff.lacks, [true, false, true])
  assert.deepEqual(
    diff.keys.map((k) => [...k]),
    [[...(ks[3] as Uint8Array)], [...(ks[4] as Uint8Array)]],
  )
  const max = keyOf(2 ** 48 - 1, 65_535, 1)
  const w2 = new MessageWriter(MIN_MESSAGE_BYTES)
  w2.idList(undefined, [max])
  const back = decodeMessage(w2.finish(), MAX).ranges[0]
  assert.ok(back?.mode === 'idlist')
  assert.deepEqual([...(back.keys[0] as Uint8Array)], [...max])
})

test('random bytes, truncations and byte flips are refused with a typed error or decode', () => {
  const { bytes } = sample()
  assert.equal(decodeMessage(bytes, MAX).ranges.length, 4)
  for (let n = 0; n < bytes.length; n++) {
    try {
      decodeMessage(bytes.subarray(0, n), MAX)
    } catch (e) {
      assert.ok(refused(e) || isNodusError(e, 'RECON_VERSION_UNSUPPORTED'), String(e))
    }
  }
  assertProperty(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(255), (garbage, at, flip) => {
      for (const input of [Uint8Array.of(1, 0x80, 0x20, ...garbage), garbage]) {
        try {
          decodeMessage(input, MAX)
        } catch (e) {
          assert.ok(refused(e) || isNodusError(e, 'RECON_VERSION_UNSUPPORTED'), String(e))
        }
      }
      const mutated = bytes.slice()
      mutated[at % mutated.length] = flip
      try {
        decodeMessage(mutated, MAX)
      } catch (e) {
        assert.ok(refused(e) || isNodusError(e, 'RECON_VERSION_UNSUPPORTED'), String(e))
      }
    }),
  )
})

/** A message: version 1, maxBytes, then `body`. */
const msg = (...body: number[]): Uint8Array => Uint8Array.of(1, 0x80, 0x20, ...body)
const ID = new Array(32).fill(0xab)

test('each rule of the format is enforced', () => {
  // [what, bytes, the reason the error names, limit]
  const cases: [string, Uint8Array, RegExp, number?][] = [
    ['over the limit', new Uint8Array(MIN_MESSAGE_BYTES + 1), /over the limit/, MIN_MESSAGE_BYTES],
    ['maxBytes under 4096', Uint8Array.of(1, 0x10), /maxBytes 16 under/],
    ['unknown mode', msg(0, 4), /unknown mode 4/],
    ['a range after +∞', msg(0, 0, 0, 0), /after \+∞/],
    ['bounds out of order', msg(5, 0, 0, 0, 1, 0, 0, 0), /bounds out of order/],
    ['id prefix over 32 bytes', msg(5, 0, 33, ...ID, 0, 0), /id prefix of 33/],
    ['HLC counter over 2^16', msg(5, 0x80, 0x80, 0x04, 0, 0), /counter/],
    ['bound past 2^48', msg(0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0, 0, 0), /past the 48-bit/],
    ['non-canonical varint', msg(0x85, 0x00, 0, 0, 0), /non-canonical/],
    ['fingerprint truncated', msg(0, 1, 3, 1, 2, 3), /truncated/],
    ['idlist count larger than the message', msg(0, 2, 100, 0, 0, ...ID), /truncated/],
    ['keys out of order', msg(0, 2, 2, 0, 0, ...ID, 0, 0, ...ID), /keys out of order/],
    ['a key past its range', msg(5, 0, 0, 2, 1, 9, 0, ...ID), /past its range/],
    ['a key before its range', msg(5, 0, 1, 0xff, 0, 0, 2, 1, 0, 0, ...ID), /keys out of order/],
    ['bits set past the end of a bitmap', msg(0, 3, 3, 0x0f, 0), /past the end of a bitmap/],
    ['bitmap longer than the message', msg(0, 3, 0x80, 0x01), /truncated/],
  ]
  for (const [name, bytes, reason, max] of cases) {
    assert.throws(
      () => decodeMessage(bytes, max ?? MAX),
      (e) => refused(e) && reason.test((e as Error).message),
      name,
    )
  }
  assert.throws(
    () => decodeMessage(Uint8Array.of(2, 0x80, 0x20), MAX),
    (e) => isNodusError(e, 'RECON_VERSION_UNSUPPORTED') && e.peerAction === 'ignore',
  )
  // The minimal valid messages: nothing (all skipped), and one fingerprint of the empty set.
  assert.equal(decodeMessage(msg(), MAX).ranges.length, 0)
  assert.equal(decodeMessage(msg(0, 1, 0), MAX).ranges.length, 1)
})

test('a Reconciler refuses garbage and an iddiff it never asked for, and is then done', () => {
  const set = new ArraySet(keys(100, 4))
  const fresh = (): Reconciler => new Reconciler({ set }, RECON_DEFAULTS, 'responder')
  assertProperty(
    fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => {
      const r = fresh()
      try {
        r.receive(Uint8Array.of(1, 0x80, 0x20, ...garbage))
      } catch (e) {
        assert.ok(refused(e), String(e))
        assert.ok(r.done)
      }
    }),
  )
  const r = fresh()
  assert.throws(() => r.receive(msg(0, 3, 0, 0)), refused)
  // An iddiff whose bitmap length differs from the idlist it answers.
  const i = new Reconciler({ set: new ArraySet(keys(3, 5)) }, RECON_DEFAULTS, 'initiator')
  i.initiate() // an idlist of 3 keys over everything
  assert.throws(() => i.receive(msg(0, 3, 2, 0, 0)), refused)
  assert.throws(
    () => i.receive(msg()),
    (e) => isNodusError(e, 'INVALID_ARGUMENT'),
  )
  // A responder cannot initiate; an initiator cannot start by receiving.
  assert.throws(
    () => fresh().initiate(),
    (e) => isNodusError(e, 'INVALID_ARGUMENT'),
  )
  const j = new Reconciler({ set }, RECON_DEFAULTS, 'initiator')
  assert.throws(
    () => j.receive(msg()),
    (e) => isNodusError(e, 'INVALID_ARGUMENT'),
  )
  // A well-formed exchange still works after all that.
  const report = reconcile(new Reconciler({ set }, RECON_DEFAULTS, 'initiator'), fresh())
  assert.equal(report.roundTrips, 1)
})
