/**
 * The net area's metrics (docs/METRICS.md): provider records, connections, IP-diversity refusals,
 * relay reservation attempts, hole-punch rounds. Pure: creates them on the
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
    gaterRefused: new Counter({
      name: 'nodus_net_gater_refused_total',
      help: 'inbound libp2p connections refused by the IP-diversity limits (net.gater*), by reason: ip, subnet24, subnet16, subnet64, subnet48, rate',
      labelNames: ['reason'] as const,
      registers,
    }),
    routingTableRefused: new Counter({
      name: 'nodus_net_routing_table_refused_total',
      help: 'DHT contacts kept out of a k-bucket that already held net.dhtMaxPerSubnet contacts of their /24 (/64)',
      registers,
    }),
    relayReservations: new Counter({
      name: 'nodus_net_relay_reservation_attempts_total',
      help: 'attempts of the relay watchdog to reserve a slot again on a configured relay (net.relays) whose reservation was missing, by result: ok, failed',
      labelNames: ['result'] as const,
      registers,
    }),
    keeperDials: new Counter({
      name: 'nodus_net_keeper_dials_total',
      help: 'dials the peer keeper made to stay above net.minConnections connected peers, by result: ok, failed',
      labelNames: ['result'] as const,
      registers,
    }),
    holePunchRounds: new Counter({
      name: 'nodus_net_holepunch_rounds_total',
      help: 'DCUtR hole-punch rounds by outcome: direct (a direct connection after it), failed (still relayed), busy (waited for a run with the same peer), yielded (a peer run refused: ours under way, or already direct)',
      labelNames: ['result'] as const,
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
