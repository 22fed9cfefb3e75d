import assert from 'node:assert/strict'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import fc from 'fast-check'
import { base32 } from 'multiformats/bases/base32'
import { base58btc } from 'multiformats/bases/base58'
import { isNodusError } from '../../src/common/errors.ts'
import {
  didKeyFromEd25519,
  ed25519FromDidKey,
  isValidEd25519PublicKey,
  x25519FromEd25519,
  x25519Multikey,
  x25519PrivateFromEd25519Seed,
} from '../../src/crypto/index.ts'
import { assertProperty } from '../utils/property.ts'

// w3c-ccg/did-method-key test-vectors/ed25519-x25519.json, read in place from ../shared/vectors.
const VECTORS = new URL('../../../shared/vectors/did/did-key-ed25519-x25519.json', import.meta.url)

interface Jwk {
  x: string
  d?: string
}
interface KeyPair {
  id: string
  publicKeyBase58?: string
  privateKeyBase58?: string
  publicKeyJwk?: Jwk
  privateKeyJwk?: Jwk
}
interface DidVector {
  seed: string
  verificationKeyPair: KeyPair
  keyAgreementKeyPair: KeyPair
  didDocument?: { id: string; keyAgreement?: string[] }
}

const vectors = JSON.parse(readFileSync(VECTORS, 'utf8')) as Record<string, DidVector>
const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'))

/** A key pair's public (or private) key bytes, from base58 or from its JWK. */
function keyBytes(pair: KeyPair, which: 'public' | 'private'): Uint8Array {
  const b58 = which === 'public' ? pair.publicKeyBase58 : pair.privateKeyBase58
  if (b58 !== undefined) return base58btc.decode(`z${b58}`)
  const jwk = which === 'public' ? pair.publicKeyJwk : pair.privateKeyJwk
  const value = which === 'public' ? jwk?.x : jwk?.d
  assert.ok(value !== undefined)
  return new Uint8Array(Buffer.from(value, 'base64url'))
}

/** X25519 public key of a private key, computed by node:crypto (RFC 7748 scalar multiplication). */
function x25519Public(privateKey: Uint8Array): Uint8Array {
  const key = createPrivateKey({
    key: Buffer.from(privateKey),
    format: 'raw-private',
    asymmetricKeyType: 'x25519',
  })
  return new Uint8Array(createPublicKey(key).export({ format: 'raw-public' }))
}

describe('did:key vectors (w3c-ccg did-method-key ed25519-x25519)', () => {
  const entries = Object.entries(vectors)
  it('has 5 vectors', () => assert.equal(entries.length, 5))

  for (const [did, v] of entries) {
    it(`${did}`, async () => {
      const key = await generateKeyPairFromSeed('Ed25519', fromHex(v.seed))
      const pub = key.publicKey.raw
      assert.deepEqual(pub, keyBytes(v.verificationKeyPair, 'public'))
      assert.equal(didKeyFromEd25519(pub), did)
      assert.deepEqual(ed25519FromDidKey(did), pub)
      if (v.didDocument !== undefined) assert.equal(v.didDocument.id, did)

      // key agreement: X25519 public from the Ed25519 public key, private from the seed
      const x = x25519FromEd25519(pub)
      assert.deepEqual(x, keyBytes(v.keyAgreementKeyPair, 'public'))
      assert.equal(v.keyAgreementKeyPair.id.split('#')[1], x25519Multikey(x))
      const xPriv = x25519PrivateFromEd25519Seed(fromHex(v.seed))
      assert.deepEqual(xPriv, keyBytes(v.keyAgreementKeyPair, 'private'))
      assert.deepEqual(x25519Public(xPriv), x)
      for (const ref of v.didDocument?.keyAgreement ?? []) assert.equal(ref, `${did}#${x25519Multikey(x)}`)
    })
  }
})

describe('ed25519FromDidKey rejects', () => {
  const good = Object.keys(vectors)[0] ?? ''
  const goodKey = ed25519FromDidKey(good)
  const multikey = (prefix: number[], key: Uint8Array): string =>
    `did:key:${base58btc.encode(Uint8Array.from([...prefix, ...key]))}`
  const cases: [string, unknown][] = [
    ['empty', ''],
    ['not a string', 42],
    ['other method', good.replace('did:key:', 'did:web:')],
    ['fragment', `${good}#${good.slice(8)}`],
    ['bad base58', 'did:key:z6Mk0OIl'],
    ['base32 multibase', `did:key:${base32.encode(Uint8Array.from([0xed, 0x01, ...goodKey]))}`],
    ['x25519 multicodec', multikey([0xec, 0x01], goodKey)],
    ['truncated key', multikey([0xed, 0x01], goodKey.subarray(1))],
    ['long key', multikey([0xed, 0x01], Uint8Array.from([...goodKey, 0]))],
    [
      'identity point',
      multikey(
        [0xed, 0x01],
        Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0)),
      ),
    ],
    ['order-2 point (y = -1)', multikey([0xed, 0x01], fromHex(`ec${'ff'.repeat(30)}7f`))],
    ['non-canonical y >= p', multikey([0xed, 0x01], fromHex(`ee${'ff'.repeat(30)}7f`))],
    ['huge input', `did:key:z${'1'.repeat(10_000)}`],
  ]
  for (const [name, input] of cases) {
    it(name, () => {
      assert.throws(
        () => ed25519FromDidKey(input as string),
        (e) => isNodusError(e, 'KEY_INVALID'),
      )
    })
  }
})

describe('Ed25519 public key validation', () => {
  it('rejects small-order points and wrong lengths in didKeyFromEd25519 and x25519FromEd25519', () => {
    const identity = new Uint8Array(32)
    identity[0] = 1
    for (const bad of [identity, new Uint8Array(32), new Uint8Array(31)]) {
      assert.equal(isValidEd25519PublicKey(bad), false)
      assert.throws(
        () => didKeyFromEd25519(bad),
        (e) => isNodusError(e, 'KEY_INVALID'),
      )
      assert.throws(
        () => x25519FromEd25519(bad),
        (e) => isNodusError(e, 'KEY_INVALID'),
      )
    }
  })

  it('property: for random seeds, did:key round-trips and x25519 public matches node:crypto X25519', async () => {
    await assertProperty(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), async (edSeed) => {
        const pub = (await generateKeyPairFromSeed('Ed25519', edSeed)).publicKey.raw
        assert.equal(isValidEd25519PublicKey(pub), true)
        assert.deepEqual(ed25519FromDidKey(didKeyFromEd25519(pub)), pub)
        assert.deepEqual(x25519FromEd25519(pub), x25519Public(x25519PrivateFromEd25519Seed(edSeed)))
      }),
      { numRuns: 50 },
    )
  })
})
