/**
 * A host of a private (sealed) database (src/kv/sealed.ts) on a real engine over LMDB on disk: it
 * holds only ciphertext (every byte of its data files is scanned for the values written), refuses
 * plaintext values and the ops that cannot work sealed with no state change, and a reader with a
 * share reads what a non-reader cannot. Privacy is a function of the set of creates held: a late
 * create never unseals a database, and a late sealed create voids the plaintext ops held before it.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { seededRandom } from '../../src/common/random.ts'
import {
  createKeyRecord,
  identityFromSeeds,
  type KeyRecord,
  type NodeIdentity,
  type RecipientKeys,
  SignatureVerifier,
  xwingKeyPairFromSeed,
} from '../../src/crypto/index.ts'
import { sharesFor } from '../../src/kv/auth-store.ts'
import { formatDbId } from '../../src/kv/db-id.ts'
import { createArgs } from '../../src/kv/db-ops.ts'
import { KvEngine, type SubmitResult } from '../../src/kv/engine.ts'
import { HlcClock } from '../../src/kv/hlc.ts'
import { readKey } from '../../src/kv/key-read.ts'
import { DEFAULT_OP_LIMITS, encodeOp, type OpInput, openOp } from '../../src/kv/op.ts'
import type { Hlc, Op } from '../../src/kv/op-types.ts'
import { itemKey } from '../../src/kv/reconcile/fingerprint.ts'
import { type DbKeyring, openRead, sealArgs } from '../../src/kv/sealed.ts'
import { keyringFromShares, sealDbKey, shareArgs } from '../../src/kv/sealed-share.ts'
import { ed25519OpSigner } from '../../src/kv/signer.ts'
import { LmdbOrderedStore } from '../../src/kv/store/lmdb-store.ts'
import { MemoryOrderedStore, type OrderedStore } from '../../src/kv/store/ordered.ts'
import { FakeClock } from '../utils/fake-clock.ts'

const T0 = 1_750_000_000_000
const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const at = (dms: number): Hlc => ({ ms: T0 + dms, c: 0 })
const random = seededRandom(5)
const [alice, bob, carol] = (await Promise.all(
  [1, 3, 5].map((b) => identityFromSeeds(seed(b), seed(b + 1))),
)) as [NodeIdentity, NodeIdentity, NodeIdentity]
const signer = ed25519OpSigner(alice.ed25519)
const MARKER = 'ZQXJ-PLAINTEXT-MARKER-7731'

/** A reader node: its X-Wing key and its signed key record. */
async function readerOf(id: NodeIdentity, b: number): Promise<{ record: KeyRecord; keys: RecipientKeys }> {
  const keyPair = xwingKeyPairFromSeed(seed(b))
  const record = (await createKeyRecord(id, keyPair, { epoch: 0, notBefore: T0, notAfter: T0 + 86_400_000 }))
    .value
  return { record, keys: { peerId: id.peerId.toString(), keys: [{ epoch: 0, keyPair }] } }
}
const bobR = await readerOf(bob, 0x20)
const carolR = await readerOf(carol, 0x22)

function engineOn(store: OrderedStore): KvEngine {
  const clock = new FakeClock(T0 + 60_000)
  const verifier = new SignatureVerifier()
  return new KvEngine(
    {
      store,
      clock,
      hlc: new HlcClock({ clock }, { maxFutureSkewMs: 60_000 }),
      random: seededRandom(7),
      verify: async (check) => verifier.verify(check),
    },
    { limits: DEFAULT_OP_LIMITS },
  )
}

const op = (db: string, input: Partial<OpInput> & { hlc: Hlc }): Promise<Op> =>
  encodeOp({ db, key: 'k', type: 'string', op: 'set', args: ['v'], ...input }, signer)
const create = (db: string, hlc: Hlc, sealed?: boolean) =>
  op(db, { type: 'db', op: 'create', key: '', args: createArgs(sealed === undefined ? {} : { sealed }), hlc })
const share = (db: string, key: Uint8Array, epoch: number, record: KeyRecord, hlc: Hlc) =>
  op(db, { type: 'db', op: 'share', key: '', args: shareArgs(sealDbKey(db, key, epoch, record)), hlc })
/** A key op with its values sealed under the newest key of `keys`. */
const sealedOp = (db: string, keys: DbKeyring, input: Partial<OpInput> & { hlc: Hlc }) => {
  const full = { db, key: 'k', type: 'string' as const, op: 'set', args: ['v'], ...input }
  return op(db, { ...full, args: sealArgs(full, keys, random) })
}
const statuses = (rs: SubmitResult[]): string[] =>
  rs.map((r) => (r.status === 'refused' ? `refused:${r.code}` : r.status))
const dump = (s: MemoryOrderedStore): string[] =>
  [...s.range()].map(([k, v]) => `${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`)
const keyringOf = (e: KvEngine, db: string, r: { record: KeyRecord; keys: RecipientKeys }) =>
  keyringFromShares(
    db,
    sharesFor(e.reader, db, r.record.keyId).map((b) => openOp(b)),
    r.keys,
  )
const read = (e: KvEngine, db: string, key: string) => readKey(e.reader, db, key, {}, T0 + 60_000)

/** Every byte of every file under `dir`: whether `needle` occurs. */
async function filesHold(dir: string, needle: string): Promise<boolean> {
  const bytes = Buffer.from(needle)
  for (const f of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!f.isFile()) continue
    if ((await readFile(join(f.parentPath, f.name))).includes(bytes)) return true
  }
  return false
}

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

/** Write the same mix of values, with the marker in every value, to `db` on an LMDB engine in a new dir. */
async function hostWith(name: string, sealed: boolean) {
  const dir = await mkdtemp(join(tmpdir(), `nodus-kv-sealed-${name}-`))
  dirs.push(dir)
  const store = LmdbOrderedStore.open({ path: dir })
  const e = engineOn(store)
  const db = formatDbId(name, alice.ed25519.publicKey.raw)
  const k0 = random.bytes(32)
  const keys = new Map([[0, k0]])
  const write = (input: Partial<OpInput> & { hlc: Hlc }) =>
    sealed ? sealedOp(db, keys, input) : op(db, input)
  const ops = [
    await create(db, at(0), sealed),
    await share(db, k0, 0, bobR.record, at(1)),
    await write({ key: 'title', args: [`${MARKER}-string`], hlc: at(2) }),
    await write({
      key: 'profile',
      type: 'hash',
      op: 'hset',
      args: ['name', `${MARKER}-hash`, 'age', 41],
      hlc: at(3),
    }),
    await write({
      key: 'log',
      type: 'list',
      op: 'rpush',
      args: [`${MARKER}-list-a`, `${MARKER}-list-b`],
      hlc: at(4),
    }),
    await write({
      key: 'events',
      type: 'stream',
      op: 'xadd',
      args: ['*', 'msg', `${MARKER}-stream`],
      hlc: at(5),
    }),
  ]
  assert.deepEqual(
    statuses(
      await e.submit(
        ops.map((o) => o.bytes),
        'gossip',
      ),
    ),
    ops.map(() => 'applied'),
  )
  return { dir, store, e, db }
}

describe('a private database’s host', () => {
  it('holds only ciphertext: no value’s bytes anywhere in its LMDB files (a plain database’s do show)', async () => {
    const priv = await hostWith('private', true)
    const plain = await hostWith('plain', false)
    // The reader opens every value from the host's state, with the share it finds there.
    const keys = keyringOf(priv.e, priv.db, bobR)
    assert.deepEqual([...keys.keys()], [0])
    const title = read(priv.e, priv.db, 'title')
    assert.equal(openRead(keys, priv.db, 'title', title.type, title.value), `${MARKER}-string`)
    const h = read(priv.e, priv.db, 'profile')
    assert.deepEqual(openRead(keys, priv.db, 'profile', h.type, h.value), [
      ['age', 41],
      ['name', `${MARKER}-hash`],
    ])
    const l = read(priv.e, priv.db, 'log')
    assert.deepEqual(
      (openRead(keys, priv.db, 'log', l.type, l.value) as { value: string }[]).map((x) => x.value),
      [`${MARKER}-list-a`, `${MARKER}-list-b`],
    )
    const s = read(priv.e, priv.db, 'events')
    assert.deepEqual(
      (openRead(keys, priv.db, 'events', s.type, s.value) as { fields: string[] }[])[0]?.fields,
      ['msg', `${MARKER}-stream`],
    )
    await priv.store.close()
    await plain.store.close()
    assert.equal(await filesHold(plain.dir, MARKER), true, 'the scan finds a plain database’s values')
    assert.equal(
      await filesHold(priv.dir, MARKER),
      false,
      'a private database’s host holds a plaintext value',
    )
    // Keys and field names stay plaintext: hosts merge and range over them.
    assert.equal(await filesHold(priv.dir, 'profile'), true)
  })

  it('refuses plaintext values and ops that cannot work sealed, with no state change', async () => {
    const store = new MemoryOrderedStore()
    const e = engineOn(store)
    const db = formatDbId('strict', alice.ed25519.publicKey.raw)
    const keys = new Map([[0, seed(9)]])
    await e.submit(
      [(await create(db, at(0), true)).bytes, (await sealedOp(db, keys, { hlc: at(1) })).bytes],
      'local',
    )
    const before = dump(store)
    const refused = [
      await op(db, { args: ['plain'], hlc: at(2) }),
      await op(db, { key: 'h', type: 'hash', op: 'hset', field: 'f', args: ['plain'], hlc: at(3) }),
      await op(db, { key: 'z', type: 'zset', op: 'zadd', args: [1, 'm'], hlc: at(4) }),
      await op(db, { key: 's', type: 'set', op: 'sadd', args: ['m'], hlc: at(5) }),
      await op(db, { key: 'j', type: 'json', op: 'json.set', args: [{ a: 1 }], hlc: at(6) }),
    ]
    const rs = await e.submit(
      refused.map((o) => o.bytes),
      'gossip',
    )
    assert.deepEqual(
      statuses(rs),
      refused.map(() => 'refused:KV_OP_INVALID'),
    )
    for (const r of rs) assert.equal(r.status === 'refused' && r.peerAction, 'ignore')
    assert.deepEqual(dump(store), before)
    // del works on any key, and a sealed overwrite is applied.
    assert.deepEqual(
      statuses(await e.submit([(await op(db, { op: 'del', args: [], hlc: at(7) })).bytes], 'local')),
      ['applied'],
    )
  })

  it('a reader with a share reads; a node without one cannot; rotation leaves a removed reader the old epoch only', async () => {
    const e = engineOn(new MemoryOrderedStore())
    const db = formatDbId('rotating', alice.ed25519.publicKey.raw)
    const k0 = seed(0x30)
    const k1 = seed(0x31)
    const ops = [
      await create(db, at(0), true),
      await share(db, k0, 0, bobR.record, at(1)),
      await share(db, k0, 0, carolR.record, at(2)),
      await sealedOp(db, new Map([[0, k0]]), { key: 'old', args: ['before rotation'], hlc: at(3) }),
      // Carol is removed: epoch 1 goes to bob alone, and new writes use it.
      await share(db, k1, 1, bobR.record, at(4)),
      await sealedOp(
        db,
        new Map([
          [0, k0],
          [1, k1],
        ]),
        { key: 'new', args: ['after rotation'], hlc: at(5) },
      ),
    ]
    assert.deepEqual(
      statuses(
        await e.submit(
          ops.map((o) => o.bytes),
          'sync',
        ),
      ),
      ops.map(() => 'applied'),
    )
    const bobKeys = keyringOf(e, db, bobR)
    const carolKeys = keyringOf(e, db, carolR)
    assert.deepEqual([...bobKeys.keys()].sort(), [0, 1])
    assert.deepEqual([...carolKeys.keys()], [0])
    const old = read(e, db, 'old')
    const neu = read(e, db, 'new')
    assert.equal(openRead(bobKeys, db, 'new', neu.type, neu.value), 'after rotation')
    assert.equal(openRead(carolKeys, db, 'old', old.type, old.value), 'before rotation')
    assert.throws(() => openRead(carolKeys, db, 'new', neu.type, neu.value), { code: 'KV_DB_KEY_MISSING' })
    // A node with no share (alice's own X-Wing key here) gets no key at all.
    const none = await readerOf(alice, 0x40)
    assert.equal(keyringOf(e, db, none).size, 0)
    // A share signed by someone other than the owner is ignored even when it is addressed to bob.
    const forged = await encodeOp(
      {
        db,
        key: '',
        type: 'db',
        op: 'share',
        args: shareArgs(sealDbKey(db, seed(0x66), 2, bobR.record)),
        hlc: at(6),
      },
      ed25519OpSigner(bob.ed25519),
    )
    assert.equal(keyringFromShares(db, [forged], bobR.keys).size, 0)
  })
})

describe('privacy is a function of the held creates', () => {
  it('a late create without the option does not unseal a database', async () => {
    const e = engineOn(new MemoryOrderedStore())
    const db = formatDbId('stays', alice.ed25519.publicKey.raw)
    await e.submit([(await create(db, at(0), true)).bytes], 'local')
    assert.deepEqual(statuses(await e.submit([(await create(db, at(1), false)).bytes], 'gossip')), [
      'applied',
    ])
    assert.deepEqual(
      statuses(await e.submit([(await op(db, { args: ['plain'], hlc: at(2) })).bytes], 'gossip')),
      ['refused:KV_OP_INVALID'],
    )
  })

  it('a late sealed create voids the plaintext ops held before it: the state of a node that saw it first', async () => {
    const db = formatDbId('flip', alice.ed25519.publicKey.raw)
    const keys = new Map([[0, seed(0x50)]])
    const plainCreate = await create(db, at(0))
    const sealedCreate = await create(db, at(1), true)
    const writes = [
      await op(db, { key: 'a', args: ['plain a'], hlc: at(2) }),
      await sealedOp(db, keys, { key: 'b', args: ['sealed b'], hlc: at(3) }),
      await op(db, { key: 'c', type: 'hash', op: 'hset', field: 'f', args: ['plain c'], hlc: at(4) }),
    ]
    const late = new MemoryOrderedStore()
    const lateE = engineOn(late)
    assert.deepEqual(
      statuses(
        await lateE.submit(
          [plainCreate, ...writes].map((o) => o.bytes),
          'gossip',
        ),
      ),
      ['applied', 'applied', 'applied', 'applied'],
    )
    assert.deepEqual(statuses(await lateE.submit([sealedCreate.bytes], 'gossip')), ['applied'])
    assert.equal(lateE.getOp(writes[0]?.id as Uint8Array), undefined, 'the plaintext op is dropped')
    assert.throws(() => read(lateE, db, 'a'), { code: 'KV_KEY_NOT_FOUND' })

    const first = new MemoryOrderedStore()
    const firstE = engineOn(first)
    const rs = await firstE.submit(
      [sealedCreate, plainCreate, ...writes].map((o) => o.bytes),
      'gossip',
    )
    assert.deepEqual(statuses(rs), [
      'applied',
      'applied',
      'refused:KV_OP_INVALID',
      'applied',
      'refused:KV_OP_INVALID',
    ])
    // The same op log, state and reconciliation set (salts differ per store: compare what is not salted).
    const ids = (s: MemoryOrderedStore) => dump(s).filter((l) => !l.startsWith('4'))
    assert.deepEqual(ids(late), ids(first))
    const ixLate = await lateE.index(db)
    const ixFirst = await firstE.index(db)
    const all = (ix: typeof ixLate, s: MemoryOrderedStore) => ix.count(s, new Uint8Array(0), undefined)
    assert.equal(all(ixLate, late), 3)
    assert.equal(all(ixFirst, first), 3)
    for (const o of [sealedCreate, plainCreate, ...writes])
      assert.equal(ixLate.has(late, itemKey(o.body.hlc, o.id)), ixFirst.has(first, itemKey(o.body.hlc, o.id)))
    const b = read(lateE, db, 'b')
    assert.equal(openRead(keys, db, 'b', b.type, b.value), 'sealed b')
  })
})
