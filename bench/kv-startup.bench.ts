/**
 * Start-up of a node holding 1,000,000 kv ops, already in sync (issue 20: ≤ 1 s; the in-sync check
 * 1 round trip, < 1 KB).
 *
 *   node bench/kv-startup.bench.ts [--quick]
 *
 * The store: one database, N string SETs of 200-byte values to distinct keys, signed here and applied
 * through the kv engine (KvEngine.submit on LMDB: op log, authorization, typed state, reconciliation
 * index) in submissions of 10,000, the database marked hosted; built once and kept in
 * node_modules/.cache/nodus-bench/kv-startup-N (about 6 minutes for 1M on 2 idle cores). The signatures
 * are not verified while building: this process has just made them (the engine's `verify` is the
 * only thing skipped; every op is decoded, authorized and applied as a peer's would be).
 * Two nodes get a copy each. Node A starts. Then node B is timed, in this process: `createNode` +
 * `start()` (the LMDB store opened, hosted databases listened to, every area up), then dialling A and
 * `kv.sync(db)` until a session reports (its round trips and reconciliation bytes, 0 ops fetched).
 * Peer row: the same node start-up with an empty kv store, so the figure shows what the ops cost.
 * MB/s columns hold start-ups per second (1000 ÷ start ms, without the sync); ratio = empty ÷ N
 * (1: the ops cost nothing at start-up).
 */
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { initNode } from '../src/cli/init.ts'
import { systemClock } from '../src/common/clock.ts'
import { silentLogger } from '../src/common/logger.ts'
import { systemRandom } from '../src/common/random.ts'
import { loadConfig } from '../src/config/config.ts'
import { HOSTED_PREFIX } from '../src/kv/area.ts'
import {
  createArgs,
  DEFAULT_OP_LIMITS,
  ed25519OpSigner,
  encodeOp,
  formatDbId,
  HlcClock,
  KvEngine,
  LmdbOrderedStore,
} from '../src/kv/index.ts'
import { createNode, type NodusNode } from '../src/node/node.ts'
import { type BenchOptions, type Row, sig, withTempDir } from './lib.ts'

export const description =
  'Start-up of a node whose kv store holds N ops (one database, already in sync with a running peer): ' +
  'createNode + start, then a sync with the peer (round trips, bytes). Peer row: the same start-up ' +
  'with an empty kv store. MB/s columns: start-ups per second (1000 ÷ start ms); ratio = empty ÷ N ' +
  '(1: the ops cost nothing at start-up). Goal (issue 20): ≤ 1 s; in sync: 1 round trip, < 1 KB.'

/** Bump when the store's format changes, so a cached store is rebuilt. */
const FIXTURE_VERSION = 1
const CHUNK = 10_000
const utf8 = new TextEncoder()

interface Fixture {
  version: number
  n: number
  db: string
  /** The LMDB file (the node's `<dataDir>/kv`). */
  path: string
  buildSeconds?: number
}

/** The cached store of `n` ops, built when missing. */
async function fixture(n: number): Promise<Fixture> {
  const dir = fileURLToPath(new URL(`../node_modules/.cache/nodus-bench/kv-startup-${n}/`, import.meta.url))
  const metaPath = join(dir, 'meta.json')
  try {
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as Fixture
    if (meta.version === FIXTURE_VERSION && meta.n === n) return { ...meta, path: join(dir, 'kv') }
  } catch {
    // not built yet
  }
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  const t0 = performance.now()
  const owner = (await generateKeyPair('Ed25519')) as Ed25519PrivateKey
  const signer = ed25519OpSigner(owner)
  const db = formatDbId('startup', owner.publicKey.raw)
  const hlc = new HlcClock({ clock: systemClock }, { maxFutureSkewMs: 60_000 })
  const store = LmdbOrderedStore.open({ path: join(dir, 'kv') })
  const engine = new KvEngine(
    {
      store,
      clock: systemClock,
      hlc: new HlcClock({ clock: systemClock }, { maxFutureSkewMs: 60_000 }),
      random: systemRandom,
      // Signed by this process a moment ago: verification is skipped while building, nothing else.
      verify: async () => true,
    },
    { limits: DEFAULT_OP_LIMITS },
  )
  const value = 'v'.repeat(200)
  try {
    const create = await encodeOp(
      { db, key: '', type: 'db', op: 'create', args: createArgs(), hlc: hlc.now() },
      signer,
    )
    await engine.submit([create.bytes], 'local')
    for (let i = 0; i < n; ) {
      const chunk: Uint8Array[] = []
      for (let j = 0; j < CHUNK && i < n; j++, i++)
        chunk.push(
          (
            await encodeOp(
              { db, key: `k${i}`, type: 'string', op: 'set', args: [value], hlc: hlc.now() },
              signer,
            )
          ).bytes,
        )
      const results = await engine.submit(chunk, 'local')
      const bad = results.find((r) => r.status !== 'applied')
      if (bad !== undefined) throw new Error(`building the store: an op was ${JSON.stringify(bad)}`)
      if (i % 100_000 === 0) process.stderr.write(`[kv-startup] ${i} of ${n} ops in the store\n`)
    }
    await store.write((w) => w.put(Uint8Array.from([HOSTED_PREFIX, ...utf8.encode(db)]), new Uint8Array(0)))
  } finally {
    await store.close()
  }
  const meta: Fixture = {
    version: FIXTURE_VERSION,
    n,
    db,
    path: join(dir, 'kv'),
    buildSeconds: (performance.now() - t0) / 1000,
  }
  await writeFile(metaPath, `${JSON.stringify(meta)}\n`)
  return meta
}

interface Startup {
  startMs: number
  syncMs: number
  rounds: number
  reconBytes: number
  fetched: number
  ops: number
  /** kv.sync calls until one found a partner, and how long the last (the session) took, ms. */
  attempts?: number
  lastCallMs?: number
}

const CONFIG = { kv: { verifyThreads: 1 } }

/**
 * Node `dir` (its kv store already in place) from createNode to started, then (with `db`) to a sync
 * report with `peer`.
 */
async function timedStart(dir: string, peer: NodusNode, db?: string): Promise<Startup> {
  const t0 = performance.now()
  const node = await createNode(await loadConfig(dir), { logger: silentLogger() })
  await node.start()
  const startMs = performance.now() - t0
  try {
    if (db === undefined) return { startMs, syncMs: 0, rounds: 0, reconBytes: 0, fetched: 0, ops: 0 }
    await node.libp2p.dial(peer.libp2p.getMultiaddrs())
    // Partners come from the topic's peers or a DHT lookup: retried until one answers.
    let attempts = 0
    for (;;) {
      const c0 = performance.now()
      attempts++
      const [r] = await node.areas.kv.sync(db, { peers: 1 })
      if (r !== undefined) {
        const lastCallMs = performance.now() - c0
        const status = await node.areas.kv.status(db)
        return {
          startMs,
          syncMs: performance.now() - t0 - startMs,
          rounds: r.rounds,
          reconBytes: r.reconBytes,
          fetched: r.fetched,
          ops: status.ops,
          attempts,
          lastCallMs,
        }
      }
      if (performance.now() - t0 > 120_000) throw new Error('no sync partner within 120 s')
      await new Promise((res) => setTimeout(res, 20))
    }
  } finally {
    await node.stop()
  }
}

async function startup(fx: Fixture): Promise<{ full: Startup; empty: Startup }> {
  return await withTempDir('kv-startup', async (dir) => {
    const dirs = ['peer', 'full', 'empty'].map((d) => join(dir, d)) as [string, string, string]
    for (const d of dirs) await initNode(d, CONFIG)
    await cp(fx.path, join(dirs[0], 'kv'), { recursive: true })
    await cp(fx.path, join(dirs[1], 'kv'), { recursive: true })
    const peer = await createNode(await loadConfig(dirs[0]), { logger: silentLogger() })
    await peer.start()
    try {
      // Warm up this process's code paths (module loading, JIT) with the empty node first.
      await timedStart(dirs[2], peer)
      const empty = await timedStart(dirs[2], peer)
      const full = await timedStart(dirs[1], peer, fx.db)
      return { full, empty }
    } finally {
      await peer.stop()
    }
  })
}

export async function run(options: BenchOptions): Promise<Row[]> {
  const n = options.quick ? 100_000 : 1_000_000
  const fx = await fixture(n)
  const load0 = loadavg()[0] ?? 0
  const { full, empty } = await startup(fx)
  const perSec = (ms: number): number => sig(1000 / ms, 3)
  const fmt = (s: Startup): string =>
    s.ops === 0
      ? `start ${sig(s.startMs, 3)} ms`
      : `start ${sig(s.startMs, 3)} ms, then dial + sync ${sig(s.syncMs, 3)} ms (${s.attempts} kv.sync call(s) until a partner was found; the session itself ${sig(s.lastCallMs ?? 0, 3)} ms, ${s.rounds} round trip${s.rounds === 1 ? '' : 's'}, ${s.reconBytes} B, ${s.fetched} fetched; holds ${s.ops} ops): ${sig(s.startMs + s.syncMs, 3)} ms in all`
  return [
    {
      name: `start-up of a node holding ${n.toLocaleString('en')} kv ops, in sync with a running peer`,
      ours_MBps: perSec(full.startMs),
      peer: 'the same node start-up with an empty kv store',
      peer_MBps: perSec(empty.startMs),
      ratio: Math.round((empty.startMs / full.startMs) * 100) / 100,
      note:
        `${n} ops: ${fmt(full)}; empty: ${fmt(empty)}; goal ≤ 1 s, 1 round trip, < 1 KB; in-process ` +
        `(modules loaded); load ${load0.toFixed(1)}–${(loadavg()[0] ?? 0).toFixed(1)}` +
        (fx.buildSeconds === undefined ? '' : `; store built in ${sig(fx.buildSeconds, 3)} s`),
    },
  ]
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = await run({ quick: process.argv.includes('--quick') })
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`)
}
