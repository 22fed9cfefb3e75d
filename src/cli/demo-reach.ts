/**
 * `nodus demo --scenario reach`: nodes behind real NATs with WAN latency (issue 22), on a topology of
 * network namespaces (src/netns, devnet-netns.ts). Linux and root only.
 *
 * 1. Builds the topology: `publicHosts` public hosts (node 0 the bootstrap and relay; node 1 serves no
 *    relay), `cone` homes behind cone NATs and `symmetric` homes behind symmetric NATs, `rttMs` between
 *    any two hosts and `loss` each way; one node per host.
 * 2. Waits until each public node is `public` (AutoNAT) and each home `relayed`. Every home but the
 *    last cone one reserves on node 0 (`net.relays`); the last cone home is given no relay and
 *    bootstraps to node 1 only, so it must find its relay through the DHT (`net.discoverRelays` 1;
 *    src/net/README.md, "Relay discovery").
 * 3. Dials every pair of cone homes through the relay and waits until DCUtR has made the connection
 *    direct (hole-punched); dials the symmetric home, which must stay relayed.
 * 4. Puts `file` (default: `sizeBytes` random bytes) through the first cone home, SIGKILLs `kill`
 *    shard holders (never the relay, the uploader or the downloader), gets the file back through the
 *    last cone home (behind another NAT) and compares SHA-256.
 * 5. Stops the nodes, removes the topology and checks that no namespace, veth or iptables rule of the
 *    run is left (the root namespace's links and rules as before).
 *
 * Ends with one JSON line ({@link ReachDemoResult}). Removes everything on success, on error and on
 * SIGINT/SIGTERM (after what is being built is up). Without root or tools it fails at once with
 * NETNS_UNAVAILABLE, whose message says what is missing.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import {
  assertNetnsAvailable,
  ExecFileRunner,
  listNetns,
  planTopology,
  type RootState,
  rootState,
  rootStateLeft,
  validateSpec,
} from '../netns/index.ts'
import { checkWhole, quantile, until } from './demo-devnet.ts'
import { type NetnsDevnet, netnsApi, startNetnsDevnet } from './devnet-netns.ts'
import {
  announcedAddrs,
  circuitOf,
  directlyConnected,
  netnsCli,
  nodeReachability,
  peersOf,
} from './netns-nodes.ts'

export interface ReachDemoOptions {
  /** Public hosts (node 0 the bootstrap and relay, node 1 no relay). Default 2, at least 2. */
  publicHosts: number
  /** Homes behind cone NATs. Default 3, at least 2 (one finds its relay through the DHT). */
  cone: number
  /** Homes behind symmetric NATs. Default 1. */
  symmetric: number
  /** Round trip between any two hosts, ms. Default 80. */
  rttMs: number
  /** Loss of each direction between two hosts, a fraction. Default 0.005 (0.5 %). */
  loss: number
  /** A file to put; absent: `sizeBytes` random bytes written to the run's directory. */
  file?: string
  /** Size of the random file, bytes. Default 32 MiB. */
  sizeBytes: number
  /** Shard holders SIGKILLed between the put and the get (at most m). Default 2. */
  kill: number
  /** Node config applied to every node (storage.k, m, segmentSize). */
  config?: Record<string, unknown>
  /** How long each wait (reachability, a hole punch) may take, ms. Default 90 000. */
  waitMs: number
  logLevel: string
  /** Parent of the run's temporary directory. Default the OS temp dir. */
  baseDir?: string
  /** Keep the run's directory (logs, data) instead of removing it. */
  keep: boolean
  logger: Logger
  log: (msg: string) => void
}

/** The default options of the scenario (storage: RS(2,2), 4 MiB segments, across the few peers). */
export const REACH_DEMO_DEFAULTS = {
  publicHosts: 2,
  cone: 3,
  symmetric: 1,
  rttMs: 80,
  loss: 0.005,
  sizeBytes: 32 * 1024 * 1024,
  kill: 2,
  waitMs: 90_000,
  storage: { k: 2, m: 2, segmentSize: 4 * 1024 * 1024 },
} as const

/** One node of the run as the result shows it. */
export interface ReachNode {
  index: number
  kind: 'public' | 'cone' | 'symmetric'
  address: string
  seenAs: string
  /** Its reachability (`GET /network/reachability`) once the wait ended. */
  reachability: string
  /** What it should be: `public` for public hosts, `relayed` behind NATs. */
  expected: 'public' | 'relayed'
  /** Seconds from the devnet up until it was `expected`; null when it never was. */
  seconds: number | null
  /** The nodes it holds a relay reservation on (indices), from its announced `/p2p-circuit` addresses. */
  relays: number[]
  /** How it got its relay: configured (`net.relays`), discovered (`net.discoverRelays`), or none. */
  relaySource: 'configured' | 'discovered' | 'none'
  killed: boolean
}

/** A hole punch between two cone homes. */
export interface HolePunch {
  a: number
  b: number
  direct: boolean
  /** ms from the relayed dial until the direct connection showed; null when it was direct before the dial. */
  ms: number | null
}

export interface ReachDemoResult {
  ok: boolean
  scenario: 'reach'
  runId: string
  rttMs: number
  loss: number
  nodes: ReachNode[]
  /** Connections of the live nodes just before the get, summed over nodes (each counted at both ends). */
  connections: { direct: number; relayed: number }
  holePunches: HolePunch[]
  holePunchP50Ms: number | null
  holePunchMaxMs: number | null
  /** The symmetric homes stayed relayed (no direct connection from a cone home). */
  symmetricRelayed: boolean
  /** The home with no relay configured holds a reservation on a relay it found. */
  discoveredRelay: { node: number; relays: number[] } | null
  bytes: number
  cid: string | null
  putMBps: number | null
  getMBps: number | null
  killed: number[]
  sha256Match: boolean
  /** Nothing of the run left: namespaces, root-namespace links and iptables rules. */
  cleanup: {
    ok: boolean
    namespacesLeft: string[]
    linksLeft: string[]
    rulesLeft: string[]
    errors: string[]
  }
  /** 1-minute load average at the start and at the end (the machine is shared). */
  loadAverage: { before: number; after: number }
  seconds: number
  /** What failed, when something did. */
  failures: string[]
}

/** Validate the options before anything is built. @throws NodusError INVALID_ARGUMENT, FILE_NOT_FOUND */
export async function checkReachOptions(o: ReachDemoOptions): Promise<{ k: number; m: number }> {
  checkWhole('public', o.publicHosts, 2)
  checkWhole('cone', o.cone, 2)
  checkWhole('symmetric', o.symmetric, 0)
  checkWhole('kill', o.kill, 0)
  checkWhole('size', o.sizeBytes, 1)
  const storage = (o.config?.storage ?? {}) as { k?: number; m?: number }
  const k = storage.k ?? REACH_DEMO_DEFAULTS.storage.k
  const m = storage.m ?? REACH_DEMO_DEFAULTS.storage.m
  if (o.kill > m)
    throw new NodusError(
      'INVALID_ARGUMENT',
      `--kill ${o.kill} would lose ${o.kill} shards of a segment, but only m = ${m} losses per segment are survivable`,
    )
  // Holders the uploader reaches directly: public nodes and the other cone homes (not node 0, kept as
  // the relay, when counting what may be killed).
  const candidates = o.publicHosts - 1 + o.cone - 2
  if (o.kill > candidates)
    throw new NodusError('INVALID_ARGUMENT', `--kill ${o.kill}: only ${candidates} nodes may be killed here`)
  if (o.file !== undefined) {
    const st = await stat(o.file).catch(() => undefined)
    if (st?.isFile() !== true) throw new NodusError('FILE_NOT_FOUND', `no such file: ${o.file}`)
  }
  return { k, m }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer)
  return h.digest('hex')
}

const round = (x: number): number => Math.round(x * 100) / 100
const load1 = (): number => round(loadavg()[0] ?? 0)

/** Run the scenario. Resolves with the result (ok false when a check failed); throws on setup errors. */
export async function runReachDemo(o: ReachDemoOptions): Promise<ReachDemoResult> {
  const t0 = performance.now()
  await checkReachOptions(o)
  // Fails at once, with the reason, without root or tools (as `devnet --netns`).
  await assertNetnsAvailable()
  const loadBefore = load1()
  const runner = new ExecFileRunner({ logger: o.logger })
  const before = await rootState(runner)
  await mkdir(o.baseDir ?? tmpdir(), { recursive: true })
  const dir = await mkdtemp(join(o.baseDir ?? tmpdir(), 'nodus-reach-'))
  const runId = `rch${randomBytes(2).toString('hex')}`
  const abort = new AbortController()
  let net: NetnsDevnet | undefined
  let building: Promise<NetnsDevnet> | undefined
  const onSignal = (): void => {
    o.log('interrupted: stopping the nodes and removing the namespaces')
    abort.abort(new NodusError('ABORTED', 'interrupted'))
    void (async () => {
      try {
        // While it builds: the topology's own creation stops at the signal and removes what it made;
        // once the nodes are starting, wait for them, then remove it all.
        const built = net ?? (await building?.catch(() => undefined))
        await built?.stop()
        if (!o.keep) await rm(dir, { recursive: true, force: true })
      } finally {
        process.exit(130)
      }
    })()
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const cone = Array.from({ length: o.cone }, (_, i) => o.publicHosts + i)
    const symmetric = Array.from({ length: o.symmetric }, (_, i) => o.publicHosts + o.cone + i)
    const seeker = cone[cone.length - 1] as number
    o.log(
      `building ${o.publicHosts} public hosts, ${o.cone} cone and ${o.symmetric} symmetric homes, ${o.rttMs} ms RTT, ${o.loss * 100} % loss (run ${runId}, ${dir})`,
    )
    const spec = {
      publicHosts: o.publicHosts,
      homes: o.cone + o.symmetric,
      symmetric: o.symmetric,
      rttMs: o.rttMs,
      loss: o.loss,
    }
    const node1 = `/ip4/${planTopology(validateSpec(spec), runId).publicHosts[1]?.address}/`
    building = startNetnsDevnet(spec, {
      logger: o.logger,
      runId,
      signal: abort.signal,
      baseDir: join(dir, 'nodes'),
      basePort: 0,
      logLevel: o.logLevel,
      config: { ...(o.config ?? {}), storage: { ...REACH_DEMO_DEFAULTS.storage, ...storageOf(o) } },
      onEvent: (m) => o.log(m),
      // Node 1 serves no relay; the seeker has none configured and bootstraps to node 1 alone, so the
      // relay it ends on is one it found (through the DHT).
      nodeNet: (index, bootstrap) => {
        if (index === 1) return { relayServer: 'off' }
        if (index !== seeker) return {}
        return { relays: [], discoverRelays: 1, bootstrap: bootstrap.filter((b) => b.includes(node1)) }
      },
    })
    net = await building
    abort.signal.throwIfAborted()
    return await scenario(net, o, { cone, symmetric, seeker, dir, runId, before, loadBefore, t0, runner })
  } finally {
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    await net?.stop()
    if (o.keep) o.log(`kept ${dir}`)
    else await rm(dir, { recursive: true, force: true })
  }
}

function storageOf(o: ReachDemoOptions): Record<string, unknown> {
  return (o.config?.storage ?? {}) as Record<string, unknown>
}

function peerOf(net: NetnsDevnet, index: number): string | undefined {
  return net.devnet.nodes[index]?.peerId
}

interface Run {
  cone: number[]
  symmetric: number[]
  seeker: number
  dir: string
  runId: string
  before: RootState
  loadBefore: number
  t0: number
  runner: ExecFileRunner
}

async function scenario(net: NetnsDevnet, o: ReachDemoOptions, run: Run): Promise<ReachDemoResult> {
  const { cone, symmetric, seeker } = run
  const failures: string[] = []
  const up = performance.now()
  const indexOfPeer = new Map(net.devnet.nodes.map((n) => [n.peerId, n.index]))
  const relaysOf = async (i: number): Promise<number[]> =>
    [
      ...new Set(
        (await announcedAddrs(net, i).catch(() => []))
          .map((a) => /\/p2p\/([^/]+)\/p2p-circuit/.exec(a)?.[1])
          .map((p) => (p === undefined ? undefined : indexOfPeer.get(p)))
          .filter((x) => x !== undefined),
      ),
    ].sort()

  // 2. Reachability: every node waited for in parallel.
  const nodes: ReachNode[] = await Promise.all(
    net.hosts.map(async (h): Promise<ReachNode> => {
      const expected = h.kind === 'public' ? 'public' : 'relayed'
      let seconds: number | null = null
      let reachability = 'private'
      await until(
        async () => {
          reachability = await nodeReachability(net, h.index).catch(() => 'down')
          if (reachability !== expected) return false
          seconds = round((performance.now() - up) / 1000)
          return true
        },
        o.waitMs,
        500,
      )
      const relays = h.kind === 'public' ? [] : await relaysOf(h.index)
      return {
        index: h.index,
        kind: h.kind,
        address: h.address,
        seenAs: h.seenAs,
        reachability,
        expected,
        seconds,
        relays,
        relaySource: relays.length === 0 ? 'none' : h.index === seeker ? 'discovered' : 'configured',
        killed: false,
      }
    }),
  )
  for (const n of nodes)
    if (n.seconds === null)
      failures.push(
        `node ${n.index} (${n.kind}) is ${n.reachability}, not ${n.expected}, after ${o.waitMs} ms`,
      )
  o.log(
    `reachability: ${nodes.map((n) => `${n.index} ${n.reachability} (${n.seconds ?? '-'} s)`).join(', ')}`,
  )
  const seekerNode = nodes[seeker]
  const discoveredRelay =
    seekerNode !== undefined && seekerNode.relays.length > 0
      ? { node: seeker, relays: seekerNode.relays }
      : null
  if (discoveredRelay === null) failures.push(`node ${seeker} found no relay through the DHT`)
  else o.log(`node ${seeker}, no relay configured, reserved on node(s) ${discoveredRelay.relays.join(', ')}`)

  // 3. Hole punching: each pair of cone homes dialed through the relay its callee reserved on.
  const relayOf = (i: number): number => nodes[i]?.relays[0] ?? 0
  const holePunches: HolePunch[] = []
  for (let x = 0; x < cone.length; x++)
    for (let y = x + 1; y < cone.length; y++) {
      const a = cone[x] as number
      const b = cone[y] as number
      if (await directlyConnected(net, a, b)) {
        holePunches.push({ a, b, direct: true, ms: null })
        continue
      }
      const t = performance.now()
      const r = await netnsApi(net, a, 'POST', '/network/connect', {
        multiaddr: circuitOf(net, b, relayOf(b)),
      })
      // An error answer may mean DCUtR replaced the relayed connection while the dial finished.
      if (r.status !== 200) o.log(`connect ${a} -> ${b} through the relay: ${JSON.stringify(r.body)}`)
      const direct = await until(() => directlyConnected(net, a, b), o.waitMs / 3, 50)
      holePunches.push({ a, b, direct, ms: direct ? Math.round(performance.now() - t) : null })
      if (!direct) failures.push(`cone homes ${a} and ${b}: no direct connection`)
    }
  const punchMs = holePunches.flatMap((p) => (p.ms === null ? [] : [p.ms])).sort((p, q) => p - q)
  o.log(
    `hole punches: ${holePunches.map((p) => `${p.a}-${p.b} ${p.direct ? `${p.ms ?? 'before'} ms` : 'failed'}`).join(', ')}`,
  )
  let symmetricRelayed = true
  for (const s of symmetric) {
    const a = cone[0] as number
    const peer = peerOf(net, s)
    await until(
      async () => {
        if ((await peersOf(net, a)).some((p) => p.peerId === peer)) return true
        await netnsApi(net, a, 'POST', '/network/connect', { multiaddr: circuitOf(net, s, relayOf(s)) })
        return false
      },
      o.waitMs / 3,
      500,
    )
    // DCUtR has its exchange done (or given up) within a second or two: a direct connection showing
    // within 5 s is a failure.
    if (await until(() => directlyConnected(net, a, s), 5_000, 250)) symmetricRelayed = false
    const rows = (await peersOf(net, a)).filter((p) => p.peerId === peer)
    if (!symmetricRelayed || rows.length === 0 || rows.some((p) => !p.relayed)) {
      symmetricRelayed = false
      failures.push(
        `symmetric home ${s}: ${rows.length === 0 ? 'not connected' : 'direct'} from ${a}, want relayed`,
      )
    }
  }

  // 4. Put behind one NAT, kill holders, get behind another.
  const uploader = cone[0] as number
  const downloader = seeker
  let file = o.file === undefined ? undefined : resolve(o.file)
  if (file === undefined) {
    file = join(run.dir, 'input.bin')
    await writeFile(file, randomBytes(o.sizeBytes))
  }
  const bytes = (await stat(file)).size
  const wantSha = await sha256File(file)
  let cid: string | null = null
  let putMBps: number | null = null
  let getMBps: number | null = null
  let sha256Match = false
  const killed: number[] = []
  let connections = { direct: 0, relayed: 0 }
  try {
    o.log(`putting ${(bytes / 1e6).toFixed(1)} MB through node ${uploader} (cone NAT)`)
    const put = await netnsCli(net, uploader, ['put', file])
    cid = String(put.cid)
    putMBps = round(bytes / 1e6 / Number(put.seconds))
    const holders = new Set((put.holders as string[] | undefined) ?? [])
    const victims = net.devnet.nodes
      .filter((n) => n.index !== 0 && n.index !== uploader && n.index !== downloader && holders.has(n.peerId))
      .filter((n) => !(nodes[downloader]?.relays ?? []).includes(n.index))
      .slice(0, o.kill)
    for (const v of victims) {
      await net.devnet.kill(v.index)
      killed.push(v.index)
      const n = nodes[v.index]
      if (n !== undefined) n.killed = true
      o.log(`SIGKILLed node ${v.index} (${net.hosts[v.index]?.kind}), a shard holder`)
    }
    if (killed.length < o.kill) failures.push(`only ${killed.length} of ${o.kill} holders could be killed`)
    connections = await countConnections(net)
    const out = join(run.dir, 'output.bin')
    o.log(`getting it through node ${downloader} (behind another cone NAT)`)
    const got = await netnsCli(net, downloader, ['get', cid, '-o', out])
    getMBps = round(bytes / 1e6 / Number(got.seconds))
    sha256Match = (await sha256File(out)) === wantSha
    if (!sha256Match) failures.push('SHA-256 of the file got back differs')
    o.log(`put ${putMBps} MB/s, get ${getMBps} MB/s; SHA-256 ${sha256Match ? 'matches' : 'DIFFERS'}`)
  } catch (err) {
    failures.push(`put/get: ${(err as Error).message}`)
  }

  // 5. Remove everything, then check nothing is left.
  const report = await net.stop()
  const namespacesLeft = (await listNetns(run.runner)).filter((n) => n.startsWith(`nodus-${run.runId}-`))
  const left = rootStateLeft(run.before, await rootState(run.runner))
  const cleanupOk =
    report.errors.length === 0 &&
    namespacesLeft.length === 0 &&
    left.links.length === 0 &&
    left.rules.length === 0
  if (!cleanupOk) failures.push('cleanup left something behind')
  o.log(
    `removed ${report.namespaces.length} namespaces; left: ${JSON.stringify({ namespacesLeft, ...left })}`,
  )
  return {
    ok: failures.length === 0,
    scenario: 'reach',
    runId: run.runId,
    rttMs: o.rttMs,
    loss: o.loss,
    nodes,
    connections,
    holePunches,
    holePunchP50Ms: punchMs.length === 0 ? null : quantile(punchMs, 0.5),
    holePunchMaxMs: punchMs.length === 0 ? null : (punchMs[punchMs.length - 1] as number),
    symmetricRelayed,
    discoveredRelay,
    bytes,
    cid,
    putMBps,
    getMBps,
    killed,
    sha256Match,
    cleanup: {
      ok: cleanupOk,
      namespacesLeft,
      linksLeft: left.links,
      rulesLeft: left.rules,
      errors: report.errors,
    },
    loadAverage: { before: run.loadBefore, after: load1() },
    seconds: round((performance.now() - run.t0) / 1000),
    failures,
  }
}

/** Direct and relayed connections of the live nodes (`GET /network/peers`), summed. */
async function countConnections(net: NetnsDevnet): Promise<{ direct: number; relayed: number }> {
  let direct = 0
  let relayed = 0
  for (const n of net.devnet.nodes) {
    if (!n.alive) continue
    for (const p of await peersOf(net, n.index).catch(() => [])) {
      if (p.relayed) relayed++
      else direct++
    }
  }
  return { direct, relayed }
}
