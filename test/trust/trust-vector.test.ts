import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import { isNodusError, type NodusError } from '../../src/common/errors.ts'
import { identityFromSeeds, type NodeIdentity } from '../../src/crypto/index.ts'
import {
  decodeTrustVector,
  EigenTrust,
  InteractionRecords,
  MAX_TRUST_VECTOR_ENTRIES,
  openTrustVector,
  signTrustVector,
  TRUST_VECTOR_DOMAIN,
  TRUST_WEIGHT_SCALE,
  type TrustVector,
  TrustVectorInbox,
  trustVectorFromLocalTrust,
} from '../../src/trust/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { assertProperty } from '../utils/property.ts'
import { signEnvelope } from '../utils/signed-envelope.ts'

/** The shared fake clock, starting at this file's epoch. */
const clockAt = (): FakeClock => new FakeClock(1_750_000_000_000)

const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
let alice: NodeIdentity
let bob: NodeIdentity
const peers: string[] = []

before(async () => {
  alice = await identityFromSeeds(seed(1), seed(2))
  bob = await identityFromSeeds(seed(3), seed(4))
  for (let i = 0; i < 6; i++) peers.push((await identityFromSeeds(seed(10 + i), seed(2))).peerId.toString())
  peers.sort()
})

const fresh = (clock: FakeClock) => ({ nowMs: clock.now(), maxAgeMs: 3_600_000, maxFutureSkewMs: 60_000 })

function vector(clock: FakeClock, seq = 1): TrustVector {
  return trustVectorFromLocalTrust(alice.peerId.toString(), seq, clock.now(), [
    [peers[0] as string, 3],
    [peers[1] as string, 1],
  ])
}

/** Encode a raw (possibly invalid) body signed by `signer`. */
async function raw(body: Record<string, unknown>, signer: NodeIdentity = alice): Promise<Uint8Array> {
  return (await signEnvelope(TRUST_VECTOR_DOMAIN, body, signer)).bytes
}

function rejects(code: string, peerAction?: string) {
  return (e: unknown): boolean => {
    assert.ok(isNodusError(e), `not a NodusError: ${String(e)}`)
    assert.equal((e as NodusError).code, code, (e as NodusError).message)
    if (peerAction !== undefined) assert.equal((e as NodusError).peerAction, peerAction)
    return true
  }
}

describe('trustVectorFromLocalTrust', () => {
  it('keeps the top N positive entries, quantised to ppm (Σ ≤ 1e6), sorted by peer, without the issuer', () => {
    const issuer = alice.peerId.toString()
    const local: Array<[string, number]> = [
      [peers[3] as string, 1],
      [peers[0] as string, 2],
      [issuer, 100],
      [peers[1] as string, 0],
      [peers[2] as string, 3],
    ]
    const v = trustVectorFromLocalTrust(issuer, 7, 1000, local, 2)
    assert.deepEqual(v.entries, [
      [peers[0], 400_000],
      [peers[2], 600_000],
    ])
    assert.equal(v.seq, 7)
    const all = trustVectorFromLocalTrust(issuer, 7, 1000, local)
    assert.ok(all.entries.reduce((a, [, w]) => a + w, 0) <= TRUST_WEIGHT_SCALE)
    assert.throws(() => trustVectorFromLocalTrust(issuer, -1, 0, []), rejects('INVALID_ARGUMENT'))
    assert.throws(() => trustVectorFromLocalTrust(issuer, 0, 0, [], 257), rejects('INVALID_ARGUMENT'))
  })

  it('from InteractionRecords', () => {
    const r = new InteractionRecords()
    r.record(peers[0] as string, 'shard-served', 3)
    r.record(peers[1] as string, 'audit-failed')
    const v = trustVectorFromLocalTrust(alice.peerId.toString(), 1, 1, r.entries())
    assert.deepEqual(v.entries, [[peers[0], TRUST_WEIGHT_SCALE]])
  })
})

describe('signed trust vectors', () => {
  it('round-trip: sign, decode, verify; entries feed EigenTrust', async () => {
    const clock = clockAt()
    const signed = await signTrustVector(vector(clock), alice)
    const opened = await openTrustVector(signed.bytes, fresh(clock))
    assert.deepEqual(opened.vector, vector(clock))
    assert.ok(signed.bytes.byteLength < 400)
    const et = new EigenTrust({ preTrusted: [alice.peerId.toString()] })
    et.setLocalTrust(opened.vector.issuer, opened.vector.entries)
    const r = et.compute()
    assert.ok(et.score(peers[0] as string) > et.score(peers[1] as string))
    assert.equal(r.converged, true)
  })

  it('only the issuer may sign', async () => {
    await assert.rejects(signTrustVector(vector(clockAt()), bob), rejects('INVALID_ARGUMENT'))
  })

  it('a signature by another key is SIGNATURE_INVALID (ban)', async () => {
    const clock = clockAt()
    const v = vector(clock)
    const forged = await raw(
      { v: 1, issuer: v.issuer, seq: v.seq, ts: v.timestampMs, entries: v.entries },
      bob,
    )
    await assert.rejects(openTrustVector(forged, fresh(clock)), rejects('SIGNATURE_INVALID', 'ban'))
    // A valid signature over different content does not verify either.
    const signed = await signTrustVector(v, alice)
    const env = dagCbor.decode(signed.bytes) as { body: Record<string, unknown>; sig: Uint8Array }
    const tampered = dagCbor.encode({ body: { ...env.body, seq: 2 }, sig: env.sig })
    await assert.rejects(openTrustVector(tampered, fresh(clock)), rejects('SIGNATURE_INVALID', 'ban'))
  })

  it('stale or future vectors are ignored (not held against the sender)', async () => {
    const clock = clockAt()
    const signed = await signTrustVector(vector(clock), alice)
    clock.ms += 3_600_001
    await assert.rejects(
      openTrustVector(signed.bytes, fresh(clock)),
      rejects('TRUST_VECTOR_INVALID', 'ignore'),
    )
    clock.ms -= 3_600_001 + 60_001
    await assert.rejects(
      openTrustVector(signed.bytes, fresh(clock)),
      rejects('TRUST_VECTOR_INVALID', 'ignore'),
    )
  })

  it('rejects malformed vectors with TRUST_VECTOR_INVALID (reject)', async () => {
    const issuer = alice.peerId.toString()
    const [p0, p1] = peers as [string, string]
    const ok = { v: 1, issuer, seq: 1, ts: 5, entries: [[p0, 10]] }
    const cases: Array<[string, Record<string, unknown>]> = [
      ['extra key', { ...ok, extra: 1 }],
      ['missing key', { v: 1, issuer, seq: 1, ts: 5 }],
      ['version', { ...ok, v: 2 }],
      ['issuer not a PeerId', { ...ok, issuer: 'not-a-peer' }],
      ['negative seq', { ...ok, seq: -1 }],
      ['float ts', { ...ok, ts: 1.5 }],
      ['entries not a list', { ...ok, entries: { a: 1 } }],
      ['entry not a pair', { ...ok, entries: [[p0]] }],
      ['entry peer invalid', { ...ok, entries: [['zz', 1]] }],
      ['zero weight', { ...ok, entries: [[p0, 0]] }],
      ['weight above scale', { ...ok, entries: [[p0, TRUST_WEIGHT_SCALE + 1]] }],
      [
        'weights sum above scale',
        {
          ...ok,
          entries: [
            [p0, 600_000],
            [p1, 600_000],
          ],
        },
      ],
      [
        'unsorted',
        {
          ...ok,
          entries: [
            [p1, 1],
            [p0, 1],
          ],
        },
      ],
      [
        'duplicate',
        {
          ...ok,
          entries: [
            [p0, 1],
            [p0, 1],
          ],
        },
      ],
      ['self rating', { ...ok, entries: [[issuer, 1]] }],
      ['too many', { ...ok, entries: Array.from({ length: MAX_TRUST_VECTOR_ENTRIES + 1 }, () => [p0, 1]) }],
    ]
    for (const [what, body] of cases) {
      const bytes = await raw(body)
      assert.throws(() => decodeTrustVector(bytes), rejects('TRUST_VECTOR_INVALID', 'reject'), what)
    }
    const sig = new Uint8Array(64)
    for (const [what, bytes] of [
      ['not cbor', Uint8Array.of(0xff, 0x00)],
      ['no envelope', dagCbor.encode([1, 2])],
      ['short sig', dagCbor.encode({ body: ok, sig: new Uint8Array(63) })],
      ['extra envelope key', dagCbor.encode({ body: ok, sig, x: 1 })],
      ['too large', new Uint8Array(64 * 1024)],
    ] as const) {
      assert.throws(() => decodeTrustVector(bytes), rejects('TRUST_VECTOR_INVALID', 'reject'), what)
    }
  })

  it('an issuer without an inline Ed25519 key is rejected', async () => {
    const secp = await generateKeyPair('secp256k1')
    const issuer = peerIdFromPrivateKey(secp).toString()
    const bytes = dagCbor.encode({
      body: { v: 1, issuer, seq: 1, ts: 5, entries: [] },
      sig: new Uint8Array(64),
    })
    const clock = { nowMs: 5, maxAgeMs: 10, maxFutureSkewMs: 10 }
    await assert.rejects(openTrustVector(bytes, clock), rejects('TRUST_VECTOR_INVALID', 'reject'))
  })

  it('hostile bytes only ever raise typed errors', async () => {
    const clock = clockAt()
    const good = (await signTrustVector(vector(clock), alice)).bytes
    const mutated = fc
      .tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 }), fc.nat(good.length))
      .map(([i, x, cut]) => {
        const b = good.slice(0, Math.max(1, cut))
        if (i < b.length) b[i] = ((b[i] as number) ^ x) & 0xff
        return b
      })
    await assertProperty(
      fc.asyncProperty(fc.oneof(mutated, fc.uint8Array({ maxLength: 300 })), async (bytes) => {
        try {
          await openTrustVector(bytes, fresh(clock))
        } catch (e) {
          assert.ok(
            isNodusError(e, 'TRUST_VECTOR_INVALID') || isNodusError(e, 'SIGNATURE_INVALID'),
            `unexpected error ${String(e)}`,
          )
        }
      }),
      { numRuns: 300 },
    )
  })
})

describe('TrustVectorInbox', () => {
  it('accepts fresh vectors, drops replays, rate-limits per issuer', async () => {
    const clock = clockAt()
    const inbox = new TrustVectorInbox({ clock }, { intervalMs: 60_000, burst: 2 })
    const v1 = await signTrustVector(vector(clock, 1), alice)
    const v2 = await signTrustVector(vector(clock, 2), alice)
    const v3 = await signTrustVector(vector(clock, 3), alice)
    assert.equal((await inbox.receive(v1.bytes)).vector.seq, 1)
    await assert.rejects(inbox.receive(v1.bytes), rejects('TRUST_VECTOR_INVALID', 'ignore'))
    await inbox.receive(v2.bytes)
    await assert.rejects(inbox.receive(v3.bytes), rejects('RATE_LIMITED', 'ignore'))
    clock.ms += 60_000
    await inbox.receive(v3.bytes)
    assert.equal(inbox.lastSeq(alice.peerId.toString()), 3)
  })

  it('forged vectors naming an issuer do not spend its tokens', async () => {
    const clock = clockAt()
    const inbox = new TrustVectorInbox({ clock }, { intervalMs: 60_000, burst: 1 })
    const v = vector(clock, 5)
    for (let seq = 1; seq <= 3; seq++) {
      const forged = await raw({ v: 1, issuer: v.issuer, seq, ts: v.timestampMs, entries: v.entries }, bob)
      await assert.rejects(inbox.receive(forged), rejects('SIGNATURE_INVALID', 'ban'))
    }
    await inbox.receive((await signTrustVector(v, alice)).bytes)
  })
})
