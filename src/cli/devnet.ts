/**
 * A local network of nodus nodes, each a separate OS process on 127.0.0.1.
 *
 * Every child is started with `--exit-with-parent`: it exits when its stdin closes, so a devnet
 * whose parent dies (even by SIGKILL) leaves no stray processes.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { NodusError } from '../common/errors.ts'
import { procCpuSeconds } from '../common/proc.ts'
import { PUBLIC_SUBNET } from '../netns/index.ts'
import { startEnv, startV8Flags } from './gc-tuning.ts'
import { initNode } from './init.ts'

/** The CLI entry next to this module: dist/src/cli/main.js when running compiled, else main.ts. */
const MAIN = fileURLToPath(
  new URL(import.meta.url.endsWith('.js') ? './main.js' : './main.ts', import.meta.url),
)

/** The libp2p port (TCP and UDP) of every node of a namespace devnet: each has its namespace to itself. */
export const NETNS_PORT = 4001

export interface DevnetOptions {
  nodes: number
  baseDir: string
  /** First libp2p port; node i listens on basePort+i and its API on basePort+1000+i. 0: pick free ports. */
  basePort: number
  logLevel: string
  /** Node options passed to every child as config (e.g. storage.segmentSize). */
  config?: Record<string, unknown>
  /** How long one node may take to start, ms. Default 60 000. */
  startTimeoutMs?: number
  onEvent?: (msg: string) => void
  /**
   * A federation (issue 21): called once every node's keys exist (all inited first), with their data
   * directories in index order; returns a genesis file every node then starts with (`--genesis`).
   */
  genesis?: (dataDirs: string[]) => Promise<string>
  /**
   * Run node i inside a network namespace (`ip netns exec NETNS node …`, `nodus devnet --netns`:
   * devnet-netns.ts), listening on that namespace's `address` instead of 127.0.0.1; its API stays on
   * the namespace's own 127.0.0.1. Only the first `publicNodes` nodes (reachable from every other) serve
   * as bootstrap addresses.
   */
  netns?: {
    hostOf: (index: number) => { netns: string; address: string; upnp?: boolean }
    publicNodes: number
  }
  /**
   * The libp2p transports every node listens on: `both` (the default: `/ip4/ADDR/tcp/PORT` and
   * `/ip4/ADDR/udp/PORT/quic-v1`), `tcp` or `quic` alone (bench/wan.bench.ts compares them).
   */
  transport?: DevnetTransport
  /**
   * Net keys of node `index` set over everything else of its `net` section (after the relay keys a
   * namespace devnet sets), given the bootstrap list the devnet gives it: e.g. a home that finds its
   * relay itself (`{ relays: [], discoverRelays: 1 }`) or bootstraps to one peer only.
   */
  nodeNet?: (index: number, bootstrap: readonly string[]) => Record<string, unknown>
}

/** The libp2p transports of a devnet's listen addresses ({@link DevnetOptions.transport}). */
export type DevnetTransport = 'tcp' | 'quic' | 'both'

/** The listen multiaddr of a node at `address`, `port` (0: any) over one transport. */
export function listenAddr(address: string, port: number, transport: 'tcp' | 'quic' = 'tcp'): string {
  return transport === 'quic' ? `/ip4/${address}/udp/${port}/quic-v1` : `/ip4/${address}/tcp/${port}`
}

/** The listen multiaddrs of a node over `transport` (default both: TCP first, then QUIC). */
export function listenAddrs(address: string, port: number, transport: DevnetTransport = 'both'): string[] {
  if (transport === 'both') return [listenAddr(address, port, 'tcp'), listenAddr(address, port, 'quic')]
  return [listenAddr(address, port, transport)]
}

export interface DevnetNode {
  index: number
  dataDir: string
  peerId: string
  api: string
  token: string
  multiaddrs: string[]
  proc: ChildProcess
  alive: boolean
  /**
   * Resolves when the process has finished its start-up work (its `{"event":"settled"}` line: the
   * start-up collection has run, 2 s after ready) or has exited.
   */
  startupDone: Promise<void>
}

async function portFree(port: number): Promise<boolean> {
  return await new Promise((res) => {
    const srv = createServer()
    srv.once('error', () => res(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)))
  })
}

/**
 * The config node `index` of a devnet is initialised with: `options.config` with `net.listen` (its
 * address: the namespace's, else 127.0.0.1; port basePort + index, or 0; {@link listenAddrs} of the
 * transport) and `net.bootstrap` set over whatever else `config.net` has (then `nodeNet`'s keys), the API
 * port and the log level.
 */
export function devnetNodeConfig(
  o: Pick<DevnetOptions, 'basePort' | 'config' | 'logLevel' | 'netns' | 'transport' | 'nodeNet'>,
  index: number,
  bootstrap: string[],
): Record<string, unknown> {
  const port = devnetPort(o, index)
  const apiPort = o.basePort === 0 ? 0 : o.basePort + 1000 + index
  const net = (o.config?.net ?? {}) as Record<string, unknown>
  return {
    ...(o.config ?? {}),
    net: {
      ...net,
      listen: listenAddrs(o.netns?.hostOf(index).address ?? '127.0.0.1', port, o.transport),
      bootstrap,
      ...netnsRelayConfig(o, index, bootstrap),
      ...(o.nodeNet?.(index, bootstrap) ?? {}),
    },
    api: { port: apiPort },
    log: { level: o.logLevel },
  }
}

/**
 * Node `index`'s libp2p port (TCP and QUIC): basePort + index, or 0 (any free one) without a base
 * port; in namespaces, where every node has the host to itself, {@link NETNS_PORT} (or basePort).
 */
export function devnetPort(o: Pick<DevnetOptions, 'basePort' | 'netns'>, index: number): number {
  if (o.netns !== undefined) return o.basePort === 0 ? NETNS_PORT : o.basePort
  return o.basePort === 0 ? 0 : o.basePort + index
}

/**
 * On a namespace topology: node 0 (the bootstrap) serves circuit relay v2 whatever AutoNAT says yet
 * (`net.relayServer` on), and every node behind a NAT reserves a slot on it (`net.relays`, node 0's
 * first address): the nodes there reach each other through it, then directly by DCUtR.
 */
function netnsRelayConfig(
  o: Pick<DevnetOptions, 'netns' | 'config'>,
  index: number,
  bootstrap: string[],
): Record<string, unknown> {
  const ns = o.netns
  if (ns === undefined) return {}
  // Every public host of the topology sits in one /24, an artefact of the test network: exempt it from
  // the IP-diversity limits (net.gaterExempt: its default, loopback, and that /24), unless the caller
  // set the list.
  const given = (o.config?.net ?? {}) as Record<string, unknown>
  const exempt =
    given.gaterExempt === undefined ? { gaterExempt: ['127.0.0.0/8', '::1/128', PUBLIC_SUBNET] } : {}
  if (index === 0) return { ...exempt, relayServer: 'on' }
  const relay = bootstrap[0]
  // Behind a router with a UPnP IGD, the node asks it for port mappings (net.upnp).
  const upnp = ns.hostOf(index).upnp === true ? { upnp: 'on' } : {}
  return index >= ns.publicNodes && relay !== undefined
    ? { ...exempt, ...upnp, relays: [relay] }
    : { ...exempt, ...upnp }
}

/** Start one node process and wait for its ready line. */
async function startChild(
  dataDir: string,
  logLevel: string,
  timeoutMs: number,
  extraArgs: string[] = [],
  netns?: string,
): Promise<{ proc: ChildProcess; info: Record<string, unknown>; startupDone: Promise<void> }> {
  // In a namespace: `ip netns exec` execs node, so the pid, stdin and signals are node's own.
  const [cmd, ...prefix] =
    netns === undefined ? [process.execPath] : ['ip', 'netns', 'exec', netns, process.execPath]
  const proc = spawn(
    cmd as string,
    [
      ...prefix,
      ...startV8Flags(process.env),
      MAIN,
      'start',
      '--data-dir',
      dataDir,
      '--json',
      '--exit-with-parent',
      '--log-level',
      logLevel,
      ...extraArgs,
    ],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
      // Concurrent fsyncs share libuv's thread pool (4 threads by default).
      env: {
        ...process.env,
        ...startEnv(process.env),
        UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16',
      },
    },
  )
  const errLog = createWriteStream(join(dataDir, 'node.log'), { flags: 'a' })
  proc.stderr?.pipe(errLog)
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream })
  let onSettled = (): void => {}
  const startupDone = new Promise<void>((done) => {
    onSettled = done
    proc.once('exit', () => done())
  })
  const ready = new Promise<Record<string, unknown>>((res, rej) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      rej(new NodusError('TIMEOUT', `node in ${dataDir} did not start within ${timeoutMs} ms (see node.log)`))
    }, timeoutMs)
    let stderrTail = ''
    proc.stderr?.on('data', (d: Buffer) => {
      stderrTail = (stderrTail + d.toString()).slice(-2000)
    })
    const onExit = (code: number | null): void => {
      clearTimeout(timer)
      let detail = stderrTail.trim().split('\n').pop() ?? ''
      try {
        const j = JSON.parse(detail) as { code?: string; message?: string; msg?: string }
        detail = j.message ?? j.msg ?? detail
        if (j.code === 'PORT_IN_USE') {
          rej(new NodusError('PORT_IN_USE', detail))
          return
        }
      } catch {
        // plain text
      }
      rej(new NodusError('NOT_STARTED', `node in ${dataDir} exited with code ${code}: ${detail}`))
    }
    proc.once('exit', onExit)
    lines.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as Record<string, unknown>
        if (msg.event === 'ready') {
          clearTimeout(timer)
          proc.removeListener('exit', onExit)
          res(msg)
        } else if (msg.event === 'settled') onSettled()
      } catch {
        // ignore non-JSON lines
      }
    })
  })
  return { proc, info: await ready, startupDone }
}

/** A running devnet. Create with {@link Devnet.start}; always `stop()` it. */
export class Devnet {
  readonly nodes: DevnetNode[] = []
  readonly #options: DevnetOptions

  private constructor(options: DevnetOptions) {
    this.#options = options
  }

  /**
   * Init and start `nodes` node processes. Node 0 starts first; the others bootstrap to it (and to
   * nodes 1 and 2 once those run). Throws PORT_IN_USE when a fixed port is taken (checked before any
   * process starts), NOT_STARTED/TIMEOUT when a node fails; all started processes are stopped then.
   */
  static async start(options: DevnetOptions): Promise<Devnet> {
    if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 200) {
      throw new NodusError('INVALID_ARGUMENT', `--nodes must be between 1 and 200, got ${options.nodes}`)
    }
    if (options.basePort !== 0 && options.netns === undefined) {
      for (let i = 0; i < options.nodes; i++) {
        for (const p of [options.basePort + i, options.basePort + 1000 + i]) {
          if (!(await portFree(p)))
            throw new NodusError('PORT_IN_USE', `port ${p} on 127.0.0.1 is in use`, { details: { port: p } })
        }
      }
    }
    const net = new Devnet(options)
    try {
      if (options.genesis !== undefined) {
        const dirs: string[] = []
        for (let i = 0; i < options.nodes; i++) {
          const dir = net.#dataDir(i)
          await mkdir(dir, { recursive: true })
          const { token } = await initNode(dir, net.#initConfig(i, []))
          net.#tokens.set(i, token)
          dirs.push(dir)
        }
        net.#genesisFile = await options.genesis(dirs)
      }
      const first = await net.#startNode(0, [])
      const boots = [`${first.multiaddrs[0]}`]
      // Start the rest in small batches: a 2-core machine handles a few handshakes at a time. In
      // namespaces the public nodes come first, so every node behind a NAT bootstraps to (and is
      // observed by) up to three of them.
      const batch = 4
      const publicNodes = options.netns?.publicNodes ?? 1
      for (let i = 1; i < options.nodes; ) {
        const end = Math.min(i < publicNodes ? Math.min(publicNodes, i + batch) : i + batch, options.nodes)
        const ids = Array.from({ length: end - i }, (_, j) => i + j)
        i = end
        const started = await Promise.all(ids.map((id) => net.#startNode(id, boots)))
        const bootable = started.filter(
          (n) => options.netns === undefined || n.index < options.netns.publicNodes,
        )
        if (boots.length < 3)
          boots.push(...bootable.map((n) => `${n.multiaddrs[0]}`).slice(0, 3 - boots.length))
      }
    } catch (err) {
      await net.stop()
      throw err
    }
    return net
  }

  readonly #tokens = new Map<number, string>()
  #genesisFile: string | undefined

  #dataDir(index: number): string {
    return resolve(this.#options.baseDir, `node-${String(index).padStart(2, '0')}`)
  }

  #initConfig(index: number, bootstrap: string[]): Record<string, unknown> {
    return devnetNodeConfig(this.#options, index, bootstrap)
  }

  /**
   * Node `index`'s libp2p port (TCP and QUIC): basePort + index, or 0 (any free one) without a base
   * port; in namespaces, where every node has the host to itself, {@link NETNS_PORT} (or basePort).
   */
  #libp2pPort(index: number): number {
    return devnetPort(this.#options, index)
  }

  /**
   * The addresses node `index` is dialed at: those it announced (its ready line) and, in namespaces,
   * the TCP and QUIC addresses it listens on. A public node announces its addresses only once AutoNAT
   * has verified them (libp2p 3), so right after start only the listen addresses are known.
   */
  #addrsOf(index: number, announced: string[], peerId: string): string[] {
    const o = this.#options
    const withId = announced.map((m) => (m.includes('/p2p/') ? m : `${m}/p2p/${peerId}`))
    if (o.netns === undefined) return withId
    const host = o.netns.hostOf(index).address
    const port = this.#libp2pPort(index)
    // Only the transports this devnet listens on (a QUIC-only devnet must not bootstrap to TCP).
    const listen = listenAddrs(host, port, o.transport).map((a) => `${a}/p2p/${peerId}`)
    return [...listen, ...withId.filter((m) => !listen.includes(m))]
  }

  /** `--genesis FILE` when the devnet is a federation. */
  #genesisArgs(): string[] {
    return this.#genesisFile === undefined ? [] : ['--genesis', this.#genesisFile]
  }

  async #startNode(index: number, bootstrap: string[]): Promise<DevnetNode> {
    const o = this.#options
    const dataDir = this.#dataDir(index)
    await mkdir(dataDir, { recursive: true })
    const inited = this.#tokens.get(index)
    const token = inited ?? (await initNode(dataDir, this.#initConfig(index, bootstrap))).token
    const extra =
      inited === undefined ? [] : [...bootstrap.flatMap((b) => ['--bootstrap', b]), ...this.#genesisArgs()]
    const { proc, info, startupDone } = await startChild(
      dataDir,
      o.logLevel,
      o.startTimeoutMs ?? 60_000,
      extra,
      o.netns?.hostOf(index).netns,
    )
    const node: DevnetNode = {
      index,
      dataDir,
      peerId: String(info.peerId),
      api: String(info.api),
      token,
      multiaddrs: this.#addrsOf(index, info.multiaddrs as string[], String(info.peerId)),
      proc,
      alive: true,
      startupDone,
    }
    proc.once('exit', () => {
      node.alive = false
    })
    this.nodes[index] = node
    o.onEvent?.(`node ${index} up: ${node.peerId} api ${node.api}`)
    return node
  }

  /**
   * Start a stopped node again on its data directory (same identity and data), bootstrapping to up
   * to three live nodes.
   */
  async restart(index: number): Promise<DevnetNode> {
    const n = this.nodes[index]
    if (n === undefined) throw new NodusError('INVALID_ARGUMENT', `no node ${index}`)
    if (n.alive) return n
    const pub = this.#options.netns?.publicNodes
    const boots = this.nodes
      .filter((x) => x?.alive && (pub === undefined || x.index < pub))
      .slice(0, 3)
      .flatMap((x) => ['--bootstrap', `${x.multiaddrs[0]}`])
    const { proc, info, startupDone } = await startChild(
      n.dataDir,
      this.#options.logLevel,
      this.#options.startTimeoutMs ?? 60_000,
      [...boots, ...this.#genesisArgs()],
      this.#options.netns?.hostOf(index).netns,
    )
    n.proc = proc
    n.alive = true
    n.startupDone = startupDone
    n.api = String(info.api)
    n.multiaddrs = this.#addrsOf(index, info.multiaddrs as string[], n.peerId)
    proc.once('exit', () => {
      n.alive = false
    })
    this.#options.onEvent?.(`node ${index} restarted: api ${n.api}`)
    return n
  }

  /**
   * CPU seconds (user + system) used so far by the live node processes, from /proc/PID/stat; undefined
   * where /proc is not available (not Linux).
   */
  cpuSeconds(): number | undefined {
    let total = 0
    for (const n of this.nodes) {
      if (!n.alive || n.proc.pid === undefined) continue
      const s = procCpuSeconds(n.proc.pid)
      if (s === undefined) return undefined
      total += s
    }
    return total
  }

  /**
   * Wait until the devnet has settled after start: every live node has finished its start-up work
   * (its start-up collection, 2 s after ready: {@link DevnetNode.startupDone}), and then its processes
   * together use less than `maxCores` over a `windowMs` window (nodes still join the DHT and compile
   * their hot code for a few seconds after they report ready). Gives up after `timeoutMs`; returns the
   * milliseconds waited. Defaults: 0.5 cores, 500 ms, 15 000 ms.
   */
  async settle(
    options: { maxCores?: number; windowMs?: number; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<number> {
    const { maxCores = 0.5, windowMs = 500, timeoutMs = 15_000 } = options
    const t0 = Date.now()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all(this.nodes.filter((n) => n?.alive).map((n) => n.startupDone)),
      new Promise((r) => {
        timer = setTimeout(r, timeoutMs)
      }),
    ])
    clearTimeout(timer)
    options.signal?.throwIfAborted()
    let before = this.cpuSeconds()
    if (before === undefined) return 0
    while (Date.now() - t0 < timeoutMs) {
      await new Promise((r) => setTimeout(r, windowMs))
      options.signal?.throwIfAborted()
      const now = this.cpuSeconds()
      if (now === undefined) break
      if ((now - before) / (windowMs / 1000) < maxCores) break
      before = now
    }
    return Date.now() - t0
  }

  /** SIGKILL one node's process and wait until it is gone. */
  async kill(index: number): Promise<void> {
    const n = this.nodes[index]
    if (n === undefined || !n.alive) return
    const gone = new Promise<void>((res) => n.proc.once('exit', () => res()))
    n.proc.kill('SIGKILL')
    await gone
  }

  /** Stop one node: SIGTERM, then SIGKILL after `graceMs`. Resolves when its process has exited. */
  async stopNode(index: number, graceMs = 10_000): Promise<void> {
    const n = this.nodes[index]
    if (n === undefined || !n.alive) return
    const gone = new Promise<void>((res) => n.proc.once('exit', () => res()))
    n.proc.kill('SIGTERM')
    const t = setTimeout(() => n.proc.kill('SIGKILL'), graceMs)
    await gone
    clearTimeout(t)
  }

  /** Stop every node: SIGTERM, then SIGKILL after `graceMs`. Resolves when all processes exited. */
  async stop(graceMs = 10_000): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.stopNode(n.index, graceMs)))
  }
}
