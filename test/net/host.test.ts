/** createHost: connection encryption choices (each preference connects to the other), the connection monitor. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { connectionMonitorInit, createHost, DEFAULT_HOST_OPTIONS } from '../../src/net/host.ts'

for (const [dialer, listener, expected] of [
  ['noise', 'noise', '/noise'],
  ['tls', 'tls', '/tls/1.0.0'],
  ['tls', 'noise', '/tls/1.0.0'],
  ['noise', 'tls', '/noise'],
] as const) {
  test(`a ${dialer}-preferring node dials a ${listener}-preferring one: ${expected}`, async () => {
    const a = await createHost(await generateKeyPair('Ed25519'), {
      ...DEFAULT_HOST_OPTIONS,
      encrypter: dialer,
    })
    const b = await createHost(await generateKeyPair('Ed25519'), {
      ...DEFAULT_HOST_OPTIONS,
      encrypter: listener,
    })
    try {
      await a.start()
      await b.start()
      const conn = await a.dial(b.getMultiaddrs())
      assert.equal(conn.encryption, expected)
      assert.equal(conn.remotePeer.toString(), b.peerId.toString())
      await a.services.ping.ping(b.peerId)
    } finally {
      await a.stop()
      await b.stop()
    }
  })
}

test('the connection monitor is off by default (yamux keeps connections alive); on, it measures RTT', async () => {
  assert.deepEqual(connectionMonitorInit(0), { enabled: false })
  assert.deepEqual(connectionMonitorInit(250), { pingInterval: 250, abortConnectionOnPingFailure: false })
  for (const [interval, measured] of [
    [DEFAULT_HOST_OPTIONS.monitorPingIntervalMs, false],
    [100, true],
  ] as const) {
    const a = await createHost(await generateKeyPair('Ed25519'), {
      ...DEFAULT_HOST_OPTIONS,
      monitorPingIntervalMs: interval,
    })
    const b = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS)
    try {
      await a.start()
      await b.start()
      const conn = await a.dial(b.getMultiaddrs())
      // The monitor sets a connection's rtt after its first ping; poll for up to 3 s when it is on.
      const until = Date.now() + (measured ? 3_000 : 600)
      while (conn.rtt === undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 50))
      assert.equal(conn.rtt !== undefined, measured, `monitor interval ${interval} ms`)
    } finally {
      await a.stop()
      await b.stop()
    }
  }
})
