import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { isNodusError, type NodusError } from '../../src/common/errors.ts'
import { identityFromSeeds, type NodeIdentity } from '../../src/crypto/index.ts'
import {
  CAPACITY_REPORT_DOMAIN,
  type CapacityReport,
  CapacityReportInbox,
  checkReport,
  decodeCapacityReport,
  openCapacityReport,
  signCapacityReport,
} from '../../src/trust/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { signEnvelope } from '../utils/signed-envelope.ts'

const GB = 1e9
const T0 = 1_750_000_000_000

/** The shared fake clock, starting at this file's epoch. */
const clockAt = (): FakeClock => new FakeClock(T0)

let node: NodeIdentity
let other: NodeIdentity
before(async () => {
  node = await identityFromSeeds(new Uint8Array(32).fill(7), new Uint8Array(32).fill(8))
  other = await identityFromSeeds(new Uint8Array(32).fill(9), new Uint8Array(32).fill(8))
})

function report(over: Partial<CapacityReport> = {}): CapacityReport {
  return {
    peer: node.peerId.toString(),
    seq: 1,
    timestampMs: T0,
    freeBytes: 50 * GB,
    capacityBytes: 100 * GB,
    region: 'eu-west',
    networks: ['as24940', 'hetzner'],
    ...over,
  }
}

function rejects(code: string, peerAction?: string) {
  return (e: unknown): boolean => {
    assert.ok(isNodusError(e), `not a NodusError: ${String(e)}`)
    assert.equal((e as NodusError).code, code, (e as NodusError).message)
    if (peerAction !== undefined) assert.equal((e as NodusError).peerAction, peerAction)
    return true
  }
}

const fresh = { nowMs: T0, maxAgeMs: 1_800_000, maxFutureSkewMs: 60_000 }

describe('signed capacity reports', () => {
  it('round-trip', async () => {
    const signed = await signCapacityReport(report(), node)
    assert.ok(signed.bytes.byteLength < 300)
    const opened = await openCapacityReport(signed.bytes, fresh)
    assert.deepEqual(opened.report, report())
  })

  it('only the reporting node may sign, and only a well-formed report', async () => {
    await assert.rejects(signCapacityReport(report(), other), rejects('INVALID_ARGUMENT'))
    await assert.rejects(
      signCapacityReport(report({ freeBytes: 200 * GB }), node),
      rejects('INVALID_ARGUMENT'),
    )
  })

  it('a forged signature is SIGNATURE_INVALID (ban); stale is ignored', async () => {
    const r = report()
    const body = {
      v: 1,
      peer: r.peer,
      seq: 1,
      ts: r.timestampMs,
      free: r.freeBytes,
      cap: r.capacityBytes,
      region: r.region,
      nets: r.networks,
    }
    const forged = (await signEnvelope(CAPACITY_REPORT_DOMAIN, body, other)).bytes
    await assert.rejects(openCapacityReport(forged, fresh), rejects('SIGNATURE_INVALID', 'ban'))
    const signed = await signCapacityReport(r, node)
    await assert.rejects(
      openCapacityReport(signed.bytes, { ...fresh, nowMs: T0 + 1_800_001 }),
      rejects('CAPACITY_REPORT_INVALID', 'ignore'),
    )
  })

  it('rejects malformed reports with CAPACITY_REPORT_INVALID (reject)', async () => {
    const r = report()
    const ok = { v: 1, peer: r.peer, seq: 1, ts: 5, free: 1, cap: 2, region: 'eu-west', nets: ['as1'] }
    const cases: Array<[string, Record<string, unknown>]> = [
      ['free above capacity', { ...ok, free: 3 }],
      ['negative capacity', { ...ok, cap: -1 }],
      ['region pattern', { ...ok, region: 'EU West' }],
      ['region too long', { ...ok, region: 'a'.repeat(65) }],
      ['no networks', { ...ok, nets: [] }],
      ['duplicate networks', { ...ok, nets: ['as1', 'as1'] }],
      ['too many networks', { ...ok, nets: Array.from({ length: 9 }, (_, i) => `as${i}`) }],
      ['network pattern', { ...ok, nets: ['as 1'] }],
      ['extra key', { ...ok, x: 1 }],
      ['peer not a PeerId', { ...ok, peer: 'x' }],
    ]
    for (const [what, body] of cases) {
      const bytes = (await signEnvelope(CAPACITY_REPORT_DOMAIN, body, node)).bytes
      assert.throws(() => decodeCapacityReport(bytes), rejects('CAPACITY_REPORT_INVALID', 'reject'), what)
    }
    assert.throws(() => decodeCapacityReport(new Uint8Array(4096)), rejects('CAPACITY_REPORT_INVALID'))
  })

  it('CapacityReportInbox: replay and rate limit', async () => {
    const clock = clockAt()
    const inbox = new CapacityReportInbox({ clock }, { burst: 1, intervalMs: 60_000 })
    const a = await signCapacityReport(report({ seq: 1 }), node)
    const b = await signCapacityReport(report({ seq: 2 }), node)
    await inbox.receive(a.bytes)
    await assert.rejects(inbox.receive(a.bytes), rejects('CAPACITY_REPORT_INVALID', 'ignore'))
    await assert.rejects(inbox.receive(b.bytes), rejects('RATE_LIMITED'))
    clock.ms += 60_000
    await inbox.receive(b.bytes)
  })
})

describe('checkReport', () => {
  const now = { nowMs: T0 + 60_000 }

  it('a consistent peer raises no issue', () => {
    const c = checkReport(
      report(),
      { accepted: [{ atMs: T0 + 1000, bytes: GB }], refusals: [], heldBytes: 10 * GB, minRttMs: 30 },
      { ...now, ourRegion: 'eu-central', minRegionRttMs: () => 10 },
    )
    assert.deepEqual(c, { consistent: true, stale: false, issues: [] })
  })

  it('STORE_FULL while claiming free space is flagged', () => {
    const c = checkReport(report(), { refusals: [{ atMs: T0 + 5000, bytes: 10_000_000 }] }, now)
    assert.equal(c.consistent, false)
    assert.deepEqual(c.issues, [
      { kind: 'refused-with-free-space', atMs: T0 + 5000, bytes: 10_000_000, expectedFreeBytes: 50 * GB },
    ])
  })

  it('a refusal is fine once our own stores used up the free space, or outside the window', () => {
    const filled = checkReport(
      report({ freeBytes: 6 * GB }),
      { accepted: [{ atMs: T0 + 1000, bytes: 1 * GB }], refusals: [{ atMs: T0 + 2000, bytes: 100e6 }] },
      now, // 6 GB − 1 GB stored − 5 % of 100 GB slack = 0 < 100 MB: no issue
    )
    assert.equal(filled.consistent, true)
    const late = checkReport(report(), { refusals: [{ atMs: T0 + 600_001, bytes: 1 }] }, now)
    assert.equal(late.consistent, true)
    const before = checkReport(report(), { refusals: [{ atMs: T0 - 1, bytes: 1 }] }, now)
    assert.equal(before.consistent, true)
  })

  it('holding more of our data than the report says is used is flagged', () => {
    const c = checkReport(report({ freeBytes: 95 * GB }), { heldBytes: 20 * GB }, now)
    assert.deepEqual(c.issues, [{ kind: 'held-exceeds-used', heldBytes: 20 * GB, usedBytes: 5 * GB }])
    // Shards we stored after the report do not count against it.
    const later = checkReport(
      report({ freeBytes: 95 * GB }),
      { heldBytes: 20 * GB, accepted: [{ atMs: T0 + 10, bytes: 15 * GB }] },
      now,
    )
    assert.equal(later.consistent, true)
  })

  it('a round trip faster than light to the claimed region is flagged', () => {
    const minRegionRttMs = (a: string, b: string): number | undefined =>
      a === b ? 0 : a === 'us-east' && b === 'eu-west' ? 55 : undefined
    const c = checkReport(report(), { minRttMs: 3 }, { ...now, ourRegion: 'us-east', minRegionRttMs })
    assert.deepEqual(c.issues, [{ kind: 'region-implausible', rttMs: 3, minRttMs: 55, region: 'eu-west' }])
    const unknown = checkReport(report(), { minRttMs: 3 }, { ...now, ourRegion: 'ap-south', minRegionRttMs })
    assert.equal(unknown.consistent, true)
  })

  it('an old report is stale, which is not an inconsistency', () => {
    const c = checkReport(report(), {}, { nowMs: T0 + 1_800_001 })
    assert.deepEqual(c, { consistent: true, stale: true, issues: [] })
  })
})
