import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseLoss, parseMs } from '../../src/cli/devnet-netns.ts'
import { isNodusError, NodusError } from '../../src/common/errors.ts'
import { silentLogger } from '../../src/common/logger.ts'
import {
  type BridgeHandle,
  type BridgeLauncher,
  bridgeArgs,
  type CommandRunner,
  cleanupNetns,
  DEFAULT_TOPOLOGY_SPEC,
  igdChainRules,
  type LinkParams,
  linkParams,
  listNetns,
  NetnsTopology,
  natRules,
  planTopology,
  validateSpec,
} from '../../src/netns/index.ts'

// The topology's commands, checked without root: a recording CommandRunner and a fake BridgeLauncher
// (test/netns/topology.test.ts builds the real thing).

class RecordingRunner implements CommandRunner {
  readonly commands: string[][] = []
  /** Fail the first command for which this returns true. */
  failWhen: ((argv: readonly string[]) => boolean) | undefined
  netnsList = ''

  async run(argv: readonly string[]): Promise<{ stdout: string; stderr: string }> {
    this.commands.push([...argv])
    if (this.failWhen?.(argv) === true) {
      this.failWhen = undefined
      throw new NodusError('NETNS_COMMAND_FAILED', `${argv.join(' ')}: boom`)
    }
    if (argv.join(' ') === 'ip netns list') return { stdout: this.netnsList, stderr: '' }
    return { stdout: '', stderr: '' }
  }

  lines(): string[] {
    return this.commands.map((c) => c.join(' '))
  }
}

class FakeBridges implements BridgeLauncher {
  readonly started: { netns: string; a: string; b: string; params: LinkParams & { seed: number } }[] = []
  stopped = 0

  async start(
    netns: string,
    a: string,
    b: string,
    params: LinkParams & { seed: number },
  ): Promise<BridgeHandle> {
    this.started.push({ netns, a, b, params })
    return {
      netns,
      pid: undefined,
      counters: async () => {
        throw new Error('not in this test')
      },
      stop: async () => {
        this.stopped++
        return undefined
      },
    }
  }
}

const logger = silentLogger()

test('spec: defaults, ranges, and per-link figures that compose to the end-to-end ones', () => {
  assert.deepEqual(validateSpec({}), DEFAULT_TOPOLOGY_SPEC)
  assert.equal(DEFAULT_TOPOLOGY_SPEC.publicHosts, 1)
  for (const bad of [
    { publicHosts: 0 },
    { homes: 2, symmetric: 3 },
    { homes: 1, upnp: 2 },
    { loss: 0.6 },
    { rttMs: -1 },
    { rttMs: 10, jitterMs: 6 },
  ]) {
    assert.throws(
      () => validateSpec(bad),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
      JSON.stringify(bad),
    )
  }
  const l = linkParams(validateSpec({ rttMs: 80, jitterMs: 10, loss: 0.005 }))
  assert.equal(l.delayMs, 20, 'four one-way link crossings per round trip')
  assert.equal(l.jitterMs, 5)
  assert.ok(Math.abs(1 - (1 - l.loss) ** 2 - 0.005) < 1e-12, 'two links lose 0.5 % one way')
})

test('plan: prefixed names, one /24 per home, the last homes symmetric', () => {
  const p = planTopology(validateSpec({ publicHosts: 2, homes: 3, symmetric: 1 }), 'ab12')
  assert.equal(p.switchNetns, 'nodus-ab12-sw')
  assert.deepEqual(
    p.publicHosts.map((h) => [h.netns, h.address]),
    [
      ['nodus-ab12-p0', '11.18.0.10'],
      ['nodus-ab12-p1', '11.18.0.11'],
    ],
  )
  assert.deepEqual(
    p.homes.map((h) => [h.netns, h.address, h.router.netns, h.router.wanAddress, h.nat]),
    [
      ['nodus-ab12-h1', '10.0.1.2', 'nodus-ab12-r1', '11.18.0.101', 'cone'],
      ['nodus-ab12-h2', '10.0.2.2', 'nodus-ab12-r2', '11.18.0.102', 'cone'],
      ['nodus-ab12-h3', '10.0.3.2', 'nodus-ab12-r3', '11.18.0.103', 'symmetric'],
    ],
  )
  assert.deepEqual(
    p.homes.map((h) => h.upnp),
    [false, false, false],
  )
  const u = planTopology(validateSpec({ homes: 3, symmetric: 1, upnp: 2 }), 'ab12')
  assert.deepEqual(
    u.homes.map((h) => [h.nat, h.upnp]),
    [
      ['cone', false],
      ['cone', true],
      ['symmetric', true],
    ],
    'the last homes have the UPnP routers',
  )
  assert.throws(
    () => planTopology(validateSpec({}), 'Bad-Id'),
    (e) => isNodusError(e, 'INVALID_ARGUMENT'),
  )
})

test('build: veths only inside namespaces, offloads off on every one, cone and symmetric rules, a bridge per access link', async () => {
  const runner = new RecordingRunner()
  const bridges = new FakeBridges()
  const topo = await NetnsTopology.create(
    { logger, runner, bridges },
    { publicHosts: 1, homes: 2, symmetric: 1, rttMs: 80, loss: 0.01, seed: 5 },
    { runId: 'x1' },
  )
  const lines = runner.lines()
  assert.deepEqual(
    [...topo.namespaces].sort(),
    ['d-p0', 'd-r1', 'd-r2', 'h1', 'h2', 'p0', 'r1', 'r2', 'sw'].map((r) => `nodus-x1-${r}`),
  )
  assert.ok(
    topo.namespaces.every((ns) => ns.startsWith('nodus-x1-')),
    'every name carries the prefix and run id',
  )
  const veths = runner.commands.filter((c) => c[0] === 'ip' && c[1] === 'link' && c[2] === 'add')
  assert.equal(veths.length, 2 * 3 + 2, 'two per access link, one per home LAN')
  for (const v of veths) {
    assert.equal(v[4], 'netns', `${v.join(' ')} creates its first end inside a namespace`)
    assert.ok(v.slice(-2)[0] === 'netns', `${v.join(' ')} creates its peer inside a namespace`)
    // Offloads off on both ends.
    for (const [ns, dev] of [
      [v[5], v[3]],
      [v[v.length - 1], v[v.length - 3]],
    ]) {
      assert.ok(
        lines.includes(`ip netns exec ${ns} ethtool -K ${dev} tx off rx off gso off gro off`),
        `offloads off on ${dev} in ${ns}`,
      )
    }
  }
  const rulesOf = (r: string): string[] =>
    lines
      .filter((l) => l.startsWith(`ip netns exec nodus-x1-${r} iptables `))
      .map((l) => l.slice(`ip netns exec nodus-x1-${r} iptables `.length))
  assert.deepEqual(rulesOf('r1'), [
    '-t nat -A POSTROUTING -o wan -j MASQUERADE',
    '-A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
    '-A FORWARD -i wan -o lan -j DROP',
  ])
  assert.equal(rulesOf('r2')[0], '-t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully')
  assert.ok(lines.includes('ip netns exec nodus-x1-r1 sysctl -q -w net.ipv4.ip_forward=1'))
  assert.ok(lines.includes('ip -n nodus-x1-h2 route add default via 10.0.2.1'))
  assert.deepEqual(
    bridges.started.map((b) => [b.netns, b.a, b.b, b.params.delayMs, b.params.seed]),
    [
      ['nodus-x1-d-p0', 'ea', 'eb', 20, 5],
      ['nodus-x1-d-r1', 'ea', 'eb', 20, 6],
      ['nodus-x1-d-r2', 'ea', 'eb', 20, 7],
    ],
  )
  const report = await topo.teardown()
  assert.equal(bridges.stopped, 3)
  assert.deepEqual(report.namespaces.sort(), [...topo.namespaces].sort())
  assert.equal(await topo.teardown(), report, 'idempotent')
})

test('UPnP router: DNAT-ed connections pass the filter before the drop; miniupnpd chains in the legacy tables', () => {
  const rules = natRules('symmetric', { upnp: true }).map((r) => r.join(' '))
  assert.deepEqual(rules.slice(1), [
    '-A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
    '-A FORWARD -i wan -o lan -m conntrack --ctstate DNAT -j ACCEPT',
    '-A FORWARD -i wan -o lan -j DROP',
  ])
  assert.ok(!natRules('cone').some((r) => r.includes('DNAT')), 'no DNAT accept without UPnP')
  const chains = igdChainRules().map((r) => r.join(' '))
  assert.ok(chains.includes('-t nat -A PREROUTING -i wan -j MINIUPNPD'))
  assert.ok(chains.includes('-t filter -A FORWARD -i wan ! -o wan -j MINIUPNPD'))
})

test('a command failing mid-build removes every namespace made so far and stops the bridges', async () => {
  const runner = new RecordingRunner()
  runner.failWhen = (argv) => argv.includes('iptables') && argv.includes('--random-fully')
  const bridges = new FakeBridges()
  await assert.rejects(
    NetnsTopology.create({ logger, runner, bridges }, { homes: 2, symmetric: 1 }, { runId: 'x2' }),
    (e) => isNodusError(e, 'NETNS_COMMAND_FAILED'),
  )
  const lines = runner.lines()
  const added = lines.filter((l) => l.startsWith('ip netns add ')).map((l) => l.slice(13))
  const deleted = lines.filter((l) => l.startsWith('ip netns del ')).map((l) => l.slice(13))
  assert.ok(added.length >= 8)
  assert.deepEqual(deleted.sort(), added.sort())
  assert.equal(bridges.stopped, bridges.started.length)
})

test('cleanup removes only nodus- namespaces, of one run when given its prefix', async () => {
  const runner = new RecordingRunner()
  runner.netnsList = 'nodus-a1-sw (id: 3)\nnodus-a1-p0\nother-ns (id: 1)\nnodus-b2-sw\n'
  assert.deepEqual(await listNetns(runner), ['nodus-a1-sw', 'nodus-a1-p0', 'nodus-b2-sw'])
  assert.deepEqual(await cleanupNetns(runner, 'nodus-a1-'), ['nodus-a1-sw', 'nodus-a1-p0'])
  assert.deepEqual(
    runner.lines().filter((l) => l.startsWith('ip netns del')),
    ['ip netns del nodus-a1-sw', 'ip netns del nodus-a1-p0'],
  )
  await assert.rejects(cleanupNetns(runner, 'other'), (e) => isNodusError(e, 'INVALID_ARGUMENT'))
})

test('bridge arguments and the CLI flags', () => {
  assert.deepEqual(bridgeArgs('ea', 'eb', { delayMs: 20, jitterMs: 2.5, loss: 0.0025, seed: 9 }), [
    '--a',
    'ea',
    '--b',
    'eb',
    '--delay-ms',
    '20',
    '--jitter-ms',
    '2.5',
    '--loss',
    '0.0025',
    '--seed',
    '9',
    '--queue',
    '4096',
    '--exit-on-stdin-eof',
  ])
  assert.equal(parseMs('rtt', '80ms'), 80)
  assert.equal(parseMs('rtt', '0.2s'), 200)
  assert.equal(parseMs('rtt', '15'), 15)
  assert.equal(parseLoss('0.5%'), 0.005)
  assert.equal(parseLoss('0.01'), 0.01)
  for (const bad of ['-1', '60%', 'x'])
    assert.throws(
      () => parseLoss(bad),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
  assert.throws(
    () => parseMs('rtt', '80 minutes'),
    (e) => isNodusError(e, 'INVALID_ARGUMENT'),
  )
})
