/**
 * The HTTP API of a real node (in process, loopback, real disk): routes, auth, validation, ranges,
 * metrics, OpenAPI.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { parseRange } from '../../src/api/index.ts'
import { initNode } from '../../src/cli/init.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { loadConfig } from '../../src/config/config.ts'
import { createNode, type NodusNode } from '../../src/node/node.ts'
import { parseCid } from '../../src/storage/index.ts'

let dir = ''
let node: NodusNode
let api = ''
let token = ''
const data = randomBytes(300_000)
let cid = ''

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-api-'))
  ;({ token } = await initNode(dir, { storage: { segmentSize: 65536, k: 4, m: 2 } }))
  node = await createNode(await loadConfig(dir), { logger: silentLogger() })
  await node.start()
  api = node.info().api
})
after(async () => {
  await node.stop()
  await rm(dir, { recursive: true, force: true })
})

const auth = (): Record<string, string> => ({ authorization: `Bearer ${token}` })

test('system routes answer', async () => {
  assert.deepEqual(await (await fetch(`${api}/health`)).json(), { ok: true })
  const info = (await (await fetch(`${api}/system/info`)).json()) as { peerId: string; did: string }
  assert.equal(info.peerId, node.peerId)
  assert.match(info.did, /^did:key:z6Mk/)
  const status = (await (await fetch(`${api}/system/status`)).json()) as { usage: { capacityBytes: number } }
  assert.ok(status.usage.capacityBytes > 0)
  const id = (await (await fetch(`${api}/identity`)).json()) as { mldsa65PublicKey: string }
  assert.equal(Buffer.from(id.mldsa65PublicKey, 'base64').byteLength, 1952)
})

test('mutating routes need the bearer token: 401 without, 401 with a wrong one', async () => {
  for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: `Bearer ${token}x` }]) {
    const r = await fetch(`${api}/files`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/octet-stream' },
      body: 'x',
    })
    assert.equal(r.status, 401)
    assert.equal(((await r.json()) as { code: string }).code, 'UNAUTHORIZED')
  }
  const d = await fetch(`${api}/files/bafkqaaa`, { method: 'DELETE' })
  assert.equal(d.status, 401)
})

test('bad input gets 400 with a code', async () => {
  const badCid = await fetch(`${api}/files/not-a-cid`)
  assert.equal(badCid.status, 400)
  assert.equal(((await badCid.json()) as { code: string }).code, 'CID_INVALID')
  const badMa = await fetch(`${api}/network/connect`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json' },
    body: JSON.stringify({ multiaddr: 'not/a/multiaddr' }),
  })
  assert.equal(badMa.status, 400)
  assert.equal(((await badMa.json()) as { code: string }).code, 'INVALID_ARGUMENT')
  const missing = await fetch(`${api}/network/connect`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json' },
    body: JSON.stringify({ nope: 1 }),
  })
  assert.equal(missing.status, 400)
  const badQuery = await fetch(`${api}/files?limit=0`)
  assert.equal(badQuery.status, 400)
  const badTtl = await fetch(`${api}/files?ttl=-5`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/octet-stream' },
    body: 'x',
  })
  assert.equal(badTtl.status, 400)
})

test('upload, list, manifest, download whole and by range, unpin', async () => {
  const put = await fetch(`${api}/files?name=a.bin&ttl=3600`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/octet-stream' },
    body: data,
  })
  assert.equal(put.status, 200)
  const res = (await put.json()) as { cid: string; bytes: number; expiresAt: number }
  cid = res.cid
  assert.equal(res.bytes, data.byteLength)
  assert.ok(res.expiresAt > Date.now())
  const list = (await (await fetch(`${api}/files`)).json()) as { files: { cid: string; name: string }[] }
  assert.deepEqual(
    list.files.map((f) => [f.cid, f.name]),
    [[cid, 'a.bin']],
  )
  const man = (await (await fetch(`${api}/files/${cid}/manifest`)).json()) as {
    segments: { shards: unknown[] }[]
    k: number
  }
  assert.equal(man.k, 4)
  assert.equal(man.segments.length, Math.ceil(data.byteLength / 65536))
  assert.equal(man.segments[0]?.shards.length, 6)

  const whole = await fetch(`${api}/files/${cid}`)
  assert.equal(whole.headers.get('content-length'), String(data.byteLength))
  assert.deepEqual(Buffer.from(await whole.arrayBuffer()), data)
  for (const [range, start, end] of [
    ['bytes=0-9', 0, 9],
    ['bytes=65530-131080', 65530, 131080],
    // Shards are 16 KiB here: a range may start or end on either side of a shard boundary.
    ['bytes=16383-16384', 16383, 16384],
    ['bytes=16384-16384', 16384, 16384],
    ['bytes=16384-32767', 16384, 32767],
    ['bytes=49151-65536', 49151, 65536],
    ['bytes=-100', data.byteLength - 100, data.byteLength - 1],
    [`bytes=299990-`, 299990, data.byteLength - 1],
  ] as const) {
    const r = await fetch(`${api}/files/${cid}`, { headers: { range } })
    assert.equal(r.status, 206, range)
    assert.equal(r.headers.get('content-range'), `bytes ${start}-${end}/${data.byteLength}`)
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), data.subarray(start, end + 1), range)
  }
  const bad = await fetch(`${api}/files/${cid}`, { headers: { range: 'bytes=400000-' } })
  assert.equal(bad.status, 416)

  const del = await fetch(`${api}/files/${cid}`, { method: 'DELETE', headers: auth() })
  assert.equal(del.status, 200)
  const again = await fetch(`${api}/files/${cid}`, { method: 'DELETE', headers: auth() })
  assert.equal(again.status, 404)
})

test('a download that fails before its first byte is a JSON error, not a cut-off body', async () => {
  const bytes = randomBytes(200_000)
  const put = await fetch(`${api}/files?name=broken.bin`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/octet-stream' },
    body: bytes,
  })
  assert.equal(put.status, 200)
  const { cid: broken } = (await put.json()) as { cid: string }
  const man = (await (await fetch(`${api}/files/${broken}/manifest`)).json()) as {
    segments: { shards: { cid: string }[] }[]
  }
  // Three of segment 0's six shards gone (k = 4): it cannot be decoded, and this node is alone.
  for (const sh of (man.segments[0] as { shards: { cid: string }[] }).shards.slice(0, 3)) {
    assert.equal(await node.store.delete(parseCid(sh.cid)), true)
  }
  const r = await fetch(`${api}/files/${broken}`)
  assert.equal(r.status, 502)
  assert.match(r.headers.get('content-type') ?? '', /application\/json/)
  assert.equal(((await r.json()) as { code: string }).code, 'DECODE_FAILED')
})

test('storage routes page through shards', async () => {
  const usage = (await (await fetch(`${api}/storage/usage`)).json()) as { shards: number }
  assert.ok(usage.shards > 0)
  const page = (await (await fetch(`${api}/storage/shards?limit=2`)).json()) as {
    shards: { cid: string }[]
    next: string
  }
  assert.equal(page.shards.length, 2)
  const page2 = (await (await fetch(`${api}/storage/shards?limit=2&after=${page.next}`)).json()) as {
    shards: { cid: string }[]
  }
  assert.ok(page2.shards.every((s) => s.cid > page.next))
})

test('metrics are Prometheus text with the nodus metrics and event-loop lag', async () => {
  const r = await fetch(`${api}/metrics`)
  assert.match(r.headers.get('content-type') ?? '', /text\/plain/)
  const text = await r.text()
  for (const name of [
    'nodus_storage_shard_write_seconds',
    'nodus_storage_erasure_seconds_bucket{le="0.001",op="encode"}',
    'nodus_storage_stored_bytes',
    'nodus_storage_shards',
    'nodus_api_requests_total',
    'nodus_net_provide_queue_depth',
    'nodejs_eventloop_lag_seconds',
  ]) {
    assert.ok(text.includes(name), `missing ${name}`)
  }
})

test('OpenAPI document lists every route', async () => {
  const doc = (await (await fetch(`${api}/openapi.json`)).json()) as {
    openapi: string
    paths: Record<string, unknown>
  }
  assert.equal(doc.openapi, '3.0.3')
  for (const p of [
    '/system/info',
    '/system/status',
    '/health',
    '/ready',
    '/metrics',
    '/network/peers',
    '/network/connect',
    '/files',
    '/files/{cid}',
    '/storage/usage',
    '/storage/shards',
    '/identity',
  ]) {
    assert.ok(p in doc.paths, p)
  }
})

test('parseRange follows RFC 9110 single ranges', () => {
  assert.deepEqual(parseRange('bytes=0-0', 10), { offset: 0, length: 1 })
  assert.deepEqual(parseRange('bytes=5-', 10), { offset: 5, length: 5 })
  assert.deepEqual(parseRange('bytes=-3', 10), { offset: 7, length: 3 })
  assert.deepEqual(parseRange('bytes=8-100', 10), { offset: 8, length: 2 })
  assert.equal(parseRange('bytes=10-', 10), 'unsatisfiable')
  assert.equal(parseRange('bytes=5-2', 10), 'unsatisfiable')
  assert.equal(parseRange('items=1-2', 10), undefined)
  assert.equal(parseRange(undefined, 10), undefined)
})
