/**
 * Scored placement: choose the peers for the n = k + m shards of one segment by weight
 *
 *   w = trust^a · performance^b · capacity^c · diversity
 *
 * (DESIGN.md "Storing a file" step 4; docs/TRUST.md explains the terms and defaults). A pure function
 * of its inputs and of the random numbers it draws, so the simulator runs the same code.
 *
 * - trust: the candidate's EigenTrust score divided by the largest among the eligible candidates,
 *   floored at `trustFloor` so that peers nobody has rated yet are still tried now and then.
 * - performance: the PerfMonitor score in [0, 1].
 * - capacity: free bytes (in units of 2^40 bytes; a common factor changes no choice).
 * - diversity: `regionPenalty^r · networkPenalty^s`, where r and s are the shards of this segment
 *   already placed in the candidate's region and network.
 *
 * Rules: peers with less than `minFreeBytes` free (by default: none free), or a zero weight, are never
 * chosen. No peer gets two shards of a segment while another eligible peer remains; with fewer eligible
 * peers than shards, shards are dealt round-robin over them (counts differ by at most one). With
 * `balanceRegions` (default), no region gets more than ceil(p / R) of the p distinct picks (R = regions
 * among eligible peers) unless the other regions have run out of eligible peers; the cap then grows by
 * one at a time.
 *
 * Algorithm: base weights (trust, performance, capacity) once, O(N), and their prefix sums; then each
 * pick draws from the base weights by binary search and accepts with probability diversity / M, where M
 * bounds the diversity of every candidate still allowed (rejection sampling, exact). After 64 rejected
 * draws a pick falls back to one exact O(N) weighted scan. 14 of 10,000: p50 about 0.2 ms, p99 about
 * 0.5 ms on a loaded 2-core machine (bench/placement.bench.ts, docs/TRUST.md).
 */
import { NodusError } from '../../common/errors.ts'

/** One peer that may receive a shard. */
export interface Candidate {
  /** PeerId string. Candidates should have distinct ids; a repeated id is never chosen twice. */
  id: string
  /** EigenTrust global trust (any non-negative scale; only ratios between candidates matter). */
  trust: number
  /** PerfMonitor score in [0, 1]. */
  performance: number
  /** Free bytes from the peer's capacity report. */
  freeBytes: number
  /** Region tag from the peer's capacity report, e.g. `eu-west`. */
  region: string
  /** Primary network tag from the peer's capacity report, e.g. `as13335`. */
  network: string
}

/** Exponents a, b, c of w = trust^a · performance^b · capacity^c · diversity. */
export interface PlacementWeights {
  /** a. Default 1. */
  trust: number
  /** b. Default 1. */
  performance: number
  /** c. Default 0.5 (four times the free space, twice the weight: big peers fill, but do not take all). */
  capacity: number
}

/** Default exponents (docs/TRUST.md). */
export const DEFAULT_PLACEMENT_WEIGHTS: Readonly<PlacementWeights> = Object.freeze({
  trust: 1,
  performance: 1,
  capacity: 0.5,
})

/** Options of {@link placeScored}; every field has a default ({@link DEFAULT_SCORED_PLACEMENT_OPTIONS}). */
export interface ScoredPlacementOptions {
  /** Exponents a, b, c, each ≥ 0. Default {@link DEFAULT_PLACEMENT_WEIGHTS}. */
  weights?: Partial<PlacementWeights>
  /** Diversity factor per shard already in the candidate's region, in [0, 1]. Default 0.5. */
  regionPenalty?: number
  /** Diversity factor per shard already in the candidate's network, in [0, 1]. Default 0.25. */
  networkPenalty?: number
  /** Cap every region at ceil(p / regions) picks while others have room. Default true. */
  balanceRegions?: boolean
  /** Peers with fewer free bytes are never chosen (set it to the shard size). Default 1. */
  minFreeBytes?: number
  /** Floor of relative trust (trust ÷ largest trust), in [0, 1]. Default 0.01. */
  trustFloor?: number
}

/** Defaults of {@link ScoredPlacementOptions}. */
export const DEFAULT_SCORED_PLACEMENT_OPTIONS: Readonly<Required<Omit<ScoredPlacementOptions, 'weights'>>> =
  Object.freeze({
    regionPenalty: 0.5,
    networkPenalty: 0.25,
    balanceRegions: true,
    minFreeBytes: 1,
    trustFloor: 0.01,
  })

/** Draws per pick before falling back to an exact scan. */
const MAX_DRAWS = 64

/** x^e with fast paths for the common exponents. */
function power(x: number, e: number): number {
  if (e === 1) return x
  if (e === 0) return 1
  if (e === 0.5) return Math.sqrt(x)
  if (e === 2) return x * x
  return x ** e
}

interface RegionState {
  eligible: number
  chosen: number
}

// Scratch buffers reused across calls (grown as needed) so a decision allocates almost nothing.
let scratchBase = new Float64Array(0)
let scratchCum = new Float64Array(0)
let scratchTrust = new Float64Array(0)
let scratchChosen = new Uint8Array(0)
let scratchBusy = false

function invalid(message: string, details: Record<string, unknown> = {}): NodusError {
  return new NodusError('INVALID_ARGUMENT', message, { details })
}

/** Largest exponent accepted (keeps every weight finite in float64). */
const MAX_EXPONENT = 16
/** Free bytes are scaled by 2^-40 (1 TiB) before the capacity exponent, so powers stay finite. */
const FREE_SCALE = 2 ** -40

/**
 * Base weights in two passes: one over the candidate objects (eligibility, performance^b · capacity^c,
 * raw trust, region counts), one over typed arrays (relative trust with its floor, prefix sums).
 * Returns the number of eligible candidates and the sum of weights.
 */
function weigh(
  candidates: readonly Candidate[],
  options: ScoredPlacementOptions,
  base: Float64Array,
  trust: Float64Array,
  cum: Float64Array | undefined,
  regions: Map<string, RegionState> | undefined,
): { eligible: number; total: number } {
  const a = options.weights?.trust ?? DEFAULT_PLACEMENT_WEIGHTS.trust
  const b = options.weights?.performance ?? DEFAULT_PLACEMENT_WEIGHTS.performance
  const c = options.weights?.capacity ?? DEFAULT_PLACEMENT_WEIGHTS.capacity
  const minFree = Math.max(options.minFreeBytes ?? DEFAULT_SCORED_PLACEMENT_OPTIONS.minFreeBytes, 0)
  const floor = options.trustFloor ?? DEFAULT_SCORED_PLACEMENT_OPTIONS.trustFloor
  if (!(a >= 0 && b >= 0 && c >= 0 && a <= MAX_EXPONENT && b <= MAX_EXPONENT && c <= MAX_EXPONENT)) {
    throw invalid(`placement exponents must be in [0, ${MAX_EXPONENT}]`, { a, b, c })
  }
  if (!(floor >= 0 && floor <= 1)) throw invalid('trustFloor must be in [0, 1]', { trustFloor: floor })
  const n = candidates.length
  let maxTrust = 0
  for (let i = 0; i < n; i++) {
    const cand = candidates[i] as Candidate
    const free = cand.freeBytes
    const perf = cand.performance
    if (!(free >= minFree && free > 0 && perf > 0 && free < Number.POSITIVE_INFINITY)) {
      base[i] = 0
      continue
    }
    const t = cand.trust
    trust[i] = t
    if (t > maxTrust) maxTrust = t
    base[i] = power(Math.min(perf, 1), b) * power(free * FREE_SCALE, c)
    if (regions !== undefined) {
      const r = regions.get(cand.region)
      if (r === undefined) regions.set(cand.region, { eligible: 1, chosen: 0 })
      else r.eligible++
    }
  }
  if (maxTrust === Number.POSITIVE_INFINITY) throw invalid('trust must be finite')
  const scale = maxTrust > 0 ? 1 / maxTrust : 0
  let eligible = 0
  let total = 0
  for (let i = 0; i < n; i++) {
    const pc = base[i] as number
    if (pc > 0) {
      let t = maxTrust > 0 ? (trust[i] as number) * scale : 1
      if (!(t >= floor)) t = floor // also maps NaN and negative trust to the floor
      const w = power(t, a) * pc
      if (w > 0 && w < Number.POSITIVE_INFINITY) {
        base[i] = w
        total += w
        eligible++
      } else {
        base[i] = 0
      }
    }
    if (cum !== undefined) cum[i] = total
  }
  return { eligible, total }
}

/**
 * The base weight trust^a · performance^b · capacity^c of every candidate (0 when not eligible), with
 * trust relative to the largest among eligible candidates (floored at `trustFloor`) and capacity in
 * units of 2^40 bytes (a common factor, which does not change any choice). Exposed for tests and
 * benchmarks.
 *
 * @param out - written in place, length ≥ candidates.length
 * @returns the number of eligible candidates (weight > 0)
 * @throws NodusError `INVALID_ARGUMENT` on exponents outside [0, 16], a bad trust floor or infinite trust
 */
export function baseWeights(
  candidates: readonly Candidate[],
  options: ScoredPlacementOptions,
  out: Float64Array,
): number {
  return weigh(candidates, options, out, new Float64Array(candidates.length), undefined, undefined).eligible
}

/**
 * Choose the peers for the `n` shards of one segment (see the module doc for the weight and rules).
 *
 * @param candidates - peers to choose from (any order; the result indexes into it)
 * @param n - shards to place (k + m), integer ≥ 1
 * @param options - exponents, diversity penalties, region balancing, free-space floor, trust floor
 * @param rng - uniform random numbers in [0, 1); the result is a function of the inputs and its outputs
 *   (pass a seeded generator for reproducible runs)
 * @returns `n` indices into `candidates`; entry i receives shard i. Distinct while enough eligible
 *   peers exist; otherwise the eligible peers repeat round-robin.
 * @throws NodusError `INVALID_ARGUMENT` on bad `n` or options
 * @throws NodusError `NOT_ENOUGH_PEERS` when no candidate is eligible
 */
export function placeScored(
  candidates: readonly Candidate[],
  n: number,
  options: ScoredPlacementOptions,
  rng: () => number,
): number[] {
  if (!Number.isSafeInteger(n) || n < 1) throw invalid('n must be an integer ≥ 1', { n })
  const regionPenalty = options.regionPenalty ?? DEFAULT_SCORED_PLACEMENT_OPTIONS.regionPenalty
  const networkPenalty = options.networkPenalty ?? DEFAULT_SCORED_PLACEMENT_OPTIONS.networkPenalty
  const balance = options.balanceRegions ?? DEFAULT_SCORED_PLACEMENT_OPTIONS.balanceRegions
  if (!(regionPenalty >= 0 && regionPenalty <= 1) || !(networkPenalty >= 0 && networkPenalty <= 1)) {
    throw invalid('regionPenalty and networkPenalty must be in [0, 1]', { regionPenalty, networkPenalty })
  }
  const N = candidates.length

  // Scratch buffers (fresh ones if rng re-entered us).
  const reuse = !scratchBusy
  if (reuse && scratchBase.length < N) {
    scratchBase = new Float64Array(N)
    scratchCum = new Float64Array(N)
    scratchTrust = new Float64Array(N)
    scratchChosen = new Uint8Array(N)
  }
  const base = reuse ? scratchBase : new Float64Array(N)
  const cum = reuse ? scratchCum : new Float64Array(N)
  const trust = reuse ? scratchTrust : new Float64Array(N)
  const chosenMark = reuse ? scratchChosen : new Uint8Array(N)
  scratchBusy = true
  const picks: number[] = []
  try {
    // Regions among eligible candidates (only needed for the cap).
    const regions = new Map<string, RegionState>()
    const { eligible, total } = weigh(candidates, options, base, trust, cum, balance ? regions : undefined)
    if (eligible === 0) {
      throw new NodusError('NOT_ENOUGH_PEERS', 'no candidate peer is eligible for placement', {
        details: { candidates: N, minFreeBytes: options.minFreeBytes ?? 1 },
      })
    }
    const target = Math.min(n, eligible)
    let cap = balance ? Math.ceil(target / regions.size) : Number.POSITIVE_INFINITY
    const regionChosen = new Map<string, number>()
    const networkChosen = new Map<string, number>()
    const chosenIds: string[] = []

    /** Largest region factor among regions still open (their peers are the only ones allowed). */
    const regionBound = (): number => {
      if (!balance || regionPenalty === 1) return 1
      let minChosen = Number.POSITIVE_INFINITY
      for (const r of regions.values()) {
        if (r.chosen < cap && r.chosen < r.eligible && r.chosen < minChosen) minChosen = r.chosen
      }
      return minChosen === Number.POSITIVE_INFINITY ? 1 : regionPenalty ** minChosen
    }
    const anyOpen = (): boolean => {
      for (const r of regions.values()) if (r.chosen < cap && r.chosen < r.eligible) return true
      return false
    }
    /** May candidate `i` be picked now (region cap, and not a peer id already chosen)? */
    const allowed = (i: number): boolean => {
      const cand = candidates[i] as Candidate
      if ((regionChosen.get(cand.region) ?? 0) >= cap) return false
      for (const id of chosenIds) if (id === cand.id) return false
      return true
    }
    /** Diversity factor of candidate `i`: regionPenalty^r · networkPenalty^s. */
    const diversity = (i: number): number => {
      const cand = candidates[i] as Candidate
      const rc = regionChosen.get(cand.region) ?? 0
      const nc = networkChosen.get(cand.network) ?? 0
      return (rc === 0 ? 1 : regionPenalty ** rc) * (nc === 0 ? 1 : networkPenalty ** nc)
    }

    while (picks.length < target) {
      if (balance) while (!anyOpen()) cap++
      const bound = regionBound()
      let pick = -1
      for (let draw = 0; draw < MAX_DRAWS && pick < 0; draw++) {
        const u = rng() * total
        // Smallest i with cum[i] > u (zero-weight candidates are never found).
        let lo = 0
        let hi = N - 1
        while (lo < hi) {
          const mid = (lo + hi) >>> 1
          if ((cum[mid] as number) > u) hi = mid
          else lo = mid + 1
        }
        if ((chosenMark[lo] as number) !== 0 || (base[lo] as number) === 0 || !allowed(lo)) continue
        const d = diversity(lo)
        if (d > 0 && rng() * bound < d) pick = lo
      }
      if (pick < 0) pick = exactPick(N, base, chosenMark, allowed, diversity, rng)
      if (pick < 0) {
        // Nothing allowed: only repeated ids remain under the cap. Relax the cap, or stop.
        if (balance && cap < target) {
          cap++
          continue
        }
        break
      }
      const cand = candidates[pick] as Candidate
      chosenMark[pick] = 1
      picks.push(pick)
      chosenIds.push(cand.id)
      regionChosen.set(cand.region, (regionChosen.get(cand.region) ?? 0) + 1)
      networkChosen.set(cand.network, (networkChosen.get(cand.network) ?? 0) + 1)
      const r = regions.get(cand.region)
      if (r !== undefined) r.chosen++
    }
  } finally {
    for (const p of picks) chosenMark[p] = 0
    if (reuse) scratchBusy = false
  }
  const out: number[] = new Array(n)
  for (let i = 0; i < n; i++) out[i] = picks[i % picks.length] as number
  return out
}

/**
 * One exact weighted draw (base × diversity) over every allowed candidate: O(N). When the diversity
 * factors of all allowed candidates are 0 (a penalty of 0), draws by base weight alone, so a peer is
 * never reused while another is allowed. Returns -1 when none is allowed.
 */
function exactPick(
  N: number,
  base: Float64Array,
  chosenMark: Uint8Array,
  allowed: (i: number) => boolean,
  diversity: (i: number) => number,
  rng: () => number,
): number {
  const weights = new Float64Array(N)
  let sum = 0
  let plain = 0
  for (let i = 0; i < N; i++) {
    const b = base[i] as number
    if (b === 0 || (chosenMark[i] as number) !== 0 || !allowed(i)) continue
    const w = b * diversity(i)
    weights[i] = w
    sum += w
    plain += b
  }
  if (!(plain > 0)) return -1
  const useBase = !(sum > 0)
  let u = rng() * (useBase ? plain : sum)
  let last = -1
  for (let i = 0; i < N; i++) {
    const b = base[i] as number
    if (b === 0 || (chosenMark[i] as number) !== 0) continue
    const w = useBase ? (allowed(i) ? b : 0) : (weights[i] as number)
    if (w === 0) continue
    last = i
    u -= w
    if (u < 0) return i
  }
  return last
}
