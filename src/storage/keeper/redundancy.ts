/**
 * Dynamic redundancy: how many parity shards m a file's segments should have, from whether the data is
 * marked critical and how popular it is. Repair reads it: when a segment has fewer parity shards than
 * {@link parityFor} asks for, repair computes and places the extra ones. Our Reed-Solomon matrix
 * (DESIGN.md: Vandermonde V[r][c] = r^c times the inverse of its top k×k square) makes parity row r
 * depend only on r and k, not on m, so raising m from m to m' keeps the m existing parity shards valid
 * and only adds rows m..m'−1 (checked in test/storage/redundancy.test.ts); lowering m just drops the
 * last parity shards.
 *
 * m = baseM + (critical ? criticalExtra : 0) + min(maxPopularityExtra, ⌊log2(1 + reads / readsPerStep)⌋)
 *
 * bounded by baseM ≤ m ≤ min(maxParity, 256 − k) (GF(2^8) Reed-Solomon allows k + m ≤ 256). With the
 * defaults: critical adds 2; 100 reads in the popularity window add 1, 300 add 2, 700 add 3, 1,500 and
 * more add 4; m never exceeds 16. Popularity grows m logarithmically, so a hot file does not double its
 * storage, and a file whose reads fall back loses the extra parity at the next repair pass.
 */
import { NodusError } from '../../common/errors.ts'

/** What is known about a file. */
export interface RedundancyInput {
  /** Data shards per segment, 1 ≤ k ≤ 256. */
  k: number
  /** Parity configured at upload (`storage.m`, default 4), ≥ 0, k + baseM ≤ 256. */
  baseM: number
  /** Marked critical by its owner (pin flag). */
  critical: boolean
  /** Reads of the file in the popularity window (the caller's counter, e.g. the last 24 h), ≥ 0. */
  popularity: number
}

/** Policy; defaults in {@link DEFAULT_REDUNDANCY_OPTIONS}. */
export interface RedundancyOptions {
  /** Parity shards added for critical data. Default 2. */
  criticalExtra: number
  /** Reads per popularity step: extra = ⌊log2(1 + reads / readsPerStep)⌋. Default 100. */
  readsPerStep: number
  /** Most parity shards added for popularity. Default 4. */
  maxPopularityExtra: number
  /** Upper bound on m whatever the flags (also bounded by 256 − k). Default 16. */
  maxParity: number
}

/** Defaults of {@link RedundancyOptions} (docs/TRUST.md, "Dynamic redundancy"). */
export const DEFAULT_REDUNDANCY_OPTIONS: Readonly<RedundancyOptions> = Object.freeze({
  criticalExtra: 2,
  readsPerStep: 100,
  maxPopularityExtra: 4,
  maxParity: 16,
})

function nonNegativeInt(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new NodusError('INVALID_ARGUMENT', `${what} must be an integer ≥ 0`, { details: { [what]: v } })
  }
}

/**
 * Parity shards m for a file (formula and bounds in the module doc).
 *
 * @returns m with baseM ≤ m ≤ max(baseM, min(maxParity, 256 − k))
 * @throws NodusError `ERASURE_INVALID` when k < 1 or k + baseM > 256
 * @throws NodusError `INVALID_ARGUMENT` on a negative or non-integer count, or negative popularity
 */
export function parityFor(input: RedundancyInput, options: Partial<RedundancyOptions> = {}): number {
  const o = { ...DEFAULT_REDUNDANCY_OPTIONS, ...options }
  const { k, baseM, critical, popularity } = input
  if (!Number.isSafeInteger(k) || k < 1 || !Number.isSafeInteger(baseM) || baseM < 0 || k + baseM > 256) {
    throw new NodusError('ERASURE_INVALID', 'need k ≥ 1, m ≥ 0 and k + m ≤ 256', { details: { k, m: baseM } })
  }
  nonNegativeInt(o.criticalExtra, 'criticalExtra')
  nonNegativeInt(o.maxPopularityExtra, 'maxPopularityExtra')
  nonNegativeInt(o.maxParity, 'maxParity')
  if (!(o.readsPerStep > 0) || !Number.isFinite(o.readsPerStep)) {
    throw new NodusError('INVALID_ARGUMENT', 'readsPerStep must be > 0', {
      details: { readsPerStep: o.readsPerStep },
    })
  }
  if (!(popularity >= 0) || !Number.isFinite(popularity)) {
    throw new NodusError('INVALID_ARGUMENT', 'popularity must be ≥ 0 and finite', { details: { popularity } })
  }
  const popularityExtra = Math.min(
    o.maxPopularityExtra,
    Math.floor(Math.log2(1 + popularity / o.readsPerStep)),
  )
  const wanted = baseM + (critical ? o.criticalExtra : 0) + popularityExtra
  const ceiling = Math.max(baseM, Math.min(o.maxParity, 256 - k))
  return Math.min(wanted, ceiling)
}
