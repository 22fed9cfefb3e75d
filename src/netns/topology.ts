/**
 * Builds a topology of network namespaces (README.md has the picture): a public switch, hosts on it,
 * home segments behind NAT routers, and a delay bridge on every access link; and removes all of it.
 *
 * Every veth is created directly inside its two namespaces (`ip link add … netns A type veth peer …
 * netns B`) and every iptables rule inside a router's namespace, so nothing of a run lives in the root
 * namespace: deleting the run's namespaces (after stopping the processes in them) removes its veths,
 * bridges, routes and rules. Teardown runs on a failed build too.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process'
import type { AbortOptions } from '../common/abort.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import type { BridgeCounters, BridgeHandle, BridgeLauncher } from './bridge.ts'
import type { CommandOutput, CommandRunner } from './exec.ts'
import {
  type HomePlan,
  type LinkParams,
  linkParams,
  netnsName,
  type PublicHostPlan,
  planTopology,
  type TopologyPlan,
  type TopologySpec,
  validateSpec,
} from './spec.ts'

/** What {@link NetnsTopology} needs. */
export interface NetnsTopologyDeps {
  logger: Logger
  runner: CommandRunner
  bridges: BridgeLauncher
}

/** What teardown removed, and what it could not. */
export interface TeardownReport {
  /** Namespaces deleted. */
  namespaces: string[]
  /** Processes found in them and signalled (the bridges not counted). */
  killed: number[]
  /** Final counters of each link's bridge, by the role of the link's host or router. */
  bridges: Record<string, BridgeCounters | undefined>
  /** Errors met (teardown goes on past them). */
  errors: string[]
}

/** The interface of a host or router on its access link. */
const WAN_IF = 'wan'

/**
 * A built topology. Create with {@link NetnsTopology.create}; always {@link NetnsTopology.teardown}.
 */
export class NetnsTopology {
  readonly spec: TopologySpec
  readonly plan: TopologyPlan
  /** What each access link's bridge does per direction. */
  readonly link: LinkParams
  readonly #deps: NetnsTopologyDeps
  readonly #log: Logger
  /** Namespaces created, in creation order. */
  readonly #namespaces: string[] = []
  readonly #bridges = new Map<string, BridgeHandle>()
  #teardown: Promise<TeardownReport> | undefined

  private constructor(deps: NetnsTopologyDeps, spec: TopologySpec, runId: string) {
    this.#deps = deps
    this.#log = deps.logger
    this.spec = spec
    this.plan = planTopology(spec, runId)
    this.link = linkParams(spec)
  }

  /**
   * Builds the topology of `spec` for run `runId` (namespaces `nodus-<runId>-…`). On any failure,
   * removes what it made and rethrows.
   * @throws NodusError INVALID_ARGUMENT (spec), NETNS_COMMAND_FAILED, NETNS_BRIDGE_FAILED,
   *   NETNS_UNAVAILABLE, ABORTED
   */
  static async create(
    deps: NetnsTopologyDeps,
    spec: Partial<TopologySpec>,
    options: AbortOptions & { runId: string },
  ): Promise<NetnsTopology> {
    const topo = new NetnsTopology(deps, validateSpec(spec), options.runId)
    try {
      await topo.#build(options)
    } catch (err) {
      const report = await topo.teardown()
      if (report.errors.length > 0)
        deps.logger.warn({ errors: report.errors }, 'netns teardown after a failed build')
      throw err
    }
    return topo
  }

  /** Namespaces this run created, in creation order. */
  get namespaces(): readonly string[] {
    return this.#namespaces
  }

  /** Runs `argv` inside `netns` (`ip netns exec`). @throws NodusError NETNS_COMMAND_FAILED, ABORTED */
  async exec(netns: string, argv: readonly string[], options: AbortOptions = {}): Promise<CommandOutput> {
    return await this.#deps.runner.run(['ip', 'netns', 'exec', netns, ...argv], options)
  }

  /**
   * Starts `argv` inside `netns` as a child process (`ip netns exec` execs it, so the child's pid is
   * the command's). Teardown signals every process still in the run's namespaces.
   */
  spawn(netns: string, argv: readonly string[], options: SpawnOptions = {}): ChildProcess {
    this.#log.debug({ cmd: `ip netns exec ${netns} ${argv.join(' ')}` }, 'netns spawn')
    return spawn('ip', ['netns', 'exec', netns, ...argv], options)
  }

  /** Every link's bridge counters now, by the role at the link's end (p0, r1, …). */
  async bridgeCounters(options: AbortOptions = {}): Promise<Record<string, BridgeCounters>> {
    const out: Record<string, BridgeCounters> = {}
    for (const [role, b] of this.#bridges) out[role] = await b.counters(options)
    return out
  }

  async #run(argv: readonly string[], options: AbortOptions): Promise<void> {
    await this.#deps.runner.run(argv, options)
  }

  async #addNetns(role: string, options: AbortOptions): Promise<string> {
    const ns = netnsName(this.plan.runId, role)
    await this.#run(['ip', 'netns', 'add', ns], options)
    this.#namespaces.push(ns)
    // No IPv6 (router solicitations and DAD would only add noise to the links), loopback up.
    await this.#run(
      [
        'ip',
        'netns',
        'exec',
        ns,
        'sysctl',
        '-q',
        '-w',
        'net.ipv6.conf.all.disable_ipv6=1',
        'net.ipv6.conf.default.disable_ipv6=1',
      ],
      options,
    )
    await this.#run(['ip', '-n', ns, 'link', 'set', 'dev', 'lo', 'up'], options)
    return ns
  }

  /** A veth pair with one end in each namespace, both up, offloads off (re-injected frames need full checksums). */
  async #veth(nsA: string, ifA: string, nsB: string, ifB: string, options: AbortOptions): Promise<void> {
    await this.#run(
      ['ip', 'link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB],
      options,
    )
    for (const [ns, dev] of [
      [nsA, ifA],
      [nsB, ifB],
    ] as const) {
      await this.#run(offloadsOffCommand(ns, dev), options)
      await this.#run(['ip', '-n', ns, 'link', 'set', 'dev', dev, 'up'], options)
    }
  }

  /**
   * An access link: `ns`'s interface `wan` at `address`/24 → a delay namespace (`d-<role>`, interfaces
   * ea and eb, the bridge between them) → port `port-<role>` of the switch's br0.
   */
  async #accessLink(
    role: string,
    ns: string,
    address: string,
    index: number,
    options: AbortOptions,
  ): Promise<void> {
    const sw = this.plan.switchNetns
    const mid = await this.#addNetns(`d-${role}`, options)
    await this.#veth(ns, WAN_IF, mid, 'ea', options)
    const port = `port-${role}`
    await this.#veth(mid, 'eb', sw, port, options)
    await this.#run(['ip', '-n', sw, 'link', 'set', 'dev', port, 'master', 'br0'], options)
    await this.#run(['ip', '-n', ns, 'addr', 'add', `${address}/24`, 'dev', WAN_IF], options)
    const bridge = await this.#deps.bridges.start(
      mid,
      'ea',
      'eb',
      { ...this.link, seed: this.spec.seed + index },
      options,
    )
    this.#bridges.set(role, bridge)
  }

  async #publicHost(h: PublicHostPlan, index: number, options: AbortOptions): Promise<void> {
    const ns = await this.#addNetns(h.role, options)
    await this.#accessLink(h.role, ns, h.address, index, options)
  }

  async #home(h: HomePlan, index: number, options: AbortOptions): Promise<void> {
    const routerRole = h.router.netns.slice(h.router.netns.lastIndexOf('-') + 1)
    const r = await this.#addNetns(routerRole, options)
    await this.#run(['ip', 'netns', 'exec', r, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'], options)
    await this.#accessLink(routerRole, r, h.router.wanAddress, index, options)
    const host = await this.#addNetns(h.role, options)
    await this.#veth(r, 'lan', host, 'eth0', options)
    await this.#run(['ip', '-n', r, 'addr', 'add', `${h.router.lanAddress}/24`, 'dev', 'lan'], options)
    await this.#run(['ip', '-n', host, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0'], options)
    await this.#run(['ip', '-n', host, 'route', 'add', 'default', 'via', h.router.lanAddress], options)
    for (const rule of natRules(h.nat, { upnp: h.upnp }))
      await this.#run(['ip', 'netns', 'exec', r, 'iptables', ...rule], options)
    if (h.upnp) await this.#startIgd(r, options)
  }

  /**
   * Starts a UPnP Internet Gateway Device (miniupnpd, in the foreground) in router namespace `r`: it
   * answers SSDP searches on `lan` and maps ports on `wan` into its own iptables chains, which are
   * made first. miniupnpd-iptables writes through libiptc, so those chains live in the legacy
   * (x_tables) tables, beside the router's nf_tables rules; a mapped connection passes the nf_tables
   * FORWARD filter by its DNAT conntrack state ({@link natRules}). Waits until it listens on its
   * HTTP port ({@link IGD_HTTP_PORT}). Teardown stops it with the namespace's other processes.
   */
  async #startIgd(r: string, options: AbortOptions): Promise<void> {
    for (const rule of igdChainRules())
      await this.#run(['ip', 'netns', 'exec', r, 'iptables-legacy', ...rule], options)
    const child = this.spawn(
      r,
      [
        'miniupnpd',
        '-d',
        '-4',
        '-f',
        '/dev/null',
        '-i',
        WAN_IF,
        '-a',
        'lan',
        '-p',
        String(IGD_HTTP_PORT),
        '-P',
        `/run/${r}-miniupnpd.pid`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let stderr = ''
    child.stderr?.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-4096)
    })
    let exited: string | undefined
    child.on('exit', (code, sig) => {
      exited = `miniupnpd in ${r} exited (${code ?? sig}): ${stderr.trim()}`
    })
    for (let waited = 0; ; waited += 50) {
      if (exited !== undefined) throw new NodusError('NETNS_COMMAND_FAILED', exited)
      const { stdout } = await this.#deps.runner.run(
        ['ip', 'netns', 'exec', r, 'ss', '-Hltn', `sport = :${IGD_HTTP_PORT}`],
        options,
      )
      if (stdout.trim() !== '') break
      if (waited >= 10_000)
        throw new NodusError(
          'NETNS_COMMAND_FAILED',
          `miniupnpd in ${r} did not listen within 10 s: ${stderr}`,
        )
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    this.#log.debug({ netns: r }, 'UPnP IGD started')
  }

  async #build(options: AbortOptions): Promise<void> {
    const sw = await this.#addNetns('sw', options)
    // A plain switch: no spanning tree (ports forward at once) and no multicast snooping (which makes
    // br0 send IGMP frames of its own onto the links).
    await this.#run(
      [
        'ip',
        '-n',
        sw,
        'link',
        'add',
        'name',
        'br0',
        'type',
        'bridge',
        'stp_state',
        '0',
        'mcast_snooping',
        '0',
      ],
      options,
    )
    await this.#run(['ip', '-n', sw, 'link', 'set', 'dev', 'br0', 'up'], options)
    let link = 0
    for (const h of this.plan.publicHosts) await this.#publicHost(h, link++, options)
    for (const h of this.plan.homes) await this.#home(h, link++, options)
    this.#log.info(
      { runId: this.plan.runId, namespaces: this.#namespaces.length, link: this.link },
      'netns topology built',
    )
  }

  /**
   * Removes everything the run made: stops the bridges (keeping their final counters), signals every
   * process still in the run's namespaces (SIGTERM, SIGKILL after 5 s), deletes the namespaces (their
   * veths, the switch, routes and iptables rules go with them). Goes on past errors, which it reports.
   * Idempotent: a second call returns the first call's report.
   */
  teardown(): Promise<TeardownReport> {
    this.#teardown ??= this.#doTeardown()
    return this.#teardown
  }

  async #doTeardown(): Promise<TeardownReport> {
    const report: TeardownReport = { namespaces: [], killed: [], bridges: {}, errors: [] }
    for (const [role, b] of this.#bridges) {
      try {
        report.bridges[role] = await b.stop()
      } catch (err) {
        report.errors.push(`bridge ${role}: ${(err as Error).message}`)
      }
    }
    for (const ns of [...this.#namespaces].reverse()) {
      try {
        report.killed.push(...(await stopProcessesIn(this.#deps.runner, ns)))
        await this.#run(['ip', 'netns', 'del', ns], {})
        report.namespaces.push(ns)
      } catch (err) {
        report.errors.push(`${ns}: ${(err as Error).message}`)
      }
    }
    this.#log.info(
      { runId: this.plan.runId, namespaces: report.namespaces.length, errors: report.errors },
      'netns topology removed',
    )
    return report
  }
}

/**
 * The command that turns checksum offload, GSO and GRO off on `dev` in `netns`: frames a bridge
 * re-injects must carry full checksums and be no larger than the MTU.
 */
export function offloadsOffCommand(netns: string, dev: string): string[] {
  return [
    'ip',
    'netns',
    'exec',
    netns,
    'ethtool',
    '-K',
    dev,
    'tx',
    'off',
    'rx',
    'off',
    'gso',
    'off',
    'gro',
    'off',
  ]
}

/** The TCP port a UPnP router's IGD (miniupnpd) serves its description and control URLs on. */
export const IGD_HTTP_PORT = 5000

/**
 * The chains miniupnpd adds its mappings to (arguments after `iptables-legacy`), hooked in as its own
 * iptables_init.sh does: DNAT in nat PREROUTING, accept in filter FORWARD, and the source rewrite of
 * mapped connections in nat POSTROUTING.
 */
export function igdChainRules(): string[][] {
  return [
    ['-t', 'nat', '-N', 'MINIUPNPD'],
    ['-t', 'nat', '-A', 'PREROUTING', '-i', WAN_IF, '-j', 'MINIUPNPD'],
    ['-t', 'nat', '-N', 'MINIUPNPD-POSTROUTING'],
    ['-t', 'nat', '-A', 'POSTROUTING', '-o', WAN_IF, '-j', 'MINIUPNPD-POSTROUTING'],
    ['-t', 'filter', '-N', 'MINIUPNPD'],
    ['-t', 'filter', '-A', 'FORWARD', '-i', WAN_IF, '!', '-o', WAN_IF, '-j', 'MINIUPNPD'],
  ]
}

/**
 * The iptables rules (arguments after `iptables`) of a home router, whose public side is `wan` and
 * home side `lan`:
 * - cone: `MASQUERADE` without `--random`/`--random-fully`: Linux keeps the source port when it is free
 *   and reuses the same mapping for every destination (endpoint-independent mapping, RFC 4787 §4.1);
 * - symmetric: `MASQUERADE --random-fully`: a random source port for each new connection, so each
 *   destination sees another port (endpoint-dependent mapping);
 * and for both, the filter of a home router: from the public side only replies (conntrack ESTABLISHED
 * or RELATED) are forwarded in (address-and-port-dependent filtering, RFC 4787 §5); with `upnp`,
 * also new connections to a port the router's IGD mapped (conntrack state DNAT).
 */
export function natRules(nat: 'cone' | 'symmetric', options: { upnp?: boolean } = {}): string[][] {
  return [
    [
      '-t',
      'nat',
      '-A',
      'POSTROUTING',
      '-o',
      WAN_IF,
      '-j',
      'MASQUERADE',
      ...(nat === 'symmetric' ? ['--random-fully'] : []),
    ],
    [
      '-A',
      'FORWARD',
      '-i',
      WAN_IF,
      '-o',
      'lan',
      '-m',
      'conntrack',
      '--ctstate',
      'ESTABLISHED,RELATED',
      '-j',
      'ACCEPT',
    ],
    ...(options.upnp === true
      ? [['-A', 'FORWARD', '-i', WAN_IF, '-o', 'lan', '-m', 'conntrack', '--ctstate', 'DNAT', '-j', 'ACCEPT']]
      : []),
    ['-A', 'FORWARD', '-i', WAN_IF, '-o', 'lan', '-j', 'DROP'],
  ]
}

/**
 * Signals the processes in `netns` (`ip netns pids`): SIGTERM, then SIGKILL to those left after
 * `graceMs`. Returns their pids.
 */
export async function stopProcessesIn(
  runner: CommandRunner,
  netns: string,
  graceMs = 5_000,
): Promise<number[]> {
  const pidsOf = async (): Promise<number[]> => {
    try {
      const { stdout } = await runner.run(['ip', 'netns', 'pids', netns])
      return stdout
        .split(/\s+/)
        .filter((s) => /^\d+$/.test(s))
        .map(Number)
    } catch (err) {
      if (isNodusError(err, 'NETNS_COMMAND_FAILED')) return []
      throw err
    }
  }
  const pids = await pidsOf()
  for (const pid of pids) signal(pid, 'SIGTERM')
  const waitStep = 50
  for (let waited = 0; waited < graceMs; waited += waitStep) {
    if (!pids.some(alive)) return pids
    await new Promise((r) => setTimeout(r, waitStep))
  }
  for (const pid of pids) signal(pid, 'SIGKILL')
  return pids
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // gone already
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
