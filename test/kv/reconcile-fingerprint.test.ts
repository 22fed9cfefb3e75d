/**
 * Fingerprints: the additive summary against a BigInt reference, negentropy v1's hash input (sum as
 * 32 little-endian bytes, then the count as a most-significant-first varint), and item-key helpers
 * up to the 48-bit HLC limit.
 */
import assert from 'node:assert/strict'
import { hash } from 'node:crypto'
import { test } from 'node:test'
import fc from 'fast-check'
import {
  addEncodedSummary,
  addId,
  addSummary,
  decodeSummary,
  emptySummary,
  encodeSummary,
  fingerprint,
  ITEM_KEY_BYTES,
  itemKey,
  keyHlc,
  keyId,
  removeId,
  type Summary,
  separator,
  subSummary,
  summaryEquals,
} from '../../src/kv/reconcile/fingerprint.ts'
import { assertProperty } from '../utils/property.ts'

const MOD = 1n << 256n
const le = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).reverse().toString('hex') || '0'}`)
const le32 = (v: bigint): Buffer => Buffer.from(v.toString(16).padStart(64, '0'), 'hex').reverse()

/** The fingerprint as negentropy's spec states it, from BigInt arithmetic. */
function referenceFingerprint(ids: Uint8Array[]): Buffer {
  const sum = ids.reduce((acc, id) => (acc + le(id)) % MOD, 0n)
  const digits: number[] = []
  let n = ids.length
  do {
    digits.unshift(n % 128)
    n = Math.floor(n / 128)
  } while (n > 0)
  const varint = digits.map((d, i) => (i < digits.length - 1 ? d | 0x80 : d))
  return hash('sha256', Buffer.concat([le32(sum), Buffer.from(varint)]), 'buffer').subarray(0, 16)
}

const idArb = fc.uint8Array({ minLength: 32, maxLength: 32 })
// Ids near 2^256 make every limb carry.
const highIdArb = fc.uint8Array({ minLength: 32, maxLength: 32, min: 0xf0 })

test('the fingerprint is the first 16 bytes of SHA-256(sum mod 2^256 LE ‖ varint count)', () => {
  assertProperty(
    fc.property(fc.array(fc.oneof(idArb, highIdArb), { maxLength: 300 }), (ids) => {
      const s = emptySummary()
      for (const id of ids) addId(s, id)
      assert.equal(s.count, ids.length)
      assert.deepEqual(Buffer.from(fingerprint(s)), referenceFingerprint(ids))
    }),
  )
})

test('golden: the empty set, and a count of 300 encoded most significant digit first (0x82 0x2c)', () => {
  const zero = Buffer.alloc(32)
  assert.deepEqual(
    Buffer.from(fingerprint(emptySummary())),
    hash('sha256', Buffer.concat([zero, Buffer.of(0)]), 'buffer').subarray(0, 16),
  )
  const s: Summary = { count: 300, sum: new Uint32Array(8) }
  assert.deepEqual(
    Buffer.from(fingerprint(s)),
    hash('sha256', Buffer.concat([zero, Buffer.of(0x82, 0x2c)]), 'buffer').subarray(0, 16),
  )
})

test('summaries add and subtract as sets do; the 40-byte encoding round-trips', () => {
  assertProperty(
    fc.property(fc.array(fc.oneof(idArb, highIdArb), { maxLength: 60 }), fc.nat(60), (ids, cut) => {
      const all = emptySummary()
      const left = emptySummary()
      const right = emptySummary()
      ids.forEach((id, i) => {
        addId(all, id)
        addId(i < cut ? left : right, id)
      })
      assert.ok(summaryEquals(addSummary({ count: left.count, sum: left.sum.slice() }, right), all))
      assert.ok(summaryEquals(subSummary({ count: all.count, sum: all.sum.slice() }, right), left))
      const removed = { count: all.count, sum: all.sum.slice() }
      ids.slice(cut).forEach((id) => {
        removeId(removed, id)
      })
      assert.ok(summaryEquals(removed, left))
      assert.ok(summaryEquals(decodeSummary(encodeSummary(all)), all))
      assert.ok(summaryEquals(addEncodedSummary(emptySummary(), encodeSummary(all)), all))
    }),
  )
  const big: Summary = { count: 2 ** 40 + 5, sum: Uint32Array.of(1, 2, 3, 4, 5, 6, 7, 0xffffffff) }
  assert.ok(summaryEquals(decodeSummary(encodeSummary(big)), big))
  assert.ok(summaryEquals(addEncodedSummary(emptySummary(), encodeSummary(big)), big))
})

const hlcArb = fc.record({
  ms: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
  c: fc.integer({ min: 0, max: 65_535 }),
})

test('item keys order by HLC then id, up to ms = 2^48 − 1', () => {
  assertProperty(
    fc.property(hlcArb, hlcArb, idArb, idArb, (h1, h2, id1, id2) => {
      const a = itemKey(h1, id1)
      const b = itemKey(h2, id2)
      assert.equal(a.length, ITEM_KEY_BYTES)
      assert.deepEqual(keyHlc(a), { ms: h1.ms, c: h1.c })
      assert.deepEqual([...keyId(a)], [...id1])
      const byHlc = h1.ms !== h2.ms ? h1.ms - h2.ms : h1.c - h2.c
      const expected = byHlc !== 0 ? byHlc : Buffer.compare(id1, id2)
      assert.equal(Math.sign(Buffer.compare(a, b)), Math.sign(expected))
    }),
  )
})

test('separator(p, q) is the shortest bound, at least the HLC, with p < b ≤ q', () => {
  const pair = fc
    .tuple(hlcArb, idArb, fc.boolean(), hlcArb, idArb)
    .map(([h1, id1, sameHlc, h2, id2]) => {
      const a = itemKey(h1, id1)
      const b = itemKey(sameHlc ? h1 : h2, id2)
      return Buffer.compare(a, b) < 0 ? [a, b] : [b, a]
    })
    .filter(([a, b]) => Buffer.compare(a as Uint8Array, b as Uint8Array) !== 0)
  assertProperty(
    fc.property(pair, ([p, q]) => {
      const s = separator(p as Uint8Array, q as Uint8Array)
      assert.ok(s.length >= 8 && s.length <= 40)
      assert.ok(Buffer.compare(p as Uint8Array, s) < 0)
      assert.ok(Buffer.compare(s, q as Uint8Array) <= 0)
      // One byte shorter (down to 8) would not separate them.
      if (s.length > 8) assert.ok(Buffer.compare(p as Uint8Array, s.subarray(0, s.length - 1)) >= 0)
    }),
  )
})
