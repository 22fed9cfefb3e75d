import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { test } from 'node:test'
import { type ChildOutcome, followChild, transferOf, WAN_VARIANTS, wanPlan } from '../../bench/wan.bench.ts'
import { devnetNodeConfig, listenAddr } from '../../src/cli/devnet.ts'
import { netnsHosts } from '../../src/cli/devnet-netns.ts'
import { planTopology, validateSpec } from '../../src/netns/index.ts'

// The pieces of bench/wan.bench.ts (issue 22) that run without root: where the devnet's nodes go on a
// topology, the listen address of each transport, the node config, and how a client's JSON lines
// become a transfer figure (done, cut off, failed).

test('listenAddr: TCP by default, QUIC as udp/quic-v1', () => {
  assert.equal(listenAddr('11.18.0.10', 0), '/ip4/11.18.0.10/tcp/0')
  assert.equal(listenAddr('11.18.0.10', 4001, 'tcp'), '/ip4/11.18.0.10/tcp/4001')
  assert.equal(listenAddr('10.0.1.2', 0, 'quic'), '/ip4/10.0.1.2/udp/0/quic-v1')
})

test('devnetNodeConfig keeps the other net keys of config.net, sets listen (TCP and QUIC by default) and bootstrap', () => {
  const cfg = devnetNodeConfig(
    {
      basePort: 0,
      logLevel: 'warn',
      transport: 'quic',
      config: { storage: { k: 4 }, net: { bulk: 'off', listen: ['/ip4/1.2.3.4/tcp/1'] } },
      netns: { hostOf: () => ({ netns: 'nodus-x-p1', address: '11.18.0.11' }), publicNodes: 2 },
    },
    1,
    ['/ip4/11.18.0.10/tcp/5/p2p/x'],
  )
  assert.deepEqual(cfg, {
    storage: { k: 4 },
    net: {
      bulk: 'off',
      gaterExempt: ['127.0.0.0/8', '::1/128', '11.18.0.0/24'],
      listen: ['/ip4/11.18.0.11/udp/4001/quic-v1'],
      bootstrap: ['/ip4/11.18.0.10/tcp/5/p2p/x'],
    },
    api: { port: 0 },
    log: { level: 'warn' },
  })
  const loop = devnetNodeConfig({ basePort: 7000, logLevel: 'info' }, 3, [])
  assert.deepEqual(loop.net, {
    listen: ['/ip4/127.0.0.1/tcp/7003', '/ip4/127.0.0.1/udp/7003/quic-v1'],
    bootstrap: [],
  })
  const tcpOnly = devnetNodeConfig({ basePort: 0, logLevel: 'info', transport: 'tcp' }, 0, [])
  assert.deepEqual((tcpOnly.net as { listen: string[] }).listen, ['/ip4/127.0.0.1/tcp/0'])
  assert.deepEqual(loop.api, { port: 8003 })
  // Behind a router with a UPnP IGD: the node maps its port (net.upnp on) and reserves on the relay.
  const home = devnetNodeConfig(
    {
      basePort: 0,
      logLevel: 'warn',
      netns: { hostOf: () => ({ netns: 'nodus-x-h1', address: '10.0.1.2', upnp: true }), publicNodes: 1 },
    },
    1,
    ['/ip4/11.18.0.10/tcp/4001/p2p/x'],
  )
  const homeNet = home.net as { upnp?: string; relays?: string[] }
  assert.equal(homeNet.upnp, 'on')
  assert.deepEqual(homeNet.relays, ['/ip4/11.18.0.10/tcp/4001/p2p/x'])
})

test('netnsHosts: public hosts first (node 0 on p0), then the homes, seen as their router', () => {
  const plan = planTopology(validateSpec({ publicHosts: 2, homes: 2, symmetric: 1 }), 'abc')
  assert.deepEqual(netnsHosts(plan), [
    {
      index: 0,
      kind: 'public',
      netns: 'nodus-abc-p0',
      address: '11.18.0.10',
      seenAs: '11.18.0.10',
      upnp: false,
    },
    {
      index: 1,
      kind: 'public',
      netns: 'nodus-abc-p1',
      address: '11.18.0.11',
      seenAs: '11.18.0.11',
      upnp: false,
    },
    {
      index: 2,
      kind: 'cone',
      netns: 'nodus-abc-h1',
      address: '10.0.1.2',
      seenAs: '11.18.0.101',
      upnp: false,
    },
    {
      index: 3,
      kind: 'symmetric',
      netns: 'nodus-abc-h2',
      address: '10.0.2.2',
      seenAs: '11.18.0.102',
      upnp: false,
    },
  ])
})

const outcome = (o: Partial<ChildOutcome>): ChildOutcome => ({
  final: undefined,
  progress: undefined,
  cutOff: false,
  stderr: '',
  code: null,
  ...o,
})

test('transferOf: a finished transfer is file bytes over its seconds', () => {
  const t = transferOf(outcome({ final: { event: 'got', seconds: 4 } }), 32_000_000, 'get', 1000)
  assert.equal(t.done, true)
  assert.equal(t.MBps, 8)
})

test('transferOf: a cut-off transfer gives the rate up to its last progress and says so', () => {
  const t = transferOf(
    outcome({ cutOff: true, progress: { bytes: 10_000_000, seconds: 20 } }),
    64_000_000,
    'Helia cat',
    300_000,
  )
  assert.equal(t.done, false)
  assert.equal(t.MBps, 0.5)
  assert.match(t.note, /Helia cat cut off after 300 s at 10\.0 MB/)
  const none = transferOf(outcome({ cutOff: true }), 64_000_000, 'get', 1000)
  assert.equal(none.MBps, 0)
})

test('transferOf: a failed transfer has no figure and the error in its note', () => {
  const t = transferOf(
    outcome({ final: { event: 'error', message: 'MANIFEST_NOT_FOUND' }, code: 1 }),
    1,
    'get',
    1,
  )
  assert.equal(t.done, false)
  assert.ok(Number.isNaN(t.MBps))
  assert.equal(t.note, 'get failed: MANIFEST_NOT_FOUND')
  const crashed = transferOf(outcome({ stderr: 'boom\n', code: 3 }), 1, 'put', 1)
  assert.equal(crashed.note, 'put failed: boom')
})

test('followChild: keeps the last progress and resolves on the final event', async () => {
  const script =
    "for (const b of [1, 2]) console.log(JSON.stringify({ event: 'progress', bytes: b, seconds: b }));" +
    "console.log('not json'); console.log(JSON.stringify({ event: 'got', seconds: 3 }))"
  const o = await followChild(spawn(process.execPath, ['-e', script]), ['got'], 60_000)
  assert.equal(o.cutOff, false)
  assert.deepEqual(o.progress, { bytes: 2, seconds: 2 })
  assert.deepEqual(o.final, { event: 'got', seconds: 3 })
})

test('followChild: a child that exits without its final event resolves with its stderr', async () => {
  const o = await followChild(
    spawn(process.execPath, ['-e', "console.error('bad things'); process.exit(2)"]),
    ['put'],
    60_000,
  )
  assert.equal(o.final, undefined)
  assert.equal(o.code, 2)
  assert.match(o.stderr, /bad things/)
})

test('wanPlan: quick is 80 ms on 8 nodes; full covers 20, 80 and 200 ms; TCP and QUIC variants', () => {
  const q = wanPlan(true)
  assert.deepEqual(q.rttsMs, [80])
  assert.equal(q.nodes, 8)
  const f = wanPlan(false)
  assert.deepEqual(f.rttsMs, [20, 80, 200])
  assert.equal(f.loss, 0.005)
  assert.deepEqual(
    f.variants.map((v) => v.transport),
    ['tcp', 'quic'],
  )
  assert.equal(WAN_VARIANTS.quic?.bulk, 'off')
})
