/** The API area's metrics (docs/METRICS.md): requests and their duration. Pure: creates them on the registry it is given. */
import { Counter, Histogram, type Registry } from 'prom-client'
import { LATENCY_BUCKETS } from '../common/metrics.ts'

/** Creates the API metrics on `registry`. */
export function createApiMetrics(registry: Registry) {
  const registers = [registry]
  return {
    apiRequests: new Counter({
      name: 'nodus_api_requests_total',
      help: 'HTTP API requests, by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
    }),
    apiSeconds: new Histogram({
      name: 'nodus_api_request_seconds',
      help: 'HTTP API request duration',
      labelNames: ['route', 'method'],
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
  } as const
}

/** The API area's metrics (NodusMetrics has them as fields of the same names). */
export type ApiMetrics = ReturnType<typeof createApiMetrics>
