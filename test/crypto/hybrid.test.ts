import assert from 'node:assert/strict'
import { sign } from 'node:crypto'
import { describe, it } from 'node:test'
import {
  HYBRID_CONTEXT,
  type HybridPublicKey,
  type HybridSignature,
  hybridPublicKey,
  identityFromSeeds,
  signHybrid,
  verifyEd25519,
  verifyHybrid,
  verifyMlDsa65,
} from '../../src/crypto/index.ts'

const seedA = new Uint8Array(32).fill(1)
const seedB = new Uint8Array(32).fill(2)
const message = new TextEncoder().encode('manifest bytes')

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const out = Uint8Array.from(bytes)
  out[index] = (out[index] ?? 0) ^ 0x01
  return out
}

describe('hybrid signatures', async () => {
  const id = await identityFromSeeds(seedA, seedB)
  const other = await identityFromSeeds(seedB, seedA)
  const pub = hybridPublicKey(id)
  const sig = await signHybrid(id, message)

  it('has the documented shapes', () => {
    assert.equal(pub.ed25519.length, 32)
    assert.equal(pub.mldsa65.length, 1952)
    assert.equal(sig.ed25519.length, 64)
    assert.equal(sig.mldsa65.length, 3309)
  })

  it('round trips', () => {
    assert.equal(verifyHybrid(pub, message, sig), true)
  })

  it('signs the empty message', async () => {
    const empty = new Uint8Array(0)
    assert.equal(verifyHybrid(pub, empty, await signHybrid(id, empty)), true)
  })

  it('rejects a tampered message', () => {
    assert.equal(verifyHybrid(pub, flip(message, 0), sig), false)
    assert.equal(verifyHybrid(pub, message.subarray(1), sig), false)
  })

  it('rejects a tampered Ed25519 half', () => {
    assert.equal(verifyHybrid(pub, message, { ...sig, ed25519: flip(sig.ed25519, 5) }), false)
  })

  it('rejects a tampered ML-DSA-65 half', () => {
    assert.equal(verifyHybrid(pub, message, { ...sig, mldsa65: flip(sig.mldsa65, 100) }), false)
  })

  it('rejects halves mixed from two signers, and the wrong public key', async () => {
    const otherSig = await signHybrid(other, message)
    assert.equal(verifyHybrid(pub, message, { ed25519: sig.ed25519, mldsa65: otherSig.mldsa65 }), false)
    assert.equal(verifyHybrid(pub, message, { ed25519: otherSig.ed25519, mldsa65: sig.mldsa65 }), false)
    assert.equal(verifyHybrid(hybridPublicKey(other), message, sig), false)
    assert.equal(
      verifyHybrid({ ed25519: pub.ed25519, mldsa65: hybridPublicKey(other).mldsa65 }, message, sig),
      false,
    )
  })

  it('is domain-separated: neither half is a plain signature of the message', () => {
    assert.equal(verifyEd25519(pub.ed25519, message, sig.ed25519), false)
    assert.equal(verifyMlDsa65(pub.mldsa65, message, sig.mldsa65), false)
    const ctx = new TextEncoder().encode(HYBRID_CONTEXT)
    assert.equal(verifyMlDsa65(pub.mldsa65, message, sig.mldsa65, ctx), true)
    const prefixed = new Uint8Array([...ctx, 0, ...message])
    assert.equal(verifyEd25519(pub.ed25519, prefixed, sig.ed25519), true)
  })

  it('rejects plain (non-hybrid) signatures of the message', async () => {
    const plain: HybridSignature = {
      ed25519: await id.ed25519.sign(message),
      mldsa65: new Uint8Array(sign(null, message, id.mldsa.privateKey)),
    }
    assert.equal(verifyHybrid(pub, message, plain), false)
  })

  it('returns false on malformed input, never throws', () => {
    const bad: [string, HybridPublicKey, Uint8Array, HybridSignature][] = [
      ['short ed25519 sig', pub, message, { ...sig, ed25519: sig.ed25519.subarray(1) }],
      ['long ed25519 sig', pub, message, { ...sig, ed25519: new Uint8Array([...sig.ed25519, 0]) }],
      ['short mldsa sig', pub, message, { ...sig, mldsa65: sig.mldsa65.subarray(1) }],
      ['long mldsa sig', pub, message, { ...sig, mldsa65: new Uint8Array([...sig.mldsa65, 0]) }],
      ['empty sigs', pub, message, { ed25519: new Uint8Array(0), mldsa65: new Uint8Array(0) }],
      ['short ed25519 key', { ...pub, ed25519: pub.ed25519.subarray(1) }, message, sig],
      ['short mldsa key', { ...pub, mldsa65: pub.mldsa65.subarray(1) }, message, sig],
      ['zero keys', { ed25519: new Uint8Array(32), mldsa65: new Uint8Array(1952) }, message, sig],
      ['not bytes', { ed25519: 'x', mldsa65: 5 } as unknown as HybridPublicKey, message, sig],
      ['null sig', pub, message, null as unknown as HybridSignature],
      ['null key', null as unknown as HybridPublicKey, message, sig],
      ['missing fields', {} as HybridPublicKey, message, {} as HybridSignature],
      ['message not bytes', pub, 'text' as unknown as Uint8Array, sig],
    ]
    for (const [name, k, m, s] of bad) assert.equal(verifyHybrid(k, m, s), false, name)
  })
})
