/**
 * The metrics area: the node's Prometheus metrics, on a registry per node (never the global one).
 * Other areas import only from here. See docs/METRICS.md.
 */
export { NodusMetrics } from './metrics.ts'
