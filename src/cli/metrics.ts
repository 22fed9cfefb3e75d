/** The CLI has no metrics of its own (a node it starts has its areas' metrics). */
import type { Registry } from 'prom-client'

/** Creates no metrics: an empty set, so src/metrics/metrics.ts assembles every area alike. */
export function createCliMetrics(_registry: Registry) {
  return Object.freeze({})
}

/** The cli area's metrics (none). */
export type CliMetrics = ReturnType<typeof createCliMetrics>
