/**
 * The messaging area's metrics (docs/METRICS.md): messages published, delivered, dropped (by reason)
 * and queued, batches and their sizes, end-to-end latency. Pure: creates them on the registry given.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { LATENCY_BUCKETS, liveGauge } from '../common/metrics.ts'

/** Live messaging values read at scrape time. */
export interface MessagingMetricsSources {
  /** Messages waiting in the publish queue and in local subscribers' queues; absent: 0. */
  messagesQueued?(): number
  /** Local subscriptions open now; absent: 0. */
  subscriptions?(): number
}

/** Why a message was dropped (the `reason` label of `nodus_messaging_dropped_total`). */
export type DropReason =
  | 'publish_queue_full'
  | 'slow_subscriber'
  | 'subscriber_full'
  | 'invalid'
  | 'stale'
  | 'future'
  | 'gap'
  | 'duplicate'

/** Why the MQTT bridge dropped a message (the `reason` label of `nodus_messaging_mqtt_dropped_total`). */
export type MqttDropReason =
  /** in: an MQTT message a bridge published (its `nodus-bridge` user property): never imported again. */
  | 'loop'
  /** out: a nodus message that came from MQTT: never exported again. */
  | 'from_mqtt'
  /** in: a QoS 1 redelivery (DUP) of a message already imported. */
  | 'duplicate'
  /** in: payload over messaging.maxMessageBytes. */
  | 'too_large'
  /** in: MQTT topic over messaging.maxTopicBytes. */
  | 'topic_too_long'
  /** in: nodus's publish queue is full. */
  | 'nodus_queue_full'
  /** out: no out mapping gives the message an MQTT topic. */
  | 'no_mqtt_topic'
  /** out: the queue to the broker holds messaging.mqttQueueBytes. */
  | 'queue_full'
  /** out: the broker refused the publish or the connection failed with it. */
  | 'send_failed'
  /** out: still queued when the bridge stopped while disconnected. */
  | 'stopped'

/**
 * Creates the messaging metrics on `registry`: the counters and histograms returned, and the gauges
 * read from `sources()` at scrape time (0 until it gives a source).
 */
export function createMessagingMetrics(
  registry: Registry,
  sources: () => MessagingMetricsSources | undefined,
) {
  const registers = [registry]
  const metrics = {
    pubsubPublished: new Counter({
      name: 'nodus_messaging_published_total',
      help: 'Messages this node published (accepted into the publish queue)',
      registers,
    }),
    pubsubDelivered: new Counter({
      name: 'nodus_messaging_delivered_total',
      help: 'Messages delivered to this node’s subscribers, once each, in order per publisher',
      registers,
    }),
    pubsubDropped: new Counter({
      name: 'nodus_messaging_dropped_total',
      help: 'Messages dropped, by reason (publish_queue_full, slow_subscriber, subscriber_full, invalid, stale, future, gap, duplicate)',
      labelNames: ['reason'],
      registers,
    }),
    pubsubBatchesSent: new Counter({
      name: 'nodus_messaging_batches_sent_total',
      help: 'Batches (gossip messages) this node published',
      registers,
    }),
    pubsubBatchesReceived: new Counter({
      name: 'nodus_messaging_batches_received_total',
      help: 'Batches received from peers, by validation result (accept, reject, ignore)',
      labelNames: ['result'],
      registers,
    }),
    pubsubBatchMessages: new Histogram({
      name: 'nodus_messaging_batch_messages',
      help: 'Messages per batch this node published',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers,
    }),
    pubsubLatencySeconds: new Histogram({
      name: 'nodus_messaging_latency_seconds',
      help: 'End to end: from a message’s publish timestamp (carried in its batch) to its delivery here, seconds',
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
    directSent: new Counter({
      name: 'nodus_messaging_direct_sent_total',
      help: 'Direct messages this node sent, by how (online: to the recipient; mailbox: stored at its keepers)',
      labelNames: ['via'],
      registers,
    }),
    directDelivered: new Counter({
      name: 'nodus_messaging_direct_delivered_total',
      help: 'Direct messages opened and stored in this node’s inbox, by how they came (online, mailbox)',
      labelNames: ['via'],
      registers,
    }),
    directRefused: new Counter({
      name: 'nodus_messaging_direct_refused_total',
      help: 'Direct messages or mailbox requests refused, by reason (the error code, lower-case: sealed_message_replayed, quota_exceeded, mailbox_full, ...)',
      labelNames: ['reason'],
      registers,
    }),
    mailboxStored: new Counter({
      name: 'nodus_messaging_mailbox_stored_total',
      help: 'Sealed messages this node stored as a mailbox keeper for others',
      registers,
    }),
    mailboxRemoved: new Counter({
      name: 'nodus_messaging_mailbox_removed_total',
      help: 'Sealed messages this keeper removed, by reason (acked, expired)',
      labelNames: ['reason'],
      registers,
    }),
    mqttBridged: new Counter({
      name: 'nodus_messaging_mqtt_bridged_total',
      help: 'Messages the MQTT bridge carried, by direction (in: MQTT to nodus; out: nodus to MQTT, acknowledged by the broker at QoS 1)',
      labelNames: ['direction'],
      registers,
    }),
    mqttDropped: new Counter({
      name: 'nodus_messaging_mqtt_dropped_total',
      help: 'Messages the MQTT bridge did not carry, by reason (loop, from_mqtt, duplicate, too_large, topic_too_long, nodus_queue_full, no_mqtt_topic, queue_full, send_failed, stopped)',
      labelNames: ['reason'],
      registers,
    }),
    mqttConnected: new Gauge({
      name: 'nodus_messaging_mqtt_connected',
      help: 'The MQTT bridge’s connection to the broker: 1 connected, 0 not (or no bridge)',
      registers,
    }),
    mqttQueued: new Gauge({
      name: 'nodus_messaging_mqtt_queued_messages',
      help: 'Messages waiting for the MQTT broker (queued while it is down or slow, and QoS 1 publishes awaiting PUBACK)',
      registers,
    }),
  } as const
  liveGauge(
    registry,
    sources,
    'nodus_messaging_queued_messages',
    'Messages waiting in the publish queue and in local subscribers’ queues',
    (s) => s.messagesQueued?.() ?? 0,
  )
  liveGauge(
    registry,
    sources,
    'nodus_messaging_subscriptions',
    'Local pub/sub subscriptions open now (SSE clients included)',
    (s) => s.subscriptions?.() ?? 0,
  )
  return metrics
}

/** The messaging area's metrics (NodusMetrics has them as fields of the same names). */
export type MessagingMetrics = ReturnType<typeof createMessagingMetrics>
