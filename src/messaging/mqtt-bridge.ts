/**
 * The MQTT bridge (issue 19): topics of an MQTT broker the operator runs, carried to and from nodus
 * pub/sub topics by the mappings of `messaging.mqttMappings` (mqtt-topics.ts). MQTT 5 through
 * mqtt.js; docs/PROTOCOLS.md, "MQTT bridge".
 *
 * - In (MQTT → nodus): the bridge subscribes to each `in` filter, as the shared subscription
 *   `$share/<messaging.mqttShareGroup>/<filter>` so that of several bridges to one broker one imports
 *   each message, with a subscription identifier naming the filter. Each message is published on
 *   the mapping's nodus topic with its MQTT topic name and the mark "from MQTT" (batch version 2).
 * - Out (nodus → MQTT): the bridge subscribes to each `out` nodus topic and publishes each message to
 *   the MQTT topic it carries (or the mapping's filter when that has no wildcard), with the user
 *   property `nodus-bridge` = this node's PeerId.
 * - Loops: a message marked "from MQTT" is never exported (whichever node's bridge sees it), and an MQTT
 *   message with a `nodus-bridge` user property is never imported, so a message crosses at most once.
 *   With `messaging.mqttPeers` set, of the listed bridges connected to the broker one exports each
 *   nodus message (rendezvous hashing over the bridges subscribed to the topic's export marker).
 * - Bounds: messages waiting for the broker take at most `messaging.mqttQueueBytes` (then dropped,
 *   `queue_full`); at most `messaging.mqttMaxInflight` QoS 1 publishes await their PUBACK; payloads over
 *   `messaging.maxMessageBytes` are not imported (`too_large`), and the broker is told not to send
 *   packets over twice that + 64 KiB (MQTT 5 Maximum Packet Size); QoS 1 redeliveries of a kept session
 *   are recognised among the last `messaging.mqttDedupIds` imports.
 * - The broker may be down: mqtt.js reconnects, each wait doubling from `mqttReconnectMinMs` to
 *   `mqttReconnectMaxMs` (× 0.5 … 1, random); the node runs on meanwhile.
 */
import { createHash } from 'node:crypto'
import { type GossipSub, TopicValidatorResult } from '@libp2p/gossipsub'
import { connect, ErrorWithReasonCode, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt'
import { NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import { type MqttMapping, mqttTopicMatches, parseMqttMappings } from '../common/mqtt-topic.ts'
import type { Random } from '../common/random.ts'
import type { MessageMarks } from './batcher.ts'
import type { MessagingMetrics, MqttDropReason } from './metrics.ts'
import { exportMarkerTopic, exportsOf, exportTopics, importsOf, rendezvousWinner } from './mqtt-topics.ts'
import type { MessagingOptions } from './options.ts'
import type { PubsubMessage, Subscription } from './subscription.ts'

/** The MQTT 5 user property on every message a bridge publishes: the bridge node's PeerId. */
export const BRIDGE_PROPERTY = 'nodus-bridge'
/** The user property carrying the nodus message id (`<publisher>:<seq>`, as SSE ids) of an exported message. */
export const MESSAGE_ID_PROPERTY = 'nodus-id'
/** Bytes a queued message costs besides its payload and topic. */
const QUEUE_ENTRY_OVERHEAD = 64

/** What {@link MqttBridge} needs. */
export interface MqttBridgeDeps {
  logger: Logger
  random: Random
  metrics: MessagingMetrics
  /** This node's PeerId string. */
  self: string
  /** The messaging area (its `publish` and `subscribe`; area.ts builds the bridge with itself). */
  messaging: {
    publish(topic: string, data: Uint8Array, marks?: MessageMarks): unknown
    subscribe(topic: string, options: { onSlow: 'drop-oldest' }): Subscription
  }
  /** Gossipsub, for the export markers (subscribe to them, see which bridges did). */
  pubsub: Pick<GossipSub, 'subscribe' | 'unsubscribe' | 'getSubscribers' | 'topicValidators'>
}

/** The `messaging.*` keys the bridge reads. */
export type MqttBridgeOptions = Pick<
  MessagingOptions,
  | 'mqttUrl'
  | 'mqttUsername'
  | 'mqttPassword'
  | 'mqttMappings'
  | 'mqttQos'
  | 'mqttShareGroup'
  | 'mqttPeers'
  | 'mqttQueueBytes'
  | 'mqttMaxInflight'
  | 'mqttReconnectMinMs'
  | 'mqttReconnectMaxMs'
  | 'mqttConnectTimeoutMs'
  | 'mqttKeepaliveMs'
  | 'mqttSessionExpiryMs'
  | 'mqttDedupIds'
  | 'maxMessageBytes'
  | 'maxTopicBytes'
>

/** The bridge's state, for GET /pubsub. */
export interface MqttBridgeStatus {
  /** The broker's URL, without credentials. */
  broker: string
  connected: boolean
  /** `messaging.mqttMappings` as configured. */
  mappings: string[]
  /** The subscriptions the broker granted (`$share/GROUP/FILTER` or `FILTER`); empty while disconnected. */
  subscribed: string[]
  /** Messages carried since start, by direction. */
  bridged: { in: number; out: number }
  /**
   * Messages the bridge could not carry since start: every reason of
   * `nodus_messaging_mqtt_dropped_total` but `loop` and `from_mqtt` (loop prevention at work).
   */
  dropped: number
  /** Messages waiting for the broker (queued or awaiting PUBACK). */
  queued: number
  /** `messaging.mqttPeers` bridging with this one now (connected to the broker and to this node). */
  peers: string[]
}

interface Outgoing {
  topic: string
  payload: Buffer
  id: string
  bytes: number
}

/** See the module comment. */
/** How long stop() waits for queued messages to reach a connected broker, ms. */
const STOP_DRAIN_MS = 5_000

export class MqttBridge {
  readonly #deps: MqttBridgeDeps
  readonly #o: MqttBridgeOptions
  readonly #log: Logger
  /** Distinct `in` filters: subscription identifier i + 1 names imports[i]. */
  readonly #imports: { filter: string; topics: string[] }[] = []
  readonly #exports: MqttMapping[]
  /** Export marker gossip topic of each exported nodus topic. */
  readonly #markers = new Map<string, string>()
  readonly #peers: Set<string>
  /** `messaging.mqttUrl` without credentials (what is shown and logged). */
  readonly #broker: string
  readonly #username: string
  readonly #password: string
  #client: MqttClient | undefined
  #connected = false
  /** Subscribed to the export markers (while connected, until stop). */
  #markersJoined = false
  /** Subscriptions the broker granted in this session. */
  #granted: string[] = []
  #attempts = 0
  #subs: Subscription[] = []
  #pumps: Promise<void>[] = []
  /** Messages waiting for the broker: `#queue[#head …]`. */
  #queue: Outgoing[] = []
  #head = 0
  #queuedBytes = 0
  #inflight = 0
  #stopping = false
  /** Wakes whoever waits for the queue to empty on stop. */
  #settled: (() => void) | undefined
  /** QoS 1 imports remembered against redeliveries; insertion order = least recent first. */
  readonly #recent = new Set<string>()
  #bridgedIn = 0
  #bridgedOut = 0
  #dropped = 0

  constructor(deps: MqttBridgeDeps, options: MqttBridgeOptions) {
    this.#deps = deps
    this.#o = options
    this.#log = deps.logger.child({ area: 'messaging', part: 'mqtt' })
    const mappings = parseMqttMappings(options.mqttMappings)
    if (typeof mappings === 'string')
      throw new NodusError('CONFIG_INVALID', `messaging.mqttMappings: ${mappings}`)
    for (const m of importsOf(mappings)) {
      const group = this.#imports.find((g) => g.filter === m.filter)
      if (group === undefined) this.#imports.push({ filter: m.filter, topics: [m.topic] })
      else if (!group.topics.includes(m.topic)) group.topics.push(m.topic)
    }
    this.#exports = exportsOf(mappings)
    const url = new URL(options.mqttUrl)
    this.#username = options.mqttUsername !== '' ? options.mqttUsername : decodeURIComponent(url.username)
    this.#password = options.mqttPassword !== '' ? options.mqttPassword : decodeURIComponent(url.password)
    url.username = ''
    url.password = ''
    this.#broker = url.toString().replace(/\/$/, '')
    const broker = `${url.hostname}:${url.port === '' ? (url.protocol === 'mqtts:' ? 8883 : 1883) : url.port}`
    for (const m of this.#exports) this.#markers.set(m.topic, exportMarkerTopic(broker, m.topic))
    this.#peers = new Set(options.mqttPeers.filter((p) => p !== deps.self))
  }

  /** Is the bridge connected to the broker now? */
  get connected(): boolean {
    return this.#connected
  }

  /** Messages waiting for the broker (queued or awaiting PUBACK). */
  get queued(): number {
    return this.#queue.length - this.#head + this.#inflight
  }

  /** The bridge's state (see {@link MqttBridgeStatus}). */
  status(): MqttBridgeStatus {
    return {
      broker: this.#broker,
      connected: this.#connected,
      mappings: [...this.#o.mqttMappings],
      subscribed: this.#connected ? [...this.#granted] : [],
      bridged: { in: this.#bridgedIn, out: this.#bridgedOut },
      dropped: this.#dropped,
      queued: this.queued,
      peers: [...new Set([...this.#markers.values()].flatMap((m) => this.#bridgesOn(m)))],
    }
  }

  /**
   * Subscribe to the exported nodus topics and start connecting (in the background: an unreachable
   * broker is logged, counted in `nodus_messaging_mqtt_connected` and retried). Call once messaging runs.
   */
  start(): void {
    if (this.#client !== undefined) return
    this.#stopping = false
    for (const topic of this.#markers.keys()) {
      const sub = this.#deps.messaging.subscribe(topic, { onSlow: 'drop-oldest' })
      this.#subs.push(sub)
      this.#pumps.push(this.#exportFrom(sub))
    }
    const o = this.#o
    const options: IClientOptions = {
      protocolVersion: 5,
      clientId: `nodus-${this.#deps.self}`,
      clean: o.mqttSessionExpiryMs === 0,
      keepalive: Math.max(1, Math.round(o.mqttKeepaliveMs / 1000)),
      connectTimeout: o.mqttConnectTimeoutMs,
      reconnectPeriod: this.#backoff(0),
      resubscribe: false,
      queueQoSZero: false,
      properties: {
        sessionExpiryInterval: Math.floor(o.mqttSessionExpiryMs / 1000),
        receiveMaximum: o.mqttMaxInflight,
        maximumPacketSize: 2 * o.maxMessageBytes + 65_536,
        topicAliasMaximum: 0,
      },
    }
    if (this.#username !== '') options.username = this.#username
    if (this.#password !== '') options.password = this.#password
    const client = connect(this.#broker, options)
    this.#client = client
    client.on('connect', (connack) => this.#onConnect(client, connack.sessionPresent === true))
    client.on('close', () => this.#onClose())
    client.on('reconnect', () => {
      this.#attempts++
      client.options.reconnectPeriod = this.#backoff(this.#attempts)
    })
    client.on('offline', () => {
      if (!this.#stopping) this.#log.warn({ broker: this.#broker }, 'MQTT broker unreachable; retrying')
    })
    client.on('error', (err) => {
      // A CONNACK or DISCONNECT reason code (bad credentials, not authorized, ...) is the operator's to fix.
      if (err instanceof ErrorWithReasonCode)
        this.#log.warn({ err: err.message, code: err.code }, 'MQTT broker refused')
      else this.#log.debug({ err: err.message }, 'MQTT client error')
    })
    client.on('message', (topic, payload, packet) => this.#import(topic, payload, packet))
  }

  /**
   * Stop: no more imports or exports; while connected, wait until what is queued was published (and
   * acknowledged, at QoS 1) or the connection drops, then disconnect. What is left is dropped
   * (`stopped`). Never waits on an unreachable broker.
   */
  async stop(): Promise<void> {
    const client = this.#client
    if (client === undefined || this.#stopping) return
    this.#stopping = true
    for (const s of this.#subs) s.close()
    await Promise.all(this.#pumps)
    this.#subs = []
    this.#pumps = []
    this.#leaveMarkers()
    // Send what is queued while connected, for at most STOP_DRAIN_MS: a broker that stays connected
    // but never acknowledges must not hold the node's shutdown.
    if (this.#connected && this.queued > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined
      await new Promise<void>((resolve) => {
        this.#settled = resolve
        timer = setTimeout(resolve, STOP_DRAIN_MS)
      })
      clearTimeout(timer)
    }
    this.#settled = undefined
    const left = this.#queue.length - this.#head
    this.#queue = []
    this.#head = 0
    this.#queuedBytes = 0
    this.#drop('stopped', left)
    await client.endAsync(!this.#connected)
    // mqtt.js may still report a connection attempt that was under way: nothing of it matters now.
    client.removeAllListeners()
    client.on('error', () => {})
    this.#client = undefined
    this.#connected = false
    this.#inflight = 0
    this.#deps.metrics.mqttConnected.set(0)
    this.#deps.metrics.mqttQueued.set(0)
  }

  /** The wait before reconnection attempt `n + 1`, ms. */
  #backoff(n: number): number {
    const base = Math.min(this.#o.mqttReconnectMaxMs, this.#o.mqttReconnectMinMs * 2 ** Math.min(n, 30))
    return Math.max(1, Math.round(base * (0.5 + this.#deps.random.next() / 2)))
  }

  #onConnect(client: MqttClient, sessionPresent: boolean): void {
    if (this.#stopping) return
    this.#connected = true
    this.#attempts = 0
    client.options.reconnectPeriod = this.#backoff(0)
    this.#deps.metrics.mqttConnected.set(1)
    this.#log.info({ broker: this.#broker, sessionPresent }, 'MQTT bridge connected')
    if (!sessionPresent) {
      this.#granted = []
      const share = this.#o.mqttShareGroup
      this.#imports.forEach(({ filter }, i) => {
        const target = share === '' ? filter : `$share/${share}/${filter}`
        client
          .subscribeAsync(
            { [target]: { qos: this.#o.mqttQos as 0 | 1, nl: share === '' } },
            { properties: { subscriptionIdentifier: i + 1 } },
          )
          .then((granted) => {
            if (granted.some((g) => g.qos === 128))
              this.#log.warn({ filter: target }, 'the MQTT broker refused a subscription')
            else if (!this.#granted.includes(target)) this.#granted.push(target)
          })
          .catch((err: Error) =>
            this.#log.debug({ filter: target, err: err.message }, 'MQTT subscribe failed'),
          )
      })
    }
    this.#joinMarkers()
    this.#pump()
  }

  #joinMarkers(): void {
    if (this.#markersJoined || this.#stopping) return
    this.#markersJoined = true
    for (const marker of this.#markers.values()) {
      this.#deps.pubsub.topicValidators.set(marker, () => TopicValidatorResult.Reject)
      this.#deps.pubsub.subscribe(marker)
    }
  }

  #onClose(): void {
    this.#connected = false
    this.#deps.metrics.mqttConnected.set(0)
    this.#leaveMarkers()
    this.#settled?.()
  }

  #leaveMarkers(): void {
    if (!this.#markersJoined) return
    this.#markersJoined = false
    for (const marker of this.#markers.values()) {
      this.#deps.pubsub.unsubscribe(marker)
      this.#deps.pubsub.topicValidators.delete(marker)
    }
  }

  #drop(reason: MqttDropReason, n = 1): void {
    if (n <= 0) return
    if (reason !== 'loop' && reason !== 'from_mqtt') this.#dropped += n
    this.#deps.metrics.mqttDropped.inc({ reason }, n)
  }

  /** Why an MQTT message is not imported, or undefined when it is. */
  #refuse(topic: string, payload: Buffer, packet: IPublishPacket): MqttDropReason | undefined {
    if (packet.properties?.userProperties?.[BRIDGE_PROPERTY] !== undefined) return 'loop'
    if (payload.byteLength > this.#o.maxMessageBytes) return 'too_large'
    if (Buffer.byteLength(topic, 'utf8') > this.#o.maxTopicBytes) return 'topic_too_long'
    if (packet.qos > 0 && this.#o.mqttSessionExpiryMs > 0) {
      const key = `${packet.messageId}\n${topic}\n${createHash('sha256').update(payload).digest('base64')}`
      if (packet.dup && this.#recent.has(key)) return 'duplicate'
      this.#recent.delete(key)
      this.#recent.add(key)
      if (this.#recent.size > this.#o.mqttDedupIds)
        this.#recent.delete(this.#recent.values().next().value as string)
    }
    return undefined
  }

  #import(topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (this.#stopping) return
    const refused = this.#refuse(topic, payload, packet)
    if (refused !== undefined) {
      this.#drop(refused)
      return
    }
    const props = packet.properties
    const ids = props?.subscriptionIdentifier
    const groups =
      ids === undefined
        ? this.#imports.filter((g) => mqttTopicMatches(g.filter, topic))
        : (Array.isArray(ids) ? ids : [ids]).flatMap((id) => this.#imports[id - 1] ?? [])
    const topics = [...new Set(groups.flatMap((g) => g.topics))]
    for (const t of topics) {
      try {
        this.#deps.messaging.publish(t, payload, { mqttTopic: topic, fromMqtt: true })
        this.#bridgedIn++
        this.#deps.metrics.mqttBridged.inc({ direction: 'in' })
      } catch (err) {
        this.#drop(err instanceof NodusError && err.code === 'NOT_STARTED' ? 'stopped' : 'nodus_queue_full')
        this.#log.debug({ topic: t, err: (err as Error).message }, 'MQTT message not published on nodus')
      }
    }
  }

  /** PeerIds of `messaging.mqttPeers` subscribed to `marker` (connected to the broker and to us). */
  #bridgesOn(marker: string): string[] {
    if (this.#peers.size === 0) return []
    return this.#deps.pubsub
      .getSubscribers(marker)
      .map(String)
      .filter((p) => this.#peers.has(p))
  }

  /** Does this bridge export `m` (rather than another of `messaging.mqttPeers`)? */
  #elected(m: PubsubMessage): boolean {
    if (this.#peers.size === 0) return true
    const others = this.#bridgesOn(this.#markers.get(m.topic) as string)
    if (others.length === 0) return true
    if (!this.#connected) return false
    return (
      rendezvousWinner(`${m.publisher}\n${m.topic}\n${m.seq}`, [this.#deps.self, ...others]) ===
      this.#deps.self
    )
  }

  async #exportFrom(sub: Subscription): Promise<void> {
    for await (const m of sub) {
      if (m.fromMqtt === true) {
        this.#drop('from_mqtt')
        continue
      }
      if (!this.#elected(m)) continue
      const topics = exportTopics(this.#exports, m.topic, m.mqttTopic)
      if (topics.length === 0) this.#drop('no_mqtt_topic')
      for (const topic of topics) {
        const bytes = m.data.byteLength + Buffer.byteLength(topic, 'utf8') + QUEUE_ENTRY_OVERHEAD
        if (this.#queuedBytes + bytes > this.#o.mqttQueueBytes) {
          this.#drop('queue_full')
          continue
        }
        // A copy: the message is a view into its batch, which would stay alive as long as it waits.
        this.#queue.push({ topic, payload: Buffer.from(m.data), id: `${m.publisher}:${m.seq}`, bytes })
        this.#queuedBytes += bytes
      }
      this.#pump()
    }
  }

  /** Hand queued messages to mqtt.js while connected and under `mqttMaxInflight`. */
  #pump(): void {
    const client = this.#client
    while (
      client !== undefined &&
      this.#connected &&
      this.#inflight < this.#o.mqttMaxInflight &&
      this.#head < this.#queue.length
    ) {
      const out = this.#queue[this.#head] as Outgoing
      this.#queue[this.#head++] = undefined as unknown as Outgoing
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head)
        this.#head = 0
      }
      this.#queuedBytes -= out.bytes
      this.#inflight++
      client
        .publishAsync(out.topic, out.payload, {
          qos: this.#o.mqttQos as 0 | 1,
          properties: {
            userProperties: { [BRIDGE_PROPERTY]: this.#deps.self, [MESSAGE_ID_PROPERTY]: out.id },
          },
        })
        .then(
          () => {
            this.#bridgedOut++
            this.#deps.metrics.mqttBridged.inc({ direction: 'out' })
          },
          (err: Error) => {
            this.#drop('send_failed')
            this.#log.debug({ topic: out.topic, err: err.message }, 'MQTT publish failed')
          },
        )
        .finally(() => {
          this.#inflight--
          this.#pump()
        })
    }
    this.#deps.metrics.mqttQueued.set(this.queued)
    if (this.queued === 0) this.#settled?.()
  }
}
