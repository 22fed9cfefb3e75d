/**
 * The kv database on one node against Redis in the same run.
 *
 *   node bench/kv.bench.ts [--quick]
 *
 * Writes: N string SETs of 200-byte values over 10,000 keys, signed beforehand (signing is the
 * client's cost), submitted to a node's kv engine in bursts of 1,000 (4 bursts in flight): each op
 * decoded, its signature verified in the worker pool (kv.verifyThreads = 2), authorized, logged,
 * applied and indexed in one LMDB write, durable when answered. Peer: redis-server with
 * `appendonly yes, appendfsync always` (durable per write), `redis-benchmark -t set -d 200 -c 50
 * -r 10000`: it neither verifies nor authorizes anything.
 * Reads: `GET /kv/:db/:key` of a string key through the node's HTTP API (autocannon, 10 connections,
 * pipelining 1) against `redis-benchmark -t get -c 10` (its own protocol, no HTTP).
 * The MB/s columns hold operations per second. No timing is asserted.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import autocannon from 'autocannon'
import { initNode } from '../src/cli/init.ts'
import { systemClock } from '../src/common/clock.ts'
import { silentLogger } from '../src/common/logger.ts'
import { systemRandom } from '../src/common/random.ts'
import { loadConfig } from '../src/config/config.ts'
import { VerifyPool } from '../src/crypto/index.ts'
import {
  createArgs,
  DEFAULT_OP_LIMITS,
  ed25519OpSigner,
  encodeOp,
  formatDbId,
  HlcClock,
  KvEngine,
  LmdbOrderedStore,
  type Op,
} from '../src/kv/index.ts'
import { createNode } from '../src/node/node.ts'
import { type BenchOptions, cpuMs, peerNotInstalled, type Row, runTimed, which, withTempDir } from './lib.ts'

export const description =
  'The kv database on one node against Redis in the same run. Writes: 200-byte string SETs over ' +
  '10,000 keys, signed beforehand, submitted in bursts of 1,000 (4 in flight); each verified in the ' +
  'worker pool, authorized, logged, applied and indexed in one durable LMDB write. Peer: redis-server ' +
  '(appendfsync always) with redis-benchmark, 50 clients. Reads: GET /kv/:db/:key over HTTP ' +
  '(autocannon, 10 connections) against redis-benchmark GET, 10 clients. The MB/s columns hold ' +
  'operations per second; ratio = ours ÷ Redis.'

const VALUE = 'v'.repeat(200)

export async function signedOps(n: number): Promise<{ db: string; ops: Op[] }> {
  const owner = (await generateKeyPair('Ed25519')) as Ed25519PrivateKey
  const signer = ed25519OpSigner(owner)
  const db = formatDbId('bench', owner.publicKey.raw)
  const hlc = new HlcClock({ clock: systemClock }, { maxFutureSkewMs: 60_000 })
  const ops: Op[] = [
    await encodeOp({ db, key: '', type: 'db', op: 'create', args: createArgs(), hlc: hlc.now() }, signer),
  ]
  for (let i = 0; i < n; i++)
    ops.push(
      await encodeOp(
        { db, key: `k${i % 10_000}`, type: 'string', op: 'set', args: [VALUE], hlc: hlc.now() },
        signer,
      ),
    )
  return { db, ops }
}

/** Ops/s of the engine on LMDB for `ops` (the create first). */
export async function engineWrites(
  dir: string,
  ops: Op[],
): Promise<{ opsPerSec: number; cpuUsPerOp: number }> {
  const store = LmdbOrderedStore.open({ path: join(dir, 'kv') })
  const pool = new VerifyPool({ threads: 2, maxBatch: 64, maxQueued: 100_000 })
  const engine = new KvEngine(
    {
      store,
      clock: systemClock,
      hlc: new HlcClock({ clock: systemClock }, { maxFutureSkewMs: 60_000 }),
      random: systemRandom,
      verify: (c, o) => pool.verify(c, o),
    },
    { limits: DEFAULT_OP_LIMITS },
  )
  try {
    await engine.submit([(ops[0] as Op).bytes], 'local')
    const rest = ops.slice(1).map((o) => o.bytes)
    const bursts: Uint8Array[][] = []
    for (let i = 0; i < rest.length; i += 1000) bursts.push(rest.slice(i, i + 1000))
    const c0 = cpuMs()
    const t0 = performance.now()
    let next = 0
    let applied = 0
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < bursts.length) {
          const b = bursts[next++] as Uint8Array[]
          for (const r of await engine.submit(b, 'local')) if (r.status === 'applied') applied++
        }
      }),
    )
    const ms = performance.now() - t0
    if (applied !== rest.length) throw new Error(`only ${applied} of ${rest.length} writes applied`)
    return {
      opsPerSec: Math.round((applied / ms) * 1000),
      cpuUsPerOp: Math.round(((cpuMs() - c0) * 1000) / applied),
    }
  } finally {
    await pool.close()
    await store.close()
  }
}

/** redis-benchmark's requests/s for `test` against a redis-server it starts in `dir`, or why not. */
async function redis(dir: string, test: 'set' | 'get', n: number, clients: number): Promise<number | string> {
  if (which('redis-server') === undefined || which('redis-benchmark') === undefined)
    return peerNotInstalled('redis-server')
  const port = 20_000 + Math.floor(Math.random() * 20_000)
  const server = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
    ],
    { stdio: 'ignore' },
  )
  try {
    for (let i = 0; i < 50; i++) {
      if (runTimed('redis-cli', ['-p', String(port), 'ping'], 2000).stdout.includes('PONG')) break
      await new Promise((r) => setTimeout(r, 100))
    }
    const args = [
      '-p',
      String(port),
      '-t',
      test,
      '-n',
      String(n),
      '-d',
      '200',
      '-c',
      String(clients),
      '-r',
      '10000',
      '--csv',
    ]
    if (test === 'get')
      runTimed('redis-benchmark', [
        '-p',
        String(port),
        '-t',
        'set',
        '-n',
        '20000',
        '-d',
        '200',
        '-r',
        '10000',
        '-q',
      ])
    const out = runTimed('redis-benchmark', args).stdout
    const line = out.split('\n').find((l) => l.toLowerCase().includes(`"${test}"`))
    const rps = Number(line?.split(',')[1]?.replaceAll('"', ''))
    return Number.isFinite(rps) ? Math.round(rps) : `redis-benchmark gave no figure: ${out.slice(0, 200)}`
  } finally {
    server.kill('SIGKILL')
  }
}

async function httpReads(
  dir: string,
  seconds: number,
): Promise<{ rps: number; p99Ms: number; errors: number }> {
  await initNode(dir, {})
  const node = await createNode(await loadConfig(dir), { logger: silentLogger() })
  await node.start()
  try {
    const owner = node.identity.ed25519
    const db = formatDbId('reads', owner.publicKey.raw)
    const hlc = new HlcClock({ clock: systemClock }, { maxFutureSkewMs: 60_000 })
    const signer = ed25519OpSigner(owner)
    const create = await encodeOp(
      { db, key: '', type: 'db', op: 'create', args: createArgs(), hlc: hlc.now() },
      signer,
    )
    const set = await encodeOp(
      { db, key: 'hot', type: 'string', op: 'set', args: [VALUE], hlc: hlc.now() },
      signer,
    )
    await node.areas.kv.submit([create.bytes, set.bytes])
    const r = await autocannon({
      url: `${node.info().api}/kv/${db}/hot`,
      connections: 10,
      duration: seconds,
      pipelining: 1,
    })
    return { rps: Math.round(r.requests.average), p99Ms: r.latency.p99, errors: r.errors + r.non2xx }
  } finally {
    await node.stop()
  }
}

export async function run(options: BenchOptions): Promise<(Row & { note: string })[]> {
  const n = options.quick ? 5_000 : 40_000
  const { ops } = await signedOps(n)
  const writes = await withTempDir('kv', (dir) => engineWrites(dir, ops))
  const redisSet = await withTempDir('kv-redis', (dir) => redis(dir, 'set', n, 50))
  const reads = await withTempDir('kv-reads', (dir) => httpReads(dir, options.quick ? 2 : 10))
  const redisGet = await withTempDir('kv-redis', (dir) =>
    redis(dir, 'get', options.quick ? 20_000 : 200_000, 10),
  )
  const peer = (x: number | string): { peer: string; peer_MBps: number | null } =>
    typeof x === 'number'
      ? { peer: 'redis-server 7 (appendfsync always) + redis-benchmark', peer_MBps: x }
      : { peer: x, peer_MBps: null }
  return [
    {
      name: `signed, verified, durable writes/s on one node, 200-byte values (${n} ops)`,
      ours_MBps: writes.opsPerSec,
      ...peer(redisSet),
      ratio: typeof redisSet === 'number' ? Math.round((writes.opsPerSec / redisSet) * 100) / 100 : null,
      note: `ours ${writes.opsPerSec} ops/s, ${writes.cpuUsPerOp} CPU µs per op (this process: the main thread and the 2 verification workers); goal ≥ 10,000/s`,
    },
    {
      name: 'GET /kv/:db/:key reads/s through HTTP (10 connections)',
      ours_MBps: reads.rps,
      ...peer(redisGet),
      ratio: typeof redisGet === 'number' ? Math.round((reads.rps / redisGet) * 100) / 100 : null,
      note: `ours ${reads.rps} req/s, p99 ${reads.p99Ms} ms, ${reads.errors} errors; goal ≥ 50,000/s, p99 ≤ 5 ms`,
    },
  ]
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = await run({ quick: process.argv.includes('--quick') })
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`)
}
