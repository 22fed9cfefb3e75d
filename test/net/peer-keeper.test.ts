import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { silentLogger } from '../../src/common/logger.ts'
import { seededRandom } from '../../src/common/random.ts'
import { createHost, DEFAULT_HOST_OPTIONS } from '../../src/net/index.ts'
import {
  type KeeperDialResult,
  knownPeersClosest,
  PeerKeeper,
  type PeerKeeperDeps,
} from '../../src/net/peer-keeper.ts'
import { waitFor } from '../utils/wait.ts'

/** A fake network: `table` is the routing table, `up` the peers that accept a dial. */
function world(table: string[], up: Set<string>, extra: Partial<PeerKeeperDeps> = {}) {
  let now = 1_000_000
  const connected = new Set<string>()
  const dials: string[] = []
  const results: KeeperDialResult[] = []
  const deps: PeerKeeperDeps = {
    connected: () => [...connected],
    candidates: async (_key, count) => table.slice(0, count),
    discover: async () => {},
    dialable: async () => true,
    isBanned: () => false,
    dial: async (peer) => {
      dials.push(peer)
      if (!up.has(peer)) throw new Error('ECONNREFUSED')
      connected.add(peer)
    },
    now: () => now,
    random: seededRandom(7),
    logger: silentLogger(),
    onDial: (r) => results.push(r),
    ...extra,
  }
  return {
    deps,
    connected,
    dials,
    results,
    advance: (ms: number) => {
      now += ms
    },
  }
}

const peers = (n: number): string[] => Array.from({ length: n }, (_, i) => `p${i}`)

test('peer keeper: dials routing-table peers up to minConnections, at most maxDialsPerRound a round', async () => {
  const table = peers(20)
  const w = world(table, new Set(table))
  w.connected.add('p0')
  const keeper = new PeerKeeper(w.deps, { minConnections: 10, maxDialsPerRound: 4 })
  const r1 = await keeper.round()
  assert.deepEqual(r1, { connected: 1, dialed: 4, ok: 4 })
  assert.ok(!w.dials.includes('p0'), 'a connected peer is not dialed')
  await keeper.round()
  const r3 = await keeper.round()
  assert.deepEqual(r3, { connected: 9, dialed: 1, ok: 1 })
  assert.equal(w.connected.size, 10)
  assert.deepEqual(await keeper.round(), { connected: 10, dialed: 0, ok: 0 }, 'settled: nothing dialed')
  assert.deepEqual(new Set(w.results), new Set(['ok']))
})

test('peer keeper: a peer whose dial failed waits out a doubling backoff; banned and relay-only peers are never dialed', async () => {
  const table = peers(6)
  const w = world(table, new Set(['p3', 'p4', 'p5']), {
    isBanned: (p) => p === 'p0',
    dialable: async (p) => p !== 'p1',
  })
  const keeper = new PeerKeeper(w.deps, { minConnections: 10, backoffMs: 30_000 })
  await keeper.round()
  assert.deepEqual(w.dials.sort(), ['p2', 'p3', 'p4', 'p5'], 'not p0 (banned) nor p1 (relay only)')
  assert.deepEqual(keeper.backingOff(), { p2: 1 })
  w.dials.length = 0
  await keeper.round()
  assert.deepEqual(w.dials, [], 'p2 backs off')
  w.advance(38_000) // past 30 s × 1.25
  await keeper.round()
  assert.deepEqual(w.dials, ['p2'])
  assert.deepEqual(keeper.backingOff(), { p2: 2 })
  w.dials.length = 0
  w.advance(38_000) // 60 s × 0.75 at least: still waiting
  await keeper.round()
  assert.deepEqual(w.dials, [])
  w.advance(40_000)
  await keeper.round()
  assert.deepEqual(w.dials, ['p2'], 'after the doubled wait')
})

test('peer keeper: too few known peers: one DHT lookup for more, at most once per discoverIntervalMs', async () => {
  const table = ['p0']
  const everyone = peers(6)
  let lookups = 0
  const w = world(table, new Set(everyone), {
    discover: async () => {
      lookups++
      // The lookup learns the others.
      for (const p of everyone) if (!table.includes(p)) table.push(p)
    },
  })
  const keeper = new PeerKeeper(w.deps, { minConnections: 10, discoverIntervalMs: 60_000 })
  const r = await keeper.round()
  assert.equal(lookups, 1)
  assert.deepEqual(r, { connected: 0, dialed: 6, ok: 6 }, 'dials what the lookup found, in the same round')
  await keeper.round()
  assert.equal(lookups, 1, 'no second lookup within the interval')
  w.advance(60_000)
  await keeper.round()
  assert.equal(lookups, 2)
})

test('peer keeper: a DHT answer full of fake peers costs at most maxDialsPerRound dials a round, and each fake once per backoff', async () => {
  // A hostile peer's lookup answer put 1,000 unreachable peers in the peer store, ahead of 2 real ones.
  const fakes = Array.from({ length: 1000 }, (_, i) => `fake${i}`)
  const w = world([...fakes, 'real0', 'real1'], new Set(['real0', 'real1']))
  w.deps.candidates = async (_key, count) => [...fakes, 'real0', 'real1'].slice(0, count)
  const keeper = new PeerKeeper(w.deps, { minConnections: 10, maxDialsPerRound: 8, backoffMs: 30_000 })
  for (let round = 0; round < 20; round++) {
    const before = w.dials.length
    await keeper.round()
    assert.ok(w.dials.length - before <= 8, 'at most 8 dials a round')
    w.advance(1000)
  }
  // 20 rounds within 20 s (less than the 30 s × 0.75 backoff): no fake was dialed twice.
  assert.equal(new Set(w.dials).size, w.dials.length, 'each fake dialed once')
  // A round looks at the 64 closest candidates only (here the same 64 fakes each time): once all of
  // them back off, nothing more is dialed until the backoff ends.
  assert.equal(w.dials.length, 64)
  assert.equal(Object.keys(keeper.backingOff()).length, 64)
})

test('peer keeper: minConnections 0 is off', async () => {
  const w = world(peers(4), new Set(peers(4)))
  const keeper = new PeerKeeper(w.deps, { minConnections: 0 })
  assert.deepEqual(await keeper.round(), { connected: 0, dialed: 0, ok: 0 })
  keeper.start()
  keeper.stop()
  assert.deepEqual(w.dials, [])
})

test('peer keeper on real hosts: a node connected only to its bootstrap dials the peers its peer store knows', async () => {
  const listen = ['/ip4/127.0.0.1/tcp/0']
  const hosts = await Promise.all(
    Array.from({ length: 5 }, async () =>
      createHost(await generateKeyPair('Ed25519'), { ...DEFAULT_HOST_OPTIONS, listen }),
    ),
  )
  try {
    await Promise.all(hosts.map((h) => h.start()))
    const [boot, joiner, ...rest] = hosts as [(typeof hosts)[0], (typeof hosts)[0], ...typeof hosts]
    await joiner.dial(boot.getMultiaddrs())
    // The others' addresses, as a DHT query's closer peers would bring them: known, never connected,
    // not in the routing table (kad-dht adds only peers it connected to).
    for (const h of rest) await joiner.peerStore.merge(h.peerId, { multiaddrs: h.getMultiaddrs() })
    assert.deepEqual(joiner.getPeers().map(String), [boot.peerId.toString()])
    const keeper = new PeerKeeper(
      {
        connected: () => joiner.getPeers().map(String),
        candidates: (key, count) => knownPeersClosest(joiner, key, count),
        discover: async () => {},
        dialable: async () => true,
        isBanned: () => false,
        dial: async (p, o) => {
          await joiner.dial(peerIdFromString(p), o)
        },
        now: () => Date.now(),
        random: seededRandom(1),
        logger: silentLogger(),
      },
      { minConnections: 32 },
    )
    const r = await keeper.round()
    assert.deepEqual(r, { connected: 1, dialed: 3, ok: 3 })
    assert.deepEqual(
      new Set(joiner.getPeers().map(String)),
      new Set(
        hosts
          .slice(0, 1)
          .concat(rest)
          .map((h) => h.peerId.toString()),
      ),
    )
  } finally {
    await Promise.all(hosts.map((h) => h.stop()))
  }
})

test('a peer whose public address is verified after it connected enters the routing table (identify push)', {
  timeout: 60_000,
}, async () => {
  const listen = ['/ip4/127.0.0.1/tcp/0']
  // A keeps only public addresses in its DHT, as a node on the Internet does; B's loopback address is
  // not one, so when B connects kad-dht has no address for it and leaves it out of the table.
  const a = await createHost(await generateKeyPair('Ed25519'), {
    ...DEFAULT_HOST_OPTIONS,
    listen,
    dhtAllowPrivateAddresses: false,
  })
  const b = await createHost(await generateKeyPair('Ed25519'), { ...DEFAULT_HOST_OPTIONS, listen })
  try {
    await a.start()
    await b.start()
    await b.dial(a.getMultiaddrs())
    await waitFor(() => a.getPeers().length === 1, { what: 'the connection', timeoutMs: 10_000 })
    const table = (a.services.dht as unknown as { routingTable: { size: number } }).routingTable
    assert.equal(table.size, 0, 'no address the DHT keeps: not in the table')
    // Then B's public address is verified (as AutoNAT does: libp2p 3 announces it only then), and
    // identify push tells A.
    const components = (b as unknown as { components: { addressManager: AddressManagerLike } }).components
    components.addressManager.addObservedAddr(multiaddr('/ip4/1.2.3.4/tcp/4001'))
    components.addressManager.confirmObservedAddr(multiaddr('/ip4/1.2.3.4/tcp/4001'))
    await waitFor(() => table.size === 1, { what: 'B in the routing table', timeoutMs: 20_000 })
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
})

interface AddressManagerLike {
  addObservedAddr(addr: ReturnType<typeof multiaddr>): void
  confirmObservedAddr(addr: ReturnType<typeof multiaddr>): void
}
