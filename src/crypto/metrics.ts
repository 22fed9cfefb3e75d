/** The crypto area has no metrics. */
import type { Registry } from 'prom-client'

/** Creates no metrics: an empty set, so src/metrics/metrics.ts assembles every area alike. */
export function createCryptoMetrics(_registry: Registry) {
  return Object.freeze({})
}

/** The crypto area's metrics (none). */
export type CryptoMetrics = ReturnType<typeof createCryptoMetrics>
