import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as dagCbor from '@ipld/dag-cbor'
import { systemClock } from '../src/common/clock.ts'
import { parseConfig } from '../src/config/index.ts'
import { DirectStore, type MessagingOptions } from '../src/messaging/index.ts'
import { lengthPrefixed, requestResponse, StreamReader } from '../src/net/index.ts'
import { type DirectPeer, startDirectPeer, stopDirectPeer } from '../test/messaging/direct-peers.ts'
import { type BenchOptions, cpuMs, sig } from './lib.ts'

export const description =
  'Encrypted direct messages end to end between in-process nodes (TCP, Noise, Yamux, kad-dht; LMDB ' +
  'flushed before every answer), 256-byte bodies: online delivery (8 in flight) against a bare libp2p ' +
  'request/response of the same bytes without crypto or disk; storing at 3 mailbox keepers of an offline ' +
  'recipient; collecting them when it is back. Both ends in one process: CPU per message counts both. ' +
  'Last row: the inbox writes alone (DirectStore.addMessage: the message and its replay-window id, ' +
  'committed and flushed before it returns), 8 in flight, whose commits and flushes concurrent ' +
  'deliveries share, against the same writes one at a time. ratio = ours msgs/s ÷ peer msgs/s.'

export interface DirectRow {
  name: string
  peer: string
  peer_MBps: null
  ratio: number | null
  note: string
  ours_msgsPerSec: number
  peer_msgsPerSec: number | null
  p50Ms: number
  p99Ms: number
}

type Node = DirectPeer

const clock = systemClock

/** A direct-messaging peer on its own host (test/messaging/direct-peers.ts); `from` restarts one. */
function startNode(options: MessagingOptions, from?: Node): Promise<Node> {
  return startDirectPeer(clock, options, from)
}

const stopNode = stopDirectPeer

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN
}

/** Run `count` calls of `op`, `inFlight` at once; msgs/s, CPU µs per message, p50/p99 ms. */
async function timed(
  count: number,
  inFlight: number,
  op: (i: number) => Promise<unknown>,
): Promise<{ perSec: number; cpuUs: number; p50: number; p99: number }> {
  const lat: number[] = []
  let next = 0
  const c0 = cpuMs()
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const i = next++
        const s = performance.now()
        await op(i)
        lat.push(performance.now() - s)
      }
    }),
  )
  const ms = performance.now() - t0
  return {
    perSec: (count / ms) * 1000,
    cpuUs: ((cpuMs() - c0) * 1000) / count,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
  }
}

async function connect(nodes: Node[]): Promise<void> {
  for (let i = 0; i < nodes.length; i++)
    for (let j = i + 1; j < nodes.length; j++)
      await (nodes[i] as Node).libp2p.dial((nodes[j] as Node).libp2p.getMultiaddrs())
}

/** The inbox writes of `n` 256-byte messages on a fresh store, `inFlight` at once. */
async function inboxWrites(n: number, inFlight: number): Promise<Awaited<ReturnType<typeof timed>>> {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-bench-inbox-'))
  const store = new DirectStore(dir, {
    ...{ mailboxMaxMessages: 1, mailboxMaxBytes: 1, mailboxSenderMessages: 1, mailboxSenderBytes: 1 },
    ...{ mailboxRecipientMessages: 1, mailboxRecipientBytes: 1 },
    maxInboxMessages: n,
    replayWindowIds: n,
  })
  store.open()
  const body = new Uint8Array(256).fill(7)
  try {
    return await timed(n, inFlight, async (i) => {
      const id = i.toString(16).padStart(32, '0')
      const m = { id, from: 'bench', sentAtMs: 0, receivedAtMs: i, via: 'online' as const, body }
      if ((await store.addMessage(m, Number.MAX_SAFE_INTEGER, 0)) !== 'added') throw new Error('not added')
    })
  } finally {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  }
}

/** Runs the benchmark and returns its rows. Throws when a message is not delivered. */
export async function run(options: BenchOptions): Promise<DirectRow[]> {
  const n = options.quick ? 100 : 400
  const stored = options.quick ? 50 : 200
  const config: MessagingOptions = {
    ...parseConfig({ dataDir: '/nonexistent' }).messaging,
    mailboxReplicas: 3,
    mailboxSenderMessages: 10_000,
  }
  const body = new Uint8Array(256).fill(7)
  const nodes: Node[] = []
  const rows: DirectRow[] = []
  let onlinePerSec = Number.NaN
  try {
    for (let i = 0; i < 5; i++) nodes.push(await startNode(config))
    await connect(nodes)
    const [a, b] = nodes as [Node, Node]
    const to = b.id.peerId.toString()
    await a.direct.send(to, body) // the key lookup, once

    const ours = await timed(n, 8, () => a.direct.send(to, body))
    onlinePerSec = ours.perSec
    if (b.direct.inbox({ limit: 1000 }).length < n) throw new Error('online: not every message was delivered')

    // The peer: the same bytes over a bare request/response, no crypto, no disk.
    const frame = dagCbor.encode({ op: 'deliver', msg: new Uint8Array(6979).fill(1) })
    await b.libp2p.handle(
      '/bench/echo/1.0.0',
      (stream) =>
        void (async () => {
          const reader = new StreamReader(stream, {})
          await reader.readFrame(1 << 20)
          stream.send(lengthPrefixed(dagCbor.encode({ ok: true })))
          await stream.close()
        })().catch(() => stream.abort(new Error('echo failed'))),
      { maxInboundStreams: 64, maxOutboundStreams: 64 },
    )
    const peer = await timed(n, 8, () =>
      requestResponse(
        a.libp2p,
        b.libp2p.peerId,
        '/bench/echo/1.0.0',
        frame,
        { timeoutMs: 10_000, what: 'echo', maxReplyBytes: 1024 },
        (r) => r,
      ),
    )
    rows.push({
      name: 'direct message 256 B online, 8 in flight',
      peer: 'bare libp2p request/response, same bytes',
      peer_MBps: null,
      ratio: sig(ours.perSec / peer.perSec),
      note: `ours ${Math.round(ours.perSec)} msgs/s, ${Math.round(ours.cpuUs)} µs CPU/msg (both ends), p50 ${sig(ours.p50)} ms, p99 ${sig(ours.p99)} ms; peer ${Math.round(peer.perSec)} msgs/s, ${Math.round(peer.cpuUs)} µs CPU/msg, p99 ${sig(peer.p99)} ms; ${n} messages`,
      ours_msgsPerSec: sig(ours.perSec),
      peer_msgsPerSec: sig(peer.perSec),
      p50Ms: sig(ours.p50),
      p99Ms: sig(ours.p99),
    })

    // The mailbox: c is the recipient, stopped; a stores at 3 of the others.
    const c = nodes[2] as Node
    const cTo = c.id.peerId.toString()
    await a.direct.keys.lookup(cTo, AbortSignal.timeout(10_000))
    await stopNode(c)
    const store = await timed(stored, 8, async () => {
      const r = await a.direct.send(cTo, body)
      if (r.via !== 'mailbox' || r.keepers !== 3) throw new Error(`mailbox: ${r.via} at ${r.keepers} keepers`)
    })
    rows.push({
      name: 'direct message 256 B to an offline peer: stored at 3 keepers, 8 in flight',
      peer: '-',
      peer_MBps: null,
      ratio: null,
      note: `ours ${Math.round(store.perSec)} msgs/s, ${Math.round(store.cpuUs)} µs CPU/msg (sender and 3 keepers), p50 ${sig(store.p50)} ms, p99 ${sig(store.p99)} ms; ${stored} messages`,
      ours_msgsPerSec: sig(store.perSec),
      peer_msgsPerSec: null,
      p50Ms: sig(store.p50),
      p99Ms: sig(store.p99),
    })

    const back = await startNode(config, c)
    nodes[2] = back
    await connect(nodes.filter((x) => x !== c))
    const c0 = cpuMs()
    const t0 = performance.now()
    const got = await back.direct.collect()
    const ms = performance.now() - t0
    if (got !== stored) throw new Error(`collect: ${got} of ${stored}`)
    // The same round with nothing to collect: the keeper lookup and the empty fetches.
    const e0 = performance.now()
    await back.direct.collect()
    const emptyMs = performance.now() - e0
    rows.push({
      name: 'mailbox collect: fetch, open, store, ack',
      peer: '-',
      peer_MBps: null,
      ratio: null,
      note: `ours ${Math.round((got / ms) * 1000)} msgs/s, ${Math.round(((cpuMs() - c0) * 1000) / got)} µs CPU/msg; ${got} messages from 3 keepers in ${Math.round(ms)} ms, of which about ${Math.round(emptyMs)} ms is the round itself (keeper lookup, empty fetches)`,
      ours_msgsPerSec: sig((got / ms) * 1000),
      peer_msgsPerSec: null,
      p50Ms: sig(ms),
      p99Ms: sig(ms),
    })
  } finally {
    for (const x of nodes) await stopNode(x).catch(() => {})
    for (const x of nodes) await rm(x.dataDir, { recursive: true, force: true })
  }

  const together = await inboxWrites(n * 5, 8)
  const alone = await inboxWrites(n, 1)
  rows.push({
    name: 'inbox writes alone: DirectStore.addMessage, 256 B, 8 in flight (shared commits)',
    peer: 'the same writes one at a time (a commit + flush each)',
    peer_MBps: null,
    ratio: sig(together.perSec / alone.perSec),
    note: `ours ${Math.round(together.perSec)} msgs/s, p50 ${sig(together.p50)} ms, p99 ${sig(together.p99)} ms; peer ${Math.round(alone.perSec)} msgs/s, p50 ${sig(alone.p50)} ms; ${n * 5} and ${n} messages; online delivery (first row), whose answers wait for these writes: ${Math.round(onlinePerSec)} msgs/s`,
    ours_msgsPerSec: sig(together.perSec),
    peer_msgsPerSec: sig(alone.perSec),
    p50Ms: sig(together.p50),
    p99Ms: sig(together.p99),
  })
  return rows
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = await run({ quick: process.argv.includes('--quick') })
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`)
}
