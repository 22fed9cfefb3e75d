/**
 * Declared secondary indexes through every interface of a real node (loopback, LMDB): the client
 * declares them at createDb and reads them with byIndex (GraphQL); `GET /kv/:db/index/:name` answers
 * eq and ranges with typed errors; `nodus kv create NAME --index …` (a real CLI process) declares them
 * and refuses a bad one before signing.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { readApiToken } from '../../src/common/data-dir.ts'
import { isNodusError } from '../../src/common/errors.ts'
import { ed25519OpSigner, NodusKvClient } from '../../src/kv/client.ts'
import { loadIndexDefs } from '../../src/kv/state/secondary.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { startNodes } from '../utils/nodes.ts'
import { runCli } from '../utils/run-cli.ts'

let dir = ''
let node: NodusNode
let client: NodusKvClient
let api = ''
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-kv-idx-api-'))
  ;[node] = (await startNodes(dir, 1, { kv: { verifyThreads: 1, keepers: 0 } })) as [NodusNode]
  api = node.info().api
  const token = await readApiToken(node.config.dataDir)
  client = new NodusKvClient({ url: api, token, signer: ed25519OpSigner(await generateKeyPair('Ed25519')) })
})
after(async () => {
  await client?.close()
  await node?.stop().catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

async function getIndex(db: string, name: string, qs: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${api}/kv/${encodeURIComponent(db)}/index/${encodeURIComponent(name)}?${qs}`)
  return { status: res.status, body: await res.json() }
}

describe('kv indexes through the node’s interfaces', () => {
  let db = ''

  it('the client declares indexes at createDb; GraphQL byIndex finds keys by eq and range', async () => {
    db = await client.createDb('people', {
      indexes: [
        { name: 'city', type: 'hash', field: 'city' },
        { name: 'score', type: 'json', path: '$.meta.score' },
      ],
    })
    await client.hset(db, 'u1', { city: 'Paris', age: 31 })
    await client.hset(db, 'u2', { city: 'Oslo' })
    await client.hset(db, 'u3', { city: 'Paris' })
    await client.hset(db, 'n', { city: 42 })
    await client.jsonSet(db, 'd1', { meta: { score: 7 } })
    await client.jsonSet(db, 'd2', { meta: { score: 2.5 } })
    assert.deepEqual(await client.byIndex(db, 'city', { eq: 'Paris' }), ['u1', 'u3'])
    assert.deepEqual(await client.byIndex(db, 'score', { gte: 2.5, lt: 7 }), ['d2'])
    assert.deepEqual(await client.byIndex(db, 'score', { gt: 0, limit: 1 }), ['d2'])
    await assert.rejects(client.byIndex(db, 'age', { eq: 31 }), (e) => isNodusError(e, 'KV_INDEX_NOT_FOUND'))
    await assert.rejects(
      client.createDb('bad', { indexes: [{ name: 'x', type: 'json', path: '$..deep' }] }),
      (e) => isNodusError(e, 'KV_OP_INVALID'),
    )
  })

  it('GET /kv/:db/index/:name: eq (JSON numbers are numbers, other text a string), ranges, errors', async () => {
    assert.deepEqual(await getIndex(db, 'city', 'eq=Paris'), {
      status: 200,
      body: { db, index: 'city', keys: ['u1', 'u3'] },
    })
    assert.deepEqual((await getIndex(db, 'city', 'eq=42')).body, { db, index: 'city', keys: ['n'] })
    assert.deepEqual((await getIndex(db, 'city', 'eq=%2242%22')).body, { db, index: 'city', keys: [] })
    assert.deepEqual((await getIndex(db, 'score', 'gt=1&lte=7')).body, {
      db,
      index: 'score',
      keys: ['d2', 'd1'],
    })
    assert.deepEqual((await getIndex(db, 'score', 'gt=1&limit=1')).body, { db, index: 'score', keys: ['d2'] })
    const missing = await getIndex(db, 'nope', 'eq=1')
    assert.equal(missing.status, 404)
    assert.equal((missing.body as { code: string }).code, 'KV_INDEX_NOT_FOUND')
    for (const qs of ['', 'eq=1&gt=0', 'gt=1&lt=b', 'other=1']) {
      const bad = await getIndex(db, 'city', qs)
      assert.equal(bad.status, 400, qs)
    }
  })

  it('nodus kv create NAME --index NAME=hash:FIELD --index NAME=json:PATH', async () => {
    const kv = (...args: string[]) => runCli(['kv', ...args, '--data-dir', join(dir, 'n0')])
    const r = await kv(
      'create',
      'cities',
      '--index',
      'pop=json:$.population',
      '--index',
      'country=hash:country',
    )
    assert.equal(r.code, 0, r.stderr)
    const id = r.stdout.trim()
    assert.deepEqual(loadIndexDefs(node.areas.kv.engine.reader, id), [
      { name: 'country', type: 'hash', field: 'country' },
      { name: 'pop', type: 'json', path: '$.population' },
    ])
    const bad = await kv('create', 'towns', '--index', 'pop=json:$.a[*]', '--json')
    assert.equal(bad.code, 2, 'bad arguments')
    assert.match(bad.stderr, /INVALID_ARGUMENT.*singular query/)
  })
})
