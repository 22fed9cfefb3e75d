/**
 * PinService (src/storage/pins-service.ts) on a real file index (LMDB in a temporary directory) with a
 * fake file service and a fake clock: what each operation records, pins and signs.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, beforeEach, test } from 'node:test'
import type { CID } from 'multiformats/cid'
import { isNodusError, NodusError } from '../../src/common/errors.ts'
import {
  cidForBytes,
  cidToString,
  DAG_CBOR_CODEC,
  FileIndex,
  type Manifest,
  PinService,
  type SignedManifest,
} from '../../src/storage/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'

const SELF = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
const PINNER = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
const T0 = 1_700_000_000_000
const cidA = cidForBytes(new TextEncoder().encode('a'), DAG_CBOR_CODEC)
const cidB = cidForBytes(new TextEncoder().encode('b'), DAG_CBOR_CODEC)

function manifest(uploader: string, name: string | undefined): Manifest {
  const shard = { cid: cidForBytes(new Uint8Array([1])), holders: ['h1'] }
  return {
    version: 1,
    name,
    fileSize: 5000,
    fileBlake3: new Uint8Array(32),
    k: 2,
    m: 1,
    segmentSize: 4096,
    segments: [
      { size: 4096, shardSize: 2048, shards: [shard, shard, shard] },
      { size: 904, shardSize: 452, shards: [shard, shard, shard] },
    ],
    uploader: { peerId: uploader, publicKey: { ed25519: new Uint8Array(32), mldsa65: new Uint8Array(1952) } },
    createdAt: T0 - 1000,
    revision: 1,
  }
}
const signed = (cid: CID, uploader = SELF): SignedManifest => ({
  cid,
  manifest: manifest(uploader, 'f.bin'),
  sig: { ed25519: new Uint8Array(64), mldsa65: new Uint8Array(3309) },
  bytes: new Uint8Array(0),
})

let dir = ''
let indexes = 0
let index: FileIndex
let clock: FakeClock
/** files.pin calls: [manifest CID, expiresAt, critical, grant (base64), manifest given]. */
let pinned: [string, number | undefined, boolean, string | undefined, boolean][]
let pinFails: Set<string>
let uploader: string
const signedData: Uint8Array[] = []
const warnings: unknown[] = []
let pins: PinService

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-pins-service-'))
})
after(() => rm(dir, { recursive: true, force: true }))
beforeEach(async () => {
  index = new FileIndex(join(dir, `index-${++indexes}`))
  index.open()
  clock = new FakeClock(T0)
  pinned = []
  pinFails = new Set()
  uploader = SELF
  signedData.length = 0
  warnings.length = 0
  pins = new PinService({
    files: {
      put: async (source, options = {}) => {
        for await (const _ of source);
        return { cid: cidA, manifest: manifest(SELF, options.name), manifestHolders: [SELF] }
      },
      pin: async (cid, expiresAt, options = {}) => {
        if (pinFails.has(cidToString(cid))) throw new NodusError('NOT_ENOUGH_PEERS', 'nobody answered')
        pinned.push([
          cidToString(cid),
          expiresAt,
          options.critical === true,
          options.grant === undefined ? undefined : Buffer.from(options.grant).toString('base64'),
          options.manifest !== undefined,
        ])
        return { extended: 3, missing: 0, unreachable: 1 }
      },
      resolveManifest: async (cid) => {
        if (!cid.equals(cidA) && !cid.equals(cidB)) throw new NodusError('MANIFEST_NOT_FOUND', 'no manifest')
        return signed(cid, uploader)
      },
    },
    index,
    selfPeerId: SELF,
    signEd25519: (data) => {
      signedData.push(data)
      return new Uint8Array(64).fill(5)
    },
    clock,
    logger: { warn: (obj) => warnings.push(obj) },
  })
})
afterEach(() => index.close())

async function* bytes(n: number): AsyncGenerator<Uint8Array> {
  yield new Uint8Array(n)
}

test('put stores the file and records the pin; a critical one is pinned on its keepers at once', async () => {
  const r = await pins.put(bytes(5000), { name: 'f.bin', ttlMs: 60_000 })
  assert.equal(r.cid, cidToString(cidA))
  assert.equal(r.expiresAt, T0 + 60_000)
  assert.deepEqual(index.list(), [
    {
      cid: cidToString(cidA),
      name: 'f.bin',
      bytes: 5000,
      segments: 2,
      k: 2,
      m: 1,
      createdAt: T0 - 1000,
      expiresAt: T0 + 60_000,
    },
  ])
  assert.deepEqual(pinned, [], 'not critical: the keepers hear of it at renewal')

  const c = await pins.put(bytes(5000), { critical: true })
  assert.equal(c.expiresAt, undefined)
  assert.equal(index.list()[0]?.critical, true)
  assert.deepEqual(pinned, [[cidToString(cidA), undefined, true, undefined, false]])
})

test('pin resolves the manifest, pins it with the grant, and records the pin with its grant', async () => {
  const r = await pins.pin(cidB, { ttlMs: 1000, critical: true, grant: 'AQID' })
  assert.deepEqual(
    {
      cid: r.cid,
      expiresAt: r.expiresAt,
      extended: r.extended,
      missing: r.missing,
      unreachable: r.unreachable,
    },
    { cid: cidToString(cidB), expiresAt: T0 + 1000, extended: 3, missing: 0, unreachable: 1 },
  )
  assert.deepEqual(pinned, [[cidToString(cidB), T0 + 1000, true, 'AQID', true]])
  const rec = index.list()[0]
  assert.equal(rec?.grant, 'AQID')
  assert.equal(rec?.critical, true)
  assert.equal(rec?.name, 'f.bin')

  await assert.rejects(pins.pin(cidForBytes(new Uint8Array([9]), DAG_CBOR_CODEC)), (err: unknown) =>
    isNodusError(err, 'MANIFEST_NOT_FOUND'),
  )
  assert.equal(index.list().length, 1, 'nothing recorded for a manifest not found')
})

test('unpin drops the record; MANIFEST_NOT_FOUND when there is none', async () => {
  await pins.pin(cidA)
  await pins.unpin(cidToString(cidA))
  assert.deepEqual(index.list(), [])
  await assert.rejects(pins.unpin(cidToString(cidA)), (err: unknown) => {
    assert.ok(isNodusError(err, 'MANIFEST_NOT_FOUND'))
    assert.deepEqual(err.details, { cid: cidToString(cidA) })
    return true
  })
})

test('grant: signed as this node for a file it uploaded; INVALID_ARGUMENT otherwise', async () => {
  const g = await pins.grant(cidToString(cidA), PINNER, { ttlMs: 5000 })
  assert.equal(g.cid, cidToString(cidA))
  assert.equal(g.pinner, PINNER)
  assert.equal(g.expiresAt, T0 + 5000)
  assert.ok(g.grant.byteLength > 64)
  assert.equal(signedData.length, 1)
  assert.equal((await pins.grant(cidToString(cidA), PINNER)).expiresAt, T0 + 30 * 24 * 3600 * 1000)

  await assert.rejects(pins.grant(cidToString(cidA), 'not-a-peer'), (err: unknown) => {
    assert.ok(isNodusError(err, 'INVALID_ARGUMENT'))
    assert.deepEqual(err.details, { pinner: 'not-a-peer' })
    return true
  })
  await assert.rejects(pins.grant('not-a-cid', PINNER), (err: unknown) => isNodusError(err, 'CID_INVALID'))
  uploader = PINNER
  await assert.rejects(pins.grant(cidToString(cidA), PINNER), (err: unknown) => {
    assert.ok(isNodusError(err, 'INVALID_ARGUMENT'))
    assert.deepEqual(err.details, { cid: cidToString(cidA), uploader: PINNER })
    return true
  })
  assert.equal(signedData.length, 2, 'nothing signed for a refused grant')
})

test('renew re-pins live pins (with their grant and critical flag), drops expired ones, counts failures', async () => {
  await pins.pin(cidA, { ttlMs: 10_000, grant: 'AQID' })
  await pins.pin(cidB, { critical: true })
  pinned = []
  clock.advance(5000)
  assert.deepEqual(await pins.renew(), { renewed: 2, expired: 0, failed: 0 })
  // In CID order (the index's).
  assert.deepEqual(
    pinned,
    [
      [cidToString(cidA), T0 + 10_000, false, 'AQID', false],
      [cidToString(cidB), undefined, true, undefined, false],
    ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
  )

  pinFails.add(cidToString(cidB))
  assert.deepEqual(await pins.renew(T0 + 10_000), { renewed: 0, expired: 1, failed: 1 })
  assert.deepEqual(
    index.list().map((p) => p.cid),
    [cidToString(cidB)],
  )
  assert.deepEqual(warnings, [{ cid: cidToString(cidB), code: 'NOT_ENOUGH_PEERS' }])
})
