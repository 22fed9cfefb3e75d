/**
 * The storage area's metrics (docs/METRICS.md): shard store, shard protocol, files, cache, audits and
 * repair. Pure: creates them on the registry it is given.
 */
import { Counter, Histogram, type Registry } from 'prom-client'
import { LATENCY_BUCKETS, liveGauge } from '../common/metrics.ts'

/** Live storage values read at scrape time. */
export interface StorageMetricsSources {
  /** The shard store's usage, bytes and shards. */
  storage(): { bytes: number; shards: number; capacityBytes: number; freeBytes: number }
  /** Shard protocol requests being served now. */
  shardRequestsInFlight(): number
}

/**
 * Creates the storage metrics on `registry`: the counters and histograms returned, and the gauges
 * read from `sources()` at scrape time (0 until it gives a source).
 */
export function createStorageMetrics(registry: Registry, sources: () => StorageMetricsSources | undefined) {
  const registers = [registry]
  const metrics = {
    shardWriteSeconds: new Histogram({
      name: 'nodus_storage_shard_write_seconds',
      help: 'Time to store one shard durably (hash, write, fsync, rename, index commit)',
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
    shardReadSeconds: new Histogram({
      name: 'nodus_storage_shard_read_seconds',
      help: 'Time to serve one shard read request, from request to last byte sent',
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
    erasureSeconds: new Histogram({
      name: 'nodus_storage_erasure_seconds',
      help: 'Reed-Solomon time per segment',
      labelNames: ['op'],
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
    getPhaseSeconds: new Histogram({
      name: 'nodus_storage_get_phase_seconds',
      help: "Phases of a file get: manifest (resolved, holder update applied), first_segment (from the start of the shard fetches to the first segment decoded: a get's time to first byte after its manifest)",
      labelNames: ['phase'],
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
    shardRequests: new Counter({
      name: 'nodus_storage_shard_requests_total',
      help: 'Shard protocol requests served, by op and result code',
      labelNames: ['op', 'result'],
      registers,
    }),
    fileBytes: new Counter({
      name: 'nodus_storage_file_bytes_total',
      help: 'File bytes put or got through this node',
      labelNames: ['direction'],
      registers,
    }),
    fileOps: new Counter({
      name: 'nodus_storage_file_operations_total',
      help: 'File puts and gets, by result',
      labelNames: ['op', 'result'],
      registers,
    }),
    cacheRequests: new Counter({
      name: 'nodus_storage_cache_requests_total',
      help: 'Shard cache look-ups, by result (hit or miss)',
      labelNames: ['result'],
      registers,
    }),
    shardsRemoved: new Counter({
      name: 'nodus_storage_shards_removed_total',
      help: 'Shard records removed from the store, by reason (expired, deleted, lost: file missing, corrupt: file of the wrong size or bytes)',
      labelNames: ['reason'],
      registers,
    }),
    audits: new Counter({
      name: 'nodus_storage_audits_total',
      help: 'Shard audits run by this node, by result (pass or fail)',
      labelNames: ['result'],
      registers,
    }),
    repairs: new Counter({
      name: 'nodus_storage_repairs_total',
      help: 'Segment repairs, by state (started or finished)',
      labelNames: ['state'],
      registers,
    }),
    manifestFallbacks: new Counter({
      name: 'nodus_storage_manifest_fallbacks_total',
      help: 'Watched manifests loaded for repair from their last good state (the kept holder update or the manifest could not be loaded)',
      registers,
    }),
  } as const
  liveGauge(
    registry,
    sources,
    'nodus_storage_stored_bytes',
    'Bytes of shards stored on this node',
    (s) => s.storage().bytes,
  )
  liveGauge(
    registry,
    sources,
    'nodus_storage_shards',
    'Shards stored on this node',
    (s) => s.storage().shards,
  )
  liveGauge(
    registry,
    sources,
    'nodus_storage_capacity_bytes',
    'Storage capacity offered by this node',
    (s) => s.storage().capacityBytes,
  )
  liveGauge(
    registry,
    sources,
    'nodus_storage_free_bytes',
    'Free storage capacity',
    (s) => s.storage().freeBytes,
  )
  liveGauge(
    registry,
    sources,
    'nodus_storage_shard_requests_in_flight',
    'Shard protocol requests being served',
    (s) => s.shardRequestsInFlight(),
  )
  return metrics
}

/** The storage area's metrics (NodusMetrics has them as fields of the same names). */
export type StorageMetrics = ReturnType<typeof createStorageMetrics>
