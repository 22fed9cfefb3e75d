/**
 * `nodus demo --scenario messaging`: the messaging area end to end on a devnet of separate node
 * processes.
 *
 * 1. Every node subscribes to one topic through its HTTP API (`GET /pubsub/:topic`, server-sent
 *    events); probes from each publisher wait until every subscriber hears every publisher.
 * 2. `publishers` nodes publish `messages` messages of `bytes` bytes between them at `rate` messages a
 *    second (`POST /pubsub/:topic`). Every subscriber must receive every message once, in order per
 *    publisher. Latency is each message's receive time at a subscriber minus its publish time at its
 *    publisher (both nodes' wall clocks, on one machine).
 * 3. A recipient node is stopped (SIGTERM); `offline` sealed direct messages are sent to it from other
 *    nodes (`POST /messages/:peer`, which stores them at the recipient's mailbox keepers); it is
 *    restarted and must collect every one (`GET /messages`).
 *
 * Cleans up every process and temporary directory, whatever happens.
 */
import { NodusError } from '../common/errors.ts'
import {
  apiOf,
  checkWhole,
  quantile,
  type ScenarioDevnetOptions,
  sleep,
  until,
  withDevnet,
} from './demo-devnet.ts'
import { listInbox, sendDirect } from './direct.ts'
import { followTopic, publishMessage, type SubscribedMessage } from './pubsub.ts'

export interface MessagingDemoOptions extends ScenarioDevnetOptions {
  /** Node processes; every one subscribes. Default 16. */
  nodes: number
  /** Messages published in the measured phase, all publishers together. Default 2000. */
  messages: number
  /** Nodes that publish (nodes 0 … publishers−1). Default 4. */
  publishers: number
  /** Messages a second offered, all publishers together. Default 500. */
  rate: number
  /** Bytes per message. Default 256. */
  bytes: number
  /** Sealed messages sent to the stopped node. Default 10. */
  offline: number
}

export interface MessagingDemoResult {
  ok: boolean
  scenario: 'messaging'
  nodes: number
  publishers: number
  subscribers: number
  /** Messages published (accepted by their publisher's API). */
  published: number
  /** Deliveries expected: published × subscribers. */
  expected: number
  /** Distinct deliveries seen (a duplicate is not counted twice). */
  delivered: number
  /** expected − delivered. */
  lost: number
  duplicates: number
  /** Deliveries that came after a later message of the same publisher at the same subscriber. */
  outOfOrder: number
  /** published ÷ seconds from the first publish to the last delivery. */
  msgsPerSecond: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  offlineSent: number
  offlineDelivered: number
  seconds: number
}

/** The default options of the scenario. */
export const MESSAGING_DEMO_DEFAULTS = {
  nodes: 16,
  messages: 2000,
  publishers: 4,
  rate: 500,
  bytes: 256,
  offline: 10,
} as const

const TOPIC = 'nodus-demo'

/** Publishes in flight through the APIs at once, all publishers together. */
const MAX_IN_FLIGHT = 64

/** Validate before anything starts. Throws INVALID_ARGUMENT. */
export function checkMessagingDemoOptions(o: MessagingDemoOptions): void {
  checkWhole('nodes', o.nodes, 3)
  checkWhole('messages', o.messages, 1)
  checkWhole('publishers', o.publishers, 1)
  checkWhole('rate', o.rate, 1)
  checkWhole('bytes', o.bytes, 16)
  checkWhole('offline', o.offline, 0)
  if (o.publishers > o.nodes - 1)
    throw new NodusError('INVALID_ARGUMENT', '--publishers must leave at least one node that only subscribes')
}

/** What one subscriber (one node's SSE stream) has seen. */
interface Subscriber {
  index: number
  /** `${publisher}:${seq}` → latency, ms. */
  seen: Map<string, number>
  duplicates: number
  outOfOrder: number
  lastSeq: Map<string, number>
  lastAtMs: number
  ended?: string
}

/** Run the scenario. Resolves with the result (`ok` false on any loss); throws on setup errors. */
export async function runMessagingDemo(o: MessagingDemoOptions): Promise<MessagingDemoResult> {
  checkMessagingDemoOptions(o)
  const t0 = Date.now()
  const streams: Promise<unknown>[] = []
  const stop = new AbortController()
  try {
    return await withDevnet(o, 'nodus-demo-messaging-', async (net, signal) => {
      signal.addEventListener('abort', () => stop.abort(), { once: true })
      // 1. Every node subscribes.
      const subs: Subscriber[] = net.nodes.map((n) => ({
        index: n.index,
        seen: new Map(),
        duplicates: 0,
        outOfOrder: 0,
        lastSeq: new Map(),
        lastAtMs: 0,
      }))
      const onMessage = (s: Subscriber, m: SubscribedMessage): void => {
        const key = `${m.publisher}:${m.seq}`
        if (s.seen.has(key)) {
          s.duplicates++
          return
        }
        s.seen.set(key, m.receivedAtMs - m.publishedAtMs)
        const last = s.lastSeq.get(m.publisher) ?? -1
        if (m.seq < last) s.outOfOrder++
        else s.lastSeq.set(m.publisher, m.seq)
        s.lastAtMs = Date.now()
      }
      for (const s of subs) {
        const node = net.nodes[s.index]
        if (node === undefined) continue
        streams.push(
          followTopic(apiOf(node), TOPIC, (m) => onMessage(s, m), stop.signal).then(
            (why) => {
              s.ended = why
            },
            (err: unknown) => {
              s.ended = String(err)
            },
          ),
        )
      }

      // Probes: every subscriber must hear every publisher before the measured phase starts.
      const publishers = net.nodes.slice(0, o.publishers)
      const probeKeys: string[] = []
      const meshReady = await until(
        async () => {
          const missing = probeKeys.filter((k) => subs.some((s) => !s.seen.has(k)))
          if (probeKeys.length > 0 && missing.length === 0) return true
          // Probe again from each publisher (a probe sent before the mesh formed may miss some nodes).
          probeKeys.length = 0
          for (const p of publishers) {
            const r = await publishMessage(
              apiOf(p),
              TOPIC,
              Buffer.from(`probe from node ${p.index}`),
              stop.signal,
            )
            probeKeys.push(`${r.publisher}:${r.seq}`)
          }
          await sleep(1_000)
          return probeKeys.every((k) => subs.every((s) => s.seen.has(k)))
        },
        60_000,
        0,
      )
      if (!meshReady) o.log('not every subscriber heard every probe within 60 s; publishing anyway')
      else o.log(`all ${subs.length} subscribers hear all ${publishers.length} publishers`)

      // 2. The measured phase.
      o.log(`publishing ${o.messages} messages of ${o.bytes} B from ${o.publishers} nodes at ${o.rate} msg/s`)
      const payload = (i: number): Buffer => {
        const b = Buffer.alloc(o.bytes, 0x2e)
        b.write(`demo message ${i} `, 'utf8')
        return b
      }
      const keys: string[] = []
      let failedPublishes = 0
      let inFlight = 0
      let slot: (() => void) | undefined
      const pubStart = Date.now()
      const pending: Promise<void>[] = []
      for (let i = 0; i < o.messages; i++) {
        const due = pubStart + (i * 1000) / o.rate
        const wait = due - Date.now()
        if (wait > 0) await sleep(wait)
        while (inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => (slot = r))
        const p = publishers[i % publishers.length]
        if (p === undefined) continue
        inFlight++
        pending.push(
          publishMessage(apiOf(p), TOPIC, payload(i), stop.signal)
            .then(
              (r) => {
                keys.push(`${r.publisher}:${r.seq}`)
              },
              (err: unknown) => {
                failedPublishes++
                o.log(`publish ${i} through node ${p.index} failed: ${String(err)}`)
              },
            )
            .finally(() => {
              inFlight--
              slot?.()
              slot = undefined
            }),
        )
      }
      await Promise.all(pending)
      const pubSeconds = (Date.now() - pubStart) / 1000
      o.log(`published ${keys.length} in ${pubSeconds.toFixed(1)} s (${failedPublishes} refused)`)
      const complete = (): boolean => subs.every((s) => keys.every((k) => s.seen.has(k)))
      const allIn = await until(complete, 30_000, 200)
      if (!allIn) o.log('not every subscriber has every message after 30 s')
      const lastDelivery = Math.max(...subs.map((s) => s.lastAtMs))
      const latencies: number[] = []
      let delivered = 0
      for (const s of subs) {
        for (const k of keys) {
          const ms = s.seen.get(k)
          if (ms === undefined) continue
          delivered++
          latencies.push(ms)
        }
      }
      latencies.sort((a, b) => a - b)
      const expected = keys.length * subs.length
      const duplicates = subs.reduce((a, s) => a + s.duplicates, 0)
      const outOfOrder = subs.reduce((a, s) => a + s.outOfOrder, 0)
      const spanSeconds = Math.max(0.001, (Math.max(lastDelivery, pubStart) - pubStart) / 1000)
      const p50Ms = quantile(latencies, 0.5)
      const p99Ms = quantile(latencies, 0.99)
      o.log(
        `delivered ${delivered}/${expected} (lost ${expected - delivered}, duplicates ${duplicates}, out of order ${outOfOrder}); p50 ${p50Ms} ms, p99 ${p99Ms} ms`,
      )
      stop.abort()
      await Promise.all(streams)

      // 3. Sealed messages to a stopped node, collected when it comes back.
      const recipientIndex = o.nodes - 1
      const recipient = net.nodes[recipientIndex]
      if (recipient === undefined) throw new NodusError('NOT_STARTED', 'devnet incomplete')
      let offlineDelivered = 0
      if (o.offline > 0) {
        await net.stopNode(recipientIndex)
        o.log(`stopped node ${recipientIndex} (${recipient.peerId}); sending it ${o.offline} sealed messages`)
        const senders = net.nodes.filter((n) => n.alive).slice(0, Math.max(1, Math.min(3, o.nodes - 1)))
        const bodies = new Set<string>()
        for (let i = 0; i < o.offline; i++) {
          const from = senders[i % senders.length]
          if (from === undefined) continue
          const body = `sealed message ${i} from node ${from.index}`
          const r = await sendDirect(apiOf(from), recipient.peerId, Buffer.from(body))
          if (r.via !== 'mailbox') o.log(`message ${i} went ${r.via}, not to the mailbox`)
          bodies.add(body)
        }
        o.log(`stored ${bodies.size} sealed messages at node ${recipientIndex}'s keepers; restarting it`)
        const back = await net.restart(recipientIndex)
        const got = new Set<string>()
        await until(
          async () => {
            for (const m of await listInbox(apiOf(back))) {
              const text = Buffer.from(m.body, 'base64').toString('utf8')
              if (bodies.has(text)) got.add(text)
            }
            return got.size === bodies.size
          },
          60_000,
          500,
        )
        offlineDelivered = got.size
        o.log(`node ${recipientIndex} collected ${offlineDelivered}/${bodies.size} sealed messages`)
      }

      const lost = expected - delivered
      const ok =
        keys.length === o.messages && lost === 0 && outOfOrder === 0 && offlineDelivered === o.offline
      return {
        ok,
        scenario: 'messaging',
        nodes: o.nodes,
        publishers: o.publishers,
        subscribers: subs.length,
        published: keys.length,
        expected,
        delivered,
        lost,
        duplicates,
        outOfOrder,
        msgsPerSecond: Math.round(keys.length / spanSeconds),
        p50Ms,
        p99Ms,
        maxMs: latencies.at(-1) ?? 0,
        offlineSent: o.offline,
        offlineDelivered,
        seconds: Math.round((Date.now() - t0) / 100) / 10,
      }
    })
  } finally {
    stop.abort()
    await Promise.allSettled(streams)
  }
}
