/**
 * The generic signed-record codec and inbox (src/crypto/signed-record.ts, signed-record-inbox.ts), on a
 * record type defined here as a new area would define one. The real types (trust vectors, capacity
 * reports, holder updates, storage orders) are pinned by their golden-bytes tests.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { type ErrorCode, isNodusError, NodusError, type PeerAction } from '../../src/common/errors.ts'
import {
  accountableSigner,
  type HybridPublicKey,
  hybridPublicKey,
  IssuerGate,
  identityFromSeeds,
  readInt,
  readMap,
  readPeerId,
  readString,
  SignedRecordCodec,
  SignedRecordInbox,
  type SignedRecordType,
  signEd25519,
  signHybrid,
  signingBytes,
} from '../../src/crypto/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { assertProperty } from '../utils/property.ts'

const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const T0 = 1_750_000_000_000

const alice = await identityFromSeeds(seed(1), seed(2))
const mallory = await identityFromSeeds(seed(3), seed(4))
const aliceId = alice.peerId.toString()
const malloryId = mallory.peerId.toString()
const signAlice = (m: Uint8Array): Uint8Array => signEd25519(alice.ed25519, m)
const signMallory = (m: Uint8Array): Uint8Array => signEd25519(mallory.ed25519, m)

/** A record as a new area would define one. */
interface Note {
  author: string
  seq: number
  ts: number
  text: string
}

const NOTE_DOMAIN = 'nodus/test-note/v1'
const noteType: SignedRecordType<Note> = {
  kind: 'note',
  code: 'INVALID_ARGUMENT',
  domain: NOTE_DOMAIN,
  scheme: 'ed25519',
  maxBytes: 1024,
  encodeBody: (n) => ({ author: n.author, seq: n.seq, ts: n.ts, text: n.text }),
  decodeBody: (body, fail) => {
    const b = readMap(body, 'body', ['author', 'seq', 'text', 'ts'], fail)
    return {
      author: readPeerId(b.author, 'author', fail),
      seq: readInt(b.seq, 'seq', 0, Number.MAX_SAFE_INTEGER, fail),
      ts: readInt(b.ts, 'ts', 0, Number.MAX_SAFE_INTEGER, fail),
      text: readString(b.text, 'text', 100, fail),
    }
  },
  signer: (n) => n.author,
}
const NOTE = new SignedRecordCodec<Note>(noteType)

const note = (over: Partial<Note> = {}): Note => ({ author: aliceId, seq: 1, ts: T0, text: 'hello', ...over })

/** Sign any body under the note domain (valid or not). */
function rawEnvelope(body: Record<string, unknown>, sign = signAlice): Uint8Array {
  return dagCbor.encode({ body, sig: sign(signingBytes(NOTE_DOMAIN, body)) })
}

function fails(code: ErrorCode, peerAction?: PeerAction) {
  return (e: unknown): boolean => {
    assert.ok(isNodusError(e), `not a NodusError: ${String(e)}`)
    assert.equal(e.code, code, e.message)
    if (peerAction !== undefined) assert.equal(e.peerAction, peerAction, e.message)
    return true
  }
}

describe('SignedRecordCodec (Ed25519)', () => {
  it('encodes { body, sig }, Ed25519 over dag-cbor { domain, body }, and opens it', async () => {
    const enc = await NOTE.encode(note(), signAlice)
    const env = dagCbor.decode(enc.bytes) as { body: Record<string, unknown>; sig: Uint8Array }
    assert.deepEqual(Object.keys(env).sort(), ['body', 'sig'])
    assert.deepEqual(env.body, noteType.encodeBody(note()))
    assert.deepEqual(env.sig, signAlice(signingBytes(NOTE_DOMAIN, env.body)))
    const opened = NOTE.open(enc.bytes)
    assert.deepEqual(opened.value, note())
    assert.deepEqual(opened.signature, enc.signature)
    assert.deepEqual(NOTE.signedBytes(opened), signingBytes(NOTE_DOMAIN, env.body))
  })

  it('signAs checks the signer and the value first', async () => {
    await assert.rejects(NOTE.signAs(note(), mallory.peerId, signMallory), fails('INVALID_ARGUMENT'))
    await assert.rejects(NOTE.signAs(note({ text: '' }), alice.peerId, signAlice), fails('INVALID_ARGUMENT'))
    assert.deepEqual(NOTE.open((await NOTE.signAs(note(), alice.peerId, signAlice)).bytes).value, note())
  })

  it('refuses malformed records with the type code (reject)', () => {
    const ok = noteType.encodeBody(note())
    const sig = new Uint8Array(64)
    const cases: Array<[string, Uint8Array]> = [
      ['not cbor', Uint8Array.of(0xff)],
      ['too large', new Uint8Array(1025)],
      ['not a map', dagCbor.encode([ok, sig])],
      ['extra envelope key', dagCbor.encode({ body: ok, sig, x: 1 })],
      ['short sig', dagCbor.encode({ body: ok, sig: new Uint8Array(63) })],
      ['body not a map', dagCbor.encode({ body: [1], sig })],
      ['bad body', rawEnvelope({ ...ok, seq: -1 })],
      ['extra body key', rawEnvelope({ ...ok, x: 1 })],
    ]
    for (const [what, bytes] of cases)
      assert.throws(() => NOTE.decode(bytes), fails('INVALID_ARGUMENT', 'reject'), what)
  })

  it('a wrong signature is SIGNATURE_INVALID (ban), never blamed on the named signer', async () => {
    const forged = rawEnvelope(noteType.encodeBody(note()), signMallory)
    const err = (() => {
      try {
        NOTE.open(forged)
      } catch (e) {
        return e
      }
      return undefined
    })()
    assert.ok(fails('SIGNATURE_INVALID', 'ban')(err))
    assert.equal(accountableSigner(err), undefined)
    // Another domain's signature over the same body does not verify either.
    const body = noteType.encodeBody(note())
    const other = dagCbor.encode({ body, sig: signAlice(signingBytes('nodus/other/v1', body)) })
    assert.throws(() => NOTE.open(other), fails('SIGNATURE_INVALID', 'ban'))
  })

  it('a signer that is not an Ed25519 PeerId: reject by default, ban when the type says so', () => {
    const noKey: Note = note({ author: 'not-a-peer' })
    const record = { value: noKey, signature: new Uint8Array(64) }
    assert.throws(() => NOTE.verify(record), fails('INVALID_ARGUMENT', 'reject'))
    const banning = new SignedRecordCodec<Note>({ ...noteType, unusableSigner: 'ban' })
    assert.throws(() => banning.verify(record), fails('SIGNATURE_INVALID', 'ban'))
  })

  it('signs decoded (default): a field the decoder drops fails; signs received: it verifies', () => {
    const lenient: SignedRecordType<Note> = {
      ...noteType,
      decodeBody: (b, fail) =>
        noteType.decodeBody({ author: b.author, seq: b.seq, ts: b.ts, text: b.text }, fail),
    }
    const bytes = rawEnvelope({ ...noteType.encodeBody(note()), later: 'a field from a newer version' })
    assert.throws(() => new SignedRecordCodec(lenient).open(bytes), fails('SIGNATURE_INVALID', 'ban'))
    assert.deepEqual(new SignedRecordCodec({ ...lenient, signs: 'received' }).open(bytes).value, note())
  })

  it('hostile bytes only ever raise typed errors', async () => {
    const good = (await NOTE.encode(note(), signAlice)).bytes
    const flipped = fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
      const b = good.slice()
      b[i] = ((b[i] as number) ^ x) & 0xff
      return b
    })
    const cut = fc.nat(good.length - 1).map((n) => good.slice(0, n))
    assertProperty(
      fc.property(fc.oneof(flipped, cut, fc.uint8Array({ maxLength: 200 })), (bytes) => {
        try {
          NOTE.open(bytes)
        } catch (e) {
          assert.ok(isNodusError(e, 'INVALID_ARGUMENT') || isNodusError(e, 'SIGNATURE_INVALID'), String(e))
          assert.ok(e.peerAction === 'reject' || e.peerAction === 'ban')
        }
      }),
      { numRuns: 300 },
    )
  })
})

describe('SignedRecordCodec (hybrid)', () => {
  interface Attestation {
    signer: string
    key: HybridPublicKey
    claim: string
  }
  const type: SignedRecordType<Attestation, 'hybrid'> = {
    kind: 'attestation',
    code: 'INVALID_ARGUMENT',
    domain: 'nodus/test-attestation/v1',
    scheme: 'hybrid',
    maxBytes: 16 * 1024,
    encodeBody: (a) => ({ signer: a.signer, ed25519: a.key.ed25519, mldsa65: a.key.mldsa65, claim: a.claim }),
    decodeBody: (body, fail) => {
      const b = readMap(body, 'body', ['claim', 'ed25519', 'mldsa65', 'signer'], fail)
      if (!(b.ed25519 instanceof Uint8Array) || !(b.mldsa65 instanceof Uint8Array))
        throw fail('keys must be bytes')
      return {
        signer: readString(b.signer, 'signer', 128, fail),
        key: { ed25519: b.ed25519, mldsa65: b.mldsa65 },
        claim: readString(b.claim, 'claim', 100, fail),
      }
    },
    signer: (a) => a.signer,
    hybridKey: (a) => a.key,
  }
  const ATTESTATION = new SignedRecordCodec(type)
  const mine: Attestation = { signer: aliceId, key: hybridPublicKey(alice), claim: 'x' }

  it('needs hybridKey', () => {
    const { hybridKey: _, ...without } = type
    assert.throws(() => new SignedRecordCodec(without), fails('INVALID_ARGUMENT'))
  })

  it('round-trips; sig is { ed25519, mldsa65 }', async () => {
    const enc = await ATTESTATION.encode(mine, (m) => signHybrid(alice, m))
    const env = dagCbor.decode(enc.bytes) as { sig: Record<string, Uint8Array> }
    assert.deepEqual(Object.keys(env.sig), ['ed25519', 'mldsa65'])
    assert.equal(ATTESTATION.open(enc.bytes).value.claim, 'x')
  })

  it('a key that is not the PeerId’s, or a broken half, is SIGNATURE_INVALID (ban)', async () => {
    const framed = await ATTESTATION.encode({ ...mine, key: hybridPublicKey(mallory) }, (m) =>
      signHybrid(mallory, m),
    )
    assert.throws(() => ATTESTATION.open(framed.bytes), fails('SIGNATURE_INVALID', 'ban'))
    const enc = await ATTESTATION.encode(mine, (m) => signHybrid(alice, m))
    const flipped = new Uint8Array(enc.signature.mldsa65)
    flipped[7] = (flipped[7] as number) ^ 1
    const record = { value: mine, signature: { ...enc.signature, mldsa65: flipped } }
    assert.throws(() => ATTESTATION.verify(record), fails('SIGNATURE_INVALID', 'ban'))
  })

  it('exact envelope: exact sig keys and an ML-DSA-65 signature of 3,309 bytes; open: neither', async () => {
    const enc = await ATTESTATION.encode(mine, (m) => signHybrid(alice, m))
    const env = dagCbor.decode(enc.bytes) as {
      body: Record<string, unknown>
      sig: Record<string, Uint8Array>
    }
    const extra = dagCbor.encode({ body: env.body, sig: { ...env.sig, x: new Uint8Array(1) }, note: 1 })
    const short = dagCbor.encode({ body: env.body, sig: { ...env.sig, mldsa65: new Uint8Array(10) } })
    assert.throws(() => ATTESTATION.decode(extra), fails('INVALID_ARGUMENT', 'reject'))
    assert.throws(() => ATTESTATION.decode(short), fails('INVALID_ARGUMENT', 'reject'))
    const open = new SignedRecordCodec({ ...type, envelope: 'open' })
    assert.equal(open.open(extra).value.claim, 'x')
    assert.throws(() => open.open(short), fails('SIGNATURE_INVALID', 'ban'))
  })
})

describe('SignedRecordInbox', () => {
  const fresh = { timestampOf: (n: Note) => n.ts, maxAgeMs: 60_000, maxFutureSkewMs: 5_000 }
  const bytesOf = async (over: Partial<Note>, sign = signAlice) => (await NOTE.encode(note(over), sign)).bytes

  it('seq replay (ignore), rate limit per signer (ignore), freshness (ignore)', async () => {
    const clock = new FakeClock(T0)
    const inbox = new SignedRecordInbox({ clock }, NOTE, {
      replay: { by: 'seq', seqOf: (n) => n.seq },
      freshness: fresh,
      rateLimit: { intervalMs: 1000, burst: 2 },
      maxSigners: 10,
    })
    assert.equal((await inbox.receive(await bytesOf({ seq: 1 }))).value.seq, 1)
    await assert.rejects(inbox.receive(await bytesOf({ seq: 1 })), fails('INVALID_ARGUMENT', 'ignore'))
    await inbox.receive(await bytesOf({ seq: 2 }))
    await assert.rejects(inbox.receive(await bytesOf({ seq: 3 })), fails('RATE_LIMITED', 'ignore'))
    clock.advance(1000)
    await assert.rejects(
      inbox.receive(await bytesOf({ seq: 3, ts: T0 - 60_001 })),
      fails('INVALID_ARGUMENT', 'ignore'),
    )
    await assert.rejects(
      inbox.receive(await bytesOf({ seq: 3, ts: T0 + 6001 })),
      fails('INVALID_ARGUMENT', 'ignore'),
    )
    await inbox.receive(await bytesOf({ seq: 3 }))
    assert.equal(inbox.lastSeq(aliceId), 3)
  })

  it('forgeries naming a signer spend none of its tokens', async () => {
    const inbox = new SignedRecordInbox({ clock: new FakeClock(T0) }, NOTE, {
      rateLimit: { intervalMs: 60_000, burst: 1 },
      maxSigners: 10,
    })
    for (let i = 0; i < 3; i++) {
      const forged = rawEnvelope(noteType.encodeBody(note({ seq: i })), signMallory)
      await assert.rejects(inbox.receive(forged), fails('SIGNATURE_INVALID', 'ban'))
    }
    await inbox.receive(await bytesOf({}))
  })

  it('authority: a signer the callback refuses is NOT_AUTHORIZED (reject) and accountable', async () => {
    const inbox = new SignedRecordInbox({ clock: new FakeClock(T0) }, NOTE, {
      authority: (signer, n) => signer === aliceId && n.text !== 'forbidden',
      maxSigners: 10,
    })
    await inbox.receive(await bytesOf({}))
    const refused = await inbox
      .receive(await bytesOf({ author: malloryId }, signMallory))
      .catch((e: unknown) => e)
    assert.ok(fails('NOT_AUTHORIZED', 'reject')(refused))
    assert.equal(accountableSigner(refused), malloryId)
    await assert.rejects(
      inbox.receive(await bytesOf({ text: 'forbidden' })),
      fails('NOT_AUTHORIZED', 'reject'),
    )
  })

  it('window replay: a record is accepted once until it ages out; memory is bounded', async () => {
    const clock = new FakeClock(T0)
    const inbox = new SignedRecordInbox({ clock }, NOTE, {
      replay: { by: 'window', maxRecords: 2 },
      freshness: fresh,
      maxSigners: 10,
    })
    const a = await bytesOf({ text: 'a' })
    await inbox.receive(a)
    await assert.rejects(
      inbox.receive(a),
      (e) => fails('INVALID_ARGUMENT', 'ignore')(e) && (e as NodusError).details.reason === 'replay',
    )
    await inbox.receive(await bytesOf({ text: 'b' }))
    await inbox.receive(await bytesOf({ text: 'c' }))
    // Beyond maxRecords the oldest is forgotten (and may be replayed within its window).
    await inbox.receive(a)
    clock.advance(60_001)
    await assert.rejects(inbox.receive(a), fails('INVALID_ARGUMENT', 'ignore')) // now stale
    assert.throws(
      () =>
        new SignedRecordInbox({ clock }, NOTE, { replay: { by: 'window', maxRecords: 2 }, maxSigners: 1 }),
      fails('INVALID_ARGUMENT'),
    )
  })

  it('reports each outcome to the metrics hooks', async () => {
    const seen: string[] = []
    const inbox = new SignedRecordInbox(
      {
        clock: new FakeClock(T0),
        metrics: {
          accepted: (kind) => seen.push(`${kind} accepted`),
          refused: (kind, code, action) => seen.push(`${kind} ${code} ${action}`),
        },
      },
      NOTE,
      { replay: { by: 'seq', seqOf: (n) => n.seq }, maxSigners: 10 },
    )
    const b = await bytesOf({})
    await inbox.receive(b)
    await inbox.receive(b).catch(() => undefined)
    await inbox.receive(Uint8Array.of(1)).catch(() => undefined)
    assert.deepEqual(seen, ['note accepted', 'note INVALID_ARGUMENT ignore', 'note INVALID_ARGUMENT reject'])
  })

  it('bounds what it tracks to maxSigners', async () => {
    const clock = new FakeClock(T0)
    const gate = new IssuerGate({ clock }, { maxIssuers: 2 }, 'INVALID_ARGUMENT', 'note')
    for (const [i, who] of ['a', 'b', 'c'].entries()) gate.commit(who, i)
    assert.equal(gate.lastSeq('a'), undefined, 'the least recently used issuer is forgotten')
    assert.equal(gate.lastSeq('c'), 2)
    gate.commit('c') // no seq: nothing recorded, no rate limit set
    assert.equal(gate.lastSeq('c'), 2)
    assert.throws(() => new IssuerGate({ clock }, { maxIssuers: 0 }, 'INVALID_ARGUMENT', 'note'), NodusError)
    assert.throws(
      () => new IssuerGate({ clock }, { burst: 1, maxIssuers: 1 }, 'INVALID_ARGUMENT', 'note'),
      NodusError,
    )
  })
})
