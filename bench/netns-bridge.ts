/**
 * The delay bridge's own ceiling and the RTTs it gives (src/netns/README.md). Linux and root; not a
 * *.bench.ts (the bench runner does not run it): `node bench/netns-bridge.ts [--megabytes 500]`.
 *
 * 1. Ceiling: bulk TCP (probe.ts `bulk`, one connection) between two public hosts across two access
 *    links with no delay (two bridges in series), beside the same transfer over a plain veth pair
 *    between two namespaces (no bridge, offloads off as well): Mb/s, and the frames per second the busier bridge forwarded.
 * 2. RTT: a home host's TCP echo round trip to the public host at --rtt 20, 80 and 200 ms (20 echoes
 *    each: min, median, max).
 * Prints one JSON line.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { silentLogger } from '../src/common/logger.ts'
import {
  assertNetnsAvailable,
  ExecFileRunner,
  NetnsTopology,
  offloadsOffCommand,
  ProcessBridgeLauncher,
  probeScriptPath,
  type TopologySpec,
} from '../src/netns/index.ts'

const { values } = parseArgs({ options: { megabytes: { type: 'string', default: '500' } } })
const megabytes = Number(values.megabytes)
const logger = silentLogger()
const runner = new ExecFileRunner({ logger })
const probe = probeScriptPath()

async function withTopology<T>(spec: Partial<TopologySpec>, f: (t: NetnsTopology) => Promise<T>): Promise<T> {
  const topo = await NetnsTopology.create(
    { logger, runner, bridges: new ProcessBridgeLauncher({ logger }) },
    spec,
    { runId: `b${randomBytes(3).toString('hex')}` },
  )
  try {
    return await f(topo)
  } finally {
    await topo.teardown()
  }
}

/** Starts a probe server in `netns` (via `spawnIn`) and resolves when it listens; returns its kill. */
async function server(spawnIn: (argv: string[]) => ChildProcess, args: string[]): Promise<() => void> {
  const proc = spawnIn([process.execPath, probe, ...args])
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream })
  await new Promise<void>((resolve) => lines.on('line', (l) => l.includes('listening') && resolve()))
  return () => {
    proc.kill('SIGTERM')
  }
}

function lastJson(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>
}

async function ceiling(): Promise<Record<string, unknown>> {
  return await withTopology({ publicHosts: 2 }, async (topo) => {
    const [p0, p1] = topo.plan.publicHosts
    if (p0 === undefined || p1 === undefined) throw new Error('no hosts')
    const stop = await server(
      (argv) => topo.spawn(p0.netns, argv, { stdio: ['ignore', 'pipe', 'inherit'] }),
      ['bulk-server', p0.address, '7200'],
    )
    const before = await topo.bridgeCounters()
    const r = lastJson(
      (await topo.exec(p1.netns, [process.execPath, probe, 'bulk', p0.address, '7200', String(megabytes)]))
        .stdout,
    )
    const after = await topo.bridgeCounters()
    stop()
    const seconds = Number(r.seconds)
    const frames = (after.p1?.ab.tx ?? 0) - (before.p1?.ab.tx ?? 0)
    const acks = (after.p1?.ba.tx ?? 0) - (before.p1?.ba.tx ?? 0)
    return {
      mbitPerSecond: Math.round(Number(r.mbitPerSecond)),
      dataFramesPerSecond: Math.round(frames / seconds),
      framesPerSecondBothWays: Math.round((frames + acks) / seconds),
      seconds: Math.round(seconds * 100) / 100,
      maxQueued: after.p1?.maxQueued,
      drops: (after.p1?.ab.queueFull ?? 0) + (after.p1?.ab.txErrors ?? 0),
    }
  })
}

/** The same transfer over one veth pair between two namespaces: the kernel's own ceiling here. */
async function plainVeth(): Promise<Record<string, unknown>> {
  const id = randomBytes(3).toString('hex')
  const [a, b] = [`nodus-v${id}-a`, `nodus-v${id}-b`]
  try {
    for (const ns of [a, b]) await runner.run(['ip', 'netns', 'add', ns])
    await runner.run([
      'ip',
      'link',
      'add',
      'eth0',
      'netns',
      a,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      b,
    ])
    for (const [ns, addr] of [
      [a, '10.9.0.1/24'],
      [b, '10.9.0.2/24'],
    ] as const) {
      await runner.run(['ip', '-n', ns, 'addr', 'add', addr, 'dev', 'eth0'])
      // Offloads off as on the bridged path, so the two differ by the bridges alone.
      await runner.run(offloadsOffCommand(ns, 'eth0'))
      await runner.run(['ip', '-n', ns, 'link', 'set', 'dev', 'eth0', 'up'])
    }
    const stop = await server(
      (argv) => spawn('ip', ['netns', 'exec', b, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] }),
      ['bulk-server', '10.9.0.2', '7200'],
    )
    const r = lastJson(
      (
        await runner.run([
          'ip',
          'netns',
          'exec',
          a,
          process.execPath,
          probe,
          'bulk',
          '10.9.0.2',
          '7200',
          String(megabytes),
        ])
      ).stdout,
    )
    stop()
    return {
      mbitPerSecond: Math.round(Number(r.mbitPerSecond)),
      seconds: Math.round(Number(r.seconds) * 100) / 100,
    }
  } finally {
    for (const ns of [a, b]) await runner.run(['ip', 'netns', 'del', ns]).catch(() => {})
  }
}

async function rtt(rttMs: number): Promise<Record<string, unknown>> {
  return await withTopology({ publicHosts: 1, homes: 1, rttMs }, async (topo) => {
    const [p0] = topo.plan.publicHosts
    const [h1] = topo.plan.homes
    if (p0 === undefined || h1 === undefined) throw new Error('no hosts')
    const stop = await server(
      (argv) => topo.spawn(p0.netns, argv, { stdio: ['ignore', 'pipe', 'inherit'] }),
      ['tcp-server', p0.address, '7000'],
    )
    const r = lastJson(
      (await topo.exec(h1.netns, [process.execPath, probe, 'tcp-rtt', p0.address, '7000', '20'])).stdout,
    )
    stop()
    const s = [...(r.rttMs as number[])].sort((x, y) => x - y)
    return { setMs: rttMs, minMs: s[0], medianMs: s[Math.floor(s.length / 2)], maxMs: s[s.length - 1] }
  })
}

await assertNetnsAvailable()
const result = {
  megabytes,
  bridgeCeiling: await ceiling(),
  plainVeth: await plainVeth(),
  rtt: [await rtt(20), await rtt(80), await rtt(200)],
}
process.stdout.write(`${JSON.stringify(result)}\n`)
