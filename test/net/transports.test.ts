/**
 * Transports (src/net/host.ts): two hosts connect over QUIC alone and over WebSockets alone, and the
 * connection says which; nodes listening on QUIC alone store and read back a file, over libp2p
 * streams (bulk channel off) and with the bulk channel (its TCP socket found from the QUIC
 * connection's host).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { describeConnection, transportOf } from '../../src/net/connections.ts'
import { createHost, DEFAULT_HOST_OPTIONS } from '../../src/net/host.ts'
import { checkListen } from '../../src/net/options.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { startNodes } from '../utils/nodes.ts'
import { collect } from '../utils/streams.ts'

for (const [name, listen] of [
  ['quic', '/ip4/127.0.0.1/udp/0/quic-v1'],
  ['ws', '/ip4/127.0.0.1/tcp/0/ws'],
  ['tcp', '/ip4/127.0.0.1/tcp/0'],
] as const) {
  test(`two hosts listening on ${name} alone connect over it, and the connection says ${name}, direct`, async () => {
    const a = await createHost(await generateKeyPair('Ed25519'), {
      ...DEFAULT_HOST_OPTIONS,
      listen: [listen],
    })
    const b = await createHost(await generateKeyPair('Ed25519'), {
      ...DEFAULT_HOST_OPTIONS,
      listen: [listen],
    })
    try {
      await a.start()
      await b.start()
      assert.equal(b.getMultiaddrs().length, 1)
      assert.equal(transportOf(b.getMultiaddrs()[0]?.toString() ?? ''), name)
      const conn = await a.dial(b.getMultiaddrs())
      assert.deepEqual(describeConnection(conn), { transport: name, relayed: false })
      await a.services.ping.ping(b.peerId)
      const back = b.getConnections(a.peerId)[0]
      assert.ok(back !== undefined)
      assert.equal(describeConnection(back).transport, name)
    } finally {
      await a.stop()
      await b.stop()
    }
  })
}

test('the default listen addresses are TCP and QUIC; both are dialed', async () => {
  const a = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS)
  const b = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS)
  try {
    await a.start()
    await b.start()
    const kinds = b.getMultiaddrs().map((m) => transportOf(m.toString()))
    assert.deepEqual(kinds.sort(), ['quic', 'tcp'])
    for (const ma of b.getMultiaddrs()) {
      const conn = await a.dial(ma, { force: true })
      assert.equal(describeConnection(conn).transport, transportOf(ma.toString()))
    }
  } finally {
    await a.stop()
    await b.stop()
  }
})

test('net.listen takes TCP, QUIC, WebSockets and relay addresses and names a bad one', () => {
  assert.equal(
    checkListen([
      '/ip4/0.0.0.0/tcp/4001',
      '/ip4/0.0.0.0/udp/4001/quic-v1',
      '/ip6/::/tcp/4002/ws',
      '/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit',
    ]),
    undefined,
  )
  assert.match(checkListen(['/ip4/0.0.0.0/udp/4001']) ?? '', /udp\/4001 is not a TCP/)
  assert.match(checkListen(['/ip4/0.0.0.0/udp/4001/quic']) ?? '', /is not/)
})

test('relayed connections are told apart from direct ones (address and limits)', () => {
  const relayed = '/ip4/10.0.0.1/udp/4001/quic-v1/p2p/12D3KooWRelay/p2p-circuit/p2p/12D3KooWTarget'
  assert.deepEqual(describeConnection({ remoteAddr: relayed }), { transport: 'quic', relayed: true })
  assert.deepEqual(
    describeConnection({
      remoteAddr: '/ip4/10.0.0.1/tcp/1/p2p-circuit',
      limits: { bytes: 131072n, seconds: 120 },
    }),
    { transport: 'tcp', relayed: true, limitBytes: 131072, limitSeconds: 120 },
  )
  assert.deepEqual(describeConnection({ remoteAddr: '/ip4/10.0.0.1/tcp/1/ws' }), {
    transport: 'ws',
    relayed: false,
  })
})

for (const bulk of ['off', 'on'] as const) {
  test(`nodes on QUIC alone put and get a file (bulk channel ${bulk})`, { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nodus-quic-'))
    let nodes: NodusNode[] = []
    try {
      nodes = await startNodes(dir, 4, {
        net: { listen: ['/ip4/127.0.0.1/udp/0/quic-v1'], bulk },
        storage: { k: 2, m: 1, segmentSize: 1024 * 1024, manifestReplicas: 2 },
        repair: { intervalMs: 3_600_000 },
      })
      for (const n of nodes) {
        for (const c of n.libp2p.getConnections()) assert.equal(describeConnection(c).transport, 'quic')
      }
      const data = randomBytes(5 * 1024 * 1024 + 17)
      const up = nodes[0] as NodusNode
      const res = await up.files.put(
        (async function* () {
          yield data
        })(),
      )
      const reader = nodes[3] as NodusNode
      const back = await collect(reader.files.get(res.cid))
      assert.ok(back.equals(data), 'the file read back over QUIC is the one stored')
      if (bulk === 'on') {
        const sockets = nodes.reduce((s, n) => s + (n.bulk?.sockets.inbound ?? 0), 0)
        assert.ok(sockets > 0, 'the bulk channel carried shards beside the QUIC connections')
      }
    } finally {
      await Promise.all(nodes.map((n) => n.stop()))
      await rm(dir, { recursive: true, force: true })
    }
  })
}
