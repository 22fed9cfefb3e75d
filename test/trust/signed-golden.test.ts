/**
 * Golden bytes of the signed trust vector and capacity report: a fixed record signed with a fixed
 * (seeded) key must encode to exactly these bytes, and these bytes must decode and verify back to the
 * record. Ed25519 (RFC 8032) is deterministic, so the whole envelope is pinned. Nodes of earlier
 * versions send and accept these bytes: a change here is a wire-format change.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { identityFromSeeds } from '../../src/crypto/index.ts'
import {
  type CapacityReport,
  CapacityReportInbox,
  decodeCapacityReport,
  decodeTrustVector,
  openCapacityReport,
  openTrustVector,
  signCapacityReport,
  signTrustVector,
  type TrustVector,
  TrustVectorInbox,
} from '../../src/trust/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'

const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const T0 = 1_750_000_000_000

const alice = await identityFromSeeds(seed(1), seed(2))
const rated = (await Promise.all([10, 11].map((b) => identityFromSeeds(seed(b), seed(2)))))
  .map((id) => id.peerId.toString())
  .sort()

const vector: TrustVector = {
  issuer: alice.peerId.toString(),
  seq: 42,
  timestampMs: T0,
  entries: [
    [rated[0] as string, 600_000],
    [rated[1] as string, 400_000],
  ],
}

const report: CapacityReport = {
  peer: alice.peerId.toString(),
  seq: 7,
  timestampMs: T0,
  freeBytes: 50_000_000_000,
  capacityBytes: 100_000_000_000,
  region: 'eu-west',
  networks: ['as24940', 'hetzner'],
}

const TRUST_VECTOR_HEX =
  'a26373696758406210cd72164a0141e765f7962175a3bf0f9d347eb6d05df0fc032e20548a3d2e9ecec227da9148156c' +
  '89f0737b68b3762a078ef99c9b76c4b8aee65b8921270c64626f6479a56176016274731b000001977420dc0063736571' +
  '182a666973737565727834313244334b6f6f574b3939566f56784e4537587a79427758457a573778684b374770763835' +
  '72394633563366794b53554b50483567656e747269657382827834313244334b6f6f57454e544c694377776f5677594e' +
  '624b4645666d4e64794847316a784e6e396f504232394a65655a58576a41621a000927c0827834313244334b6f6f5747' +
  '6a53453765437535663150613870477873636d6f456364513542524d477162794d764c32646872504353351a00061a80'
const CAPACITY_REPORT_HEX =
  'a2637369675840224e18617dd34151bb668c11dbddb90a71f0baca984aedb714f0a3e7827add7c70595406706d5406c2' +
  '1f23693e950de7230b7d7c2b32881832697f08292ecf0664626f6479a86176016274731b000001977420dc0063636170' +
  '1b000000174876e800637365710764667265651b0000000ba43b7400646e657473826761733234393430676865747a6e' +
  '657264706565727834313244334b6f6f574b3939566f56784e4537587a79427758457a573778684b3747707638357239' +
  '4633563366794b53554b50483566726567696f6e6765752d77657374'

const fresh = { nowMs: T0, maxAgeMs: 60_000, maxFutureSkewMs: 60_000 }

describe('golden bytes: trust vector', () => {
  it('encodes a fixed vector with a fixed key to the pinned bytes', async () => {
    const signed = await signTrustVector(vector, alice)
    assert.equal(hex(signed.bytes), TRUST_VECTOR_HEX)
  })

  it('decodes and verifies the pinned bytes back to the vector', async () => {
    const bytes = unhex(TRUST_VECTOR_HEX)
    assert.deepEqual(decodeTrustVector(bytes).vector, vector)
    const opened = await openTrustVector(bytes, fresh)
    assert.deepEqual(opened.vector, vector)
    assert.equal(hex(opened.bytes), TRUST_VECTOR_HEX)
    const inbox = new TrustVectorInbox({ clock: new FakeClock(T0) })
    assert.deepEqual((await inbox.receive(bytes)).vector, vector)
  })
})

describe('golden bytes: capacity report', () => {
  it('encodes a fixed report with a fixed key to the pinned bytes', async () => {
    const signed = await signCapacityReport(report, alice)
    assert.equal(hex(signed.bytes), CAPACITY_REPORT_HEX)
  })

  it('decodes and verifies the pinned bytes back to the report', async () => {
    const bytes = unhex(CAPACITY_REPORT_HEX)
    assert.deepEqual(decodeCapacityReport(bytes).report, report)
    assert.deepEqual((await openCapacityReport(bytes, fresh)).report, report)
    const inbox = new CapacityReportInbox({ clock: new FakeClock(T0) })
    assert.deepEqual((await inbox.receive(bytes)).report, report)
  })
})
