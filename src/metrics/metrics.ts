/**
 * Per-node Prometheus metrics (prom-client, one Registry per node, never the global one, so several
 * nodes can share a test process). Names follow `nodus_<area>_<what>_<unit>`; times are in seconds.
 * docs/METRICS.md lists them.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

/** Latency buckets in seconds, from 0.5 ms to 30 s. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** Live values read at scrape time (gauges with a collect function). */
export interface MetricsSources {
  storage(): { bytes: number; shards: number; capacityBytes: number; freeBytes: number }
  connections(): number
  provideQueueDepth(): number
  shardRequestsInFlight(): number
  /** Peers banned now (trust/peer-actions.ts); absent: 0. */
  bannedPeers?(): number
}

export class NodusMetrics {
  readonly registry: Registry
  readonly shardWriteSeconds: Histogram
  readonly shardReadSeconds: Histogram
  readonly erasureSeconds: Histogram<'op'>
  readonly shardRequests: Counter<'op' | 'result'>
  readonly fileBytes: Counter<'direction'>
  readonly fileOps: Counter<'op' | 'result'>
  readonly apiRequests: Counter<'route' | 'method' | 'status'>
  readonly apiSeconds: Histogram<'route' | 'method'>
  readonly cacheRequests: Counter<'result'>
  readonly shardsRemoved: Counter<'reason'>
  readonly audits: Counter<'result'>
  readonly repairs: Counter<'state'>
  readonly manifestFallbacks: Counter
  readonly providerRecords: Counter
  readonly providerLookups: Counter
  readonly peerActions: Counter<'action'>
  #sources: MetricsSources | undefined

  constructor() {
    this.registry = new Registry()
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 })
    // prom-client names these gauges *_total, which `promtool check metrics` rejects for non-counters;
    // the same figures remain as nodejs_active_handles / _requests / _resources.
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ]) {
      this.registry.removeSingleMetric(name)
    }
    this.shardWriteSeconds = new Histogram({
      name: 'nodus_storage_shard_write_seconds',
      help: 'Time to store one shard durably (hash, write, fsync, rename, index commit)',
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.shardReadSeconds = new Histogram({
      name: 'nodus_storage_shard_read_seconds',
      help: 'Time to serve one shard read request, from request to last byte sent',
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.erasureSeconds = new Histogram({
      name: 'nodus_storage_erasure_seconds',
      help: 'Reed-Solomon time per segment',
      labelNames: ['op'],
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.shardRequests = new Counter({
      name: 'nodus_storage_shard_requests_total',
      help: 'Shard protocol requests served, by op and result code',
      labelNames: ['op', 'result'],
      registers,
    })
    this.fileBytes = new Counter({
      name: 'nodus_storage_file_bytes_total',
      help: 'File bytes put or got through this node',
      labelNames: ['direction'],
      registers,
    })
    this.fileOps = new Counter({
      name: 'nodus_storage_file_operations_total',
      help: 'File puts and gets, by result',
      labelNames: ['op', 'result'],
      registers,
    })
    this.apiRequests = new Counter({
      name: 'nodus_api_requests_total',
      help: 'HTTP API requests, by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
    })
    this.apiSeconds = new Histogram({
      name: 'nodus_api_request_seconds',
      help: 'HTTP API request duration',
      labelNames: ['route', 'method'],
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.cacheRequests = new Counter({
      name: 'nodus_storage_cache_requests_total',
      help: 'Shard cache look-ups, by result (hit or miss)',
      labelNames: ['result'],
      registers,
    })
    this.shardsRemoved = new Counter({
      name: 'nodus_storage_shards_removed_total',
      help: 'Shard records removed from the store, by reason (expired, deleted, lost: file missing, corrupt: file of the wrong size or bytes)',
      labelNames: ['reason'],
      registers,
    })
    this.audits = new Counter({
      name: 'nodus_storage_audits_total',
      help: 'Shard audits run by this node, by result (pass or fail)',
      labelNames: ['result'],
      registers,
    })
    this.repairs = new Counter({
      name: 'nodus_storage_repairs_total',
      help: 'Segment repairs, by state (started or finished)',
      labelNames: ['state'],
      registers,
    })
    this.manifestFallbacks = new Counter({
      name: 'nodus_storage_manifest_fallbacks_total',
      help: 'Watched manifests loaded for repair from their last good state (the kept holder update or the manifest could not be loaded)',
      registers,
    })
    this.providerRecords = new Counter({
      name: 'nodus_net_provider_records_sent_total',
      help: 'ADD_PROVIDER messages delivered to peers (one per key and peer)',
      registers,
    })
    this.providerLookups = new Counter({
      name: 'nodus_net_provider_lookups_total',
      help: 'DHT lookups made to announce provider records (keys covered by an earlier lookup need none)',
      registers,
    })
    this.peerActions = new Counter({
      name: 'nodus_trust_peer_actions_total',
      help: 'What this node did to peers for their faults, by action (ignore, penalize, disconnect, ban)',
      labelNames: ['action'],
      registers,
    })
    const self = this
    const gauge = (name: string, help: string, read: (s: MetricsSources) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          if (self.#sources !== undefined) this.set(read(self.#sources))
        },
      })
    }
    gauge('nodus_storage_stored_bytes', 'Bytes of shards stored on this node', (s) => s.storage().bytes)
    gauge('nodus_storage_shards', 'Shards stored on this node', (s) => s.storage().shards)
    gauge(
      'nodus_storage_capacity_bytes',
      'Storage capacity offered by this node',
      (s) => s.storage().capacityBytes,
    )
    gauge('nodus_storage_free_bytes', 'Free storage capacity', (s) => s.storage().freeBytes)
    gauge('nodus_net_connections', 'Open libp2p connections', (s) => s.connections())
    gauge('nodus_net_provide_queue_depth', 'Provider records waiting to be announced', (s) =>
      s.provideQueueDepth(),
    )
    gauge('nodus_storage_shard_requests_in_flight', 'Shard protocol requests being served', (s) =>
      s.shardRequestsInFlight(),
    )
    gauge('nodus_trust_banned_peers', 'Peers banned by this node now', (s) => s.bannedPeers?.() ?? 0)
  }

  /** Attach the live sources read at scrape time (called once by the composition root). */
  attach(sources: MetricsSources): void {
    this.#sources = sources
  }

  /** Prometheus text exposition. */
  async text(): Promise<string> {
    return await this.registry.metrics()
  }
}

/** Time `fn` into `h` (seconds), whether it resolves or throws. */
export async function timed<T>(h: { observe(v: number): void }, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now()
  try {
    return await fn()
  } finally {
    h.observe((performance.now() - t0) / 1000)
  }
}
