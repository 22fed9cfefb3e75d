/**
 * The metrics area: the node's Prometheus metrics, on a registry per node (never the global one).
 * Other areas import only from here. See docs/METRICS.md.
 */
export {
  type ApiMetrics,
  type AreaMetrics,
  type MetricsSources,
  type NetMetrics,
  type NodeMetrics,
  NodusMetrics,
  type StorageMetrics,
  type TrustMetrics,
} from './metrics.ts'
