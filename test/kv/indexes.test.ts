/**
 * Secondary indexes declared at `create` (src/kv/index-spec.ts, index-defs.ts): checked at decode,
 * defined by the first create held (by HLC, op id), kept up by the engine, rebuilt in the admitting
 * write when an earlier create arrives late, and the same on every node holding the same ops
 * (seeded property over random orders), across a restart on LMDB.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { mulberry32 } from '../../src/common/prng.ts'
import { identityFromSeeds, signEd25519 } from '../../src/crypto/index.ts'
import { formatDbId } from '../../src/kv/db-id.ts'
import { createArgs } from '../../src/kv/db-ops.ts'
import type { KvEngine, SubmitResult } from '../../src/kv/engine.ts'
import { declaredIndexes } from '../../src/kv/index-defs.ts'
import { indexesOption, MAX_INDEXES, parseIndexText } from '../../src/kv/index-spec.ts'
import { decodeOp, encodeOp, type OpInput, opSigningBytes } from '../../src/kv/op.ts'
import { type Hlc, hlcToBytes, type KvValue, type Op } from '../../src/kv/op-types.ts'
import { ed25519OpSigner } from '../../src/kv/signer.ts'
import { byIndex, type IndexSpec, loadIndexDefs } from '../../src/kv/state/secondary.ts'
import { LmdbOrderedStore } from '../../src/kv/store/lmdb-store.ts'
import { MemoryOrderedStore, type OrderedStore } from '../../src/kv/store/ordered.ts'
import { refused } from '../crypto/refused.ts'
import { testEngine } from '../utils/kv-engine.ts'
import { assertProperty } from '../utils/property.ts'
import { dump } from './state-ops.ts'

const T0 = 1_750_000_000_000
const alice = await identityFromSeeds(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2))
const signer = ed25519OpSigner(alice.ed25519)
const db = formatDbId('app', alice.ed25519.publicKey.raw)
const at = (dms: number, c = 0): Hlc => ({ ms: T0 + dms, c })
const now = { nowMs: T0 }

const sign = (input: Partial<OpInput> & { hlc: Hlc }): Promise<Op> =>
  encodeOp({ db, key: 'k', type: 'string', op: 'set', args: ['v'], ...input }, signer)
const create = (indexes: IndexSpec[], hlc: Hlc): Promise<Op> =>
  sign({ type: 'db', op: 'create', key: '', args: createArgs(indexesOption(indexes)), hlc })
const hset = (key: string, field: string, value: KvValue, hlc: Hlc): Promise<Op> =>
  sign({ type: 'hash', op: 'hset', key, field, args: [value], hlc })
const jset = (key: string, doc: KvValue, hlc: Hlc): Promise<Op> =>
  sign({ type: 'json', op: 'json.set', key, args: [doc], hlc })

const engine = (store: OrderedStore = new MemoryOrderedStore()): KvEngine => testEngine(store, T0 + 1000)

const code =
  (c: string) =>
  (e: unknown): boolean =>
    isNodusError(e) && e.code === c
const statuses = (rs: SubmitResult[]): string[] =>
  rs.map((r) => (r.status === 'refused' ? `refused:${r.code}` : r.status))

const CITY: IndexSpec = { name: 'city', type: 'hash', field: 'city' }
const AGE: IndexSpec = { name: 'age', type: 'hash', field: 'age' }
const SCORE: IndexSpec = { name: 'score', type: 'json', path: '$.meta.score' }

describe('kv indexes declared at create', () => {
  it('a create’s indexes are kept up by hset and json.set, and byIndex finds keys by eq and range', async () => {
    const e = engine()
    const ops = [
      await create([CITY, AGE, SCORE], at(0)),
      await hset('u1', 'city', 'Paris', at(1)),
      await hset('u1', 'age', 31, at(2)),
      await hset('u2', 'city', 'Oslo', at(3)),
      await hset('u2', 'age', 45, at(4)),
      await hset('u3', 'city', 'Paris', at(5)),
      await jset('d1', { meta: { score: 7 } }, at(6)),
      await jset('d2', { meta: { score: 2.5 } }, at(7)),
      await jset('d3', { meta: { other: 1 } }, at(8)),
    ]
    assert.ok(
      statuses(
        await e.submit(
          ops.map((o) => o.bytes),
          'local',
        ),
      ).every((s) => s === 'applied'),
    )
    const r = e.reader
    assert.deepEqual(loadIndexDefs(r, db), [AGE, CITY, SCORE])
    assert.deepEqual(byIndex(r, db, 'city', { eq: 'Paris' }, now), ['u1', 'u3'])
    assert.deepEqual(byIndex(r, db, 'age', { gte: 40 }, now), ['u2'])
    assert.deepEqual(byIndex(r, db, 'age', { gt: 0, lt: 45 }, now), ['u1'])
    assert.deepEqual(byIndex(r, db, 'score', { gt: 1 }, now), ['d2', 'd1'])
    // An overwrite moves the key in the index.
    await e.submit([(await hset('u1', 'city', 'Oslo', at(9))).bytes], 'local')
    assert.deepEqual(byIndex(r, db, 'city', { eq: 'Paris' }, now), ['u3'])
    assert.deepEqual(byIndex(r, db, 'city', { eq: 'Oslo' }, now), ['u1', 'u2'])
  })

  it('a later create (another device) changes nothing; an earlier one arriving late rebuilds the entries', async () => {
    const first = await create([CITY], at(5))
    const later = await create([AGE], at(50))
    const earlier = await create([AGE, { name: 'town', type: 'hash', field: 'city' }], at(1))
    const data = [
      await hset('u1', 'city', 'Paris', at(10)),
      await hset('u1', 'age', 31, at(11)),
      await hset('u2', 'age', 45, at(12)),
    ]
    const late = engine()
    await late.submit([first.bytes, ...data.map((o) => o.bytes)], 'gossip')
    assert.deepEqual(byIndex(late.reader, db, 'city', { eq: 'Paris' }, now), ['u1'])
    await late.submit([later.bytes], 'gossip')
    assert.deepEqual(loadIndexDefs(late.reader, db), [CITY], 'a later create declares nothing')
    assert.deepEqual(statuses(await late.submit([earlier.bytes], 'gossip')), ['applied'])
    assert.deepEqual(
      loadIndexDefs(late.reader, db).map((d) => d.name),
      ['age', 'town'],
    )
    assert.throws(() => byIndex(late.reader, db, 'city', { eq: 'Paris' }, now), code('KV_INDEX_NOT_FOUND'))
    assert.deepEqual(byIndex(late.reader, db, 'town', { eq: 'Paris' }, now), ['u1'])
    assert.deepEqual(byIndex(late.reader, db, 'age', { gte: 0 }, now), ['u1', 'u2'])

    const early = engine()
    await early.submit([earlier.bytes, later.bytes, first.bytes, ...data.map((o) => o.bytes)], 'sync')
    assert.deepEqual(dump(late.reader as OrderedStore), dump(early.reader as OrderedStore))
  })

  it('a database in hybrid mode takes its indexes from its first hybrid create', async () => {
    const { hybridOpSigner } = await import('../../src/kv/signer.ts')
    const hybrid = hybridOpSigner(alice)
    const edCreate = await create([CITY], at(1))
    const hyCreate = await encodeOp(
      { db, key: '', type: 'db', op: 'create', args: createArgs(indexesOption([AGE])), hlc: at(2) },
      hybrid,
    )
    const e = engine()
    await e.submit([edCreate.bytes], 'gossip')
    assert.deepEqual(declaredIndexes(e.reader, db), [CITY])
    await e.submit([hyCreate.bytes], 'gossip')
    assert.deepEqual(loadIndexDefs(e.reader, db), [AGE])
  })

  it('indexes survive a restart on LMDB and keep following writes', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'nodus-kv-idx-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    let store = LmdbOrderedStore.open({ path: dir })
    await engine(store).submit(
      [(await create([CITY], at(0))).bytes, (await hset('u1', 'city', 'Paris', at(1))).bytes],
      'local',
    )
    await store.close()
    store = LmdbOrderedStore.open({ path: dir })
    t.after(() => store.close())
    const e = engine(store)
    assert.deepEqual(byIndex(e.reader, db, 'city', { eq: 'Paris' }, now), ['u1'])
    await e.submit([(await hset('u2', 'city', 'Paris', at(2))).bytes], 'local')
    assert.deepEqual(byIndex(e.reader, db, 'city', { eq: 'Paris' }, now), ['u1', 'u2'])
  })
})

describe('kv indexes: bad declarations are refused at decode (KV_OP_INVALID, reject)', () => {
  const signRaw = (args: KvValue[]): Uint8Array => {
    const body = {
      v: 1,
      db,
      key: '',
      type: 'db',
      op: 'create',
      args,
      hlc: hlcToBytes(at(0)),
      signer: signer.publicKey,
    }
    return dagCbor.encode({ body, sig: signEd25519(alice.ed25519, opSigningBytes(dagCbor.encode(body))) })
  }
  const many = Array.from({ length: MAX_INDEXES + 1 }, (_, i) => ({ name: `i${i}`, hash: 'f' }))
  const cases: [string, KvValue][] = [
    ['indexes not a list', { name: 'a', hash: 'f' }],
    [`more than ${MAX_INDEXES}`, many],
    ['an entry not a map', ['a']],
    ['no name', [{ hash: 'f' }]],
    ['an empty name', [{ name: '', hash: 'f' }]],
    ['a name over 64 bytes', [{ name: 'n'.repeat(65), hash: 'f' }]],
    ['a name with a space', [{ name: 'by city', hash: 'f' }]],
    [
      'a name twice',
      [
        { name: 'a', hash: 'f' },
        { name: 'a', json: '$.f' },
      ],
    ],
    ['both hash and json', [{ name: 'a', hash: 'f', json: '$.f' }]],
    ['neither hash nor json', [{ name: 'a', field: 'f' }]],
    ['an unknown key', [{ name: 'a', hash: 'f', unique: true }]],
    ['an empty field', [{ name: 'a', hash: '' }]],
    ['a field over kv.maxFieldBytes', [{ name: 'a', hash: 'f'.repeat(513) }]],
    ['a field not a string', [{ name: 'a', hash: 5 }]],
    ['a JSONPath that does not parse', [{ name: 'a', json: '$.[' }]],
    ['a JSONPath without $', [{ name: 'a', json: 'a.b' }]],
    ['a wildcard', [{ name: 'a', json: '$.a[*]' }]],
    ['a descendant segment', [{ name: 'a', json: '$..a' }]],
    ['a filter', [{ name: 'a', json: '$.a[?@.b == 1]' }]],
    ['a slice', [{ name: 'a', json: '$.a[0:2]' }]],
    ['two selectors', [{ name: 'a', json: "$['a','b']" }]],
  ]
  for (const [name, indexes] of cases) {
    it(name, async () => {
      const bytes = signRaw([{ indexes }])
      assert.throws(() => decodeOp(bytes), refused('KV_OP_INVALID', 'reject'))
      const e = engine()
      const before = dump(e.reader as OrderedStore)
      assert.deepEqual(statuses(await e.submit([bytes], 'gossip')), ['refused:KV_OP_INVALID'])
      assert.deepEqual(dump(e.reader as OrderedStore), before, 'nothing stored')
    })
  }

  it('indexes beside sealed: true (an index of ciphertext) are refused', () => {
    const bytes = signRaw([{ sealed: true, indexes: [{ name: 'a', hash: 'f' }] }])
    assert.throws(() => decodeOp(bytes), refused('KV_OP_INVALID', 'reject'))
    assert.doesNotThrow(() => decodeOp(signRaw([{ sealed: false, indexes: [{ name: 'a', hash: 'f' }] }])))
  })

  it('good declarations decode: singular queries of every form, and other option keys beside', () => {
    const indexes = [
      { name: 'root', json: '$' },
      { name: 'a.b-c_1', json: "$.a['b c'][0][-1]" },
      { name: 'h', hash: 'f'.repeat(512) },
    ]
    const d = decodeOp(signRaw([{ indexes, other: 1 }]))
    assert.deepEqual(d.body.args, [{ indexes, other: 1 }])
  })

  it('the CLI form NAME=hash:FIELD and NAME=json:PATH', () => {
    assert.deepEqual(parseIndexText('city=hash:city'), CITY)
    assert.deepEqual(parseIndexText('score=json:$.meta.score'), SCORE)
    for (const bad of ['city', 'city=city', 'city=hash:', 'c d=hash:f', 'a=json:$..x'])
      assert.throws(() => parseIndexText(bad), code('INVALID_ARGUMENT'), bad)
  })
})

/** Generated ops: creates with one of a few index sets, and hash/json writes the indexes see. */
const DEF_SETS: IndexSpec[][] = [
  [],
  [{ name: 'a', type: 'hash', field: 'f' }],
  [{ name: 'a', type: 'json', path: '$.f' }],
  [
    { name: 'b', type: 'hash', field: 'g' },
    { name: 'a', type: 'hash', field: 'f' },
  ],
]
const rawOp = fc.record({
  kind: fc.nat({ max: 5 }),
  key: fc.nat({ max: 2 }),
  field: fc.constantFrom('f', 'g'),
  value: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom('x', 'y')),
  ms: fc.integer({ min: 1, max: 40 }),
})

type Raw = typeof rawOp extends fc.Arbitrary<infer T> ? T : never

async function buildOps(creates: { defs: number; ms: number }[], raws: Raw[]): Promise<Op[]> {
  const out: Op[] = []
  for (const c of creates) out.push(await create(DEF_SETS[c.defs] as IndexSpec[], at(c.ms)))
  for (const [i, r] of raws.entries()) {
    const key = `k${r.key}`
    const hlc = at(r.ms, i) // distinct HLCs: distinct ops
    const ops = [
      () => hset(key, r.field, r.value, hlc),
      () => sign({ type: 'hash', op: 'hdel', key, field: r.field, args: [], hlc }),
      () => jset(key, { [r.field]: r.value }, hlc),
      () => sign({ type: 'json', op: 'json.set', key, field: r.field, args: [r.value], hlc }),
      () => sign({ type: 'hash', op: 'del', key, args: [], hlc }),
      () => sign({ type: 'json', op: 'json.del', key, args: [], hlc }),
    ]
    out.push(await (ops[r.kind] as () => Promise<Op>)())
  }
  return out
}

/** Submit one op at a time in `order`; ops refused for want of a create are retried at the end. */
async function feed(e: KvEngine, ops: Op[]): Promise<void> {
  const retry: Op[] = []
  for (const op of ops) {
    const [r] = await e.submit([op.bytes], 'gossip')
    if (r?.status === 'refused') retry.push(op)
  }
  const rs = await e.submit(
    retry.map((o) => o.bytes),
    'sync',
  )
  assert.ok(
    rs.every((r) => r.status === 'applied'),
    JSON.stringify(statuses(rs)),
  )
}

function shuffled<T>(xs: T[], seed: number): T[] {
  const rnd = mulberry32(seed)
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}

describe('kv indexes converge', () => {
  it('any order of the same ops, two or three creates with different indexes among them, gives identical stores', async () => {
    await assertProperty(
      fc.asyncProperty(
        fc.array(fc.record({ defs: fc.nat({ max: DEF_SETS.length - 1 }), ms: fc.nat({ max: 30 }) }), {
          minLength: 2,
          maxLength: 3,
        }),
        fc.array(rawOp, { minLength: 1, maxLength: 16 }),
        fc.integer(),
        async (creates, raws, seed) => {
          const ops = await buildOps(creates, raws)
          const a = engine()
          const b = engine()
          await feed(a, ops)
          await feed(b, shuffled(ops, seed))
          assert.deepEqual(dump(b.reader as OrderedStore), dump(a.reader as OrderedStore))
          // The definitions are the first create's, by (HLC, op id).
          const held = ops.filter((o) => o.body.type === 'db')
          const firstCreate = held.reduce((x, y) =>
            Buffer.compare(
              Buffer.concat([hlcToBytes(x.body.hlc), x.id]),
              Buffer.concat([hlcToBytes(y.body.hlc), y.id]),
            ) <= 0
              ? x
              : y,
          )
          const want = DEF_SETS[creates[held.indexOf(firstCreate)]?.defs as number] as IndexSpec[]
          const names = (s: IndexSpec[]): string[] => s.map((d) => d.name).sort()
          assert.deepEqual(names(loadIndexDefs(a.reader, db)), names(want))
        },
      ),
      { numRuns: 150 },
    )
  })
})
