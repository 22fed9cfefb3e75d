/**
 * Pub/sub (issue 19): messages per second between 2 node processes on loopback, 256-byte messages,
 * with p50/p99 end-to-end latency, CPU µs per delivered message (both processes) and event-loop lag
 * p99 (the worse of the two). Three contenders in the same run, each a publisher process and a
 * subscriber process:
 *
 * - ours: a libp2p host (src/net/host.ts) with gossipsub and the messaging area (batching: 2 ms linger,
 *   64 KiB batches), publishing through `messaging.publish`;
 * - plain js-libp2p gossipsub 17 on the same host, one gossip message per message (the default init:
 *   StrictSign, floodPublish), `pubsub.publish` not awaited;
 * - NATS: Debian's nats-server and the @nats-io/transport-node client (no signatures, no mesh: the
 *   ceiling of a broker on this machine).
 *
 * The publisher offers a fixed rate (open loop: each 1 ms timer tick publishes what the rate owes);
 * the subscriber timestamps each arrival against the publish time carried in the message (ours: the
 * batch's timestamps; the others: 8 bytes at the start of the payload). Delivered/s = messages that
 * arrived / (last arrival − first publish). Lost = published − delivered after the run settles.
 * Also: the batch codec (batch.ts) against dag-cbor on the same batch.
 *
 *   node bench/pubsub.bench.ts [--quick]
 *   NODE_OPTIONS=--cpu-prof node bench/pubsub.bench.ts --one ours|plain|nats RATE SECONDS   (one run, profiles both children)
 */
import { type ChildProcess, fork, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { silentLogger } from '../src/common/logger.ts'
import { parseConfig } from '../src/config/config.ts'
import {
  type Batch,
  createMessaging,
  decodeBatch,
  encodeBatch,
  GOSSIP_TOPIC_PREFIX,
  gossipsubInit,
  PeerPenalties,
} from '../src/messaging/index.ts'
import { NodusMetrics } from '../src/metrics/index.ts'
import { createHost, DEFAULT_HOST_OPTIONS, type NodusLibp2p } from '../src/net/index.ts'
import { type BenchOptions, cpuMs, measure, peerNotInstalled, type Row, ratioOf, sig, which } from './lib.ts'

export const description =
  'Pub/sub between two processes on loopback, 256-byte messages at a fixed offered rate: ours (gossipsub + application-level batching, 2 ms linger) against plain js-libp2p gossipsub (one gossip message per message) and NATS (nats-server + @nats-io/transport-node) in the same run. The MB/s columns hold delivered messages per second; CPU µs per delivered message covers both processes; latency is publish to delivery. Last rows: the batch codec against dag-cbor (MB/s of message bytes).'

const SELF = fileURLToPath(import.meta.url)
const TOPIC = 'bench'
const MESSAGE_BYTES = 256

type Impl = 'ours' | 'plain' | 'nats'

/** What a child reports at the end. */
interface ChildReport {
  cpuMs: number
  lagP99Ms: number
  published?: number
  refused?: number
  delivered?: number
  firstPublishMs?: number
  lastArrivalMs?: number
  latencies?: number[]
}

/** Control messages between the harness and a child. */
type ToChild =
  | { cmd: 'subscribe' }
  | { cmd: 'connect'; addrs: string[]; peerId: string }
  | { cmd: 'dialAll'; peers: string[][] }
  | { cmd: 'waitSubscribers'; n: number }
  | { cmd: 'publish'; rate: number; seconds: number }
  | { cmd: 'count' }
  | { cmd: 'report' }

function send(child: ChildProcess, m: ToChild): void {
  child.send(m)
}

/** A child's messages, queued from the start (none is missed between two awaits). */
function mailbox(child: ChildProcess): <T>() => Promise<T> {
  const queue: unknown[] = []
  const waiting: { resolve: (m: unknown) => void; reject: (e: Error) => void }[] = []
  let exited: Error | undefined
  child.on('message', (m) => {
    const w = waiting.shift()
    if (w === undefined) queue.push(m)
    else w.resolve(m)
  })
  child.once('exit', (code, signal) => {
    exited = new Error(`child exited (${code ?? signal}) before answering`)
    for (const w of waiting.splice(0)) w.reject(exited)
  })
  return <T>() =>
    new Promise<T>((resolve, reject) => {
      if (queue.length > 0) resolve(queue.shift() as T)
      else if (exited !== undefined) reject(exited)
      else waiting.push({ resolve: resolve as (m: unknown) => void, reject })
    })
}

// ---- children ------------------------------------------------------------------------------------

const now = (): number => performance.timeOrigin + performance.now()

/** A host for `impl` (ours: with the messaging area; plain: gossipsub's defaults). */
async function hostFor(impl: 'ours' | 'plain') {
  // PUBSUB_BENCH_MESSAGING: `messaging.*` overrides as JSON, to try settings (`--one`, `--mesh`).
  const over = JSON.parse(process.env.PUBSUB_BENCH_MESSAGING ?? '{}') as Record<string, unknown>
  const options = parseConfig({ dataDir: '/unused', messaging: over }).messaging
  const penalties = new PeerPenalties({ now: () => Date.now() }, options.maxPenalizedPeers)
  const init = impl === 'ours' ? gossipsubInit(options, penalties) : {}
  const libp2p = await createHost(
    await generateKeyPair('Ed25519'),
    { ...DEFAULT_HOST_OPTIONS },
    { pubsub: init },
  )
  await libp2p.start()
  const pubsub = libp2p.services.pubsub
  if (pubsub === undefined) throw new Error('no pubsub')
  const messaging =
    impl === 'ours'
      ? createMessaging(
          {
            logger: silentLogger(),
            clock: { now: () => Date.now() },
            metrics: new NodusMetrics(),
            self: libp2p.peerId.toString(),
            pubsub,
            penalties,
            peers: { isBanned: () => false, report: () => undefined },
          },
          options,
        )
      : undefined
  messaging?.start()
  return { libp2p, pubsub, messaging }
}

/** Open-loop publishing: every 1 ms tick publishes what `rate` owes since the start. */
async function paced(
  rate: number,
  seconds: number,
  publishOne: () => boolean,
): Promise<{ published: number; refused: number }> {
  const total = Math.round(rate * seconds)
  let published = 0
  let refused = 0
  const t0 = now()
  while (published + refused < total) {
    const owed = Math.min(total, Math.floor(((now() - t0) / 1000) * rate))
    while (published + refused < owed) {
      if (publishOne()) published++
      else refused++
    }
    await new Promise((r) => setTimeout(r, 1))
  }
  return { published, refused }
}

function payload(): Uint8Array {
  const b = new Uint8Array(MESSAGE_BYTES)
  for (let i = 8; i < b.length; i++) b[i] = i & 0xff
  return b
}

async function child(impl: Impl, role: 'pub' | 'sub' | 'node', natsUrl: string | undefined): Promise<void> {
  const lag = monitorEventLoopDelay({ resolution: 10 })
  lag.enable()
  let cpu0 = cpuMs()
  const latencies: number[] = []
  let delivered = 0
  let lastArrivalMs = 0
  let firstPublishMs = 0
  let published = 0
  let refused = 0
  const arrived = (publishedAtMs: number): void => {
    const t = now()
    delivered++
    lastArrivalMs = t
    latencies.push(t - publishedAtMs)
  }
  let publish: ((data: Uint8Array) => void) | undefined
  let subscribe: (() => Promise<void>) | undefined
  let connect: ((m: { addrs: string[]; peerId: string }) => Promise<void>) | undefined
  let dialAll: ((peers: string[][]) => Promise<void>) | undefined
  let waitSubscribers: ((n: number) => Promise<void>) | undefined
  let libp2p: NodusLibp2p | undefined
  if (impl === 'nats') {
    const { connect: natsConnect } = await import('@nats-io/transport-node')
    const nc = await natsConnect({ servers: natsUrl as string })
    publish = (data) => nc.publish(TOPIC, data)
    subscribe = async () => {
      nc.subscribe(TOPIC, {
        callback: (_err, msg) => {
          arrived(new DataView(msg.data.buffer, msg.data.byteOffset, 8).getFloat64(0))
        },
      })
      await nc.flush()
    }
    process.send?.({ ready: true, addrs: [], peerId: '' })
  } else {
    const h = await hostFor(impl)
    libp2p = h.libp2p
    const gossipTopic = GOSSIP_TOPIC_PREFIX + TOPIC
    if (h.messaging !== undefined) {
      const m = h.messaging
      publish = (data) => {
        m.publish(TOPIC, data)
      }
      subscribe = async () => {
        const sub = m.subscribe(TOPIC, { capacity: 1_000_000 })
        void (async () => {
          for await (const msg of sub) arrived(msg.publishedAtMs)
        })()
      }
    } else {
      publish = (data) => {
        h.pubsub.publish(gossipTopic, data).catch(() => {})
      }
      subscribe = async () => {
        h.pubsub.addEventListener('message', (evt) => {
          const d = evt.detail.data
          arrived(new DataView(d.buffer, d.byteOffset, 8).getFloat64(0))
        })
        h.pubsub.subscribe(gossipTopic)
      }
    }
    // One dial at a time, 3 tries each: 16 processes starting on 2 cores time out Noise handshakes.
    dialAll = async (peers) => {
      for (const addrs of peers) {
        for (let attempt = 1; ; attempt++) {
          try {
            await h.libp2p.dial(addrs.map((a) => multiaddr(a)))
            break
          } catch (err) {
            if (attempt === 3) throw err
          }
        }
      }
    }
    waitSubscribers = async (n) => {
      const deadline = now() + 30_000
      while (h.pubsub.getSubscribers(gossipTopic).length < n) {
        if (now() > deadline)
          throw new Error(`only ${h.pubsub.getSubscribers(gossipTopic).length} of ${n} subscribers`)
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    connect = async ({ addrs, peerId }) => {
      await h.libp2p.dial(addrs.map((a) => multiaddr(a)))
      const deadline = now() + 10_000
      while (!h.pubsub.getSubscribers(gossipTopic).some((p) => p.toString() === peerId)) {
        if (now() > deadline) throw new Error('the subscriber never showed up')
        await new Promise((r) => setTimeout(r, 10))
      }
    }
    process.send?.({
      ready: true,
      addrs: h.libp2p.getMultiaddrs().map(String),
      peerId: h.libp2p.peerId.toString(),
    })
  }
  process.on('message', async (m: ToChild) => {
    if (process.env.PUBSUB_BENCH_DEBUG) process.stderr.write(`[${role}] ${m.cmd}\n`)
    if (m.cmd === 'subscribe') {
      cpu0 = cpuMs()
      lag.reset()
      await subscribe?.()
      process.send?.({ ok: true })
    } else if (m.cmd === 'dialAll') {
      await dialAll?.(m.peers)
      process.send?.({ ok: true })
    } else if (m.cmd === 'waitSubscribers') {
      await waitSubscribers?.(m.n)
      process.send?.({ ok: true })
    } else if (m.cmd === 'connect') {
      await connect?.(m)
      process.send?.({ ok: true })
    } else if (m.cmd === 'publish') {
      cpu0 = cpuMs()
      lag.reset()
      const data = payload()
      const view = new DataView(data.buffer)
      firstPublishMs = now()
      const r = await paced(m.rate, m.seconds, () => {
        // ours carries the time in the batch; the others in the payload (each message its own copy).
        const d = impl === 'ours' ? data : data.slice()
        if (impl !== 'ours') new DataView(d.buffer).setFloat64(0, now())
        else view.setFloat64(0, now())
        try {
          publish?.(d)
          return true
        } catch {
          return false
        }
      })
      published = r.published
      refused = r.refused
      process.send?.({ ok: true, published, refused })
    } else if (m.cmd === 'count') {
      process.send?.({ delivered })
    } else if (m.cmd === 'report') {
      lag.disable()
      const report: ChildReport = {
        cpuMs: cpuMs() - cpu0,
        lagP99Ms: lag.percentile(99) / 1e6,
        published,
        refused,
        delivered,
        firstPublishMs,
        lastArrivalMs,
        latencies,
      }
      // Exit only once the (large) report is written to the channel.
      process.send?.(report, undefined, {}, () => {
        void Promise.resolve(libp2p?.stop())
          .catch(() => {})
          .finally(() => process.exit(0))
      })
    }
  })
  process.on('disconnect', () => process.exit(0))
}

// ---- harness -------------------------------------------------------------------------------------

interface RunResult {
  impl: Impl
  rate: number
  delivered: number
  published: number
  refused: number
  msgsPerSec: number
  p50Ms: number
  p99Ms: number
  cpuUsPerMsg: number
  lagP99Ms: number
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}

async function freePort(): Promise<number> {
  const s = createServer()
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as { port: number }).port
  s.close()
  return port
}

/** One run: a subscriber and a publisher process of `impl`, `rate` msg/s offered for `seconds`. */
async function runOne(impl: Impl, rate: number, seconds: number, natsUrl?: string): Promise<RunResult> {
  const args = (role: string) => ['--child', impl, role, ...(natsUrl === undefined ? [] : [natsUrl])]
  const sub = fork(SELF, args('sub'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const pub = fork(SELF, args('pub'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const fromSub = mailbox(sub)
  const fromPub = mailbox(pub)
  try {
    const subReady = await fromSub<{ addrs: string[]; peerId: string }>()
    await fromPub()
    send(sub, { cmd: 'subscribe' })
    await fromSub()
    if (impl !== 'nats') {
      send(pub, { cmd: 'connect', addrs: subReady.addrs, peerId: subReady.peerId })
      await fromPub()
    }
    send(pub, { cmd: 'publish', rate, seconds })
    const done = await fromPub<{ published: number; refused: number }>()
    // Let the run settle: until everything arrived, or nothing more for 2 s (20 s at most).
    const settleDeadline = performance.now() + 20_000
    let last = -1
    let lastChange = performance.now()
    while (performance.now() < settleDeadline) {
      send(sub, { cmd: 'count' })
      const { delivered } = await fromSub<{ delivered: number }>()
      if (delivered >= done.published) break
      if (delivered !== last) {
        last = delivered
        lastChange = performance.now()
      } else if (performance.now() - lastChange > 2000) break
      await new Promise((r) => setTimeout(r, 50))
    }
    send(sub, { cmd: 'report' })
    const subReport = await fromSub<ChildReport>()
    send(pub, { cmd: 'report' })
    const pubReport = await fromPub<ChildReport>()
    const lat = [...(subReport.latencies ?? [])].sort((a, b) => a - b)
    const delivered = subReport.delivered ?? 0
    const spanMs = (subReport.lastArrivalMs ?? 0) - (pubReport.firstPublishMs ?? 0)
    return {
      impl,
      rate,
      delivered,
      published: done.published,
      refused: done.refused,
      msgsPerSec: spanMs > 0 ? Math.round((delivered / spanMs) * 1000) : 0,
      p50Ms: sig(percentile(lat, 50), 3),
      p99Ms: sig(percentile(lat, 99), 3),
      cpuUsPerMsg:
        delivered > 0 ? sig(((subReport.cpuMs + pubReport.cpuMs) * 1000) / delivered, 3) : Number.NaN,
      lagP99Ms: sig(Math.max(subReport.lagP99Ms, pubReport.lagP99Ms), 3),
    }
  } finally {
    sub.kill()
    pub.kill()
  }
}

interface MeshResult {
  nodes: number
  publishers: number
  published: number
  refused: number
  /** Deliveries summed over every node (each should get every message: nodes × published). */
  delivered: number
  publishedPerSec: number
  p50Ms: number
  p99Ms: number
  cpuUsPerDeliveryPerNode: number
  lagP99Ms: number
}

/**
 * A devnet of `nodes` processes (hosts + the messaging area, every pair connected), every node
 * subscribed, `publishers` of them publishing `totalRate` msg/s between them for `seconds`.
 */
async function runMesh(
  nodes: number,
  publishers: number,
  totalRate: number,
  seconds: number,
): Promise<MeshResult> {
  const children = Array.from({ length: nodes }, () =>
    fork(SELF, ['--child', 'ours', 'node'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  )
  const boxes = children.map((c) => mailbox(c))
  try {
    const ready = await Promise.all(boxes.map((b) => b<{ addrs: string[]; peerId: string }>()))
    for (const c of children) send(c, { cmd: 'subscribe' })
    await Promise.all(boxes.map((b) => b()))
    for (const [i, c] of children.entries())
      send(c, { cmd: 'dialAll', peers: ready.slice(i + 1).map((r) => r.addrs) })
    await Promise.all(boxes.map((b) => b()))
    for (const c of children) send(c, { cmd: 'waitSubscribers', n: nodes - 1 })
    await Promise.all(boxes.map((b) => b()))
    for (const c of children.slice(0, publishers))
      send(c, { cmd: 'publish', rate: totalRate / publishers, seconds })
    const done = await Promise.all(
      boxes.slice(0, publishers).map((b) => b<{ published: number; refused: number }>()),
    )
    const published = done.reduce((n, d) => n + d.published, 0)
    const settleDeadline = performance.now() + 30_000
    let last = -1
    let lastChange = performance.now()
    while (performance.now() < settleDeadline) {
      for (const c of children) send(c, { cmd: 'count' })
      const delivered = (await Promise.all(boxes.map((b) => b<{ delivered: number }>()))).reduce(
        (n, d) => n + d.delivered,
        0,
      )
      if (delivered >= published * nodes) break
      if (delivered !== last) {
        last = delivered
        lastChange = performance.now()
      } else if (performance.now() - lastChange > 3000) break
      await new Promise((r) => setTimeout(r, 100))
    }
    for (const c of children) send(c, { cmd: 'report' })
    const reports = await Promise.all(boxes.map((b) => b<ChildReport>()))
    const lat = reports.flatMap((r) => r.latencies ?? []).sort((a, b) => a - b)
    const delivered = reports.reduce((n, r) => n + (r.delivered ?? 0), 0)
    const cpu = reports.reduce((n, r) => n + r.cpuMs, 0)
    return {
      nodes,
      publishers,
      published,
      refused: done.reduce((n, d) => n + d.refused, 0),
      delivered,
      publishedPerSec: Math.round(published / seconds),
      p50Ms: sig(percentile(lat, 50), 3),
      p99Ms: sig(percentile(lat, 99), 3),
      cpuUsPerDeliveryPerNode: delivered > 0 ? sig((cpu * 1000) / delivered, 3) : Number.NaN,
      lagP99Ms: sig(Math.max(...reports.map((r) => r.lagP99Ms)), 3),
    }
  } finally {
    for (const c of children) c.kill()
  }
}

/** Start nats-server on a free loopback port; undefined when it is not installed. */
async function startNats(): Promise<{ url: string; proc: ChildProcess } | undefined> {
  const bin = which('nats-server')
  if (bin === undefined) return undefined
  const port = await freePort()
  const proc = spawn(bin, ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] })
  // nats-server logs "Server is ready" on stderr once it listens.
  await new Promise<void>((resolve, reject) => {
    let text = ''
    proc.stderr?.on('data', (b: Buffer) => {
      text += b.toString()
      if (text.includes('Server is ready')) resolve()
    })
    proc.once('exit', (code) => reject(new Error(`nats-server exited (${code}): ${text.slice(-300)}`)))
  })
  return { url: `nats://127.0.0.1:${port}`, proc }
}

function describeRun(r: RunResult): string {
  const lost = r.published - r.delivered
  return `${r.delivered.toLocaleString('en')}/${r.published.toLocaleString('en')} delivered${lost > 0 ? ` (${lost} lost)` : ''}${r.refused > 0 ? `, ${r.refused} refused (queue full)` : ''}, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.cpuUsPerMsg} CPU µs/msg, loop lag p99 ${r.lagP99Ms} ms`
}

/** A 256-message batch of 256-byte messages, as the batcher makes it. */
function sampleBatch(): Batch {
  const t = 1_700_000_000_000
  return {
    sessionStart: t * 1000,
    firstSeq: t * 1000 + 5,
    timeMs: t,
    entries: Array.from({ length: 250 }, (_, i) => ({ data: payload(), publishedAtMs: t + (i >> 7) })),
  }
}

/** The batch codec (encode + decode) against dag-cbor encoding the same batch as `[header…, [[dt, bytes]…]]`. */
async function codecRows(quick: boolean): Promise<Row[]> {
  const batch = sampleBatch()
  const limits = { maxBatchBytes: 1 << 20, maxMessageBytes: 1 << 16, maxMessagesPerBatch: 1024 }
  const asCbor = () => [
    1,
    batch.sessionStart,
    batch.firstSeq,
    batch.timeMs,
    batch.entries.map((e) => [e.publishedAtMs - batch.timeMs, e.data]),
  ]
  const rounds = quick ? 200 : 2000
  const bytes = batch.entries.length * MESSAGE_BYTES * rounds
  const [ours, peer] = await measure(
    [
      {
        fn: () => {
          for (let i = 0; i < rounds; i++) decodeBatch(encodeBatch(batch), limits)
        },
      },
      {
        fn: () => {
          for (let i = 0; i < rounds; i++) dagCbor.decode(dagCbor.encode(asCbor()))
        },
      },
    ],
    { runs: quick ? 3 : 7, warmup: 1 },
  )
  const o = ours as { wallMs: number; cpuMs: number }
  const pr = peer as { wallMs: number; cpuMs: number }
  const oursMBps = sig(bytes / 1e6 / (o.wallMs / 1000))
  const peerMBps = sig(bytes / 1e6 / (pr.wallMs / 1000))
  return [
    {
      name: 'batch codec: encode + decode, 250 × 256 B messages',
      ours_MBps: oursMBps,
      peer: '@ipld/dag-cbor encode + decode of the same fields',
      peer_MBps: peerMBps,
      ratio: ratioOf(oursMBps, peerMBps),
      note: `ours ${sig((o.wallMs * 1000) / rounds)} µs per batch (${encodeBatch(batch).byteLength} B), dag-cbor ${sig((pr.wallMs * 1000) / rounds)} µs (${dagCbor.encode(asCbor()).byteLength} B)`,
    },
  ]
}

export async function run(options: BenchOptions): Promise<Row[]> {
  const seconds = options.quick ? 2 : 5
  const rows: Row[] = []
  const nats = await startNats()
  try {
    const rates = options.quick ? [15_000] : [2_000, 15_000, 100_000]
    for (const rate of rates) {
      const ours = await runOne('ours', rate, seconds)
      // Plain gossipsub falls behind below 15,000/s (it then needs tens of seconds to drain): run for
      // 2 s there, and not at all at 100,000/s.
      const plain = rate > 15_000 ? undefined : await runOne('plain', rate, rate > 2_000 ? 2 : seconds)
      const natsRun = nats === undefined ? undefined : await runOne('nats', rate, seconds, nats.url)
      const name = (what: string) => `2 processes, 256 B, offered ${rate.toLocaleString('en')} msg/s: ${what}`
      rows.push({
        name: name('ours (batched) vs plain gossipsub'),
        ours_MBps: ours.msgsPerSec,
        peer: '@libp2p/gossipsub 17.1.1, one gossip message per message',
        peer_MBps: plain?.msgsPerSec ?? null,
        ratio: plain === undefined ? null : ratioOf(ours.msgsPerSec, plain.msgsPerSec),
        note:
          plain === undefined
            ? `ours ${describeRun(ours)}; plain not run at this rate (it falls behind at 15,000/s)`
            : `ours ${describeRun(ours)}; plain ${describeRun(plain)}`,
      })
      rows.push({
        name: name('ours (batched) vs NATS'),
        ours_MBps: ours.msgsPerSec,
        peer:
          natsRun === undefined
            ? peerNotInstalled('nats-server')
            : 'nats-server 2.9 + @nats-io/transport-node 3.4',
        peer_MBps: natsRun?.msgsPerSec ?? null,
        ratio: natsRun === undefined ? null : ratioOf(ours.msgsPerSec, natsRun.msgsPerSec),
        note: natsRun === undefined ? `ours ${describeRun(ours)}` : `NATS ${describeRun(natsRun)}`,
      })
    }
  } finally {
    nats?.proc.kill()
  }
  if (!options.quick) {
    const mesh = await runMesh(16, 4, 1000, seconds)
    rows.push({
      name: '16 processes, every pair connected, all subscribed; 4 publish 1,000 msg/s between them, 256 B',
      ours_MBps: mesh.publishedPerSec,
      peer: '-',
      peer_MBps: null,
      ratio: null,
      note: `published/s network-wide; ${mesh.delivered.toLocaleString('en')}/${(mesh.published * mesh.nodes).toLocaleString('en')} deliveries${mesh.delivered < mesh.published * mesh.nodes ? ` (${mesh.published * mesh.nodes - mesh.delivered} lost)` : ', none lost'}${mesh.refused > 0 ? `, ${mesh.refused} refused` : ''}, p50 ${mesh.p50Ms} ms, p99 ${mesh.p99Ms} ms, ${mesh.cpuUsPerDeliveryPerNode} CPU µs per delivery (all processes), loop lag p99 ${mesh.lagP99Ms} ms`,
    })
  }
  rows.push(...(await codecRows(options.quick)))
  return rows
}

const argv = process.argv.slice(2)
if (argv[0] === '--child') {
  await child(argv[1] as Impl, argv[2] as 'pub' | 'sub' | 'node', argv[3])
} else if (argv[0] === '--mesh') {
  process.stdout.write(
    `${JSON.stringify(await runMesh(Number(argv[1] ?? 16), 4, Number(argv[2] ?? 1000), Number(argv[3] ?? 5)))}\n`,
  )
} else if (argv[0] === '--one') {
  const impl = argv[1] as Impl
  const nats = impl === 'nats' ? await startNats() : undefined
  try {
    const r = await runOne(impl, Number(argv[2] ?? 15_000), Number(argv[3] ?? 5), nats?.url)
    process.stdout.write(`${JSON.stringify(r)}\n`)
  } finally {
    nats?.proc.kill()
  }
} else if (process.argv[1] === SELF) {
  for (const row of await run({ quick: argv.includes('--quick') }))
    process.stdout.write(`${JSON.stringify(row)}\n`)
}
