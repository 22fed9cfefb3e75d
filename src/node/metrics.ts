/**
 * The node's process-level metrics (docs/METRICS.md): prom-client's default process and runtime
 * metrics, among them the event-loop lag. Pure: creates them on the registry it is given.
 */
import { collectDefaultMetrics, type Registry } from 'prom-client'

/** Creates the process and runtime metrics on `registry` (they have no fields: prom-client collects them). */
export function createNodeMetrics(registry: Registry) {
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 })
  // prom-client names these gauges *_total, which `promtool check metrics` rejects for non-counters;
  // the same figures remain as nodejs_active_handles / _requests / _resources.
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ]) {
    registry.removeSingleMetric(name)
  }
  return Object.freeze({})
}

/** The node's process-level metrics (none as fields). */
export type NodeMetrics = ReturnType<typeof createNodeMetrics>
