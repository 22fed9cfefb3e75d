/**
 * Durability of one segment: the probability of losing it within a year, for an erasure code (or
 * replication) with repair, as an exact continuous-time Markov chain, cross-checked by Monte Carlo.
 *
 * Model (the classic MTTDL chain; Chen, Lee, Gibson, Katz and Patterson, "RAID: High-Performance,
 * Reliable Secondary Storage", ACM Computing Surveys 1994; for erasure-coded P2P storage, Dimakis et
 * al., "Network Coding for Distributed Storage Systems", IEEE Trans. Inf. Theory 2010, section II):
 * - A segment has n = k + m shards on n distinct nodes. Each shard is lost independently at rate
 *   lambda per year (its node leaves for good or loses its disk): lambda = -12 ln(1 - f) for a
 *   monthly departure fraction f (exponential lifetimes).
 * - State j = shards lost (0..m); j = m + 1 means fewer than k remain: the segment is lost
 *   (absorbing). j -> j + 1 at rate (n - j) lambda.
 * - Repair starts once healthy shards fall to the trigger T (DESIGN.md: k + 2), i.e. j >= n - T, and
 *   rebuilds every missing shard; it takes an exponential time with mean `repairHours`, so
 *   j -> 0 at rate mu = 8766 / repairHours per year. Failures go on during repair.
 * - P(loss within t) is computed by uniformization (Jensen's method: P(t) = sum_i Poisson(i; Lt) P^i
 *   with P = I + Q / L), whose terms are all non-negative, so probabilities as small as 1e-300 keep
 *   their relative precision. The mean time to data loss (MTTDL) comes from first-step analysis in a
 *   form without cancellation.
 */
import { Rng } from './rng.ts'

/** Hours in a (Julian) year. */
export const HOURS_PER_YEAR = 8766

/** A redundancy scheme: k of n = k + m shards recover the segment; replication is k = 1. */
export interface Scheme {
  /** Name for tables, e.g. `RS(10,4)` or `3x replication`. */
  name: string
  k: number
  m: number
  /** Repair starts when healthy shards fall to this many (k + 2 in DESIGN.md; n - 1 = eager). */
  repairAt: number
}

/** Shards lost per year per shard for a monthly departure fraction f in [0, 1). */
export function failureRatePerYear(monthlyFraction: number): number {
  return -12 * Math.log1p(-monthlyFraction)
}

/** Rates of the chain: fail[j] for j -> j + 1, repair[j] for j -> 0 (per year), j = 0..m. */
function chainRates(scheme: Scheme, lambda: number, mu: number): { fail: number[]; repair: number[] } {
  const n = scheme.k + scheme.m
  const fail: number[] = []
  const repair: number[] = []
  for (let j = 0; j <= scheme.m; j++) {
    fail.push((n - j) * lambda)
    repair.push(j > 0 && n - j <= scheme.repairAt ? mu : 0)
  }
  return { fail, repair }
}

/**
 * Probability that a segment starting with all n shards healthy is lost within `years`.
 *
 * @param scheme code and repair trigger
 * @param lambda shard loss rate per year (see {@link failureRatePerYear})
 * @param repairHours mean repair time in hours; `Infinity` for no repair
 * @param years horizon; default 1
 */
export function lossProbability(scheme: Scheme, lambda: number, repairHours: number, years = 1): number {
  const mu = Number.isFinite(repairHours) ? HOURS_PER_YEAR / repairHours : 0
  const { fail, repair } = chainRates(scheme, lambda, mu)
  const S = scheme.m + 2 // states 0..m transient, m + 1 absorbing
  let L = 0
  for (let j = 0; j <= scheme.m; j++) L = Math.max(L, (fail[j] as number) + (repair[j] as number))
  if (L === 0) return 0
  const Lt = L * years
  let v = new Float64Array(S)
  let next = new Float64Array(S)
  v[0] = 1
  const last = Math.ceil(Lt + 40 * Math.sqrt(Lt) + 100)
  let logW = -Lt
  const logLt = Math.log(Lt)
  let result = 0
  for (let i = 0; i <= last; i++) {
    if (i > 0) logW += logLt - Math.log(i)
    result += Math.exp(logW) * (v[S - 1] as number)
    // v <- v P
    next.fill(0)
    for (let j = 0; j <= scheme.m; j++) {
      const p = v[j] as number
      if (p === 0) continue
      const f = fail[j] as number
      const r = repair[j] as number
      next[j + 1] = (next[j + 1] as number) + (p * f) / L
      if (r > 0) next[0] = (next[0] as number) + (p * r) / L
      next[j] = (next[j] as number) + p * (1 - (f + r) / L)
    }
    next[S - 1] = (next[S - 1] as number) + (v[S - 1] as number)
    const t = v
    v = next
    next = t
  }
  return Math.min(1, result)
}

/**
 * Mean time to data loss in years from the all-healthy state (first-step analysis:
 * tau_j = a_j + b_j tau_0, solved backwards, with 1 - b_j carried directly to avoid cancellation).
 */
export function mttdlYears(scheme: Scheme, lambda: number, repairHours: number): number {
  const mu = Number.isFinite(repairHours) ? HOURS_PER_YEAR / repairHours : 0
  const { fail, repair } = chainRates(scheme, lambda, mu)
  let a = 0
  let c = 1 // 1 - b
  for (let j = scheme.m; j >= 0; j--) {
    const f = fail[j] as number
    const r = (repair[j] as number) + f
    a = 1 / r + (f / r) * a
    c = (f / r) * c
  }
  return a / c
}

/** Exact P(loss within t) without repair: more than m of n independent shards lost (binomial tail). */
export function lossProbabilityNoRepair(scheme: Scheme, lambda: number, years = 1): number {
  const n = scheme.k + scheme.m
  const p = -Math.expm1(-lambda * years)
  let total = 0
  for (let i = scheme.m + 1; i <= n; i++) total += binomial(n, i) * p ** i * (1 - p) ** (n - i)
  return total
}

function binomial(n: number, r: number): number {
  let b = 1
  for (let i = 1; i <= r; i++) b = (b * (n - r + i)) / i
  return b
}

/** Monte Carlo estimate with a 95% Wilson interval. */
export interface MonteCarloResult {
  segments: number
  losses: number
  probability: number
  low95: number
  high95: number
}

/**
 * Monte Carlo over `segments` independent segments for `years`.
 *
 * @param repairModel `exponential`: the Markov chain's own dynamics (checks the computation);
 *   `fixed`: a repair takes exactly `repairHours` (checks the exponential assumption)
 */
export function lossMonteCarlo(
  scheme: Scheme,
  lambda: number,
  repairHours: number,
  segments: number,
  seed: number,
  repairModel: 'exponential' | 'fixed' = 'exponential',
  years = 1,
): MonteCarloResult {
  const rng = new Rng(seed, 77)
  const n = scheme.k + scheme.m
  const repairYears = repairHours / HOURS_PER_YEAR
  const mu = 1 / repairYears
  let losses = 0
  for (let s = 0; s < segments; s++) {
    let t = 0
    let lost = 0
    let repairDone = Number.POSITIVE_INFINITY
    for (;;) {
      const failAt = t + rng.nextExp((n - lost) * lambda)
      let repairAt = Number.POSITIVE_INFINITY
      if (n - lost <= scheme.repairAt && lost > 0) {
        if (repairModel === 'exponential') repairAt = t + rng.nextExp(mu)
        else {
          if (repairDone === Number.POSITIVE_INFINITY) repairDone = t + repairYears
          repairAt = repairDone
        }
      }
      if (Math.min(failAt, repairAt) > years) break
      if (repairAt < failAt) {
        t = repairAt
        lost = 0
        repairDone = Number.POSITIVE_INFINITY
      } else {
        t = failAt
        lost++
        if (lost > scheme.m) {
          losses++
          break
        }
      }
    }
  }
  const p = losses / segments
  const z = 1.959964
  const d = 1 + (z * z) / segments
  const centre = (p + (z * z) / (2 * segments)) / d
  const half = (z * Math.sqrt((p * (1 - p)) / segments + (z * z) / (4 * segments * segments))) / d
  return {
    segments,
    losses,
    probability: p,
    low95: Math.max(0, centre - half),
    high95: Math.min(1, centre + half),
  }
}

/** The schemes compared in docs/SIMULATOR.md: RS(10,4) (1.4x) against 2x and 3x storage. */
export function defaultSchemes(k = 10, m = 4): Scheme[] {
  return [
    { name: `RS(${k},${m}) repair at k+2`, k, m, repairAt: Math.min(k + 2, k + m - 1) },
    { name: `RS(${k},${m}) eager repair`, k, m, repairAt: k + m - 1 },
    { name: '2x replication', k: 1, m: 1, repairAt: 1 },
    { name: `RS(${k},${k}) repair at k+2`, k, m: k, repairAt: Math.min(k + 2, 2 * k - 1) },
    { name: '3x replication', k: 1, m: 2, repairAt: 2 },
  ]
}

/** One row of the durability table. */
export interface DurabilityRow {
  monthlyChurn: number
  lambdaPerYear: number
  /** Per scheme (same order as `schemes`): P(loss within one year) and MTTDL in years. */
  results: { scheme: string; overhead: number; lossPerYear: number; mttdlYears: number }[]
}

/** Durability table over churn rates. */
export function durabilityTable(
  schemes: readonly Scheme[],
  monthlyChurn: readonly number[],
  repairHours: number,
): DurabilityRow[] {
  return monthlyChurn.map((f) => {
    const lambda = failureRatePerYear(f)
    return {
      monthlyChurn: f,
      lambdaPerYear: lambda,
      results: schemes.map((s) => ({
        scheme: s.name,
        overhead: (s.k + s.m) / s.k,
        lossPerYear: lossProbability(s, lambda, repairHours),
        mttdlYears: mttdlYears(s, lambda, repairHours),
      })),
    }
  })
}
