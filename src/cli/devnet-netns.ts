/**
 * `nodus devnet --netns`: the devnet's node processes on a topology of network namespaces
 * (src/netns): node 0 (the bootstrap) and any other public nodes on the public segment, one node in
 * each home behind its NAT router, latency, jitter and loss on every access link. Linux and root only.
 *
 * Every node listens on TCP and QUIC port 4001 of its namespace; node 0 serves circuit relay v2 and
 * the nodes behind NATs reserve slots on it (devnet.ts); DCUtR hole-punches cone NATs
 * (src/net/README.md, "Hole punching"). {@link netnsApi} calls a node's API from inside its namespace.
 */
import { randomBytes } from 'node:crypto'
import { NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import {
  assertNetnsAvailable,
  type BridgeCounters,
  ExecFileRunner,
  NetnsTopology,
  ProcessBridgeLauncher,
  probeScriptPath,
  type TeardownReport,
  type TopologyPlan,
  type TopologySpec,
} from '../netns/index.ts'
import { Devnet, type DevnetOptions } from './devnet.ts'

/** `--rtt`/`--jitter`: milliseconds, `80`, `80ms`, `0.2s`. @throws NodusError INVALID_ARGUMENT */
export function parseMs(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s)?$/.exec(text.trim())
  if (m === null)
    throw new NodusError('INVALID_ARGUMENT', `--${flag} must be like 80ms or 0.2s, got "${text}"`)
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1)
}

/** `--loss`: a percentage (`0.5%`) or a fraction (`0.005`), at most 50 %. @throws NodusError INVALID_ARGUMENT */
export function parseLoss(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(%)?$/.exec(text.trim())
  const v = m === null ? Number.NaN : Number(m[1]) / (m[2] === '%' ? 100 : 1)
  if (!(v >= 0 && v <= 0.5))
    throw new NodusError(
      'INVALID_ARGUMENT',
      `--loss must be a percentage like 0.5% or a fraction up to 0.5, got "${text}"`,
    )
  return v
}

/** Where each node of a netns devnet runs. */
export interface NetnsDevnetHost {
  index: number
  /** `public` (on the public segment) or the home's NAT kind. */
  kind: 'public' | 'cone' | 'symmetric'
  netns: string
  address: string
  /** The address the public side sees it as (its router's, behind a NAT). */
  seenAs: string
  /** Whether its router runs a UPnP IGD (then the node has `net.upnp` on). */
  upnp: boolean
}

/** A running netns devnet; always {@link NetnsDevnet.stop} it. */
export interface NetnsDevnet {
  topology: NetnsTopology
  devnet: Devnet
  hosts: NetnsDevnetHost[]
  /** Stops the nodes, then removes the topology. Idempotent. */
  stop(): Promise<TeardownReport>
}

/**
 * Builds the topology of `spec` (run id `runId`, default random), then starts one node per host in it.
 * On failure, stops what started and removes the topology.
 * @throws NodusError NETNS_UNAVAILABLE, NETNS_COMMAND_FAILED, NETNS_BRIDGE_FAILED, NOT_STARTED, TIMEOUT,
 *   INVALID_ARGUMENT, ABORTED
 */
export async function startNetnsDevnet(
  spec: Partial<TopologySpec>,
  options: Omit<DevnetOptions, 'nodes' | 'netns'> & { logger: Logger; runId?: string; signal?: AbortSignal },
): Promise<NetnsDevnet> {
  await assertNetnsAvailable({ upnp: (spec.upnp ?? 0) > 0 })
  const { logger } = options
  const runner = new ExecFileRunner({ logger })
  const topology = await NetnsTopology.create(
    { logger, runner, bridges: new ProcessBridgeLauncher({ logger }) },
    spec,
    {
      runId: options.runId ?? randomBytes(3).toString('hex'),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    },
  )
  let devnet: Devnet
  try {
    devnet = await startDevnetOn(topology, options)
  } catch (err) {
    await topology.teardown()
    throw err
  }
  const hosts = netnsHosts(topology.plan)
  let stopping: Promise<TeardownReport> | undefined
  return {
    topology,
    devnet,
    hosts,
    stop: () => {
      stopping ??= (async () => {
        await devnet.stop()
        return await topology.teardown()
      })()
      return stopping
    },
  }
}

/** Where each node of a devnet on `plan` runs: its public hosts first (node 0 on p0), then its homes. */
export function netnsHosts(plan: TopologyPlan): NetnsDevnetHost[] {
  return [
    ...plan.publicHosts.map((h) => ({
      kind: 'public' as const,
      netns: h.netns,
      address: h.address,
      seenAs: h.address,
      upnp: false,
    })),
    ...plan.homes.map((h) => ({
      kind: h.nat,
      netns: h.netns,
      address: h.address,
      seenAs: h.router.wanAddress,
      upnp: h.upnp,
    })),
  ].map((h, index) => ({ index, ...h }))
}

/**
 * Starts one node per host of an already built `topology` ({@link netnsHosts} order); several devnets
 * may run on one topology one after another (each in its own `baseDir`). Does not remove the topology.
 * @throws NodusError NOT_STARTED, TIMEOUT, INVALID_ARGUMENT
 */
export async function startDevnetOn(
  topology: NetnsTopology,
  options: Omit<DevnetOptions, 'nodes' | 'netns'>,
): Promise<Devnet> {
  const hosts = netnsHosts(topology.plan)
  return await Devnet.start({
    ...options,
    nodes: hosts.length,
    netns: {
      hostOf: (i) => hosts[i] ?? { netns: '', address: '', upnp: false },
      publicNodes: topology.plan.publicHosts.length,
    },
  })
}

/**
 * The TCP round trip from each home host to public host 0, ms (the median of `count` echoes by
 * probe.ts; a TCP server runs in public host 0 for it, port 7999): the proof that the links delay.
 */
export async function measureRtts(net: NetnsDevnet, count = 5): Promise<Record<string, number>> {
  const pub = net.topology.plan.publicHosts[0]
  if (pub === undefined) return {}
  const probe = probeScriptPath()
  const server = net.topology.spawn(pub.netns, [process.execPath, probe, 'tcp-server', pub.address, '7999'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('exit', (code) =>
        reject(new NodusError('NETNS_COMMAND_FAILED', `probe server exited with ${code}`)),
      )
      server.stdout?.on('data', (d: Buffer) => {
        if (d.toString().includes('"listening"')) resolve()
      })
    })
    const out: Record<string, number> = {}
    for (const h of net.topology.plan.homes) {
      const { stdout } = await net.topology.exec(h.netns, [
        process.execPath,
        probe,
        'tcp-rtt',
        pub.address,
        '7999',
        String(count),
      ])
      const r = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { rttMs?: number[] }
      const sorted = [...(r.rttMs ?? [])].sort((a, b) => a - b)
      out[h.role] = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
    }
    return out
  } finally {
    server.kill('SIGTERM')
  }
}

/** One line per link: frames each way, lost, dropped at a full queue. */
export function countersLine(role: string, c: BridgeCounters | undefined): string {
  if (c === undefined) return `${role}: no counters`
  return `${role}: ${c.a}->${c.b} ${c.ab.tx}/${c.ab.rx} frames (lost ${c.ab.lost}, queue full ${c.ab.queueFull}), ${c.b}->${c.a} ${c.ba.tx}/${c.ba.rx} (lost ${c.ba.lost}, queue full ${c.ba.queueFull}), most queued ${c.maxQueued}`
}

/**
 * One HTTP request to node `index`'s API, made from inside its namespace (the API listens on the
 * namespace's own 127.0.0.1) by a `node -e` child; with the node's token. Resolves with the status and
 * the parsed JSON body (undefined when the body is not JSON).
 * @throws NodusError NETNS_COMMAND_FAILED when the request cannot be made (the node is down)
 */
export async function netnsApi(
  net: NetnsDevnet,
  index: number,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const node = net.devnet.nodes[index]
  const host = net.hosts[index]
  if (node === undefined || host === undefined) throw new NodusError('INVALID_ARGUMENT', `no node ${index}`)
  const script = `const [url, method, token, body] = process.argv.slice(1)
const r = await fetch(url, { method, headers: { authorization: 'Bearer ' + token, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body } : {}), signal: AbortSignal.timeout(15000) })
process.stdout.write(JSON.stringify({ status: r.status, text: await r.text() }))`
  const { stdout } = await net.topology.exec(host.netns, [
    process.execPath,
    '--input-type=module',
    '-e',
    script,
    `${node.api}${path}`,
    method,
    node.token,
    body === undefined ? '' : JSON.stringify(body),
  ])
  const r = JSON.parse(stdout) as { status: number; text: string }
  let parsed: unknown
  try {
    parsed = JSON.parse(r.text)
  } catch {
    parsed = undefined
  }
  return { status: r.status, body: parsed }
}
