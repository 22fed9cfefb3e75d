/**
 * X-Wing (draft-connolly-cfrg-xwing-kem-10) against the draft's vectors in
 * ../shared/vectors/crypto/xwing/test-vectors.json (read in place): key generation from the seed,
 * derandomized encapsulation from `eseed`, decapsulation; plus round trips with fresh randomness and
 * the refusals (bad lengths, ML-KEM modulus check, small-order X25519).
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { MlKem768 } from 'mlkem'
import { isNodusError } from '../../src/common/errors.ts'
import { blake3 } from '../../src/crypto/blake3.ts'
import {
  generateXWingKeyPair,
  parseXWingPublicKey,
  XWING_CIPHERTEXT_BYTES,
  XWING_PUBLIC_KEY_BYTES,
  xwingDecapsulate,
  xwingEncapsulate,
  xwingEncapsulateDerand,
  xwingKeyId,
  xwingKeyPairFromSeed,
} from '../../src/crypto/xwing.ts'

interface Vector {
  seed: string
  sk: string
  pk: string
  eseed: string
  ct: string
  ss: string
}

const vectors = JSON.parse(
  readFileSync(new URL('../../../shared/vectors/crypto/xwing/test-vectors.json', import.meta.url), 'utf8'),
) as Vector[]
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

describe('X-Wing: the draft vectors', () => {
  it('the file has the three vectors of draft -10 Appendix C', () => {
    assert.equal(vectors.length, 3)
    for (const v of vectors) assert.equal(v.sk, v.seed, 'the decapsulation key is the seed (draft ≥ -06)')
  })

  for (const [i, v] of vectors.entries()) {
    it(`vector ${i}: key generation from the seed gives pk`, () => {
      const kp = xwingKeyPairFromSeed(hex(v.seed))
      assert.equal(toHex(kp.publicKey), v.pk)
      assert.equal(toHex(kp.seed), v.sk)
      assert.deepEqual(kp.keyId, blake3(hex(v.pk)))
      assert.deepEqual(xwingKeyId(kp.publicKey), kp.keyId)
    })

    it(`vector ${i}: decapsulating ct gives ss`, () => {
      const kp = xwingKeyPairFromSeed(hex(v.seed))
      assert.equal(toHex(xwingDecapsulate(kp, hex(v.ct))), v.ss)
    })

    it(`vector ${i}: derandomized encapsulation from eseed gives ct and ss`, async () => {
      // node:crypto has no derandomized ML-KEM; ML-KEM-768.EncapsDerand comes from the `mlkem` package,
      // the X25519 half and the combiner are ours.
      const eseed = hex(v.eseed)
      const pkM = hex(v.pk).subarray(0, 1184)
      const [ciphertext, sharedKey] = await new MlKem768().encap(pkM, eseed.subarray(0, 32))
      const out = xwingEncapsulateDerand(hex(v.pk), eseed, (pk, m) => {
        assert.deepEqual(pk, pkM)
        assert.deepEqual(m, eseed.subarray(0, 32))
        return { sharedKey, ciphertext }
      })
      assert.equal(toHex(out.ciphertext), v.ct)
      assert.equal(toHex(out.sharedSecret), v.ss)
    })
  }
})

describe('X-Wing: round trips and refusals', () => {
  it('encapsulate then decapsulate agree; fresh randomness each time', () => {
    const kp = generateXWingKeyPair()
    assert.equal(kp.publicKey.byteLength, XWING_PUBLIC_KEY_BYTES)
    const a = xwingEncapsulate(kp.publicKey)
    const b = xwingEncapsulate(parseXWingPublicKey(kp.publicKey))
    assert.equal(a.ciphertext.byteLength, XWING_CIPHERTEXT_BYTES)
    assert.deepEqual(xwingDecapsulate(kp, a.ciphertext), a.sharedSecret)
    assert.deepEqual(xwingDecapsulate(kp, b.ciphertext), b.sharedSecret)
    assert.notDeepEqual(a.ciphertext, b.ciphertext)
    assert.notDeepEqual(a.sharedSecret, b.sharedSecret)
  })

  it('another key pair decapsulates to another secret (ML-KEM implicit rejection, no error)', () => {
    const kp = generateXWingKeyPair()
    const other = generateXWingKeyPair()
    const { ciphertext, sharedSecret } = xwingEncapsulate(kp.publicKey)
    assert.notDeepEqual(xwingDecapsulate(other, ciphertext), sharedSecret)
    const flipped = new Uint8Array(ciphertext)
    flipped[10] = (flipped[10] as number) ^ 1
    assert.notDeepEqual(xwingDecapsulate(kp, flipped), sharedSecret)
  })

  it('a parsed key is reused for the same bytes and parsed again when the array changed', () => {
    const kp = generateXWingKeyPair()
    const other = generateXWingKeyPair()
    const bytes = new Uint8Array(kp.publicKey)
    const first = parseXWingPublicKey(bytes)
    assert.equal(parseXWingPublicKey(bytes), first)
    bytes.set(other.publicKey)
    const again = parseXWingPublicKey(bytes)
    assert.notEqual(again, first)
    const { ciphertext, sharedSecret } = xwingEncapsulate(bytes)
    assert.deepEqual(xwingDecapsulate(other, ciphertext), sharedSecret)
  })

  it('refuses seeds, keys and ciphertexts of the wrong length', () => {
    const kp = generateXWingKeyPair()
    assert.throws(
      () => xwingKeyPairFromSeed(new Uint8Array(31)),
      (e) => isNodusError(e, 'KEY_INVALID'),
    )
    assert.throws(
      () => xwingEncapsulate(kp.publicKey.subarray(0, 1215)),
      (e) => isNodusError(e, 'KEY_INVALID'),
    )
    assert.throws(
      () => xwingDecapsulate(kp, new Uint8Array(XWING_CIPHERTEXT_BYTES - 1)),
      (e) => isNodusError(e, 'DECRYPT_FAILED') && e.peerAction === 'reject',
    )
  })

  it('refuses an encapsulation key whose ML-KEM part fails the FIPS 203 modulus check', () => {
    const pk = new Uint8Array(generateXWingKeyPair().publicKey)
    // The first 12-bit coefficient set to 0xfff ≥ q = 3329.
    pk[0] = 0xff
    pk[1] = (pk[1] as number) | 0x0f
    assert.throws(
      () => xwingEncapsulate(pk),
      (e) => isNodusError(e, 'KEY_INVALID') && /modulus/.test(e.message),
    )
  })

  it('refuses a small-order X25519 point on either side (OpenSSL refuses an all-zero secret)', () => {
    const kp = generateXWingKeyPair()
    const pk = new Uint8Array(kp.publicKey)
    pk.fill(0, 1184) // u = 0, order 1
    assert.throws(
      () => xwingEncapsulate(pk),
      (e) => isNodusError(e, 'KEY_INVALID'),
    )
    const { ciphertext } = xwingEncapsulate(kp.publicKey)
    const ct = new Uint8Array(ciphertext)
    ct.fill(0, 1088)
    assert.throws(
      () => xwingDecapsulate(kp, ct),
      (e) => isNodusError(e, 'DECRYPT_FAILED') && e.details.reason === 'small-order',
    )
  })
})
