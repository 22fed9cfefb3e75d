/** Types of prom.js (the dashboard's Prometheus parsing), for the Node tests that import it. */
export interface Sample {
  labels: Record<string, string>
  value: number
}
export type Metrics = Map<string, Sample[]>
export interface Bucket {
  /** Upper bound (seconds for latency histograms); Infinity for the last. */
  le: number
  /** Cumulative count of observations ≤ le. */
  count: number
}
export function parseMetrics(text: string): Metrics
export function sumSamples(
  metrics: Metrics,
  name: string,
  filter?: Record<string, string>,
): number | undefined
export function histogramBuckets(metrics: Metrics, name: string): Bucket[]
export function bucketDelta(now: Bucket[], before: Bucket[]): Bucket[] | undefined
export function histogramQuantile(q: number, buckets: Bucket[]): number | null
export function rate(now: number | undefined, before: number | undefined, seconds: number): number | null
/** One chart point. Rates per second; latencies in milliseconds; null: no data. */
export interface SamplePoint {
  /** Seconds since the Unix epoch. */
  t: number
  putBytesPerSecond: number | null
  getBytesPerSecond: number | null
  shardOkPerSecond: number | null
  shardFailedPerSecond: number | null
  eventLoopLagP99Ms: number | null
  shardReadP50Ms: number | null
  shardReadP95Ms: number | null
  shardReadP99Ms: number | null
  shardWriteP50Ms: number | null
  shardWriteP95Ms: number | null
  shardWriteP99Ms: number | null
  apiP50Ms: number | null
  apiP95Ms: number | null
  apiP99Ms: number | null
  /** Pub/sub messages this node published, delivered to it, and dropped (all reasons), per second. */
  pubsubPublishedPerSecond: number | null
  pubsubDeliveredPerSecond: number | null
  pubsubDroppedPerSecond: number | null
  /** Messages waiting in the publish queue and in local subscribers' queues (a gauge). */
  pubsubQueued: number | null
  /** End-to-end pub/sub latency: publish timestamp to delivery here. */
  pubsubP50Ms: number | null
  pubsubP95Ms: number | null
  pubsubP99Ms: number | null
  /** KV operations applied here, by where they came from (this node's API, gossip, sync), per second. */
  kvAppliedLocalPerSecond: number | null
  kvAppliedGossipPerSecond: number | null
  kvAppliedSyncPerSecond: number | null
  /** KV operations refused (all reasons, duplicates included), per second. */
  kvRefusedPerSecond: number | null
  /** Sync sessions this node started (all results; failed only), per second. */
  kvSyncsPerSecond: number | null
  kvSyncsFailedPerSecond: number | null
}
export const LATENCY_HISTOGRAMS: readonly (readonly [string, string])[]
export function createSampler(options?: {
  latencyWindowSeconds?: number
}): (metrics: Metrics, tSeconds: number) => SamplePoint
