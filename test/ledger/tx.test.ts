/**
 * The ledger transaction envelope (src/ledger/tx.ts): golden bytes (a fixed key and body give fixed
 * bytes and id: a change here is a wire-format change), round trips of every kind, strict decoding,
 * bounds, forged signatures, token ids.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import {
  decodeTx,
  encodeTx,
  MAX_COMMITTEE_TX_BYTES,
  MAX_TX_BYTES,
  type TxAction,
  tokenId,
  txSigningBytes,
  verifiedTx,
  verifyTx,
} from '../../src/ledger/index.ts'
import { assertProperty } from '../utils/property.ts'
import { acct, CHAIN, signer } from './helpers.ts'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const alice = await signer(1)
const bob = await signer(2)

const invalid = (reason: RegExp) => (err: unknown) =>
  isNodusError(err, 'LEDGER_TX_INVALID') &&
  err.peerAction === 'reject' &&
  reason.test(String(err.details.reason))

/** An envelope around a hand-made body map (signature blank: decoding does not check it). */
const envelopeOf = (body: Record<string, unknown>): Uint8Array =>
  dagCbor.encode({ sig: new Uint8Array(64), body: dagCbor.encode(body) })
const base = { v: 1, chain: CHAIN, from: acct(7), nonce: 0 }

const actions: TxAction[] = [
  { kind: 'transfer', to: acct(2), amount: 5 },
  { kind: 'transfer', to: acct(2), amount: 5, token: acct(9) },
  { kind: 'mint', token: acct(9), to: acct(2), amount: 1 },
  { kind: 'burn', token: acct(9), amount: 2 ** 53 - 1 },
  { kind: 'token.create', name: 'credits.v1' },
  { kind: 'charge', purpose: 'job', amount: 3, ref: new Uint8Array(64) },
  { kind: 'charge', purpose: 'vote', amount: 3 },
  { kind: 'mana.configure', account: acct(3), capacity: 2 ** 43, regenPerSecond: 0 },
]

describe('ledger transactions', () => {
  it('encode a fixed transaction to fixed bytes and id (golden)', async () => {
    const tx = await encodeTx(
      { chain: CHAIN, nonce: 7, kind: 'transfer', to: bob.publicKey, amount: 1234 },
      alice,
    )
    assert.equal(tx.bytes.byteLength, 229)
    assert.equal(
      hex(tx.id),
      GOLDEN_ID,
      'the envelope format changed: a new format needs a new domain (nodus/ledger-tx/v2)',
    )
  })

  it('round-trip every kind, signed and verified', async () => {
    for (const action of actions) {
      const tx = await encodeTx({ chain: CHAIN, nonce: 3, ...action }, alice)
      const d = decodeTx(tx.bytes)
      assert.deepEqual(d.body, { v: 1, chain: CHAIN, from: alice.publicKey, nonce: 3, ...action })
      assert.deepEqual(verifyTx(d).id, tx.id)
    }
  })

  it('refuse a forged signature (ban) and a signature by another key', async () => {
    const tx = await encodeTx({ chain: CHAIN, nonce: 0, kind: 'charge', purpose: 'job', amount: 1 }, alice)
    const d = decodeTx(tx.bytes)
    assert.throws(
      () => verifiedTx(d, false),
      (e: unknown) => isNodusError(e, 'SIGNATURE_INVALID') && e.peerAction === 'ban',
    )
    const env = dagCbor.decode(tx.bytes) as { sig: Uint8Array; body: Uint8Array }
    const bobSig = await bob.sign(txSigningBytes(env.body))
    assert.throws(
      () => verifyTx(decodeTx(dagCbor.encode({ sig: bobSig, body: env.body }))),
      (e: unknown) => isNodusError(e, 'SIGNATURE_INVALID'),
    )
  })

  it('decode strictly: unknown fields and kinds, wrong sizes, bounds, extra envelope keys', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...base, kind: 'transfer', to: acct(1), amount: 1, memo: 'x' }, /unknown field memo/],
      [{ ...base, kind: 'steal', to: acct(1), amount: 1 }, /kind must be/],
      [{ ...base, kind: 'transfer', to: new Uint8Array(31), amount: 1 }, /to must be 32 bytes/],
      [{ ...base, kind: 'transfer', to: acct(1), amount: 0 }, /amount must be an integer/],
      [{ ...base, kind: 'transfer', to: acct(1), amount: 2 ** 53 }, /amount must be an integer/],
      [{ ...base, kind: 'transfer', to: acct(1), amount: 1.5 }, /amount must be an integer/],
      [{ ...base, kind: 'transfer', amount: 1 }, /transfer needs to/],
      [{ ...base, v: 2, kind: 'transfer', to: acct(1), amount: 1 }, /v must be 1/],
      [{ ...base, nonce: -1, kind: 'transfer', to: acct(1), amount: 1 }, /nonce must be/],
      [
        { ...base, chain: new Uint8Array(3), kind: 'transfer', to: acct(1), amount: 1 },
        /chain must be 32 bytes/,
      ],
      [{ ...base, kind: 'token.create', name: 'Has Caps' }, /name must be/],
      [{ ...base, kind: 'charge', purpose: 'lunch', amount: 1 }, /purpose must be/],
      [{ ...base, kind: 'charge', purpose: 'job', amount: 1, ref: new Uint8Array(65) }, /ref must be/],
      [
        { ...base, kind: 'mana.configure', account: acct(1), capacity: 2 ** 43 + 1, regenPerSecond: 1 },
        /capacity/,
      ],
    ]
    for (const [body, reason] of cases)
      assert.throws(() => decodeTx(envelopeOf(body)), invalid(reason), String(reason))
    const body = dagCbor.encode({ ...base, kind: 'charge', purpose: 'job', amount: 1 })
    assert.throws(
      () => decodeTx(dagCbor.encode({ sig: new Uint8Array(64), body, x: 1 })),
      invalid(/exactly the keys/),
    )
    assert.throws(
      () => decodeTx(dagCbor.encode({ sig: new Uint8Array(63), body })),
      invalid(/sig must be 64/),
    )
    // Only a committee.propose may pass 1,024 bytes (every other kind's fields are bounded below it).
    const members = Array.from({ length: 40 }, (_, i) => ({ ed25519: acct(i + 1) }))
    const proposal = envelopeOf({ ...base, kind: 'committee.propose', epoch: 1, members })
    assert.ok(proposal.byteLength > MAX_TX_BYTES)
    assert.equal(decodeTx(proposal).body.kind, 'committee.propose')
    assert.throws(
      () => decodeTx(envelopeOf({ ...base, kind: 'committee.vote', epoch: 0, proposal: acct(1) })),
      invalid(/epoch must be/),
    )
    assert.throws(() => decodeTx(new Uint8Array(MAX_COMMITTEE_TX_BYTES + 1)), invalid(/more than 65536/))
    assert.throws(() => decodeTx(Uint8Array.of(0xff)), invalid(/not dag-cbor/))
  })

  it('never decode arbitrary bytes into anything but a typed refusal', () => {
    assertProperty(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          decodeTx(bytes)
        } catch (err) {
          assert.ok(isNodusError(err, 'LEDGER_TX_INVALID'), String(err))
        }
      }),
      { numRuns: 500 },
    )
  })

  it('encode refuses what decode would refuse, before signing', async () => {
    let signed = 0
    const s = {
      publicKey: alice.publicKey,
      sign: (m: Uint8Array) => {
        signed++
        return alice.sign(m)
      },
    }
    await assert.rejects(
      encodeTx({ chain: CHAIN, nonce: 0, kind: 'transfer', to: acct(1), amount: -1 }, s),
      invalid(/amount/),
    )
    assert.equal(signed, 0)
  })

  it('derive token ids from issuer and name', () => {
    assert.deepEqual(tokenId(acct(1), 'a'), tokenId(acct(1), 'a'))
    assert.notDeepEqual(tokenId(acct(1), 'a'), tokenId(acct(2), 'a'))
    assert.notDeepEqual(tokenId(acct(1), 'a'), tokenId(acct(1), 'b'))
  })
})

const GOLDEN_ID = '987ba82e28493ac94e11498dbc81281bf1c22be4b21eb4de59564ca88b3c1e8c'
