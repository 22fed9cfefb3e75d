/**
 * Reed-Solomon RS(10,4) throughput with 1 MiB shards: our codec against reed-solomon-erasure (the Rust
 * crate compiled to WebAssembly, @digitaldefiance/reed-solomon-erasure.wasm) on the same buffers.
 *
 *   node bench/erasure.bench.ts [--quick]
 *
 * Rows: encode, and reconstruct with 4 data shards lost (allocating the rebuilt shards, as
 * `ReedSolomon.reconstruct` does), each for our native kernel (when built), WebAssembly SIMD kernel and portable JS kernel. The
 * peer's calls include copying the shards into and out of its WebAssembly memory, which its API does on
 * every call; ours include the same staging for the SIMD kernel. Outputs are checked against each other
 * before any number is reported.
 *
 * Prints one JSON object per row on stdout: `{ name, ours_MBps, peer, peer_MBps, ratio }`, where MB/s is
 * 10^6 bytes of data-shard input (k × shard size) per second, the median of several timed runs after a
 * warm-up (contenders alternate run by run), and ratio = ours / peer. `--quick` takes about 2 s and at
 * most about 15 s; the full run at most about a minute.
 */

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ReedSolomonErasure } from '@digitaldefiance/reed-solomon-erasure.wasm'
import { type ErasureKernel, nativeKernelPath, ReedSolomon } from '../src/storage/codec/reed-solomon.ts'

/** One benchmark result. */
export interface Row {
  name: string
  /** Our throughput, 10^6 bytes of data-shard input per second (median). */
  ours_MBps: number
  /** The peer implementation measured on the same buffers. */
  peer: string
  peer_MBps: number
  /** ours_MBps / peer_MBps. */
  ratio: number
}

const K = 10
const M = 4
const SHARD_BYTES = 1024 * 1024
const LOST_DATA = 4
const PEER = 'reed-solomon-erasure.wasm (Rust crate via @digitaldefiance/reed-solomon-erasure.wasm 1.0.2)'

/** Deterministic pseudo-random bytes (xorshift32). */
function fill(buf: Uint8Array, seed: number): void {
  let x = seed | 0 || 1
  for (let i = 0; i < buf.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    buf[i] = x
  }
}

/** A function to time and the untimed setup to run before each call. */
interface Contender {
  fn: () => void
  setup?: () => void
}

/**
 * Median milliseconds of each contender over up to `runs` timed runs after `warmup` untimed ones.
 * Runs alternate between contenders so that noise from other processes hits both alike; measuring
 * stops early once `budgetMs` is spent (after at least 3 runs each).
 */
function measure(
  contenders: Contender[],
  opts: { runs: number; warmup: number; budgetMs: number },
): number[] {
  for (let i = 0; i < opts.warmup; i++) {
    for (const c of contenders) {
      c.setup?.()
      c.fn()
    }
  }
  const times: number[][] = contenders.map(() => [])
  const start = performance.now()
  for (let n = 0; n < opts.runs && (n < 3 || performance.now() - start < opts.budgetMs); n++) {
    for (const [i, c] of contenders.entries()) {
      c.setup?.()
      const t0 = performance.now()
      c.fn()
      times[i]?.push(performance.now() - t0)
    }
  }
  return times.map((t) => {
    t.sort((a, b) => a - b)
    return t[t.length >> 1] as number
  })
}

const mbps = (ms: number): number => Math.round((K * SHARD_BYTES) / 1e6 / (ms / 1000))

function row(name: string, oursMs: number, peerMs: number): Row {
  const ours = mbps(oursMs)
  const peer = mbps(peerMs)
  return { name, ours_MBps: ours, peer: PEER, peer_MBps: peer, ratio: Math.round((ours / peer) * 100) / 100 }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  )
}

/**
 * Runs the benchmark and returns its rows (does not print). Throws when our output and the peer's
 * differ, so a fast but wrong codec cannot report a number.
 */
export async function run(options: { quick: boolean }): Promise<Row[]> {
  const opts = options.quick
    ? { runs: 15, warmup: 2, budgetMs: 3000 }
    : { runs: 41, warmup: 3, budgetMs: 15000 }
  const wasm = readFileSync(new URL(import.meta.resolve('@digitaldefiance/reed-solomon-erasure.wasm/wasm')))
  const rows: Row[] = []

  // Same data for both: ours as k+m separate shards, the peer's as one contiguous buffer (its API).
  const shards: Uint8Array[] = []
  for (let s = 0; s < K + M; s++) shards.push(new Uint8Array(SHARD_BYTES))
  const flat = new Uint8Array((K + M) * SHARD_BYTES)
  for (let s = 0; s < K; s++) {
    fill(shards[s] as Uint8Array, s + 1)
    flat.set(shards[s] as Uint8Array, s * SHARD_BYTES)
  }

  const peer = ReedSolomonErasure.fromBytes(wasm)
  const kernels = (nativeKernelPath() === null ? ['simd', 'js'] : ['native', 'simd', 'js']) as ErasureKernel[]
  const codecs = kernels.map((kernel) => new ReedSolomon(K, M, { kernel }))
  // Each codec writes its own parity shards; the data shards are shared.
  const stripes = codecs.map(() => shards.map((s, i) => (i < K ? s : new Uint8Array(SHARD_BYTES))))

  // Encode.
  const encodeMs = measure(
    [
      ...codecs.map((rs, n) => ({ fn: () => rs.encode(stripes[n] as Uint8Array[]) })),
      {
        fn: () => {
          if (peer.encode(flat, K, M) !== ReedSolomonErasure.RESULT_OK) throw new Error('peer encode failed')
        },
      },
    ],
    opts,
  )
  for (const [n, stripe] of stripes.entries()) {
    for (let s = K; s < K + M; s++) {
      if (!sameBytes(stripe[s] as Uint8Array, flat.subarray(s * SHARD_BYTES, (s + 1) * SHARD_BYTES))) {
        throw new Error(`${kernels[n]}: parity shard ${s} differs from the peer's`)
      }
    }
  }
  const peerEncodeMs = encodeMs[kernels.length] as number
  for (const [n, kernel] of kernels.entries()) {
    rows.push(row(`rs-encode k=${K} m=${M} shard=1MiB kernel=${kernel}`, encodeMs[n] as number, peerEncodeMs))
  }

  // Reconstruct with the first LOST_DATA data shards lost (the worst case for reads).
  const damaged = stripes.map((s) => s.slice() as (Uint8Array | null)[])
  const available = Array.from({ length: K + M }, (_, i) => i >= LOST_DATA)
  const peerFlat = flat.slice()
  // The peer's reconstruct can corrupt its own heap (1.0.2), so each run gets a fresh instance (untimed).
  let peerInstance = peer
  const rebuildMs = measure(
    [
      ...codecs.map((rs, n) => {
        const d = damaged[n] as (Uint8Array | null)[]
        return { fn: () => rs.reconstruct(d), setup: () => d.fill(null, 0, LOST_DATA) }
      }),
      {
        fn: () => {
          if (peerInstance.reconstruct(peerFlat, K, M, available) !== ReedSolomonErasure.RESULT_OK) {
            throw new Error('peer reconstruct failed')
          }
        },
        setup: () => {
          peerInstance = ReedSolomonErasure.fromBytes(wasm)
          peerFlat.fill(0, 0, LOST_DATA * SHARD_BYTES)
        },
      },
    ],
    opts,
  )
  for (const [n, d] of damaged.entries()) {
    for (let s = 0; s < LOST_DATA; s++) {
      if (!sameBytes(d[s] as Uint8Array, shards[s] as Uint8Array))
        throw new Error(`${kernels[n]}: rebuilt shard ${s} differs`)
    }
  }
  if (!sameBytes(peerFlat, flat)) throw new Error("peer's rebuilt shards differ")
  const peerRebuildMs = rebuildMs[kernels.length] as number
  for (const [n, kernel] of kernels.entries()) {
    rows.push(
      row(
        `rs-reconstruct k=${K} m=${M} shard=1MiB lost=${LOST_DATA} data kernel=${kernel}`,
        rebuildMs[n] as number,
        peerRebuildMs,
      ),
    )
  }

  return rows
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rows = await run({ quick: process.argv.includes('--quick') })
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`)
}
