/**
 * The kv GraphQL interface on a real node (loopback, LMDB): mutations need the API token and apply
 * signed envelopes (a forged one gets SIGNATURE_INVALID); reads per type with Redis's semantics;
 * malformed, over-deep and over-wide documents are refused with typed codes; subscriptions over
 * graphql-ws get their own key's, prefix's or database's operations and nothing else.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createClient } from 'graphql-ws/client'
import { readApiToken } from '../../src/common/data-dir.ts'
import { formatDbId } from '../../src/kv/db-id.ts'
import { createArgs } from '../../src/kv/db-ops.ts'
import { encodeOp, type OpInput } from '../../src/kv/op.ts'
import type { Op } from '../../src/kv/op-types.ts'
import { ed25519OpSigner } from '../../src/kv/signer.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { startNodes } from '../utils/nodes.ts'
import { waitFor } from '../utils/wait.ts'

let dir = ''
let node: NodusNode
let url = ''
let token = ''
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-kv-graphql-'))
  ;[node] = (await startNodes(dir, 1, { kv: { verifyThreads: 1, keepers: 0 } })) as [NodusNode]
  url = `${node.info().api}/graphql`
  token = await readApiToken(node.config.dataDir)
})
after(async () => {
  await node?.stop().catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

interface GqlAnswer {
  status: number
  data: Record<string, unknown> | null
  errors?: { message: string; extensions?: { code?: string; details?: Record<string, unknown> } }[]
}

async function gql(query: string, variables: Record<string, unknown> = {}, auth = false): Promise<GqlAnswer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  })
  const body = (await res.json()) as Omit<GqlAnswer, 'status'>
  return { status: res.status, ...body }
}

/** Field `k` of an answer's data (which must be there). */
function field<T>(a: GqlAnswer, k: string): T {
  assert.ok(a.data !== null, JSON.stringify(a.errors))
  return a.data[k] as T
}
const codes = (a: GqlAnswer): (string | undefined)[] => (a.errors ?? []).map((e) => e.extensions?.code)
const b64 = (op: Op): string => Buffer.from(op.bytes).toString('base64')
const SUBMIT = 'mutation($e: [String!]!) { submitOperations(envelopes: $e) { id status code message } }'

describe('kv GraphQL', () => {
  let db = ''
  let ms = Date.now()
  const sign = (input: Partial<OpInput> & Pick<OpInput, 'type' | 'op' | 'args'>): Promise<Op> =>
    encodeOp({ db, key: '', hlc: { ms: ms++, c: 0 }, ...input }, ed25519OpSigner(node.identity.ed25519))
  const submit = async (ops: Op[]): Promise<{ status: string; code: string | null }[]> => {
    const a = await gql(SUBMIT, { e: ops.map(b64) }, true)
    assert.equal(a.status, 200, JSON.stringify(a))
    return (a.data as { submitOperations: { status: string; code: string | null }[] }).submitOperations
  }

  it('a mutation without the token is refused (401 UNAUTHORIZED) and applies nothing', async () => {
    db = formatDbId('gql', node.identity.ed25519.publicKey.raw)
    const create = await sign({ type: 'db', op: 'create', args: createArgs() })
    const refused = await gql(SUBMIT, { e: [b64(create)] })
    assert.equal(refused.status, 401)
    assert.deepEqual(codes(refused), ['UNAUTHORIZED'])
    assert.equal(refused.data, null)
    assert.equal(node.areas.kv.engine.getOp(create.id), undefined)
    // A query is open.
    const open = await gql('{ databases }')
    assert.equal(open.status, 200)
    // A mutation over GET is not served.
    const get = await fetch(
      `${url}?query=${encodeURIComponent('mutation { submitOperation(envelope: "") { status } }')}`,
      {
        headers: { authorization: `Bearer ${token}` },
      },
    )
    assert.equal(get.status, 405)
    assert.deepEqual(await submit([create]), [
      { id: Buffer.from(create.id).toString('hex'), status: 'applied', code: null, message: null },
    ])
  })

  it('a forged envelope gets SIGNATURE_INVALID; garbage KV_OP_INVALID; both leave nothing', async () => {
    const op = await sign({ key: 'f', type: 'string', op: 'set', args: ['x'] })
    const forged = op.bytes.slice()
    forged[12] = (forged[12] as number) ^ 1
    const a = await gql(
      'mutation($e: String!) { submitOperation(envelope: $e) { id status code } }',
      { e: Buffer.from(forged).toString('base64') },
      true,
    )
    assert.equal(field<{ code: string }>(a, 'submitOperation').code, 'SIGNATURE_INVALID')
    const g = await gql('mutation { submitOperation(envelope: "bm90IGFuIG9w") { id status code } }', {}, true)
    assert.deepEqual(g.data?.submitOperation, { id: null, status: 'refused', code: 'KV_OP_INVALID' })
    const read = await gql('query($db: String!) { keyType(db: $db, key: "f") }', { db })
    assert.equal(read.data?.keyType, 'none')
  })

  it('reads every type with Redis semantics', async () => {
    const t0 = 1_700_000_000_000
    const results = await submit(
      await Promise.all([
        sign({ key: 's', type: 'string', op: 'set', args: [Uint8Array.of(1, 2, 3)] }),
        sign({ key: 'h', type: 'hash', op: 'hset', args: ['b', 2, 'a', { n: 1 }] }),
        sign({ key: 'l', type: 'list', op: 'rpush', args: ['x', 'y', 'z'] }),
        sign({ key: 'set', type: 'set', op: 'sadd', args: ['m2', 'm1'] }),
        sign({
          key: 'z',
          type: 'zset',
          op: 'zadd',
          args: [1, 'a', 2, 'b', 2, 'c', 3, 'd', '+inf', 'e', '-inf', 'f'],
        }),
        sign({
          key: 'j',
          type: 'json',
          op: 'json.set',
          args: [
            {
              store: {
                book: [
                  { price: 8, t: 'A' },
                  { price: 12, t: 'B' },
                ],
              },
            },
          ],
        }),
        sign({ key: 'x', type: 'stream', op: 'xadd', args: ['1-1', 'f', 'one'] }),
        sign({ key: 'x', type: 'stream', op: 'xadd', args: ['1-2', 'f', 'two'] }),
        sign({ key: 'x', type: 'stream', op: 'xadd', args: ['2-0', 'f', 'three'] }),
        ...[
          [0, 1],
          [5, 2],
          [9, 3],
          [10, 11],
          [15, 12],
        ].map(([dt, v]) =>
          sign({ key: 'ts', type: 'ts', op: 'ts.add', args: [t0 + (dt as number), v as number] }),
        ),
        sign({
          key: 'g',
          type: 'geo',
          op: 'geoadd',
          args: [13.361389, 38.115556, 'Palermo', 15.087269, 37.502669, 'Catania'],
        }),
        sign({ key: 'tmp', type: 'string', op: 'set', args: ['soon'], expireAt: Date.now() + 3_600_000 }),
      ]),
    )
    assert.ok(
      results.every((r) => r.status === 'applied'),
      JSON.stringify(results),
    )
    const a = await gql(
      `query($db: String!) {
        s: get(db: $db, key: "s") sType: keyType(db: $db, key: "s")
        hget(db: $db, key: "h", field: "a") hgetall(db: $db, key: "h") { field value }
        lrange(db: $db, key: "l", start: -2, stop: -1) { value }
        smembers(db: $db, key: "set") no: sismember(db: $db, key: "set", member: "m3") yes: sismember(db: $db, key: "set", member: "m1")
        excl: zrange(db: $db, key: "z", start: "(1", stop: "(3", byScore: true) { member score }
        inf: zrange(db: $db, key: "z", start: "-inf", stop: "+inf", byScore: true, offset: 1, count: 3) { member }
        rev: zrange(db: $db, key: "z", start: "+inf", stop: "(2", byScore: true, rev: true) { member score }
        rank: zrange(db: $db, key: "z", start: "0", stop: "1", rev: true) { member }
        zscore(db: $db, key: "z", member: "e")
        doc: jsonGet(db: $db, key: "j", path: "$.store.book[?@.price < 10].t")
        xrange(db: $db, key: "x", start: "(1-1", end: "+") { id fields }
        xrevrange(db: $db, key: "x", end: "+", start: "-", count: 1) { id }
        avg: tsRange(db: $db, key: "ts", from: ${t0}, to: ${t0 + 20}, aggregation: avg, bucketMs: 10) { timestamp value }
        tsGet(db: $db, key: "ts") { timestamp value }
        geodist(db: $db, key: "g", member1: "Palermo", member2: "Catania", unit: km)
        geosearch(db: $db, key: "g", lon: 15, lat: 37, radius: 200, unit: km, order: asc) { member distance }
        geopos(db: $db, key: "g", members: ["Palermo", "nope"]) { lon lat }
        page1: scan(db: $db, limit: 3) { keys cursor }
        ttl: ttl(db: $db, key: "tmp") { exists expireAt ttlMs }
        forever: ttl(db: $db, key: "s") { exists expireAt }
      }`,
      { db },
    )
    assert.equal(a.status, 200, JSON.stringify(a.errors))
    const d = a.data as Record<string, unknown>
    assert.deepEqual(d.s, { $bytes: 'AQID' })
    assert.equal(d.sType, 'string')
    assert.deepEqual(d.hget, { n: 1 })
    assert.deepEqual(d.hgetall, [
      { field: 'a', value: { n: 1 } },
      { field: 'b', value: 2 },
    ])
    assert.deepEqual(d.lrange, [{ value: 'y' }, { value: 'z' }])
    assert.deepEqual(d.smembers, ['m1', 'm2'])
    assert.equal(d.no, false)
    assert.equal(d.yes, true)
    // (1 < score < (3: b and c (ties in member order).
    assert.deepEqual(d.excl, [
      { member: 'b', score: 2 },
      { member: 'c', score: 2 },
    ])
    // -inf..+inf LIMIT 1 3: f a b c d e → a b c.
    assert.deepEqual(d.inf, [{ member: 'a' }, { member: 'b' }, { member: 'c' }])
    // REV: max first, start is the max: +inf down to (2 → e d.
    assert.deepEqual(d.rev, [
      { member: 'e', score: '+inf' },
      { member: 'd', score: 3 },
    ])
    assert.deepEqual(d.rank, [{ member: 'e' }, { member: 'd' }])
    assert.equal(d.zscore, '+inf')
    assert.deepEqual(d.doc, ['A'])
    assert.deepEqual(d.xrange, [
      { id: '1-2', fields: ['f', 'two'] },
      { id: '2-0', fields: ['f', 'three'] },
    ])
    assert.deepEqual(d.xrevrange, [{ id: '2-0' }])
    assert.deepEqual(d.avg, [
      { timestamp: t0, value: 2 },
      { timestamp: t0 + 10, value: 11.5 },
    ])
    assert.deepEqual(d.tsGet, { timestamp: t0 + 15, value: 12 })
    assert.ok(Math.abs((d.geodist as number) - 166.2742) < 0.01, `GEODIST ${d.geodist}`)
    assert.deepEqual(
      (d.geosearch as { member: string }[]).map((h) => h.member),
      ['Catania', 'Palermo'],
    )
    const [pal, none] = d.geopos as [{ lon: number; lat: number }, null]
    assert.ok(Math.abs(pal.lon - 13.361389) < 1e-4 && Math.abs(pal.lat - 38.115556) < 1e-4)
    assert.equal(none, null)
    const page1 = d.page1 as { keys: string[]; cursor: string | null }
    assert.deepEqual(page1.keys, ['g', 'h', 'j'])
    assert.equal(page1.cursor, 'j')
    const page2 = await gql(
      'query($db: String!) { scan(db: $db, after: "j", prefix: "", limit: 100) { keys cursor } }',
      { db },
    )
    assert.deepEqual(page2.data?.scan, { keys: ['l', 's', 'set', 'tmp', 'ts', 'x', 'z'], cursor: null })
    const ttl = d.ttl as { exists: boolean; expireAt: number; ttlMs: number }
    assert.equal(ttl.exists, true)
    assert.ok(ttl.ttlMs > 3_500_000 && ttl.ttlMs <= 3_600_000, `ttlMs ${ttl.ttlMs}`)
    assert.deepEqual(d.forever, { exists: true, expireAt: null })
  })

  it('read errors carry their codes: WRONGTYPE, a bad bound, an undeclared index, a count over the bound', async () => {
    const query = `query($db: String!) {
        wrong: hget(db: $db, key: "s", field: "x")
        bad: zrange(db: $db, key: "z", start: "abc", stop: "1", byScore: true) { member }
        idx: byIndex(db: $db, name: "nope", eq: 1)
        big: xrange(db: $db, key: "x", count: 1000000) { id }
        ok: get(db: $db, key: "s")
      }`
    const a = await gql(query, { db })
    // The second run executes the query compiled by graphql-jit: the same answer.
    assert.deepEqual(await gql(query, { db }), a)
    assert.deepEqual(await gql(query, { db }), a)
    assert.equal(a.status, 200)
    assert.deepEqual(codes(a).sort(), [
      'INVALID_ARGUMENT',
      'INVALID_ARGUMENT',
      'KV_INDEX_NOT_FOUND',
      'KV_WRONG_TYPE',
    ])
    assert.deepEqual(a.data?.ok, { $bytes: 'AQID' }, 'the other fields still answer')
  })

  it('opsSince pages through the op log from an HLC, with envelopes and bodies', async () => {
    const first = await gql(
      'query($db: String!) { opsSince(db: $db, limit: 3) { ops { id hlc { ms c } envelope body } cursor } }',
      { db },
    )
    const p1 = field<{
      ops: { id: string; hlc: { ms: number }; envelope: string; body: { op: string } }[]
      cursor: string
    }>(first, 'opsSince')
    assert.equal(p1.ops.length, 3)
    assert.equal(p1.ops[0]?.body.op, 'create', 'the create is the oldest op')
    const held = node.areas.kv.engine.getOp(Buffer.from(p1.ops[1]?.id as string, 'hex'))
    assert.equal(Buffer.from(held as Uint8Array).toString('base64'), p1.ops[1]?.envelope)
    let cursor: string | null = p1.cursor
    const ids = p1.ops.map((o) => o.id)
    while (cursor !== null) {
      const next = await gql(
        'query($db: String!, $c: String) { opsSince(db: $db, cursor: $c, limit: 4) { ops { id } cursor } }',
        { db, c: cursor },
      )
      const page = field<{ ops: { id: string }[]; cursor: string | null }>(next, 'opsSince')
      ids.push(...page.ops.map((o) => o.id))
      cursor = page.cursor
    }
    const status = await node.areas.kv.status(db)
    assert.equal(ids.length, status.ops, 'every op once')
    assert.equal(new Set(ids).size, ids.length)
    // From an HLC: the ops at or after it only.
    const since = await gql(
      'query($db: String!, $h: HlcInput) { opsSince(db: $db, after: $h) { ops { hlc { ms c } } } }',
      {
        db,
        h: p1.ops[2]?.hlc,
      },
    )
    const hlcs = field<{ ops: { hlc: { ms: number } }[] }>(since, 'opsSince').ops.map((o) => o.hlc.ms)
    assert.equal(hlcs.length, ids.length - 2)
    assert.ok(hlcs.every((h) => h >= (p1.ops[2]?.hlc.ms as number)))
  })

  it('malformed, unknown, too deep and too wide documents are refused with typed codes', async () => {
    const syntax = await gql('{ get(db: "x" ')
    assert.equal(syntax.status, 400)
    assert.deepEqual(codes(syntax), ['KV_GRAPHQL_INVALID'])
    assert.match(syntax.errors?.[0]?.message ?? '', /Syntax Error/)
    const unknown = await gql('{ nope }')
    assert.equal(unknown.status, 400)
    assert.deepEqual(codes(unknown), ['KV_GRAPHQL_INVALID'])
    const badArg = await gql('{ get(db: 1, key: "k") }')
    assert.deepEqual(codes(badArg), ['KV_GRAPHQL_INVALID'])
    const missingVar = await gql('query($db: String!) { get(db: $db, key: "k") }')
    assert.equal(missingVar.status, 400)
    assert.deepEqual(codes(missingVar), ['KV_GRAPHQL_INVALID'])
    // Introspection is the deep part of the schema: kv.graphqlMaxDepth (8) refuses the classic abuse.
    const deep = await gql(
      '{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } }',
    )
    assert.equal(deep.status, 400)
    assert.deepEqual(codes(deep), ['KV_GRAPHQL_TOO_COMPLEX'])
    // 33 aliases of one read: over kv.graphqlMaxRootFields (32).
    const aliases = Array.from({ length: 33 }, (_, i) => `a${i}: databases`).join(' ')
    const wide = await gql(`{ ${aliases} }`)
    assert.equal(wide.status, 400)
    assert.deepEqual(codes(wide), ['KV_GRAPHQL_TOO_COMPLEX'])
    // A fragment used 2^20 times through nested spreads: counted, not expanded.
    const frags = Array.from(
      { length: 20 },
      (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`,
    ).join('\n')
    const bomb = await gql(`query { ...F0 }\n${frags}\nfragment F20 on Query { databases }`)
    assert.equal(bomb.status, 400)
    assert.ok(
      codes(bomb).length > 0 && codes(bomb).every((c) => c === 'KV_GRAPHQL_TOO_COMPLEX'),
      JSON.stringify(bomb),
    )
    // Too many tokens: refused before parsing.
    const tokens = await gql(`{ ${'databases '.repeat(20_000)} }`)
    assert.equal(tokens.status, 400)
    assert.deepEqual(codes(tokens), ['KV_GRAPHQL_INVALID'])
    // A body over kv.graphqlMaxBodyBytes (1 MiB); one over the API's 64 KiB JSON default is fine.
    const huge = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ databases } # ${'x'.repeat(1_100_000)}` }),
    })
    assert.equal(huge.status, 413)
    assert.equal(((await huge.json()) as GqlAnswer).errors?.[0]?.extensions?.code, 'MESSAGE_TOO_LARGE')
    const large = await gql(`{ databases } # ${'x'.repeat(200_000)}`)
    assert.equal(large.status, 200)
    // Not JSON at all.
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{',
    })
    assert.equal(res.status, 400)
    assert.equal(((await res.json()) as GqlAnswer).errors?.[0]?.extensions?.code, 'KV_GRAPHQL_INVALID')
  })

  describe('subscriptions', () => {
    const ws = () =>
      createClient({
        url: url.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: true,
      })
    const subscriptions = async (): Promise<number> =>
      (await node.metrics.registry.getSingleMetric('nodus_kv_graphql_subscriptions')?.get())?.values[0]
        ?.value ?? 0
    const listen = (client: ReturnType<typeof ws>, query: string, variables: Record<string, unknown>) => {
      const got: { key: string; db: string; args: unknown }[] = []
      const errors: unknown[] = []
      const stop = client.subscribe<{ e: { key: string; db: string; args: unknown } }>(
        { query, variables },
        {
          next: (r) => (r.data === undefined || r.data === null ? errors.push(r.errors) : got.push(r.data.e)),
          error: (e) => errors.push(e),
          complete: () => {},
        },
      )
      return { got, errors, stop }
    }

    it("a key's subscriber gets that key's change, not another key's or another database's", async () => {
      const client = ws()
      const other = formatDbId('gql2', node.identity.ed25519.publicKey.raw)
      const base = await subscriptions()
      const key = listen(
        client,
        'subscription($db: String!) { e: keyChanged(db: $db, key: "watched") { db key args } }',
        { db },
      )
      const pattern = listen(
        client,
        'subscription($db: String!) { e: pattern(db: $db, prefix: "wat") { db key } }',
        { db },
      )
      const whole = listen(client, 'subscription($db: String!) { e: dbChanged(db: $db) { db key } }', {
        db: other,
      })
      await waitFor(async () => (await subscriptions()) === base + 3, {
        timeoutMs: 10_000,
        what: 'three subscriptions',
      })
      const ops = []
      const prevDb = db
      db = other
      ops.push(await sign({ type: 'db', op: 'create', args: createArgs() }))
      ops.push(await sign({ key: 'watched', type: 'string', op: 'set', args: ['other db'] }))
      db = prevDb
      ops.push(await sign({ key: 'unwatched', type: 'string', op: 'set', args: ['nope'] }))
      ops.push(await sign({ key: 'watched', type: 'string', op: 'set', args: ['yes'] }))
      ops.push(await sign({ key: 'water', type: 'string', op: 'set', args: ['prefix'] }))
      assert.ok((await submit(ops)).every((r) => r.status === 'applied'))
      await waitFor(() => key.got.length >= 1 && pattern.got.length >= 2 && whole.got.length >= 2, {
        timeoutMs: 10_000,
        what: 'the events',
      })
      // One more op on the watched key, so anything wrongly queued before it would have arrived.
      assert.ok(
        (await submit([await sign({ key: 'watched', type: 'string', op: 'set', args: ['last'] })]))[0]
          ?.status === 'applied',
      )
      await waitFor(() => key.got.length >= 2, { timeoutMs: 10_000, what: 'the last event' })
      assert.deepEqual(key.got, [
        { db, key: 'watched', args: ['yes'] },
        { db, key: 'watched', args: ['last'] },
      ])
      assert.deepEqual(pattern.got.slice(0, 2), [
        { db, key: 'watched' },
        { db, key: 'water' },
      ])
      assert.deepEqual(whole.got, [
        { db: other, key: '' },
        { db: other, key: 'watched' },
      ])
      assert.deepEqual([key.errors, pattern.errors, whole.errors], [[], [], []])
      await client.dispose()
      await waitFor(async () => (await subscriptions()) === base, {
        timeoutMs: 10_000,
        what: 'subscriptions to end',
      })
    })

    it('50 subscribers on 50 keys each get only their own key, GraphQL running once per delivery', async () => {
      const clients = Array.from({ length: 5 }, ws)
      const base = await subscriptions()
      const events = async () =>
        (await node.metrics.registry.getSingleMetric('nodus_kv_graphql_events_total')?.get())?.values[0]
          ?.value ?? 0
      const before = await events()
      const subs = Array.from({ length: 50 }, (_, i) =>
        listen(
          clients[i % 5] as ReturnType<typeof ws>,
          'subscription($db: String!, $k: String!) { e: keyChanged(db: $db, key: $k) { key args } }',
          {
            db,
            k: `k${i}`,
          },
        ),
      )
      await waitFor(async () => (await subscriptions()) === base + 50, {
        timeoutMs: 10_000,
        what: '50 subscriptions',
      })
      const round = async (value: string) =>
        submit(
          await Promise.all(
            subs.map((_, i) => sign({ key: `k${i}`, type: 'string', op: 'set', args: [value] })),
          ),
        )
      await round('v')
      await round('end')
      await waitFor(() => subs.every((s) => s.got.length >= 2), {
        timeoutMs: 20_000,
        what: 'every subscriber',
      })
      subs.forEach((s, i) => {
        assert.deepEqual(s.got, [
          { key: `k${i}`, args: ['v'] },
          { key: `k${i}`, args: ['end'] },
        ])
      })
      assert.equal((await events()) - before, 100, 'each op was queued to one subscriber: its own')
      await Promise.all(clients.map((c) => c.dispose()))
      await waitFor(async () => (await subscriptions()) === base, {
        timeoutMs: 10_000,
        what: 'subscriptions to end',
      })
    })

    it("a WebSocket upgrade with another site's Host is refused (403), and the node closes its socket", async () => {
      const { hostname, port, host } = new URL(url)
      // A raw socket that never closes its own side: resolves with the status line once the node
      // has closed the connection (else the test times out, and the node could not stop either).
      const upgrade = (hostHeader: string) =>
        new Promise<string>((resolve, reject) => {
          const s = connect({ host: hostname, port: Number(port), allowHalfOpen: true })
          let got = ''
          s.on('data', (d) => {
            got += d.toString('latin1')
            if (got.startsWith('HTTP/1.1 101')) {
              s.destroy()
              resolve(got.split('\r\n')[0] as string)
            }
          })
          s.on('end', () => {
            resolve(got.split('\r\n')[0] as string)
            s.destroy()
          })
          s.on('error', reject)
          s.write(
            `GET /graphql HTTP/1.1\r\nHost: ${hostHeader}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
              `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
              'Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n',
          )
        })
      assert.match(await upgrade('evil.example'), /^HTTP\/1\.1 403/)
      assert.match(await upgrade(host), /^HTTP\/1\.1 101/)
    })

    it('a malformed subscription gets a typed error, and no subscription is left', async () => {
      const client = ws()
      const base = await subscriptions()
      const bad = listen(client, 'subscription { e: keyChanged(db: "x") { key } }', {})
      await waitFor(() => bad.errors.length > 0, { timeoutMs: 10_000, what: 'the error' })
      const [errs] = bad.errors as [{ extensions?: { code?: string } }[]]
      assert.equal(errs[0]?.extensions?.code, 'KV_GRAPHQL_INVALID')
      assert.equal(await subscriptions(), base)
      await client.dispose()
    })
  })
})
