/** The signed-record-with-authority check: signatures, authority, revision steps, accountability. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { NodusError } from '../../src/common/errors.ts'
import { hybridPublicKey, identityFromSeeds, signEd25519, signHybrid } from '../../src/crypto/index.ts'
import {
  ANY_SIGNER,
  accountableSigner,
  checkSignedRecord,
  refuseVerified,
  type SignedRecord,
} from '../../src/trust/index.ts'

const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)

describe('checkSignedRecord', async () => {
  const alice = await identityFromSeeds(seed(1), seed(2))
  const mallory = await identityFromSeeds(seed(3), seed(4))
  const aliceId = alice.peerId.toString()
  const malloryId = mallory.peerId.toString()
  const message = new TextEncoder().encode('nodus/test-record/v1 body')
  const hybrid = async (revision?: number): Promise<SignedRecord> => ({
    kind: 'test record',
    signer: aliceId,
    message,
    signature: {
      scheme: 'hybrid',
      publicKey: hybridPublicKey(alice),
      signature: await signHybrid(alice, message),
    },
    revision,
  })
  const ed = (id = alice, revision?: number): SignedRecord => ({
    kind: 'test record',
    signer: id.peerId.toString(),
    message,
    signature: { scheme: 'ed25519', signature: signEd25519(id.ed25519, message) },
    revision,
  })
  const rules = (last: number, who: string[] = [aliceId]) => ({
    authority: new Set(who),
    sequence: { last, maxStep: 16 },
  })
  const fails = (fn: () => unknown, code: string, peerAction: string, accountable: string | undefined) => {
    let caught: unknown
    try {
      fn()
    } catch (err) {
      caught = err
    }
    assert.ok(caught instanceof NodusError, 'no NodusError thrown')
    assert.equal(caught.code, code)
    assert.equal(caught.peerAction, peerAction)
    assert.equal(accountableSigner(caught), accountable)
    return caught
  }

  it('accepts a valid record from an authorized signer within the step (hybrid and Ed25519)', async () => {
    assert.deepEqual(checkSignedRecord(await hybrid(5), rules(4)), {
      kind: 'test record',
      signer: aliceId,
      revision: 5,
    })
    assert.equal(checkSignedRecord(await hybrid(20), rules(4)).revision, 20, 'last + maxStep is allowed')
    assert.equal(checkSignedRecord(ed(alice, 2), rules(1)).signer, aliceId)
    // No sequence: the revision is not looked at.
    assert.equal(checkSignedRecord(ed(), { authority: ANY_SIGNER }).revision, undefined)
  })

  it('refuses a signer without authority, and holds it accountable', async () => {
    fails(() => checkSignedRecord(ed(mallory, 5), rules(4)), 'NOT_AUTHORIZED', 'reject', malloryId)
    // The same record passes when the authority has the signer.
    assert.equal(checkSignedRecord(ed(mallory, 5), rules(4, [malloryId])).signer, malloryId)
  })

  it('refuses a bad signature without blaming the named signer', async () => {
    const r = await hybrid(5)
    const sig = r.signature as Extract<SignedRecord['signature'], { scheme: 'hybrid' }>
    const flipped = new Uint8Array(sig.signature.mldsa65)
    flipped[100] = (flipped[100] as number) ^ 1
    const tampered: SignedRecord = {
      ...r,
      signature: { ...sig, signature: { ...sig.signature, mldsa65: flipped } },
    }
    fails(() => checkSignedRecord(tampered, rules(4)), 'SIGNATURE_INVALID', 'ban', undefined)
    // Another message under a valid signature.
    fails(
      () => checkSignedRecord({ ...r, message: new Uint8Array([1, 2, 3]) }, rules(4)),
      'SIGNATURE_INVALID',
      'ban',
      undefined,
    )
    // Mallory names Alice as signer: Alice's key does not verify Mallory's signature.
    fails(
      () => checkSignedRecord({ ...ed(mallory, 5), signer: aliceId }, rules(4)),
      'SIGNATURE_INVALID',
      'ban',
      undefined,
    )
    // A hybrid key that is not the one in the signer's PeerId.
    const other: SignedRecord = {
      ...r,
      signature: {
        ...sig,
        publicKey: hybridPublicKey(mallory),
        signature: await signHybrid(mallory, message),
      },
    }
    fails(() => checkSignedRecord(other, rules(4)), 'SIGNATURE_INVALID', 'ban', undefined)
    fails(
      () => checkSignedRecord({ ...r, signer: 'not a peer id' }, rules(4)),
      'SIGNATURE_INVALID',
      'ban',
      undefined,
    )
  })

  it('refuses a revision too far ahead, accountable, and an absurd one', async () => {
    const err = fails(() => checkSignedRecord(ed(alice, 21), rules(4)), 'REVISION_INVALID', 'reject', aliceId)
    assert.equal(err.details.reason, 'too-far')
    fails(
      () => checkSignedRecord(ed(alice, Number.MAX_SAFE_INTEGER), rules(4)),
      'REVISION_INVALID',
      'reject',
      aliceId,
    )
    const missing = fails(() => checkSignedRecord(ed(alice), rules(4)), 'REVISION_INVALID', 'reject', aliceId)
    assert.equal(missing.details.reason, 'missing')
    fails(() => checkSignedRecord(ed(alice, 2 ** 60), rules(4)), 'REVISION_INVALID', 'reject', aliceId)
  })

  it('drops a revision that is not newer (ignore, nobody blamed), before any signature work', async () => {
    const same = fails(
      () => checkSignedRecord(ed(alice, 4), rules(4)),
      'REVISION_INVALID',
      'ignore',
      undefined,
    )
    assert.equal(same.details.reason, 'stale')
    fails(() => checkSignedRecord(ed(alice, 1), rules(4)), 'REVISION_INVALID', 'ignore', undefined)
    // Even with a broken signature, a stale record is only dropped.
    const broken: SignedRecord = { ...ed(alice, 3), message: new Uint8Array([9]) }
    fails(() => checkSignedRecord(broken, rules(4)), 'REVISION_INVALID', 'ignore', undefined)
  })

  it('refuseVerified marks a later refusal as accountable; other errors are not', () => {
    const v = checkSignedRecord(ed(alice, 5), rules(4))
    const err = refuseVerified(v, 'MANIFEST_INVALID', 'does not apply')
    assert.equal(accountableSigner(err), aliceId)
    assert.equal(err.peerAction, 'reject')
    assert.equal(accountableSigner(new NodusError('MANIFEST_INVALID', 'x')), undefined)
    assert.equal(accountableSigner(new Error('x')), undefined)
  })
})
