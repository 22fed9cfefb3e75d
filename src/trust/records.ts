/**
 * Local interaction records: what this node has seen each peer do, turned into EigenTrust local trust.
 *
 * EigenTrust (Kamvar, Schlosser, Garcia-Molina, WWW 2003, §3) defines peer i's local trust in peer j as
 * s_ij = sat(i, j) − unsat(i, j), floored at 0 (§4.1). Here every interaction kind carries a weight:
 * a positive weight adds to sat, a negative one to unsat (see {@link DEFAULT_INTERACTION_WEIGHTS}).
 * Only the difference matters, so one signed number per peer is kept.
 */
import { NodusError } from '../common/errors.ts'

/**
 * What happened between this node and a peer.
 *
 * - `shard-served`: the peer served a shard whose BLAKE3 matched its CID.
 * - `shard-stored`: the peer stored a shard we sent and returned a valid signed receipt.
 * - `audit-passed`: the peer answered a storage audit challenge correctly.
 * - `shard-bad`: the peer served bytes that did not match the CID, or broke the shard protocol.
 * - `audit-failed`: the peer failed an audit (wrong answer, or says it lost a shard it holds for us).
 * - `timeout`: a request to the peer timed out or the peer was unreachable when it should hold data.
 * - `report-inconsistent`: the peer's signed capacity report contradicts what it did ({@link checkReport}).
 */
export type InteractionKind =
  | 'shard-served'
  | 'shard-stored'
  | 'audit-passed'
  | 'shard-bad'
  | 'audit-failed'
  | 'timeout'
  | 'report-inconsistent'

/** Every interaction kind, for validation and iteration. */
export const INTERACTION_KINDS: readonly InteractionKind[] = Object.freeze([
  'shard-served',
  'shard-stored',
  'audit-passed',
  'shard-bad',
  'audit-failed',
  'timeout',
  'report-inconsistent',
])

/**
 * Default weight of each kind: > 0 counts toward sat, < 0 toward unsat (docs/TRUST.md explains them).
 * A served or stored shard is worth 1; a passed audit 2 (a deliberate proof of possession); a timeout
 * costs 1 (networks fail); a report that contradicts behaviour costs 4; a bad shard 5 and a failed
 * audit 10, so that a peer cannot buy the right to cheat with a few good transfers.
 */
export const DEFAULT_INTERACTION_WEIGHTS: Readonly<Record<InteractionKind, number>> = Object.freeze({
  'shard-served': 1,
  'shard-stored': 1,
  'audit-passed': 2,
  'shard-bad': -5,
  'audit-failed': -10,
  timeout: -1,
  'report-inconsistent': -4,
})

/**
 * Check an interaction weight table (finite numbers, one per kind).
 *
 * @throws NodusError `INVALID_ARGUMENT` when a kind is missing or not finite
 */
export function validateInteractionWeights(weights: Readonly<Record<InteractionKind, number>>): void {
  for (const kind of INTERACTION_KINDS) {
    const w = weights[kind]
    if (typeof w !== 'number' || !Number.isFinite(w)) {
      throw new NodusError('INVALID_ARGUMENT', `interaction weight for ${kind} must be a finite number`, {
        details: { kind },
      })
    }
  }
}

/** Options of {@link InteractionRecords}. */
export interface InteractionRecordsOptions {
  /** Weight per kind. Default {@link DEFAULT_INTERACTION_WEIGHTS}. */
  weights?: Readonly<Record<InteractionKind, number>>
  /** Most peers tracked; the least recently updated one is forgotten beyond it. Default 10,000. */
  maxPeers?: number
}

/** Counters kept per peer. */
export interface PeerRecord {
  /** Sum of positive weights seen (sat). */
  sat: number
  /** Sum of the magnitudes of negative weights seen (unsat). */
  unsat: number
}

/**
 * One node's interaction records about other peers (bounded, least recently updated evicted).
 *
 * `localTrust(peer)` is s_ij = max(sat − unsat, 0). `topLocalTrust(n)` is what the node publishes in its
 * signed trust vector (src/trust/trust-vector.ts) and what it feeds as its own row into EigenTrust.
 */
export class InteractionRecords {
  readonly #weights: Readonly<Record<InteractionKind, number>>
  readonly #maxPeers: number
  readonly #peers = new Map<string, PeerRecord>()

  /** @throws NodusError `INVALID_ARGUMENT` on a bad weight table or `maxPeers` < 1 */
  constructor(options: InteractionRecordsOptions = {}) {
    this.#weights = options.weights ?? DEFAULT_INTERACTION_WEIGHTS
    validateInteractionWeights(this.#weights)
    this.#maxPeers = options.maxPeers ?? 10_000
    if (!Number.isSafeInteger(this.#maxPeers) || this.#maxPeers < 1) {
      throw new NodusError('INVALID_ARGUMENT', 'maxPeers must be an integer ≥ 1')
    }
  }

  /** Number of peers tracked. */
  get size(): number {
    return this.#peers.size
  }

  /**
   * Record `count` interactions of `kind` with `peer`.
   *
   * @throws NodusError `INVALID_ARGUMENT` when `count` is not a non-negative finite number or `kind` unknown
   */
  record(peer: string, kind: InteractionKind, count = 1): void {
    const w = this.#weights[kind]
    if (typeof w !== 'number') throw new NodusError('INVALID_ARGUMENT', `unknown interaction kind ${kind}`)
    if (!(count >= 0) || !Number.isFinite(count)) {
      throw new NodusError('INVALID_ARGUMENT', 'interaction count must be a non-negative finite number')
    }
    let r = this.#peers.get(peer)
    if (r === undefined) {
      r = { sat: 0, unsat: 0 }
      if (this.#peers.size >= this.#maxPeers) {
        const oldest = this.#peers.keys().next()
        if (oldest.done !== true) this.#peers.delete(oldest.value)
      }
    } else {
      this.#peers.delete(peer) // re-inserted below: Map order is least recently updated first
    }
    this.#peers.set(peer, r)
    if (w >= 0) r.sat += w * count
    else r.unsat -= w * count
  }

  /** sat and unsat for `peer`, or undefined when it is not tracked. */
  get(peer: string): Readonly<PeerRecord> | undefined {
    const r = this.#peers.get(peer)
    return r === undefined ? undefined : { sat: r.sat, unsat: r.unsat }
  }

  /** s_ij = max(sat − unsat, 0); 0 for an unknown peer. */
  localTrust(peer: string): number {
    const r = this.#peers.get(peer)
    return r === undefined ? 0 : Math.max(r.sat - r.unsat, 0)
  }

  /** Every peer with positive local trust, as `[peer, s_ij]` (unordered). */
  *entries(): IterableIterator<[string, number]> {
    for (const [peer, r] of this.#peers) {
      const s = r.sat - r.unsat
      if (s > 0) yield [peer, s]
    }
  }

  /** The `n` peers with the highest positive local trust, highest first (ties by peer id). */
  topLocalTrust(n: number): Array<[string, number]> {
    const all = [...this.entries()]
    all.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    return all.slice(0, Math.max(0, n))
  }

  /** Forget `peer`. */
  delete(peer: string): void {
    this.#peers.delete(peer)
  }
}
