import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { type TestContext, test } from 'node:test'
import { silentLogger } from '../../src/common/logger.ts'
import {
  cleanupNetns,
  ExecFileRunner,
  listNetns,
  NetnsTopology,
  netnsUnavailableReason,
  ProcessBridgeLauncher,
  probeScriptPath,
  type TopologySpec,
} from '../../src/netns/index.ts'
import { rootState } from '../utils/netns-root.ts'
import { waitFor } from '../utils/wait.ts'

// A real topology (issue 22, part 4): 1 public host, a home behind a cone NAT and one behind a
// symmetric NAT, 80 ms RTT through the delay bridges. Needs Linux, root, ip/iptables/ethtool and
// build/delay-bridge; skips with the reason otherwise.

const why = await netnsUnavailableReason()
const logger = silentLogger()
const runner = new ExecFileRunner({ logger })

/** A real topology of `spec` for this test, removed after it; undefined (the test skipped) when unavailable. */
async function topology(t: TestContext, spec: Partial<TopologySpec>): Promise<NetnsTopology | undefined> {
  if (why !== undefined) {
    t.skip(`network namespaces unavailable: ${why}`)
    return undefined
  }
  const runId = `t${randomBytes(3).toString('hex')}`
  const topo = await NetnsTopology.create(
    { logger, runner, bridges: new ProcessBridgeLauncher({ logger }) },
    spec,
    {
      runId,
    },
  )
  t.after(() => topo.teardown())
  return topo
}

/** The last JSON line a probe printed. */
async function probe(topo: NetnsTopology, ns: string, args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await topo.exec(ns, [process.execPath, probeScriptPath(), ...args])
  const lines = stdout.trim().split('\n')
  return JSON.parse(lines[lines.length - 1] ?? '{}') as Record<string, unknown>
}

/** Starts a probe server in `ns` and resolves once it listens. */
async function server(topo: NetnsTopology, ns: string, args: string[]): Promise<ChildProcess> {
  const proc = topo.spawn(ns, [process.execPath, probeScriptPath(), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream })
  await new Promise<void>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`probe server ${args.join(' ')} exited with ${code}`)))
    lines.on('line', (l) => {
      if (l.includes('"listening"')) resolve()
    })
  })
  return proc
}

test('a home host reaches the public host through its NAT, cone keeps one mapping, symmetric does not, RTT ≥ 80 ms, teardown leaves nothing', async (t) => {
  const before = why === undefined ? await rootState(runner) : undefined
  const topo = await topology(t, { publicHosts: 1, homes: 2, symmetric: 1, rttMs: 80, seed: 7 })
  if (topo === undefined) return
  const { runId } = topo.plan
  const [pub] = topo.plan.publicHosts
  const [cone, sym] = topo.plan.homes
  assert.ok(pub !== undefined && cone !== undefined && sym !== undefined)
  assert.equal(cone.nat, 'cone')
  assert.equal(sym.nat, 'symmetric')
  assert.deepEqual(
    (await listNetns(runner, `nodus-${runId}-`)).sort(),
    [...topo.namespaces].sort(),
    'every namespace is named nodus-<runId>-…',
  )

  await server(topo, pub.netns, ['tcp-server', pub.address, '7000'])
  for (const port of [7001, 7002, 7003])
    await server(topo, pub.netns, ['udp-server', pub.address, String(port)])

  await t.test(
    'the public host sees each home as its router’s address, and the RTT is at least 80 ms',
    async () => {
      for (const home of [cone, sym]) {
        const r = (await probe(topo, home.netns, ['tcp-rtt', pub.address, '7000', '5'])) as {
          seenAs: { remote: string }
          rttMs: number[]
        }
        assert.equal(r.seenAs.remote, home.router.wanAddress, `${home.role} is seen as its router (NAT)`)
        assert.notEqual(r.seenAs.remote, home.address)
        assert.equal(r.rttMs.length, 5)
        for (const rtt of r.rttMs)
          assert.ok(rtt >= 80, `${home.role}: RTT ${rtt} ms through two 20 ms links each way`)
      }
    },
  )

  await t.test(
    'cone NAT: one external port for every destination; symmetric NAT: a port per destination',
    async () => {
      const targets = [7001, 7002, 7003].map((p) => `${pub.address}:${p}`)
      const coneMap = (await probe(topo, cone.netns, ['udp-map', '40000', ...targets])) as {
        seen: { remote: string; port: number }[]
      }
      assert.equal(coneMap.seen.length, 3)
      assert.ok(coneMap.seen.every((s) => s.remote === cone.router.wanAddress))
      assert.equal(
        new Set(coneMap.seen.map((s) => s.port)).size,
        1,
        `cone mapping ${JSON.stringify(coneMap.seen)}`,
      )
      assert.equal(coneMap.seen[0]?.port, 40000, 'Linux masquerade keeps a free source port')
      const symMap = (await probe(topo, sym.netns, ['udp-map', '40000', ...targets])) as {
        seen: { remote: string; port: number }[]
      }
      assert.ok(symMap.seen.every((s) => s.remote === sym.router.wanAddress))
      assert.ok(
        new Set(symMap.seen.map((s) => s.port)).size > 1,
        `symmetric mapping ${JSON.stringify(symMap.seen)}`,
      )
    },
  )

  await t.test(
    'the NAT forwards no unsolicited connection in; the home LAN is not routed from outside',
    async () => {
      await server(topo, cone.netns, ['tcp-server', '0.0.0.0', '7100'])
      // Inside the home it answers (the LAN itself works) …
      const inside = (await probe(topo, cone.router.netns, ['tcp-rtt', cone.address, '7100', '1'])) as {
        seenAs: { remote: string }
      }
      assert.equal(inside.seenAs.remote, cone.router.lanAddress)
      // … but from the public side neither the router's address nor the LAN address reaches it.
      await assert.rejects(
        topo.exec(pub.netns, [
          process.execPath,
          probeScriptPath(),
          'tcp-rtt',
          cone.router.wanAddress,
          '7100',
          '1',
        ]),
      )
      await assert.rejects(
        topo.exec(pub.netns, [process.execPath, probeScriptPath(), 'tcp-rtt', cone.address, '7100', '1']),
      )
    },
  )

  await t.test('the bridges forwarded frames both ways and dropped none (no loss configured)', async () => {
    const counters = await topo.bridgeCounters()
    assert.deepEqual(Object.keys(counters).sort(), ['p0', 'r1', 'r2'])
    for (const [role, c] of Object.entries(counters)) {
      assert.ok(c.ab.tx > 0 && c.ba.tx > 0, `${role} forwarded both ways`)
      assert.equal(c.ab.lost + c.ba.lost + c.ab.queueFull + c.ba.queueFull + c.ab.oversize + c.ba.oversize, 0)
    }
  })

  const report = await topo.teardown()
  assert.deepEqual(report.errors, [])
  assert.deepEqual(report.namespaces.sort(), [...topo.namespaces].sort())
  assert.deepEqual(await listNetns(runner, `nodus-${runId}-`), [], 'ip netns list shows none of ours')
  assert.deepEqual(
    await rootState(runner),
    before,
    'ip link and iptables-save in the root namespace are as before',
  )
})

test('loss: each link drops its share of frames (seeded), and what one bridge forwards the next receives', async (t) => {
  // 20 % end to end: 1 - sqrt(0.8) ≈ 10.6 % per link.
  const topo = await topology(t, { publicHosts: 2, loss: 0.2, seed: 3 })
  if (topo === undefined) return
  const [p0, p1] = topo.plan.publicHosts
  assert.ok(p0 !== undefined && p1 !== undefined)
  await probe(topo, p1.netns, ['udp-send', p0.address, '9', '1000'])
  // Two processes' counters: the second bridge may still be reading the last frames when asked.
  let c = await topo.bridgeCounters()
  await waitFor(
    async () => {
      c = await topo.bridgeCounters()
      return c.p0?.ba.rx === c.p1?.ab.tx
    },
    { timeoutMs: 5_000, what: 'every frame the first bridge sent to reach the second' },
  ).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(c)}`)
  })
  const sender = c.p1?.ab // p1's side (ea) towards the switch (eb)
  const receiver = c.p0?.ba // from the switch towards p0
  assert.ok(sender !== undefined && receiver !== undefined)
  assert.ok(sender.rx >= 1000, `the sender's link read every datagram (${sender.rx})`)
  const share = sender.lost / sender.rx
  // Binomial(1000, 0.106): mean 106, sd 9.7; the bounds are ±5.7 sd.
  assert.ok(share > 0.05 && share < 0.17, `first link lost ${share}`)
  const share2 = receiver.lost / receiver.rx
  assert.ok(share2 > 0.05 && share2 < 0.17, `second link lost ${share2}`)
  assert.equal(sender.queueFull + sender.oversize + sender.txErrors, 0)
})

test('cleanup removes what a crashed run left: its namespaces and the bridges in them', async (t) => {
  const topo = await topology(t, { publicHosts: 1, homes: 1 })
  if (topo === undefined) return
  const { runId } = topo.plan
  const bridgePids = (await Promise.all(topo.namespaces.map((ns) => runner.run(['ip', 'netns', 'pids', ns]))))
    .flatMap((o) => o.stdout.split(/\s+/))
    .filter((p) => p !== '')
    .map(Number)
  assert.equal(bridgePids.length, 2, 'a bridge on each of the two access links')
  // The run "crashed": nothing called teardown. cleanup finds it by its prefix.
  const removed = await cleanupNetns(runner, `nodus-${runId}-`)
  assert.deepEqual(removed.sort(), [...topo.namespaces].sort())
  assert.deepEqual(await listNetns(runner, `nodus-${runId}-`), [])
  for (const pid of bridgePids) assert.throws(() => process.kill(pid, 0), `bridge ${pid} is gone`)
})
