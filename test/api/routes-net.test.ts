/**
 * The net routes (src/net/routes.ts) through `app.inject()`, built from small fakes: no libp2p, no
 * trust or performance records.
 */
import assert from 'node:assert/strict'
import { after, before, beforeEach, test } from 'node:test'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { ApiServer } from '../../src/api/index.ts'
import { type ConnectionView, netRoutes } from '../../src/net/index.ts'
import { AUTH, errorOf, routesApi } from '../utils/api-node.ts'

const PEER = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
const connections: ConnectionView[] = [
  {
    remotePeer: 'peer-a',
    remoteAddr: '/ip4/10.0.0.1/tcp/4001',
    direction: 'outbound',
    timeline: { open: 1000 },
  },
  {
    remotePeer: 'peer-b',
    remoteAddr: '/ip4/10.0.0.2/udp/4001/quic-v1/p2p/relay/p2p-circuit',
    direction: 'inbound',
    timeline: { open: 2000 },
    limits: { bytes: 131072n, seconds: 120 },
  },
]
/** What the fake dial does with each multiaddr it is given. */
let dial: (ma: Multiaddr) => Promise<{ remotePeer: string }>
const dialed: string[] = []
const hungUp: string[] = []
let server: ApiServer

before(async () => {
  server = await routesApi([
    netRoutes({
      libp2p: {
        getConnections: () => connections,
        getMultiaddrs: () => ['/ip4/127.0.0.1/tcp/4001', '/ip4/203.0.113.5/udp/4001/quic-v1'],
        dial: async (ma, options) => {
          assert.ok(options.signal instanceof AbortSignal, 'a dial has a deadline')
          dialed.push(ma.toString())
          return await dial(ma)
        },
        hangUp: async (peer, options) => {
          assert.ok(options.signal instanceof AbortSignal, 'a hang-up has a deadline')
          hungUp.push(peer.toString())
        },
      },
      trust: { score: (peer) => (peer === 'peer-a' ? 0.75 : 0.25) },
      perf: {
        stats: (peer) => (peer === 'peer-a' ? { latencyMs: 12.5 } : undefined),
        score: (peer) => (peer === 'peer-a' ? 0.9 : 0.5),
      },
    }),
  ])
})
after(() => server.close())
beforeEach(() => {
  dialed.length = 0
  dial = async () => ({ remotePeer: PEER })
})

const connect = (body: unknown, headers: Record<string, string> = AUTH) =>
  server.app.inject({
    method: 'POST',
    url: '/network/connect',
    headers,
    payload: body as Record<string, unknown>,
  })

test('/network/peers: each connection with its transport, direct or relayed, trust, latency and performance', async () => {
  const r = await server.app.inject({ method: 'GET', url: '/network/peers' })
  assert.equal(r.statusCode, 200)
  assert.deepEqual(r.json(), {
    peers: [
      {
        peerId: 'peer-a',
        addr: '/ip4/10.0.0.1/tcp/4001',
        direction: 'outbound',
        openedAt: 1000,
        transport: 'tcp',
        relayed: false,
        trust: 0.75,
        latencyMs: 12.5,
        performance: 0.9,
      },
      {
        peerId: 'peer-b',
        addr: '/ip4/10.0.0.2/udp/4001/quic-v1/p2p/relay/p2p-circuit',
        direction: 'inbound',
        openedAt: 2000,
        transport: 'quic',
        relayed: true,
        limitBytes: 131072,
        limitSeconds: 120,
        trust: 0.25,
        latencyMs: null,
        performance: 0.5,
      },
    ],
  })
})

test('/network/connect dials the multiaddr and answers the PeerId', async () => {
  const ma = `/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`
  const r = await connect({ multiaddr: ma })
  assert.equal(r.statusCode, 200)
  assert.deepEqual(r.json(), { peerId: PEER })
  assert.deepEqual(dialed, [ma])
})

test('/network/connect needs the token: 401 before the body is looked at, nothing dialed', async () => {
  for (const headers of [{}, { authorization: 'Bearer wrong' }]) {
    const r = await connect({ multiaddr: '/ip4/127.0.0.1/tcp/4001' }, headers)
    assert.equal(r.statusCode, 401)
    assert.equal(errorOf(r.body).code, 'UNAUTHORIZED')
  }
  const junk = await connect({ nope: 1 }, {})
  assert.equal(junk.statusCode, 401, 'unauthenticated: 401 even for an invalid body')
  assert.deepEqual(dialed, [])
})

test('/network/connect: bad input is 400 INVALID_ARGUMENT, nothing dialed', async () => {
  for (const body of [{ multiaddr: 'not/a/multiaddr' }, { nope: 1 }, { multiaddr: '' }, {}]) {
    const r = await connect(body)
    assert.equal(r.statusCode, 400, JSON.stringify(body))
    assert.equal(errorOf(r.body).code, 'INVALID_ARGUMENT')
  }
  assert.deepEqual(dialed, [])
})

test('/network/connect: a failed dial is 502 PEER_UNREACHABLE naming the address', async () => {
  dial = async () => {
    throw new Error('connection refused')
  }
  const r = await connect({ multiaddr: '/ip4/127.0.0.1/tcp/9' })
  assert.equal(r.statusCode, 502)
  const e = errorOf(r.body)
  assert.equal(e.code, 'PEER_UNREACHABLE')
  assert.match(e.message, /cannot connect to \/ip4\/127\.0\.0\.1\/tcp\/9: connection refused/)
})

test('GET /network/connect is 404 NOT_FOUND', async () => {
  const r = await server.app.inject({ method: 'GET', url: '/network/connect' })
  assert.equal(r.statusCode, 404)
  assert.equal(errorOf(r.body).code, 'NOT_FOUND')
})

test('/network/reachability: public when an announced direct address is on a public IP, each address described', async () => {
  const r = await server.app.inject({ method: 'GET', url: '/network/reachability' })
  assert.equal(r.statusCode, 200)
  assert.deepEqual(r.json(), {
    reachability: 'public',
    addresses: [
      { addr: '/ip4/127.0.0.1/tcp/4001', transport: 'tcp', relayed: false, public: false },
      { addr: '/ip4/203.0.113.5/udp/4001/quic-v1', transport: 'quic', relayed: false, public: true },
    ],
  })
})

test('/network/disconnect hangs up the peer and counts its connections; bad input and no token refused', async () => {
  const post = (body: unknown, headers: Record<string, string> = AUTH) =>
    server.app.inject({ method: 'POST', url: '/network/disconnect', headers, payload: body as object })
  hungUp.length = 0
  const r = await post({ peerId: PEER })
  assert.equal(r.statusCode, 200)
  assert.deepEqual(r.json(), { peerId: PEER, closed: 0 })
  assert.deepEqual(hungUp, [PEER])
  const bad = await post({ peerId: 'not a peer id' })
  assert.equal(bad.statusCode, 400)
  assert.equal(errorOf(bad.body).code, 'INVALID_ARGUMENT')
  const anon = await post({ peerId: PEER }, {})
  assert.equal(anon.statusCode, 401)
  assert.deepEqual(hungUp, [PEER], 'nothing hung up without the token or with a bad id')
})
