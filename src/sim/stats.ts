/** Small statistics helpers for simulator reports. */

/**
 * Nearest-rank percentile (p in [0, 100]) of `values`: the smallest value with at least p% of the
 * values at or below it. NaN for an empty list. Does not modify `values`.
 */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = Float64Array.from(values).sort()
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1] as number
}

/** Arithmetic mean; NaN for an empty list. */
export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN
  let s = 0
  for (let i = 0; i < values.length; i++) s += values[i] as number
  return s / values.length
}

/** Coefficient of variation (population standard deviation / mean); 0 when the mean is 0. */
export function coefficientOfVariation(values: ArrayLike<number>): number {
  const m = mean(values)
  if (!(m > 0)) return 0
  let s = 0
  for (let i = 0; i < values.length; i++) s += ((values[i] as number) - m) ** 2
  return Math.sqrt(s / values.length) / m
}

/** Count of each integer value 0..max: histogram[v] = how many values equal v. */
export function histogram(values: ArrayLike<number>): number[] {
  let max = 0
  for (let i = 0; i < values.length; i++) max = Math.max(max, values[i] as number)
  const h = new Array<number>(max + 1).fill(0)
  for (let i = 0; i < values.length; i++) h[values[i] as number] = (h[values[i] as number] ?? 0) + 1
  return h
}

/** Round to `digits` decimals (for reports). */
export function round(x: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/** Tracks peak resident set size. `sample()` often during long synchronous work. */
export class RssMeter {
  #peak = 0

  /** Read the current RSS (bytes) and keep the peak. */
  sample(): number {
    const rss = process.memoryUsage.rss()
    if (rss > this.#peak) this.#peak = rss
    return rss
  }

  /** Peak in MB (10^6 bytes): the larger of the sampled peak and the kernel's maxRSS for this process. */
  peakMB(): number {
    this.sample()
    const kernelPeak = process.resourceUsage().maxRSS * 1024
    return Math.max(this.#peak, kernelPeak) / 1e6
  }
}
