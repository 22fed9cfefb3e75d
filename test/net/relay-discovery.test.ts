/**
 * Relay discovery (`net.discoverRelays`, src/net/area.ts `relayListenAddrs`; src/net/README.md, "Relay
 * discovery"), on loopback with real libp2p hosts:
 *
 * - a node told of no relay, bootstrapped only to a peer that serves none, finds the relay through the
 *   DHT (a random walk asks its bootstrap peer for the closest peers of random keys, dials what comes
 *   back, and identify shows the relay's hop protocol), reserves a slot and announces the relayed address;
 * - a relay that accepts a reservation and then hangs up: the node withdraws the relayed address, looks
 *   again and ends on the other relay; it is not left unreachable.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { relayListenAddrs } from '../../src/net/area.ts'
import { createHost, DEFAULT_HOST_OPTIONS, type NodusLibp2p } from '../../src/net/host.ts'
import { reachabilityOf } from '../../src/net/reachability.ts'
import { waitFor } from '../utils/wait.ts'

const LOOPBACK = ['/ip4/127.0.0.1/tcp/0']

async function host(
  relayServer: 'on' | 'off',
  listen: string[] = LOOPBACK,
  isBanned?: (peer: string) => boolean,
): Promise<NodusLibp2p> {
  const node = await createHost(
    await generateKeyPair('Ed25519'),
    { ...DEFAULT_HOST_OPTIONS, listen, relayServer, autonat: false, dcutr: false },
    isBanned === undefined ? {} : { isBanned },
  )
  await node.start()
  return node
}

/** The relays `node` announces a reservation on (PeerId strings). */
function relaysOf(node: NodusLibp2p): string[] {
  return node
    .getMultiaddrs()
    .map((m) => /\/p2p\/([^/]+)\/p2p-circuit/.exec(m.toString())?.[1])
    .filter((p) => p !== undefined)
}

async function connect(from: NodusLibp2p, to: NodusLibp2p): Promise<void> {
  const addr = to.getMultiaddrs()[0]
  assert.ok(addr !== undefined)
  await from.dial(multiaddr(addr.toString()), { signal: AbortSignal.timeout(10_000) })
}

test('relayListenAddrs: the listen addresses, then one per configured relay, then /p2p-circuit per relay to find', () => {
  assert.deepEqual(
    relayListenAddrs({ listen: LOOPBACK, relays: ['/ip4/1.2.3.4/tcp/4001/p2p/R/'], discoverRelays: 2 }),
    [...LOOPBACK, '/ip4/1.2.3.4/tcp/4001/p2p/R/p2p-circuit', '/p2p-circuit', '/p2p-circuit'],
  )
  assert.deepEqual(relayListenAddrs({ listen: LOOPBACK, relays: [], discoverRelays: 0 }), LOOPBACK)
})

test('a node with no relay configured finds one through the DHT and becomes relayed', {
  timeout: 90_000,
}, async () => {
  const relay = await host('on')
  const boot = await host('off')
  const nodes = [relay, boot]
  try {
    // The relay joins the DHT through the bootstrap peer, which serves no relay itself.
    await connect(relay, boot)
    const seeker = await host('off', relayListenAddrs({ listen: LOOPBACK, relays: [], discoverRelays: 1 }))
    nodes.push(seeker)
    assert.equal(seeker.getConnections(relay.peerId).length, 0, 'not connected to the relay at start')
    await connect(seeker, boot)
    await waitFor(() => relaysOf(seeker).includes(relay.peerId.toString()), {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: 'a reservation on the relay found through the DHT',
    })
    assert.equal(reachabilityOf(seeker.getMultiaddrs().map(String)), 'relayed')
    assert.ok(!relaysOf(seeker).includes(boot.peerId.toString()))
  } finally {
    await Promise.all(nodes.map((n) => n.stop()))
  }
})

test('a relay that accepts a reservation and then hangs up: the node moves to another relay', {
  timeout: 90_000,
}, async (t) => {
  const hostile = await host('on')
  const good = await host('on')
  const boot = await host('off')
  const nodes = [hostile, good, boot]
  let hangUps = 0
  let stopHostile = false
  try {
    await connect(hostile, boot)
    await connect(good, boot)
    const seeker = await host('off', relayListenAddrs({ listen: LOOPBACK, relays: [], discoverRelays: 1 }))
    nodes.push(seeker)
    // The hostile relay: 200 ms after each reservation of the seeker's (the relay tags the peer when it
    // grants one), it hangs up on it.
    const relayService = (
      hostile.services as unknown as { relay: { reservations: { has(p: PeerId): boolean } } }
    ).relay
    hostile.addEventListener('peer:update', (evt) => {
      if (!evt.detail.peer.id.equals(seeker.peerId) || !relayService.reservations.has(seeker.peerId)) return
      setTimeout(() => {
        if (stopHostile) return
        hangUps++
        void hostile.hangUp(seeker.peerId).catch(() => {})
      }, 200)
    })
    // Connected to the hostile relay first: the seeker reserves there at once (identify shows the hop
    // protocol on a connected peer), then loses it.
    await connect(seeker, hostile)
    await connect(seeker, boot)
    try {
      await waitFor(
        () =>
          relaysOf(seeker).includes(good.peerId.toString()) && seeker.getConnections(good.peerId).length > 0,
        { timeoutMs: 60_000, intervalMs: 100, what: 'a reservation on the relay that keeps it' },
      )
    } finally {
      stopHostile = true
    }
    t.diagnostic(`the hostile relay dropped ${hangUps} reservation(s) before the node settled on the other`)
    assert.ok(hangUps >= 1, 'the hostile relay accepted and dropped at least one reservation')
    assert.ok(!relaysOf(seeker).includes(hostile.peerId.toString()), 'no address through the hostile relay')
    assert.equal(reachabilityOf(seeker.getMultiaddrs().map(String)), 'relayed')
  } finally {
    await Promise.all(nodes.map((n) => n.stop()))
  }
})
