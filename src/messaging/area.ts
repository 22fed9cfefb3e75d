/**
 * The messaging area's factory (the composition seam of docs/ARCHITECTURE.md): pub/sub over gossipsub
 * with application-level batching.
 *
 * - Publishing: `publish(topic, data)` queues the message in the batcher (batcher.ts); a batch leaves
 *   as one gossip message on `/nodus/pubsub/1/<topic>`, signed once by gossipsub (StrictSign).
 * - Receiving: each subscribed topic has a gossipsub validator that decodes and checks the batch
 *   (batch.ts): malformed or over a bound → `reject` (gossipsub penalizes the peer that sent it, this
 *   area adds a P5 penalty and reports `BATCH_INVALID` to the trust area's peer actions, which
 *   disconnect a repeat offender); stale or from the future → `ignore`; else `accept` (and gossipsub
 *   forwards it). Accepted batches go through the ordering inbox (ordering.ts): each message once, in
 *   order per publisher, to every local subscription of its topic (subscription.ts, bounded queues).
 *
 * - The MQTT bridge (mqtt-bridge.ts), when `messaging.mqttUrl` is set: started with the area, stopped
 *   first (what it queued for the broker is sent while connected), before the batcher drains.
 *
 * Every bound is a `messaging.*` key (options.ts; docs/PROTOCOLS.md, "Pub/sub" and "MQTT bridge").
 */
import { type GossipSub, type Message, TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import type { Clock } from '../common/clock.ts'
import { NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import { mqttTopicProblem } from '../common/mqtt-topic.ts'
import { type Random, systemRandom } from '../common/random.ts'
import { type Batch, type BatchLimits, decodeBatch } from './batch.ts'
import { Batcher, type MessageMarks } from './batcher.ts'
import type { PeerPenalties } from './gossip.ts'
import type { DropReason, MessagingMetrics } from './metrics.ts'
import { MqttBridge, type MqttBridgeStatus } from './mqtt-bridge.ts'
import type { MessagingOptions } from './options.ts'
import { OrderedInbox } from './ordering.ts'
import { type PubsubMessage, type SlowPolicy, Subscription } from './subscription.ts'

/** The gossip topic of nodus pub/sub topic `t` is this prefix + `t` (the batch format's version 1). */
export const GOSSIP_TOPIC_PREFIX = '/nodus/pubsub/1/'

/** What the messaging area uses of the gossipsub service (net's `pubsub`). */
export type MessagingPubsub = Pick<
  GossipSub,
  | 'subscribe'
  | 'unsubscribe'
  | 'publish'
  | 'topicValidators'
  | 'getSubscribers'
  | 'addEventListener'
  | 'removeEventListener'
>

/** What the messaging area needs from the trust area's peer actions. */
export interface MessagingPeers {
  /** Is `peer` (PeerId string) banned? Its batches are ignored even when relayed by others. */
  isBanned(peer: string): boolean
  /** A peer's batch broke the format (the error names peerAction `reject`). */
  report(peer: string, err: unknown): unknown
}

/** What {@link createMessaging} needs. */
export interface MessagingComponents {
  logger: Logger
  clock: Clock
  metrics: MessagingMetrics
  /** This node's PeerId string (the publisher of what it publishes). */
  self: string
  /** The gossipsub service (net's `pubsub`). */
  pubsub: MessagingPubsub
  /** The P5 penalties gossipsub's score reads (the same object given to `gossipsubInit`). */
  penalties: PeerPenalties
  peers: MessagingPeers
  /** Timers for the batcher's linger; default the global ones (tests pass their own). */
  setTimer?: ((fn: () => void, ms: number) => () => void) | undefined
  /** Randomness (the MQTT bridge's reconnection jitter); default {@link systemRandom}. */
  random?: Random | undefined
}

/**
 * What a message may carry besides its data (docs/PROTOCOLS.md, "MQTT bridge"): `mqttTopic`, the MQTT
 * topic name it came from or is for (1 … `messaging.maxTopicBytes` UTF-8 bytes, no `+`, `#`, U+0000),
 * and `fromMqtt`, set by the bridge on what it imports (no bridge exports such a message).
 */
export type PublishOptions = MessageMarks

/** What {@link Messaging.publish} returns: the message's id. */
export interface PublishReceipt {
  topic: string
  /** This node's PeerId string. */
  publisher: string
  /** The message's seq on `topic` (this node's counter). */
  seq: number
}

/** Options of {@link Messaging.subscribe}. */
export interface SubscribeOptions {
  /** Messages the subscription may fall behind by. Default `messaging.subscriberQueueMessages`. */
  capacity?: number
  /** What to do when it falls further behind: `close` it (default) or drop its oldest message. */
  onSlow?: SlowPolicy
  /**
   * Deliver each batch as it arrives, without the per-publisher order (no wait of up to
   * `messaging.reorderWindowMs` for a missing earlier batch; duplicates are dropped by gossipsub's
   * seen cache only). For subscribers that order what they receive themselves, such as the
   * consensus DAG. Default false.
   */
  unordered?: boolean
}

/** A topic this node subscribes to. */
export interface TopicInfo {
  topic: string
  /** Local subscriptions to it. */
  subscriptions: number
  /** Peers subscribed to it, as gossipsub sees them. */
  peers: number
}

/** The messaging area's public services. */
export interface Messaging {
  /**
   * Publish `data` (not copied; do not change it afterwards) to `topic`, with `options` (an MQTT topic
   * for the bridges that export `topic`). It leaves in a batch within `messaging.lingerMs`; local
   * subscriptions receive it too.
   * @throws NodusError `TOPIC_INVALID` (the topic, or the MQTT topic), `MESSAGE_TOO_LARGE` (over
   *   `messaging.maxMessageBytes`), `QUEUE_FULL` (the publish queue holds `messaging.publishQueueBytes`),
   *   `NOT_STARTED`
   */
  publish(topic: string, data: Uint8Array, options?: PublishOptions): PublishReceipt
  /**
   * Subscribe to `topic`: the returned subscription yields its messages (from now on), each once and
   * in order per publisher; `close()` it when done.
   * @throws NodusError `TOPIC_INVALID`, `SUBSCRIPTION_LIMIT` (`messaging.maxSubscriptions`), `NOT_STARTED`
   */
  subscribe(topic: string, options?: SubscribeOptions): Subscription
  /** Topics with local subscriptions. */
  topics(): TopicInfo[]
  /** The MQTT bridge's state; undefined when there is none (`messaging.mqttUrl` empty). */
  mqtt(): MqttBridgeStatus | undefined
  /** Resolves once every message published so far was handed to gossipsub. */
  flush(): Promise<void>
  /** Skip the gaps that waited `messaging.reorderWindowMs` (the area calls it on a timer; tests call it). */
  tick(): void
  /** Messages waiting: in the publish queue and in local subscriptions' queues. */
  readonly queuedMessages: number
  /** Local subscriptions open. */
  readonly subscriptionCount: number
  /** Listens for gossip messages, starts the reorder timer and the MQTT bridge (it connects in the background). */
  start(): void
  /** Stops the MQTT bridge, sends what is queued, closes every subscription (`stopped`). */
  beforeStop(): Promise<void>
  /** Leaves every topic. */
  stop(): void
}

/** `topic` checked: 1 … maxTopicBytes UTF-8 bytes, no control characters. @throws NodusError `TOPIC_INVALID` */
export function checkTopic(topic: string, maxTopicBytes: number): string {
  const bytes = Buffer.byteLength(topic, 'utf8')
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (bytes === 0 || bytes > maxTopicBytes || /[\u0000-\u001f\u007f]/.test(topic)) {
    throw new NodusError(
      'TOPIC_INVALID',
      `a topic is 1 to ${maxTopicBytes} UTF-8 bytes without control characters`,
      { details: { bytes } },
    )
  }
  return topic
}

/** Build (not start) the messaging area. */
export function createMessaging(components: MessagingComponents, options: MessagingOptions): Messaging {
  const { clock, metrics, pubsub, penalties, peers, self } = components
  const log = components.logger.child({ area: 'messaging' })
  const limits: BatchLimits = {
    maxBatchBytes: options.maxBatchBytes,
    maxMessageBytes: options.maxMessageBytes,
    maxMessagesPerBatch: options.maxMessagesPerBatch,
  }
  const dropped = (reason: DropReason, count: number): void => {
    if (count > 0) metrics.pubsubDropped.inc({ reason }, count)
  }
  /** Local subscriptions by topic. */
  const byTopic = new Map<string, Set<Subscription>>()
  /** Subscriptions made with `unordered`: fed from {@link pushUnordered}, never from the inbox. */
  const unordered = new WeakSet<Subscription>()
  let subscriptionCount = 0
  let started = false
  let stopping = false

  /** Entries `from…` of `batch` as messages received now. */
  const messagesOf = (
    topic: string,
    publisher: string,
    batch: Batch,
    from: number,
    now: number,
  ): PubsubMessage[] =>
    batch.entries.slice(from).map((e, i) => {
      const m: PubsubMessage = {
        topic,
        publisher,
        seq: batch.firstSeq + from + i,
        data: e.data,
        publishedAtMs: e.publishedAtMs,
        receivedAtMs: now,
      }
      if (e.mqttTopic !== undefined) m.mqttTopic = e.mqttTopic
      if (e.fromMqtt === true) m.fromMqtt = true
      return m
    })
  /** A received batch, at once, to the topic's `unordered` subscriptions. */
  const pushUnordered = (topic: string, publisher: string, batch: Batch): void => {
    const subs = [...(byTopic.get(topic) ?? [])].filter((s) => unordered.has(s))
    if (subs.length === 0) return
    for (const m of messagesOf(topic, publisher, batch, 0, clock.now())) for (const s of subs) s.push(m)
  }

  /** Deliver from the inbox (in order) to the ordered subscriptions; `all`: to every one (own batches). */
  const deliver = (topic: string, publisher: string, batch: Batch, from: number, all = false): void => {
    const subs = byTopic.get(topic)
    const now = clock.now()
    const n = batch.entries.length - from
    if (n <= 0) return
    metrics.pubsubDelivered.inc(n)
    for (const m of messagesOf(topic, publisher, batch, from, now)) {
      metrics.pubsubLatencySeconds.observe(Math.max(0, now - m.publishedAtMs) / 1000)
      if (subs === undefined) continue
      for (const s of subs) if (all || !unordered.has(s)) s.push(m)
    }
  }

  const inbox = new OrderedInbox({ clock, deliver, dropped }, options)
  const batcher = new Batcher(
    {
      clock,
      send: async (topic, bytes, batch) => {
        await pubsub.publish(GOSSIP_TOPIC_PREFIX + topic, bytes)
        metrics.pubsubBatchesSent.inc()
        metrics.pubsubBatchMessages.observe(batch.entries.length)
        deliver(topic, self, batch, 0, true)
      },
      onSendError: (topic, err, batch) => {
        log.warn({ topic, messages: batch.entries.length, err: (err as Error).message }, 'batch not sent')
      },
      setTimer: components.setTimer,
    },
    options,
  )

  /** Decoded batches the validator accepted, for the message event that follows it. */
  const accepted = new WeakMap<Message, Batch>()
  const validator = (peer: PeerId, msg: Message): TopicValidatorResult => {
    if (msg.type !== 'signed') return TopicValidatorResult.Reject
    const source = peer.toString()
    let batch: Batch
    try {
      batch = decodeBatch(msg.data, limits)
    } catch (err) {
      metrics.pubsubBatchesReceived.inc({ result: 'reject' })
      dropped('invalid', 1)
      penalties.reject(source)
      peers.report(source, err)
      log.debug({ peer: source, err: (err as Error).message }, 'batch rejected')
      return TopicValidatorResult.Reject
    }
    const now = clock.now()
    const count = batch.entries.length
    if (batch.timeMs < now - options.maxAgeMs || batch.timeMs > now + options.maxClockSkewMs) {
      metrics.pubsubBatchesReceived.inc({ result: 'ignore' })
      dropped(batch.timeMs < now ? 'stale' : 'future', count)
      return TopicValidatorResult.Ignore
    }
    if (peers.isBanned(msg.from.toString())) {
      metrics.pubsubBatchesReceived.inc({ result: 'ignore' })
      return TopicValidatorResult.Ignore
    }
    metrics.pubsubBatchesReceived.inc({ result: 'accept' })
    accepted.set(msg, batch)
    return TopicValidatorResult.Accept
  }

  const onMessage = (evt: CustomEvent<{ msg: Message }>): void => {
    const msg = evt.detail.msg
    const batch = accepted.get(msg)
    if (batch === undefined || msg.type !== 'signed') return
    accepted.delete(msg)
    const topic = msg.topic.slice(GOSSIP_TOPIC_PREFIX.length)
    pushUnordered(topic, msg.from.toString(), batch)
    inbox.receive(topic, msg.from.toString(), batch)
  }

  const closed = (sub: Subscription): void => {
    const subs = byTopic.get(sub.topic)
    if (subs?.delete(sub) !== true) return
    subscriptionCount--
    if (subs.size > 0) return
    byTopic.delete(sub.topic)
    const gossipTopic = GOSSIP_TOPIC_PREFIX + sub.topic
    pubsub.unsubscribe(gossipTopic)
    pubsub.topicValidators.delete(gossipTopic)
  }

  let timer: ReturnType<typeof setInterval> | undefined
  const notStarted = (): NodusError => new NodusError('NOT_STARTED', 'pub/sub is not running')
  let bridge: MqttBridge | undefined

  const messaging: Messaging = {
    publish(topic, data, marks) {
      if (!started || stopping) throw notStarted()
      checkTopic(topic, options.maxTopicBytes)
      if (marks?.mqttTopic !== undefined) {
        const problem =
          mqttTopicProblem(marks.mqttTopic) ??
          (Buffer.byteLength(marks.mqttTopic, 'utf8') > options.maxTopicBytes
            ? 'is over messaging.maxTopicBytes'
            : undefined)
        if (problem !== undefined) throw new NodusError('TOPIC_INVALID', `the MQTT topic ${problem}`)
      }
      try {
        const seq = batcher.publish(topic, data, marks)
        metrics.pubsubPublished.inc()
        return { topic, publisher: self, seq }
      } catch (err) {
        if (err instanceof NodusError && err.code === 'QUEUE_FULL') dropped('publish_queue_full', 1)
        throw err
      }
    },
    subscribe(topic, o = {}) {
      if (!started || stopping) throw notStarted()
      checkTopic(topic, options.maxTopicBytes)
      if (subscriptionCount >= options.maxSubscriptions)
        throw new NodusError('SUBSCRIPTION_LIMIT', `already ${subscriptionCount} subscriptions`, {
          details: { maxSubscriptions: options.maxSubscriptions },
        })
      const sub = new Subscription(
        topic,
        o.capacity ?? options.subscriberQueueMessages,
        o.onSlow ?? 'close',
        {
          dropped,
          closed,
        },
      )
      if (o.unordered === true) unordered.add(sub)
      let subs = byTopic.get(topic)
      if (subs === undefined) {
        subs = new Set()
        byTopic.set(topic, subs)
        const gossipTopic = GOSSIP_TOPIC_PREFIX + topic
        pubsub.topicValidators.set(gossipTopic, validator)
        pubsub.subscribe(gossipTopic)
      }
      subs.add(sub)
      subscriptionCount++
      return sub
    },
    topics() {
      return [...byTopic].map(([topic, subs]) => ({
        topic,
        subscriptions: subs.size,
        peers: pubsub.getSubscribers(GOSSIP_TOPIC_PREFIX + topic).length,
      }))
    },
    mqtt: () => bridge?.status(),
    flush() {
      batcher.flush()
      return batcher.onIdle()
    },
    tick: () => inbox.tick(),
    get queuedMessages() {
      let n = batcher.queuedMessages
      for (const subs of byTopic.values()) for (const s of subs) n += s.size
      return n
    },
    get subscriptionCount() {
      return subscriptionCount
    },
    start() {
      if (started) return
      started = true
      stopping = false
      pubsub.addEventListener('gossipsub:message', onMessage)
      if (options.reorderWindowMs > 0) {
        timer = setInterval(() => inbox.tick(), Math.max(10, Math.floor(options.reorderWindowMs / 4)))
        timer.unref()
      }
      bridge?.start()
    },
    async beforeStop() {
      if (!started || stopping) return
      await bridge?.stop()
      stopping = true
      await batcher.stop()
      for (const subs of [...byTopic.values()]) for (const s of [...subs]) s.close('stopped')
    },
    stop() {
      if (!started) return
      started = false
      clearInterval(timer)
      pubsub.removeEventListener('gossipsub:message', onMessage)
      inbox.clear()
    },
  }
  if (options.mqttUrl !== '')
    bridge = new MqttBridge(
      { logger: log, random: components.random ?? systemRandom, metrics, self, messaging, pubsub },
      options,
    )
  return messaging
}
