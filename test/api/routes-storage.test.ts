/**
 * The storage routes (src/storage/routes.ts) through `app.inject()`, built from small fakes of the
 * shard store, the file service and the pin service: no node, no network, no disk.
 */
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { after, before, beforeEach, test } from 'node:test'
import type { InjectOptions } from 'fastify'
import type { CID } from 'multiformats/cid'
import type { ApiServer } from '../../src/api/index.ts'
import { NodusError } from '../../src/common/errors.ts'
import {
  cidForBytes,
  cidToString,
  DAG_CBOR_CODEC,
  type SignedManifest,
  type StorageRoutesDeps,
  storageRoutes,
} from '../../src/storage/index.ts'
import { AUTH, errorOf, routesApi } from '../utils/api-node.ts'

/** Largest upload of the server under test, bytes. */
const MAX_UPLOAD = 4096
const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251))
const manifestCid = cidForBytes(new TextEncoder().encode('manifest'), DAG_CBOR_CODEC)
const MANIFEST = cidToString(manifestCid)
const unknownCid = cidToString(cidForBytes(new TextEncoder().encode('unknown'), DAG_CBOR_CODEC))
const shardCids = [0, 1, 2, 3].map((i) => cidForBytes(new Uint8Array([i])))

/** A manifest of `data`: two segments of k 2, m 1, with holders p1..p3. */
function manifestOf(cid: CID, name: string | undefined): SignedManifest {
  const segment = (size: number, from: number) => ({
    size,
    shardSize: Math.ceil(size / 2),
    shards: [0, 1, 2].map((i) => ({
      cid: shardCids[(from + i) % shardCids.length] as CID,
      holders: [`p${i + 1}`],
    })),
  })
  return {
    cid,
    bytes: new Uint8Array(0),
    sig: { ed25519: new Uint8Array(64), mldsa65: new Uint8Array(3309) },
    manifest: {
      version: 1,
      name,
      fileSize: data.byteLength,
      fileBlake3: new Uint8Array(32),
      k: 2,
      m: 1,
      segmentSize: 2048,
      segments: [segment(2048, 0), segment(data.byteLength - 2048, 1)],
      uploader: {
        peerId: 'uploader',
        publicKey: { ed25519: new Uint8Array(32), mldsa65: new Uint8Array(1952) },
      },
      createdAt: 1_700_000_000_000,
      revision: 1,
    },
  }
}

/** Calls the fakes saw, by name; reset before each test. */
const calls: { name: string; args: unknown[] }[] = []
/** Replace a fake's behaviour for one test: name -> implementation. */
let override: Partial<Record<'put' | 'pin' | 'grant' | 'unpin' | 'resolve' | 'get', () => never>> = {}
const seen = (name: string) => calls.filter((c) => c.name === name).map((c) => c.args)
const notFound = (cid: CID) =>
  new NodusError('MANIFEST_NOT_FOUND', `no manifest ${cidToString(cid)}`, {
    details: { cid: cidToString(cid) },
  })

const shards = ['bafk1', 'bafk2', 'bafk3'].map((cid, i) => ({ cid, size: 100 + i, storedAt: 1000 + i }))
const deps: StorageRoutesDeps = {
  store: {
    usage: () => ({ bytes: 303, shards: 3, capacityBytes: 1 << 20, freeBytes: (1 << 20) - 303 }),
    list: (options = {}) => {
      calls.push({ name: 'store.list', args: [options] })
      return shards
        .filter((s) => options.after === undefined || s.cid > options.after)
        .slice(0, options.limit)
    },
  },
  files: {
    resolveManifest: async (cid) => {
      override.resolve?.()
      if (!cid.equals(manifestCid)) throw notFound(cid)
      return manifestOf(manifestCid, 'a.bin')
    },
    get: async function* (cid, options = {}) {
      calls.push({ name: 'get', args: [cidToString(cid), options.range] })
      override.get?.()
      const { offset, length } = options.range ?? { offset: 0, length: data.byteLength }
      // Two parts, as a segmented read would yield them.
      const mid = offset + Math.floor(length / 2)
      yield data.subarray(offset, mid)
      yield data.subarray(mid, offset + length)
    },
  },
  pins: {
    put: async (source, options = {}) => {
      const chunks: Uint8Array[] = []
      for await (const c of source) chunks.push(c)
      const { signal, ...rest } = options
      calls.push({ name: 'put', args: [Buffer.concat(chunks), rest, signal instanceof AbortSignal] })
      override.put?.()
      return {
        cid: MANIFEST,
        put: {
          cid: manifestCid,
          manifest: manifestOf(manifestCid, options.name).manifest,
          manifestHolders: ['p1', 'p2'],
        },
        expiresAt: options.ttlMs === undefined ? undefined : 5000 + options.ttlMs,
      }
    },
    list: (options = {}) => {
      calls.push({ name: 'list', args: [options] })
      return [
        { cid: MANIFEST, name: 'a.bin', bytes: 3000, segments: 2, k: 2, m: 1, createdAt: 1, expiresAt: 9 },
        {
          cid: unknownCid,
          name: undefined,
          bytes: 1,
          segments: 1,
          k: 2,
          m: 1,
          createdAt: 2,
          expiresAt: undefined,
        },
      ]
    },
    pin: async (cid, options = {}) => {
      calls.push({ name: 'pin', args: [cidToString(cid), options] })
      override.pin?.()
      return {
        cid: cidToString(cid),
        manifest: manifestOf(cid, undefined),
        expiresAt: options.ttlMs === undefined ? undefined : 5000 + options.ttlMs,
        extended: 4,
        missing: 1,
        unreachable: 2,
      }
    },
    grant: async (cid, pinner, options = {}) => {
      calls.push({ name: 'grant', args: [cid, pinner, options] })
      override.grant?.()
      return { cid, pinner, expiresAt: 77, grant: new Uint8Array([1, 2, 3]) }
    },
    unpin: async (cid) => {
      calls.push({ name: 'unpin', args: [cid] })
      override.unpin?.()
    },
  },
}

let server: ApiServer
before(async () => {
  server = await routesApi([storageRoutes(deps)], { maxUploadBytes: MAX_UPLOAD })
})
after(() => server.close())
beforeEach(() => {
  calls.length = 0
  override = {}
})

const inject = (options: InjectOptions) => server.app.inject(options)
const octets = { ...AUTH, 'content-type': 'application/octet-stream' }

test('/storage/usage and /storage/shards (paged by CID)', async () => {
  const usage = await inject({ method: 'GET', url: '/storage/usage' })
  assert.equal(usage.statusCode, 200)
  assert.deepEqual(usage.json(), {
    bytes: 303,
    shards: 3,
    capacityBytes: 1 << 20,
    freeBytes: (1 << 20) - 303,
  })
  const page = await inject({ method: 'GET', url: '/storage/shards?limit=2' })
  assert.deepEqual(page.json(), { shards: shards.slice(0, 2), next: 'bafk2' })
  const last = await inject({ method: 'GET', url: '/storage/shards?after=bafk2' })
  assert.deepEqual(last.json(), { shards: shards.slice(2), next: 'bafk3' })
  const empty = await inject({ method: 'GET', url: '/storage/shards?after=bafk3' })
  assert.deepEqual(empty.json(), { shards: [], next: null })
  assert.deepEqual(seen('store.list'), [
    [{ limit: 2 }],
    [{ limit: 100, after: 'bafk2' }],
    [{ limit: 100, after: 'bafk3' }],
  ])
})

test('GET /files lists the pins (absent name and expiry as null), paged', async () => {
  const r = await inject({ method: 'GET', url: `/files?limit=5&after=${MANIFEST}` })
  assert.equal(r.statusCode, 200)
  assert.deepEqual(r.json(), {
    files: [
      { cid: MANIFEST, name: 'a.bin', bytes: 3000, segments: 2, k: 2, m: 1, createdAt: 1, expiresAt: 9 },
      { cid: unknownCid, name: null, bytes: 1, segments: 1, k: 2, m: 1, createdAt: 2, expiresAt: null },
    ],
  })
  assert.deepEqual(seen('list'), [[{ limit: 5, after: MANIFEST }]])
})

test('paging queries are validated: 400 INVALID_ARGUMENT', async () => {
  for (const url of ['/files?limit=0', '/files?limit=1001', '/files?nope=1', '/storage/shards?limit=x']) {
    const r = await inject({ method: 'GET', url })
    assert.equal(r.statusCode, 400, url)
    assert.equal(errorOf(r.body).code, 'INVALID_ARGUMENT', url)
  }
  assert.deepEqual(calls, [])
})

test('POST /files streams the body to the pin service and answers the put', async () => {
  const r = await inject({
    method: 'POST',
    url: '/files?name=a.bin&ttl=60&critical=true',
    headers: octets,
    payload: data,
  })
  assert.equal(r.statusCode, 200, r.body)
  assert.deepEqual(r.json(), {
    cid: MANIFEST,
    bytes: 3000,
    segments: 2,
    k: 2,
    m: 1,
    manifestHolders: ['p1', 'p2'],
    holders: ['p1', 'p2', 'p3'],
    expiresAt: 65_000,
  })
  assert.deepEqual(seen('put'), [[data, { name: 'a.bin', ttlMs: 60_000, critical: true }, true]])

  const plain = await inject({ method: 'POST', url: '/files', headers: octets, payload: data })
  assert.equal(plain.statusCode, 200)
  assert.equal((plain.json() as { expiresAt: unknown }).expiresAt, null)
  assert.deepEqual(seen('put')[1]?.[1], {})
})

test('POST /files needs the token: 401 whatever the body, nothing stored', async () => {
  for (const headers of [
    { 'content-type': 'application/octet-stream' },
    { ...octets, authorization: 'Bearer x' },
  ]) {
    const r = await inject({ method: 'POST', url: '/files', headers, payload: data })
    assert.equal(r.statusCode, 401)
    assert.equal(errorOf(r.body).code, 'UNAUTHORIZED')
  }
  const junk = await inject({
    method: 'POST',
    url: '/files?ttl=-1',
    headers: { 'content-type': 'text/plain' },
    payload: 'x',
  })
  assert.equal(junk.statusCode, 401)
  assert.deepEqual(calls, [])
})

test('POST /files: bad input is 400 INVALID_ARGUMENT, nothing stored', async () => {
  for (const [url, headers, payload] of [
    ['/files?ttl=-5', octets, data],
    ['/files?ttl=1.5', octets, data],
    ['/files?nope=1', octets, data],
    ['/files', { ...AUTH, 'content-type': 'application/json' }, '{"a":1}'],
  ] as const) {
    const r = await inject({ method: 'POST', url, headers, payload })
    assert.equal(r.statusCode, 400, `${url} ${headers['content-type']}`)
    assert.equal(errorOf(r.body).code, 'INVALID_ARGUMENT')
  }
  assert.deepEqual(seen('put'), [])
})

test('POST /files over api.maxUploadBytes is 413: declared (before the body) or chunked (as it comes)', async () => {
  const big = Buffer.alloc(MAX_UPLOAD + 1)
  const declared = await inject({ method: 'POST', url: '/files', headers: octets, payload: big })
  assert.equal(declared.statusCode, 413)
  assert.equal(errorOf(declared.body).code, 'MESSAGE_TOO_LARGE')
  assert.deepEqual(calls, [], 'refused before the pin service saw it')

  const chunked = await inject({
    method: 'POST',
    url: '/files',
    headers: { ...octets, 'transfer-encoding': 'chunked' },
    payload: Readable.from([big.subarray(0, 4000), big.subarray(4000)]),
  })
  assert.equal(chunked.statusCode, 413)
  assert.equal(errorOf(chunked.body).code, 'MESSAGE_TOO_LARGE')
  assert.deepEqual(seen('put'), [], 'the put never completed')
})

test('POST /files: a NodusError from the pin service answers its status', async () => {
  override.put = () => {
    throw new NodusError('NOT_ENOUGH_PEERS', 'no home for shard 2', { details: { needed: 3 } })
  }
  const r = await inject({ method: 'POST', url: '/files', headers: octets, payload: data })
  assert.equal(r.statusCode, 503)
  assert.deepEqual(errorOf(r.body), {
    code: 'NOT_ENOUGH_PEERS',
    message: 'no home for shard 2',
    details: { needed: 3 },
  })
})

test('GET /files/:cid/manifest: the manifest view; 400 for a bad CID, 404 for an unknown one', async () => {
  const r = await inject({ method: 'GET', url: `/files/${MANIFEST}/manifest` })
  assert.equal(r.statusCode, 200)
  const view = r.json() as Record<string, unknown> & { segments: { shards: { cid: string }[] }[] }
  assert.equal(view.cid, MANIFEST)
  assert.equal(view.name, 'a.bin')
  assert.equal(view.fileSize, 3000)
  assert.equal(view.uploader, 'uploader')
  assert.equal(view.revision, 1)
  assert.deepEqual(
    view.segments.map((s) => s.shards.map((sh) => sh.cid)),
    [shardCids.slice(0, 3).map(cidToString), shardCids.slice(1, 4).map(cidToString)],
  )
  const bad = await inject({ method: 'GET', url: '/files/not-a-cid/manifest' })
  assert.equal(bad.statusCode, 400)
  assert.equal(errorOf(bad.body).code, 'CID_INVALID')
  const unknown = await inject({ method: 'GET', url: `/files/${unknownCid}/manifest` })
  assert.equal(unknown.statusCode, 404)
  assert.deepEqual(errorOf(unknown.body).details, { cid: unknownCid })
})

test('GET /files/:cid: the whole file, or one Range (206), or 416', async () => {
  const whole = await inject({ method: 'GET', url: `/files/${MANIFEST}` })
  assert.equal(whole.statusCode, 200)
  assert.equal(whole.headers['content-length'], '3000')
  assert.equal(whole.headers['content-type'], 'application/octet-stream')
  assert.equal(whole.headers['accept-ranges'], 'bytes')
  assert.equal(whole.headers['x-nodus-manifest'], MANIFEST)
  assert.deepEqual(whole.rawPayload, data)

  const part = await inject({
    method: 'GET',
    url: `/files/${MANIFEST}`,
    headers: { range: 'bytes=100-1099' },
  })
  assert.equal(part.statusCode, 206)
  assert.equal(part.headers['content-range'], 'bytes 100-1099/3000')
  assert.equal(part.headers['content-length'], '1000')
  assert.deepEqual(part.rawPayload, data.subarray(100, 1100))
  assert.deepEqual(seen('get'), [
    [MANIFEST, undefined],
    [MANIFEST, { offset: 100, length: 1000 }],
  ])

  const past = await inject({ method: 'GET', url: `/files/${MANIFEST}`, headers: { range: 'bytes=3000-' } })
  assert.equal(past.statusCode, 416)
  assert.equal(past.headers['content-range'], 'bytes */3000')
  assert.deepEqual(errorOf(past.body), {
    code: 'INVALID_ARGUMENT',
    message: 'range not satisfiable',
    details: { size: 3000 },
  })
})

test('GET /files/:cid: errors before the first byte are JSON errors (400, 404, 502)', async () => {
  const bad = await inject({ method: 'GET', url: '/files/bafkqaaa' })
  assert.equal(bad.statusCode, 400)
  assert.equal(errorOf(bad.body).code, 'CID_INVALID')
  const unknown = await inject({ method: 'GET', url: `/files/${unknownCid}` })
  assert.equal(unknown.statusCode, 404)
  assert.equal(errorOf(unknown.body).code, 'MANIFEST_NOT_FOUND')
  override.get = () => {
    throw new NodusError('DECODE_FAILED', 'segment 0: 1 of 2 shards', { details: { have: 1, need: 2 } })
  }
  const lost = await inject({ method: 'GET', url: `/files/${MANIFEST}` })
  assert.equal(lost.statusCode, 502)
  assert.match(String(lost.headers['content-type']), /application\/json/)
  assert.deepEqual(errorOf(lost.body).details, { have: 1, need: 2 })
})

test('POST /files/:cid/grant: signed by the pin service, base64; 401, 400, and its errors', async () => {
  const json = { ...AUTH, 'content-type': 'application/json' }
  const r = await inject({
    method: 'POST',
    url: `/files/${MANIFEST}/grant`,
    headers: json,
    payload: { pinner: 'pinner-id', ttl: 60 },
  })
  assert.equal(r.statusCode, 200, r.body)
  assert.deepEqual(r.json(), { cid: MANIFEST, pinner: 'pinner-id', expiresAt: 77, grant: 'AQID' })
  const noTtl = await inject({
    method: 'POST',
    url: `/files/${MANIFEST}/grant`,
    headers: json,
    payload: { pinner: 'p' },
  })
  assert.equal(noTtl.statusCode, 200)
  assert.deepEqual(seen('grant'), [
    [MANIFEST, 'pinner-id', { ttlMs: 60_000 }],
    [MANIFEST, 'p', {}],
  ])

  const anon = await inject({
    method: 'POST',
    url: `/files/${MANIFEST}/grant`,
    headers: { 'content-type': 'application/json' },
    payload: { pinner: 'p' },
  })
  assert.equal(anon.statusCode, 401)
  for (const payload of [{}, { pinner: '' }, { pinner: 'p', ttl: 0 }, { pinner: 'p', extra: 1 }]) {
    const bad = await inject({ method: 'POST', url: `/files/${MANIFEST}/grant`, headers: json, payload })
    assert.equal(bad.statusCode, 400, JSON.stringify(payload))
    assert.equal(errorOf(bad.body).code, 'INVALID_ARGUMENT')
  }
  assert.equal(seen('grant').length, 2)

  override.grant = () => {
    throw new NodusError('INVALID_ARGUMENT', "only the file's uploader can grant pins of it")
  }
  const refused = await inject({
    method: 'POST',
    url: `/files/${MANIFEST}/grant`,
    headers: json,
    payload: { pinner: 'p' },
  })
  assert.equal(refused.statusCode, 400)
  assert.match(errorOf(refused.body).message, /only the file's uploader/)
})

test('POST /files/:cid/pin: through the pin service, with or without a body; 401, 400, 404', async () => {
  const json = { ...AUTH, 'content-type': 'application/json' }
  const r = await inject({
    method: 'POST',
    url: `/files/${MANIFEST}/pin`,
    headers: json,
    payload: { ttl: 10, critical: true, grant: 'AQID' },
  })
  assert.equal(r.statusCode, 200, r.body)
  assert.deepEqual(r.json(), { cid: MANIFEST, expiresAt: 15_000, extended: 4, missing: 1, unreachable: 2 })
  const bare = await inject({ method: 'POST', url: `/files/${MANIFEST}/pin`, headers: AUTH })
  assert.equal(bare.statusCode, 200, bare.body)
  assert.equal((bare.json() as { expiresAt: unknown }).expiresAt, null)
  assert.deepEqual(seen('pin'), [
    [MANIFEST, { ttlMs: 10_000, critical: true, grant: 'AQID' }],
    [MANIFEST, {}],
  ])

  const anon = await inject({ method: 'POST', url: `/files/${MANIFEST}/pin` })
  assert.equal(anon.statusCode, 401)
  for (const [url, payload] of [
    [`/files/${MANIFEST}/pin`, { ttl: 0 }],
    [`/files/${MANIFEST}/pin`, { nope: true }],
    ['/files/not-a-cid/pin', {}],
  ] as const) {
    const bad = await inject({ method: 'POST', url, headers: json, payload })
    assert.equal(bad.statusCode, 400, `${url} ${JSON.stringify(payload)}`)
  }
  assert.equal(seen('pin').length, 2)

  override.pin = () => {
    throw notFound(manifestCid)
  }
  const missing = await inject({ method: 'POST', url: `/files/${MANIFEST}/pin`, headers: AUTH })
  assert.equal(missing.statusCode, 404)
  assert.equal(errorOf(missing.body).code, 'MANIFEST_NOT_FOUND')
})

test('DELETE /files/:cid: unpins through the pin service; 401, 400, 404', async () => {
  const r = await inject({ method: 'DELETE', url: `/files/${MANIFEST}`, headers: AUTH })
  assert.equal(r.statusCode, 200)
  assert.deepEqual(r.json(), { cid: MANIFEST, unpinned: true })
  assert.deepEqual(seen('unpin'), [[MANIFEST]])

  const anon = await inject({ method: 'DELETE', url: `/files/${MANIFEST}` })
  assert.equal(anon.statusCode, 401)
  const bad = await inject({ method: 'DELETE', url: '/files/not-a-cid', headers: AUTH })
  assert.equal(bad.statusCode, 400)
  assert.equal(errorOf(bad.body).code, 'CID_INVALID')
  assert.equal(seen('unpin').length, 1)

  override.unpin = () => {
    throw new NodusError('MANIFEST_NOT_FOUND', `no pin for ${MANIFEST} on this node`, {
      details: { cid: MANIFEST },
    })
  }
  const gone = await inject({ method: 'DELETE', url: `/files/${MANIFEST}`, headers: AUTH })
  assert.equal(gone.statusCode, 404)
  assert.deepEqual(errorOf(gone.body).details, { cid: MANIFEST })
})
