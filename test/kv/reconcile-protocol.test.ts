/**
 * Reconciliation reaches the exact differences from every divergence pattern (random, clustered, one
 * side empty, disjoint extras on both sides, identical), on the reference set and on the index, with
 * timestamps up to 2^48 − 1; within O(log_B n) round trips; within the message limit, continuing over
 * more rounds when it binds; and the round limit ends a session with a typed error.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { Registry } from 'prom-client'
import { isNodusError } from '../../src/common/errors.ts'
import { seededRandom } from '../../src/common/random.ts'
import { createKvReconMetrics } from '../../src/kv/metrics.ts'
import type { KvReconOptions } from '../../src/kv/options.ts'
import { reconcile, type SessionReport } from '../../src/kv/reconcile/harness.ts'
import { Reconciler, type ReconcileSet } from '../../src/kv/reconcile/protocol.ts'
import { MIN_MESSAGE_BYTES } from '../../src/kv/reconcile/wire.ts'
import { assertProperty } from '../utils/property.ts'
import { ArraySet, indexedSet, keys, RECON_DEFAULTS } from '../utils/recon.ts'

const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex')
const minus = (a: Uint8Array[], b: Uint8Array[]): string[] => {
  const drop = new Set(b.map(hex))
  return a
    .map(hex)
    .filter((h) => !drop.has(h))
    .sort()
}

function session(a: ReconcileSet, b: ReconcileSet, options: KvReconOptions = RECON_DEFAULTS): SessionReport {
  const i = new Reconciler({ set: a }, options, 'initiator')
  const r = new Reconciler({ set: b }, options, 'responder')
  const report = reconcile(i, r)
  assert.ok(i.done && r.done, 'both sides are done')
  return report
}

/** Both sides learned exactly A \ B and B \ A. */
function assertExact(report: SessionReport, a: Uint8Array[], b: Uint8Array[]): void {
  assert.deepEqual(report.initiatorNeed.map(hex), minus(b, a), 'initiator need = B \\ A')
  assert.deepEqual(report.initiatorHave.map(hex), minus(a, b), 'initiator have = A \\ B')
  assert.deepEqual(report.responderNeed.map(hex), minus(a, b), 'responder need = A \\ B')
  assert.deepEqual(report.responderHave.map(hex), minus(b, a), 'responder have = B \\ A')
}

type Pattern = 'random' | 'random1' | 'clustered' | 'one-empty' | 'disjoint-extras' | 'identical' | 'recent'

/** Two replicas of a set of `n` ops diverging by `pattern`. */
function diverge(
  n: number,
  pattern: Pattern,
  seed: number,
  nearLimit: boolean,
): [Uint8Array[], Uint8Array[]] {
  // Near the 48-bit limit: ms in the last ~2^20 ms below 2^48 (and counters anywhere below 2^16).
  const base = keys(n, seed, nearLimit ? 2 ** 48 - 2 ** 21 : 1_700_000_000_000, nearLimit ? 100 : 10)
  const rnd = seededRandom(seed ^ 0x5a5a)
  const pick = (p: number): Uint8Array[] => base.filter(() => rnd.next() < p)
  switch (pattern) {
    case 'identical':
      return [base, base]
    case 'random':
    case 'random1': {
      const p = pattern === 'random' ? 0.05 : 0.005
      const dropA = new Set(pick(p).map(hex))
      const dropB = new Set(pick(p).map(hex))
      return [base.filter((k) => !dropA.has(hex(k))), base.filter((k) => !dropB.has(hex(k)))]
    }
    case 'clustered': {
      const from = Math.floor(rnd.next() * n)
      const len = Math.floor(rnd.next() * n * 0.3)
      return [base, [...base.slice(0, from), ...base.slice(from + len)]]
    }
    case 'recent':
      return [base, base.slice(0, Math.floor(n * 0.9))]
    case 'one-empty':
      return rnd.next() < 0.5 ? [base, []] : [[], base]
    case 'disjoint-extras': {
      const extraA = keys(Math.floor(n / 10) + 1, seed + 1)
      const extraB = keys(Math.floor(n / 10) + 1, seed + 2)
      return [[...base, ...extraA].sort(Buffer.compare), [...base, ...extraB].sort(Buffer.compare)]
    }
  }
}

const patterns: Pattern[] = ['random', 'clustered', 'one-empty', 'disjoint-extras', 'identical', 'recent']

test('every divergence pattern reconciles to the exact differences (reference sets, random options)', () => {
  assertProperty(
    fc.property(
      fc.integer({ min: 0, max: 700 }),
      fc.constantFrom(...patterns),
      fc.integer({ min: 1, max: 2 ** 31 }),
      fc.boolean(),
      fc.record({
        reconSplitFactor: fc.integer({ min: 2, max: 32 }),
        reconIdListThreshold: fc.integer({ min: 1, max: 64 }),
        reconMaxMessageBytes: fc.constantFrom(MIN_MESSAGE_BYTES, 6000, 64 * 1024, 1024 * 1024),
        reconMaxRounds: fc.constant(10_000),
      }),
      (n, pattern, seed, nearLimit, options) => {
        const [a, b] = diverge(n, pattern, seed, nearLimit)
        const report = session(new ArraySet(a), new ArraySet(b), { ...options })
        assertExact(report, a, b)
        const limit = Math.min(options.reconMaxMessageBytes, 1024 * 1024)
        for (const size of report.messageBytes) assert.ok(size <= limit, `message of ${size} bytes`)
        if (pattern === 'identical') assert.equal(report.roundTrips, 1)
      },
    ),
    { numRuns: 150 },
  )
})

test('every divergence pattern reconciles between two fingerprint indexes (timestamps near 2^48)', async () => {
  await assertProperty(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 3000 }),
      fc.constantFrom(...patterns),
      fc.integer({ min: 1, max: 2 ** 31 }),
      fc.boolean(),
      async (n, pattern, seed, nearLimit) => {
        const [a, b] = diverge(n, pattern, seed, nearLimit)
        const A = await indexedSet(a, seed)
        const B = await indexedSet(b, seed + 1)
        const report = session(A.set, B.set)
        assertExact(report, a, b)
      },
    ),
    { numRuns: 30 },
  )
})

test('round trips stay within (log_B(n / 32) + 2) / 2 + 1 as n grows (1% random differences, index sets)', async (t) => {
  for (const n of [1000, 10_000, 100_000]) {
    const [a, b] = diverge(n, 'random1', 42, false)
    const report = session((await indexedSet(a)).set, (await indexedSet(b, 2)).set)
    assertExact(report, a, b)
    // One message per level of splitting (log_16(n / 32) levels), then an idlist and its iddiff;
    // two messages a round trip, and one spare for a level the split points make uneven.
    const bound = Math.ceil((Math.log(n / 32) / Math.log(16) + 2) / 2) + 1
    t.diagnostic(
      `n=${n}: ${report.roundTrips} round trips, ${report.initiatorBytes + report.responderBytes} bytes`,
    )
    assert.ok(report.roundTrips <= bound, `${report.roundTrips} round trips at n=${n} (bound ${bound})`)
  }
})

test('in sync: one round trip under 1 KB; a small message limit still converges over more rounds', async () => {
  const all = keys(20_000, 3)
  const A = await indexedSet(all)
  const B = await indexedSet(all, 2)
  const inSync = session(A.set, B.set)
  assert.equal(inSync.roundTrips, 1)
  assert.ok(inSync.initiatorBytes + inSync.responderBytes < 1024)

  const small = { ...RECON_DEFAULTS, reconMaxMessageBytes: MIN_MESSAGE_BYTES, reconMaxRounds: 10_000 }
  const empty = await indexedSet([])
  const bulk = session(empty.set, A.set, small)
  assertExact(bulk, [], all)
  assert.ok(bulk.messageBytes.every((s) => s <= MIN_MESSAGE_BYTES))
  // 20,000 keys of ~34 bytes through 4 KiB messages: about 170 answers carrying keys.
  assert.ok(bulk.roundTrips >= 150 && bulk.roundTrips <= 400, `${bulk.roundTrips} round trips`)
})

test('more rounds than reconMaxRounds end the session with RECON_ROUNDS_EXCEEDED; metrics count it', () => {
  const registry = new Registry()
  const metrics = createKvReconMetrics(registry)
  const a = new ArraySet(keys(3000, 1))
  const b = new ArraySet([])
  const options = { ...RECON_DEFAULTS, reconMaxMessageBytes: MIN_MESSAGE_BYTES, reconMaxRounds: 3 }
  const i = new Reconciler({ set: b, metrics }, options, 'initiator')
  const r = new Reconciler({ set: a, metrics }, options, 'responder')
  assert.throws(
    () => reconcile(i, r),
    (e) => isNodusError(e, 'RECON_ROUNDS_EXCEEDED') && e.peerAction === 'ignore',
  )
  assert.ok(i.done || r.done)
  assert.throws(
    () => (r.done ? r : i).receive(new Uint8Array(1)),
    (e) => isNodusError(e, 'INVALID_ARGUMENT'),
  )
})

test('metrics: messages, bytes, differences and finished sessions', async () => {
  const registry = new Registry()
  const metrics = createKvReconMetrics(registry)
  const [a, b] = diverge(2000, 'random', 9, false)
  const report = reconcile(
    new Reconciler({ set: new ArraySet(a), metrics }, RECON_DEFAULTS, 'initiator'),
    new Reconciler({ set: new ArraySet(b), metrics }, RECON_DEFAULTS, 'responder'),
  )
  const value = async (name: string, labels: Record<string, string>): Promise<number> => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name)
    const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l))
    return v?.value ?? 0
  }
  const total = report.initiatorBytes + report.responderBytes
  assert.equal(await value('nodus_kv_recon_bytes_total', { direction: 'sent' }), total)
  assert.equal(await value('nodus_kv_recon_bytes_total', { direction: 'received' }), total)
  assert.equal(
    await value('nodus_kv_recon_messages_total', { direction: 'sent' }),
    report.messageBytes.length,
  )
  const diffs = minus(a, b).length + minus(b, a).length
  assert.equal(await value('nodus_kv_recon_differences_total', { side: 'need' }), diffs)
  assert.equal(await value('nodus_kv_recon_sessions_total', { role: 'initiator', result: 'done' }), 1)
  assert.equal(await value('nodus_kv_recon_sessions_total', { role: 'responder', result: 'done' }), 1)
})
