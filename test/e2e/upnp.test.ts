import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { netnsApi, startNetnsDevnet } from '../../src/cli/devnet-netns.ts'
import { type PeerRow, peersOf } from '../../src/cli/netns-nodes.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { ExecFileRunner, listNetns, netnsUnavailableReason } from '../../src/netns/index.ts'
import { rootState } from '../utils/netns-root.ts'
import { waitFor } from '../utils/wait.ts'

// UPnP (issue 22: "UPnP is offered, off by default"), on real network namespaces: 2 public nodes and
// one home behind a symmetric NAT (which hole punching cannot pass) whose router runs a UPnP IGD
// (miniupnpd). The home node has `net.upnp` on (devnet.ts turns it on behind such a router): it maps
// its port on the router, AutoNAT confirms the mapped address, and public nodes dial it directly.
// test/e2e/nat.test.ts has the same symmetric NAT without UPnP staying relayed. Needs Linux, root,
// ip/iptables/ethtool, miniupnpd (miniupnpd-iptables), iptables-legacy and build/delay-bridge; skips
// with the reason otherwise (CI installs miniupnpd and runs it as root).

const why = await netnsUnavailableReason({ upnp: true })
const HOME = 2

interface Addr {
  addr: string
  public: boolean
  relayed: boolean
}

test('behind a symmetric NAT with a UPnP router: the port is mapped, AutoNAT confirms it, peers dial in directly', {
  skip: why === undefined ? false : `network namespaces with UPnP unavailable: ${why}`,
  timeout: 240_000,
}, async (t) => {
  const logger = silentLogger()
  const runner = new ExecFileRunner({ logger })
  const before = await rootState(runner)
  const runId = `upnp${randomBytes(2).toString('hex')}`
  const baseDir = await mkdtemp(join(tmpdir(), 'nodus-upnp-'))
  const net = await startNetnsDevnet(
    { publicHosts: 2, homes: 1, symmetric: 1, upnp: 1, rttMs: 20 },
    { logger, runId, baseDir, basePort: 0, logLevel: 'warn' },
  )
  let stopped = false
  t.after(async () => {
    if (!stopped) await net.stop()
    await rm(baseDir, { recursive: true, force: true })
  })
  const home = net.hosts[HOME]
  assert.ok(home !== undefined && home.kind === 'symmetric' && home.upnp)
  const router = home.netns.replace(/-h1$/, '-r1')
  const mapped = `/ip4/${home.seenAs}/tcp/4001`

  await t.test('the node maps its port on the router and AutoNAT confirms it: public', async () => {
    let last: unknown
    await waitFor(
      async () => {
        const r = await netnsApi(net, HOME, 'GET', '/network/reachability')
        last = r.body
        const body = r.body as { reachability?: string; addresses?: Addr[] }
        return (
          body.reachability === 'public' &&
          (body.addresses ?? []).some((a) => a.public && !a.relayed && a.addr.startsWith(`${mapped}/`))
        )
      },
      { timeoutMs: 90_000, intervalMs: 500, what: `node ${HOME} public at ${mapped}` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last answer ${JSON.stringify(last)}`)
    })
    // The mapping is the IGD's: a DNAT rule of miniupnpd's chain on the router, to the host.
    const { stdout } = await net.topology.exec(router, ['iptables-legacy-save', '-t', 'nat'])
    assert.match(stdout, /-A MINIUPNPD -p tcp -m tcp --dport 4001 -j DNAT/)
  })

  await t.test('a public node dials the home node directly at the mapped address', async () => {
    const peer = net.devnet.nodes[HOME]?.peerId
    assert.ok(peer !== undefined)
    // Node 1 hangs up on the home node and dials it at the mapped address (again if the home node's
    // own dial, from another port, got in first: libp2p then returns that connection).
    let rows: PeerRow[] = []
    await waitFor(
      async () => {
        await netnsApi(net, 1, 'POST', '/network/disconnect', { peerId: peer })
        const r = await netnsApi(net, 1, 'POST', '/network/connect', { multiaddr: `${mapped}/p2p/${peer}` })
        assert.equal(r.status, 200, JSON.stringify(r.body))
        rows = await peersOf(net, 1)
        return rows.some(
          (p) =>
            p.peerId === peer && !p.relayed && p.direction === 'outbound' && p.addr.startsWith(`${mapped}/`),
        )
      },
      { timeoutMs: 30_000, intervalMs: 500, what: `a direct connection 1 -> ${mapped}` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; node 1's connections ${JSON.stringify(rows)}`)
    })
  })

  await t.test('teardown stops the IGD and leaves no namespace, veth or rule', async () => {
    const report = await net.stop()
    stopped = true
    assert.deepEqual(report.errors, [])
    assert.ok(report.killed.length >= 1, 'the IGD was stopped with the namespaces')
    const left = (await listNetns(runner)).filter((n) => n.startsWith(`nodus-${runId}-`))
    assert.deepEqual(left, [])
    assert.deepEqual(await rootState(runner), before)
  })
})
