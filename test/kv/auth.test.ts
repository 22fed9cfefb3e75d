/**
 * Authorization of kv operations (src/kv/auth.ts) and its records on the ordered store
 * (src/kv/auth-store.ts): owner and writers, capabilities (expiry, prefix, database), revocation by
 * HLC whatever the arrival order, hybrid mode, replays.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { identityFromSeeds, type NodeIdentity } from '../../src/crypto/index.ts'
import { type AuthChange, AuthState, admitOp, getOp, hasOp, removeOp } from '../../src/kv/auth-store.ts'
import { formatDbId } from '../../src/kv/db-id.ts'
import { createArgs, type Grant, grantArgs, revokeArgs } from '../../src/kv/db-ops.ts'
import { encodeOp, type OpInput } from '../../src/kv/op.ts'
import type { Hlc, Op } from '../../src/kv/op-types.ts'
import { ed25519OpSigner, hybridOpSigner, type OpSigner } from '../../src/kv/signer.ts'
import { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'
import { refused } from '../crypto/refused.ts'
import { assertProperty } from '../utils/property.ts'

const T0 = 1_750_000_000_000
const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const at = (dms: number, c = 0): Hlc => ({ ms: T0 + dms, c })

const ids = await Promise.all([1, 3, 5, 7].map((b) => identityFromSeeds(seed(b), seed(b + 1))))
const [alice, bob, carol, mallory] = ids as [NodeIdentity, NodeIdentity, NodeIdentity, NodeIdentity]
const ed = (id: NodeIdentity): OpSigner => ed25519OpSigner(id.ed25519)
const hy = (id: NodeIdentity): OpSigner => hybridOpSigner(id)
const pub = (id: NodeIdentity): Uint8Array => id.ed25519.publicKey.raw
const hybridKey = (id: NodeIdentity): Uint8Array => Uint8Array.from([...pub(id), ...id.mldsa.publicKey])

const db = formatDbId('app', pub(alice))
const other = formatDbId('other', pub(alice))

const sign = (signer: OpSigner, input: Partial<OpInput> & { hlc: Hlc }): Promise<Op> =>
  encodeOp({ db, key: 'k', type: 'string', op: 'set', args: ['v'], ...input }, signer)
const create = (signer: OpSigner, hlc: Hlc, inDb = db) =>
  sign(signer, { db: inDb, type: 'db', op: 'create', key: '', args: createArgs(), hlc })
const grant = (signer: OpSigner, g: Grant, hlc: Hlc, inDb = db) =>
  sign(signer, { db: inDb, type: 'db', op: 'grant', key: '', args: grantArgs(g), hlc })
const revoke = (signer: OpSigner, grantOp: Op, hlc: Hlc, inDb = db) =>
  sign(signer, { db: inDb, type: 'db', op: 'revoke', key: '', args: revokeArgs(grantOp.id), hlc })

const admit = (store: MemoryOrderedStore, op: Op): Promise<AuthChange> => store.write((w) => admitOp(w, op))
const denied = (reason: string, peerAction = 'ignore') => refused('KV_UNAUTHORIZED', peerAction, reason)

async function storeWith(...ops: Op[]): Promise<MemoryOrderedStore> {
  const store = new MemoryOrderedStore()
  for (const op of ops) await admit(store, op)
  return store
}

describe('kv auth: the owner', () => {
  it('creates, writes, grants and revokes; a replayed op is refused as a duplicate', async () => {
    const c = await create(ed(alice), at(0))
    const store = await storeWith(c)
    const set = await sign(ed(alice), { hlc: at(1) })
    await admit(store, set)
    assert.ok(hasOp(store, set.id))
    assert.deepEqual(getOp(store, set.id), set.bytes)
    await assert.rejects(admit(store, set), refused('KV_OP_DUPLICATE', 'ignore'))
    await assert.rejects(admit(store, c), refused('KV_OP_DUPLICATE', 'ignore'))
  })

  it('nothing but a create is accepted before the database’s create is held', async () => {
    const store = new MemoryOrderedStore()
    await assert.rejects(admit(store, await sign(ed(alice), { hlc: at(1) })), denied('db-unknown'))
    const g = await grant(ed(alice), { writer: pub(bob) }, at(1))
    await assert.rejects(admit(store, g), denied('db-unknown'))
    assert.equal(store.size, 0, 'a refused op writes nothing')
  })

  it('only the owner creates, grants and revokes', async () => {
    const c = await create(ed(alice), at(0))
    const store = await storeWith(c)
    await assert.rejects(admit(store, await create(ed(mallory), at(1))), denied('not-owner', 'reject'))
    const g = await grant(ed(mallory), { writer: pub(mallory) }, at(1))
    await assert.rejects(admit(store, g), denied('not-owner', 'reject'))
    const real = await grant(ed(alice), { writer: pub(bob) }, at(2))
    await admit(store, real)
    // Bob holds a capability, but a capability covers keys, never db operations.
    const r = await sign(ed(bob), {
      type: 'db',
      op: 'revoke',
      key: '',
      args: revokeArgs(real.id),
      hlc: at(3),
    })
    await assert.rejects(admit(store, r), denied('not-owner', 'reject'))
  })

  it('a create whose owner key is a small-order point is refused', async () => {
    const identity = new Uint8Array(32)
    identity[0] = 1
    const { base58btc } = await import('multiformats/bases/base58')
    const weak = `weak-${base58btc.encode(Uint8Array.of(0xed, 0x01, ...identity))}`
    const fake: OpSigner = { scheme: 'ed25519', publicKey: identity, sign: () => new Uint8Array(64) }
    const c = await create(fake, at(0), weak)
    await assert.rejects(admit(new MemoryOrderedStore(), c), refused('KV_OP_INVALID', 'reject'))
  })
})

describe('kv auth: writers and capabilities', () => {
  it('a writer needs a capability: held, its own, of this database, after the grant', async () => {
    const c = await create(ed(alice), at(0))
    const g = await grant(ed(alice), { writer: pub(bob) }, at(10))
    const store = await storeWith(c, g)
    await assert.rejects(
      admit(store, await sign(ed(bob), { hlc: at(11) })),
      denied('no-capability', 'reject'),
    )
    await admit(store, await sign(ed(bob), { hlc: at(11), cap: g.id }))
    // Carol presents Bob's capability.
    await assert.rejects(
      admit(store, await sign(ed(carol), { hlc: at(12), cap: g.id })),
      denied('no-capability'),
    )
    // A capability this node does not hold (yet).
    const unknown = await sign(ed(bob), { hlc: at(12), cap: new Uint8Array(32).fill(7) })
    await assert.rejects(admit(store, unknown), denied('no-capability'))
    // Dated before the grant (or at it).
    await assert.rejects(
      admit(store, await sign(ed(bob), { hlc: at(9), cap: g.id })),
      denied('no-capability'),
    )
    await assert.rejects(
      admit(store, await sign(ed(bob), { hlc: at(10), cap: g.id })),
      denied('no-capability'),
    )
    // In another of Alice's databases.
    await admit(store, await create(ed(alice), at(0), other))
    const elsewhere = await sign(ed(bob), { db: other, hlc: at(13), cap: g.id })
    await assert.rejects(admit(store, elsewhere), denied('wrong-db'))
  })

  it('a capability expires by the operation’s HLC, not this node’s clock', async () => {
    const g = await grant(ed(alice), { writer: pub(bob), expiresAt: T0 + 100 }, at(10))
    const store = await storeWith(await create(ed(alice), at(0)), g)
    await admit(store, await sign(ed(bob), { hlc: at(99, 65_535), cap: g.id }))
    const late = await sign(ed(bob), { hlc: at(100), cap: g.id })
    await assert.rejects(admit(store, late), denied('capability-expired'))
  })

  it('a capability with a prefix covers only keys under it', async () => {
    const g = await grant(ed(alice), { writer: pub(bob), prefix: 'bob/' }, at(10))
    const store = await storeWith(await create(ed(alice), at(0)), g)
    await admit(store, await sign(ed(bob), { key: 'bob/x', hlc: at(11), cap: g.id }))
    await assert.rejects(
      admit(store, await sign(ed(bob), { key: 'alice/x', hlc: at(12), cap: g.id })),
      denied('out-of-scope'),
    )
  })

  it('a revoke of another database’s grant is refused, or, grant unseen, touches nothing', async () => {
    const g = await grant(ed(alice), { writer: pub(bob) }, at(10))
    const store = await storeWith(await create(ed(alice), at(0)), g)
    // Mallory owns her own database and revokes Alice's grant from it.
    const mdb = formatDbId('m', pub(mallory))
    await admit(store, await create(ed(mallory), at(0), mdb))
    await assert.rejects(admit(store, await revoke(ed(mallory), g, at(5), mdb)), denied('wrong-db'))
    // The same from a node that has not seen the grant yet: recorded under Mallory's database only.
    const fresh = await storeWith(await create(ed(alice), at(0)), await create(ed(mallory), at(0), mdb))
    await admit(fresh, await revoke(ed(mallory), g, at(5), mdb))
    await admit(fresh, g)
    await admit(fresh, await sign(ed(bob), { hlc: at(11), cap: g.id }))
    assert.equal(new AuthState(fresh).revokedAt(g.id, db), undefined)
  })
})

describe('kv auth: revocation by HLC', () => {
  it('voids the capability’s operations at or after the revoke, keeps those before', async () => {
    const g = await grant(ed(alice), { writer: pub(bob) }, at(10))
    const before = await sign(ed(bob), { key: 'a', hlc: at(50), cap: g.id })
    const same = await sign(ed(bob), { key: 'b', hlc: at(100), cap: g.id })
    const afterRev = await sign(ed(bob), { key: 'c', hlc: at(150), cap: g.id })
    const owner = await sign(ed(alice), { key: 'd', hlc: at(200), cap: g.id }) // the owner needs no cap
    const store = await storeWith(await create(ed(alice), at(0)), g, before, same, afterRev, owner)
    const change = await admit(store, await revoke(ed(alice), g, at(100)))
    assert.deepEqual(change.invalidated.map(hex).sort(), [same.id, afterRev.id].map(hex).sort())
    for (const op of [same, afterRev]) await store.write((w) => removeOp(w, op))
    await assert.rejects(admit(store, same), denied('capability-revoked'))
    await assert.rejects(admit(store, afterRev), denied('capability-revoked'))
    await assert.rejects(
      admit(store, await sign(ed(bob), { hlc: at(300), cap: g.id })),
      denied('capability-revoked'),
    )
    await admit(store, await sign(ed(bob), { key: 'late-but-old', hlc: at(99), cap: g.id }))
    // A later revoke of the same grant changes nothing; an earlier one moves the line back.
    assert.deepEqual((await admit(store, await revoke(ed(alice), g, at(120)))).invalidated, [])
    const earlier = await admit(store, await revoke(ed(alice), g, at(60)))
    assert.equal(earlier.invalidated.length, 1)
    assert.deepEqual(new AuthState(store).revokedAt(g.id, db), at(60))
  })

  it('every arrival order, with duplicates, ends with the same operations held (property)', async () => {
    const g = await grant(ed(alice), { writer: pub(bob), prefix: 'b/' }, at(10))
    const g2 = await grant(ed(alice), { writer: pub(carol), expiresAt: T0 + 500 }, at(20))
    const ops: Op[] = [
      await create(ed(alice), at(0)),
      g,
      g2,
      await revoke(ed(alice), g, at(300)),
      await sign(ed(alice), { key: 'x', hlc: at(400) }),
      ...(await Promise.all(
        [5, 50, 299, 300, 301, 1000].map((d) => sign(ed(bob), { key: `b/${d}`, hlc: at(d), cap: g.id })),
      )),
      await sign(ed(bob), { key: 'outside', hlc: at(60), cap: g.id }),
      ...(await Promise.all(
        [30, 499, 500].map((d) => sign(ed(carol), { key: `c/${d}`, hlc: at(d), cap: g2.id })),
      )),
      await sign(ed(mallory), { key: 'm', hlc: at(40) }),
    ]
    // Held: create, both grants, the revoke, Alice's write, Bob's at 50 and 299 (before the revoke),
    // Carol's at 30 and 499 (before expiry). Refused: Bob's at 5 (before his grant), 300, 301, 1000
    // (revoked), outside his prefix; Carol's at 500 (expired); Mallory's (no capability).
    const expected = [0, 1, 2, 3, 4, 6, 7, 12, 13].map((i) => hex((ops[i] as Op).id)).sort()

    /** Deliver in `order`; refused-for-now ops (peerAction ignore) are offered again, as anti-entropy would. */
    async function held(order: number[]): Promise<string[]> {
      const store = new MemoryOrderedStore()
      const live = new Map<string, Op>()
      let queue = order.map((i) => ops[i] as Op)
      for (let progress = true; progress; ) {
        progress = false
        const retry: Op[] = []
        for (const op of queue) {
          try {
            const change = await admit(store, op)
            live.set(hex(op.id), op)
            progress = true
            for (const id of change.invalidated) {
              const voided = live.get(hex(id)) as Op
              await store.write((w) => removeOp(w, voided))
              live.delete(hex(id))
            }
          } catch (e) {
            if (isNodusError(e, 'KV_OP_DUPLICATE')) continue
            if (isNodusError(e, 'KV_UNAUTHORIZED') && e.peerAction === 'ignore') retry.push(op)
            else if (!isNodusError(e, 'KV_UNAUTHORIZED')) throw e
          }
        }
        queue = retry
      }
      for (const id of live.keys()) assert.ok(hasOp(store, Buffer.from(id, 'hex')))
      return [...live.keys()].sort()
    }

    assert.deepEqual(await held(ops.map((_, i) => i)), expected)
    const indexes = ops.map((_, i) => i)
    await assertProperty(
      fc.asyncProperty(
        fc.shuffledSubarray(indexes, { minLength: ops.length, maxLength: ops.length }),
        fc.array(fc.constantFrom(...indexes), { maxLength: 8 }),
        async (order, dups) => {
          assert.deepEqual(await held([...order, ...dups]), expected)
        },
      ),
      { numRuns: 60 },
    )
  })
})

describe('kv auth: hybrid mode', () => {
  it('refuses Ed25519-only operations, and owner keys it was not created with', async () => {
    const c = await create(hy(alice), at(0))
    const store = await storeWith(c)
    assert.deepEqual(new AuthState(store).db(db), { hybrid: true, ownerKeys: [hybridKey(alice)] })
    await assert.rejects(admit(store, await sign(ed(alice), { hlc: at(1) })), denied('hybrid-required'))
    await admit(store, await sign(hy(alice), { hlc: at(1) }))
    // Alice's Ed25519 key with another ML-DSA-65 key (Bob's): not a key the database was created with.
    const a = hy(alice)
    const b = hy(bob)
    if (a.scheme !== 'hybrid' || b.scheme !== 'hybrid') throw new Error('unreachable')
    const swapped: OpSigner = { ...a, publicKey: { ...a.publicKey, mldsa65: b.publicKey.mldsa65 } }
    await assert.rejects(admit(store, await sign(swapped, { hlc: at(2) })), denied('not-owner'))
  })

  it('grants only hybrid writers, whose hybrid operations pass', async () => {
    const store = await storeWith(await create(hy(alice), at(0)))
    await assert.rejects(
      admit(store, await grant(hy(alice), { writer: pub(bob) }, at(5))),
      denied('hybrid-required'),
    )
    const g = await grant(hy(alice), { writer: hybridKey(bob) }, at(6))
    await admit(store, g)
    await admit(store, await sign(hy(bob), { hlc: at(7), cap: g.id }))
    await assert.rejects(
      admit(store, await sign(ed(bob), { hlc: at(8), cap: g.id })),
      denied('hybrid-required'),
    )
  })

  it('a hybrid create after an Ed25519 one switches the database and says so', async () => {
    const store = await storeWith(await create(ed(alice), at(0)))
    await admit(store, await sign(ed(alice), { hlc: at(1) }))
    const change = await admit(store, await create(hy(alice), at(2)))
    assert.equal(change.becameHybrid, true)
    await assert.rejects(admit(store, await sign(ed(alice), { hlc: at(3) })), denied('hybrid-required'))
    assert.equal((await admit(store, await create(hy(alice), at(4)))).becameHybrid, false)
  })
})
