/**
 * Per-node Prometheus metrics (prom-client, one Registry per node, never the global one, so several
 * nodes can share a test process), assembled from the areas' `src/<area>/metrics.ts`. Names follow
 * `nodus_<area>_<what>_<unit>`; times are in seconds. docs/METRICS.md lists them.
 * To add an area's metrics: write its `createXMetrics(registry)` and add it to {@link AreaMetrics} and
 * the constructor below.
 */
import { Registry } from 'prom-client'
import { type ApiMetrics, createApiMetrics } from '../api/metrics.ts'
import { type CliMetrics, createCliMetrics } from '../cli/metrics.ts'
import { type ConfigMetrics, createConfigMetrics } from '../config/metrics.ts'
import { type ConsensusMetrics, createConsensusMetrics } from '../consensus/metrics.ts'
import { type CryptoMetrics, createCryptoMetrics } from '../crypto/metrics.ts'
import { createKvMetrics, type KvMetrics } from '../kv/metrics.ts'
import { createLedgerMetrics, type LedgerMetrics } from '../ledger/metrics.ts'
import {
  createMessagingMetrics,
  type MessagingMetrics,
  type MessagingMetricsSources,
} from '../messaging/metrics.ts'
import { createNetMetrics, type NetMetrics, type NetMetricsSources } from '../net/metrics.ts'
import { createNetnsMetrics, type NetnsMetrics } from '../netns/metrics.ts'
import { createNodeMetrics, type NodeMetrics } from '../node/metrics.ts'
import { createSimMetrics, type SimMetrics } from '../sim/metrics.ts'
import { createStorageMetrics, type StorageMetrics, type StorageMetricsSources } from '../storage/metrics.ts'
import { createTrustMetrics, type TrustMetrics, type TrustMetricsSources } from '../trust/metrics.ts'

export type { ApiMetrics, MessagingMetrics, NetMetrics, NodeMetrics, StorageMetrics, TrustMetrics }

/** Live values read at scrape time (gauges with a collect function): every area's sources. */
export type MetricsSources = StorageMetricsSources &
  NetMetricsSources &
  TrustMetricsSources &
  MessagingMetricsSources

/** Every area's metrics: the fields of {@link NodusMetrics}. */
export type AreaMetrics = NodeMetrics &
  StorageMetrics &
  NetMetrics &
  ApiMetrics &
  TrustMetrics &
  MessagingMetrics &
  CryptoMetrics &
  KvMetrics &
  LedgerMetrics &
  ConsensusMetrics &
  ConfigMetrics &
  CliMetrics &
  SimMetrics &
  NetnsMetrics

/** NodusMetrics has every area's metrics as its fields (`metrics.shardWriteSeconds`, ...). */
export interface NodusMetrics extends AreaMetrics {}

/** A node's metrics: its registry, every area's metrics as fields, and the live sources of the gauges. */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the constructor assigns every field of the interface (`areas` is typed AreaMetrics, so an area left out does not compile)
export class NodusMetrics {
  readonly registry: Registry
  #sources: MetricsSources | undefined

  constructor() {
    const registry = new Registry()
    this.registry = registry
    const sources = (): MetricsSources | undefined => this.#sources
    const areas: AreaMetrics = {
      ...createNodeMetrics(registry),
      ...createStorageMetrics(registry, sources),
      ...createNetMetrics(registry, sources),
      ...createApiMetrics(registry),
      ...createTrustMetrics(registry, sources),
      ...createMessagingMetrics(registry, sources),
      ...createCryptoMetrics(registry),
      ...createKvMetrics(registry),
      ...createLedgerMetrics(registry),
      ...createConsensusMetrics(registry),
      ...createConfigMetrics(registry),
      ...createCliMetrics(registry),
      ...createSimMetrics(registry),
      ...createNetnsMetrics(registry),
    }
    Object.assign(this, areas)
  }

  /** Attach the live sources read at scrape time (called once by the composition root). */
  attach(sources: MetricsSources): void {
    this.#sources = sources
  }

  /** Prometheus text exposition. */
  async text(): Promise<string> {
    return await this.registry.metrics()
  }
}

/** Time `fn` into `h` (seconds), whether it resolves or throws. */
export async function timed<T>(h: { observe(v: number): void }, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now()
  try {
    return await fn()
  } finally {
    h.observe((performance.now() - t0) / 1000)
  }
}
