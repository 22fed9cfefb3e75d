/** The kv area has no metrics yet (the area factory adds them: ops applied and refused, sync rounds, lag). */
import type { Registry } from 'prom-client'

/** Creates no metrics: an empty set, so src/metrics/metrics.ts assembles every area alike. */
export function createKvMetrics(_registry: Registry) {
  return Object.freeze({})
}

/** The kv area's metrics (none yet). */
export type KvMetrics = ReturnType<typeof createKvMetrics>
