/**
 * The key record (src/crypto/key-record.ts): round trip, golden bytes (a stored record must still
 * decode, verify and re-encode byte for byte), forgeries refused (another signer, a swapped X-Wing
 * key, a swapped ML-DSA key), validity times, the expected peer, malformed bodies.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { isNodusError } from '../../src/common/errors.ts'
import { type HybridSignature, signHybrid } from '../../src/crypto/hybrid.ts'
import {
  createKeyRecord,
  KEY_RECORD,
  KEY_RECORD_DOMAIN,
  MAX_KEY_RECORD_LIFETIME_MS,
  openKeyRecord,
} from '../../src/crypto/key-record.ts'
import { identityFromSeeds, type NodeIdentity } from '../../src/crypto/keys.ts'
import { signingBytes } from '../../src/crypto/signed-record.ts'
import { type XWingKeyPair, xwingKeyId, xwingKeyPairFromSeed } from '../../src/crypto/xwing.ts'
import { refused } from './refused.ts'

const T0 = 1_760_000_000_000
const DAY = 86_400_000
const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const times = { epoch: 3, notBefore: T0, notAfter: T0 + 30 * DAY }

let id: NodeIdentity
let other: NodeIdentity
let kp: XWingKeyPair

before(async () => {
  id = await identityFromSeeds(seed(11), seed(12))
  other = await identityFromSeeds(seed(21), seed(22))
  kp = xwingKeyPairFromSeed(seed(13))
})

/** The body of a record, changed by `edit`, re-signed by `signer` (or with the original signature). */
async function variant(
  edit: (body: Record<string, unknown>) => void,
  signer?: NodeIdentity,
): Promise<Uint8Array> {
  const rec = await createKeyRecord(id, kp, times)
  const env = dagCbor.decode(rec.bytes) as { body: Record<string, unknown>; sig: HybridSignature }
  edit(env.body)
  const sig =
    signer === undefined ? env.sig : await signHybrid(signer, signingBytes(KEY_RECORD_DOMAIN, env.body))
  return dagCbor.encode({ body: env.body, sig })
}

describe('key records', () => {
  it('round trip: what createKeyRecord signs, openKeyRecord returns', async () => {
    const rec = await createKeyRecord(id, kp, times)
    assert.ok(rec.bytes.byteLength < 8192, `${rec.bytes.byteLength} bytes`)
    const opened = openKeyRecord(rec.bytes, { nowMs: T0 + DAY, peer: id.peerId.toString() })
    assert.equal(opened.value.peer, id.peerId.toString())
    assert.deepEqual(opened.value.xwing, kp.publicKey)
    assert.deepEqual(opened.value.keyId, xwingKeyId(kp.publicKey))
    assert.deepEqual(opened.value.mldsa65, id.mldsa.publicKey)
    assert.equal(opened.value.epoch, 3)
    assert.equal(opened.value.notBefore, T0)
    assert.equal(opened.value.notAfter, T0 + 30 * DAY)
  })

  it('golden bytes: the stored v1 record decodes, verifies and re-encodes to the same bytes', async () => {
    const fixture = JSON.parse(
      readFileSync(new URL('./fixtures/key-record-v1.json', import.meta.url), 'utf8'),
    ) as {
      record: string
    }
    const bytes = new Uint8Array(Buffer.from(fixture.record, 'hex'))
    const opened = openKeyRecord(bytes, { nowMs: T0, peer: id.peerId.toString() })
    assert.deepEqual(opened.value.xwing, kp.publicKey)
    assert.equal(opened.value.epoch, 3)
    const again = await KEY_RECORD.encode(opened.value, () => opened.signature)
    assert.deepEqual(again.bytes, bytes)
  })

  it('signAs refuses to sign as another identity', async () => {
    const rec = await createKeyRecord(id, kp, times)
    await assert.rejects(
      KEY_RECORD.signAs(rec.value, other.peerId, (m) => signHybrid(other, m)),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
  })

  it('forgeries are refused with SIGNATURE_INVALID (ban)', async () => {
    const now = { nowMs: T0 }
    // Another node signs a record that names this node.
    const byOther = await variant(() => {}, other)
    assert.throws(() => openKeyRecord(byOther, now), refused('SIGNATURE_INVALID', 'ban'))
    // The X-Wing key swapped for the attacker's, signature kept.
    const swapped = await variant((b) => {
      b.xwing = xwingKeyPairFromSeed(seed(99)).publicKey
    })
    assert.throws(() => openKeyRecord(swapped, now), refused('SIGNATURE_INVALID', 'ban'))
    // The ML-DSA key and its half of the signature the attacker's: the Ed25519 half still fails.
    const mixed = await variant((b) => {
      b.mldsa65 = other.mldsa.publicKey
    }, other)
    assert.throws(() => openKeyRecord(mixed, now), refused('SIGNATURE_INVALID', 'ban'))
    // An epoch changed after signing.
    const epoch = await variant((b) => {
      b.epoch = 4
    })
    assert.throws(() => openKeyRecord(epoch, now), refused('SIGNATURE_INVALID', 'ban'))
  })

  it('validity: expired and not yet valid are ignored; a record for another peer is rejected', async () => {
    const rec = await createKeyRecord(id, kp, times)
    assert.throws(
      () => openKeyRecord(rec.bytes, { nowMs: T0 + 30 * DAY }),
      refused('KEY_RECORD_INVALID', 'ignore', 'expired'),
    )
    assert.equal(openKeyRecord(rec.bytes, { nowMs: T0 + 30 * DAY - 1 }).value.epoch, 3)
    assert.equal(openKeyRecord(rec.bytes, { nowMs: T0 - 60_000, maxFutureSkewMs: 60_000 }).value.epoch, 3)
    assert.throws(
      () => openKeyRecord(rec.bytes, { nowMs: T0 - 60_001, maxFutureSkewMs: 60_000 }),
      refused('KEY_RECORD_INVALID', 'ignore', 'not-yet-valid'),
    )
    assert.throws(
      () => openKeyRecord(rec.bytes, { nowMs: T0, peer: other.peerId.toString() }),
      refused('KEY_RECORD_INVALID', 'reject', 'other-peer'),
    )
  })

  it('malformed bodies are rejected before any signature check', async () => {
    const now = { nowMs: T0 }
    const badKey = new Uint8Array(kp.publicKey)
    badKey[0] = 0xff
    badKey[1] = (badKey[1] as number) | 0x0f // an ML-KEM coefficient ≥ q
    const edits: ((b: Record<string, unknown>) => void)[] = [
      (b) => {
        b.xwing = kp.publicKey.subarray(1)
      },
      (b) => {
        b.xwing = badKey
      },
      (b) => {
        b.notAfter = T0
      },
      (b) => {
        b.notAfter = T0 + MAX_KEY_RECORD_LIFETIME_MS + 1
      },
      (b) => {
        b.epoch = -1
      },
      (b) => {
        b.mldsa65 = new Uint8Array(10)
      },
      (b) => {
        b.extra = 1
      },
      (b) => {
        b.peer = 'not a peer id'
      },
    ]
    for (const edit of edits) {
      const bytes = await variant(edit, id)
      assert.throws(() => openKeyRecord(bytes, now), refused('KEY_RECORD_INVALID', 'reject'))
    }
    assert.throws(() => openKeyRecord(new Uint8Array(9000), now), refused('KEY_RECORD_INVALID', 'reject'))
  })
})
