/**
 * Hole punching on the namespace topology (issue 22): success rate and time to a direct connection,
 * cone NAT to cone NAT and cone NAT to symmetric NAT. Linux and root; not a *.bench.ts (the bench
 * runner does not run it): `node bench/holepunch.ts [--attempts 50] [--rtt 80] [--timeout 8000] [--gap 1500] [--fresh]`.
 *
 * Topology: 2 public nodes (node 0 the relay), 2 homes behind cone NATs (nodes 2, 3) and one behind a
 * symmetric NAT (node 4), `--rtt` between any two hosts. Each attempt (bench/holepunch-agent.ts, run in
 * node 2's namespace) dials the peer through the relay and times until a direct connection to it shows
 * in `GET /network/peers` (polled every 10 ms), or counts a failure after `--timeout` ms.
 * - `--fresh`: the peer is restarted before each attempt (a new process, dial port and NAT mapping) and
 *   the attempt starts once it holds its relay reservation; it is not hung up (kad-dht tags its closest
 *   peers keep-alive and libp2p redials them at once), so the two may already be connected, relayed or
 *   direct, when the attempt dials: `atDial` counts which.
 * - otherwise (back to back): node 2 hangs up the peer, waits until no connection is left (at most 5 s;
 *   `redials` counts the times libp2p reconnected first) and `--gap` ms, then dials. Every attempt of a
 *   pair uses the same two dial ports, so the last connection's 4-tuple must be free again
 *   (src/net/holepunch.ts, point 5). The homes' hosts run with `net.ipv4.tcp_tw_reuse=1`.
 * `NODUS_VERBOSE=1` prints each attempt with the time; `NODUS_KEEP_DIR=1` keeps the nodes' logs (run with
 * `DEBUG=libp2p:dcutr*,libp2p:circuit-relay*` for DCUtR's and the relay's); `NODUS_PCAP_DIR=dir` runs
 * tcpdump on each home router's public side.
 * Prints one JSON line: per pair, attempts, successes, p50 and p99 ms, redials, and the load average.
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { netnsApi, startNetnsDevnet } from '../src/cli/devnet-netns.ts'
import { silentLogger } from '../src/common/logger.ts'
import { assertNetnsAvailable } from '../src/netns/index.ts'

const { values } = parseArgs({
  options: {
    attempts: { type: 'string', default: '50' },
    rtt: { type: 'string', default: '80' },
    timeout: { type: 'string', default: '8000' },
    gap: { type: 'string', default: '1500' },
    pairs: { type: 'string', default: 'cone-cone,cone-symmetric' },
    fresh: { type: 'boolean', default: false },
  },
})
const attempts = Number(values.attempts)
const rttMs = Number(values.rtt)
const timeoutMs = Number(values.timeout)
const gapMs = Number(values.gap)
const fresh = values.fresh === true
const AGENT = fileURLToPath(new URL('./holepunch-agent.ts', import.meta.url))

/** The q-quantile (0..1) of `xs`, nearest rank; NaN when empty. */
function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number
}

await assertNetnsAvailable()
const baseDir = await mkdtemp(join(tmpdir(), 'nodus-holepunch-'))
const load = { before: loadavg().map((x) => Number(x.toFixed(2))) }
const net = await startNetnsDevnet(
  { publicHosts: 2, homes: 3, symmetric: 1, rttMs },
  {
    logger: silentLogger(),
    runId: `hp${randomBytes(2).toString('hex')}`,
    baseDir,
    basePort: 0,
    logLevel: 'warn',
  },
)
// Ctrl-C or a timeout's SIGTERM: remove the topology before exiting.
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    void net.stop().finally(() => process.exit(1))
  })
const dumps: ChildProcess[] = []
try {
  for (const h of net.topology.plan.homes)
    await net.topology.exec(h.netns, ['sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1'])
  // NODUS_PCAP_DIR=dir: tcpdump on every home router's public side (TCP only), for a look at failures.
  const pcapDir = process.env.NODUS_PCAP_DIR
  if (pcapDir !== undefined)
    for (const h of net.topology.plan.homes) {
      const dump = net.topology.spawn(
        h.router.netns,
        ['tcpdump', '-i', 'wan', '-n', '-U', '-w', join(pcapDir, `${h.role}.pcap`), 'tcp'],
        { stdio: 'ignore' },
      )
      process.once('exit', () => dump.kill('SIGTERM'))
      dumps.push(dump)
    }
  /** Polls node `i`'s reachability until it is `want`; throws after `ms`. */
  const until = async (i: number, want: string, ms: number): Promise<void> => {
    const deadline = Date.now() + ms
    for (;;) {
      const r = await netnsApi(net, i, 'GET', '/network/reachability')
      if ((r.body as { reachability?: string }).reachability === want) return
      if (Date.now() > deadline) throw new Error(`node ${i} not ${want} after ${ms} ms`)
      await new Promise((res) => setTimeout(res, 250))
    }
  }
  // Every home holds its reservation and the public nodes are confirmed before the first attempt.
  for (const h of net.hosts) await until(h.index, h.kind === 'public' ? 'public' : 'relayed', 120_000)
  const a = net.devnet.nodes[2]
  const relay = net.devnet.nodes[0]
  if (a === undefined || relay === undefined) throw new Error('nodes missing')
  const hostA = net.hosts[2]
  if (hostA === undefined) throw new Error('host missing')
  const agent = net.topology.spawn(hostA.netns, [process.execPath, AGENT, a.api, a.token], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: agent.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]()
  const results: Record<string, unknown> = {}
  try {
    const wanted = new Set(String(values.pairs).split(','))
    for (const [name, b] of [
      ['cone-cone', 3],
      ['cone-symmetric', 4],
    ] as const) {
      if (!wanted.has(name)) continue
      let redials = 0
      let noReservation = 0
      const peer = net.devnet.nodes[b]?.peerId ?? ''
      const circuit = `${relay.multiaddrs[0]}/p2p-circuit/p2p/${peer}`
      const ms: number[] = []
      const errors: Record<string, number> = {}
      /** The connection to the peer when the attempt dialed: none, relayed or direct (counts). */
      const atDial: Record<string, number> = {}
      for (let i = 0; i < attempts; i++) {
        if (fresh) {
          // A new process for the peer: a new dial port and NAT mapping, no state left from the last
          // attempt; the attempt starts once it holds its relay reservation again.
          // A restarted node whose first reservation dial fails does not try again (libp2p's circuit
          // relay transport, src/net/README.md): restart it once more then (counted).
          for (let tries = 1; ; tries++) {
            await net.devnet.kill(b)
            await net.devnet.restart(b)
            try {
              await until(b, 'relayed', 20_000)
              break
            } catch (err) {
              if (tries === 3) throw err
              noReservation++
            }
          }
        }
        if (process.env.NODUS_VERBOSE === '1')
          process.stderr.write(`${new Date().toISOString()} ${name} attempt ${i}\n`)
        agent.stdin?.write(`${JSON.stringify({ peer, circuit, timeoutMs, gapMs, hangUp: !fresh })}\n`)
        const next = await lines.next()
        if (next.done === true) throw new Error('agent exited')
        const r = JSON.parse(next.value) as {
          ok: boolean
          ms?: number
          error?: string
          redials?: number
          before?: string
        }
        redials += r.redials ?? 0
        atDial[r.before ?? '?'] = (atDial[r.before ?? '?'] ?? 0) + 1
        if (process.env.NODUS_VERBOSE === '1')
          process.stderr.write(`${new Date().toISOString()} ${name} attempt ${i}: ${next.value}\n`)
        if (r.ok && r.ms !== undefined) ms.push(r.ms)
        else errors[r.error ?? '?'] = (errors[r.error ?? '?'] ?? 0) + 1
      }
      results[name] = {
        attempts,
        direct: ms.length,
        successRate: Number((ms.length / attempts).toFixed(3)),
        p50Ms: Math.round(quantile(ms, 0.5)),
        p99Ms: Math.round(quantile(ms, 0.99)),
        errors,
        atDial,
        redials,
        ...(fresh ? { restartsWithoutReservation: noReservation } : {}),
      }
      process.stderr.write(`${name}: ${JSON.stringify(results[name])}\n`)
    }
  } finally {
    agent.stdin?.end()
    agent.kill('SIGTERM')
  }
  process.stdout.write(
    `${JSON.stringify({
      rttMs,
      timeoutMs,
      gapMs,
      fresh,
      results,
      loadavg: { ...load, after: loadavg().map((x) => Number(x.toFixed(2))) },
    })}\n`,
  )
} finally {
  for (const d of dumps) d.kill('SIGTERM')
  await net.stop()
  // NODUS_KEEP_DIR=1 keeps the nodes' data directories (their node.log) for a look after a failure.
  if (process.env.NODUS_KEEP_DIR === '1') process.stderr.write(`kept ${baseDir}\n`)
  else await rm(baseDir, { recursive: true, force: true })
}
