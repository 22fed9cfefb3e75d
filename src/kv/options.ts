/**
 * The kv area's config keys: section `kv` of the config file (docs/CONFIG.md): the bounds of an
 * operation (docs/PROTOCOLS.md, "KV operations"), the clock skew an operation may have, and the
 * signature verification pool, and reconciliation (`recon*`, src/kv/reconcile/protocol.ts; docs/PROTOCOLS.md,
 * "KV reconciliation"). Pure table; the type {@link KvOptions} is derived from it.
 */
import { defineOptions, GiB, MiB, type OptionsOf } from '../common/options.ts'

/** Bytes in a kibibyte (2^10). */
const KiB = 1024

/** Reconciliation keys of section `kv`. */
export const KV_RECON_OPTIONS = defineOptions({
  reconSplitFactor: {
    kind: 'int',
    default: 16,
    min: 2,
    max: 256,
    description:
      'B: a range whose fingerprints differ and that holds more than kv.reconIdListThreshold ops is split into this many sub-ranges of about equal counts',
  },
  reconIdListThreshold: {
    kind: 'int',
    default: 32,
    min: 1,
    max: 4096,
    description:
      'a range whose fingerprints differ is answered with its op keys (40 bytes each) rather than split when this node holds at most this many ops in it (or the peer holds none)',
  },
  reconMaxMessageBytes: {
    kind: 'int',
    default: 1 * MiB,
    min: 4 * KiB,
    max: 16 * MiB,
    description:
      'largest reconciliation message this node sends or accepts, bytes (each side sends at most the smaller of its own and the peer’s); a longer exchange continues over more rounds',
  },
  reconMaxRounds: {
    kind: 'int',
    default: 128,
    min: 1,
    max: 100_000,
    description:
      'most messages one side of a reconciliation session sends; beyond it the session ends with RECON_ROUNDS_EXCEEDED (in-sync: 1; catch-up of M ops: about log_B(n) + 40·M / kv.reconMaxMessageBytes)',
  },
})

/** The reconciliation keys' values. */
export type KvReconOptions = OptionsOf<typeof KV_RECON_OPTIONS>

/** GraphQL keys of section `kv` (src/kv/graphql.ts; docs/API.md, "GraphQL (kv)"). */
export const KV_GRAPHQL_OPTIONS = defineOptions({
  graphqlMaxDepth: {
    kind: 'int',
    default: 8,
    min: 2,
    max: 64,
    description:
      'deepest nesting of fields in one GraphQL operation (fragments expanded); deeper: KV_GRAPHQL_TOO_COMPLEX',
  },
  graphqlMaxFields: {
    kind: 'int',
    default: 500,
    min: 1,
    max: 100_000,
    description:
      'most fields in one GraphQL operation, aliases and fragment uses counted each time; more: KV_GRAPHQL_TOO_COMPLEX',
  },
  graphqlMaxRootFields: {
    kind: 'int',
    default: 32,
    min: 1,
    max: 10_000,
    description:
      'most top-level fields (reads, or submitted operations) in one GraphQL operation, aliases counted; more: KV_GRAPHQL_TOO_COMPLEX',
  },
  graphqlMaxElements: {
    kind: 'int',
    default: 1000,
    min: 1,
    max: 1_000_000,
    description:
      'most elements one GraphQL field returns (a larger limit or count: INVALID_ARGUMENT; a range without one is cut there)',
  },
  graphqlMaxBodyBytes: {
    kind: 'int',
    default: 1 * MiB,
    min: 4 * KiB,
    max: 64 * MiB,
    description:
      'largest POST /graphql body, bytes (submitOperations carries base64 envelopes); larger: 413 MESSAGE_TOO_LARGE',
  },
  graphqlMaxTokens: {
    kind: 'int',
    default: 10_000,
    min: 100,
    max: 1_000_000,
    description: 'most lexical tokens in one GraphQL document; more: KV_GRAPHQL_INVALID before it is parsed',
  },
  graphqlMaxSubscriptions: {
    kind: 'int',
    default: 10_000,
    min: 1,
    max: 1_000_000,
    description: 'GraphQL subscriptions open on this node at once; beyond it a new one ends with QUEUE_FULL',
  },
  graphqlMaxSubscriptionsPerConnection: {
    kind: 'int',
    default: 100,
    min: 1,
    max: 100_000,
    description:
      'GraphQL subscriptions open at once over one WebSocket connection; beyond it a new one ends with QUEUE_FULL',
  },
  graphqlSubscriptionQueue: {
    kind: 'int',
    default: 1000,
    min: 1,
    max: 1_000_000,
    description:
      'events waiting to be sent to one subscriber; a subscriber that falls further behind is ended with QUEUE_FULL (resubscribe, then read what changed)',
  },
})

/** Section `kv`. */
export const KV_OPTIONS = defineOptions({
  ...KV_RECON_OPTIONS,
  ...KV_GRAPHQL_OPTIONS,
  keepers: {
    kind: 'int',
    default: 3,
    min: 0,
    max: 20,
    description:
      'r: the peers XOR-closest to a database id that keep it besides the nodes that host it, so its data outlives its writers’ devices',
  },
  maxHostedDbs: {
    kind: 'int',
    default: 1024,
    min: 1,
    max: 1_000_000,
    description:
      'databases this node hosts or keeps at once; a write, host request or sync for another one beyond it: KV_DB_NOT_HOSTED',
  },
  syncIntervalMs: {
    kind: 'int',
    default: 30_000,
    min: 100,
    max: 86_400_000,
    description:
      'between anti-entropy rounds of each hosted database with one of its other hosts or keepers, ms (a round also runs when the node starts and when it begins hosting a database)',
  },
  activeSyncIntervalMs: {
    kind: 'int',
    default: 1000,
    min: 0,
    max: 3_600_000,
    description:
      'between anti-entropy syncs of a database that received or produced ops in the last 5 such intervals, with one other host, ms; repairs lost gossip within about this long (0: only the kv.syncIntervalMs rounds)',
  },
  maxActiveDbs: {
    kind: 'int',
    default: 64,
    min: 1,
    max: 100_000,
    description:
      'databases synced on the active schedule at once; the least recently active leaves it beyond this',
  },
  syncTimeoutMs: {
    kind: 'int',
    default: 60_000,
    min: 1000,
    max: 3_600_000,
    description: 'time one sync session (reconciliation, fetch, push) may take, ms',
  },
  maxSyncSessions: {
    kind: 'int',
    default: 16,
    min: 1,
    max: 1024,
    description: 'sync sessions this node serves at once; beyond it PEER_BUSY',
  },
  maxSyncSessionsPerPeer: {
    kind: 'int',
    default: 2,
    min: 1,
    max: 1024,
    description:
      'sync sessions this node serves at once to one peer (of kv.maxSyncSessions), so one peer cannot take every slot; beyond it PEER_BUSY',
  },
  keeperSlack: {
    kind: 'int',
    default: 3,
    min: 0,
    max: 100,
    description:
      'a peer syncing a database this node does not host makes this node keep it only if this node is among the kv.keepers + kv.keeperSlack peers XOR-closest to its id in this node’s own view (its routing table and connections; views differ, hence the slack); otherwise KV_DB_NOT_HOSTED',
  },
  maxKeptDbsPerOwner: {
    kind: 'int',
    default: 16,
    min: 1,
    max: 1_000_000,
    description:
      'databases of one owner key this node keeps for peers (databases it hosts because it writes to them or was asked to through its API do not count); beyond it a peer’s sync of another one is refused with KV_DB_NOT_HOSTED',
  },
  maxDbBytes: {
    kind: 'int',
    default: 256 * MiB,
    min: 64 * KiB,
    max: 1024 * 1024 * GiB,
    description:
      'bytes of operations (their envelopes) one database may hold on this node; an operation that would pass it is refused with KV_DB_FULL, from a peer or from this node’s API alike (a revoke still passes, so a writer that filled a database can be revoked)',
  },
  maxBytes: {
    kind: 'int',
    default: 16 * GiB,
    min: 1 * MiB,
    max: 1024 * 1024 * GiB,
    description:
      'bytes of operations (their envelopes) all databases together may hold on this node; an operation that would pass it is refused with KV_DB_FULL',
  },
  maxOpBytes: {
    kind: 'int',
    default: 56 * KiB,
    min: 8 * KiB,
    max: 4 * MiB,
    description:
      'largest signed operation accepted or signed, bytes (the whole envelope; a hybrid signature and key take about 5.4 KB of it); keep it below messaging.maxMessageBytes so an operation fits one gossip message; larger: KV_OP_TOO_LARGE',
  },
  maxKeyBytes: {
    kind: 'int',
    default: 512,
    min: 1,
    max: 64 * KiB,
    description: 'longest key (and grant key prefix), UTF-8 bytes; longer: KV_OP_TOO_LARGE',
  },
  maxFieldBytes: {
    kind: 'int',
    default: 512,
    min: 1,
    max: 64 * KiB,
    description: 'longest field (hash field, JSON path, sub-key), UTF-8 bytes; longer: KV_OP_TOO_LARGE',
  },
  maxValueBytes: {
    kind: 'int',
    default: 48 * KiB,
    min: 1,
    max: 4 * MiB,
    description:
      'largest argument of an operation (a value, member, document), bytes of its dag-cbor encoding; larger: KV_OP_TOO_LARGE',
  },
  maxFutureSkewMs: {
    kind: 'int',
    default: 60_000,
    min: 1000,
    max: 3_600_000,
    description:
      'how far ahead of this node’s clock an operation’s HLC may be, ms; further: KV_OP_FROM_FUTURE (and the node’s own HLC never moves further ahead)',
  },
  verifyThreads: {
    kind: 'int',
    default: 2,
    min: 0,
    max: 64,
    description:
      'worker threads verifying operation signatures off the event loop (0: verify on the event loop itself, for a one-core machine); on 2 cores, 2 threads verify about 18,000 Ed25519 signatures/s, the event loop alone about 10,000 (bench/verify-pool.bench.ts)',
  },
  verifyBatchSize: {
    kind: 'int',
    default: 64,
    min: 1,
    max: 4096,
    description:
      'most signatures sent to a verification worker in one task (signatures arriving in one event-loop turn share a task)',
  },
  verifyQueueMax: {
    kind: 'int',
    default: 16_384,
    min: 1,
    max: 1_048_576,
    description:
      'signatures waiting for or in verification at once; beyond it a verification fails with QUEUE_FULL',
  },
  testGossipDropPerMille: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 1000,
    description:
      'TEST AID, keep 0 in production: drop this many of every 1,000 kv gossip messages received (seeded, src/kv/fault.ts), so the repair by anti-entropy can be measured (bench/kv-lossy.bench.ts)',
  },
  testGossipDropSeed: {
    kind: 'int',
    default: 1,
    min: 0,
    max: 4_294_967_295,
    description:
      'TEST AID: seed of kv.testGossipDropPerMille’s draws (mixed with the node’s PeerId, so nodes drop independently)',
  },
})

/** The GraphQL keys' values. */
export type KvGraphqlOptions = OptionsOf<typeof KV_GRAPHQL_OPTIONS>

/** The values of section `kv`. */
export type KvOptions = OptionsOf<typeof KV_OPTIONS>

/**
 * Problems between keys of section `kv` (each `kv.<key>: message`), empty when consistent.
 * A key's own range is checked by the config loader.
 */
export function kvOptionProblems(o: KvOptions): string[] {
  const out: string[] = []
  if (o.maxValueBytes > o.maxOpBytes) out.push('kv.maxValueBytes: must be at most kv.maxOpBytes')
  if (o.maxKeyBytes + o.maxFieldBytes > o.maxOpBytes)
    out.push('kv.maxKeyBytes: kv.maxKeyBytes + kv.maxFieldBytes must be at most kv.maxOpBytes')
  if (o.verifyQueueMax < o.verifyBatchSize) out.push('kv.verifyQueueMax: must be at least kv.verifyBatchSize')
  if (o.maxSyncSessionsPerPeer > o.maxSyncSessions)
    out.push('kv.maxSyncSessionsPerPeer: must be at most kv.maxSyncSessions')
  if (o.maxDbBytes > o.maxBytes) out.push('kv.maxDbBytes: must be at most kv.maxBytes')
  if (o.maxOpBytes > o.maxDbBytes) out.push('kv.maxOpBytes: must be at most kv.maxDbBytes')
  return out
}
