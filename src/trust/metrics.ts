/** The trust area's metrics (docs/METRICS.md): peer actions and bans. Pure: creates them on the registry it is given. */
import { Counter, type Registry } from 'prom-client'
import { liveGauge } from '../common/metrics.ts'

/** Live trust values read at scrape time. */
export interface TrustMetricsSources {
  /** Peers banned now (trust/peer-actions.ts); absent: 0. */
  bannedPeers?(): number
}

/**
 * Creates the trust metrics on `registry`: the counter returned, and the gauge read from `sources()` at
 * scrape time (0 until it gives a source).
 */
export function createTrustMetrics(registry: Registry, sources: () => TrustMetricsSources | undefined) {
  const metrics = {
    peerActions: new Counter({
      name: 'nodus_trust_peer_actions_total',
      help: 'What this node did to peers for their faults, by action (ignore, penalize, disconnect, ban)',
      labelNames: ['action'],
      registers: [registry],
    }),
  } as const
  liveGauge(
    registry,
    sources,
    'nodus_trust_banned_peers',
    'Peers banned by this node now',
    (s) => s.bannedPeers?.() ?? 0,
  )
  return metrics
}

/** The trust area's metrics (NodusMetrics has them as fields of the same names). */
export type TrustMetrics = ReturnType<typeof createTrustMetrics>
