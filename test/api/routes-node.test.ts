/**
 * The node's routes (src/node/routes.ts) through `app.inject()`, built from small fakes: no node, no
 * libp2p, no store.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { ApiServer } from '../../src/api/index.ts'
import { NodusError } from '../../src/common/errors.ts'
import { didKeyFromEd25519, identityFromSeeds, type NodeIdentity } from '../../src/crypto/index.ts'
import { nodeRoutes } from '../../src/node/index.ts'
import { errorOf, routesApi } from '../utils/api-node.ts'

let identity: NodeIdentity
let server: ApiServer
const peers = ['a', 'b', 'c']
const connections = ['a', 'b', 'c', 'c2']
let usage: () => { bytes: number; shards: number; capacityBytes: number; freeBytes: number }

before(async () => {
  identity = await identityFromSeeds(new Uint8Array(32).fill(7), new Uint8Array(32).fill(9))
  server = await routesApi([
    nodeRoutes({
      identity,
      libp2p: {
        getPeers: () => peers,
        getConnections: () => connections,
        getMultiaddrs: () => ['/ip4/127.0.0.1/tcp/4001', '/ip4/127.0.0.1/udp/4001/quic-v1'],
      },
      store: { usage: () => usage() },
      shardServer: { inFlight: 2, served: 17 },
      provideQueue: { size: 5 },
    }),
  ])
})
after(() => server.close())

test('liveness and readiness answer without the token', async () => {
  const health = await server.app.inject({ method: 'GET', url: '/health' })
  assert.equal(health.statusCode, 200)
  assert.deepEqual(health.json(), { ok: true })
  const ready = await server.app.inject({ method: 'GET', url: '/ready' })
  assert.equal(ready.statusCode, 200)
  assert.deepEqual(ready.json(), { ok: true, peers: 3 })
})

test('/system/info: identity, addresses, version; the API URL once it listens', async () => {
  const r0 = await server.app.inject({ method: 'GET', url: '/system/info' })
  assert.equal(r0.statusCode, 200)
  const info = r0.json() as Record<string, unknown>
  assert.equal(info.peerId, identity.peerId.toString())
  assert.equal(info.did, didKeyFromEd25519(identity.ed25519.publicKey.raw))
  assert.deepEqual(info.multiaddrs, ['/ip4/127.0.0.1/tcp/4001', '/ip4/127.0.0.1/udp/4001/quic-v1'])
  assert.equal(info.api, '', 'not listening yet')
  assert.equal(info.version, '0.1.0')
  assert.equal(info.node, process.version)

  // A separate server, so that this one stays socket-free for the other tests.
  const listening = await routesApi([
    nodeRoutes({
      identity,
      libp2p: { getPeers: () => [], getConnections: () => [], getMultiaddrs: () => [] },
      store: { usage: () => usage() },
      shardServer: { inFlight: 0, served: 0 },
      provideQueue: { size: 0 },
    }),
  ])
  try {
    const url = await listening.listen('127.0.0.1', 0)
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/)
    const r = await listening.app.inject({ method: 'GET', url: '/system/info' })
    assert.equal((r.json() as { api: string }).api, url)
  } finally {
    await listening.close()
  }
})

test('/system/status: counts from libp2p, the store, the shard server and the provide queue', async () => {
  usage = () => ({ bytes: 1000, shards: 4, capacityBytes: 1 << 30, freeBytes: (1 << 30) - 1000 })
  const r = await server.app.inject({ method: 'GET', url: '/system/status' })
  assert.equal(r.statusCode, 200)
  const s = r.json() as Record<string, unknown>
  assert.equal(s.peers, 3)
  assert.equal(s.connections, 4)
  assert.deepEqual(s.usage, usage())
  assert.equal(s.shardRequestsInFlight, 2)
  assert.equal(s.shardRequestsServed, 17)
  assert.equal(s.provideQueueDepth, 5)
  assert.equal(typeof s.uptimeSeconds, 'number')
  assert.ok((s.rssBytes as number) > 0)
})

test('/identity: the DID and both public keys, base64', async () => {
  const r = await server.app.inject({ method: 'GET', url: '/identity' })
  assert.equal(r.statusCode, 200)
  const id = r.json() as Record<string, string>
  assert.equal(id.peerId, identity.peerId.toString())
  assert.equal(id.did, didKeyFromEd25519(identity.ed25519.publicKey.raw))
  assert.deepEqual(
    Buffer.from(id.ed25519PublicKey ?? '', 'base64'),
    Buffer.from(identity.ed25519.publicKey.raw),
  )
  assert.deepEqual(Buffer.from(id.mldsa65PublicKey ?? '', 'base64'), Buffer.from(identity.mldsa.publicKey))
})

test('a NodusError from a service answers its status and code', async () => {
  usage = () => {
    throw new NodusError('STORE_CLOSED', 'shard store is closed')
  }
  const r = await server.app.inject({ method: 'GET', url: '/system/status' })
  assert.equal(r.statusCode, 503)
  assert.deepEqual(errorOf(r.body), { code: 'STORE_CLOSED', message: 'shard store is closed', details: {} })
})

test('an unknown route or method is 404 NOT_FOUND', async () => {
  for (const [method, url] of [
    ['GET', '/system/nope'],
    ['POST', '/system/info'],
  ] as const) {
    const r = await server.app.inject({ method, url })
    assert.equal(r.statusCode, 404, `${method} ${url}`)
    assert.equal(errorOf(r.body).code, 'NOT_FOUND')
  }
})
