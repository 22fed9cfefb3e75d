/** createHost: connection encryption choices (each preference connects to the other), the connection monitor. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { connectionMonitorInit, createHost, DEFAULT_HOST_OPTIONS } from '../../src/net/host.ts'
import { waitFor } from '../utils/wait.ts'

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
  assert.deepEqual(connectionMonitorInit(DEFAULT_HOST_OPTIONS.monitorPingIntervalMs), { enabled: false })
  // Two hosts dial a third at once, one with the monitor at 100 ms, one with the defaults.
  const on = await createHost(await generateKeyPair('Ed25519'), {
    ...DEFAULT_HOST_OPTIONS,
    monitorPingIntervalMs: 100,
  })
  const off = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS)
  const b = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS)
  try {
    await Promise.all([on.start(), off.start(), b.start()])
    const [measured, unmeasured] = await Promise.all([
      on.dial(b.getMultiaddrs()),
      off.dial(b.getMultiaddrs()),
    ])
    // The monitor sets a connection's rtt after its first ping (no event announces it).
    await waitFor(() => measured.rtt !== undefined, {
      timeoutMs: 5_000,
      what: 'the monitor to measure an RTT',
    })
    assert.equal(unmeasured.rtt, undefined, 'the default host pinged in the time the monitored one did')
  } finally {
    await Promise.all([on.stop(), off.stop(), b.stop()])
  }
})
