/**
 * Sealed direct messages (src/crypto/sealed-message.ts): round trips between real identities and
 * X-Wing keys, and every refusal with its typed error: tampered bytes (any flipped bit), another
 * recipient or key, a message re-sealed to a third node by its recipient, a forged sender signature,
 * a replay, stale and future messages, oversized bodies.
 */
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { seededRandom, systemRandom } from '../../src/common/random.ts'
import { hpkeOpen, hpkeSeal } from '../../src/crypto/hpke.ts'
import { signHybrid } from '../../src/crypto/hybrid.ts'
import { createKeyRecord, type KeyRecord } from '../../src/crypto/key-record.ts'
import { identityFromSeeds, type NodeIdentity } from '../../src/crypto/keys.ts'
import { ReplayWindow } from '../../src/crypto/replay-window.ts'
import {
  DEFAULT_SEALED_MESSAGE_LIMITS,
  decodeSealedEnvelope,
  openMessage,
  type RecipientKeys,
  SEALED_MESSAGE_DOMAIN,
  SEALED_MESSAGE_OVERHEAD_BYTES,
  sealedMessageInfo,
  sealMessage,
} from '../../src/crypto/sealed-message.ts'
import { signingBytes } from '../../src/crypto/signed-record.ts'
import { type XWingKeyPair, xwingKeyPairFromSeed } from '../../src/crypto/xwing.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { assertProperty } from '../utils/property.ts'
import { refused } from './refused.ts'

const T0 = 1_760_000_000_000
const DAY = 24 * 60 * 60 * 1000
const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const text = (s: string): Uint8Array => new TextEncoder().encode(s)

interface Node {
  id: NodeIdentity
  key: XWingKeyPair
  record: KeyRecord
  keys: RecipientKeys
}

async function node(n: number, epoch = 1): Promise<Node> {
  const id = await identityFromSeeds(seed(n), seed(n + 100))
  const key = xwingKeyPairFromSeed(seed(n + 200))
  const record = (await createKeyRecord(id, key, { epoch, notBefore: T0 - DAY, notAfter: T0 + 30 * DAY }))
    .value
  return { id, key, record, keys: { peerId: id.peerId.toString(), keys: [{ epoch, keyPair: key }] } }
}

let alice: Node
let bob: Node
let carol: Node

before(async () => {
  ;[alice, bob, carol] = await Promise.all([node(1), node(2), node(3)])
})

describe('sealed messages: round trips', () => {
  it('bob opens what alice sealed to him: sender, id, time and body', async () => {
    const clock = new FakeClock(T0)
    const body = text('hello bob, from alice')
    const sealed = await sealMessage(alice.id, bob.record, body, { clock, random: seededRandom(7) })
    assert.deepEqual(sealed.id, seededRandom(7).bytes(16))
    assert.equal(sealed.sentAt, T0)
    assert.equal(sealed.to, bob.keys.peerId)
    clock.advance(1500)
    const opened = openMessage(bob.keys, sealed.bytes, { clock })
    assert.equal(opened.from, alice.id.peerId.toString())
    assert.equal(opened.to, bob.keys.peerId)
    assert.deepEqual(opened.id, sealed.id)
    assert.equal(opened.sentAt, T0)
    assert.deepEqual(opened.body, body)
    assert.deepEqual(opened.kid, bob.record.keyId)
    assert.equal(opened.epoch, 1)
  })

  it('the sender appears nowhere outside the ciphertext; overhead is bounded', async () => {
    const clock = new FakeClock(T0)
    const sealed = await sealMessage(alice.id, bob.record, new Uint8Array(256), {
      clock,
      random: systemRandom,
    })
    const env = decodeSealedEnvelope(sealed.bytes)
    assert.deepEqual(Object.keys(dagCbor.decode(sealed.bytes) as object).sort(), ['ct', 'enc', 'kid', 'v'])
    const hay = Buffer.from(sealed.bytes)
    assert.equal(hay.indexOf(Buffer.from(alice.id.peerId.toString())), -1)
    assert.equal(hay.indexOf(Buffer.from(alice.id.mldsa.publicKey.subarray(0, 32))), -1)
    assert.ok(env.ct.byteLength > 256 + 5000, 'the signature and key are inside')
    assert.ok(
      sealed.bytes.byteLength <= 256 + SEALED_MESSAGE_OVERHEAD_BYTES,
      `${sealed.bytes.byteLength} bytes`,
    )
  })

  it('a node with two keys (rotation) opens messages sealed to either', async () => {
    const newKey = xwingKeyPairFromSeed(seed(222))
    const record2 = (await createKeyRecord(bob.id, newKey, { epoch: 2, notBefore: T0, notAfter: T0 + DAY }))
      .value
    const keys: RecipientKeys = {
      peerId: bob.keys.peerId,
      keys: [...bob.keys.keys, { epoch: 2, keyPair: newKey }],
    }
    const clock = new FakeClock(T0)
    for (const [record, epoch] of [
      [bob.record, 1],
      [record2, 2],
    ] as const) {
      const sealed = await sealMessage(alice.id, record, text(`to epoch ${epoch}`), {
        clock,
        random: systemRandom,
      })
      const opened = openMessage(keys, sealed.bytes, { clock })
      assert.equal(opened.epoch, epoch)
      assert.deepEqual(opened.body, text(`to epoch ${epoch}`))
    }
  })
})

describe('sealed messages: refusals', () => {
  it('tampered ct or enc: DECRYPT_FAILED (ignore)', async () => {
    const clock = new FakeClock(T0)
    const sealed = await sealMessage(alice.id, bob.record, text('x'), { clock, random: systemRandom })
    const env = decodeSealedEnvelope(sealed.bytes)
    for (const part of ['ct', 'enc'] as const) {
      const changed = { v: 1, kid: env.kid, enc: new Uint8Array(env.enc), ct: new Uint8Array(env.ct) }
      changed[part][5] = (changed[part][5] as number) ^ 0x80
      assert.throws(
        () => openMessage(bob.keys, dagCbor.encode(changed), { clock }),
        refused('DECRYPT_FAILED', 'ignore'),
      )
    }
  })

  it('property: any flipped bit anywhere in a sealed message is refused with a typed error', async () => {
    const clock = new FakeClock(T0)
    const sealed = await sealMessage(alice.id, bob.record, new Uint8Array(256).fill(9), {
      clock,
      random: systemRandom,
    })
    const codes = ['SEALED_MESSAGE_INVALID', 'DECRYPT_FAILED']
    assertProperty(
      fc.property(
        fc.integer({ min: 0, max: sealed.bytes.byteLength - 1 }),
        fc.integer({ min: 0, max: 7 }),
        (at, bit) => {
          const bytes = new Uint8Array(sealed.bytes)
          bytes[at] = (bytes[at] as number) ^ (1 << bit)
          assert.throws(
            () => openMessage(bob.keys, bytes, { clock }),
            (e) => isNodusError(e) && codes.includes(e.code),
          )
        },
      ),
      { numRuns: 400 },
    )
    assert.equal(openMessage(bob.keys, sealed.bytes, { clock }).body.byteLength, 256)
  })

  it('another node cannot open it: unknown key, or with the key but another PeerId (info binds the recipient)', async () => {
    const clock = new FakeClock(T0)
    const sealed = await sealMessage(alice.id, bob.record, text('for bob only'), {
      clock,
      random: systemRandom,
    })
    assert.throws(
      () => openMessage(carol.keys, sealed.bytes, { clock }),
      refused('SEALED_MESSAGE_INVALID', 'ignore', 'unknown-key'),
    )
    const stolen: RecipientKeys = { peerId: carol.keys.peerId, keys: bob.keys.keys }
    assert.throws(() => openMessage(stolen, sealed.bytes, { clock }), refused('DECRYPT_FAILED', 'ignore'))
    const otherEpoch: RecipientKeys = { peerId: bob.keys.peerId, keys: [{ epoch: 9, keyPair: bob.key }] }
    assert.throws(() => openMessage(otherEpoch, sealed.bytes, { clock }), refused('DECRYPT_FAILED', 'ignore'))
  })

  it('a recipient that re-seals a message it got to a third node: misaddressed', async () => {
    const clock = new FakeClock(T0)
    const sealed = await sealMessage(alice.id, bob.record, text('only for bob'), {
      clock,
      random: systemRandom,
    })
    // Bob decrypts with his own key (the signed inner record is his to see) and re-seals it to Carol.
    const env = decodeSealedEnvelope(sealed.bytes)
    const inner = hpkeOpen(bob.key, env.enc, env.ct, {
      info: sealedMessageInfo(bob.keys.peerId, bob.record.keyId, bob.record.epoch),
    })
    const resealed = hpkeSeal(carol.record.xwing, inner, {
      info: sealedMessageInfo(carol.keys.peerId, carol.record.keyId, carol.record.epoch),
    })
    const forwarded = dagCbor.encode({
      v: 1,
      kid: carol.record.keyId,
      enc: resealed.enc,
      ct: resealed.ciphertext,
    })
    assert.throws(
      () => openMessage(carol.keys, forwarded, { clock }),
      refused('SEALED_MESSAGE_INVALID', 'ignore', 'misaddressed'),
    )
  })

  it('a message claiming to be from alice, signed by mallory: SEALED_MESSAGE_FORGED', async () => {
    const mallory = await node(4)
    const clock = new FakeClock(T0)
    const body = {
      v: 1,
      from: alice.id.peerId.toString(),
      to: bob.keys.peerId,
      id: new Uint8Array(16).fill(4),
      sentAt: T0,
      body: text('send money'),
      mldsa65: mallory.id.mldsa.publicKey,
    }
    const sig = await signHybrid(mallory.id, signingBytes(SEALED_MESSAGE_DOMAIN, body))
    const inner = dagCbor.encode({ body, sig })
    const info = sealedMessageInfo(bob.keys.peerId, bob.record.keyId, bob.record.epoch)
    const { enc, ciphertext } = hpkeSeal(bob.record.xwing, inner, { info })
    const forged = dagCbor.encode({ v: 1, kid: bob.record.keyId, enc, ct: ciphertext })
    const replay = new ReplayWindow({ maxIds: 16 })
    assert.throws(
      () => openMessage(bob.keys, forged, { clock, replay }),
      refused('SEALED_MESSAGE_FORGED', 'ignore', 'signature'),
    )
    assert.equal(replay.size, 0, 'a forgery does not use up the id')
    // The same body signed by alice opens.
    const real = dagCbor.encode({
      body: { ...body, mldsa65: alice.id.mldsa.publicKey },
      sig: await signHybrid(
        alice.id,
        signingBytes(SEALED_MESSAGE_DOMAIN, { ...body, mldsa65: alice.id.mldsa.publicKey }),
      ),
    })
    const sealed = hpkeSeal(bob.record.xwing, real, { info })
    const ok = dagCbor.encode({ v: 1, kid: bob.record.keyId, enc: sealed.enc, ct: sealed.ciphertext })
    assert.equal(openMessage(bob.keys, ok, { clock, replay }).from, alice.id.peerId.toString())
  })

  it('a replay within the window: SEALED_MESSAGE_REPLAYED; past it, SEALED_MESSAGE_STALE', async () => {
    const clock = new FakeClock(T0)
    const replay = new ReplayWindow({ maxIds: 1024 })
    const sealed = await sealMessage(alice.id, bob.record, text('once'), { clock, random: systemRandom })
    openMessage(bob.keys, sealed.bytes, { clock, replay })
    clock.advance(DAY)
    assert.throws(
      () => openMessage(bob.keys, sealed.bytes, { clock, replay }),
      refused('SEALED_MESSAGE_REPLAYED', 'ignore', 'seen'),
    )
    // Past the window the freshness check refuses it, and the window has let the id go.
    clock.advance(DEFAULT_SEALED_MESSAGE_LIMITS.maxAgeMs)
    assert.throws(
      () => openMessage(bob.keys, sealed.bytes, { clock, replay }),
      refused('SEALED_MESSAGE_STALE', 'ignore', 'stale'),
    )
    assert.equal(replay.check(sealed.id, clock.now() + 1, clock.now()), 'fresh')
    assert.equal(replay.size, 0)
  })

  it('a replay at the last ms the message still opens (sentAt + maxAgeMs): SEALED_MESSAGE_REPLAYED', async () => {
    const clock = new FakeClock(T0)
    const limits = { ...DEFAULT_SEALED_MESSAGE_LIMITS, maxAgeMs: 60_000 }
    const replay = new ReplayWindow({ maxIds: 16 })
    const sealed = await sealMessage(alice.id, bob.record, text('edge'), {
      clock,
      random: systemRandom,
      limits,
    })
    openMessage(bob.keys, sealed.bytes, { clock, replay, limits })
    clock.advance(limits.maxAgeMs)
    assert.throws(
      () => openMessage(bob.keys, sealed.bytes, { clock, replay, limits }),
      refused('SEALED_MESSAGE_REPLAYED', 'ignore', 'seen'),
    )
    clock.advance(1)
    assert.throws(
      () => openMessage(bob.keys, sealed.bytes, { clock, replay, limits }),
      refused('SEALED_MESSAGE_STALE', 'ignore', 'stale'),
    )
  })

  it('too old and too far in the future: SEALED_MESSAGE_STALE', async () => {
    const limits = { ...DEFAULT_SEALED_MESSAGE_LIMITS, maxAgeMs: 60_000, maxFutureSkewMs: 1_000 }
    const sealed = await sealMessage(alice.id, bob.record, text('t'), {
      clock: new FakeClock(T0),
      random: systemRandom,
    })
    assert.equal(
      openMessage(bob.keys, sealed.bytes, { clock: new FakeClock(T0 + 60_000), limits }).sentAt,
      T0,
    )
    assert.throws(
      () => openMessage(bob.keys, sealed.bytes, { clock: new FakeClock(T0 + 60_001), limits }),
      refused('SEALED_MESSAGE_STALE', 'ignore', 'stale'),
    )
    assert.equal(openMessage(bob.keys, sealed.bytes, { clock: new FakeClock(T0 - 1_000), limits }).sentAt, T0)
    assert.throws(
      () => openMessage(bob.keys, sealed.bytes, { clock: new FakeClock(T0 - 1_001), limits }),
      refused('SEALED_MESSAGE_STALE', 'ignore', 'future'),
    )
  })

  it('bodies over maxBodyBytes: refused when sealing, and when opening under smaller limits', async () => {
    const clock = new FakeClock(T0)
    const limits = { ...DEFAULT_SEALED_MESSAGE_LIMITS, maxBodyBytes: 1000 }
    await assert.rejects(
      sealMessage(alice.id, bob.record, new Uint8Array(1001), { clock, random: systemRandom, limits }),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    const sealed = await sealMessage(alice.id, bob.record, new Uint8Array(1000), {
      clock,
      random: systemRandom,
      limits,
    })
    assert.equal(openMessage(bob.keys, sealed.bytes, { clock, limits }).body.byteLength, 1000)
    const small = { ...limits, maxBodyBytes: 999 }
    assert.throws(
      () => openMessage(bob.keys, sealed.bytes, { clock, limits: small }),
      refused('SEALED_MESSAGE_INVALID', 'ignore', 'too-large'),
    )
    const tiny = { ...limits, maxBodyBytes: 0 }
    const big = await sealMessage(alice.id, bob.record, new Uint8Array(9000), { clock, random: systemRandom })
    assert.throws(
      () => openMessage(bob.keys, big.bytes, { clock, limits: tiny }),
      refused('SEALED_MESSAGE_INVALID', 'reject', 'malformed'),
    )
  })

  it('sealing to an expired key record: KEY_RECORD_INVALID', async () => {
    await assert.rejects(
      sealMessage(alice.id, bob.record, text('late'), {
        clock: new FakeClock(T0 + 31 * DAY),
        random: systemRandom,
      }),
      (e) => isNodusError(e, 'KEY_RECORD_INVALID') && e.details.reason === 'expired',
    )
  })

  it('a malformed envelope is refused with reject (any relay can check it)', () => {
    const kid = bob.record.keyId
    const enc = new Uint8Array(1120)
    const ct = new Uint8Array(40)
    for (const bad of [
      new Uint8Array([1, 2, 3]),
      dagCbor.encode({ v: 1, kid, enc, ct, extra: 1 }),
      dagCbor.encode({ v: 2, kid, enc, ct }),
      dagCbor.encode({ v: 1, kid: kid.subarray(1), enc, ct }),
      dagCbor.encode({ v: 1, kid, enc: enc.subarray(1), ct }),
      dagCbor.encode({ v: 1, kid, enc, ct: 'ct' }),
      dagCbor.encode({ v: 1, kid, enc, ct: ct.subarray(0, 15) }),
    ]) {
      assert.throws(
        () => openMessage(bob.keys, bad, { clock: new FakeClock(T0) }),
        refused('SEALED_MESSAGE_INVALID', 'reject', 'malformed'),
      )
    }
  })
})
