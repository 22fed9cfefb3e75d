/**
 * The net area's metrics (docs/METRICS.md): provider records, connections. Pure: creates them on the
 * registry it is given.
 */
import { Counter, type Registry } from 'prom-client'
import { liveGauge } from '../common/metrics.ts'

/** Live net values read at scrape time. */
export interface NetMetricsSources {
  /** Open libp2p connections. */
  connections(): number
  /** Provider records waiting to be announced. */
  provideQueueDepth(): number
}

/**
 * Creates the net metrics on `registry`: the counters returned, and the gauges read from `sources()` at
 * scrape time (0 until it gives a source).
 */
export function createNetMetrics(registry: Registry, sources: () => NetMetricsSources | undefined) {
  const registers = [registry]
  const metrics = {
    providerRecords: new Counter({
      name: 'nodus_net_provider_records_sent_total',
      help: 'ADD_PROVIDER messages delivered to peers (one per key and peer)',
      registers,
    }),
    providerLookups: new Counter({
      name: 'nodus_net_provider_lookups_total',
      help: 'DHT lookups made to announce provider records (keys covered by an earlier lookup need none)',
      registers,
    }),
  } as const
  liveGauge(registry, sources, 'nodus_net_connections', 'Open libp2p connections', (s) => s.connections())
  liveGauge(
    registry,
    sources,
    'nodus_net_provide_queue_depth',
    'Provider records waiting to be announced',
    (s) => s.provideQueueDepth(),
  )
  return metrics
}

/** The net area's metrics (NodusMetrics has them as fields of the same names). */
export type NetMetrics = ReturnType<typeof createNetMetrics>
