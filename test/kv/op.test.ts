/**
 * The kv operation envelope (src/kv/op.ts): golden bytes (a fixed key and body give fixed bytes and
 * id: a change here is a wire-format change), round trips, strict decoding of every field, bounds,
 * forged signatures, hybrid signatures.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { identity as identityHash } from 'multiformats/hashes/identity'
import { isNodusError } from '../../src/common/errors.ts'
import { identityFromSeeds, signEd25519, signingBytes } from '../../src/crypto/index.ts'
import { formatDbId } from '../../src/kv/db-id.ts'
import { createArgs, grantArgs, revokeArgs } from '../../src/kv/db-ops.ts'
import { HlcClock } from '../../src/kv/hlc.ts'
import {
  DEFAULT_OP_LIMITS,
  decodeOp,
  encodeOp,
  OP_DOMAIN,
  type OpInput,
  openOp,
  opSigningBytes,
  verifiedOp,
  verifyOp,
} from '../../src/kv/op.ts'
import { hlcToBytes, KV_TYPES, type KvValue } from '../../src/kv/op-types.ts'
import { ed25519OpSigner, HYBRID_SIGNER_BYTES, hybridOpSigner, type OpSigner } from '../../src/kv/signer.ts'
import { refused } from '../crypto/refused.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { assertProperty } from '../utils/property.ts'

const T0 = 1_750_000_000_000
const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))

const alice = await identityFromSeeds(seed(1), seed(2))
const bob = await identityFromSeeds(seed(3), seed(4))
const alicePub = alice.ed25519.publicKey.raw
const db = formatDbId('sensors', alicePub)
const signer = ed25519OpSigner(alice.ed25519)

const golden: OpInput = {
  db,
  key: 'room/1',
  field: 'temp',
  type: 'hash',
  op: 'hset',
  args: ['21.5', 7, -1.25, true, null, Uint8Array.of(1, 2, 3), { unit: 'C', tags: ['a'] }],
  hlc: { ms: T0, c: 3 },
  expireAt: T0 + 3_600_000,
}

const GOLDEN_HEX =
  'a2637369675840b2ed84333bd37216883763d895cebb825b49866ecd6c84993e126cb58141c3955dc919e6937bc684e3' +
  '05d073086598cf6efe6fba83faf1ff9daabed34d7d6f0564626f6479aa617601626462783873656e736f72732d7a364d' +
  '6b6f6e334e656364364e6b6b79666f476f48786964327a6e476335394c55334b376d756261526346624c664c58626f70' +
  '646873657463686c634801977420dc000003636b657966726f6f6d2f316461726773876432312e3507fbbff400000000' +
  '0000f5f643010203a2647461677381616164756e6974614364747970656468617368656669656c646474656d70667369' +
  '676e657258208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c6865787069726541741b' +
  '000001977457ca80'
const GOLDEN_ID = 'a92770e7bb037aabc3d2e4f5bf0584fe58cfb7b8f62a819ddd09503afd526691'

/** A valid body map as sent (before signing). */
const baseBody = (): Record<string, unknown> => ({
  v: 1,
  db,
  key: 'k',
  type: 'string',
  op: 'set',
  args: ['v'],
  hlc: hlcToBytes({ ms: T0, c: 0 }),
  signer: alicePub,
})

/** Sign any body map with Alice's Ed25519 key: for feeding the decoder hostile bodies with valid signatures. */
function signRaw(body: Record<string, unknown>): Uint8Array {
  const sig = signEd25519(alice.ed25519, opSigningBytes(dagCbor.encode(body)))
  return dagCbor.encode({ body, sig })
}

const invalid = (reason?: string) => refused('KV_OP_INVALID', 'reject', reason)
const tooLarge = (reason: string) => refused('KV_OP_TOO_LARGE', 'reject', reason)
const forged = refused('SIGNATURE_INVALID', 'ban')

describe('kv op: golden bytes', () => {
  it('a fixed key and body sign to the pinned bytes and id', async () => {
    const op = await encodeOp(golden, signer)
    assert.equal(hex(op.bytes), GOLDEN_HEX)
    assert.equal(hex(op.id), GOLDEN_ID)
  })

  it('the pinned bytes decode and verify back to the body', () => {
    const op = openOp(unhex(GOLDEN_HEX))
    assert.deepEqual(op.body, { ...golden, v: 1, signer: alicePub })
    assert.equal(hex(op.id), GOLDEN_ID)
  })

  it('the bytes are dag-cbor of { body, sig }, signed over dag-cbor of { domain, body }', () => {
    const bytes = unhex(GOLDEN_HEX)
    const env = dagCbor.decode(bytes) as { body: Record<string, unknown>; sig: Uint8Array }
    assert.deepEqual(dagCbor.encode(env), bytes)
    const d = decodeOp(bytes)
    assert.equal(hex(d.check.message), hex(signingBytes(OP_DOMAIN, env.body)))
    assert.equal(d.check.scheme, 'ed25519')
  })
})

const kvValue: fc.Arbitrary<KvValue> = fc.letrec<{ v: KvValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string(),
    fc.uint8Array({ maxLength: 16 }),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('v'), { maxKeys: 4 }),
  ),
})).v

const opInput: fc.Arbitrary<OpInput> = fc.record(
  {
    db: fc.constant(db),
    key: fc.string({ minLength: 1, maxLength: 40 }),
    field: fc.string({ maxLength: 20 }),
    type: fc.constantFrom(...KV_TYPES),
    op: fc.stringMatching(/^[a-z][a-z0-9._]{0,31}$/),
    args: fc.array(kvValue, { maxLength: 5 }),
    hlc: fc.record({ ms: fc.integer({ min: 0, max: 2 ** 48 - 1 }), c: fc.integer({ min: 0, max: 65_535 }) }),
    expireAt: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
    cap: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  },
  { requiredKeys: ['db', 'key', 'type', 'op', 'args', 'hlc'] },
)

/** `-0` encodes as the integer 0 (dag-cbor keeps integral floats as integers). */
const normalize = (v: unknown): unknown =>
  JSON.parse(JSON.stringify(v, (_k, x) => (Object.is(x, -0) ? 0 : x)))

describe('kv op: round trip', () => {
  it('any well-formed operation encodes, decodes and verifies to itself (property)', async () => {
    await assertProperty(
      fc.asyncProperty(opInput, async (input) => {
        const op = await encodeOp(input, signer)
        const back = openOp(op.bytes)
        assert.deepEqual(normalize(back.body), normalize({ ...input, v: 1, signer: alicePub }))
        assert.deepEqual(back.id, op.id)
      }),
      { numRuns: 200 },
    )
  })

  it('a hybrid signer signs with Ed25519 and ML-DSA-65, and its op verifies', async () => {
    const op = await encodeOp({ ...golden, cap: new Uint8Array(32) }, hybridOpSigner(alice))
    assert.equal(op.body.signer.byteLength, HYBRID_SIGNER_BYTES)
    const d = decodeOp(op.bytes)
    assert.equal(d.check.scheme, 'hybrid')
    verifyOp(d)
    // ML-DSA-65 in a hybrid signature is hedged: a second signature of the same body differs.
    const again = await encodeOp({ ...golden, cap: new Uint8Array(32) }, hybridOpSigner(alice))
    assert.notDeepEqual(again.id, op.id)
  })

  it('db operations carry their arguments', async () => {
    const input = { db, key: '', type: 'db', hlc: { ms: T0, c: 0 } } as const
    for (const [op, args] of [
      ['create', createArgs()],
      ['create', createArgs({ indexes: [{ name: 'by-city', hash: 'city' }] })],
      ['grant', grantArgs({ writer: bob.ed25519.publicKey.raw, expiresAt: T0 + 1000, prefix: 'bob/' })],
      ['revoke', revokeArgs(new Uint8Array(32).fill(9))],
    ] as const) {
      const signed = await encodeOp({ ...input, op, args: [...args] }, signer)
      assert.deepEqual(openOp(signed.bytes).body.args, args)
    }
  })
})

describe('kv op: malformed fields are refused (KV_OP_INVALID, reject)', () => {
  const cid = CID.createV1(0x55, identityHash.digest(Uint8Array.of(1)))
  const cases: [string, Record<string, unknown>][] = [
    ['v is 2', { v: 2 }],
    ['v is "1"', { v: '1' }],
    ['an unknown field', { extra: 1 }],
    ['db not a database id', { db: 'sensors' }],
    ['db with an upper-case name', { db: db.replace('sensors', 'Sensors') }],
    ['db not a string', { db: 5 }],
    ['key not a string', { key: Uint8Array.of(1) }],
    ['empty key', { key: '' }],
    ['field not a string', { field: 5 }],
    ['type unknown', { type: 'blob' }],
    ['op upper case', { op: 'SET' }],
    ['op empty', { op: '' }],
    ['op too long', { op: `a${'b'.repeat(32)}` }],
    ['op with a space', { op: 'se t' }],
    ['args not a list', { args: 'v' }],
    ['a CID in args', { args: [cid] }],
    ['an integer beyond 2^53 in args', { args: [2n ** 60n] }],
    ['args nested deeper than 32', { args: [JSON.parse(`${'['.repeat(40)}${']'.repeat(40)}`)] }],
    ['hlc of 7 bytes', { hlc: new Uint8Array(7) }],
    ['hlc as a number', { hlc: T0 }],
    ['expireAt negative', { expireAt: -1 }],
    ['expireAt fractional', { expireAt: 1.5 }],
    ['expireAt beyond 2^48', { expireAt: 2 ** 48 }],
    ['signer of 31 bytes', { signer: new Uint8Array(31) }],
    ['cap of 31 bytes', { cap: new Uint8Array(31) }],
    ['db op with a key', { type: 'db', op: 'create', args: [], key: 'k' }],
    ['db op with expireAt', { type: 'db', op: 'create', args: [], key: '', expireAt: 1 }],
    ['db op unknown', { type: 'db', op: 'drop', args: [], key: '' }],
    ['create with a list', { type: 'db', op: 'create', args: [[1]], key: '' }],
    ['grant without writer', { type: 'db', op: 'grant', args: [{}], key: '' }],
    [
      'grant writer of 33 bytes',
      { type: 'db', op: 'grant', args: [{ writer: new Uint8Array(33) }], key: '' },
    ],
    [
      'grant with an unknown key',
      { type: 'db', op: 'grant', args: [{ writer: new Uint8Array(32), admin: true }], key: '' },
    ],
    [
      'grant expiresAt not ms',
      { type: 'db', op: 'grant', args: [{ writer: new Uint8Array(32), expiresAt: 'soon' }], key: '' },
    ],
    ['revoke of 31 bytes', { type: 'db', op: 'revoke', args: [new Uint8Array(31)], key: '' }],
    ['revoke of two', { type: 'db', op: 'revoke', args: [new Uint8Array(32), new Uint8Array(32)], key: '' }],
  ]
  for (const [name, change] of cases) {
    it(name, () => {
      const bytes = signRaw({ ...baseBody(), ...change })
      assert.throws(() => decodeOp(bytes), invalid())
    })
  }

  it('a missing required field', () => {
    for (const k of ['v', 'db', 'key', 'type', 'op', 'args', 'hlc', 'signer']) {
      const body = baseBody()
      delete body[k]
      assert.throws(() => decodeOp(signRaw(body)), invalid(), k)
    }
  })

  it('a body map with a __proto__ key', () => {
    // Built by hand: a JS object literal cannot hold an own __proto__ key.
    const body = dagCbor.encode(baseBody())
    const proto = dagCbor.encode({ __proto__x: 1 }).subarray(1)
    proto[0] = 0x69 // text of 9 bytes: "__proto__"
    const bytes = Uint8Array.from([...body.subarray(0, 1), ...proto.subarray(0, 10), 1, ...body.subarray(1)])
    bytes[0] = (bytes[0] as number) + 1 // one more map entry
    const sig = signEd25519(alice.ed25519, opSigningBytes(bytes))
    const env = Uint8Array.from([...dagCbor.encode({ body: 0, sig }).slice(0, -1), ...bytes])
    assert.throws(() => decodeOp(env), invalid('unknown field __proto__'))
  })
})

describe('kv op: the envelope frame', () => {
  const good = signRaw(baseBody())
  it('is refused when it is not the fixed { sig, body } frame', () => {
    const body = baseBody()
    const sig = signEd25519(alice.ed25519, opSigningBytes(dagCbor.encode(body)))
    for (const [name, bytes] of [
      ['garbage', Uint8Array.of(1, 2, 3)],
      ['empty', new Uint8Array(0)],
      ['truncated', good.subarray(0, good.length - 1)],
      ['trailing byte', Uint8Array.from([...good, 0])],
      ['a third key', dagCbor.encode({ body, sig, x: 1 })],
      ['sig of 63 bytes', dagCbor.encode({ body, sig: sig.subarray(1) })],
      [
        'body before sig (not canonical)',
        Uint8Array.from([...good.subarray(0, 1), ...good.subarray(71), ...good.subarray(1, 71)]),
      ],
      ['a list', dagCbor.encode([body, sig])],
      ['body not a map', dagCbor.encode({ body: [1], sig })],
    ] as const) {
      assert.throws(() => decodeOp(bytes), invalid(), name)
    }
  })

  it('is refused when the signature does not match the signer kind', async () => {
    const hybrid = await encodeOp(golden, hybridOpSigner(alice))
    const hybridBody = decodeOp(hybrid.bytes).body
    const asEd25519 = signRaw({ ...baseBody(), signer: hybridBody.signer })
    assert.throws(() => decodeOp(asEd25519), invalid('a hybrid signer signs with a hybrid signature'))
  })
})

describe('kv op: bounds (KV_OP_TOO_LARGE, reject)', () => {
  const limits = { maxOpBytes: 2048, maxKeyBytes: 16, maxFieldBytes: 8, maxValueBytes: 1000 }
  it('refuses an operation, key, field or argument over its bound', () => {
    assert.throws(
      () => decodeOp(signRaw({ ...baseBody(), args: ['x'.repeat(2100)] }), limits),
      tooLarge('operation'),
    )
    assert.throws(() => decodeOp(signRaw({ ...baseBody(), key: 'k'.repeat(17) }), limits), tooLarge('key'))
    // UTF-8 bytes, not characters: 6 characters of 3 bytes each.
    assert.throws(() => decodeOp(signRaw({ ...baseBody(), key: '€'.repeat(6) }), limits), tooLarge('key'))
    assert.throws(() => decodeOp(signRaw({ ...baseBody(), field: 'f'.repeat(9) }), limits), tooLarge('field'))
    assert.throws(
      () => decodeOp(signRaw({ ...baseBody(), args: ['a', 'x'.repeat(1001)] }), limits),
      tooLarge('args[1]'),
    )
    decodeOp(
      signRaw({ ...baseBody(), key: 'k'.repeat(16), field: 'f'.repeat(8), args: ['x'.repeat(990)] }),
      limits,
    )
  })

  it('encodeOp refuses what peers would refuse, before signing', async () => {
    let signed = 0
    const counting: OpSigner = {
      scheme: 'ed25519',
      publicKey: alicePub,
      sign: (m) => {
        signed++
        return signEd25519(alice.ed25519, m)
      },
    }
    await assert.rejects(encodeOp({ ...golden, key: 'k'.repeat(17) }, counting, { limits }), tooLarge('key'))
    await assert.rejects(encodeOp({ ...golden, op: 'HSET' }, counting), invalid())
    await assert.rejects(
      encodeOp({ ...golden, args: [undefined as unknown as KvValue] }, counting),
      invalid(),
    )
    // A hybrid signature and key take about 5.4 KB: over 2 KiB before anything is signed.
    await assert.rejects(encodeOp(golden, hybridOpSigner(alice), { limits }), tooLarge('operation'))
    assert.equal(signed, 0)
    await assert.rejects(encodeOp(golden, counting, { signal: AbortSignal.abort() }), (e) =>
      isNodusError(e, 'ABORTED'),
    )
    assert.equal(signed, 0)
    await encodeOp(golden, counting, { limits: DEFAULT_OP_LIMITS })
    assert.equal(signed, 1)
  })
})

describe('kv op: forged signatures (SIGNATURE_INVALID, ban)', () => {
  it('a changed body byte, a changed signature, another signer, a false pool answer', async () => {
    const op = await encodeOp({ ...golden, args: ['21.5'] }, signer)
    const flipBody = op.bytes.slice()
    const at = Buffer.from(flipBody).indexOf('21.5')
    flipBody[at] = '3'.charCodeAt(0)
    assert.throws(() => verifyOp(decodeOp(flipBody)), forged)
    const flipSig = op.bytes.slice()
    flipSig[10] = (flipSig[10] as number) ^ 1
    assert.throws(() => verifyOp(decodeOp(flipSig)), forged)
    // Bob signs a body that names Alice as signer.
    const body = { ...baseBody() }
    const bobSig = signEd25519(bob.ed25519, opSigningBytes(dagCbor.encode(body)))
    assert.throws(() => openOp(dagCbor.encode({ body, sig: bobSig })), forged)
    assert.throws(() => verifiedOp(decodeOp(op.bytes), false), forged)
    assert.deepEqual(verifiedOp(decodeOp(op.bytes), true).id, op.id)
  })

  it('a hybrid signature with a wrong ML-DSA-65 half', async () => {
    const op = await encodeOp(golden, hybridOpSigner(alice))
    const bytes = op.bytes.slice()
    bytes[200] = (bytes[200] as number) ^ 1 // inside the ML-DSA-65 signature
    assert.throws(() => verifyOp(decodeOp(bytes)), forged)
    // Bob's ML-DSA key with Alice's Ed25519 key: the ML-DSA half cannot verify.
    const mixed = hybridOpSigner(alice)
    const bobMl = hybridOpSigner(bob)
    if (mixed.scheme !== 'hybrid' || bobMl.scheme !== 'hybrid') throw new Error('unreachable')
    const frankenstein: OpSigner = {
      ...mixed,
      publicKey: { ...mixed.publicKey, mldsa65: bobMl.publicKey.mldsa65 },
    }
    const franken = await encodeOp(golden, frankenstein)
    assert.throws(() => verifyOp(decodeOp(franken.bytes)), forged)
  })

  it('never throws anything but a NodusError on random bytes (property)', () => {
    assertProperty(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat({ max: 430 }), fc.nat(255), (junk, at, b) => {
        for (const bytes of [
          junk,
          (() => {
            const g = unhex(GOLDEN_HEX)
            g[at] = b
            return g
          })(),
        ]) {
          try {
            verifyOp(decodeOp(bytes))
          } catch (e) {
            assert.ok(isNodusError(e), String(e))
          }
        }
      }),
    )
  })
})

describe('kv op: from the future (KV_OP_FROM_FUTURE, ignore)', () => {
  it('an operation dated beyond the skew bound is refused by the receiver’s clock, and does not move it', async () => {
    const clock = new FakeClock(T0)
    const hlc = new HlcClock({ clock }, { maxFutureSkewMs: 60_000 })
    const far = openOp((await encodeOp({ ...golden, hlc: { ms: T0 + 60_001, c: 0 } }, signer)).bytes)
    assert.throws(() => hlc.check(far.body.hlc), refused('KV_OP_FROM_FUTURE', 'ignore'))
    assert.throws(() => hlc.receive(far.body.hlc), refused('KV_OP_FROM_FUTURE', 'ignore'))
    assert.deepEqual(hlc.last, { ms: 0, c: 0 })
    clock.advance(1)
    assert.deepEqual(hlc.receive(far.body.hlc), { ms: T0 + 60_001, c: 1 })
  })
})
