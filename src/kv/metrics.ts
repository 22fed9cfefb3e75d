/**
 * The kv area's metrics (docs/METRICS.md). Reconciliation: messages and bytes each way, differences
 * found (ops this node lacks, ops the peer lacks), sessions by role and result, round trips per
 * session. Pure: creates them on the registry given.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/** Creates the kv reconciliation metrics on `registry`. */
export function createKvReconMetrics(registry: Registry) {
  const registers = [registry]
  return {
    kvReconMessages: new Counter({
      name: 'nodus_kv_recon_messages_total',
      help: 'Reconciliation messages, by direction (sent, received)',
      labelNames: ['direction'],
      registers,
    }),
    kvReconBytes: new Counter({
      name: 'nodus_kv_recon_bytes_total',
      help: 'Bytes of reconciliation messages (op keys and fingerprints, not the ops), by direction (sent, received)',
      labelNames: ['direction'],
      registers,
    }),
    kvReconDifferences: new Counter({
      name: 'nodus_kv_recon_differences_total',
      help: 'Ops found missing by reconciliation, by side (need: this node lacks it; have: the peer lacks it)',
      labelNames: ['side'],
      registers,
    }),
    kvReconSessions: new Counter({
      name: 'nodus_kv_recon_sessions_total',
      help: 'Reconciliation sessions ended, by role (initiator, responder) and result (done, failed)',
      labelNames: ['role', 'result'],
      registers,
    }),
    kvReconSessionRounds: new Histogram({
      name: 'nodus_kv_recon_session_rounds',
      help: 'Messages this node sent in a reconciliation session that finished (an in-sync initiator: 1)',
      buckets: [1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128],
      registers,
    }),
  }
}

/** The kv reconciliation metrics. */
export type KvReconMetrics = ReturnType<typeof createKvReconMetrics>

/** Creates the kv GraphQL interface's metrics on `registry` (src/kv/graphql.ts). */
export function createKvGraphqlMetrics(registry: Registry) {
  const registers = [registry]
  return {
    kvGraphqlSubscriptions: new Gauge({
      name: 'nodus_kv_graphql_subscriptions',
      help: 'GraphQL subscriptions open on this node (keyChanged, dbChanged, pattern)',
      registers,
    }),
    kvGraphqlSubscriptionsEnded: new Counter({
      name: 'nodus_kv_graphql_subscriptions_ended_total',
      help: 'GraphQL subscriptions ended, by reason (closed: by the client or the node stopping; overflow: fell kv.graphqlSubscriptionQueue events behind; refused: over kv.graphqlMaxSubscriptions or the per-connection bound)',
      labelNames: ['reason'],
      registers,
    }),
    kvGraphqlEvents: new Counter({
      name: 'nodus_kv_graphql_events_total',
      help: 'Applied kv operations queued to GraphQL subscribers (one per matching subscriber)',
      registers,
    }),
  }
}

/** The kv GraphQL metrics. */
export type KvGraphqlMetrics = ReturnType<typeof createKvGraphqlMetrics>

/** Creates the kv area's metrics on `registry`. */
export function createKvMetrics(registry: Registry) {
  const registers = [registry]
  return {
    ...createKvReconMetrics(registry),
    ...createKvGraphqlMetrics(registry),
    kvOpsApplied: new Counter({
      name: 'nodus_kv_ops_applied_total',
      help: "KV operations applied, by where they came from (local: this node's API; gossip; sync)",
      labelNames: ['source'],
      registers,
    }),
    kvOpsRefused: new Counter({
      name: 'nodus_kv_ops_refused_total',
      help: 'KV operations refused, by reason (the error code, lower case; a duplicate counts as kv_op_duplicate)',
      labelNames: ['reason'],
      registers,
    }),
    kvSyncs: new Counter({
      name: 'nodus_kv_syncs_total',
      help: 'Sync sessions this node started, by result (done, failed)',
      labelNames: ['result'],
      registers,
    }),
    kvSyncRefused: new Counter({
      name: 'nodus_kv_sync_refused_total',
      help: "Sync sessions this node refused to serve, by reason (peer_busy: the peer's kv.maxSyncSessionsPerPeer; busy: kv.maxSyncSessions; not_keeper: a database it neither hosts nor is a keeper of; owner_full: kv.maxKeptDbsPerOwner; hosted_full: kv.maxHostedDbs; db_invalid: not a database id)",
      labelNames: ['reason'],
      registers,
    }),
    kvSyncedOps: new Counter({
      name: 'nodus_kv_synced_ops_total',
      help: 'Operations moved by sync sessions this node started, by direction (fetched: applied here; pushed: applied at the peer)',
      labelNames: ['direction'],
      registers,
    }),
    kvGossipDropped: new Counter({
      name: 'nodus_kv_gossip_dropped_total',
      help: 'KV gossip messages dropped on purpose by the test aid kv.testGossipDropPerMille (0 unless it is on)',
      registers,
    }),
  }
}

/** The kv area's metrics. */
export type KvMetrics = ReturnType<typeof createKvMetrics>
