/**
 * Issue 22: the demo's put and get over WAN latency and loss (src/netns), beside Helia moving the same
 * file over the same links, TCP against QUIC, and DHT lookup latency.
 *
 *   node bench/wan.bench.ts [--quick] [--rtt 20,80,200] [--loss 0.005] [--variants tcp,quic,tcp-streams]
 *                           [--mb 64] [--nodes 16] [--cc reno] [--config '{"storage":{…}}']
 *                           [--dht 100] [--no-helia]
 *
 * Linux and root only (skips with a row saying why otherwise). For each RTT, one topology: nodes - 1
 * public hosts (p0…) and one home behind a cone NAT (h1), every access link through a delay bridge, so
 * any two hosts see the RTT and each direction loses `loss`. For each variant a devnet of node processes
 * runs on it (one node per host): the put goes through node 0 (p0), the get through the node behind the
 * NAT, the file is compared by SHA-256. Then the nodes stop and Helia moves the same file from p1 to h1
 * (its add is local to p1: no network; its cat crosses the links over one TCP connection). At 80 ms the
 * TCP devnet also serves DHT lookups: a host of nodus's kind in p1 times `getClosestPeers` of random
 * keys (wan-client.ts `dht`).
 *
 * Variants: `tcp` (libp2p over TCP; shards on the bulk channel, kernel TCP + TLS 1.3: the default),
 * `tcp-streams` (libp2p over TCP, `net.bulk` off: shards on yamux streams), `quic` (libp2p over QUIC,
 * `net.bulk` off so the shards cross QUIC; a build without QUIC reports so). MB/s are 10^6 file bytes
 * per second of the put and of the get, timed by the client inside the namespace. A transfer that
 * takes longer than the cut-off is stopped; its row gives the rate up to then.
 *
 * Quick (about a minute): 80 ms only, 8 nodes RS(4,2) with 4 MiB segments, 32 MB, Helia only when
 * already installed. Full (about 6 minutes; reno's Helia runs to its cut-offs): 20, 80, 200 ms, 16 nodes
 * RS(10,4), 64 MB; installs the pinned Helia once (bench/demo.bench.ts). Every run removes its
 * namespaces and temporary directory, also on failure and on SIGINT/SIGTERM.
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { type Devnet, type DevnetTransport, listenAddr } from '../src/cli/devnet.ts'
import { startDevnetOn } from '../src/cli/devnet-netns.ts'
import { silentLogger } from '../src/common/logger.ts'
import {
  ExecFileRunner,
  NetnsTopology,
  netnsUnavailableReason,
  ProcessBridgeLauncher,
} from '../src/netns/index.ts'
import { HELIA_LABEL, heliaInstalled, installHelia, sha256File, writeHeliaRunner } from './demo.bench.ts'
import { type BenchOptions, type Row, ratioOf, sig, withTempDir, writeRandomFile } from './lib.ts'

export const description =
  'Issue 22: the demo put (through a public node) and get (through a node behind a cone NAT) on a ' +
  'topology of network namespaces with a delay bridge on every access link (src/netns): per RTT and ' +
  'variant, 10^6 file bytes per second, beside Helia (add: local to its provider, no network; cat: ' +
  'one TCP connection across the same links). DHT rows: kad-dht closest-peers lookups from a host of ' +
  "nodus's kind, p50/p99 ms in the note."

const CLIENT = fileURLToPath(new URL('./wan-client.ts', import.meta.url))

/** How a devnet's nodes move shards. */
export interface WanVariant {
  name: string
  transport: DevnetTransport
  bulk: 'on' | 'off'
}

export const WAN_VARIANTS: Readonly<Record<string, WanVariant>> = {
  tcp: { name: 'tcp', transport: 'tcp', bulk: 'on' },
  'tcp-streams': { name: 'tcp-streams', transport: 'tcp', bulk: 'off' },
  quic: { name: 'quic', transport: 'quic', bulk: 'off' },
}

/** What one run measures. */
export interface WanPlan {
  rttsMs: number[]
  loss: number
  variants: WanVariant[]
  fileBytes: number
  nodes: number
  /** Node config of every node (storage.k, …). */
  config: Record<string, unknown>
  /** A put, a get or a cat is cut off after this, ms. */
  cutoffMs: number
  /** DHT lookups timed at 80 ms (0: none). */
  dhtLookups: number
  seed: number
  /**
   * Kernel TCP congestion control set in every host namespace (`net.ipv4.tcp_congestion_control`, one
   * of `tcp_allowed_congestion_control`: `reno bbr` here); undefined: the namespaces' default (the
   * machine's). The bulk channel, yamux over TCP and Helia use kernel TCP; QUIC has its own.
   */
  congestionControl?: string | undefined
  /** Run Helia beside (default true; experiments on our side alone skip it). */
  helia?: boolean
  /** Install the pinned Helia when it is missing (full runs); quick runs use it only when installed. */
  installHelia: boolean
}

export function wanPlan(quick: boolean): WanPlan {
  return quick
    ? {
        rttsMs: [80],
        loss: 0.005,
        variants: [WAN_VARIANTS.tcp as WanVariant, WAN_VARIANTS.quic as WanVariant],
        fileBytes: 32_000_000,
        nodes: 8,
        config: { storage: { k: 4, m: 2, segmentSize: 4 * 1024 * 1024 } },
        cutoffMs: 150_000,
        dhtLookups: 50,
        seed: 22,
        installHelia: false,
      }
    : {
        rttsMs: [20, 80, 200],
        loss: 0.005,
        variants: [WAN_VARIANTS.tcp as WanVariant, WAN_VARIANTS.quic as WanVariant],
        fileBytes: 64_000_000,
        nodes: 16,
        config: {},
        cutoffMs: 300_000,
        dhtLookups: 100,
        seed: 22,
        installHelia: true,
      }
}

/** The last JSON events of a child: its final event (or undefined) and its last progress. */
export interface ChildOutcome {
  final: Record<string, unknown> | undefined
  progress: { bytes: number; seconds: number } | undefined
  cutOff: boolean
  stderr: string
  code: number | null
}

/**
 * Waits for `proc` (a wan-client or Helia runner) to print an event named one of `finals`, keeping its
 * last progress event; SIGKILLs it after `cutoffMs` (cutOff true). Never rejects.
 */
export function followChild(
  proc: ChildProcess,
  finals: readonly string[],
  cutoffMs: number,
): Promise<ChildOutcome> {
  return new Promise((resolve) => {
    const o: ChildOutcome = { final: undefined, progress: undefined, cutOff: false, stderr: '', code: null }
    proc.stderr?.on('data', (d: Buffer) => {
      o.stderr = (o.stderr + d.toString()).slice(-2000)
    })
    const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream })
    lines.on('line', (line) => {
      let msg: Record<string, unknown>
      try {
        msg = JSON.parse(line) as Record<string, unknown>
      } catch {
        return
      }
      if (msg.event === 'progress') o.progress = { bytes: Number(msg.bytes), seconds: Number(msg.seconds) }
      else if (typeof msg.event === 'string' && (finals.includes(msg.event) || msg.event === 'error')) {
        o.final = msg
        clearTimeout(timer)
        resolve(o)
      }
    })
    const timer = setTimeout(() => {
      o.cutOff = true
      proc.kill('SIGKILL')
      resolve(o)
    }, cutoffMs)
    // 'close': after the child's stdio closed, so every line has been read.
    proc.once('close', (code) => {
      o.code = code
      clearTimeout(timer)
      resolve(o)
    })
  })
}

/** A transfer's figure: MB/s over the whole file, or up to the cut-off; the note says which. */
export interface Transfer {
  MBps: number
  seconds: number
  done: boolean
  note: string
  final: Record<string, unknown> | undefined
}

const NOT_RUN: Transfer = { MBps: Number.NaN, seconds: Number.NaN, done: false, note: '', final: undefined }

export function transferOf(o: ChildOutcome, bytes: number, what: string, cutoffMs: number): Transfer {
  if (o.final !== undefined && o.final.event !== 'error') {
    const seconds = Number(o.final.seconds)
    return { MBps: sig(bytes / 1e6 / seconds), seconds, done: true, note: '', final: o.final }
  }
  if (o.cutOff) {
    const p = o.progress
    const MBps = p === undefined || p.seconds === 0 ? 0 : sig(p.bytes / 1e6 / p.seconds)
    return {
      MBps,
      seconds: cutoffMs / 1000,
      done: false,
      note: `${what} cut off after ${cutoffMs / 1000} s at ${((p?.bytes ?? 0) / 1e6).toFixed(1)} MB (rate up to then)`,
      final: undefined,
    }
  }
  const why = o.final?.message ?? (o.stderr.trim().split('\n').pop() || `exit ${o.code}`)
  return {
    MBps: Number.NaN,
    seconds: Number.NaN,
    done: false,
    note: `${what} failed: ${why}`,
    final: undefined,
  }
}

/** Every topology of this process not yet removed, and the run's temporary directory, for SIGINT/SIGTERM. */
const live = new Set<NetnsTopology>()
const liveDirs = new Set<string>()

async function onSignal(signal: NodeJS.Signals): Promise<void> {
  process.stderr.write(`[wan] ${signal}: removing ${live.size} topology(ies)\n`)
  await Promise.allSettled([...live].map((t) => t.teardown()))
  await Promise.allSettled([...liveDirs].map((d) => rm(d, { recursive: true, force: true })))
  process.exit(130)
}

export async function withWanTopology<T>(
  spec: { publicHosts: number; homes: number; rttMs: number; loss: number; seed: number },
  f: (t: NetnsTopology) => Promise<T>,
): Promise<T> {
  const logger = silentLogger()
  const topo = await NetnsTopology.create(
    { logger, runner: new ExecFileRunner({ logger }), bridges: new ProcessBridgeLauncher({ logger }) },
    spec,
    { runId: `w${randomBytes(3).toString('hex')}` },
  )
  live.add(topo)
  try {
    return await f(topo)
  } finally {
    const report = await topo.teardown()
    live.delete(topo)
    if (report.errors.length > 0) process.stderr.write(`[wan] teardown: ${report.errors.join('; ')}\n`)
  }
}

/**
 * Sets `cc` as the TCP congestion control of every host namespace of `topo` (when given) and returns
 * the one in use in the first, e.g. `bbr`.
 */
async function congestionControl(topo: NetnsTopology, cc: string | undefined): Promise<string> {
  const hosts = [...topo.plan.publicHosts.map((h) => h.netns), ...topo.plan.homes.map((h) => h.netns)]
  if (cc !== undefined) {
    // A namespace other than the first may only pick from tcp_allowed_congestion_control.
    const allowed = (
      await topo.exec(hosts[0] as string, ['sysctl', '-n', 'net.ipv4.tcp_allowed_congestion_control'])
    ).stdout.trim()
    if (!allowed.split(/\s+/).includes(cc))
      throw new Error(`--cc ${cc}: a network namespace may use only ${allowed} here`)
    for (const ns of hosts)
      await topo.exec(ns, ['sysctl', '-q', '-w', `net.ipv4.tcp_congestion_control=${cc}`])
  }
  const { stdout } = await topo.exec(hosts[0] as string, ['sysctl', '-n', 'net.ipv4.tcp_congestion_control'])
  return `TCP ${stdout.trim()}`
}

/** Spawns wan-client.ts in `netns`. */
export function wanClient(topo: NetnsTopology, netns: string, args: string[]): ChildProcess {
  return topo.spawn(netns, [process.execPath, CLIENT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
}

function notAvailable(message: string): boolean {
  return /quic|no valid addresses|transport/i.test(message)
}

interface VariantResult {
  put: Transfer
  get: Transfer | undefined
  dht?: { p50: number; p99: number; count: number; timedOut: number; peers: number } | undefined
  unavailable?: string
}

/** One devnet of `variant` on `topo`: put through node 0, get through the last node (behind the NAT). */
async function runVariant(
  topo: NetnsTopology,
  variant: WanVariant,
  plan: WanPlan,
  file: string,
  dir: string,
  withDht: boolean,
): Promise<VariantResult> {
  const baseDir = join(dir, `${variant.name}-${topo.spec.rttMs}ms`)
  await mkdir(baseDir, { recursive: true })
  const storage = (plan.config.storage ?? {}) as Record<string, unknown>
  let devnet: Devnet
  try {
    devnet = await startDevnetOn(topo, {
      baseDir,
      basePort: 0,
      logLevel: 'warn',
      transport: variant.transport,
      config: { ...plan.config, net: { ...((plan.config.net ?? {}) as object), bulk: variant.bulk } },
    })
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    if (variant.transport === 'quic' && notAvailable(message))
      return {
        put: NOT_RUN,
        get: undefined,
        unavailable: `QUIC not available on this build (a node listening on ${listenAddr('A', 0, 'quic')} did not start: ${message.replace(/^.*exited with code \d+: /, '').slice(0, 120)})`,
      }
    throw err
  }
  try {
    await devnet.settle({ timeoutMs: 30_000 })
    const up = devnet.nodes[0]
    const down = devnet.nodes[devnet.nodes.length - 1]
    if (up === undefined || down === undefined) throw new Error('devnet incomplete')
    const upHost = topo.plan.publicHosts[0]
    const downHost = topo.plan.homes[0]
    if (upHost === undefined || downHost === undefined) throw new Error('topology incomplete')
    const k = Number(storage.k ?? 10)
    const m = Number(storage.m ?? 4)
    const minPeers = Math.min(plan.nodes - 1, k + m)
    const putOut = await followChild(
      wanClient(topo, upHost.netns, ['put', up.dataDir, file, String(minPeers)]),
      ['put'],
      plan.cutoffMs,
    )
    const put = transferOf(putOut, plan.fileBytes, 'put', plan.cutoffMs)
    if (!put.done) return { put, get: undefined }
    const cid = String(put.final?.cid)
    const outFile = join(baseDir, 'got.bin')
    const loadBefore = loadavg()[0] as number
    const getOut = await followChild(
      wanClient(topo, downHost.netns, ['get', down.dataDir, cid, outFile]),
      ['got'],
      plan.cutoffMs,
    )
    const get = transferOf(getOut, plan.fileBytes, 'get', plan.cutoffMs)
    if (get.done) {
      const [want, got] = await Promise.all([sha256File(file), sha256File(outFile)])
      if (want !== got)
        throw new Error(`${variant.name} at ${topo.spec.rttMs} ms: the get returned other bytes`)
      const first = Number(get.final?.firstByteSeconds)
      get.note = Number.isFinite(first)
        ? `SHA-256 matches; first byte after ${first.toFixed(2)} s, ${sig(plan.fileBytes / 1e6 / (get.seconds - first))} MB/s after it`
        : 'SHA-256 matches'
      get.note += ` (${get.final?.connectedPeers} peers connected at the start)`
    }
    // Other work on the machine moves these figures: say how much there was.
    get.note = [get.note, `load ${loadBefore.toFixed(1)} → ${(loadavg()[0] as number).toFixed(1)}`]
      .filter((x) => x !== '')
      .join('; ')
    let dht: VariantResult['dht']
    const lookupHost = topo.plan.publicHosts[1]
    if (withDht && plan.dhtLookups > 0 && lookupHost !== undefined) {
      const boots = devnet.nodes.slice(0, 3).map((n) => n.multiaddrs[0] as string)
      const o = await followChild(
        wanClient(topo, lookupHost.netns, ['dht', lookupHost.address, String(plan.dhtLookups), ...boots]),
        ['dht'],
        plan.dhtLookups * 35_000,
      )
      if (o.final?.event === 'dht') {
        const ms = [...(o.final.ms as number[])].sort((a, b) => a - b)
        const q = (p: number): number => ms[Math.min(ms.length - 1, Math.ceil(p * ms.length) - 1)] as number
        dht = {
          p50: q(0.5),
          p99: q(0.99),
          count: ms.length,
          timedOut: Number(o.final.timedOut),
          peers: Number(o.final.meanPeersFound),
        }
      } else process.stderr.write(`[wan] dht lookups failed: ${o.final?.message ?? o.stderr}\n`)
    }
    return { put, get, dht }
  } finally {
    await devnet.stop()
  }
}

/**
 * Helia's TCP port in its namespace, announced as is: libp2p 3 lists a listen address on a public IP
 * (11.18.0.0/24 here) only once AutoNAT verified it, so the provider had no address to print.
 */
const HELIA_PORT = 4101

interface HeliaFigures {
  addMBps: number
  cat: Transfer
}

/** Helia: add `file` in p1 (local), cat it from h1 across the links. Undefined when it cannot run. */
async function runHeliaOn(
  topo: NetnsTopology,
  plan: WanPlan,
  file: string,
  dir: string,
): Promise<HeliaFigures | string> {
  const provHost = topo.plan.publicHosts[1]
  const fetchHost = topo.plan.homes[0]
  if (provHost === undefined || fetchHost === undefined) return 'topology has no p1 or h1'
  const runner = writeHeliaRunner()
  const sub = join(dir, `helia-${topo.spec.rttMs}ms`)
  await mkdir(sub, { recursive: true })
  const provider = topo.spawn(provHost.netns, [process.execPath, runner, 'provider', file, join(sub, 'a')], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, HELIA_LISTEN_IP: provHost.address, HELIA_LISTEN_PORT: String(HELIA_PORT) },
  })
  try {
    const added = await followChild(provider, ['added'], plan.cutoffMs)
    if (added.final?.event !== 'added')
      return `helia provider failed: ${added.stderr.trim().split('\n').pop() ?? ''}`
    const out = join(sub, 'out.bin')
    const fetcher = topo.spawn(
      fetchHost.netns,
      [
        process.execPath,
        runner,
        'fetcher',
        String(added.final.cid),
        String(added.final.addr),
        out,
        join(sub, 'b'),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, HELIA_LISTEN_IP: fetchHost.address, HELIA_LISTEN_PORT: String(HELIA_PORT) },
      },
    )
    const loadBefore = loadavg()[0] as number
    const fetched = await followChild(fetcher, ['fetched'], plan.cutoffMs)
    if (fetcher.exitCode === null) fetcher.kill('SIGKILL')
    const cat = transferOf(fetched, plan.fileBytes, 'Helia cat', plan.cutoffMs)
    cat.note = [cat.note, `Helia cat load ${loadBefore.toFixed(1)} → ${(loadavg()[0] as number).toFixed(1)}`]
      .filter((x) => x !== '')
      .join('; ')
    if (cat.done) {
      const [want, got] = await Promise.all([sha256File(file), sha256File(out)])
      if (want !== got) return 'helia returned a different file'
    }
    return { addMBps: sig(plan.fileBytes / 1e6 / Number(added.final.seconds)), cat }
  } finally {
    if (provider.exitCode === null) provider.kill('SIGKILL')
  }
}

function row(name: string, ours: number, peer: string, peerMBps: number | null, note: string): Row {
  return { name, ours_MBps: ours, peer, peer_MBps: peerMBps, ratio: ratioOf(ours, peerMBps), note }
}

/** Runs `plan` and returns its rows (one skip row when namespaces are not available). */
export async function runWan(plan: WanPlan): Promise<Row[]> {
  const why = await netnsUnavailableReason()
  if (why !== undefined)
    return [row('wan: put/get over latency and loss', Number.NaN, '-', null, `skipped: ${why}`)]
  let heliaWhy: string | undefined
  if (!heliaInstalled())
    heliaWhy = plan.installHelia ? await installHelia() : 'not installed (a full run installs it)'
  const sigint = (): void => void onSignal('SIGINT')
  const sigterm = (): void => void onSignal('SIGTERM')
  process.once('SIGINT', sigint)
  process.once('SIGTERM', sigterm)
  try {
    return await withTempDir('wan', async (dir) => {
      liveDirs.add(dir)
      const file = join(dir, `wan-${plan.fileBytes / 1e6}MB.bin`)
      writeRandomFile(file, plan.fileBytes)
      const rows: Row[] = []
      let quicMissing: string | undefined
      const lossPct = `${plan.loss * 100} %`
      for (const rtt of plan.rttsMs) {
        await withWanTopology(
          { publicHosts: plan.nodes - 1, homes: 1, rttMs: rtt, loss: plan.loss, seed: plan.seed },
          async (topo) => {
            const cc = await congestionControl(topo, plan.congestionControl)
            const results: [WanVariant, VariantResult][] = []
            for (const v of plan.variants) {
              if (v.transport === 'quic' && quicMissing !== undefined) {
                results.push([v, { put: NOT_RUN, get: undefined, unavailable: quicMissing }])
                continue
              }
              process.stderr.write(`[wan] ${rtt} ms, ${v.name}\n`)
              const r = await runVariant(topo, v, plan, file, dir, rtt === 80 && v.name === 'tcp')
              if (r.unavailable !== undefined) quicMissing = r.unavailable
              results.push([v, r])
            }
            process.stderr.write(`[wan] ${rtt} ms, helia\n`)
            const helia =
              plan.helia === false
                ? 'not run (--no-helia)'
                : (heliaWhy ?? (await runHeliaOn(topo, plan, file, dir)))
            const peer = typeof helia === 'string' ? `${HELIA_LABEL}: ${helia}` : HELIA_LABEL
            const h = typeof helia === 'string' ? undefined : helia
            const at = `${rtt} ms RTT, ${lossPct} loss, ${cc}`
            for (const [v, r] of results) {
              if (r.unavailable !== undefined) {
                rows.push(row(`put ${v.name}, ${at}`, Number.NaN, '-', null, r.unavailable))
                rows.push(row(`get ${v.name}, ${at}`, Number.NaN, '-', null, r.unavailable))
                continue
              }
              rows.push(
                row(
                  `put ${v.name}, ${at}`,
                  r.put.MBps,
                  `${peer} add (local, no network)`,
                  null,
                  [r.put.note, h === undefined ? '' : `Helia add ${h.addMBps} MB/s local`]
                    .filter((s) => s !== '')
                    .join('; '),
                ),
              )
              rows.push(
                row(
                  `get ${v.name}, ${at}`,
                  r.get?.MBps ?? Number.NaN,
                  `${peer} cat`,
                  h?.cat.MBps ?? null,
                  [r.get?.note ?? 'no get: the put did not complete', h?.cat.note ?? '']
                    .filter((s) => s !== '')
                    .join('; '),
                ),
              )
              if (r.dht !== undefined)
                rows.push(
                  row(
                    `DHT lookup, ${at}`,
                    Number.NaN,
                    '-',
                    null,
                    `closest-peers lookup p50 ${Math.round(r.dht.p50)} ms, p99 ${Math.round(r.dht.p99)} ms over ${r.dht.count} lookups (${r.dht.timedOut} cut off at 30 s; ${r.dht.peers.toFixed(1)} peers found each; ${plan.nodes} nodes)`,
                  ),
                )
            }
          },
        )
      }
      return rows
    })
  } finally {
    process.removeListener('SIGINT', sigint)
    process.removeListener('SIGTERM', sigterm)
  }
}

/** The harness entry: {@link wanPlan} of `options.quick`. */
export async function run(options: BenchOptions): Promise<Row[]> {
  return await runWan(wanPlan(options.quick))
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      rtt: { type: 'string' },
      loss: { type: 'string' },
      variants: { type: 'string' },
      mb: { type: 'string' },
      nodes: { type: 'string' },
      cc: { type: 'string' },
      config: { type: 'string' },
      dht: { type: 'string' },
      'no-helia': { type: 'boolean' },
    },
  })
  const plan = wanPlan(values.quick === true)
  if (values.rtt !== undefined) plan.rttsMs = values.rtt.split(',').map(Number)
  if (values.loss !== undefined) plan.loss = Number(values.loss)
  if (values.mb !== undefined) plan.fileBytes = Number(values.mb) * 1e6
  if (values.nodes !== undefined) plan.nodes = Number(values.nodes)
  if (values.cc !== undefined) plan.congestionControl = values.cc
  if (values.dht !== undefined) plan.dhtLookups = Number(values.dht)
  if (values['no-helia'] === true) plan.helia = false
  if (values.config !== undefined)
    plan.config = { ...plan.config, ...(JSON.parse(values.config) as Record<string, unknown>) }
  if (values.variants !== undefined)
    plan.variants = values.variants.split(',').map((n) => {
      const v = WAN_VARIANTS[n.trim()]
      if (v === undefined)
        throw new Error(`unknown variant ${n}; known: ${Object.keys(WAN_VARIANTS).join(', ')}`)
      return v
    })
  const rows = await runWan(plan)
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`)
}
