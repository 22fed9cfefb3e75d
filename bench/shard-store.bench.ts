/**
 * Shard store: read latency under 100 concurrent requests, and write throughput with group commit.
 *
 *   node bench/shard-store.bench.ts [--quick]
 *
 * Reads: 100 shards of 1 MiB on one store (temp dir on the machine's disk; the page cache is warm for
 * both sides, we do not drop it), read by 100 concurrent requests at once, each timed from issue to last
 * byte. Rows: whole-shard `read()` with the shard cache cold (a fresh cache each round: every request
 * misses and streams from disk, filling the cache), warm (every request hits and gets views of the cached
 * shard), disabled (`cacheBytes: 0`),
 * and 64 KiB byte ranges at seeded random offsets (always from disk). Peer: `fs.promises.readFile` of the
 * same 100 files, 100 at once (for ranges: open + read of the same range + close). MB/s = bytes delivered
 * per second of wall time for the whole batch; p50/p99 are per-request latencies over every round.
 *
 * Writes: 64 shards of 64 KiB put at once (`put` = hash, temp file, fsync, rename, directory fsync, index
 * commit + flush), against the same 64 puts one after another (each its own LMDB commit and flush: what
 * group commit saves). Peers: `dd bs=64k count=1 conv=fsync` per file (64 processes at once, or one after
 * another), and the same temp-file/fsync/rename/directory-fsync sequence in Node without an index.
 * MB/s = 10^6 shard bytes per second; the note gives ms per put. Ratio = ours / peer throughout.
 */

import { spawn } from 'node:child_process'
import { mkdir, open as openFile, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { blake3 } from '@napi-rs/blake-hash'
import { CID } from 'multiformats/cid'
import { create } from 'multiformats/hashes/digest'
import { ShardStore } from '../src/storage/store/shard-store.ts'
import {
  type BenchOptions,
  fillPseudoRandom,
  MiB,
  mbps,
  median,
  peerNotInstalled,
  type Row,
  ratioOf,
  sig,
  which,
  withTempDir,
} from './lib.ts'

export const description =
  'Shard store (bench/shard-store.bench.ts): per-request read latency with 100 concurrent requests on one ' +
  'store (1 MiB shards; shard cache cold, warm, off; 64 KiB ranges) against fs.readFile of the same files, ' +
  'and put throughput for 64 concurrent 64 KiB shards (group commit) against the same puts one at a time ' +
  'and against dd conv=fsync. Ours reads and writes shard files with direct I/O (O_DIRECT: from and to the ' +
  'disk, never the page cache) where the file system allows it; the peers use the page cache, warm for ' +
  'reads. One row repeats the cache-off read on a store with direct I/O turned off. Ratio = ours / peer.'

/** A row with per-request latencies (ms) besides throughput. */
export interface StoreRow extends Row {
  ours_p50Ms?: number
  ours_p99Ms?: number
  peer_p50Ms?: number
  peer_p99Ms?: number
}

const READ_SHARDS = 100
const READ_SHARD_BYTES = MiB
const RANGE_BYTES = 64 * 1024
const WRITE_SHARDS = 64
const WRITE_SHARD_BYTES = 64 * 1024

const cidOf = (bytes: Uint8Array): CID => CID.createV1(0x55, create(0x1e, blake3(bytes)))

function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number
}

/** One batch: run every request at once; per-request ms and the batch's wall ms. */
async function batch(requests: ReadonlyArray<() => Promise<number>>): Promise<{
  latencies: number[]
  wallMs: number
  bytes: number
}> {
  const t0 = performance.now()
  const results = await Promise.all(
    requests.map(async (fn) => {
      const start = performance.now()
      const bytes = await fn()
      return { ms: performance.now() - start, bytes }
    }),
  )
  return {
    latencies: results.map((r) => r.ms),
    wallMs: performance.now() - t0,
    bytes: results.reduce((n, r) => n + r.bytes, 0),
  }
}

interface Series {
  latencies: number[]
  walls: number[]
  bytes: number
}

function series(): Series {
  return { latencies: [], walls: [], bytes: 0 }
}

function add(s: Series, b: { latencies: number[]; wallMs: number; bytes: number }): void {
  s.latencies.push(...b.latencies)
  s.walls.push(b.wallMs)
  s.bytes = b.bytes
}

function latencyRow(name: string, ours: Series, peer: string, theirs: Series, note: string): StoreRow {
  const oursMBps = mbps(ours.bytes, median(ours.walls))
  const peerMBps = mbps(theirs.bytes, median(theirs.walls))
  const o50 = sig(quantile(ours.latencies, 0.5))
  const o99 = sig(quantile(ours.latencies, 0.99))
  const p50 = sig(quantile(theirs.latencies, 0.5))
  const p99 = sig(quantile(theirs.latencies, 0.99))
  return {
    name,
    ours_MBps: oursMBps,
    peer,
    peer_MBps: peerMBps,
    ratio: ratioOf(oursMBps, peerMBps),
    note: `p50/p99 per request: ours ${o50}/${o99} ms, peer ${p50}/${p99} ms; ${note}`,
    ours_p50Ms: o50,
    ours_p99Ms: o99,
    peer_p50Ms: p50,
    peer_p99Ms: p99,
  }
}

async function drain(it: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0
  for await (const c of it) n += c.byteLength
  return n
}

async function readBench(dir: string, rounds: number): Promise<StoreRow[]> {
  const shards = Array.from({ length: READ_SHARDS }, (_, i) => {
    const bytes = new Uint8Array(READ_SHARD_BYTES)
    fillPseudoRandom(bytes, 1000 + i)
    return { bytes, cid: cidOf(bytes) }
  })
  const options = { dir, capacityBytes: 1 << 30, maxShardBytes: 16 * MiB, minFreeDiskBytes: 0 }
  const writer = new ShardStore({}, options)
  await writer.open()
  for (const s of shards) await writer.put(s.cid, s.bytes)
  await writer.close()
  const paths = shards.map((s) => {
    const key = s.cid.toString()
    return join(dir, key.slice(-3, -1), key)
  })
  let x = 12345
  const offsets = shards.map(() => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    return x % (READ_SHARD_BYTES - RANGE_BYTES)
  })

  const cold = series()
  const warm = series()
  const off = series()
  const buffered = series()
  const range = series()
  const peerWhole = series()
  const peerRange = series()
  const coldStore = new ShardStore({}, { ...options, cacheBytes: 128 * MiB })
  const warmStore = new ShardStore({}, { ...options, cacheBytes: 128 * MiB })
  const offStore = new ShardStore({}, { ...options, cacheBytes: 0 })
  // The same store with buffered reads (direct I/O is decided by the probe at open).
  const bufferedStore = new ShardStore({}, { ...options, cacheBytes: 0 })
  await warmStore.open()
  await offStore.open()
  const before = process.env.NODUS_DIRECT_IO
  process.env.NODUS_DIRECT_IO = '0'
  try {
    await bufferedStore.open()
  } finally {
    if (before === undefined) delete process.env.NODUS_DIRECT_IO
    else process.env.NODUS_DIRECT_IO = before
  }
  const direct = offStore.directIo ? 'direct I/O from the disk' : 'buffered (no direct I/O here)'
  for (const s of shards) await drain(warmStore.read(s.cid)) // fill the warm cache
  const readFileAll = shards.map((_, i) => async () => (await readFile(paths[i] as string)).byteLength)
  const readRangeAll = shards.map((_, i) => async () => {
    const fh = await openFile(paths[i] as string, 'r')
    try {
      const buf = new Uint8Array(RANGE_BYTES)
      let n = 0
      while (n < RANGE_BYTES) {
        const r = await fh.read(buf, n, RANGE_BYTES - n, (offsets[i] as number) + n)
        if (r.bytesRead === 0) break
        n += r.bytesRead
      }
      return n
    } finally {
      await fh.close()
    }
  })
  try {
    for (let round = rounds > 1 ? -1 : 0; round < rounds; round++) {
      await coldStore.open() // a fresh, empty shard cache
      const coldBatch = await batch(shards.map((s) => () => drain(coldStore.read(s.cid))))
      await coldStore.close()
      const warmBatch = await batch(shards.map((s) => () => drain(warmStore.read(s.cid))))
      const offBatch = await batch(shards.map((s) => () => drain(offStore.read(s.cid))))
      const bufferedBatch = await batch(shards.map((s) => () => drain(bufferedStore.read(s.cid))))
      const peerBatch = await batch(readFileAll)
      const rangeBatch = await batch(
        shards.map(
          (s, i) => () => drain(offStore.read(s.cid, { offset: offsets[i] as number, length: RANGE_BYTES })),
        ),
      )
      const peerRangeBatch = await batch(readRangeAll)
      if (round < 0) continue // warm-up
      add(cold, coldBatch)
      add(warm, warmBatch)
      add(off, offBatch)
      add(buffered, bufferedBatch)
      add(peerWhole, peerBatch)
      add(range, rangeBatch)
      add(peerRange, peerRangeBatch)
    }
  } finally {
    await warmStore.close()
    await offStore.close()
    await bufferedStore.close()
  }
  const peer = 'fs.promises.readFile, same files, 100 at once'
  return [
    latencyRow(
      'read 100 × 1 MiB concurrent, shard cache cold',
      cold,
      peer,
      peerWhole,
      `every request misses: 256 KiB reads (${direct}) into the cache buffer, 64 KiB chunks out`,
    ),
    latencyRow(
      'read 100 × 1 MiB concurrent, shard cache warm',
      warm,
      peer,
      peerWhole,
      'every request hits; chunks are read-only views of the cached shard (zero copy)',
    ),
    latencyRow(
      'read 100 × 1 MiB concurrent, shard cache off',
      off,
      peer,
      peerWhole,
      `cacheBytes 0: 256 KiB reads (${direct}), 64 KiB chunks`,
    ),
    latencyRow(
      'read 100 × 1 MiB concurrent, shard cache off, direct I/O off',
      buffered,
      peer,
      peerWhole,
      'NODUS_DIRECT_IO=0 at open: 256 KiB reads through the page cache (warm), 64 KiB chunks',
    ),
    latencyRow(
      'read 100 × 64 KiB ranges concurrent (random offsets)',
      range,
      'fs open + read of the same range + close, 100 at once',
      peerRange,
      `byte ranges always stream from disk (${direct}), holding one block of at most 256 KiB, never the whole shard`,
    ),
  ]
}

/**
 * Our put's file work without hashing or the index: temp file in `<dir>/tmp`, write, fsync, rename into
 * the same fan-out directory a shard would go to (created once, then `dir` fsynced), fsync that directory.
 */
async function rawDurableWrite(
  dir: string,
  key: string,
  bytes: Uint8Array,
  fanouts: Map<string, Promise<void>>,
): Promise<void> {
  const tmp = join(dir, 'tmp', key)
  const fh = await openFile(tmp, 'w')
  try {
    await fh.write(bytes)
    await fh.sync()
  } finally {
    await fh.close()
  }
  const fanout = key.slice(-3, -1)
  let ready = fanouts.get(fanout)
  if (ready === undefined) {
    ready = mkdir(join(dir, fanout), { recursive: true }).then(async (made) => {
      if (made !== undefined) await fsyncPath(dir)
    })
    fanouts.set(fanout, ready)
  }
  await ready
  await rename(tmp, join(dir, fanout, key))
  await fsyncPath(join(dir, fanout))
}

async function fsyncPath(path: string): Promise<void> {
  const d = await openFile(path, 'r')
  try {
    await d.sync()
  } finally {
    await d.close()
  }
}

function runDd(dd: string, src: string, dst: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(dd, [`if=${src}`, `of=${dst}`, 'bs=64k', 'count=1', 'conv=fsync', 'status=none'], {
      stdio: 'ignore',
    })
    p.on('error', reject)
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`dd exited ${code}`))))
  })
}

async function writeBench(dir: string, rounds: number): Promise<StoreRow[]> {
  const dd = which('dd')
  const src = join(dir, 'dd-src')
  const seedBytes = new Uint8Array(WRITE_SHARD_BYTES)
  fillPseudoRandom(seedBytes, 7)
  await writeFile(src, seedBytes)
  let seed = 0
  const fresh = (): Array<{ bytes: Uint8Array; cid: CID }> =>
    Array.from({ length: WRITE_SHARDS }, () => {
      const bytes = new Uint8Array(WRITE_SHARD_BYTES)
      fillPseudoRandom(bytes, ++seed)
      return { bytes, cid: cidOf(bytes) }
    })
  const store = new ShardStore({}, { dir: join(dir, 'store'), capacityBytes: 1 << 30, maxShardBytes: MiB })
  const rawFanouts = new Map<string, Promise<void>>()
  const rawDir = join(dir, 'raw')
  await mkdir(join(rawDir, 'tmp'), { recursive: true })
  await store.open()
  const times = {
    concurrent: [] as number[],
    sequential: [] as number[],
    ddConc: [] as number[],
    ddSeq: [] as number[],
    raw: [] as number[],
  }
  const timed = async (fn: () => Promise<unknown>): Promise<number> => {
    const t0 = performance.now()
    await fn()
    return performance.now() - t0
  }
  try {
    for (let round = rounds > 1 ? -1 : 0; round < rounds; round++) {
      const a = fresh()
      const b = fresh()
      const outDir = join(dir, `peer-${round + 1}`)
      await mkdir(join(outDir, 'tmp'), { recursive: true })
      const concurrent = await timed(() => Promise.all(a.map((s) => store.put(s.cid, s.bytes))))
      const sequential = await timed(async () => {
        for (const s of b) await store.put(s.cid, s.bytes)
      })
      const c = fresh()
      const raw = await timed(() =>
        Promise.all(c.map((s) => rawDurableWrite(rawDir, s.cid.toString(), s.bytes, rawFanouts))),
      )
      const ddConc =
        dd === undefined
          ? Number.NaN
          : await timed(() => Promise.all(a.map((_, i) => runDd(dd, src, join(outDir, `dd-${i}`)))))
      const ddSeq =
        dd === undefined
          ? Number.NaN
          : await timed(async () => {
              for (let i = 0; i < WRITE_SHARDS; i++) await runDd(dd, src, join(outDir, `dds-${i}`))
            })
      if (round < 0) continue
      times.concurrent.push(concurrent)
      times.sequential.push(sequential)
      times.raw.push(raw)
      times.ddConc.push(ddConc)
      times.ddSeq.push(ddSeq)
    }
  } finally {
    await store.close()
  }
  const bytes = WRITE_SHARDS * WRITE_SHARD_BYTES
  const perPut = (ms: number): number => sig(ms / WRITE_SHARDS)
  const conc = median(times.concurrent)
  const seq = median(times.sequential)
  const ddName =
    dd === undefined ? peerNotInstalled('coreutils') : 'dd bs=64k count=1 conv=fsync, one process per file'
  const row = (name: string, ours: number, peer: string, peerMs: number, note: string): StoreRow => {
    const o = mbps(bytes, ours)
    const p = Number.isFinite(peerMs) ? mbps(bytes, peerMs) : null
    return { name, ours_MBps: o, peer, peer_MBps: p, ratio: ratioOf(o, p), note }
  }
  const groupNote = `${perPut(conc)} ms per put at 64 in flight vs ${perPut(seq)} ms one at a time (${sig(seq / conc, 2)}× from sharing commits, flushes and overlapping fsyncs)`
  return [
    row(
      `put ${WRITE_SHARDS} × 64 KiB concurrent (group commit)`,
      conc,
      `${ddName}, 64 at once`,
      median(times.ddConc),
      groupNote,
    ),
    row(
      `put ${WRITE_SHARDS} × 64 KiB concurrent (group commit) vs raw fs`,
      conc,
      'Node fs, same layout: temp file, fsync, rename into the fan-out dir, dir fsync; no hash, no index; 64 at once',
      median(times.raw),
      'what hashing and the index commit + flush cost on top of the same file work',
    ),
    row(
      `put ${WRITE_SHARDS} × 64 KiB one at a time (a commit + flush each)`,
      seq,
      `${ddName}, one after another`,
      median(times.ddSeq),
      `${perPut(seq)} ms per put; peer ${perPut(median(times.ddSeq))} ms per file (includes process start-up)`,
    ),
  ]
}

/** Runs the benchmark and returns its rows (does not print). */
export async function run(options: BenchOptions): Promise<StoreRow[]> {
  // quick: one round and no warm-up round (the loops skip it when rounds is 1)
  const rounds = options.quick ? 1 : 10
  const reads = await withTempDir('shard-store-read', (dir) => readBench(dir, rounds))
  const writes = await withTempDir('shard-store-write', (dir) => writeBench(dir, rounds))
  return [...reads, ...writes]
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rows = await run({ quick: process.argv.includes('--quick') })
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`)
}
