/**
 * The IP-diversity gater (src/net/gater.ts) and the routing table's subnet cap (kad-table.ts): 100
 * connections from one /24 are refused past the limit with a metric and a log line, each limit (IP,
 * /24, /16, /64, /48, join rate) refuses with its reason, exemptions come from config, one real
 * inbound connection is refused by libp2p, and no k-bucket holds more than the cap of one subnet.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { checkCidrs } from '../../src/common/cidr.ts'
import type { Logger } from '../../src/common/logger.ts'
import { DiversityGater, type GaterLimits, type GaterRefusal, subnetKeys } from '../../src/net/gater.ts'
import { createHost, DEFAULT_HOST_OPTIONS } from '../../src/net/host.ts'
import { useSubnetCap } from '../../src/net/kad-table.ts'
import { FakeClock } from '../utils/fake-clock.ts'

const LIMITS: GaterLimits = {
  perIp: 8,
  perSubnet24: 16,
  perSubnet16: 64,
  perSubnet64: 8,
  perSubnet48: 32,
  joinsPerMinute: 1000,
  exempt: [],
}

/** A gater with a fake clock, counting refusals and keeping warn lines. */
function gater(limits: Partial<GaterLimits> = {}) {
  const clock = new FakeClock(1_000_000)
  const refused = new Map<GaterRefusal, number>()
  const warnings: { obj: Record<string, unknown>; msg: string | undefined }[] = []
  const logger: Logger = {
    debug() {},
    info() {},
    warn: (obj, msg) => warnings.push({ obj: obj as Record<string, unknown>, msg }),
    error() {},
    child: () => logger,
  }
  const g = new DiversityGater(
    { ...LIMITS, ...limits },
    { clock, logger, refused: (r) => refused.set(r, (refused.get(r) ?? 0) + 1) },
  )
  return { g, clock, refused, warnings }
}

const open = () => ({ status: 'open' })

describe('IP-diversity gater', () => {
  it('100 connections from one /24: the first 16 are admitted, the rest refused with a metric and a log line', () => {
    const { g, refused, warnings } = gater()
    const results = Array.from({ length: 100 }, (_, i) => g.admit(`/ip4/203.0.113.${i + 1}/tcp/4001`, open()))
    assert.equal(results.filter((r) => r === undefined).length, 16)
    assert.deepEqual([...new Set(results.slice(16))], ['subnet24'])
    assert.equal(refused.get('subnet24'), 84)
    assert.equal(g.counted('203.0.113/24'), 16)
    // One line per subnet per minute, naming the reason and the subnet.
    assert.equal(warnings.length, 1)
    assert.match(warnings[0]?.msg ?? '', /refused by the IP-diversity limits/)
    assert.equal(warnings[0]?.obj.reason, 'subnet24')
    assert.equal(warnings[0]?.obj.subnet, '203.0.113/24')
    // Another /24 is not affected.
    assert.equal(g.admit('/ip4/203.0.114.1/tcp/4001', open()), undefined)
  })

  it('closed connections leave the count: a refused subnet is admitted again', () => {
    const { g } = gater({ perSubnet24: 2 })
    const a = open()
    assert.equal(g.admit('/ip4/198.51.100.1/tcp/1', a), undefined)
    assert.equal(g.admit('/ip4/198.51.100.2/tcp/1', open()), undefined)
    assert.equal(g.admit('/ip4/198.51.100.3/tcp/1', open()), 'subnet24')
    a.status = 'closed'
    assert.equal(g.admit('/ip4/198.51.100.3/tcp/1', open()), undefined)
  })

  it('per IP, per /16, per IPv6 /64 and /48, each with its reason', () => {
    const ip = gater({ perIp: 2 })
    assert.deepEqual(
      [1, 2, 3].map(() => ip.g.admit('/ip4/192.0.2.7/udp/4001/quic-v1', open())),
      [undefined, undefined, 'ip'],
    )
    const wide = gater({ perSubnet16: 3 })
    assert.deepEqual(
      [1, 2, 3, 4].map((i) => wide.g.admit(`/ip4/10.9.${i}.1/tcp/1`, open())),
      [undefined, undefined, undefined, 'subnet16'],
    )
    const v6 = gater({ perSubnet64: 2, perSubnet48: 3 })
    assert.equal(v6.g.admit('/ip6/2001:db8:1:1::1/tcp/1', open()), undefined)
    assert.equal(v6.g.admit('/ip6/2001:db8:1:1::2/tcp/1', open()), undefined)
    assert.equal(v6.g.admit('/ip6/2001:db8:1:1:0:0:0:3/tcp/1', open()), 'subnet64')
    assert.equal(v6.g.admit('/ip6/2001:db8:1:2::1/tcp/1', open()), undefined)
    assert.equal(v6.g.admit('/ip6/2001:db8:1:3::1/tcp/1', open()), 'subnet48')
    assert.equal(v6.g.admit('/ip6/2001:db8:2:3::1/tcp/1', open()), undefined)
  })

  it('join rate: more new connections per /24 per minute are refused, and admitted again a minute later', () => {
    const { g, clock, refused } = gater({ joinsPerMinute: 5, perSubnet24: 100, perIp: 100 })
    const r = Array.from({ length: 7 }, (_, i) => g.admit(`/ip4/192.0.2.${i}/tcp/1`, open()))
    assert.deepEqual(r, [undefined, undefined, undefined, undefined, undefined, 'rate', 'rate'])
    assert.equal(refused.get('rate'), 2)
    clock.advance(60_001)
    assert.equal(g.admit('/ip4/192.0.2.9/tcp/1', open()), undefined)
  })

  it('exempt ranges come from config; relayed connections are not counted', () => {
    const { g } = gater({ perSubnet24: 1, exempt: ['127.0.0.0/8', '::1/128', '10.0.0.0/8'] })
    for (let i = 0; i < 5; i++) assert.equal(g.admit(`/ip4/127.0.0.${i}/tcp/1`, open()), undefined)
    for (let i = 0; i < 5; i++) assert.equal(g.admit(`/ip4/10.0.0.${i}/tcp/1`, open()), undefined)
    for (let i = 0; i < 5; i++) assert.equal(g.admit('/ip6/::1/tcp/1', open()), undefined)
    for (let i = 0; i < 5; i++) assert.equal(g.admit('/ip6/::ffff:127.0.0.1/tcp/1', open()), undefined)
    const circuit = '/ip4/192.0.2.1/tcp/1/p2p/12D3KooWRelay/p2p-circuit'
    for (let i = 0; i < 5; i++) assert.equal(g.admit(circuit, open()), undefined)
    assert.equal(gater({ perSubnet24: 1 }).g.subnetOf('127.0.0.1'), '127.0.0/24')
    assert.equal(g.subnetOf('127.0.0.1'), undefined)
    assert.match(checkCidrs(['10.0.0.0/33']) ?? '', /not a CIDR range/)
    assert.match(checkCidrs(['example']) ?? '', /not a CIDR range/)
    assert.equal(checkCidrs(['10.0.0.0/8', 'fd00::/8']), undefined)
  })

  it('subnet keys: IPv4, IPv6 (expanded, lower case), IPv4-mapped IPv6', () => {
    assert.deepEqual(subnetKeys('192.0.2.7'), {
      ip: '192.0.2.7',
      narrow: '192.0.2/24',
      wide: '192.0/16',
      family: 4,
    })
    assert.deepEqual(subnetKeys('2001:DB8::1'), {
      ip: '2001:db8:0:0:0:0:0:1',
      narrow: '2001:db8:0:0::/64',
      wide: '2001:db8:0::/48',
      family: 6,
    })
    assert.equal(subnetKeys('::ffff:192.0.2.7')?.narrow, '192.0.2/24')
    assert.equal(subnetKeys('not-an-ip'), undefined)
  })

  it('libp2p refuses a real inbound connection past the per-IP limit (loopback, exemptions empty)', async () => {
    const { g, refused } = gater({ perIp: 1 })
    const b = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS, {
      diversity: { gater: g, dhtMaxPerSubnet: 3 },
    })
    const a1 = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS)
    const a2 = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS)
    try {
      await Promise.all([a1.start(), a2.start(), b.start()])
      const tcp = b.getMultiaddrs().filter((m) => m.toString().includes('/tcp/'))
      await a1.dial(tcp)
      await assert.rejects(a2.dial(tcp, { signal: AbortSignal.timeout(5_000) }))
      assert.equal(refused.get('ip'), 1)
      assert.equal(b.getConnections().length, 1)
    } finally {
      await Promise.all([a1.stop(), a2.stop(), b.stop()])
    }
  })
})

describe('routing table subnet cap', () => {
  it('no k-bucket holds more than the cap of one /24', async () => {
    const host = await createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS)
    // 400 synthetic peers in 40 subnets, 10 each: many buckets would hold 3 or more of one subnet.
    const peers: PeerId[] = []
    const subnetOf = new Map<string, string>()
    for (let i = 0; i < 400; i++) {
      const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
      peers.push(id)
      subnetOf.set(id.toString(), `198.51.${i % 40}/24`)
    }
    let refusedCount = 0
    const cap = 2
    assert.equal(
      useSubnetCap(host.services.dht, {
        perBucket: cap,
        subnetOf: (p) => subnetOf.get(p.toString()),
        onRefused: () => refusedCount++,
      }),
      true,
    )
    assert.equal(useSubnetCap({}, { perBucket: cap, subnetOf: () => undefined }), false)
    try {
      await host.start()
      const kb = (
        host.services.dht as unknown as {
          routingTable: {
            kb: { verify: () => Promise<boolean>; add(p: PeerId): Promise<void>; root: unknown }
          }
        }
      ).routingTable.kb
      kb.verify = async () => true
      for (const p of peers) await kb.add(p)
      const leaves: { peerId: PeerId }[][] = []
      const walk = (b: unknown): void => {
        const n = b as { peers?: { peerId: PeerId }[]; left?: unknown; right?: unknown }
        if (Array.isArray(n.peers)) leaves.push(n.peers)
        if (n.left !== undefined) walk(n.left)
        if (n.right !== undefined) walk(n.right)
      }
      walk(kb.root)
      let total = 0
      for (const leaf of leaves) {
        const per = new Map<string, number>()
        for (const p of leaf) {
          const s = subnetOf.get(p.peerId.toString()) ?? 'self'
          per.set(s, (per.get(s) ?? 0) + 1)
          total++
        }
        for (const [s, n] of per) if (s !== 'self') assert.ok(n <= cap, `${n} contacts of ${s} in one bucket`)
      }
      assert.ok(refusedCount > 0, 'some contacts were kept out')
      assert.ok(total > 100, `the table still fills across buckets (${total} contacts)`)
    } finally {
      await host.stop()
    }
  })
})
