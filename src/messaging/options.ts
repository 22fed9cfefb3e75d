/**
 * The messaging area's config keys: section `messaging` of the config file (docs/CONFIG.md): pub/sub
 * batching, its bounds, the gossipsub limits and every queue. Pure table; the type
 * {@link MessagingOptions} is derived from it. docs/PROTOCOLS.md, "Pub/sub", explains each bound.
 */
import { defineOptions, MiB, type OptionsOf } from '../common/options.ts'

/** Bytes in a kibibyte (2^10). */
const KiB = 1024

/** Section `messaging`. */
export const MESSAGING_OPTIONS = defineOptions({
  lingerMs: {
    kind: 'int',
    default: 2,
    min: 0,
    max: 1000,
    description:
      'how long the first message published to a topic waits for others to join its batch, ms (0: a batch leaves at the next turn of the event loop)',
  },
  maxBatchBytes: {
    kind: 'int',
    default: 64 * KiB,
    min: 1 * KiB,
    max: 4 * MiB,
    description:
      'largest batch (one gossip message: the encoded messages of one topic), bytes; a full batch leaves at once',
  },
  maxMessageBytes: {
    kind: 'int',
    default: 60 * KiB,
    min: 1,
    max: 4 * MiB,
    description:
      'largest message published or accepted, bytes (at most messaging.maxBatchBytes − 64); larger: MESSAGE_TOO_LARGE',
  },
  maxMessagesPerBatch: {
    kind: 'int',
    default: 1024,
    min: 1,
    max: 65_536,
    description: 'most messages in one batch (sent or accepted)',
  },
  maxTopicBytes: {
    kind: 'int',
    default: 256,
    min: 1,
    max: 4096,
    description: 'longest topic name, UTF-8 bytes',
  },
  publishQueueBytes: {
    kind: 'int',
    default: 8 * MiB,
    min: 64 * KiB,
    description:
      'message bytes waiting to be batched and sent, all topics together; beyond it a publish fails with QUEUE_FULL (dropped{reason="publish_queue_full"})',
  },
  maxBatchesInFlight: {
    kind: 'int',
    default: 8,
    min: 1,
    max: 1024,
    description:
      'batches being signed and handed to gossipsub at once; the batcher waits (its messages stay in the publish queue) beyond it',
  },
  subscriberQueueMessages: {
    kind: 'int',
    default: 4096,
    min: 1,
    description:
      'messages waiting for one local subscriber (an SSE client, a `nodus sub`); when full the subscriber is closed (dropped{reason="slow_subscriber"}) or, if it asked for it, its oldest message is dropped',
  },
  maxSubscriptions: {
    kind: 'int',
    default: 1024,
    min: 1,
    description: 'local subscriptions (SSE clients included) at once; beyond it SUBSCRIPTION_LIMIT',
  },
  maxAgeMs: {
    kind: 'int',
    default: 120_000,
    min: 1000,
    description:
      'a batch published longer ago than this (by its own timestamp) is ignored (dropped{reason="stale"}); also gossipsub’s seen-cache TTL, so a replayed batch is always caught by one or the other',
  },
  maxClockSkewMs: {
    kind: 'int',
    default: 30_000,
    min: 0,
    description: 'a batch stamped further in the future than this is ignored (dropped{reason="future"})',
  },
  reorderWindowMs: {
    kind: 'int',
    default: 1000,
    min: 0,
    description:
      'how long a batch that arrived ahead of a missing one waits for it, ms; then the gap is skipped (dropped{reason="gap"} counts the missing messages)',
  },
  maxHeldBatches: {
    kind: 'int',
    default: 64,
    min: 1,
    description:
      'batches held per publisher while waiting for a missing one; beyond it the gap is skipped at once',
  },
  maxPublishers: {
    kind: 'int',
    default: 10_000,
    min: 1,
    description:
      'publishers whose delivery order this node tracks (least recently heard forgotten, with their held batches)',
  },
  maxPublishTopics: {
    kind: 'int',
    default: 10_000,
    min: 1,
    description:
      'topics this node keeps a publishing seq counter for (least recently published forgotten: its next message starts a new session)',
  },
  maxPenalizedPeers: {
    kind: 'int',
    default: 10_000,
    min: 1,
    description:
      'peers whose rejected batches this node remembers for gossipsub’s score (least recently penalized forgotten)',
  },
  maxPeerSubscriptions: {
    kind: 'int',
    default: 1000,
    min: 1,
    description:
      'topics one peer may be subscribed to in this node’s view (gossipsub maxTopicBytesPerPeer = this × 1 KiB); more are ignored',
  },
  maxRpcBytes: {
    kind: 'int',
    default: 1 * MiB,
    min: 16 * KiB,
    max: 64 * MiB,
    description:
      'largest gossipsub RPC frame read from a peer, bytes (at least messaging.maxBatchBytes + 16 KiB); a larger one ends that peer’s gossipsub stream',
  },
  maxMessagesPerRpc: {
    kind: 'int',
    default: 256,
    min: 1,
    description: 'gossip messages (batches) decoded from one RPC; an RPC with more is dropped whole',
  },
  maxSubscriptionsPerRpc: {
    kind: 'int',
    default: 1000,
    min: 1,
    description: 'subscription changes decoded from one RPC; an RPC with more is dropped whole',
  },
  maxControlPerRpc: {
    kind: 'int',
    default: 1000,
    min: 1,
    description:
      'IHAVE, IWANT, GRAFT, PRUNE and IDONTWANT entries (each kind) decoded from one RPC; an RPC with more is dropped whole',
  },
  maxIhaveIdsPerRpc: {
    kind: 'int',
    default: 5000,
    min: 1,
    description:
      'message ids in the IHAVEs of one RPC (gossipsub also answers at most 10 IHAVEs and asks for at most 5,000 ids per peer per heartbeat)',
  },
  maxIwantIdsPerRpc: {
    kind: 'int',
    default: 5000,
    min: 1,
    description:
      'message ids in the IWANTs of one RPC (only cached messages are sent back, each at most 3 times per peer)',
  },
  maxIdontwantPerHeartbeat: {
    kind: 'int',
    default: 512,
    min: 1,
    description: 'IDONTWANT message ids kept per peer per heartbeat (and decoded per RPC); more are ignored',
  },
  heartbeatMs: {
    kind: 'int',
    default: 1000,
    min: 100,
    description: 'gossipsub heartbeat (mesh upkeep, IHAVE gossip, score decay), ms',
  },
  floodPublish: {
    kind: 'enum',
    default: 'on',
    values: ['on', 'off'],
    description:
      'on: a batch this node publishes goes to every peer subscribed to the topic (above the publish score threshold), not only its mesh: lower latency, more bytes from the publisher',
  },
  colocationExempt: {
    kind: 'strings',
    default: ['127.0.0.1', '::1'],
    description:
      'IP addresses exempt from gossipsub’s IP-colocation score penalty (P6): loopback, so a local devnet is not graylisted',
  },
})

/** The values of section `messaging` (config.messaging). */
export type MessagingOptions = OptionsOf<typeof MESSAGING_OPTIONS>

/** Bytes a batch needs besides its messages' data, at most: version, header varints, per-message varints. */
export const BATCH_HEADER_BYTES = 64

/** The rules across `messaging` keys: each problem as `messaging.key: message`, empty when fine. */
export function messagingOptionProblems(o: MessagingOptions): string[] {
  const out: string[] = []
  if (o.maxMessageBytes > o.maxBatchBytes - BATCH_HEADER_BYTES)
    out.push(
      `messaging.maxMessageBytes: must be at most messaging.maxBatchBytes − ${BATCH_HEADER_BYTES} (${o.maxBatchBytes - BATCH_HEADER_BYTES})`,
    )
  if (o.maxRpcBytes < o.maxBatchBytes + 16 * KiB)
    out.push(
      `messaging.maxRpcBytes: must be at least messaging.maxBatchBytes + 16 KiB (${o.maxBatchBytes + 16 * KiB})`,
    )
  return out
}
