/**
 * The netns area exports no metrics: it is a test and demo tool outside any node; the delay bridge
 * reports its own counters (README.md).
 */
import type { Registry } from 'prom-client'

/** Creates no metrics: an empty set, so src/metrics/metrics.ts assembles every area alike. */
export function createNetnsMetrics(_registry: Registry) {
  return Object.freeze({})
}

/** The netns area's metrics (none). */
export type NetnsMetrics = ReturnType<typeof createNetnsMetrics>
