/**
 * Where the get's time goes on the WAN topology (bench/wan.bench.ts, issue 22): one devnet at one RTT,
 * a put through node 0, then, through the nodes named below, the manifest look-up alone and full gets
 * cold and again warm (connections and bulk sockets open, manifest cached), each with its time to
 * first byte. Linux and root; not a *.bench.ts (the harness does not run it):
 *
 *   node bench/wan-profile.ts [--rtt 80] [--mb 64] [--nodes 16] [--cc bbr] [--config '{"storage":{…}}']
 *                             [--lookups 4]   (cold manifest look-ups, one on each of nodes 4, 5, …)
 *                             [--preconnect]  (the home node dials every public node before its cold get)
 *
 * Prints one JSON line per step.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { netnsApi, netnsHosts, startDevnetOn } from '../src/cli/devnet-netns.ts'
import { withTempDir, writeRandomFile } from './lib.ts'
import { followChild, wanClient, wanPlan, withWanTopology } from './wan.bench.ts'

const { values } = parseArgs({
  options: {
    rtt: { type: 'string', default: '80' },
    mb: { type: 'string', default: '64' },
    nodes: { type: 'string', default: '16' },
    loss: { type: 'string', default: '0.005' },
    cc: { type: 'string' },
    config: { type: 'string', default: '{}' },
    lookups: { type: 'string', default: '4' },
    preconnect: { type: 'boolean', default: false },
  },
})
const plan = wanPlan(false)
const nodes = Number(values.nodes)
const bytes = Number(values.mb) * 1e6
const config = JSON.parse(values.config) as Record<string, unknown>
const say = (o: Record<string, unknown>): void => {
  // The machine's 1-minute load average after each step: other work moves these figures.
  process.stdout.write(`${JSON.stringify({ ...o, load: Number((loadavg()[0] as number).toFixed(1)) })}\n`)
}

await withTempDir('wan-profile', async (dir) => {
  const file = join(dir, 'file.bin')
  writeRandomFile(file, bytes)
  await withWanTopology(
    {
      publicHosts: nodes - 1,
      homes: 1,
      rttMs: Number(values.rtt),
      loss: Number(values.loss),
      seed: plan.seed + (randomBytes(1)[0] ?? 0),
    },
    async (topo) => {
      if (values.cc !== undefined)
        for (const h of [...topo.plan.publicHosts, ...topo.plan.homes])
          await topo.exec(h.netns, ['sysctl', '-q', '-w', `net.ipv4.tcp_congestion_control=${values.cc}`])
      const baseDir = join(dir, 'devnet')
      await mkdir(baseDir)
      const devnet = await startDevnetOn(topo, { baseDir, basePort: 0, logLevel: 'warn', config })
      try {
        await devnet.settle({ timeoutMs: 30_000 })
        const step = async (name: string, index: number, args: string[], final: string) => {
          const host =
            index < topo.plan.publicHosts.length ? topo.plan.publicHosts[index] : topo.plan.homes[0]
          const node = devnet.nodes[index]
          if (host === undefined || node === undefined) throw new Error(`no node ${index}`)
          const o = await followChild(
            wanClient(topo, host.netns, [args[0] as string, node.dataDir, ...args.slice(1)]),
            [final],
            plan.cutoffMs,
          )
          say({ step: name, node: index, ...(o.final ?? { cutOff: o.cutOff, stderr: o.stderr.slice(-300) }) })
          return o.final
        }
        const put = await step('put', 0, ['put', file, '14'], 'put')
        const cid = String(put?.cid)
        const out = join(dir, 'out.bin')
        const last = nodes - 1
        // Cold look-ups on several nodes: one sample says little on a shared machine.
        const lookups = Math.max(1, Math.min(Number(values.lookups), nodes - 6))
        for (let i = 0; i < lookups; i++)
          await step('manifest look-up, cold', 4 + i, ['manifest', cid], 'manifest')
        if (values.preconnect) {
          const net = { topology: topo, devnet, hosts: netnsHosts(topo.plan), stop: devnet.stop }
          const t0 = performance.now()
          const codes = await Promise.all(
            devnet.nodes.slice(0, last).map(async (n) => {
              const r = await netnsApi(net as never, last, 'POST', '/network/connect', {
                multiaddr: String(n.multiaddrs[0]),
              })
              return r.status
            }),
          )
          say({ step: 'preconnect', node: last, seconds: (performance.now() - t0) / 1000, codes })
        }
        await step('get, cold (behind the NAT)', last, ['get', cid, out], 'got')
        await rm(out, { force: true })
        await step('get, warm (same node again)', last, ['get', cid, out], 'got')
        await rm(out, { force: true })
        await step('get, warm (manifest cached by the look-up above)', 4, ['get', cid, out], 'got')
        await rm(out, { force: true })
        for (const n of [2, 3]) {
          await step('get, cold (public node)', n, ['get', cid, out], 'got')
          await rm(out, { force: true })
        }
      } finally {
        await devnet.stop()
      }
    },
  )
})
