/**
 * The kv engine (src/kv/engine.ts): envelopes in, state out. Checks, signatures, authorization, the
 * op log, the typed state and the reconciliation set change together or not at all; a late revoke
 * leaves the state a node that saw it first would have.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { identityFromSeeds, type NodeIdentity } from '../../src/crypto/index.ts'
import { formatDbId } from '../../src/kv/db-id.ts'
import { createArgs, type Grant, grantArgs, revokeArgs } from '../../src/kv/db-ops.ts'
import type { SubmitResult } from '../../src/kv/engine.ts'
import { encodeOp, type OpInput } from '../../src/kv/op.ts'
import type { Hlc, Op } from '../../src/kv/op-types.ts'
import { itemKey } from '../../src/kv/reconcile/fingerprint.ts'
import { ed25519OpSigner, type OpSigner } from '../../src/kv/signer.ts'
import { get } from '../../src/kv/state/basic.ts'
import type { MemoryOrderedStore } from '../../src/kv/store/ordered.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { memoryKvEngine } from '../utils/kv-engine.ts'

const T0 = 1_750_000_000_000
const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const at = (dms: number, c = 0): Hlc => ({ ms: T0 + dms, c })
const ids = await Promise.all([1, 3, 5].map((b) => identityFromSeeds(seed(b), seed(b + 1))))
const [alice, bob, mallory] = ids as [NodeIdentity, NodeIdentity, NodeIdentity]
const ed = (id: NodeIdentity): OpSigner => ed25519OpSigner(id.ed25519)
const db = formatDbId('app', alice.ed25519.publicKey.raw)

const sign = (signer: OpSigner, input: Partial<OpInput> & { hlc: Hlc }): Promise<Op> =>
  encodeOp({ db, key: 'k', type: 'string', op: 'set', args: ['v'], ...input }, signer)
const create = (hlc: Hlc) => sign(ed(alice), { type: 'db', op: 'create', key: '', args: createArgs(), hlc })
const grant = (g: Grant, hlc: Hlc) =>
  sign(ed(alice), { type: 'db', op: 'grant', key: '', args: grantArgs(g), hlc })
const revoke = (g: Op, hlc: Hlc) =>
  sign(ed(alice), { type: 'db', op: 'revoke', key: '', args: revokeArgs(g.id), hlc })

const engine = () => memoryKvEngine(new FakeClock(T0 + 1000))

const statuses = (rs: SubmitResult[]): string[] =>
  rs.map((r) => (r.status === 'refused' ? `refused:${r.code}` : r.status))
const dump = (s: MemoryOrderedStore): string[] =>
  [...s.range()].map(([k, v]) => `${Buffer.from(k).toString('hex')}=${Buffer.from(v).toString('hex')}`)

describe('kv engine', () => {
  it('applies an owner’s ops (create first, whatever the order given) and refuses duplicates', async () => {
    const { engine: e, store } = engine()
    const c = await create(at(0))
    const s1 = await sign(ed(alice), { hlc: at(1), args: ['one'] })
    const s2 = await sign(ed(alice), { hlc: at(2), args: ['two'] })
    const heard: string[] = []
    e.onApplied((ev) => heard.push(`${ev.op.body.op}:${ev.source}`))
    assert.deepEqual(statuses(await e.submit([s2.bytes, s1.bytes, c.bytes], 'gossip')), [
      'applied',
      'applied',
      'applied',
    ])
    assert.equal(get(store, db, 'k', { nowMs: T0 }), 'two')
    assert.deepEqual(heard.sort(), ['create:gossip', 'set:gossip', 'set:gossip'])
    assert.deepEqual(statuses(await e.submit([s1.bytes], 'sync')), ['duplicate'])
    const ix = await e.index(db)
    assert.equal(ix.count(store, new Uint8Array(0), undefined), 3)
    assert.ok(ix.has(store, itemKey(s2.body.hlc, s2.id)))
  })

  it('refuses forged, unauthorized, future and malformed ops with typed codes, storing nothing of them', async () => {
    const { engine: e, store } = engine()
    await e.submit([(await create(at(0))).bytes], 'local')
    const before = dump(store)
    const good = await sign(ed(alice), { hlc: at(1) })
    const forged = good.bytes.slice()
    forged[10] = (forged[10] as number) ^ 1
    const intruder = await sign(ed(mallory), { hlc: at(1) })
    const future = await sign(ed(alice), { hlc: at(3_600_000) })
    const badArgs = await sign(ed(alice), {
      hlc: at(2),
      type: 'zset',
      op: 'zadd',
      args: ['m', 'not a score'],
    })
    const rs = await e.submit(
      [forged, intruder.bytes, future.bytes, Uint8Array.of(1, 2, 3), badArgs.bytes],
      'gossip',
    )
    assert.deepEqual(statuses(rs), [
      'refused:SIGNATURE_INVALID',
      'refused:KV_UNAUTHORIZED',
      'refused:KV_OP_FROM_FUTURE',
      'refused:KV_OP_INVALID',
      'refused:KV_ARGS_INVALID',
    ])
    assert.deepEqual(dump(store), before, 'nothing of a refused op is stored')
  })

  it('a revoke that arrives after ops it voids leaves the state of a node that saw it first', async () => {
    const c = await create(at(0))
    const g = await grant({ writer: bob.ed25519.publicKey.raw }, at(1))
    const bobEarly = await sign(ed(bob), { hlc: at(10), key: 'early', args: ['kept'], cap: g.id })
    const aliceMid = await sign(ed(alice), { hlc: at(15), key: 'shared', args: ['alice'] })
    const bobLate = await sign(ed(bob), {
      hlc: at(30),
      key: 'shared',
      args: ['bob, after the revoke'],
      cap: g.id,
    })
    const r = await revoke(g, at(20))

    const first = engine()
    await first.engine.submit([c.bytes, g.bytes, r.bytes], 'gossip')
    const late = await first.engine.submit([bobEarly.bytes, aliceMid.bytes, bobLate.bytes], 'gossip')
    assert.deepEqual(statuses(late), ['applied', 'applied', 'refused:KV_UNAUTHORIZED'])

    const last = engine()
    await last.engine.submit([c.bytes, g.bytes, bobEarly.bytes, aliceMid.bytes, bobLate.bytes], 'gossip')
    assert.equal(get(last.store, db, 'shared', { nowMs: T0 }), 'bob, after the revoke')
    assert.deepEqual(statuses(await last.engine.submit([r.bytes], 'gossip')), ['applied'])

    for (const { store } of [first, last]) {
      assert.equal(get(store, db, 'shared', { nowMs: T0 }), 'alice')
      assert.equal(get(store, db, 'early', { nowMs: T0 }), 'kept')
    }
    assert.deepEqual(dump(last.store), dump(first.store))
  })
})
