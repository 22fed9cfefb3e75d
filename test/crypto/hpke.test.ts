/**
 * HPKE base mode with X-Wing (src/crypto/hpke.ts) against an independent implementation: `@hpke/core`
 * with `@hpke/hybridkem-x-wing` seals byte for byte what ours seals from the same encapsulation
 * randomness, and each side opens what the other sealed. Then the refusals: any changed byte of enc or
 * ciphertext, another key, another info or aad.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { Aes256Gcm, CipherSuite, HkdfSha256 } from '@hpke/core'
import { XWing } from '@hpke/hybridkem-x-wing'
import fc from 'fast-check'
import { MlKem768 } from 'mlkem'
import { isNodusError } from '../../src/common/errors.ts'
import {
  HPKE_TAG_BYTES,
  hpkeOpen,
  hpkeSeal,
  openWithSharedSecret,
  sealWithSharedSecret,
} from '../../src/crypto/hpke.ts'
import {
  generateXWingKeyPair,
  XWING_HPKE_KEM_ID,
  xwingEncapsulateDerand,
  xwingKeyPairFromSeed,
} from '../../src/crypto/xwing.ts'
import { assertProperty } from '../utils/property.ts'

const vectors = JSON.parse(
  readFileSync(new URL('../../../shared/vectors/crypto/xwing/test-vectors.json', import.meta.url), 'utf8'),
) as { seed: string; eseed: string }[]
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const suite = (): CipherSuite =>
  new CipherSuite({ kem: new XWing(), kdf: new HkdfSha256(), aead: new Aes256Gcm() })

describe('HPKE with X-Wing: interoperability with @hpke/core', () => {
  it('the same encapsulation randomness gives the same enc and ciphertext as @hpke/core', async () => {
    const lib = suite()
    for (const v of vectors) {
      const kp = xwingKeyPairFromSeed(hex(v.seed))
      const eseed = hex(v.eseed)
      const info = text(`info for ${v.seed.slice(0, 8)}`)
      const aad = text('aad')
      const pt = text('a message sealed twice, by two implementations')
      const sender = await lib.createSenderContext({
        recipientPublicKey: await lib.kem.deserializePublicKey(kp.publicKey),
        info,
        ekm: eseed,
      })
      const theirs = new Uint8Array(await sender.seal(pt, aad))
      const [ciphertext, sharedKey] = await new MlKem768().encap(
        kp.publicKey.subarray(0, 1184),
        eseed.subarray(0, 32),
      )
      const kem = xwingEncapsulateDerand(kp.publicKey, eseed, () => ({ sharedKey, ciphertext }))
      assert.deepEqual(kem.ciphertext, new Uint8Array(sender.enc))
      const ours = sealWithSharedSecret(XWING_HPKE_KEM_ID, kem.sharedSecret, pt, { info, aad })
      assert.deepEqual(ours, theirs)
      assert.deepEqual(openWithSharedSecret(XWING_HPKE_KEM_ID, kem.sharedSecret, theirs, { info, aad }), pt)
    }
  })

  it('we open what @hpke/core seals, and it opens what we seal', async () => {
    const lib = suite()
    const kp = generateXWingKeyPair()
    const info = text('nodus test')
    const aad = text('header')
    const pt = new Uint8Array(1000).map((_, i) => i & 0xff)
    const theirs = await lib.seal(
      { recipientPublicKey: await lib.kem.deserializePublicKey(kp.publicKey), info },
      pt,
      aad,
    )
    assert.deepEqual(hpkeOpen(kp, new Uint8Array(theirs.enc), new Uint8Array(theirs.ct), { info, aad }), pt)
    const ours = hpkeSeal(kp.publicKey, pt, { info, aad })
    const opened = await lib.open(
      { recipientKey: await lib.kem.deserializePrivateKey(kp.seed), enc: ours.enc, info },
      ours.ciphertext,
      aad,
    )
    assert.deepEqual(new Uint8Array(opened), pt)
  })
})

describe('HPKE with X-Wing: round trips and refusals', () => {
  it('round-trips empty and large plaintexts; the ciphertext is 16 bytes longer', () => {
    const kp = generateXWingKeyPair()
    for (const n of [0, 1, 256, 70_000]) {
      const pt = new Uint8Array(n).fill(7)
      const { enc, ciphertext } = hpkeSeal(kp.publicKey, pt)
      assert.equal(ciphertext.byteLength, n + HPKE_TAG_BYTES)
      assert.deepEqual(hpkeOpen(kp, enc, ciphertext), pt)
    }
  })

  it('refuses another key, another info and another aad with DECRYPT_FAILED', () => {
    const kp = generateXWingKeyPair()
    const { enc, ciphertext } = hpkeSeal(kp.publicKey, text('secret'), { info: text('i'), aad: text('a') })
    const refused = (e: unknown): boolean => isNodusError(e, 'DECRYPT_FAILED') && e.peerAction === 'reject'
    assert.throws(
      () => hpkeOpen(generateXWingKeyPair(), enc, ciphertext, { info: text('i'), aad: text('a') }),
      refused,
    )
    assert.throws(() => hpkeOpen(kp, enc, ciphertext, { info: text('j'), aad: text('a') }), refused)
    assert.throws(() => hpkeOpen(kp, enc, ciphertext, { info: text('i') }), refused)
    assert.throws(
      () => hpkeOpen(kp, enc.subarray(1), ciphertext, { info: text('i'), aad: text('a') }),
      refused,
    )
    assert.throws(
      () => hpkeOpen(kp, enc, ciphertext.subarray(0, 15), { info: text('i'), aad: text('a') }),
      refused,
    )
    assert.deepEqual(hpkeOpen(kp, enc, ciphertext, { info: text('i'), aad: text('a') }), text('secret'))
  })

  it('refuses info or aad that is not bytes', () => {
    const kp = generateXWingKeyPair()
    assert.throws(
      () => hpkeSeal(kp.publicKey, text('x'), { info: 'info' as unknown as Uint8Array }),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
  })

  it('property: any flipped bit of enc or ciphertext is refused', () => {
    const kp = generateXWingKeyPair()
    const info = text('flip')
    const { enc, ciphertext } = hpkeSeal(kp.publicKey, new Uint8Array(256).fill(1), { info })
    const total = enc.byteLength + ciphertext.byteLength
    assertProperty(
      fc.property(fc.integer({ min: 0, max: total - 1 }), fc.integer({ min: 0, max: 7 }), (at, bit) => {
        const e = new Uint8Array(enc)
        const c = new Uint8Array(ciphertext)
        if (at < e.byteLength) e[at] = (e[at] as number) ^ (1 << bit)
        else c[at - e.byteLength] = (c[at - e.byteLength] as number) ^ (1 << bit)
        assert.throws(
          () => hpkeOpen(kp, e, c, { info }),
          (err) => isNodusError(err, 'DECRYPT_FAILED'),
        )
      }),
      { numRuns: 300 },
    )
  })
})
