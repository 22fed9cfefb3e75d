/**
 * `nodus demo --scenario reach` (src/cli/demo-reach.ts) end to end, on real network namespaces: 2
 * public nodes, 3 homes behind cone NATs (the last finds its relay through the DHT), 1 behind a
 * symmetric NAT, 80 ms RTT and 0.5 % loss; a 2 MB file put behind one NAT, 2 holders killed, got back
 * behind another. Checks the fields of its one JSON line. Needs Linux, root, ip/iptables/ethtool and
 * build/delay-bridge; skips with the reason otherwise. Without root the command must fail at once with
 * NETNS_UNAVAILABLE saying why (checked as the nobody user when the test runs as root).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { checkReachOptions, REACH_DEMO_DEFAULTS, type ReachDemoOptions } from '../../src/cli/demo-reach.ts'
import { devnetNodeConfig } from '../../src/cli/devnet.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { ExecFileRunner, netnsUnavailableReason } from '../../src/netns/index.ts'
import { CLI, runCli } from '../utils/run-cli.ts'

const why = await netnsUnavailableReason()
const isRoot = process.getuid?.() === 0

/** Runs the CLI as `uid` (root drops to it); resolves with the exit code and output. */
function runCliAs(uid: number, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], {
      uid,
      gid: uid,
      env: { ...process.env, HOME: tmpdir() },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    p.once('error', reject)
    p.once('exit', (code) => resolve({ code, stderr }))
  })
}

/** Whether uid 65534 can run Node and read the CLI's sources (src/cli/main.ts). */
function readableByNobody(): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['-e', `require('node:fs').accessSync(${JSON.stringify(CLI)})`], {
      uid: 65_534,
      gid: 65_534,
      stdio: 'ignore',
    })
    p.once('error', () => resolve(false))
    p.once('exit', (code) => resolve(code === 0))
  })
}

test('Devnet nodeNet: its keys go over the relay keys a namespace devnet sets', () => {
  const netns = { hostOf: () => ({ netns: 'n', address: '10.0.3.2' }), publicNodes: 2 }
  const boots = ['/ip4/11.18.0.10/tcp/4001/p2p/A', '/ip4/11.18.0.11/tcp/4001/p2p/B']
  const plain = devnetNodeConfig({ basePort: 0, logLevel: 'info', netns }, 4, boots).net as Record<
    string,
    unknown
  >
  assert.deepEqual(plain.relays, [boots[0]])
  const seeker = devnetNodeConfig(
    {
      basePort: 0,
      logLevel: 'info',
      netns,
      nodeNet: (i, b) => (i === 4 ? { relays: [], discoverRelays: 1, bootstrap: b.slice(1) } : {}),
    },
    4,
    boots,
  ).net as Record<string, unknown>
  assert.deepEqual(seeker.relays, [])
  assert.equal(seeker.discoverRelays, 1)
  assert.deepEqual(seeker.bootstrap, [boots[1]])
})

test('checkReachOptions: refuses more kills than m, or than the nodes that may be killed, and a missing file', async () => {
  const o: ReachDemoOptions = {
    ...REACH_DEMO_DEFAULTS,
    keep: false,
    logLevel: 'warn',
    logger: silentLogger(),
    log: () => {},
  }
  assert.deepEqual(await checkReachOptions(o), { k: 2, m: 2 })
  await assert.rejects(checkReachOptions({ ...o, kill: 3 }), { code: 'INVALID_ARGUMENT', message: /m = 2/ })
  await assert.rejects(checkReachOptions({ ...o, kill: 3, config: { storage: { k: 2, m: 3 } } }), {
    code: 'INVALID_ARGUMENT',
    message: /only 2 nodes may be killed/,
  })
  await assert.rejects(checkReachOptions({ ...o, cone: 1 }), { code: 'INVALID_ARGUMENT' })
  await assert.rejects(checkReachOptions({ ...o, file: join(tmpdir(), 'no-such-file-here') }), {
    code: 'FILE_NOT_FOUND',
  })
})

test('demo --scenario reach without root fails at once with NETNS_UNAVAILABLE and the reason', {
  timeout: 60_000,
}, async (t) => {
  // As root, the CLI runs as nobody (uid 65534), which needs the checkout and the Node binary readable
  // by others: a checkout in a private directory (mode 700) is not, and the case is skipped, saying so.
  if (isRoot && !(await readableByNobody())) {
    t.skip('cannot run the CLI as uid 65534 here: the checkout or the Node binary is not readable by others')
    return
  }
  const r = isRoot
    ? await runCliAs(65_534, ['demo', '--scenario', 'reach', '--json'])
    : await runCli(['demo', '--scenario', 'reach', '--json'])
  assert.equal(r.code, 1)
  // The error, as JSON with --json, on stderr.
  const err = JSON.parse(r.stderr.trim().split('\n').pop() ?? '{}') as { code?: string; message?: string }
  assert.equal(err.code, 'NETNS_UNAVAILABLE')
  if (isRoot || process.platform === 'linux')
    assert.match(String(err.message), /root|Linux|missing|delay-bridge/)
})

test('demo --scenario reach: reachability, relay found through the DHT, hole punches, put/get across NATs, nothing left', {
  skip: why === undefined ? false : `network namespaces unavailable: ${why}`,
  timeout: 200_000,
}, async () => {
  const base = await mkdtemp(join(tmpdir(), 'nodus-reach-test-'))
  try {
    const r = await runCli(
      ['demo', '--scenario', 'reach', '--size', '2000000', '--base-dir', base, '--log-level', 'warn'],
      180_000,
    )
    const last = r.stdout.trim().split('\n').pop() ?? ''
    assert.equal(r.code, 0, `demo failed:\n${r.stderr.slice(-3000)}\n${last}`)
    const res = JSON.parse(last) as Record<string, unknown> & {
      nodes: { index: number; kind: string; reachability: string; relays: number[]; relaySource: string }[]
      holePunches: { a: number; b: number; direct: boolean; ms: number | null }[]
      connections: { direct: number; relayed: number }
      discoveredRelay: { node: number; relays: number[] } | null
      cleanup: { ok: boolean; namespacesLeft: string[]; linksLeft: string[]; rulesLeft: string[] }
    }
    assert.equal(res.ok, true, JSON.stringify(res.failures))
    assert.equal(res.scenario, 'reach')
    assert.equal(res.rttMs, 80)
    assert.equal(res.loss, 0.005)
    assert.deepEqual(
      res.nodes.map((n) => [n.kind, n.reachability]),
      [
        ['public', 'public'],
        ['public', 'public'],
        ['cone', 'relayed'],
        ['cone', 'relayed'],
        ['cone', 'relayed'],
        ['symmetric', 'relayed'],
      ],
    )
    // Node 4 had no relay configured and bootstrapped to node 1, which serves none: it found node 0.
    assert.deepEqual(res.discoveredRelay, { node: 4, relays: [0] })
    assert.equal(res.nodes[4]?.relaySource, 'discovered')
    assert.deepEqual(
      res.holePunches.map((p) => [p.a, p.b, p.direct]),
      [
        [2, 3, true],
        [2, 4, true],
        [3, 4, true],
      ],
    )
    assert.equal(res.symmetricRelayed, true)
    assert.ok(res.connections.direct > 0 && res.connections.relayed > 0, JSON.stringify(res.connections))
    assert.equal(res.bytes, 2_000_000)
    assert.match(String(res.cid), /^b/)
    assert.equal((res.killed as number[]).length, 2)
    assert.equal(res.sha256Match, true)
    assert.ok((res.putMBps as number) > 0 && (res.getMBps as number) > 0)
    assert.deepEqual(res.cleanup, { ok: true, namespacesLeft: [], linksLeft: [], rulesLeft: [], errors: [] })
    assert.deepEqual(await readdir(base), [], 'the run directory is removed')
  } finally {
    await rm(base, { recursive: true, force: true })
  }
})

for (const [when, line] of [
  ['while its nodes start', '] node 0 up:'],
  ['once its nodes run', '[demo] reachability:'],
] as const)
  test(`demo --scenario reach interrupted (SIGINT) ${when}: exits 130 and removes its namespaces`, {
    skip: why === undefined ? false : `network namespaces unavailable: ${why}`,
    timeout: 120_000,
  }, async () => {
    const base = await mkdtemp(join(tmpdir(), 'nodus-reach-int-'))
    try {
      const p = spawn(
        process.execPath,
        [CLI, 'demo', '--scenario', 'reach', '--base-dir', base, '--log-level', 'warn'],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      )
      let stderr = ''
      let runId = ''
      const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)))
      await new Promise<void>((resolve, reject) => {
        p.stderr.on('data', (d: Buffer) => {
          stderr += d.toString()
          runId ||= /\(run (\w+),/.exec(stderr)?.[1] ?? ''
          if (stderr.includes(line)) resolve()
        })
        void exited.then(() =>
          reject(new Error(`the demo ended before it was interrupted:\n${stderr.slice(-2000)}`)),
        )
      })
      p.kill('SIGINT')
      assert.equal(await exited, 130, stderr.slice(-2000))
      assert.match(runId, /^rch/)
      const left = (await new ExecFileRunner({ logger: silentLogger() }).run(['ip', 'netns', 'list'])).stdout
      assert.ok(!left.includes(`nodus-${runId}-`), `namespaces of run ${runId} left:\n${left}`)
      assert.deepEqual(await readdir(base), [], 'the run directory is removed')
    } finally {
      await rm(base, { recursive: true, force: true })
    }
  })
