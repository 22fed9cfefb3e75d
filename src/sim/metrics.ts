/** The simulators export no metrics (offline tools; their reports carry their own figures). */
import type { Registry } from 'prom-client'

/** Creates no metrics: an empty set, so src/metrics/metrics.ts assembles every area alike. */
export function createSimMetrics(_registry: Registry) {
  return Object.freeze({})
}

/** The sim area's metrics (none). */
export type SimMetrics = ReturnType<typeof createSimMetrics>
