/**
 * EigenTrust: global trust from local trust (Kamvar, Schlosser, Garcia-Molina, "The EigenTrust Algorithm
 * for Reputation Management in P2P Networks", WWW 2003).
 *
 * Local trust s_ij ≥ 0 (src/trust/records.ts) is normalised per row, c_ij = s_ij / Σ_j s_ij (§4.1). A row
 * with no positive entry (a peer that trusts nobody, or about whom we know nothing) is replaced by the
 * pre-trusted distribution p (§4.5). With pre-trusted peers P and damping a, the global trust vector is
 * the fixed point of (§4.5, Algorithm 2):
 *
 *   t(k+1) = (1 − a) · Cᵀ t(k) + a · p
 *
 * computed by power iteration on a sparse (CSR) copy of C: each step costs O(peers + edges). The map
 * is a contraction with factor (1 − a) in the L1 norm, so the error after k steps is at most
 * (1 − a)^k · ‖t(0) − t*‖₁ ≤ 2 (1 − a)^k; starting from the previous result (warm start) makes
 * ‖t(0) − t*‖₁ small when few records changed, so fewer steps are needed.
 *
 * This is the centralised form of the algorithm: every node computes the vector for the peers it knows
 * from its own records plus the signed trust vectors other peers publish (src/trust/trust-vector.ts).
 * Self-trust s_ii is ignored (a peer cannot vouch for itself).
 */
import { NodusError } from '../common/errors.ts'
import { DEFAULT_INTERACTION_WEIGHTS, type InteractionKind, validateInteractionWeights } from './records.ts'

/** Local trust: issuer i → (peer j → s_ij ≥ 0). Missing entries are 0. */
export type SparseMatrix = ReadonlyMap<string, ReadonlyMap<string, number>>

/** Pre-trusted peers: a list (uniform p) or a map from peer to a positive weight (normalised to p). */
export type PreTrusted = readonly string[] | ReadonlyMap<string, number>

/** Damping a: the share of trust that returns to the pre-trusted peers every step. Default 0.15. */
export const DEFAULT_EIGENTRUST_ALPHA = 0.15
/** Stop when the L1 distance between two successive vectors is below this. Default 1e-6. */
export const DEFAULT_EIGENTRUST_EPSILON = 1e-6
/** Most power-iteration steps. Default 200 ((1 − 0.15)^200 ≈ 8e-15, far below the default epsilon). */
export const DEFAULT_EIGENTRUST_MAX_ITERATIONS = 200

/** Options of {@link computeEigenTrust}. */
export interface ComputeEigenTrustOptions {
  /** Damping a in [0, 1]. Default {@link DEFAULT_EIGENTRUST_ALPHA} (0.15). */
  alpha?: number
  /** L1 convergence threshold, > 0. Default {@link DEFAULT_EIGENTRUST_EPSILON} (1e-6). */
  epsilon?: number
  /** Most iterations, ≥ 1. Default {@link DEFAULT_EIGENTRUST_MAX_ITERATIONS} (200). */
  maxIterations?: number
  /**
   * Start vector (e.g. the previous result). Peers missing from it start at 0; it is renormalised to
   * sum 1. Without it (or when it has no positive mass on the current peers) the start is p.
   */
  warmStart?: ReadonlyMap<string, number>
}

/** What {@link computeEigenTrust} returns. */
export interface EigenTrustResult {
  /** Global trust t_j per peer: non-negative, summing to 1 (within float rounding). */
  scores: Map<string, number>
  /** Power-iteration steps taken. */
  iterations: number
  /**
   * L1 distance between the last two vectors. The distance to the true fixed point is at most
   * residual · (1 − a) / a.
   */
  residual: number
  /** True when residual < epsilon. */
  converged: boolean
  /** Peers in the computation (issuers, rated peers and pre-trusted peers). */
  peers: number
  /** Positive off-diagonal local-trust entries used. */
  edges: number
}

function invalid(message: string, details: Record<string, unknown> = {}): NodusError {
  return new NodusError('INVALID_ARGUMENT', message, { details })
}

/**
 * Compute EigenTrust global trust (Kamvar et al. 2003, Algorithm 2 with pre-trusted peers).
 *
 * Peers are every issuer and every rated peer in `localTrust` plus every pre-trusted peer. When no peer
 * is pre-trusted, p is uniform over all peers (the paper's basic algorithm); collusion resistance then
 * weakens: a group G keeps at least a·|G|/n, typically about |G|/n, whatever anybody thinks of it
 * (docs/TRUST.md), so configure pre-trusted peers.
 *
 * @param localTrust - s_ij ≥ 0 and finite; non-positive entries and s_ii are ignored
 * @param preTrusted - peers in P, as a list (uniform) or peer → positive weight
 * @param options - damping, epsilon, iteration cap, warm start (defaults above)
 * @returns scores summing to 1, iterations and residual (convergence)
 * @throws NodusError `INVALID_ARGUMENT` on a negative or non-finite s_ij or weight, or bad options
 */
export function computeEigenTrust(
  localTrust: SparseMatrix,
  preTrusted: PreTrusted,
  options: ComputeEigenTrustOptions = {},
): EigenTrustResult {
  const alpha = options.alpha ?? DEFAULT_EIGENTRUST_ALPHA
  const epsilon = options.epsilon ?? DEFAULT_EIGENTRUST_EPSILON
  const maxIterations = options.maxIterations ?? DEFAULT_EIGENTRUST_MAX_ITERATIONS
  if (!(alpha >= 0 && alpha <= 1)) throw invalid('alpha must be in [0, 1]', { alpha })
  if (!(epsilon > 0)) throw invalid('epsilon must be > 0', { epsilon })
  if (!Number.isSafeInteger(maxIterations) || maxIterations < 1) {
    throw invalid('maxIterations must be an integer ≥ 1', { maxIterations })
  }

  // Index every peer: pre-trusted first, then issuers and rated peers in insertion order (deterministic).
  const index = new Map<string, number>()
  const ids: string[] = []
  const idOf = (peer: string): number => {
    let i = index.get(peer)
    if (i === undefined) {
      i = ids.length
      index.set(peer, i)
      ids.push(peer)
    }
    return i
  }
  const preEntries: Array<[string, number]> = Array.isArray(preTrusted)
    ? (preTrusted as readonly string[]).map((p): [string, number] => [p, 1])
    : [...(preTrusted as ReadonlyMap<string, number>)]
  for (const [peer, w] of preEntries) {
    if (!(w >= 0) || !Number.isFinite(w)) throw invalid('pre-trusted weight must be ≥ 0 and finite', { peer })
    idOf(peer)
  }
  let nnz = 0
  for (const [from, row] of localTrust) {
    idOf(from)
    for (const [to, s] of row) {
      if (!(s >= 0) || !Number.isFinite(s)) throw invalid('local trust must be ≥ 0 and finite', { from, to })
      idOf(to)
      if (s > 0 && to !== from) nnz++
    }
  }
  const n = ids.length
  if (n === 0) return { scores: new Map(), iterations: 0, residual: 0, converged: true, peers: 0, edges: 0 }

  // p: the pre-trusted distribution (uniform over all peers when P is empty or has no weight).
  const p = new Float64Array(n)
  let preSum = 0
  for (const [peer, w] of preEntries) {
    const i = index.get(peer) as number
    p[i] = (p[i] as number) + w
    preSum += w
  }
  if (preSum > 0) for (let i = 0; i < n; i++) p[i] = (p[i] as number) / preSum
  else p.fill(1 / n)

  // C in CSR: row i holds c_ij = s_ij / Σ_j s_ij over positive off-diagonal entries.
  const rowStart = new Int32Array(n + 1)
  const col = new Int32Array(nnz)
  const val = new Float64Array(nnz)
  const rowOf: Array<ReadonlyMap<string, number> | undefined> = new Array(n)
  for (const [from, row] of localTrust) rowOf[index.get(from) as number] = row
  let e = 0
  for (let i = 0; i < n; i++) {
    rowStart[i] = e
    const row = rowOf[i]
    if (row === undefined) continue
    const from = ids[i] as string
    const start = e
    let sum = 0
    for (const [to, s] of row) {
      if (s > 0 && to !== from) {
        col[e] = index.get(to) as number
        val[e] = s
        sum += s
        e++
      }
    }
    for (let x = start; x < e; x++) val[x] = (val[x] as number) / sum
  }
  rowStart[n] = e

  // Start vector.
  let t = new Float64Array(n)
  let warmSum = 0
  if (options.warmStart !== undefined) {
    for (const [peer, v] of options.warmStart) {
      const i = index.get(peer)
      if (i !== undefined && v > 0 && Number.isFinite(v)) {
        t[i] = v
        warmSum += v
      }
    }
  }
  if (warmSum > 0) for (let i = 0; i < n; i++) t[i] = (t[i] as number) / warmSum
  else t.set(p)

  let next = new Float64Array(n)
  const damp = 1 - alpha
  let iterations = 0
  let residual = Number.POSITIVE_INFINITY
  while (iterations < maxIterations) {
    iterations++
    next.fill(0)
    let dangling = 0
    for (let i = 0; i < n; i++) {
      const ti = t[i] as number
      if (ti === 0) continue
      const a = rowStart[i] as number
      const b = rowStart[i + 1] as number
      if (a === b) {
        dangling += ti
        continue
      }
      for (let x = a; x < b; x++) {
        const j = col[x] as number
        next[j] = (next[j] as number) + ti * (val[x] as number)
      }
    }
    // Dangling rows use p as their row: their mass, damped, joins the teleport mass a·p.
    const toP = alpha + damp * dangling
    let sum = 0
    for (let j = 0; j < n; j++) {
      const v = damp * (next[j] as number) + toP * (p[j] as number)
      next[j] = v
      sum += v
    }
    residual = 0
    for (let j = 0; j < n; j++) {
      const v = (next[j] as number) / sum // removes float drift; sum is 1 up to rounding
      next[j] = v
      residual += Math.abs(v - (t[j] as number))
    }
    const swap = t
    t = next
    next = swap
    if (residual < epsilon) break
  }

  const scores = new Map<string, number>()
  for (let i = 0; i < n; i++) scores.set(ids[i] as string, t[i] as number)
  return { scores, iterations, residual, converged: residual < epsilon, peers: n, edges: nnz }
}

/** Options of the {@link EigenTrust} wrapper. */
export interface EigenTrustOptions extends Omit<ComputeEigenTrustOptions, 'warmStart'> {
  /** Pre-trusted peers (from config `trust.preTrusted`). Default none (uniform p: see docs/TRUST.md). */
  preTrusted?: PreTrusted
  /** Weight per interaction kind for {@link EigenTrust.recordInteraction}. Default records.ts. */
  weights?: Readonly<Record<InteractionKind, number>>
  /** Most issuers (rows) kept; the least recently updated row is dropped beyond it. Default 10,000. */
  maxIssuers?: number
  /**
   * Most entries per row; beyond it the entry closest to 0 is dropped (strongly negative records, i.e.
   * known bad peers, are kept as long as strongly positive ones). Default 1,024.
   */
  maxEntriesPerRow?: number
}

/**
 * Stateful EigenTrust: local-trust rows (from this node's interactions and from peers' signed trust
 * vectors), recomputed incrementally (warm start from the previous result).
 *
 * Rows hold sat − unsat per rated peer (may be negative while recording; floored at 0 when computing).
 * Memory is bounded by `maxIssuers` × `maxEntriesPerRow`.
 */
export class EigenTrust {
  readonly #rows = new Map<string, Map<string, number>>()
  readonly #weights: Readonly<Record<InteractionKind, number>>
  readonly #preTrusted: PreTrusted
  readonly #compute: Omit<ComputeEigenTrustOptions, 'warmStart'>
  readonly #maxIssuers: number
  readonly #maxEntriesPerRow: number
  #last: EigenTrustResult | undefined

  /** @throws NodusError `INVALID_ARGUMENT` on bad bounds or weights */
  constructor(options: EigenTrustOptions = {}) {
    this.#weights = options.weights ?? DEFAULT_INTERACTION_WEIGHTS
    validateInteractionWeights(this.#weights)
    this.#preTrusted = options.preTrusted ?? []
    this.#compute = {
      ...(options.alpha === undefined ? {} : { alpha: options.alpha }),
      ...(options.epsilon === undefined ? {} : { epsilon: options.epsilon }),
      ...(options.maxIterations === undefined ? {} : { maxIterations: options.maxIterations }),
    }
    this.#maxIssuers = options.maxIssuers ?? 10_000
    this.#maxEntriesPerRow = options.maxEntriesPerRow ?? 1024
    if (!Number.isSafeInteger(this.#maxIssuers) || this.#maxIssuers < 1)
      throw invalid('maxIssuers must be ≥ 1')
    if (!Number.isSafeInteger(this.#maxEntriesPerRow) || this.#maxEntriesPerRow < 1) {
      throw invalid('maxEntriesPerRow must be ≥ 1')
    }
  }

  /** Number of issuers (rows) held. */
  get issuers(): number {
    return this.#rows.size
  }

  /** The last {@link compute} result, if any. */
  get last(): EigenTrustResult | undefined {
    return this.#last
  }

  /**
   * `from` had `count` interactions of `kind` with `to` (weights from the options).
   *
   * @throws NodusError `INVALID_ARGUMENT` on an unknown kind or a negative or non-finite count
   */
  recordInteraction(from: string, to: string, kind: InteractionKind, count = 1): void {
    const w = this.#weights[kind]
    if (typeof w !== 'number') throw invalid(`unknown interaction kind ${kind}`)
    if (!(count >= 0) || !Number.isFinite(count)) throw invalid('count must be ≥ 0 and finite')
    const row = this.#touchRow(from)
    const had = row.get(to)
    if (had === undefined) this.#makeRoom(row)
    row.set(to, (had ?? 0) + w * count)
  }

  /**
   * Replace `from`'s row with `entries` (peer → s_ij ≥ 0), e.g. from a verified trust vector. Entries
   * beyond `maxEntriesPerRow` are dropped, smallest first.
   *
   * @throws NodusError `INVALID_ARGUMENT` on a negative or non-finite value
   */
  setLocalTrust(from: string, entries: Iterable<readonly [string, number]>): void {
    const list: Array<readonly [string, number]> = []
    for (const entry of entries) {
      const s = entry[1]
      if (!(s >= 0) || !Number.isFinite(s)) throw invalid('local trust must be ≥ 0 and finite', { from })
      list.push(entry)
    }
    if (list.length > this.#maxEntriesPerRow) {
      list.sort((a, b) => b[1] - a[1])
      list.length = this.#maxEntriesPerRow
    }
    const row = this.#touchRow(from)
    row.clear()
    for (const [to, s] of list) row.set(to, s)
  }

  /** Drop `from`'s row (e.g. a banned peer's vector no longer counts). */
  removeIssuer(from: string): void {
    this.#rows.delete(from)
  }

  /**
   * The current local-trust matrix, s_ij = max(row value, 0). A copy; peers rated at or below 0 stay in
   * it with 0, so they get a (possibly zero) score.
   */
  localTrust(): Map<string, Map<string, number>> {
    const out = new Map<string, Map<string, number>>()
    for (const [from, row] of this.#rows) {
      const copy = new Map<string, number>()
      for (const [to, v] of row) copy.set(to, Math.max(v, 0))
      out.set(from, copy)
    }
    return out
  }

  /**
   * `from`'s rating of `to` as recorded: satisfactory minus unsatisfactory interactions, weighted (may
   * be negative, unlike {@link localTrust}'s s_ij); 0 when `from` never rated `to`.
   */
  rating(from: string, to: string): number {
    return this.#rows.get(from)?.get(to) ?? 0
  }

  /**
   * Recompute global trust. Warm-starts from the previous result unless `warmStart` is false.
   *
   * @returns scores (sum 1), iterations and final residual
   * @throws NodusError `INVALID_ARGUMENT` on bad options
   */
  compute(options: { maxIterations?: number; epsilon?: number; warmStart?: boolean } = {}): EigenTrustResult {
    const warm = options.warmStart !== false ? this.#last?.scores : undefined
    const result = computeEigenTrust(this.localTrust(), this.#preTrusted, {
      ...this.#compute,
      ...(options.maxIterations === undefined ? {} : { maxIterations: options.maxIterations }),
      ...(options.epsilon === undefined ? {} : { epsilon: options.epsilon }),
      ...(warm === undefined ? {} : { warmStart: warm }),
    })
    this.#last = result
    return result
  }

  /** `peer`'s global trust from the last {@link compute}, 0 when unknown or never computed. */
  score(peer: string): number {
    return this.#last?.scores.get(peer) ?? 0
  }

  #touchRow(from: string): Map<string, number> {
    let row = this.#rows.get(from)
    if (row === undefined) {
      row = new Map()
      if (this.#rows.size >= this.#maxIssuers) {
        const oldest = this.#rows.keys().next()
        if (oldest.done !== true) this.#rows.delete(oldest.value)
      }
    } else {
      this.#rows.delete(from) // re-inserted: Map order is least recently updated first
    }
    this.#rows.set(from, row)
    return row
  }

  #makeRoom(row: Map<string, number>): void {
    if (row.size < this.#maxEntriesPerRow) return
    let minKey: string | undefined
    let minAbs = Number.POSITIVE_INFINITY
    for (const [k, v] of row) {
      if (Math.abs(v) < minAbs) {
        minAbs = Math.abs(v)
        minKey = k
      }
    }
    if (minKey !== undefined) row.delete(minKey)
  }
}
