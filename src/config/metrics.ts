/** The config area has no metrics. */
import type { Registry } from 'prom-client'

/** Creates no metrics: an empty set, so src/metrics/metrics.ts assembles every area alike. */
export function createConfigMetrics(_registry: Registry) {
  return Object.freeze({})
}

/** The config area's metrics (none). */
export type ConfigMetrics = ReturnType<typeof createConfigMetrics>
