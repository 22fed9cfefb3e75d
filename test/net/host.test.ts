/** Connection encryption choices of createHost: each preference connects to the other. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost, DEFAULT_HOST_OPTIONS } from '../../src/net/host.ts'

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
