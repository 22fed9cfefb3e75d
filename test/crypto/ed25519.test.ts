import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { signEd25519, verifyEd25519 } from '../../src/crypto/index.ts'

// Vectors read in place from ../shared/vectors (see its README.md for origins).
const VECTORS = new URL('../../../shared/vectors/crypto/', import.meta.url)
const load = <T>(name: string): T => JSON.parse(readFileSync(new URL(name, VECTORS), 'utf8')) as T
const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'))

interface Rfc8032Vector {
  name: string
  secretKey: string
  publicKey: string
  message: string
  signature: string
}

interface WycheproofEddsa {
  numberOfTests: number
  testGroups: {
    publicKey: { pk: string }
    tests: { tcId: number; comment: string; flags: string[]; msg: string; sig: string; result: string }[]
  }[]
}

describe('Ed25519, RFC 8032 §7.1', () => {
  for (const v of load<Rfc8032Vector[]>('rfc8032_ed25519.json')) {
    it(`TEST ${v.name}: libp2p key from seed signs the expected signature; verifyEd25519 accepts it`, async () => {
      // The node identity's Ed25519 key is a libp2p key (identityFromSeeds uses the same call).
      const key = await generateKeyPairFromSeed('Ed25519', fromHex(v.secretKey))
      assert.equal(Buffer.from(key.publicKey.raw).toString('hex'), v.publicKey)
      const sig = await key.sign(fromHex(v.message))
      assert.equal(Buffer.from(sig).toString('hex'), v.signature)
      // signEd25519 (a cached OpenSSL key object) signs the same bytes, on the first call and after.
      for (let i = 0; i < 2; i++)
        assert.equal(Buffer.from(signEd25519(key, fromHex(v.message))).toString('hex'), v.signature)
      assert.equal(verifyEd25519(fromHex(v.publicKey), fromHex(v.message), fromHex(v.signature)), true)
      const tampered = fromHex(v.signature)
      tampered[0] = (tampered[0] ?? 0) ^ 1
      assert.equal(verifyEd25519(fromHex(v.publicKey), fromHex(v.message), tampered), false)
    })
  }
})

describe('Ed25519, Wycheproof ed25519_test.json (verifyEd25519 = node:crypto / OpenSSL)', () => {
  const file = load<WycheproofEddsa>('wycheproof/ed25519_test.json')
  const cases = file.testGroups.flatMap((g) => g.tests.map((t) => ({ pk: g.publicKey.pk, t })))

  it('covers every case in the file', () => {
    assert.equal(cases.length, file.numberOfTests)
    assert.equal(cases.length, 151)
  })

  it('agrees with the expected result on all cases', () => {
    const disagreements: string[] = []
    for (const { pk, t } of cases) {
      const ok = verifyEd25519(fromHex(pk), fromHex(t.msg), fromHex(t.sig))
      if (ok !== (t.result === 'valid')) {
        disagreements.push(
          `tcId ${t.tcId} (${t.comment}; ${t.flags.join(',')}): expected ${t.result}, got ${ok}`,
        )
      }
    }
    assert.deepEqual(disagreements, [])
  })
})

describe('verifyEd25519 on malformed input', () => {
  const pk = new Uint8Array(32)
  const sig = new Uint8Array(64)
  it('returns false, never throws', () => {
    assert.equal(verifyEd25519(new Uint8Array(31), new Uint8Array(0), sig), false)
    assert.equal(verifyEd25519(pk, new Uint8Array(0), new Uint8Array(63)), false)
    assert.equal(verifyEd25519(pk, new Uint8Array(0), new Uint8Array(65)), false)
    assert.equal(verifyEd25519(pk, new Uint8Array(0), sig), false)
    assert.equal(verifyEd25519(null as unknown as Uint8Array, new Uint8Array(0), sig), false)
  })
})
