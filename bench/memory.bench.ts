/**
 * Memory of node processes (issue 4, item 6): RSS (VmRSS from /proc/PID/status, sampled every
 * 200 ms) of
 *   - an idle node, a few seconds after start, and a standalone node that saw no traffic, 120 s after
 *     start (quick: at the end of the run), once V8 has dropped its start-up garbage;
 *   - the uploading node during a 1 GB put (quick: 128 MB) through its HTTP API: does RSS stay flat
 *     or grow with the bytes put? Reported at 10 %, 50 % and 100 % of the bytes, with the growth over
 *     the second half in MB per GB put;
 *   - the downloading node during the get of the same file;
 *   - one holder while it serves 100 concurrent shard reads over `/nodus/shard/1.0.0` from clients
 *     in this process (9 libp2p connections of at most 12 streams: a holder accepts 16 inbound shard
 *     streams per connection).
 * 8 node processes (a devnet), RS(4,2), 4 MiB segments, loopback. There is no peer implementation
 * for these figures: the rows carry our put/get throughput and the RSS in the note.
 *
 *   node bench/memory.bench.ts [--quick]
 */
import { readFileSync, rmSync, statSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { distIsFresh } from '../scripts/dist.ts'
import { getFile, getJson, putFile } from '../src/cli/client.ts'
import { Devnet as SourceDevnet } from '../src/cli/devnet.ts'
import { isNodusError } from '../src/common/errors.ts'
import { createHost, DEFAULT_HOST_OPTIONS } from '../src/net/host.ts'
import { parseCid } from '../src/storage/codec/cid.ts'
import { ShardClient } from '../src/storage/protocol/shard-client.ts'
import { type BenchOptions, type Row, sig, withTempDir, writeRandomFile } from './lib.ts'

// Node processes run the compiled build when it is current (as bin/nodus.js does), else the sources.
const COMPILED = distIsFresh()
const { Devnet } = COMPILED
  ? ((await import(new URL('../dist/src/cli/devnet.js', import.meta.url).href)) as {
      Devnet: typeof SourceDevnet
    })
  : { Devnet: SourceDevnet }
const RUNS = COMPILED ? 'compiled JS (dist/)' : 'TypeScript sources'

export const description =
  'RSS (VmRSS, MB = 10^6 bytes) of node processes on an 8-node devnet, RS(4,2), 4 MiB segments: idle, the uploader during a 1 GB put, the downloader during the get, and a holder serving 100 concurrent shard reads. No peer implementation; MB/s columns hold the put or get throughput.'

/** VmRSS of a process in MB (10^6 bytes), or undefined once it is gone. */
function rssMB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : (Number(m[1]) * 1024) / 1e6
  } catch {
    return undefined
  }
}

interface HeapFigures {
  heap: number
  committed: number
  external: number
  /** Committed size of the young generation (new space), MB. */
  young: number
  /** Used size of the old generation (old space), MB. */
  old: number
}

/** V8 heap used and committed, and external memory (Buffers, ArrayBuffers) of a node, MB, from its /metrics. */
async function heapOf(api: { url: string; token: string }): Promise<HeapFigures> {
  const text = await (
    await fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${api.token}` } })
  ).text()
  const value = (name: string): number => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)
    return m === null ? Number.NaN : Number(m[1]) / 1e6
  }
  return {
    heap: value('nodejs_heap_size_used_bytes'),
    committed: value('nodejs_heap_size_total_bytes'),
    external: value('nodejs_external_memory_bytes'),
    young: value('nodejs_heap_space_size_total_bytes\\{space="new"\\}'),
    old: value('nodejs_heap_space_size_used_bytes\\{space="old"\\}'),
  }
}

function heapNote(a: HeapFigures, b: HeapFigures): string {
  return `V8 heap used ${sig(a.heap)} → ${sig(b.heap)} MB (committed ${sig(a.committed)} → ${sig(b.committed)}; young generation committed ${sig(a.young)} → ${sig(b.young)}, old generation used ${sig(a.old)} → ${sig(b.old)}), external (Buffers) ${sig(a.external)} → ${sig(b.external)} MB`
}

/** Sample a process's RSS with the current progress (bytes) every `ms` until stopped. */
function sampler(pid: number | undefined, progress: () => number, ms = 200) {
  const samples: { bytes: number; rss: number }[] = []
  const take = (): void => {
    const rss = rssMB(pid)
    if (rss !== undefined) samples.push({ bytes: progress(), rss })
  }
  take()
  const t = setInterval(take, ms)
  return {
    stop(): { bytes: number; rss: number }[] {
      clearInterval(t)
      take()
      return samples
    },
  }
}

/** RSS at the first sample at or after `fraction` of `total` bytes. */
function at(samples: { bytes: number; rss: number }[], total: number, fraction: number): number {
  const s = samples.find((x) => x.bytes >= fraction * total) ?? samples[samples.length - 1]
  return s?.rss ?? Number.NaN
}

function summary(samples: { bytes: number; rss: number }[], total: number): string {
  const r10 = at(samples, total, 0.1)
  const r50 = at(samples, total, 0.5)
  const r100 = at(samples, total, 1)
  const max = Math.max(...samples.map((s) => s.rss))
  const perGB = (r100 - r50) / ((total * 0.5) / 1e9)
  return `RSS ${sig(r10)} MB at 10 %, ${sig(r50)} at 50 %, ${sig(r100)} at 100 % (max ${sig(max)}); second half: ${sig(perGB)} MB per GB; ${samples.length} samples`
}

export async function run(options: BenchOptions): Promise<Row[]> {
  return await withTempDir('memory', async (dir) => {
    const bytes = options.quick ? 64_000_000 : 1_000_000_000
    const nodeCount = options.quick ? 6 : 8
    const file = join(dir, 'big.bin')
    writeRandomFile(file, bytes)
    const baseDir = join(dir, 'devnet')
    await mkdir(baseDir)
    const devnet = await Devnet.start({
      nodes: nodeCount,
      baseDir,
      basePort: 0,
      logLevel: 'warn',
      config: { storage: { k: 4, m: 2, segmentSize: 4 * 1024 * 1024 } },
    })
    // One more node, alone and untouched, to read an idle RSS once start-up garbage is gone (V8's
    // memory reducer shrinks the young generation after a minute or two of idling).
    await mkdir(join(dir, 'alone'))
    const alone = await Devnet.start({
      nodes: 1,
      baseDir: join(dir, 'alone'),
      basePort: 0,
      logLevel: 'warn',
    }).catch(async (err: unknown) => {
      await devnet.stop()
      throw err
    })
    const aloneStarted = performance.now()
    const rows: Row[] = []
    // Clients: a holder accepts 16 inbound shard streams per connection (shard server option), so
    // 100 concurrent reads come over 9 connections of 12 or fewer streams each.
    const hosts = await Promise.all(
      Array.from({ length: 9 }, async () =>
        createHost(await generateKeyPair('Ed25519'), DEFAULT_HOST_OPTIONS),
      ),
    )
    try {
      const nodes = devnet.nodes
      const up = nodes[0]
      const down = nodes[nodeCount - 1]
      if (up === undefined || down === undefined) throw new Error(`devnet did not start ${nodeCount} nodes`)
      const api = (n: typeof up) => ({ url: n.api, token: n.token })
      const settleMs = options.quick ? 1_000 : 5_000
      await new Promise((r) => setTimeout(r, settleMs))
      const idle = nodes.map((n) => rssMB(n.proc.pid)).filter((x): x is number => x !== undefined)
      idle.sort((a, b) => a - b)
      rows.push({
        name: `idle node RSS (MB), ${settleMs / 1000} s after start`,
        ours_MBps: Number.NaN,
        peer: '-',
        peer_MBps: null,
        ratio: null,
        note: `median ${sig(idle[idle.length >> 1] ?? Number.NaN)} MB, min ${sig(idle[0] ?? Number.NaN)}, max ${sig(idle[idle.length - 1] ?? Number.NaN)} over ${nodeCount} node processes running ${RUNS}`,
      })

      let sent = 0
      const upHeap0 = await heapOf(api(up))
      const s1 = sampler(up.proc.pid, () => sent)
      const t0 = performance.now()
      const put = await putFile(api(up), file, { onBytes: (n) => (sent = n) })
      const putMs = performance.now() - t0
      const putSamples = s1.stop()
      rows.push({
        name: `uploader RSS during a ${bytes / 1e6} MB put`,
        ours_MBps: sig(bytes / 1e6 / (putMs / 1000)),
        peer: '-',
        peer_MBps: null,
        ratio: null,
        note: `${summary(putSamples, bytes)}; ${heapNote(upHeap0, await heapOf(api(up)))}`,
      })

      let got = 0
      const out = join(dir, 'out.bin')
      const downHeap0 = await heapOf(api(down))
      const s2 = sampler(down.proc.pid, () => got)
      const t1 = performance.now()
      await getFile(api(down), put.cid, out, { onBytes: (n) => (got = n) })
      const getMs = performance.now() - t1
      const getSamples = s2.stop()
      if (statSync(out).size !== bytes) throw new Error('get returned the wrong size')
      rmSync(out)
      rows.push({
        name: `downloader RSS during the get of the same file`,
        ours_MBps: sig(bytes / 1e6 / (getMs / 1000)),
        peer: '-',
        peer_MBps: null,
        ratio: null,
        note: `${summary(getSamples, bytes)}; ${heapNote(downHeap0, await heapOf(api(down)))}`,
      })

      // 100 concurrent shard reads from the holder with the most shards, over one connection.
      const view = await getJson<{ segments: { shards: { cid: string; holders: string[] }[] }[] }>(
        api(up),
        `/files/${put.cid}/manifest`,
      )
      const byHolder = new Map<string, string[]>()
      for (const seg of view.segments)
        for (const sh of seg.shards)
          for (const h of sh.holders) byHolder.set(h, [...(byHolder.get(h) ?? []), sh.cid])
      const [holderId, cids] = [...byHolder.entries()].sort((a, b) => b[1].length - a[1].length)[0] ?? [
        '',
        [],
      ]
      const holder = nodes.find((n) => n.peerId === holderId)
      if (holder === undefined || cids.length === 0) throw new Error('no holder found')
      const clients = await Promise.all(
        hosts.map(async (host) => {
          await host.start()
          await host.dial(holder.multiaddrs.map((a) => multiaddr(a)))
          return new ShardClient(
            { dialProtocol: (p, proto, o) => host.dialProtocol(p, proto, o) },
            { requestTimeoutMs: 120_000, maxShardBytes: 16 * 1024 * 1024 },
          )
        }),
      )
      const pick = Array.from({ length: 100 }, (_, i) => parseCid(cids[i % cids.length] as string))
      let served = 0
      let busy = 0
      let redials = 0
      // A client whose connection died (its muxer closed) dials the holder again, once at a time.
      const redialing = new Map<number, Promise<void>>()
      const redial = (n: number): Promise<void> => {
        const host = hosts[n] as (typeof hosts)[number]
        let p = redialing.get(n)
        if (p === undefined) {
          redials++
          p = (async () => {
            await host.hangUp(peerIdFromString(holderId)).catch(() => {})
            await host.dial(holder.multiaddrs.map((a) => multiaddr(a)))
          })().finally(() => redialing.delete(n))
          redialing.set(n, p)
        }
        return p
      }
      const s3 = sampler(holder.proc.pid, () => served, 50)
      const before = rssMB(holder.proc.pid) ?? Number.NaN
      const t2 = performance.now()
      await Promise.all(
        pick.map(async (c, i) => {
          const client = clients[i % clients.length] as ShardClient
          // A holder serves 64 requests at once (shard server option) and answers PEER_BUSY beyond:
          // a real getter goes to another holder; here the client waits 20 ms and asks again.
          for (let attempt = 0; ; attempt++) {
            try {
              const b = await client.get(peerIdFromString(holderId), c)
              served += b.byteLength
              return
            } catch (err) {
              // PEER_UNREACHABLE: the connection's muxer closed under this load (seen in about one
              // run in three, not explained yet): dial again, as a real client would.
              const retry = isNodusError(err, 'PEER_BUSY') || isNodusError(err, 'PEER_UNREACHABLE')
              if (!retry || attempt >= 500) {
                const cause = (err as { cause?: { message?: string } }).cause?.message
                throw new Error(
                  `${(err as Error).message}${cause === undefined ? '' : `: ${cause}`} (attempt ${attempt})`,
                )
              }
              if (isNodusError(err, 'PEER_UNREACHABLE')) await redial(i % clients.length).catch(() => {})
              else busy++
              await new Promise((r) => setTimeout(r, 20))
            }
          }
        }),
      )
      const readMs = performance.now() - t2
      const readSamples = s3.stop()
      rows.push({
        name: '100 concurrent shard reads from one holder (9 client connections)',
        ours_MBps: sig(served / 1e6 / (readMs / 1000)),
        peer: '-',
        peer_MBps: null,
        ratio: null,
        note: `holder RSS ${sig(before)} MB before, max ${sig(Math.max(...readSamples.map((s) => s.rss)))} MB while serving ${sig(served / 1e6)} MB (${cids.length} distinct shards of ${sig(served / 100 / 1e6)} MB) in ${sig(readMs)} ms; ${busy} PEER_BUSY answers (64 served at once), retried after 20 ms; ${redials} client connections closed under the load and dialled again`,
      })
      // Full runs last long enough for the reducer; wait until 120 s after start at most.
      const waitMs = options.quick ? 0 : Math.max(0, 120_000 - (performance.now() - aloneStarted))
      await new Promise((r) => setTimeout(r, waitMs))
      const aloneRss = rssMB(alone.nodes[0]?.proc.pid)
      rows.push({
        name: `idle node RSS (MB), ${sig((performance.now() - aloneStarted) / 1000)} s after start, no traffic`,
        ours_MBps: Number.NaN,
        peer: '-',
        peer_MBps: null,
        ratio: null,
        note: `one standalone node started with the devnet, running ${RUNS}; ${sig(aloneRss ?? Number.NaN)} MB`,
      })
    } finally {
      await Promise.all(hosts.map((h) => Promise.resolve(h.stop()).catch(() => {})))
      await devnet.stop()
      await alone.stop()
    }
    return rows
  })
}

if (import.meta.main) {
  for (const row of await run({ quick: process.argv.includes('--quick') })) console.log(JSON.stringify(row))
}
