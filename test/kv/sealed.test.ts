/**
 * Private (sealed) databases (src/kv/sealed.ts, sealed-share.ts): sealed values open only with the
 * key of their epoch in the slot they were written for; a database key shared by a `share` op opens
 * only for its reader.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { NodusError } from '../../src/common/errors.ts'
import { seededRandom } from '../../src/common/random.ts'
import {
  createKeyRecord,
  identityFromSeeds,
  type KeyRecord,
  type NodeIdentity,
  type RecipientKeys,
  xwingKeyPairFromSeed,
} from '../../src/crypto/index.ts'
import { formatDbId } from '../../src/kv/db-id.ts'
import { createArgs } from '../../src/kv/db-ops.ts'
import { encodeOp } from '../../src/kv/op.ts'
import type { KvValue } from '../../src/kv/op-types.ts'
import {
  checkSealedOp,
  isSealedValue,
  openRead,
  openValue,
  SEALED_OVERHEAD_BYTES,
  sealArgs,
  sealedEpoch,
  sealValue,
  type ValueSlot,
} from '../../src/kv/sealed.ts'
import { openDbKey, parseShareArgs, sealDbKey, shareArgs } from '../../src/kv/sealed-share.ts'
import { ed25519OpSigner } from '../../src/kv/signer.ts'

const T0 = 1_750_000_000_000
const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const random = seededRandom(11)
const [alice, bob] = (await Promise.all([1, 3].map((b) => identityFromSeeds(seed(b), seed(b + 1))))) as [
  NodeIdentity,
  NodeIdentity,
]
const db = formatDbId('secrets', alice.ed25519.publicKey.raw)
const k0 = seed(0x10)
const k1 = seed(0x11)
const slot: ValueSlot = { db, key: 'k', type: 'string' }

/** A reader node: its X-Wing key and its signed key record. */
async function reader(id: NodeIdentity, b: number): Promise<{ record: KeyRecord; keys: RecipientKeys }> {
  const keyPair = xwingKeyPairFromSeed(seed(b))
  const record = (await createKeyRecord(id, keyPair, { epoch: 0, notBefore: T0, notAfter: T0 + 86_400_000 }))
    .value
  return { record, keys: { peerId: id.peerId.toString(), keys: [{ epoch: 0, keyPair }] } }
}

const code = (c: string) => (err: unknown) => err instanceof NodusError && err.code === c

describe('sealed values', () => {
  it('round-trips any kv value under the key of its epoch', () => {
    for (const v of ['secret', 42, null, { a: [1, 'b', new Uint8Array([1, 2])] }] as KvValue[]) {
      const blob = sealValue(k1, 1, slot, v, random)
      assert.ok(isSealedValue(blob))
      assert.equal(sealedEpoch(blob), 1)
      assert.ok(blob.byteLength >= SEALED_OVERHEAD_BYTES)
      assert.deepEqual(openValue(new Map([[1, k1]]), slot, blob), v)
    }
  })

  it('refuses the wrong key, a missing epoch, a moved ciphertext, a tampered header and plaintext', () => {
    const blob = sealValue(k0, 0, slot, 'secret', random)
    assert.throws(() => openValue(new Map([[0, k1]]), slot, blob), code('DECRYPT_FAILED'))
    assert.throws(() => openValue(new Map([[1, k0]]), slot, blob), code('KV_DB_KEY_MISSING'))
    const keys = new Map([
      [0, k0],
      [1, k0],
    ])
    for (const moved of [
      { ...slot, key: 'other' },
      { ...slot, db: formatDbId('other', alice.ed25519.publicKey.raw) },
      { ...slot, type: 'hash' as const, field: 'f' },
      { ...slot, type: 'list' as const },
    ])
      assert.throws(() => openValue(keys, moved, blob), code('DECRYPT_FAILED'), JSON.stringify(moved))
    const retagged = blob.slice()
    retagged[7] = 1 // epoch 0 → 1: the same key, but the header is bound
    assert.throws(() => openValue(keys, slot, retagged), code('DECRYPT_FAILED'))
    const flipped = blob.slice()
    flipped[blob.length - 1] = (flipped[blob.length - 1] as number) ^ 1
    assert.throws(() => openValue(keys, slot, flipped), code('DECRYPT_FAILED'))
    assert.throws(
      () => openValue(keys, slot, new TextEncoder().encode('secret')),
      code('KV_SEALED_VALUE_INVALID'),
    )
  })

  it('seals exactly the values of the ops that work sealed, and checks them as a host would', () => {
    const keys = new Map([[3, k1]])
    const hset = { db, key: 'h', type: 'hash' as const, op: 'hset', args: ['f1', 'v1', 'f2', 'v2'] }
    const sealed = sealArgs(hset, keys, random)
    assert.equal(sealed[0], 'f1')
    assert.equal(sealed[2], 'f2')
    assert.deepEqual(
      openValue(keys, { db, key: 'h', type: 'hash', field: 'f2' }, sealed[3] as Uint8Array),
      'v2',
    )
    // A value sealed for f1 does not open as f2's.
    assert.throws(
      () => openValue(keys, { db, key: 'h', type: 'hash', field: 'f2' }, sealed[1] as Uint8Array),
      code('DECRYPT_FAILED'),
    )
    const xadd = { db, key: 's', type: 'stream' as const, op: 'xadd', args: ['*', 'temp', 21, 'unit', 'C'] }
    const xs = sealArgs(xadd, keys, random)
    assert.equal(xs[0], '*')
    assert.equal(xs[1], 'temp')
    assert.ok(isSealedValue(xs[2]) && isSealedValue(xs[4]))
    const body = (b: Omit<Parameters<typeof checkSealedOp>[0], 'v' | 'hlc' | 'signer'>) =>
      ({ v: 1, hlc: { ms: T0, c: 0 }, signer: new Uint8Array(32), ...b }) as Parameters<
        typeof checkSealedOp
      >[0]
    checkSealedOp(body({ ...hset, args: sealed }))
    checkSealedOp(body({ ...xadd, args: xs }))
    checkSealedOp(body({ db, key: 'l', type: 'list', op: 'lrem', args: [new Uint8Array(45)] }))
    checkSealedOp(body({ db, key: 'z', type: 'zset', op: 'del', args: [] }))
    assert.throws(() => checkSealedOp(body(hset)), code('KV_OP_INVALID'))
    for (const [type, op, args] of [
      ['zset', 'zadd', [1, 'm']],
      ['set', 'sadd', ['m']],
      ['geo', 'geoadd', [1, 2, 'm']],
      ['json', 'json.set', [{}]],
      ['ts', 'ts.add', ['*', 1]],
    ] as const) {
      assert.throws(
        () => checkSealedOp(body({ db, key: 'x', type, op, args: [...args] })),
        (err) => err instanceof NodusError && err.code === 'KV_OP_INVALID' && err.peerAction === 'ignore',
        `${type}.${op}`,
      )
    }
  })

  it('opens what a read returns, per type', () => {
    const keys = new Map([[0, k0]])
    const s = (key: string, type: ValueSlot['type'], v: KvValue, field?: string) =>
      sealValue(k0, 0, { db, key, type, field }, v, random)
    assert.equal(openRead(keys, db, 'k', 'string', s('k', 'string', 'x')), 'x')
    assert.deepEqual(openRead(keys, db, 'h', 'hash', [['f', s('h', 'hash', 1, 'f')]]), [['f', 1]])
    assert.deepEqual(openRead(keys, db, 'l', 'list', [{ id: 'ab', value: s('l', 'list', 'e') }]), [
      { id: 'ab', value: 'e' },
    ])
    assert.deepEqual(
      openRead(keys, db, 'x', 'stream', [{ id: '1-0', fields: ['t', s('x', 'stream', 2, 't')] }]),
      [{ id: '1-0', fields: ['t', 2] }],
    )
  })
})

describe('database key shares', () => {
  it('open only for their reader, database and epoch', async () => {
    const b = await reader(bob, 0x20)
    const m = await reader(alice, 0x21)
    const share = sealDbKey(db, k0, 0, b.record)
    const parsed = parseShareArgs(shareArgs(share), (msg) => new NodusError('KV_OP_INVALID', msg))
    assert.deepEqual(openDbKey(db, parsed, b.keys), k0)
    assert.throws(() => openDbKey(db, parsed, m.keys), code('KV_DB_KEY_MISSING'))
    // Another reader holding bob's X-Wing key under its own PeerId: still not its share.
    assert.throws(
      () => openDbKey(db, parsed, { ...b.keys, peerId: m.keys.peerId }),
      code('KV_DB_KEY_MISSING'),
    )
    assert.throws(
      () => openDbKey(formatDbId('other', alice.ed25519.publicKey.raw), parsed, b.keys),
      code('DECRYPT_FAILED'),
    )
    assert.throws(() => openDbKey(db, { ...parsed, epoch: 1 }, b.keys), code('DECRYPT_FAILED'))
  })

  it('a create’s sealed option and a share’s args are checked as peers check them', async () => {
    const signer = ed25519OpSigner(alice.ed25519)
    const op = (args: KvValue[], name = 'create') =>
      encodeOp({ db, key: '', type: 'db', op: name, args, hlc: { ms: T0, c: 0 } }, signer)
    await op(createArgs({ sealed: true }))
    await assert.rejects(op(createArgs({ sealed: 'yes' })), code('KV_OP_INVALID'))
    const b = await reader(bob, 0x20)
    await op(shareArgs(sealDbKey(db, k0, 0, b.record)), 'share')
    await assert.rejects(
      op([{ peer: 'x', kid: new Uint8Array(32), epoch: 0 }], 'share'),
      code('KV_OP_INVALID'),
    )
    await assert.rejects(
      op([{ ...(shareArgs(sealDbKey(db, k0, 0, b.record))[0] as object), epoch: -1 }], 'share'),
      code('KV_OP_INVALID'),
    )
  })
})
