/**
 * The TypeScript client (`nodus/client`) against a real node: it signs with its own key (the node
 * never sees it), creates a database, writes every type and reads it back with Redis's semantics,
 * delegates to a second writer, watches keys live, and maps the node's refusals to typed errors.
 * The package export `nodus/client` loads from dist/ when it is built.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { distIsFresh } from '../../scripts/dist.ts'
import { readApiToken } from '../../src/common/data-dir.ts'
import { isNodusError } from '../../src/common/errors.ts'
import { identityFromSeeds } from '../../src/crypto/index.ts'
import { ed25519OpSigner, hybridOpSigner, type KvEvent, NodusKvClient } from '../../src/kv/client.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { startNodes } from '../utils/nodes.ts'
import { waitFor } from '../utils/wait.ts'

let dir = ''
let node: NodusNode
let client: NodusKvClient
let options: { url: string; token: string }
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-kv-client-'))
  ;[node] = (await startNodes(dir, 1, { kv: { verifyThreads: 1, keepers: 0 } })) as [NodusNode]
  options = { url: node.info().api, token: await readApiToken(node.config.dataDir) }
  client = new NodusKvClient({ ...options, signer: ed25519OpSigner(await generateKeyPair('Ed25519')) })
})
after(async () => {
  await client?.close()
  await node?.stop().catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

const subscriptions = async (): Promise<number> =>
  (await node.metrics.registry.getSingleMetric('nodus_kv_graphql_subscriptions')?.get())?.values[0]?.value ??
  0

describe('NodusKvClient', () => {
  let db = ''

  it('creates a database owned by its own key, which the node never holds', async () => {
    db = await client.createDb('notes')
    assert.equal(db, client.dbId('notes'))
    assert.notEqual(db, client.dbId('other'))
    assert.deepEqual(await client.databases(), [db], 'the node hosts what it was written')
    assert.notEqual(
      db.split('-').at(-1),
      node.identity.ed25519.publicKey.toString(),
      'owned by the client key, not the node',
    )
    await assert.rejects(client.createDb('notes2', { hybrid: true }), (e) =>
      isNodusError(e, 'INVALID_ARGUMENT'),
    )
  })

  it('writes every type and reads it back with Redis semantics', async () => {
    await client.set(db, 'bytes', Uint8Array.of(0, 255))
    await client.set(db, 'str', 'hello')
    await client.hset(db, 'h', { a: 1, b: 'two' })
    await client.hdel(db, 'h', ['a'])
    await client.lpush(db, 'l', ['a', 'b', 'c'])
    await client.rpush(db, 'l', ['z'])
    await client.sadd(db, 's', ['x', 'y', 'w'])
    await client.srem(db, 's', ['y'])
    await client.zadd(db, 'z', [
      [1, 'one'],
      [2, 'two'],
      [3, 'three'],
      ['+inf', 'top'],
    ])
    await client.zrem(db, 'z', ['two'])
    await client.geoadd(db, 'g', [
      { lon: 13.361389, lat: 38.115556, member: 'Palermo' },
      { lon: 15.087269, lat: 37.502669, member: 'Catania' },
    ])
    await client.jsonSet(db, 'doc', { a: 1, b: { c: [1, 2, 3] } })
    await client.jsonSet(db, 'doc', 5, { member: 'x' })
    await client.xadd(db, 'x', { temp: 20 }, { id: '5-1' })
    await client.xadd(db, 'x', { temp: 21 }, { id: '5-2' })
    await client.xadd(db, 'x', { temp: 22 })
    await client.xdel(db, 'x', ['5-1'])
    const t0 = 1_700_000_000_000
    for (const [dt, v] of [
      [0, 1],
      [1, 5],
      [10, 2],
    ] as const)
      await client.tsAdd(db, 'ts', t0 + dt, v)

    assert.deepEqual(await client.get(db, 'bytes'), Uint8Array.of(0, 255))
    assert.equal(await client.get(db, 'str'), 'hello')
    assert.equal(await client.get(db, 'missing'), undefined)
    assert.deepEqual(await client.hgetall(db, 'h'), { b: 'two' })
    assert.equal(await client.hget(db, 'h', 'a'), undefined)
    // LPUSH a b c then RPUSH z: c b a z.
    const list = await client.lrange(db, 'l')
    assert.deepEqual(
      list.map((e) => e.value),
      ['c', 'b', 'a', 'z'],
    )
    await client.lset(db, 'l', list[0]?.id as string, 'C')
    await client.lrem(db, 'l', [list[3]?.id as string])
    assert.deepEqual(
      (await client.lrange(db, 'l', 0, -1)).map((e) => e.value),
      ['C', 'b', 'a'],
    )
    assert.deepEqual(await client.smembers(db, 's'), ['w', 'x'])
    assert.equal(await client.sismember(db, 's', 'y'), false)
    assert.deepEqual(await client.zrange(db, 'z', '(1', '+inf', { byScore: true }), [
      { member: 'three', score: 3 },
      { member: 'top', score: Number.POSITIVE_INFINITY },
    ])
    assert.deepEqual(
      (await client.zrange(db, 'z', '+inf', '-inf', { byScore: true, rev: true, offset: 0, count: 2 })).map(
        (m) => m.member,
      ),
      ['top', 'three'],
    )
    assert.equal(await client.zscore(db, 'z', 'top'), Number.POSITIVE_INFINITY)
    assert.equal(await client.zscore(db, 'z', 'two'), undefined)
    const km = await client.geodist(db, 'g', 'Palermo', 'Catania', 'km')
    assert.ok(km !== undefined && Math.abs(km - 166.2742) < 0.01, `GEODIST ${km}`)
    assert.deepEqual(
      (await client.geosearch(db, 'g', { member: 'Palermo', radius: 100, unit: 'km' })).map((h) => h.member),
      ['Palermo'],
    )
    assert.deepEqual(await client.jsonGet(db, 'doc'), { a: 1, b: { c: [1, 2, 3] }, x: 5 })
    assert.deepEqual(await client.jsonGet(db, 'doc', '$.b.c[-1]'), [3])
    const stream = await client.xrange(db, 'x')
    assert.deepEqual(
      stream.slice(0, 1).map((e) => e.id),
      ['5-2'],
    )
    assert.deepEqual(stream[0]?.fields, ['temp', 21])
    assert.equal(stream.length, 2, "the '*' entry follows (its id from the op's HLC)")
    assert.deepEqual(await client.xrevrange(db, 'x', '+', '-', { count: 1 }), stream.slice(1))
    assert.deepEqual(await client.tsRange(db, 'ts', t0, t0 + 100, { aggregation: 'max', bucketMs: 10 }), [
      { timestamp: t0, value: 5 },
      { timestamp: t0 + 10, value: 2 },
    ])
    await client.tsDel(db, 'ts', t0 + 5, t0 + 20)
    assert.deepEqual(await client.tsGet(db, 'ts'), { timestamp: t0 + 1, value: 5 })
    assert.equal(await client.keyType(db, 'z'), 'zset')
    await client.del(db, 'z')
    assert.equal(await client.keyType(db, 'z'), 'none')
    assert.deepEqual((await client.scan(db, { prefix: 's' })).keys, ['s', 'str'])
  })

  it('expireAt hides a value once due; ttl reports it', async () => {
    const expireAt = Date.now() + 3_600_000
    await client.set(db, 'session', 'token', { expireAt })
    const ttl = await client.ttl(db, 'session')
    assert.equal(ttl.exists, true)
    assert.equal(ttl.expireAt, expireAt)
    assert.ok(ttl.ttlMs !== null && ttl.ttlMs > 3_500_000 && ttl.ttlMs <= 3_600_000, `ttlMs ${ttl.ttlMs}`)
    await client.set(db, 'gone', 'x', { expireAt: Date.now() - 1 })
    assert.equal(await client.get(db, 'gone'), undefined)
    assert.deepEqual(await client.ttl(db, 'gone'), { exists: false, expireAt: null, ttlMs: null })
  })

  it('the op log since an HLC holds what the client signed, in order', async () => {
    const all = await client.opsSince(db, { limit: 1000 })
    assert.equal(all.cursor, null)
    assert.equal(all.ops[0]?.body.op, 'create')
    const mid = all.ops[5]?.hlc
    assert.ok(mid !== undefined)
    const since = await client.opsSince(db, { after: mid, limit: 1000 })
    assert.deepEqual(
      since.ops.map((o) => o.id),
      all.ops.slice(5).map((o) => o.id),
    )
  })

  it('without the token it reads, and a write is refused (UNAUTHORIZED)', async () => {
    const reader = new NodusKvClient({
      url: options.url,
      signer: ed25519OpSigner(await generateKeyPair('Ed25519')),
    })
    assert.equal(await reader.get(db, 'str'), 'hello')
    await assert.rejects(
      reader.set(db, 'str', 'mine'),
      (e) =>
        isNodusError(e, 'PROTOCOL_ERROR') && e.details.code === 'UNAUTHORIZED' && e.details.status === 401,
    )
    // With the token but another key: the node refuses the signer.
    const stranger = new NodusKvClient({
      ...options,
      signer: ed25519OpSigner(await generateKeyPair('Ed25519')),
    })
    await assert.rejects(stranger.set(db, 'str', 'mine'), (e) => isNodusError(e, 'KV_UNAUTHORIZED'))
    assert.equal(await client.get(db, 'str'), 'hello')
  })

  it('a granted writer writes with its capability, within its prefix, until revoked', async () => {
    const writerKey = await generateKeyPair('Ed25519')
    const writer = new NodusKvClient({ ...options, signer: ed25519OpSigner(writerKey) })
    const grant = await client.grant(db, { writer: writerKey.publicKey.raw, prefix: 'w/' })
    await writer.set(db, 'w/1', 'from the writer', { cap: grant })
    assert.equal(await client.get(db, 'w/1'), 'from the writer')
    await assert.rejects(writer.set(db, 'other', 'x', { cap: grant }), (e) =>
      isNodusError(e, 'KV_UNAUTHORIZED'),
    )
    await client.revoke(db, grant)
    await assert.rejects(writer.set(db, 'w/2', 'x', { cap: grant }), (e) =>
      isNodusError(e, 'KV_UNAUTHORIZED'),
    )
  })

  it('a hybrid signer makes a hybrid database', async () => {
    const id = await identityFromSeeds(new Uint8Array(32).fill(41), new Uint8Array(32).fill(42))
    const hybrid = new NodusKvClient({ ...options, signer: hybridOpSigner(id) })
    const hdb = await hybrid.createDb('pq', { hybrid: true })
    await hybrid.set(hdb, 'k', 'post-quantum')
    assert.equal(await hybrid.get(hdb, 'k'), 'post-quantum')
    const edOnly = new NodusKvClient({ ...options, signer: ed25519OpSigner(id.ed25519) })
    await assert.rejects(edOnly.set(hdb, 'k', 'classical'), (e) => isNodusError(e, 'KV_UNAUTHORIZED'))
  })

  it('subscribe delivers a key’s, a prefix’s and a database’s changes; abort ends it', async () => {
    const base = await subscriptions()
    const abort = new AbortController()
    const onKey = client.subscribe({ db, key: 'live' }, { signal: abort.signal })
    const onPrefix = client.subscribe({ db, prefix: 'li' })
    const onDb = client.subscribe({ db })
    const collect = async (it: AsyncIterableIterator<KvEvent>, n: number): Promise<KvEvent[]> => {
      const out: KvEvent[] = []
      for await (const e of it) {
        out.push(e)
        if (out.length === n) break
      }
      return out
    }
    const keyEvents = collect(onKey, 2)
    const prefixEvents = collect(onPrefix, 2)
    const dbEvents = collect(onDb, 3)
    await waitFor(async () => (await subscriptions()) === base + 3, {
      timeoutMs: 10_000,
      what: 'the subscriptions',
    })
    await client.set(db, 'live', 1)
    await client.set(db, 'list', Uint8Array.of(7))
    await client.set(db, 'unrelated', 2)
    await client.set(db, 'live', 3)
    const k = await keyEvents
    assert.deepEqual(
      k.map((e) => [e.key, e.op, e.args, e.source, e.changed]),
      [
        ['live', 'set', [1], 'local', true],
        ['live', 'set', [3], 'local', true],
      ],
    )
    assert.deepEqual(
      (await prefixEvents).map((e) => [e.key, e.args]),
      [
        ['live', [1]],
        ['list', [Uint8Array.of(7)]],
      ],
    )
    assert.deepEqual(
      (await dbEvents).map((e) => e.key),
      ['live', 'list', 'unrelated'],
    )
    // The loops broke: their subscriptions end on the node.
    await waitFor(async () => (await subscriptions()) === base, {
      timeoutMs: 10_000,
      what: 'the subscriptions to end',
    })
    const later = client.subscribe({ db, key: 'later' }, { signal: abort.signal })
    const ended = later.next()
    abort.abort()
    assert.deepEqual(await ended, { value: undefined, done: true })
  })

  it('a subscription the node refuses throws its typed error (over the per-connection bound)', async () => {
    const base = await subscriptions()
    const many = Array.from({ length: 100 }, (_, i) => client.subscribe({ db, key: `k${i}` }))
    await waitFor(async () => (await subscriptions()) === base + 100, {
      timeoutMs: 10_000,
      what: '100 subscriptions',
    })
    const refused = client.subscribe({ db, key: 'one too many' })
    await assert.rejects(
      refused.next(),
      (e) => isNodusError(e, 'QUEUE_FULL') && /per ?connection/i.test(e.message),
    )
    await Promise.all(many.map((it) => it.return?.()))
    await waitFor(async () => (await subscriptions()) === base, {
      timeoutMs: 10_000,
      what: 'the subscriptions to end',
    })
  })
})

describe('the package export nodus/client', () => {
  it('loads the compiled client from dist/', async (t) => {
    if (!distIsFresh()) {
      if (process.env.NODUS_REQUIRE_DIST === '1') assert.fail('dist/ is missing or older than src/')
      t.skip('dist/ is missing or older than src/ (node scripts/build-js.ts)')
      return
    }
    const mod = (await import('nodus/client')) as typeof import('../../src/kv/client.ts')
    assert.match(import.meta.resolve('nodus/client'), /\/dist\/src\/kv\/client\.js$/)
    const c = new mod.NodusKvClient({
      ...options,
      signer: mod.ed25519OpSigner(await generateKeyPair('Ed25519')),
    })
    const cdb = await c.createDb('fromdist')
    await c.set(cdb, 'k', 'v')
    assert.equal(await c.get(cdb, 'k'), 'v')
    await c.close()
  })
})
