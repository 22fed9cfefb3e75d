/**
 * RS(10,4) single-core throughput of our ReedSolomon (best kernel here: native, else WASM SIMD) against klauspost/reedsolomon
 * (Go), the reference for issue 4's target (≥ 0.5× klauspost). Same shard size and data pattern; the
 * Go program runs with GOMAXPROCS=1. Needs Debian's golang and golang-github-klauspost-reedsolomon-dev;
 * without them the rows say so.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { nativeKernelPath, ReedSolomon } from '../src/storage/codec/reed-solomon.ts'
import type { BenchOptions, Row } from './lib.ts'

export const description = `RS(10,4), 1 MiB shards, one core: ours (kernel ${new ReedSolomon(1, 1).kernel}${nativeKernelPath() === null ? '' : ` ${nativeKernelPath()}`}) vs klauspost/reedsolomon (Go, Debian package, GOMAXPROCS=1, WithMaxGoroutines(1)); MB/s of data-shard input, median of runs. Reconstruct rows: rebuilding into newly allocated memory (each side's allocator), and into buffers handed back for reuse.`

const K = 10
const M = 4

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1] as number
}

interface Rates {
  encodeMBps: number
  reconstructMBps: number
  reconstructReuseMBps: number
}

function ours(shardSize: number, runs: number): Rates {
  const rs = new ReedSolomon(K, M)
  const shards = Array.from({ length: K + M }, (_, i) => {
    const b = new Uint8Array(shardSize)
    if (i < K) for (let j = 0; j < shardSize; j++) b[j] = (j * 31 + i * 7 + 1) % 256
    return b
  })
  const data = K * shardSize
  const enc: number[] = []
  const rec: number[] = []
  for (let r = 0; r < runs + 2; r++) {
    const t = performance.now()
    rs.encode(shards)
    if (r >= 2) enc.push(data / 1e6 / ((performance.now() - t) / 1000))
  }
  for (let r = 0; r < runs + 2; r++) {
    const lost: (Uint8Array | null)[] = shards.map((s, i) => (i < 4 ? null : s))
    const t = performance.now()
    rs.reconstructData(lost)
    if (r >= 2) rec.push(data / 1e6 / ((performance.now() - t) / 1000))
  }
  const reuse: number[] = []
  const spare = Array.from({ length: 4 }, () => new Uint8Array(shardSize))
  for (let r = 0; r < runs + 2; r++) {
    const lost: (Uint8Array | null)[] = shards.map((s, i) => (i < 4 ? null : s))
    const t = performance.now()
    rs.reconstructData(lost, { buffers: spare })
    if (r >= 2) reuse.push(data / 1e6 / ((performance.now() - t) / 1000))
  }
  return {
    encodeMBps: Math.round(median(enc)),
    reconstructMBps: Math.round(median(rec)),
    reconstructReuseMBps: Math.round(median(reuse)),
  }
}

function klauspost(shardSize: number, runs: number): Rates | string {
  if (spawnSync('go', ['version']).status !== 0)
    return 'klauspost (not installed: apt-get install golang golang-github-klauspost-reedsolomon-dev)'
  const cache = mkdtempSync(join(tmpdir(), 'nodus-gocache-'))
  try {
    const main = fileURLToPath(new URL('./klauspost/main.go', import.meta.url))
    const r = spawnSync('go', ['run', main, '-shard', String(shardSize), '-runs', String(runs)], {
      env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOCACHE: cache, GOFLAGS: '' },
      encoding: 'utf8',
      timeout: 120_000,
    })
    if (r.status !== 0) return `klauspost (failed: ${(r.stderr ?? '').split('\n')[0]})`
    const j = JSON.parse(r.stdout) as Rates
    return {
      encodeMBps: Math.round(j.encodeMBps),
      reconstructMBps: Math.round(j.reconstructMBps),
      reconstructReuseMBps: Math.round(j.reconstructReuseMBps),
    }
  } finally {
    rmSync(cache, { recursive: true, force: true })
  }
}

export async function run(options: BenchOptions): Promise<Row[]> {
  const shardSize = 1 << 20
  const runs = options.quick ? 9 : 31
  const peer = klauspost(shardSize, runs)
  const o = ours(shardSize, runs)
  const name = 'klauspost/reedsolomon 1.9.13 (Go 1.19, one core)'
  const row = (what: string, ours: number, theirs: number | null): Row => ({
    name: `RS(10,4) ${what}, 1 MiB shards, one core`,
    ours_MBps: ours,
    peer: typeof peer === 'string' ? peer : name,
    peer_MBps: theirs,
    ratio: theirs === null ? null : Math.round((ours / theirs) * 100) / 100,
    note: 'issue 4 target: ratio ≥ 0.5',
  })
  return [
    row('encode', o.encodeMBps, typeof peer === 'string' ? null : peer.encodeMBps),
    row(
      'reconstruct, 4 data shards lost',
      o.reconstructMBps,
      typeof peer === 'string' ? null : peer.reconstructMBps,
    ),
    row(
      'reconstruct into reused buffers, 4 data shards lost',
      o.reconstructReuseMBps,
      typeof peer === 'string' ? null : peer.reconstructReuseMBps,
    ),
  ]
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await run({ quick: process.argv.includes('--quick') })) console.log(JSON.stringify(r))
}
