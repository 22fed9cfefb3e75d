/**
 * Byte quotas of the kv store (src/kv/quota.ts through src/kv/engine.ts): a database past
 * kv.maxDbBytes, or the node past kv.maxBytes, refuses further ops with KV_DB_FULL and keeps nothing
 * of them; the counters move in the op's own write, a revoke that voids ops gives their bytes back, and
 * a revoke passes a full database's bound.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { identityFromSeeds, type NodeIdentity } from '../../src/crypto/index.ts'
import { formatDbId } from '../../src/kv/db-id.ts'
import { createArgs, grantArgs, revokeArgs } from '../../src/kv/db-ops.ts'
import type { SubmitResult } from '../../src/kv/engine.ts'
import { encodeOp, type OpInput } from '../../src/kv/op.ts'
import type { Hlc, Op } from '../../src/kv/op-types.ts'
import { type ByteQuota, dbBytes, totalBytes } from '../../src/kv/quota.ts'
import { ed25519OpSigner } from '../../src/kv/signer.ts'
import { get } from '../../src/kv/state/basic.ts'
import type { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { memoryKvEngine } from '../utils/kv-engine.ts'

const T0 = 1_750_000_000_000
const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const at = (dms: number): Hlc => ({ ms: T0 + dms, c: 0 })
const [alice, bob] = (await Promise.all([1, 3].map((b) => identityFromSeeds(seed(b), seed(b + 1))))) as [
  NodeIdentity,
  NodeIdentity,
]
const dbA = formatDbId('a', alice.ed25519.publicKey.raw)
const dbB = formatDbId('b', alice.ed25519.publicKey.raw)

const sign = (who: NodeIdentity, input: Partial<OpInput> & { db: string; hlc: Hlc }): Promise<Op> =>
  encodeOp({ key: 'k', type: 'string', op: 'set', args: ['v'], ...input }, ed25519OpSigner(who.ed25519))
const create = (db: string, hlc: Hlc) =>
  sign(alice, { db, type: 'db', op: 'create', key: '', args: createArgs(), hlc })
/** A set of about `bytes` bytes (value of `bytes` x's). */
const big = (db: string, n: number, bytes = 4000) =>
  sign(alice, { db, key: `k${n}`, args: ['x'.repeat(bytes)], hlc: at(10 + n) })

const engine = (quota: ByteQuota) => memoryKvEngine(new FakeClock(T0 + 60_000), quota)

const statuses = (rs: SubmitResult[]): string[] =>
  rs.map((r) => (r.status === 'refused' ? `refused:${r.code}` : r.status))
const dump = (s: MemoryOrderedStore): string[] =>
  [...s.range()].map(([k, v]) => `${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`)
const sizeOf = (ops: Op[]): number => ops.reduce((n, o) => n + o.bytes.byteLength, 0)

describe('kv byte quotas', () => {
  it('a database past kv.maxDbBytes refuses further ops with KV_DB_FULL, keeping nothing of them', async () => {
    const c = await create(dbA, at(0))
    const fills = await Promise.all([0, 1, 2].map((n) => big(dbA, n)))
    // Room for the create and two 4 KB sets, not three.
    const limit = sizeOf([c, ...fills.slice(0, 2)]) + 1000
    const { engine: e, store } = engine({ maxDbBytes: limit, maxBytes: 1_000_000 })
    assert.deepEqual(
      statuses(await e.submit([c.bytes, ...fills.slice(0, 2).map((o) => o.bytes)], 'gossip')),
      ['applied', 'applied', 'applied'],
    )
    assert.equal(dbBytes(store, dbA), sizeOf([c, ...fills.slice(0, 2)]))
    const before = dump(store)
    const [r] = await e.submit([(fills[2] as Op).bytes], 'sync')
    assert.equal(r?.status, 'refused')
    assert.ok(r?.status === 'refused')
    assert.equal(r.code, 'KV_DB_FULL')
    assert.equal(r.peerAction, 'ignore')
    assert.deepEqual(dump(store), before, 'no op, state, index entry or counter of the refused op')
    assert.equal(e.getOp((fills[2] as Op).id), undefined)
    assert.equal(get(store, dbA, 'k2', { nowMs: T0 }), undefined)
    // The node's own writes get the same bound.
    const local = await sign(alice, { db: dbA, key: 'small', args: ['x'.repeat(1200)], hlc: at(50) })
    assert.deepEqual(statuses(await e.submit([local.bytes], 'local')), ['refused:KV_DB_FULL'])
    // Another database is not affected, and the total counts both.
    const cb = await create(dbB, at(1))
    assert.deepEqual(statuses(await e.submit([cb.bytes, (await big(dbB, 0)).bytes], 'gossip')), [
      'applied',
      'applied',
    ])
    assert.equal(totalBytes(store), dbBytes(store, dbA) + dbBytes(store, dbB))
  })

  it('a submission that crosses the bound keeps the ops before it whole and none after', async () => {
    const c = await create(dbA, at(0))
    const fills = await Promise.all([0, 1, 2, 3, 4].map((n) => big(dbA, n)))
    const { engine: e, store } = engine({
      maxDbBytes: sizeOf([c, ...fills.slice(0, 3)]),
      maxBytes: 1_000_000,
    })
    const rs = await e.submit(
      [c, ...fills].map((o) => o.bytes),
      'gossip',
    )
    assert.deepEqual(statuses(rs), [
      'applied',
      'applied',
      'applied',
      'applied',
      'refused:KV_DB_FULL',
      'refused:KV_DB_FULL',
    ])
    // Exactly what a node given only the applied ops holds.
    const other = engine({ maxDbBytes: 1_000_000, maxBytes: 1_000_000 })
    await other.engine.submit(
      [c, ...fills.slice(0, 3)].map((o) => o.bytes),
      'gossip',
    )
    assert.deepEqual(dump(store), dump(other.store))
    const ix = await e.index(dbA)
    assert.equal(ix.count(store, new Uint8Array(0), undefined), 4)
  })

  it('kv.maxBytes bounds all databases together', async () => {
    const ca = await create(dbA, at(0))
    const cb = await create(dbB, at(1))
    const a0 = await big(dbA, 0)
    const b0 = await big(dbB, 0)
    const { engine: e } = engine({ maxDbBytes: 1_000_000, maxBytes: sizeOf([ca, cb, a0]) + 100 })
    const rs = await e.submit([ca.bytes, cb.bytes, a0.bytes, b0.bytes], 'gossip')
    assert.deepEqual(statuses(rs), ['applied', 'applied', 'applied', 'refused:KV_DB_FULL'])
    const r = rs[3]
    assert.ok(r?.status === 'refused')
    assert.match(r.message, /kv\.maxBytes/)
  })

  it('a revoke passes a full database’s bound, and the ops it voids give their bytes back', async () => {
    const c = await create(dbA, at(0))
    const g = await sign(alice, {
      db: dbA,
      type: 'db',
      op: 'grant',
      key: '',
      args: grantArgs({ writer: bob.ed25519.publicKey.raw }),
      hlc: at(1),
    })
    const bobs = await Promise.all(
      [0, 1].map((n) =>
        sign(bob, { db: dbA, key: `b${n}`, args: ['y'.repeat(4000)], hlc: at(30 + n), cap: g.id }),
      ),
    )
    const { engine: e, store } = engine({ maxDbBytes: sizeOf([c, g, ...bobs]), maxBytes: 1_000_000 })
    assert.deepEqual(
      statuses(
        await e.submit(
          [c, g, ...bobs].map((o) => o.bytes),
          'gossip',
        ),
      ),
      ['applied', 'applied', 'applied', 'applied'],
    )
    // Full: a revoke of bob dated before his writes still applies, voiding them and their bytes.
    const r = await sign(alice, {
      db: dbA,
      type: 'db',
      op: 'revoke',
      key: '',
      args: revokeArgs(g.id),
      hlc: at(20),
    })
    assert.deepEqual(statuses(await e.submit([r.bytes], 'gossip')), ['applied'])
    assert.equal(dbBytes(store, dbA), sizeOf([c, g, r]))
    assert.equal(e.getOp((bobs[0] as Op).id), undefined)
    // The freed room takes new writes again.
    assert.deepEqual(statuses(await e.submit([(await big(dbA, 0)).bytes], 'local')), ['applied'])
  })
})
