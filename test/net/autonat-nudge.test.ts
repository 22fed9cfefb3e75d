import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { silentLogger } from '../../src/common/logger.ts'
import { AutoNatNudge, type NudgeAddress, type NudgeConnection } from '../../src/net/autonat-nudge.ts'
import { createHost, DEFAULT_HOST_OPTIONS } from '../../src/net/host.ts'
import { reachabilityOf } from '../../src/net/reachability.ts'

const NOW = 1_000_000

function conn(peer: string, addr: string, extra: Partial<NudgeConnection> = {}): NudgeConnection {
  return { remotePeer: peer, remoteAddr: addr, status: 'open', ...extra }
}

function setup(addresses: NudgeAddress[], connections: NudgeConnection[], speaks = (_p: string) => true) {
  const asked: string[] = []
  const nudge = new AutoNatNudge(
    {
      addresses: () => addresses,
      connections: () => connections,
      speaksAutonat: speaks,
      verify: async (c) => {
        asked.push(c.remotePeer.toString())
      },
      now: () => NOW,
      logger: silentLogger(),
    },
    { maxPeers: 2 },
  )
  return { nudge, asked }
}

const mapped = (verified: boolean, expires: number): NudgeAddress => ({
  multiaddr: '/ip4/11.18.0.101/tcp/4001',
  verified,
  expires,
})

test('nothing is asked while every public address is tested, or waits for its retry time', () => {
  const conns = [conn('A', '/ip4/11.18.0.10/tcp/4001')]
  for (const addrs of [
    [mapped(true, NOW + 1)], // verified
    [mapped(false, NOW + 60_000)], // refuted, retry later
    [{ multiaddr: '/ip4/10.0.1.2/tcp/4001', verified: false, expires: 0 }], // private: AutoNAT skips it
    [{ multiaddr: '/ip4/11.18.0.10/tcp/4001/p2p/Q/p2p-circuit', verified: false, expires: 0 }], // relayed
  ]) {
    const { nudge, asked } = setup(addrs, conns)
    assert.deepEqual(nudge.pending(), [])
    assert.equal(nudge.tick(), 0)
    assert.deepEqual(asked, [])
  }
})

test('an untested public address: open direct connections to AutoNAT speakers are handed over, in turn', () => {
  const conns = [
    conn('A', '/ip4/11.18.0.10/tcp/4001'),
    conn('A', '/ip4/11.18.0.10/udp/4001/quic-v1'), // a second connection to A: A once
    conn('R', '/ip4/11.18.0.10/tcp/4001/p2p/X/p2p-circuit', { limits: {} }), // relayed: never
    conn('C', '/ip4/11.18.0.12/tcp/4001', { status: 'closing' }), // not open: never
    conn('N', '/ip4/11.18.0.13/tcp/4001'), // does not speak AutoNAT
    conn('B', '/ip4/11.18.0.11/tcp/4001'),
    conn('D', '/ip4/11.18.0.14/tcp/4001'),
  ]
  const { nudge, asked } = setup([mapped(false, 0)], conns, (p) => p !== 'N')
  assert.deepEqual(nudge.pending(), ['/ip4/11.18.0.101/tcp/4001'])
  assert.equal(nudge.tick(), 2)
  assert.deepEqual(asked, ['A', 'B'])
  assert.equal(nudge.tick(), 2)
  assert.deepEqual(asked, ['A', 'B', 'D', 'A'], 'the next look starts where the last ended')
})

test('no eligible connection: nothing asked', () => {
  const { nudge, asked } = setup([mapped(false, 0)], [conn('N', '/ip4/11.18.0.13/tcp/4001')], () => false)
  assert.equal(nudge.tick(), 0)
  assert.deepEqual(asked, [])
})

test('a failing test is logged, not thrown', async () => {
  const logged: string[] = []
  const logger = silentLogger()
  logger.debug = (obj: object) => {
    logged.push((obj as { err: string }).err)
  }
  const nudge = new AutoNatNudge({
    addresses: () => [mapped(false, 0)],
    connections: () => [conn('A', '/ip4/11.18.0.10/tcp/4001')],
    speaksAutonat: () => true,
    verify: async () => {
      throw new Error('stream reset')
    },
    now: () => NOW,
    logger,
  })
  assert.equal(nudge.tick(), 1)
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(logged, ['stream reset'])
})

test('net.announce: an address forwarded by hand is announced at once, as public, beside the listened ones', async () => {
  const host = await createHost(await generateKeyPair('Ed25519'), {
    ...DEFAULT_HOST_OPTIONS,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    announce: ['/ip4/11.22.33.44/tcp/4001'],
  })
  try {
    await host.start()
    const addrs = host.getMultiaddrs().map((m) => m.toString())
    assert.ok(
      addrs.some((a) => a.startsWith('/ip4/127.0.0.1/tcp/')),
      JSON.stringify(addrs),
    )
    assert.ok(addrs.includes(`/ip4/11.22.33.44/tcp/4001/p2p/${host.peerId}`), JSON.stringify(addrs))
    assert.equal(reachabilityOf(addrs), 'public')
  } finally {
    await host.stop()
  }
})
