/**
 * Circuit relay v2 (src/net/host.ts): a relay, a node reachable only through it (its one listen
 * address is a reservation on the relay), and a third node that dials it through `/p2p-circuit`. A
 * protocol registered for limited connections works over it, the connection is reported relayed with
 * the relay's limits, and a shard request over it is refused (PEER_UNREACHABLE). On loopback the
 * reachability is `private` (AutoNAT asks peers only about public addresses) and turns `relayed` once
 * the reservation is announced.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { describeConnection } from '../../src/net/connections.ts'
import { createHost, DEFAULT_HOST_OPTIONS } from '../../src/net/host.ts'
import { reachabilityOf } from '../../src/net/reachability.ts'
import { requestResponse } from '../../src/net/request.ts'
import { lengthPrefixed, StreamReader, sendAll } from '../../src/net/stream-io.ts'
import { SHARD_PROTOCOL } from '../../src/storage/index.ts'
import { waitFor } from '../utils/wait.ts'

const ECHO = '/nodus/test-echo/1.0.0'

test('a node reachable only through a relay: dialed via /p2p-circuit, reported relayed, no shard transfer over it', {
  timeout: 60_000,
}, async () => {
  const relay = await createHost(await generateKeyPair('Ed25519'), {
    ...DEFAULT_HOST_OPTIONS,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    relayServer: 'on',
    relayDataLimitBytes: 64 * 1024,
  })
  await relay.start()
  const relayAddr = relay.getMultiaddrs()[0]?.toString() ?? ''
  const hidden = await createHost(await generateKeyPair('Ed25519'), {
    ...DEFAULT_HOST_OPTIONS,
    listen: [`${relayAddr}/p2p-circuit`],
    relayServer: 'off',
  })
  const dialer = await createHost(await generateKeyPair('Ed25519'), {
    ...DEFAULT_HOST_OPTIONS,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    relayServer: 'off',
  })
  try {
    assert.equal(reachabilityOf(relay.getMultiaddrs().map(String)), 'private', 'loopback only: private')
    // A protocol that may run on limited connections, and the shard protocol as storage registers it.
    await hidden.handle(
      ECHO,
      async (stream) => {
        const frame = await new StreamReader(stream).readFrame(1024)
        await sendAll(stream, lengthPrefixed(frame))
        await stream.close()
      },
      { runOnLimitedConnection: true },
    )
    let shardStreams = 0
    await hidden.handle(SHARD_PROTOCOL, (stream) => {
      shardStreams++
      stream.abort(new Error('unexpected'))
    })
    await hidden.start()
    await dialer.start()
    await waitFor(() => hidden.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit')), {
      timeoutMs: 15_000,
      what: 'the reservation on the relay',
    })
    assert.equal(reachabilityOf(hidden.getMultiaddrs().map(String)), 'relayed')
    const circuit = multiaddr(`${relayAddr}/p2p-circuit/p2p/${hidden.peerId.toString()}`)
    const conn = await dialer.dial(circuit, { signal: AbortSignal.timeout(10_000) })
    const kind = describeConnection(conn)
    assert.equal(kind.relayed, true)
    assert.equal(kind.transport, 'tcp')
    assert.ok(
      kind.limitBytes !== undefined && kind.limitBytes <= 64 * 1024,
      `the relay's data limit is on the connection (${JSON.stringify(kind)})`,
    )
    // A small protocol runs over the relayed connection.
    const frame = dagCbor.encode({ ok: true, hello: 'through the relay' })
    const reply = await requestResponse(
      {
        dialProtocol: (p, proto, o) => dialer.dialProtocol(p, proto, { ...o, runOnLimitedConnection: true }),
      },
      hidden.peerId,
      ECHO,
      frame,
      { timeoutMs: 5_000, what: 'echo', maxReplyBytes: 1024 },
      (r) => r,
    )
    assert.equal(reply.hello, 'through the relay')
    // A shard request is refused: libp2p opens no stream of a protocol not registered for limited
    // connections, so the request fails before any shard byte is sent.
    await assert.rejects(
      requestResponse(
        dialer,
        hidden.peerId,
        SHARD_PROTOCOL,
        dagCbor.encode({ v: 1, op: 'put', size: 1 << 20 }),
        { timeoutMs: 5_000, what: 'shard put', maxReplyBytes: 1024, body: new Uint8Array(1 << 20) },
        (r) => r,
      ),
      (err: Error & { code?: string }) =>
        err.code === 'PEER_UNREACHABLE' && /limited/i.test(String(err.message) + String(err.cause)),
    )
    assert.equal(shardStreams, 0)
    assert.equal(describeConnection(dialer.getConnections(hidden.peerId)[0] ?? conn).relayed, true)
  } finally {
    await Promise.all([dialer.stop(), hidden.stop(), relay.stop()])
  }
})
