import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import {
  hybridPublicKey,
  identityFromSeeds,
  type SignatureCheck,
  SignatureVerifier,
  signEd25519,
  signHybrid,
  verifySignatureCheck,
} from '../../src/crypto/index.ts'
import { packChecks, unpackChecks } from '../../src/crypto/verify-batch.ts'
import { VerifyPool } from '../../src/crypto/verify-pool.ts'
import { assertProperty } from '../utils/property.ts'

const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const alice = await identityFromSeeds(seed(1), seed(2))
const bob = await identityFromSeeds(seed(3), seed(4))
const msg = (i: number): Uint8Array => new TextEncoder().encode(`message ${i}`)

type Ed25519Check = Extract<SignatureCheck, { scheme: 'ed25519' }>
const good = (i: number): Ed25519Check => ({
  scheme: 'ed25519',
  publicKey: alice.ed25519.publicKey.raw,
  message: msg(i),
  signature: signEd25519(alice.ed25519, msg(i)),
})
const wrongKey = (i: number): Ed25519Check => ({ ...good(i), publicKey: bob.ed25519.publicKey.raw })
const wrongMessage = (i: number): Ed25519Check => ({ ...good(i), message: msg(i + 1) })
const shortSig = (i: number): Ed25519Check => {
  const c = good(i)
  return { ...c, signature: c.signature.subarray(1) }
}
const hybridGood: SignatureCheck = {
  scheme: 'hybrid',
  publicKey: hybridPublicKey(alice),
  message: msg(0),
  signature: await signHybrid(alice, msg(0)),
}
const hybridBadMl: SignatureCheck = {
  ...hybridGood,
  publicKey: { ...hybridPublicKey(alice), mldsa65: hybridPublicKey(bob).mldsa65 },
} as SignatureCheck

/** Checks and their expected answers. */
const cases: [SignatureCheck, boolean][] = [
  [good(1), true],
  [wrongKey(2), false],
  [good(3), true],
  [wrongMessage(4), false],
  [shortSig(5), false],
  [hybridGood, true],
  [hybridBadMl, false],
  [{ scheme: 'nope' } as unknown as SignatureCheck, false],
  [good(6), true],
]

const pool = new VerifyPool({ threads: 1, maxBatch: 4, maxQueued: 64 })
after(() => pool.close())

describe('SignatureVerifier', () => {
  it('answers true or false, never throws, and keeps at most maxKeys key objects', () => {
    const v = new SignatureVerifier(1)
    for (const [c, want] of cases) assert.equal(v.verify(c), want)
    assert.equal(v.size, 1)
    for (const [c, want] of cases) assert.equal(verifySignatureCheck(c), want)
  })
})

describe('verify batches', () => {
  it('pack and unpack to the same checks, leaving malformed ones out (property)', () => {
    assertProperty(
      fc.property(fc.array(fc.nat(cases.length - 1), { maxLength: 20 }), (picks) => {
        const checks = picks.map((i) => (cases[i] as [SignatureCheck, boolean])[0])
        const { packed, malformed } = packChecks(checks)
        const kept = checks.filter((_, i) => !malformed.includes(i))
        assert.equal(unpackChecks(packed).length, kept.length)
        for (const [i, c] of unpackChecks(packed).entries()) {
          assert.equal(verifySignatureCheck(c), verifySignatureCheck(kept[i] as SignatureCheck))
        }
        for (const i of malformed) assert.equal(verifySignatureCheck(checks[i] as SignatureCheck), false)
      }),
    )
  })
})

describe('VerifyPool', () => {
  it('verifies in a worker: bad signatures are false, not errors, in order', async () => {
    assert.deepEqual(
      await pool.verifyMany(cases.map(([c]) => c)),
      cases.map(([, want]) => want),
    )
    // One at a time, more than a batch, in one turn: all answered, each its own.
    const many = Array.from({ length: 11 }, (_, i) => (i % 3 === 0 ? wrongKey(i) : good(i)))
    assert.deepEqual(
      await Promise.all(many.map((c) => pool.verify(c))),
      many.map((_, i) => i % 3 !== 0),
    )
    assert.equal(pool.queued, 0)
  })

  it('verifies inline with threads 0, the same answers', async () => {
    const inline = new VerifyPool({ threads: 0, maxBatch: 4, maxQueued: 1 })
    assert.equal(inline.threads, 0)
    assert.deepEqual(
      await inline.verifyMany(cases.map(([c]) => c)),
      cases.map(([, want]) => want),
    )
    await inline.close()
    await assert.rejects(inline.verify(good(1)), (e) => isNodusError(e, 'ABORTED'))
  })

  it('verifies a small batch inline (inlineMaxBatch) while no task is in flight, a larger one in a worker', async () => {
    const p = new VerifyPool({ threads: 1, maxBatch: 4, maxQueued: 64, inlineMaxBatch: 2 })
    assert.deepEqual(await Promise.all([p.verify(good(1)), p.verify(wrongKey(2))]), [true, false])
    assert.equal(p.inlineVerified, 2)
    const three = [good(3), wrongMessage(4), good(5)]
    assert.deepEqual(await Promise.all(three.map((c) => p.verify(c))), [true, false, true])
    assert.equal(p.inlineVerified, 2, 'three checks in a turn went to the worker')
    assert.deepEqual(await p.verifyMany([shortSig(6)]), [false])
    assert.equal(p.inlineVerified, 3)
    await p.close()
  })

  it('refuses beyond maxQueued with QUEUE_FULL, and takes checks again once answered', async () => {
    const small = new VerifyPool({ threads: 1, maxBatch: 2, maxQueued: 3 })
    const first = [small.verify(good(1)), small.verify(good(2)), small.verify(wrongKey(3))]
    assert.equal(small.queued, 3)
    await assert.rejects(small.verify(good(4)), (e) => isNodusError(e, 'QUEUE_FULL'))
    await assert.rejects(small.verifyMany([good(5)]), (e) => isNodusError(e, 'QUEUE_FULL'))
    assert.deepEqual(await Promise.all(first), [true, true, false])
    assert.equal(small.queued, 0)
    // All or nothing: three of four would fit, none is queued.
    await assert.rejects(small.verifyMany([good(1), good(2), good(3), good(4)]), (e) =>
      isNodusError(e, 'QUEUE_FULL'),
    )
    assert.equal(small.queued, 0)
    assert.deepEqual(await small.verifyMany([good(1), wrongMessage(2), good(3)]), [true, false, true])
    await small.close()
  })

  it('honours AbortSignal: before, and while waiting; the others are still answered', async () => {
    const aborted = AbortSignal.abort()
    await assert.rejects(pool.verify(good(1), { signal: aborted }), (e) => isNodusError(e, 'ABORTED'))
    const ctl = new AbortController()
    const kept = pool.verify(good(2))
    const dropped = pool.verify(good(3), { signal: ctl.signal })
    ctl.abort()
    await assert.rejects(dropped, (e) => isNodusError(e, 'ABORTED'))
    assert.equal(await kept, true)
  })

  it('close fails what waits with ABORTED, is idempotent, and refuses new checks', async () => {
    const p = new VerifyPool({ threads: 1, maxBatch: 64, maxQueued: 64 })
    const waiting = p.verify(good(1))
    const closing = p.close()
    await assert.rejects(waiting, (e) => isNodusError(e, 'ABORTED'))
    await closing
    await p.close()
    await assert.rejects(p.verify(good(2)), (e) => isNodusError(e, 'ABORTED'))
  })

  it('refuses options out of range', () => {
    for (const o of [
      { threads: -1, maxBatch: 1, maxQueued: 1 },
      { threads: 1, maxBatch: 0, maxQueued: 1 },
      { threads: 1, maxBatch: 1, maxQueued: 0 },
    ]) {
      assert.throws(
        () => new VerifyPool(o),
        (e) => isNodusError(e, 'INVALID_ARGUMENT'),
      )
    }
  })
})
