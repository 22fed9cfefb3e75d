/**
 * Signature verification for kv operations: inline on the event loop against the worker pool
 * (src/crypto/verify-pool.ts, piscina) with 1 and 2 threads and several batch sizes, on this machine.
 *
 *   node bench/verify-pool.bench.ts [--quick]
 *
 * Workload: N checks (Ed25519 over 350-byte messages, as a kv operation's signing bytes, from 100
 * writer keys; 1 % with a wrong signature) arrive in chunks of 64, one chunk per event-loop turn (as
 * operations arrive in gossip batches). Inline, each chunk is verified before the turn ends; through
 * the pool, each check is submitted (`verify`) and answered later. Throughput is N over the wall time
 * until every answer is in; event-loop delay (perf_hooks monitorEventLoopDelay, 1 ms resolution) is
 * the p99 over the run: how long other work (HTTP requests, gossip) would wait behind verification.
 * Every contender must give the same answers (the count of valid signatures) before a figure is
 * reported.
 *
 * The peer is node:crypto `verify` inline, building the key object per check (what
 * src/crypto/hybrid.ts `verifyEd25519` does with raw key bytes). Rows: `{ name, peer, ratio, note,
 * ours_opsPerSec, peer_opsPerSec, ours_eldP99Ms, peer_eldP99Ms, ours_cpuUsPerOp }`; ratio = ours
 * ops/s ÷ peer ops/s. No timing is asserted.
 */
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import {
  hybridPublicKey,
  identityFromSeeds,
  type SignatureCheck,
  SignatureVerifier,
  signHybrid,
  VerifyPool,
  verifyHybrid,
} from '../src/crypto/index.ts'
import { type BenchOptions, cpuMs, fillPseudoRandom, median, sig } from './lib.ts'

export const description =
  'Signature verification of kv operations (Ed25519, 350-byte signing bytes, 100 writer keys; hybrid ' +
  'Ed25519 + ML-DSA-65 in the last rows), arriving 64 per event-loop turn: inline on the event loop ' +
  'against the piscina worker pool (src/crypto/verify-pool.ts) with 1 and 2 threads and batch sizes ' +
  '1 to 256, on this 2-core machine. Peer: node:crypto verify inline, key object built per check. ' +
  'ratio = ours verifications/s ÷ peer; the note gives the p99 event-loop delay (what other work waits) ' +
  'and CPU µs per verification (all threads).'

export interface VerifyRow {
  name: string
  peer: string
  peer_MBps: null
  ratio: number | null
  note: string
  ours_opsPerSec: number
  peer_opsPerSec: number | null
  ours_eldP99Ms: number
  peer_eldP99Ms: number | null
  ours_cpuUsPerOp: number
}

const CHUNK = 64
const MESSAGE_BYTES = 350
const KEYS = 100

interface Result {
  opsPerSec: number
  eldP99Ms: number
  cpuUsPerOp: number
  valid: number
}

type Verify = (checks: readonly SignatureCheck[]) => Promise<number>

/** Deliver `checks` 64 per turn to `verifyChunk`; wall time until every answer, and event-loop delay. */
async function runOnce(checks: readonly SignatureCheck[], verifyChunk: Verify): Promise<Result> {
  const eld = monitorEventLoopDelay({ resolution: 1 })
  const c0 = cpuMs()
  const t0 = performance.now()
  eld.enable()
  const pending: Promise<number>[] = []
  for (let i = 0; i < checks.length; i += CHUNK) {
    await new Promise<void>((r) => setImmediate(r))
    pending.push(verifyChunk(checks.slice(i, i + CHUNK)))
  }
  const valid = (await Promise.all(pending)).reduce((a, b) => a + b, 0)
  const wall = performance.now() - t0
  eld.disable()
  return {
    opsPerSec: checks.length / (wall / 1000),
    eldP99Ms: eld.percentile(99) / 1e6,
    cpuUsPerOp: ((cpuMs() - c0) * 1000) / checks.length,
    valid,
  }
}

/** A way to verify: `open` (untimed) gives the chunk verifier, `close` ends it. */
interface Contender {
  name: string
  open(): Promise<Verify>
  close?(): Promise<void>
}

/**
 * Median figures of each contender over `rounds` runs, rounds alternating between contenders so that
 * background load hits all alike (the event-loop delay is the median-throughput run's).
 */
async function rates(
  checks: readonly SignatureCheck[],
  contenders: readonly Contender[],
  rounds: number,
): Promise<Result[]> {
  const runs: Result[][] = contenders.map(() => [])
  for (let r = 0; r < rounds; r++) {
    for (const [i, c] of contenders.entries()) {
      const v = await c.open()
      try {
        runs[i]?.push(await runOnce(checks, v))
      } finally {
        await c.close?.()
      }
    }
  }
  return runs.map((rs, i) => {
    const mid = rs.find((x) => x.opsPerSec === median(rs.map((y) => y.opsPerSec))) as Result
    if (rs.some((x) => x.valid !== mid.valid)) throw new Error(`${contenders[i]?.name}: runs disagree`)
    return {
      opsPerSec: sig(mid.opsPerSec),
      eldP99Ms: sig(mid.eldP99Ms, 2),
      cpuUsPerOp: sig(median(rs.map((x) => x.cpuUsPerOp))),
      valid: mid.valid,
    }
  })
}

/** A pool contender: a fresh pool per run, its workers started before the timed part. */
function poolContender(
  name: string,
  threads: number,
  maxBatch: number,
  warm: readonly SignatureCheck[],
): Contender {
  let pool: VerifyPool | undefined
  return {
    name,
    async open() {
      const p = new VerifyPool({ threads, maxBatch, maxQueued: 1 << 20 })
      pool = p
      await p.verifyMany(warm.slice(0, 64 * threads))
      return viaPool(p)
    },
    async close() {
      await pool?.close()
    },
  }
}

const inlineSync =
  (f: (c: SignatureCheck) => boolean): Verify =>
  async (chunk) =>
    chunk.reduce((n, c) => n + (f(c) ? 1 : 0), 0)

const viaPool =
  (pool: VerifyPool): Verify =>
  async (chunk) =>
    (await Promise.all(chunk.map((c) => pool.verify(c)))).filter(Boolean).length

/** node:crypto verify with a key object built per check: the peer. */
function nodeVerify(c: SignatureCheck): boolean {
  if (c.scheme !== 'ed25519') return false
  const key = createPublicKey({
    key: Buffer.from(c.publicKey),
    format: 'raw-public',
    asymmetricKeyType: 'ed25519',
  })
  return verify(null, c.message, key, c.signature)
}

/** `n` Ed25519 checks from {@link KEYS} keys, every 100th with a wrong signature. */
function ed25519Checks(n: number): SignatureCheck[] {
  const keys = Array.from({ length: KEYS }, () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519')
    return { privateKey, raw: new Uint8Array(publicKey.export({ format: 'raw-public' })) }
  })
  return Array.from({ length: n }, (_, i) => {
    const k = keys[i % KEYS] as (typeof keys)[number]
    const message = new Uint8Array(MESSAGE_BYTES)
    fillPseudoRandom(message, i + 1)
    const signature = new Uint8Array(sign(null, message, k.privateKey))
    if (i % 100 === 99) signature[0] = (signature[0] as number) ^ 1
    return { scheme: 'ed25519', publicKey: k.raw, message, signature }
  })
}

async function hybridChecks(n: number): Promise<SignatureCheck[]> {
  const id = await identityFromSeeds(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2))
  const publicKey = hybridPublicKey(id)
  const out: SignatureCheck[] = []
  for (let i = 0; i < n; i++) {
    const message = new Uint8Array(MESSAGE_BYTES)
    fillPseudoRandom(message, i + 1)
    out.push({ scheme: 'hybrid', publicKey, message, signature: await signHybrid(id, message) })
  }
  return out
}

function row(name: string, ours: Result, peerName: string, peer: Result): VerifyRow {
  return {
    name,
    peer: peerName,
    peer_MBps: null,
    ratio: Math.round((ours.opsPerSec / peer.opsPerSec) * 100) / 100,
    note:
      `ours ${ours.opsPerSec}/s, event-loop delay p99 ${ours.eldP99Ms} ms, ${ours.cpuUsPerOp} µs CPU/op; ` +
      `peer ${peer.opsPerSec}/s, p99 ${peer.eldP99Ms} ms`,
    ours_opsPerSec: ours.opsPerSec,
    peer_opsPerSec: peer.opsPerSec,
    ours_eldP99Ms: ours.eldP99Ms,
    peer_eldP99Ms: peer.eldP99Ms,
    ours_cpuUsPerOp: ours.cpuUsPerOp,
  }
}

/** Runs the benchmark and returns its rows. Throws when contenders disagree on which signatures verify. */
export async function run(options: BenchOptions): Promise<VerifyRow[]> {
  const n = options.quick ? 4_000 : 20_000
  const rounds = options.quick ? 1 : 5
  const checks = ed25519Checks(n)
  const expectValid = n - Math.floor(n / 100)
  const cached = new SignatureVerifier()
  const contenders: Contender[] = [
    { name: 'node:crypto verify, inline', open: async () => inlineSync(nodeVerify) },
    { name: 'inline, key objects cached', open: async () => inlineSync((c) => cached.verify(c)) },
  ]
  for (const threads of [1, 2]) {
    for (const maxBatch of [1, 16, 64, 256]) {
      const name = `pool, ${threads} thread${threads > 1 ? 's' : ''}, batch ${maxBatch}`
      contenders.push(poolContender(name, threads, maxBatch, checks))
    }
  }
  const results = await rates(checks, contenders, rounds)
  for (const [i, r] of results.entries()) {
    if (r.valid !== expectValid)
      throw new Error(`${contenders[i]?.name}: ${r.valid} valid, expected ${expectValid}`)
  }
  const [peer, ...ours] = results as [Result, ...Result[]]
  const rows = ours.map((r, i) => row(contenders[i + 1]?.name ?? '', r, contenders[0]?.name ?? '', peer))

  // Hybrid: ML-DSA-65 verification dominates.
  const hn = options.quick ? 200 : 1_000
  const hybrid = await hybridChecks(hn)
  const hybridContenders: Contender[] = [
    {
      name: 'node:crypto verifyHybrid, inline',
      open: async () =>
        inlineSync((c) => c.scheme === 'hybrid' && verifyHybrid(c.publicKey, c.message, c.signature)),
    },
    poolContender('hybrid, pool, 1 thread, batch 16', 1, 16, hybrid),
    poolContender('hybrid, pool, 2 threads, batch 16', 2, 16, hybrid),
  ]
  const [hybridPeer, ...hybridOurs] = (await rates(hybrid, hybridContenders, rounds)) as [Result, ...Result[]]
  for (const [i, r] of [hybridPeer, ...hybridOurs].entries()) {
    if (r.valid !== hn) throw new Error(`${hybridContenders[i]?.name}: not every hybrid signature verified`)
  }
  for (const [i, r] of hybridOurs.entries()) {
    rows.push(row(hybridContenders[i + 1]?.name ?? '', r, hybridContenders[0]?.name ?? '', hybridPeer))
  }
  return rows
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const r of await run({ quick: process.argv.includes('--quick') })) console.log(JSON.stringify(r))
}
