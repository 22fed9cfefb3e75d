/** The metrics area has no config keys (metrics are served by the API at `GET /metrics`). */
import { defineOptions } from '../common/options.ts'

export const METRICS_OPTIONS = defineOptions({})
