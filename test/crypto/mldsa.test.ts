/**
 * ML-DSA-65 (FIPS 204) through node:crypto, against Wycheproof and NIST ACVP vectors.
 *
 * What node:crypto (Node 24.21, OpenSSL 3.5) cannot be asked to do, and so is skipped here:
 * deterministic signing (its ML-DSA signing is always hedged, so expected signatures are checked by
 * verifying them, and our own signatures by round trip), the internal interface (Sign_internal /
 * Verify_internal on M' or on an external mu), and HashML-DSA (preHash). nodus uses none of them.
 */
import assert from 'node:assert/strict'
import { createPrivateKey, createPublicKey, sign } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { identityFromSeeds, verifyMlDsa65 } from '../../src/crypto/index.ts'

const VECTORS = new URL('../../../shared/vectors/crypto/', import.meta.url)
const load = <T>(name: string): T => JSON.parse(readFileSync(new URL(name, VECTORS), 'utf8')) as T
const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'))
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
const ED_SEED = new Uint8Array(32)

interface WycheproofTest {
  tcId: number
  comment: string
  flags: string[]
  msg?: string
  ctx?: string
  sig?: string
  result: string
}

describe('ML-DSA-65, Wycheproof mldsa_65_verify_test (subset)', () => {
  const file = load<{ numberOfTests: number; testGroups: { publicKey: string; tests: WycheproofTest[] }[] }>(
    'wycheproof/mldsa_65_verify_test.subset.json',
  )
  const cases = file.testGroups.flatMap((g) => g.tests.map((t) => ({ pk: g.publicKey, t })))

  it('covers every case in the file', () => {
    assert.equal(cases.length, file.numberOfTests)
  })

  it('verifyMlDsa65 agrees with the expected result on all cases', () => {
    const disagreements: string[] = []
    for (const { pk, t } of cases) {
      assert.ok(t.msg !== undefined && t.sig !== undefined)
      const ok = verifyMlDsa65(fromHex(pk), fromHex(t.msg), fromHex(t.sig), fromHex(t.ctx ?? ''))
      if (ok !== (t.result === 'valid')) {
        disagreements.push(
          `tcId ${t.tcId} (${t.comment}; ${t.flags.join(',')}): expected ${t.result}, got ${ok}`,
        )
      }
    }
    assert.deepEqual(disagreements, [])
  })
})

describe('ML-DSA-65, Wycheproof mldsa_65_sign_seed_test (subset)', () => {
  const file = load<{ testGroups: { privateSeed: string; publicKey: string; tests: WycheproofTest[] }[] }>(
    'wycheproof/mldsa_65_sign_seed_test.subset.json',
  )

  for (const [i, g] of file.testGroups.entries()) {
    const seed = fromHex(g.privateSeed)
    if (seed.length !== 32) {
      it(`group ${i}: a ${seed.length}-byte seed is rejected with KEY_INVALID`, async () => {
        await assert.rejects(identityFromSeeds(ED_SEED, seed), (e) => isNodusError(e, 'KEY_INVALID'))
      })
      continue
    }
    it(`group ${i}: keyGen from seed gives the expected public key; expected signatures verify`, async (t) => {
      const id = await identityFromSeeds(ED_SEED, seed)
      assert.equal(toHex(id.mldsa.publicKey), g.publicKey)
      let internal = 0
      for (const tc of g.tests) {
        if (tc.msg === undefined || tc.sig === undefined) {
          internal++ // external-mu (Sign_internal) case: not reachable through node:crypto
          continue
        }
        const msg = fromHex(tc.msg)
        const ctx = fromHex(tc.ctx ?? '')
        const valid = tc.result === 'valid'
        assert.equal(verifyMlDsa65(id.mldsa.publicKey, msg, fromHex(tc.sig), ctx), valid, `tcId ${tc.tcId}`)
        if (valid) {
          // Node signs hedged only, so our signature differs from the deterministic one: round trip it.
          const ours = sign(null, msg, { key: id.mldsa.privateKey, context: ctx })
          assert.equal(verifyMlDsa65(id.mldsa.publicKey, msg, ours, ctx), true, `tcId ${tc.tcId} round trip`)
        } else {
          assert.throws(() => sign(null, msg, { key: id.mldsa.privateKey, context: ctx }), `tcId ${tc.tcId}`)
        }
      }
      if (internal > 0) t.diagnostic(`${internal} external-mu case(s) skipped (not in node:crypto's API)`)
    })
  }
})

interface AcvpFile<T> {
  testGroups: ({ tgId: number; parameterSet: string; signatureInterface?: string; preHash?: string } & {
    tests: T[]
  })[]
}

describe('ML-DSA-65, NIST ACVP keyGen (subset)', () => {
  const file = load<AcvpFile<{ tcId: number; seed: string; pk: string; sk: string }>>(
    'acvp/ML-DSA-keyGen-FIPS204.internalProjection.subset.json',
  )
  const tests = file.testGroups.filter((g) => g.parameterSet === 'ML-DSA-65').flatMap((g) => g.tests)

  it('has ML-DSA-65 cases', () => assert.ok(tests.length >= 3))

  for (const tc of tests) {
    it(`tcId ${tc.tcId}: seed gives pk and the expanded sk`, async () => {
      const id = await identityFromSeeds(ED_SEED, fromHex(tc.seed))
      assert.equal(toHex(id.mldsa.publicKey).toUpperCase(), tc.pk)
      // Node's default PKCS#8 export is the "both" form: seed, then the 4032-byte expanded sk at the end.
      const der = id.mldsa.privateKey.export({ format: 'der', type: 'pkcs8' })
      assert.equal(toHex(der.subarray(der.length - 4032)).toUpperCase(), tc.sk)
    })
  }
})

describe('ML-DSA-65, NIST ACVP sigVer (subset)', () => {
  const file = load<
    AcvpFile<{
      tcId: number
      testPassed: boolean
      pk: string
      message?: string
      context?: string
      signature: string
      reason: string
    }>
  >('acvp/ML-DSA-sigVer-FIPS204.internalProjection.subset.json')
  const groups = file.testGroups.filter((g) => g.parameterSet === 'ML-DSA-65')

  for (const g of groups) {
    const pure = g.signatureInterface === 'external' && g.preHash === 'pure'
    if (!pure) {
      it.skip(`tgId ${g.tgId} (${g.signatureInterface}/${g.preHash ?? 'none'}): not in node:crypto's API`)
      continue
    }
    for (const tc of g.tests) {
      it(`tgId ${g.tgId} tcId ${tc.tcId}: ${tc.reason}`, () => {
        assert.ok(tc.message !== undefined)
        const ok = verifyMlDsa65(
          fromHex(tc.pk),
          fromHex(tc.message),
          fromHex(tc.signature),
          fromHex(tc.context ?? ''),
        )
        assert.equal(ok, tc.testPassed)
      })
    }
  }
})

describe('ML-DSA-65, NIST ACVP sigGen (subset): expected signatures verify', () => {
  const file = load<
    AcvpFile<{ tcId: number; message?: string; context?: string; sk: string; signature: string }>
  >('acvp/ML-DSA-sigGen-FIPS204.prompt+expectedResults.subset.json')
  const groups = file.testGroups.filter(
    (g) => g.parameterSet === 'ML-DSA-65' && g.signatureInterface === 'external' && g.preHash === 'pure',
  )

  it('has external/pure ML-DSA-65 groups', () => assert.ok(groups.length >= 2))

  for (const g of groups) {
    for (const tc of g.tests) {
      it(`tgId ${g.tgId} tcId ${tc.tcId}: pk derived from the expanded sk verifies the signature`, () => {
        // PKCS#8 expandedKey form: SEQUENCE { 0, { id-ml-dsa-65 }, OCTET STRING { OCTET STRING (4032) } }
        const der = Buffer.concat([
          Buffer.from(
            '30820fd8 020100 300b0609608648016503040312 04820fc4 04820fc0'.replaceAll(' ', ''),
            'hex',
          ),
          Buffer.from(tc.sk, 'hex'),
        ])
        const pk = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }))
        const raw = new Uint8Array(pk.export({ format: 'raw-public' }))
        assert.ok(tc.message !== undefined)
        const msg = fromHex(tc.message)
        const ctx = fromHex(tc.context ?? '')
        assert.equal(verifyMlDsa65(raw, msg, fromHex(tc.signature), ctx), true)
        const other = fromHex(tc.signature)
        other[10] = (other[10] ?? 0) ^ 0x40
        assert.equal(verifyMlDsa65(raw, msg, other, ctx), false)
      })
    }
  }
})

describe('verifyMlDsa65 on malformed input', () => {
  it('returns false on wrong lengths and oversized context, never throws', async () => {
    const id = await identityFromSeeds(ED_SEED, new Uint8Array(32).fill(7))
    const msg = new Uint8Array([1, 2, 3])
    const sig = sign(null, msg, id.mldsa.privateKey)
    assert.equal(verifyMlDsa65(id.mldsa.publicKey, msg, sig), true)
    assert.equal(verifyMlDsa65(id.mldsa.publicKey.subarray(1), msg, sig), false)
    assert.equal(verifyMlDsa65(id.mldsa.publicKey, msg, sig.subarray(1)), false)
    assert.equal(verifyMlDsa65(id.mldsa.publicKey, msg, Buffer.concat([sig, Buffer.of(0)])), false)
    assert.equal(verifyMlDsa65(id.mldsa.publicKey, msg, sig, new Uint8Array(256)), false)
    assert.equal(verifyMlDsa65(new Uint8Array(1952), msg, sig), false)
  })
})
