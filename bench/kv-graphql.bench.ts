/**
 * The kv GraphQL interface on a real node (loopback, LMDB): reads per second of one string key
 * through `POST /graphql` beside the same read through `GET /kv/:db/:key` (autocannon, 10
 * connections, from a worker thread so the load generator does not share the node's event loop),
 * and the delivery latency of subscription events: `subscribers` graphql-ws connections (the
 * client, `NodusKvClient.subscribe`), each watching its own key, while a writer signs and submits
 * operations at `rate` per second spread over those keys (each event carries its send time; latency
 * is send → receipt, both in one worker thread: mutation, signature check, apply, routing, GraphQL,
 * WebSocket). Run alone: `node bench/kv-graphql.bench.ts [--quick]`.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { generateKeyPair } from '@libp2p/crypto/keys'
import autocannon from 'autocannon'
import { initNode } from '../src/cli/init.ts'
import { silentLogger } from '../src/common/logger.ts'
import { loadConfig } from '../src/config/config.ts'
import { ed25519OpSigner, NodusKvClient } from '../src/kv/client.ts'
import { createNode, type NodusNode } from '../src/node/node.ts'
import type { Row } from './lib.ts'

export const description =
  'kv GraphQL on one node: reads/s of a 200-byte string key through POST /graphql and through GET /kv/:db/:key (autocannon, 10 connections, pipelining 1, in a worker thread); and the send → receipt latency of subscription events for N graphql-ws subscribers, each on its own key, while a writer submits signed ops at R/s over those keys (everything on this 2-core machine: node, verification threads, writer and subscribers). The MB/s columns hold requests (or events) per second.'

interface LoadResult {
  rps: number
  p50Ms: number
  p99Ms: number
  errors: number
}

/** autocannon from a worker thread, after a 1 s warm-up (V8 and graphql-jit compile on first use). */
async function load(opts: autocannon.Options): Promise<LoadResult> {
  await autocannon({ connections: 10, pipelining: 1, workers: 1, ...opts, duration: 1 })
  const r = await autocannon({ connections: 10, pipelining: 1, workers: 1, ...opts })
  return {
    rps: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors + r.non2xx,
  }
}

interface SubJob {
  url: string
  token: string
  db: string
  subscribers: number
  rate: number
  seconds: number
  /** The owner's Ed25519 private key, protobuf-encoded (the worker signs as the owner). */
  key: Uint8Array
}

interface SubResult {
  sent: number
  delivered: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  sendErrors: number
  /** Send → mutation answer (the write's own latency), p50 and p99, ms. */
  ackP50Ms: number
  ackP99Ms: number
  /** Receipt times by op id (hex), for applied → receipt on the node's side. */
  received: [string, number][]
}

const quantile = (sorted: number[], q: number): number =>
  sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number)
const now = (): number => performance.timeOrigin + performance.now()

/** The subscriber and writer side (a worker thread). */
async function subscriberSide(job: SubJob): Promise<void> {
  const { privateKeyFromProtobuf } = await import('@libp2p/crypto/keys')
  const signer = ed25519OpSigner(privateKeyFromProtobuf(job.key) as Parameters<typeof ed25519OpSigner>[0])
  const writer = new NodusKvClient({ url: job.url, token: job.token, signer })
  const latencies: number[] = []
  const received: [string, number][] = []
  const clients = Array.from({ length: job.subscribers }, () => new NodusKvClient({ url: job.url, signer }))
  const loops = clients.map(async (c, i) => {
    for await (const e of c.subscribe({ db: job.db, key: `s${i}` })) {
      const t = now()
      latencies.push(t - (e.args[0] as number))
      received.push([e.id, t])
    }
  })
  for (const l of loops) l.catch(() => {})
  parentPort?.postMessage({ type: 'subscribed' })
  await new Promise<void>((resolve) => parentPort?.once('message', () => resolve()))
  // Pace: every 10 ms, send what is due by now in one mutation.
  const start = now()
  let sent = 0
  let sendErrors = 0
  const total = job.rate * job.seconds
  const inFlight = new Set<Promise<void>>()
  const acks: number[] = []
  while (sent < total) {
    const due = Math.min(total, Math.floor(((now() - start) / 1000) * job.rate))
    if (due > sent) {
      const batch = []
      const t = now()
      for (; sent < due; sent++)
        batch.push(
          writer.sign({
            db: job.db,
            key: `s${sent % job.subscribers}`,
            type: 'string',
            op: 'set',
            args: [now()],
          }),
        )
      const p = writer
        .submit(await Promise.all(batch))
        .then((rs) => {
          acks.push(now() - t)
          sendErrors += rs.filter((r) => r.status !== 'applied').length
        })
        .catch(() => {
          sendErrors += batch.length
        })
        .finally(() => inFlight.delete(p))
      inFlight.add(p)
    }
    await new Promise((r) => setTimeout(r, 10))
  }
  await Promise.all(inFlight)
  const deadline = now() + 10_000
  while (latencies.length < sent - sendErrors && now() < deadline) await new Promise((r) => setTimeout(r, 20))
  await Promise.all(clients.map((c) => c.close()))
  const sorted = latencies.slice().sort((a, b) => a - b)
  const ackSorted = acks.slice().sort((a, b) => a - b)
  const result: SubResult = {
    sent,
    delivered: latencies.length,
    p50Ms: Math.round(quantile(sorted, 0.5) * 10) / 10,
    p99Ms: Math.round(quantile(sorted, 0.99) * 10) / 10,
    maxMs: Math.round((sorted.at(-1) ?? Number.NaN) * 10) / 10,
    sendErrors,
    ackP50Ms: Math.round(quantile(ackSorted, 0.5) * 10) / 10,
    ackP99Ms: Math.round(quantile(ackSorted, 0.99) * 10) / 10,
    received,
  }
  parentPort?.postMessage({ type: 'result', result })
}

/** Figures of one subscription run: the worker's, and applied → receipt from the node's side. */
interface SubRun extends Omit<SubResult, 'received'> {
  /** Applied on the node → received by the subscriber, ms. */
  deliveryP50Ms: number
  deliveryP99Ms: number
}

/** Run the subscriber side in a worker; resolves with its figures. */
async function subscriptionLatency(node: NodusNode, job: SubJob): Promise<SubRun> {
  const worker = new Worker(new URL(import.meta.url), { workerData: job })
  const applied = new Map<string, number>()
  const unlisten = node.areas.kv.onApplied((e) => {
    if (e.op.body.db === job.db) applied.set(Buffer.from(e.op.id).toString('hex'), now())
  })
  const subscriptions = async (): Promise<number> =>
    (await node.metrics.registry.getSingleMetric('nodus_kv_graphql_subscriptions')?.get())?.values[0]
      ?.value ?? 0
  try {
    const r = await new Promise<SubResult>((resolve, reject) => {
      worker.on('error', reject)
      worker.on('message', (m: { type: string; result?: SubResult }) => {
        if (m.type === 'subscribed') {
          // Go once the node holds every subscription.
          const poll = async (): Promise<void> => {
            if ((await subscriptions()) >= job.subscribers) worker.postMessage('go')
            else setTimeout(() => void poll().catch(reject), 20)
          }
          void poll().catch(reject)
        } else if (m.type === 'result' && m.result !== undefined) resolve(m.result)
      })
    })
    const delivery = r.received
      .map(([id, t]) => t - (applied.get(id) ?? Number.NaN))
      .filter((d) => !Number.isNaN(d))
      .sort((a, b) => a - b)
    const { received: _, ...rest } = r
    return {
      ...rest,
      deliveryP50Ms: Math.round(quantile(delivery, 0.5) * 10) / 10,
      deliveryP99Ms: Math.round(quantile(delivery, 0.99) * 10) / 10,
    }
  } finally {
    unlisten()
    await worker.terminate()
  }
}

export async function run(options: { quick: boolean }): Promise<Row[]> {
  const seconds = options.quick ? 2 : 10
  const dir = await mkdtemp(join(tmpdir(), 'nodus-kv-graphql-'))
  const { token } = await initNode(dir, { kv: { keepers: 0 } })
  const node = await createNode(await loadConfig(dir), { logger: silentLogger() })
  try {
    await node.start()
    const api = node.info().api
    const key = await generateKeyPair('Ed25519')
    const owner = new NodusKvClient({ url: api, token, signer: ed25519OpSigner(key) })
    const db = await owner.createDb('bench')
    await owner.set(db, 'k', 'x'.repeat(200))
    const body = JSON.stringify({
      query: 'query($db: String!, $k: String!) { get(db: $db, key: $k) }',
      variables: { db, k: 'k' },
    })
    const gql = await load({
      url: `${api}/graphql`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duration: seconds,
    })
    const http = await load({ url: `${api}/kv/${db}/k`, duration: seconds })
    const { privateKeyToProtobuf } = await import('@libp2p/crypto/keys')
    const fmt = (l: LoadResult): string =>
      `${l.rps} req/s, p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, ${l.errors} errors`
    const rows: Row[] = [
      {
        name: 'kv read of a string key via POST /graphql (req/s)',
        ours_MBps: gql.rps,
        peer: 'GET /kv/:db/:key, same node',
        peer_MBps: http.rps,
        ratio: Math.round((gql.rps / http.rps) * 100) / 100,
        note: `GraphQL ${fmt(gql)}; HTTP ${fmt(http)}`,
      },
    ]
    for (const [subscribers, rate] of options.quick
      ? [[100, 100]]
      : [
          [100, 1000],
          [1000, 1000],
        ]) {
      const s = await subscriptionLatency(node, {
        url: api,
        token,
        db,
        subscribers: subscribers as number,
        rate: rate as number,
        seconds,
        key: privateKeyToProtobuf(key),
      })
      rows.push({
        name: `kv subscription delivery, ${subscribers} graphql-ws subscribers, ${rate} events/s (events/s)`,
        ours_MBps: Math.round(s.delivered / seconds),
        peer: '-',
        peer_MBps: null,
        ratio: null,
        note: `applied on the node → received p50 ${s.deliveryP50Ms} ms, p99 ${s.deliveryP99Ms} ms; send → receipt p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms, max ${s.maxMs} ms; ${s.delivered} of ${s.sent} delivered, ${s.sendErrors} not applied; the writes themselves (send → mutation answer) p50 ${s.ackP50Ms} ms, p99 ${s.ackP99Ms} ms`,
      })
    }
    await owner.close()
    return rows
  } finally {
    await node.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

if (!isMainThread && (workerData as SubJob | undefined)?.subscribers !== undefined) {
  await subscriberSide(workerData as SubJob)
} else if (import.meta.url === `file://${process.argv[1]}`) {
  for (const row of await run({ quick: process.argv.includes('--quick') })) console.log(JSON.stringify(row))
}
