/**
 * HTTP API load: requests per second and latency percentiles for `GET /system/info` and for a 1 MiB
 * file download on a real node, against a bare fastify hello-world in the same run (autocannon,
 * loopback, bounded duration). Run alone: `node bench/api-load.bench.ts [--quick]`.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import Fastify from 'fastify'
import { initNode } from '../src/cli/init.ts'
import { silentLogger } from '../src/common/logger.ts'
import { loadConfig } from '../src/config/config.ts'
import { createNode } from '../src/node/node.ts'

export const description =
  'HTTP API throughput with autocannon over loopback (10 connections, pipelining 1): requests/s and p50/p99 latency of our node vs a bare fastify hello-world in the same run. The MB/s columns hold requests per second for these rows.'

interface LoadResult {
  rps: number
  p50Ms: number
  p99Ms: number
  errors: number
}

async function load(url: string, seconds: number, connections = 10): Promise<LoadResult> {
  const r = await autocannon({ url, connections, duration: seconds, pipelining: 1 })
  return {
    rps: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors + r.non2xx,
  }
}

export async function run(options: { quick: boolean }): Promise<
  {
    name: string
    ours_MBps: number
    peer: string
    peer_MBps: number | null
    ratio: number | null
    note: string
  }[]
> {
  const seconds = options.quick ? 1 : 10
  const dir = await mkdtemp(join(tmpdir(), 'nodus-load-'))
  const bare = Fastify({ logger: false })
  bare.get('/', async () => ({ hello: 'world' }))
  const bareUrl = await bare.listen({ host: '127.0.0.1', port: 0 })
  const { token } = await initNode(dir, { storage: { segmentSize: 1024 * 1024, k: 4, m: 2 } })
  const node = await createNode(await loadConfig(dir), { logger: silentLogger() })
  try {
    await node.start()
    const api = node.info().api
    const put = await fetch(`${api}/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: randomBytes(1024 * 1024),
    })
    const { cid } = (await put.json()) as { cid: string }
    const peer = await load(`${bareUrl}/`, seconds)
    const info = await load(`${api}/system/info`, seconds)
    const file = await load(`${api}/files/${cid}`, seconds)
    const fmt = (l: LoadResult): string =>
      `${l.rps} req/s, p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, ${l.errors} errors`
    return [
      {
        name: 'API GET /system/info (req/s)',
        ours_MBps: info.rps,
        peer: 'bare fastify hello-world',
        peer_MBps: peer.rps,
        ratio: Math.round((info.rps / peer.rps) * 100) / 100,
        note: `ours ${fmt(info)}; peer ${fmt(peer)}`,
      },
      {
        name: 'API GET /files/:cid, 1 MiB, single node (req/s)',
        ours_MBps: file.rps,
        peer: 'bare fastify hello-world',
        peer_MBps: peer.rps,
        ratio: Math.round((file.rps / peer.rps) * 100) / 100,
        note: `ours ${fmt(file)} = ${Math.round(file.rps * 1.048576)} MB/s of file data`,
      },
    ]
  } finally {
    await node.stop()
    await bare.close()
    await rm(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const row of await run({ quick: process.argv.includes('--quick') })) console.log(JSON.stringify(row))
}
