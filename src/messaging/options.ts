/**
 * The messaging area's config keys: section `messaging` of the config file (docs/CONFIG.md): pub/sub
 * batching, its bounds, the gossipsub limits and every queue; direct messages; the MQTT bridge's
 * `mqtt*` keys (their syntax: common/mqtt-topic.ts; what the bridge does with them: mqtt-topics.ts). Pure table; the type
 * {@link MessagingOptions} is derived from it. docs/PROTOCOLS.md, "Pub/sub", explains each bound.
 */
import { mqttUrlProblem, parseMqttMappings } from '../common/mqtt-topic.ts'
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
  directMaxBodyBytes: {
    kind: 'int',
    default: 64 * KiB,
    min: 1,
    max: 1 * MiB,
    description:
      'largest direct message body sent or accepted, bytes; a sealed message is at most this + 8 KiB (docs/PROTOCOLS.md, "Sealed messages")',
  },
  directMaxAgeMs: {
    kind: 'int',
    default: 8 * 24 * 3600 * 1000,
    min: 60_000,
    description:
      'oldest direct message opened, by its sender’s timestamp, ms (at least messaging.mailboxTtlMs, so a message that waited at keepers still opens)',
  },
  directMaxFutureSkewMs: {
    kind: 'int',
    default: 5 * 60 * 1000,
    min: 0,
    description: 'how far in the future a direct message’s timestamp may be (clock skew), ms',
  },
  replayWindowIds: {
    kind: 'int',
    default: 65_536,
    min: 1,
    description:
      'direct message ids remembered against replays until the message would be too old to open (LMDB under <dataDir>/messages, kept after the message is deleted and across restarts, and in memory: about 200 bytes each); when full, the id expiring first is forgotten and messages expiring by then are refused as replays',
  },
  directRequestTimeoutMs: {
    kind: 'int',
    default: 10_000,
    min: 100,
    description:
      'time allowed for one /nodus/msg/1.0.0 request (dial, send, reply), ms; a recipient that does not answer in time gets the message through its mailbox',
  },
  directMaxInboundStreams: {
    kind: 'int',
    default: 16,
    min: 1,
    max: 1024,
    description: '/nodus/msg/1.0.0 streams one connection may have open at once (inbound)',
  },
  directMaxConcurrentRequests: {
    kind: 'int',
    default: 64,
    min: 1,
    max: 4096,
    description:
      '/nodus/msg/1.0.0 requests served at once, all peers together (each holds at most one frame: messaging.directMaxBodyBytes + 9 KiB); beyond it PEER_BUSY (the sender falls back to the mailbox)',
  },
  inboxMaxMessages: {
    kind: 'int',
    default: 100_000,
    min: 1,
    description:
      'direct messages kept in the inbox (LMDB under <dataDir>/messages); when full, new ones are refused with INBOX_FULL and wait at the mailbox keepers',
  },
  keyRotationMs: {
    kind: 'int',
    default: 7 * 24 * 3600 * 1000,
    min: 60_000,
    max: 60 * 24 * 3600 * 1000,
    description:
      'how long an X-Wing key is current, ms; then a new key (next epoch) is made and published, and its record is valid for this + messaging.keyRepublishMs',
  },
  keyGraceMs: {
    kind: 'int',
    default: 9 * 24 * 3600 * 1000,
    min: 0,
    description:
      'how long a retired X-Wing key is kept so messages sealed to it still open, ms (at least messaging.keyRepublishMs + messaging.mailboxTtlMs); then its file is deleted',
  },
  keyRepublishMs: {
    kind: 'int',
    default: 3600 * 1000,
    min: 1000,
    description:
      'how often the node re-publishes its key record in the DHT, checks the rotation schedule and deletes keys past their grace, ms',
  },
  keyCacheEntries: {
    kind: 'int',
    default: 10_000,
    min: 1,
    description: 'other peers’ verified key records cached (least recently used forgotten; each about 7 KB)',
  },
  keyLookupTimeoutMs: {
    kind: 'int',
    default: 15_000,
    min: 100,
    description: 'time allowed to find a peer’s key record (the peer itself, then the DHT), ms',
  },
  mailboxReplicas: {
    kind: 'int',
    default: 5,
    min: 1,
    max: 20,
    description:
      'keepers (peers XOR-closest to the recipient’s PeerId) a message for an unreachable recipient is stored at',
  },
  keeperCacheEntries: {
    kind: 'int',
    default: 1024,
    min: 1,
    description:
      'recipients whose mailbox keepers (closest peers) a sender remembers for 60 s, so a burst to an offline peer runs one DHT lookup (least recently used forgotten)',
  },
  mailboxTtlMs: {
    kind: 'int',
    default: 7 * 24 * 3600 * 1000,
    min: 1000,
    description:
      'how long a keeper holds a sealed message at most, ms (a sender may ask for less); then it is deleted',
  },
  mailboxMaxBytes: {
    kind: 'int',
    default: 256 * MiB,
    min: 64 * KiB,
    description:
      'sealed message bytes this node keeps for others as a keeper, in all; beyond it MAILBOX_FULL',
  },
  mailboxMaxMessages: {
    kind: 'int',
    default: 100_000,
    min: 1,
    description: 'sealed messages this node keeps for others as a keeper, in all; beyond it MAILBOX_FULL',
  },
  mailboxSenderMessages: {
    kind: 'int',
    default: 1000,
    min: 1,
    description:
      'sealed messages one storing peer may have at this keeper at once; beyond it QUOTA_EXCEEDED (until they are collected or expire)',
  },
  mailboxSenderBytes: {
    kind: 'int',
    default: 16 * MiB,
    min: 16 * KiB,
    description:
      'sealed message bytes one storing peer may have at this keeper at once; beyond it QUOTA_EXCEEDED',
  },
  mailboxRecipientMessages: {
    kind: 'int',
    default: 10_000,
    min: 1,
    description:
      'sealed messages this node keeps for one recipient as a keeper, all storing peers together; beyond it MAILBOX_RECIPIENT_FULL, so a flood aimed at one recipient leaves the rest of the mailbox to the others',
  },
  mailboxRecipientBytes: {
    kind: 'int',
    default: 32 * MiB,
    min: 16 * KiB,
    description:
      'sealed message bytes this node keeps for one recipient as a keeper, all storing peers together; beyond it MAILBOX_RECIPIENT_FULL',
  },
  mailboxFetchBytes: {
    kind: 'int',
    default: 4 * MiB,
    min: 80 * KiB,
    max: 64 * MiB,
    description:
      'sealed message bytes one mailbox fetch reply carries at most (the recipient asks again for the rest)',
  },
  mailboxCheckMs: {
    kind: 'int',
    default: 5 * 60 * 1000,
    min: 1000,
    description:
      'how often the node asks the keepers closest to its PeerId for its messages (also once at start), and keepers delete expired messages, ms',
  },
  mqttUrl: {
    kind: 'string',
    default: '',
    check: mqttUrlProblem,
    description:
      'the MQTT broker the bridge connects to, mqtt://HOST:PORT or mqtts://HOST:PORT (MQTT 5; port default 1883 / 8883); empty: no bridge. Credentials may be in it (mqtt://USER:PASSWORD@HOST) or in messaging.mqttUsername / mqttPassword, which win; the URL is shown and logged without them',
  },
  mqttUsername: {
    kind: 'string',
    default: '',
    description: 'user name the bridge gives the broker; empty: the URL’s, else none',
  },
  mqttPassword: {
    kind: 'string',
    default: '',
    description:
      'password the bridge gives the broker (better set by the environment, NODUS_MESSAGING_MQTT_PASSWORD); empty: the URL’s, else none. Never logged or shown',
  },
  mqttMappings: {
    kind: 'strings',
    default: [],
    check: (v: readonly string[]) => {
      const r = parseMqttMappings(v)
      return typeof r === 'string' ? r : undefined
    },
    description:
      'what the bridge carries, each DIRECTION:FILTER=TOPIC: in (MQTT → nodus), out (nodus → MQTT) or both; FILTER an MQTT topic filter (+, #); TOPIC the nodus topic, whose messages carry their MQTT topic name (docs/PROTOCOLS.md, "MQTT bridge"). Env: comma-separated',
  },
  mqttQos: {
    kind: 'int',
    default: 1,
    min: 0,
    max: 1,
    description:
      'MQTT QoS of the bridge’s subscriptions and publishes: 0 at most once, 1 at least once (acknowledged by the broker)',
  },
  mqttShareGroup: {
    kind: 'string',
    default: 'nodus',
    check: (v: string) => (/[/+#]/.test(v) ? 'must not contain /, + or #' : undefined),
    description:
      'the bridge subscribes as $share/GROUP/FILTER (MQTT 5 shared subscription), so of several bridges to one broker only one imports each MQTT message; empty: a plain subscription (each bridge imports everything)',
  },
  mqttPeers: {
    kind: 'strings',
    default: [],
    check: (v: readonly string[]) =>
      v.every((p) => /^[1-9A-HJ-NP-Za-km-z]{46,60}$/.test(p)) ? undefined : 'expected PeerIds (base58btc)',
    description:
      'PeerIds of the other nodes that bridge the same broker (the same messaging.mqttUrl host and port): each nodus message is exported by one of those connected to it and to the broker (rendezvous hashing), not by all; empty: this bridge exports every message',
  },
  mqttQueueBytes: {
    kind: 'int',
    default: 4 * MiB,
    min: 64 * KiB,
    description:
      'messages waiting to be published to the broker (while it is down or slow), bytes (payload + topic + 64 each); beyond it new ones are dropped (nodus_messaging_mqtt_dropped_total{reason="queue_full"})',
  },
  mqttMaxInflight: {
    kind: 'int',
    default: 64,
    min: 1,
    max: 65_535,
    description:
      'QoS 1 publishes to the broker awaiting its PUBACK, and QoS 1 messages the broker may send before this node acknowledges (MQTT 5 Receive Maximum)',
  },
  mqttReconnectMinMs: {
    kind: 'int',
    default: 1000,
    min: 10,
    description:
      'first wait before reconnecting to the broker, ms; it doubles after each failed attempt up to messaging.mqttReconnectMaxMs (each wait × 0.5 … 1, random), and is reset once connected',
  },
  mqttReconnectMaxMs: {
    kind: 'int',
    default: 60_000,
    min: 10,
    description: 'longest wait between reconnection attempts to the broker, ms',
  },
  mqttConnectTimeoutMs: {
    kind: 'int',
    default: 10_000,
    min: 100,
    description: 'time allowed to connect to the broker (TCP, TLS, CONNECT to CONNACK), ms',
  },
  mqttKeepaliveMs: {
    kind: 'int',
    default: 30_000,
    min: 1000,
    max: 65_535_000,
    description:
      'MQTT keep-alive, ms (sent as whole seconds): the bridge pings when idle, and the broker drops it after 1.5 × this without a packet',
  },
  mqttSessionExpiryMs: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 4_294_967_000,
    description:
      'how long the broker keeps the bridge’s session (subscriptions, unacknowledged QoS 1 messages) after a disconnect, ms (whole seconds); 0: a new session every connection. A redelivered message already imported is dropped (duplicate)',
  },
  mqttDedupIds: {
    kind: 'int',
    default: 4096,
    min: 1,
    description:
      'QoS 1 messages remembered (packet id, topic, payload hash) to drop a redelivery (DUP) of one already imported; least recently imported forgotten',
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
  if (o.directMaxAgeMs < o.mailboxTtlMs)
    out.push(
      'messaging.directMaxAgeMs: must be at least messaging.mailboxTtlMs (a stored message must still open)',
    )
  if (o.mailboxFetchBytes < o.directMaxBodyBytes + 16 * KiB)
    out.push(
      'messaging.mailboxFetchBytes: must be at least messaging.directMaxBodyBytes + 16 KiB (one message)',
    )
  if (o.mqttReconnectMaxMs < o.mqttReconnectMinMs)
    out.push('messaging.mqttReconnectMaxMs: must be at least messaging.mqttReconnectMinMs')
  if (o.mqttUrl !== '' && o.mqttMappings.length === 0)
    out.push('messaging.mqttMappings: a bridge (messaging.mqttUrl is set) needs at least one mapping')
  const mappings = parseMqttMappings(o.mqttMappings)
  if (typeof mappings !== 'string')
    for (const m of mappings)
      if (Buffer.byteLength(m.topic, 'utf8') > o.maxTopicBytes)
        out.push(`messaging.mqttMappings: nodus topic "${m.topic}" is over messaging.maxTopicBytes`)
  return out
}
