/**
 * Per-peer performance learned from real transfers: EWMA latency, throughput and success rate, and a
 * score in [0, 1] for placement.
 *
 * Averages are time-decayed (exponentially weighted by age, not by sample count): a sample's weight
 * halves every `halfLifeMs`. Each average keeps a decayed sum and a decayed weight, mean = sum / weight,
 * so samples arriving at the same instant all count, a single sample is its own mean, and a peer not
 * heard from for several half-lives drifts back to the prior. Clock injected; memory bounded (LRU).
 */
import { NodusError } from '../common/errors.ts'

/** What the monitor needs. */
export interface PerfMonitorDeps {
  /** Milliseconds; `Date` in production, a fake clock in tests. */
  clock: { now(): number }
}

/** Tuning; defaults in {@link DEFAULT_PERF_MONITOR_OPTIONS}. */
export interface PerfMonitorOptions {
  /** A sample's weight halves every `halfLifeMs`. Default 600,000 (10 min). */
  halfLifeMs: number
  /** Most peers tracked; least recently updated forgotten beyond it. Default 10,000. */
  maxPeers: number
  /** Latency at which the latency score is 0.5, ms. Default 200. */
  referenceLatencyMs: number
  /** Throughput at which the throughput score is 0.5, bytes/s. Default 1,000,000 (1 MB/s). */
  referenceThroughputBps: number
  /** Success rate assumed before any sample, in [0, 1]. Default 0.9. */
  priorSuccessRate: number
  /** Weight of that prior, in samples. Default 2. */
  priorWeight: number
}

/** Defaults of {@link PerfMonitorOptions} (docs/TRUST.md). */
export const DEFAULT_PERF_MONITOR_OPTIONS: Readonly<PerfMonitorOptions> = Object.freeze({
  halfLifeMs: 600_000,
  maxPeers: 10_000,
  referenceLatencyMs: 200,
  referenceThroughputBps: 1_000_000,
  priorSuccessRate: 0.9,
  priorWeight: 2,
})

/** One request or transfer to a peer. */
export interface TransferSample {
  /** Did it succeed (shard verified, receipt valid, audit answered)? */
  ok: boolean
  /** Time to first byte (or round trip of a small request), ms. Only counted when ok. */
  latencyMs?: number
  /** Payload bytes moved. With `durationMs`, feeds throughput (when ok and both > 0). */
  bytes?: number
  /** Time the payload took, ms. */
  durationMs?: number
}

/** A peer's current figures. */
export interface PeerPerf {
  /** EWMA latency, ms; undefined before the first successful sample with a latency. */
  latencyMs: number | undefined
  /** EWMA throughput, bytes/s (decayed bytes ÷ decayed seconds); undefined before the first. */
  throughputBps: number | undefined
  /** Success rate with the prior mixed in, in [0, 1]. */
  successRate: number
  /** Decayed number of samples (effective sample size). */
  samples: number
  /** When the last sample was recorded, ms. */
  lastMs: number
}

interface State {
  lastMs: number
  weight: number
  okSum: number
  latSum: number
  latWeight: number
  bytesSum: number
  secondsSum: number
}

/**
 * Per-peer performance monitor. Feed it every shard transfer, store, audit and timeout
 * ({@link PerfMonitor.record}); read {@link PerfMonitor.score} when placing.
 */
export class PerfMonitor {
  readonly #clock: { now(): number }
  readonly #o: PerfMonitorOptions
  readonly #peers = new Map<string, State>()

  /** @throws NodusError `INVALID_ARGUMENT` on a non-positive half-life, bound or reference */
  constructor(deps: PerfMonitorDeps, options: Partial<PerfMonitorOptions> = {}) {
    this.#clock = deps.clock
    this.#o = { ...DEFAULT_PERF_MONITOR_OPTIONS, ...options }
    const o = this.#o
    if (!(o.halfLifeMs > 0) || !(o.referenceLatencyMs > 0) || !(o.referenceThroughputBps > 0)) {
      throw new NodusError('INVALID_ARGUMENT', 'halfLifeMs and references must be > 0')
    }
    if (!Number.isSafeInteger(o.maxPeers) || o.maxPeers < 1) {
      throw new NodusError('INVALID_ARGUMENT', 'maxPeers must be an integer ≥ 1')
    }
    if (!(o.priorSuccessRate >= 0 && o.priorSuccessRate <= 1) || !(o.priorWeight >= 0)) {
      throw new NodusError('INVALID_ARGUMENT', 'priorSuccessRate must be in [0, 1] and priorWeight ≥ 0')
    }
  }

  /** Peers tracked. */
  get size(): number {
    return this.#peers.size
  }

  /**
   * Record one transfer or request to `peer` at the clock's current time.
   *
   * @throws NodusError `INVALID_ARGUMENT` on negative or non-finite latency, bytes or duration
   */
  record(peer: string, sample: TransferSample): void {
    for (const v of [sample.latencyMs, sample.bytes, sample.durationMs]) {
      if (v !== undefined && (!(v >= 0) || !Number.isFinite(v))) {
        throw new NodusError('INVALID_ARGUMENT', 'latency, bytes and duration must be ≥ 0 and finite')
      }
    }
    const now = this.#clock.now()
    let s = this.#peers.get(peer)
    if (s === undefined) {
      s = { lastMs: now, weight: 0, okSum: 0, latSum: 0, latWeight: 0, bytesSum: 0, secondsSum: 0 }
      if (this.#peers.size >= this.#o.maxPeers) {
        const oldest = this.#peers.keys().next()
        if (oldest.done !== true) this.#peers.delete(oldest.value)
      }
    } else {
      this.#decay(s, now)
      this.#peers.delete(peer) // re-inserted below: Map order is least recently updated first
    }
    this.#peers.set(peer, s)
    s.weight += 1
    if (!sample.ok) return
    s.okSum += 1
    if (sample.latencyMs !== undefined) {
      s.latSum += sample.latencyMs
      s.latWeight += 1
    }
    if (
      sample.bytes !== undefined &&
      sample.durationMs !== undefined &&
      sample.bytes > 0 &&
      sample.durationMs > 0
    ) {
      s.bytesSum += sample.bytes
      s.secondsSum += sample.durationMs / 1000
    }
  }

  /** `peer`'s figures now (decayed to the clock's time), or undefined when never seen. */
  stats(peer: string): PeerPerf | undefined {
    const s = this.#peers.get(peer)
    if (s === undefined) return undefined
    const f = this.#factor(s, this.#clock.now())
    return this.#figures(s, f)
  }

  /**
   * Performance score in [0, 1]: successRate × (latencyScore + throughputScore) / 2, where
   * latencyScore = L / (L + latency) (0.5 at `referenceLatencyMs` L) and throughputScore = τ / (τ + T)
   * (0.5 at `referenceThroughputBps` T); a missing figure scores 0.5. An unknown peer scores
   * priorSuccessRate × 0.5 (0.45 by default), the same formula without samples.
   */
  score(peer: string): number {
    const s = this.#peers.get(peer)
    const figures = s === undefined ? undefined : this.#figures(s, this.#factor(s, this.#clock.now()))
    const success = figures?.successRate ?? this.#o.priorSuccessRate
    const lat = figures?.latencyMs
    const tp = figures?.throughputBps
    const latScore = lat === undefined ? 0.5 : this.#o.referenceLatencyMs / (this.#o.referenceLatencyMs + lat)
    const tpScore = tp === undefined ? 0.5 : tp / (tp + this.#o.referenceThroughputBps)
    return success * ((latScore + tpScore) / 2)
  }

  /** Forget `peer`. */
  delete(peer: string): void {
    this.#peers.delete(peer)
  }

  #factor(s: State, now: number): number {
    const dt = Math.max(0, now - s.lastMs)
    return 2 ** (-dt / this.#o.halfLifeMs)
  }

  #decay(s: State, now: number): void {
    const f = this.#factor(s, now)
    s.weight *= f
    s.okSum *= f
    s.latSum *= f
    s.latWeight *= f
    s.bytesSum *= f
    s.secondsSum *= f
    s.lastMs = Math.max(s.lastMs, now)
  }

  #figures(s: State, f: number): PeerPerf {
    const o = this.#o
    const weight = s.weight * f
    return {
      latencyMs: s.latWeight > 0 ? s.latSum / s.latWeight : undefined,
      throughputBps: s.secondsSum > 0 ? s.bytesSum / s.secondsSum : undefined,
      successRate:
        weight + o.priorWeight > 0
          ? (s.okSum * f + o.priorSuccessRate * o.priorWeight) / (weight + o.priorWeight)
          : o.priorSuccessRate,
      samples: weight,
      lastMs: s.lastMs,
    }
  }
}
