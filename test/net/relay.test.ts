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
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { describeConnection } from '../../src/net/connections.ts'
import { pickDialPort } from '../../src/net/holepunch.ts'
import { createHost, DEFAULT_HOST_OPTIONS } from '../../src/net/host.ts'
import { reachabilityOf } from '../../src/net/reachability.ts'
import { RelayWatchdog } from '../../src/net/relay-watchdog.ts'
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

test('relay watchdog: a missing reservation is made again with backoff (1, 2, 4 s … 60 s), a held one checked every 10 s', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const R = '12D3KooWRelay'
  let held = false
  let fail = true
  const attempts: string[] = []
  const results: string[] = []
  const w = new RelayWatchdog({
    relays: [`/ip4/11.18.0.10/tcp/4001/p2p/${R}/p2p-circuit`, '/ip4/1.2.3.4/tcp/1/p2p-circuit'],
    held: () => held,
    reserve: async (addr) => {
      attempts.push(addr)
      if (fail) throw new Error('dial failed')
      held = true
    },
    random: () => 0.5,
    onAttempt: (_r, result) => results.push(result),
  })
  const flush = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) await Promise.resolve()
  }
  w.start()
  assert.equal(attempts.length, 1, 'at once, and only for the address naming a relay')
  await flush()
  for (const [n, wait] of [
    [2, 1000],
    [3, 2000],
    [4, 4000],
  ] as const) {
    t.mock.timers.tick(wait - 1)
    assert.equal(attempts.length, n - 1, `attempt ${n} not before ${wait} ms`)
    t.mock.timers.tick(1)
    assert.equal(attempts.length, n)
    await flush()
  }
  assert.deepEqual(w.failures(), { [R]: 4 })
  // Capped at 60 s however long the relay is away.
  for (let i = 0; i < 10; i++) {
    t.mock.timers.tick(60_000)
    await flush()
  }
  const capped = attempts.length
  fail = false
  t.mock.timers.tick(60_000)
  await flush()
  assert.equal(attempts.length, capped + 1)
  assert.equal(held, true)
  assert.deepEqual(w.failures(), { [R]: 0 })
  assert.deepEqual(results.slice(-2), ['failed', 'ok'])
  // Held: no attempt, checked every 10 s; lost: made again at the next check, or at once on a poke.
  t.mock.timers.tick(30_000)
  await flush()
  assert.equal(attempts.length, capped + 1)
  held = false
  t.mock.timers.tick(10_000)
  await flush()
  assert.equal(attempts.length, capped + 2)
  held = false
  w.poke()
  assert.equal(attempts.length, capped + 3, 'an address change checks at once')
  await flush()
  w.stop()
  held = false
  t.mock.timers.tick(600_000)
  assert.equal(attempts.length, capped + 3, 'nothing after stop')
})

test('relay watchdog on libp2p: the reservation is made once the relay comes up, and again after it restarted', {
  timeout: 60_000,
}, async () => {
  const relayKey = await generateKeyPair('Ed25519')
  const port = await pickDialPort('127.0.0.1')
  const startRelay = async () => {
    const relay = await createHost(relayKey, {
      ...DEFAULT_HOST_OPTIONS,
      listen: [`/ip4/127.0.0.1/tcp/${port}`],
      relayServer: 'on',
    })
    await relay.start()
    return relay
  }
  const relayAddr = `/ip4/127.0.0.1/tcp/${port}/p2p/${peerIdFromPrivateKey(relayKey).toString()}`
  let attempts = 0
  const hidden = await createHost(
    await generateKeyPair('Ed25519'),
    { ...DEFAULT_HOST_OPTIONS, listen: [`${relayAddr}/p2p-circuit`], relayServer: 'off' },
    { onRelayReservation: () => attempts++ },
  )
  const relayed = (): boolean => hidden.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit'))
  let relay: Awaited<ReturnType<typeof startRelay>> | undefined
  try {
    // The relay is down when the node starts: libp2p's one attempt fails.
    await hidden.start()
    assert.equal(relayed(), false)
    relay = await startRelay()
    await waitFor(relayed, { timeoutMs: 30_000, what: 'a reservation once the relay is up' })
    assert.ok(attempts >= 1)
    await relay.stop()
    await waitFor(() => !relayed(), { timeoutMs: 15_000, what: 'the reservation dropped with the relay' })
    relay = await startRelay()
    await waitFor(relayed, { timeoutMs: 30_000, what: 'a reservation on the restarted relay' })
  } finally {
    await Promise.all([hidden.stop(), relay?.stop()])
  }
})
