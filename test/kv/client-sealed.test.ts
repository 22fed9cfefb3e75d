/**
 * Private (sealed) databases through the TypeScript client (`nodus/client`) against a real node: the
 * owner seals its writes on its side and reads them back opened; the node holds only ciphertext; a
 * reader without a share gets KV_DB_KEY_MISSING, and reads after the owner shares with it (by key
 * record, or by PeerId through the GraphQL `readerKey` lookup); a rotation's key reaches only the
 * readers it was shared with; an operation that cannot work sealed is refused before anything is
 * sent. Also the GraphQL `shares` and `readerKey` queries themselves.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { nodeRecipient } from '../../src/cli/kv-sealed.ts'
import { readApiToken } from '../../src/common/data-dir.ts'
import { isNodusError } from '../../src/common/errors.ts'
import { identityFromSeeds, type RecipientKeys, xwingKeyPairFromSeed } from '../../src/crypto/index.ts'
import { ed25519OpSigner, NodusKvClient, type ReaderKeyRecord } from '../../src/kv/client.ts'
import { readKey } from '../../src/kv/key-read.ts'
import { isSealedValue, sealedEpoch } from '../../src/kv/sealed.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { startNodes } from '../utils/nodes.ts'

const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)

/** A reader: a PeerId and one X-Wing key pair (secret), and the public record a share is sealed to. */
async function readerOf(b: number): Promise<{ keys: RecipientKeys; record: ReaderKeyRecord }> {
  const id = await identityFromSeeds(seed(b), seed(b + 1))
  const keyPair = xwingKeyPairFromSeed(seed(b + 2))
  const peer = id.peerId.toString()
  return {
    keys: { peerId: peer, keys: [{ epoch: 0, keyPair }] },
    record: { peer, keyId: keyPair.keyId, xwing: keyPair.publicKey },
  }
}

let dir = ''
let node: NodusNode
let options: { url: string; token: string }
/** GraphQL request bodies the owner's client sent. */
const sent: string[] = []
const countingFetch: typeof fetch = (input, init) => {
  sent.push(String(init?.body ?? ''))
  return fetch(input, init)
}
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-kv-client-sealed-'))
  ;[node] = (await startNodes(dir, 1, { kv: { verifyThreads: 1, keepers: 0 } })) as [NodusNode]
  options = { url: node.info().api, token: await readApiToken(node.config.dataDir) }
})
after(async () => {
  await node?.stop().catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

const client = async (readerKeys?: RecipientKeys, extra: { fetch?: typeof fetch } = {}) =>
  new NodusKvClient({
    ...options,
    ...extra,
    signer: ed25519OpSigner(await generateKeyPair('Ed25519')),
    ...(readerKeys === undefined ? {} : { readerKeys }),
  })
const missing = (e: unknown) => isNodusError(e, 'KV_DB_KEY_MISSING')
/** What the node holds of a key, as its own HTTP read answers. */
const held = (db: string, key: string) => readKey(node.areas.kv.engine.reader, db, key, {}, Date.now()).value

describe('NodusKvClient, private databases', () => {
  let db = ''
  let owner: NodusKvClient
  const alice = readerOf(0x10)
  const bob = readerOf(0x20)

  it('the owner seals string, hash, list and stream values and reads them back opened', async () => {
    owner = await client((await alice).keys, { fetch: countingFetch })
    db = await owner.createDb('diary', { sealed: true })
    await owner.set(db, 'today', 'rain-secret-9127')
    await owner.hset(db, 'me', { mood: 'calm-secret', age: 41 })
    await owner.rpush(db, 'todo', ['milk-secret', 'eggs-secret'])
    await owner.lpush(db, 'todo', [Uint8Array.of(1, 2, 3)])
    await owner.xadd(db, 'log', { temp: 'warm-secret', n: 7 }, { id: '5-1' })

    assert.equal(await owner.get(db, 'today'), 'rain-secret-9127')
    assert.equal(await owner.hget(db, 'me', 'mood'), 'calm-secret')
    assert.equal(await owner.hget(db, 'me', 'nothing'), undefined)
    assert.deepEqual(await owner.hgetall(db, 'me'), { age: 41, mood: 'calm-secret' })
    const list = await owner.lrange(db, 'todo')
    assert.deepEqual(
      list.map((e) => e.value),
      [Uint8Array.of(1, 2, 3), 'milk-secret', 'eggs-secret'],
    )
    await owner.lset(db, 'todo', list[1]?.id as string, 'bread-secret')
    assert.equal((await owner.lrange(db, 'todo', 1, 1))[0]?.value, 'bread-secret')
    assert.deepEqual(await owner.xrange(db, 'log'), [{ id: '5-1', fields: ['temp', 'warm-secret', 'n', 7] }])
    assert.deepEqual(await owner.xrevrange(db, 'log'), await owner.xrange(db, 'log'))
    assert.equal(await owner.get(db, 'absent'), undefined)

    // The node holds ciphertext only: a sealed value of epoch 0, no trace of the text.
    const raw = held(db, 'today')
    assert.ok(isSealedValue(raw) && sealedEpoch(raw) === 0)
    assert.ok(!Buffer.from(raw).toString('latin1').includes('rain'))
  })

  it('a client without reader keys reads the sealed bytes, and cannot write', async () => {
    const outsider = await client()
    const v = await outsider.get(db, 'today')
    assert.ok(isSealedValue(v), 'the sealed bytes, documented, not a failure and not plaintext')
    assert.ok((await outsider.hgetall(db, 'me')).mood instanceof Uint8Array)
    // Not the owner, and without keys: refused here, before signing.
    await assert.rejects(outsider.set(db, 'x', 'y'), missing)
    await assert.rejects(outsider.createDb('mine', { sealed: true }), (e) =>
      isNodusError(e, 'INVALID_ARGUMENT'),
    )
  })

  it('a reader without a share gets KV_DB_KEY_MISSING; after share it reads', async () => {
    const reader = await client((await bob).keys)
    await assert.rejects(reader.get(db, 'today'), missing)
    await assert.rejects(reader.lrange(db, 'todo'), missing)
    const ids = await owner.share(db, (await bob).record)
    assert.equal(ids.length, 1, 'one share: the one epoch the owner holds')
    assert.equal(await reader.get(db, 'today'), 'rain-secret-9127')
    assert.deepEqual(await reader.xrange(db, 'log'), [{ id: '5-1', fields: ['temp', 'warm-secret', 'n', 7] }])
  })

  it('shares with a node by PeerId (its key record from GraphQL readerKey)', async () => {
    const peer = node.identity.peerId.toString()
    const record = await owner.readerKey(peer)
    assert.equal(record.peer, peer)
    assert.equal(record.xwing.byteLength, 1216)
    assert.equal(record.keyId.byteLength, 32)
    const nodeKeys = await nodeRecipient(node.config.dataDir)
    const asNode = await client(nodeKeys)
    await assert.rejects(asNode.get(db, 'today'), missing)
    await owner.share(db, peer)
    assert.equal(await asNode.get(db, 'today'), 'rain-secret-9127')
  })

  it('rotation: new writes seal under the new epoch, which only the readers it names open', async () => {
    const reader = await client((await bob).keys)
    const asNode = await client(await nodeRecipient(node.config.dataDir))
    assert.equal(await asNode.get(db, 'today'), 'rain-secret-9127')
    assert.equal(await owner.rotate(db, [(await bob).record]), 1)
    await owner.set(db, 'tomorrow', 'sun-secret')
    const raw = held(db, 'tomorrow')
    assert.ok(isSealedValue(raw) && sealedEpoch(raw) === 1)
    assert.equal(await owner.get(db, 'tomorrow'), 'sun-secret')
    assert.equal(await reader.get(db, 'tomorrow'), 'sun-secret')
    // Left out of the rotation: it keeps what epoch 0 sealed, and cannot open epoch 1.
    assert.equal(await asNode.get(db, 'today'), 'rain-secret-9127')
    await assert.rejects(asNode.get(db, 'tomorrow'), missing)
  })

  it('an operation that cannot work sealed (zadd) is refused before anything is sent', async () => {
    const before = sent.length
    const ops = (await node.areas.kv.status(db)).ops
    await assert.rejects(
      owner.zadd(db, 'scores', [[1, 'm']]),
      (e) =>
        isNodusError(e, 'KV_OP_INVALID') && e.details.reason === 'sealed-db' && /private/.test(e.message),
    )
    for (const write of [
      () => owner.sadd(db, 's', ['a']),
      () => owner.jsonSet(db, 'j', { a: 1 }),
      () => owner.tsAdd(db, 't', 1, 1),
      () => owner.geoadd(db, 'g', [{ lon: 1, lat: 1, member: 'm' }]),
    ])
      await assert.rejects(
        write(),
        (e) => isNodusError(e, 'KV_OP_INVALID') && e.details.reason === 'sealed-db',
      )
    assert.ok(
      sent.slice(before).every((b) => !b.includes('submitOperations')),
      'no mutation was sent (at most a cached shares query)',
    )
    assert.equal((await node.areas.kv.status(db)).ops, ops)
  })

  it('GraphQL shares and readerKey answer as the HTTP routes do, with bounds', async () => {
    const kid = Buffer.from((await bob).record.keyId).toString('hex')
    const viaGraphql = await owner.shares(db, kid)
    const res = await fetch(`${options.url}/kv/${encodeURIComponent(db)}/shares/${kid}`)
    assert.deepEqual(viaGraphql, await res.json())
    assert.equal(viaGraphql.sealed, true)
    assert.equal(viaGraphql.shares.length, 2, 'epoch 0 and epoch 1')
    const plain = await owner.createDb('plain')
    assert.deepEqual(await owner.shares(plain, kid), { db: plain, sealed: false, shares: [] })
    await assert.rejects(owner.shares(db, 'zz'), (e) => isNodusError(e, 'INVALID_ARGUMENT'))
    const peer = node.identity.peerId.toString()
    const http = (await (await fetch(`${options.url}/kv/reader-key/${peer}`)).json()) as { keyId: string }
    assert.equal(Buffer.from((await owner.readerKey(peer)).keyId).toString('hex'), http.keyId)
    // A plain database stays plain for a client with reader keys.
    await owner.set(plain, 'k', 'visible')
    assert.equal(held(plain, 'k'), 'visible')
    assert.equal(await owner.get(plain, 'k'), 'visible')
  })
})
