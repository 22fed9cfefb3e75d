/**
 * The committee of one epoch: n equal-stake validators, counted quorums (Mysticeti-C, Babel et al.,
 * arXiv 2310.14821, §2: n = 3f+1, quorum 2f+1, validity f+1), and the leader schedule.
 *
 * Quorums are counted in distinct authors. With n = 3f+1 the quorum is 2f+1; for other n it is
 * n − f, the smallest count two of which share at least f+1 validators (so at least one honest one).
 *
 * Leader schedule: one leader per round (a wave starts every round), round-robin over a permutation
 * of the validator indices drawn from the epoch's 32-byte leader seed (a Fisher–Yates shuffle whose
 * j-th draw is the first 4 bytes, big-endian, of BLAKE3(seed ‖ epoch u32be ‖ j u32be), mod j+1), so
 * every validator computes the same schedule and no validator chooses its own turn.
 */
import { blake3, type HybridPublicKey } from '../crypto/index.ts'

/** How vertices are signed in a federation: Ed25519 alone, or Ed25519 + ML-DSA-65 (both must verify). */
export type SignatureMode = 'ed25519' | 'hybrid'

/** One validator of the committee. */
export interface Validator {
  /** Position in the committee, 0 ≤ index < n: the `author` of its vertices. */
  readonly index: number
  /** Raw Ed25519 public key, 32 bytes. */
  readonly ed25519: Uint8Array
  /** Raw ML-DSA-65 public key, 1952 bytes; present for every validator in `hybrid` mode. */
  readonly mldsa65?: Uint8Array
  /** A human label from the genesis file (not used by the protocol). */
  readonly name?: string
}

/** Bytes of a leader schedule seed. */
export const LEADER_SEED_BYTES = 32

function u32be(x: number): Uint8Array {
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, x >>> 0)
  return out
}

/** The permutation of 0..n−1 drawn from `seed` for `epoch` (module doc). */
export function leaderPermutation(n: number, seed: Uint8Array, epoch: number): number[] {
  const perm = Array.from({ length: n }, (_, i) => i)
  for (let j = n - 1; j > 0; j--) {
    const h = blake3(Uint8Array.from([...seed, ...u32be(epoch), ...u32be(j)]))
    const draw = new DataView(h.buffer, h.byteOffset, 4).getUint32(0)
    const k = draw % (j + 1)
    const t = perm[j] as number
    perm[j] = perm[k] as number
    perm[k] = t
  }
  return perm
}

/** The validators of one epoch, their quorums and the leader schedule. Immutable. */
export class Committee {
  /** The epoch these validators run. */
  readonly epoch: number
  readonly validators: readonly Validator[]
  /** Number of validators. */
  readonly n: number
  /** Most faulty validators tolerated: ⌊(n − 1) / 3⌋. */
  readonly f: number
  /** Distinct authors that make a quorum: n − f (2f+1 when n = 3f+1). */
  readonly quorum: number
  /** Distinct authors that include at least one honest validator: f + 1. */
  readonly validity: number
  readonly signatureMode: SignatureMode
  /** 32-byte seed of the leader schedule. */
  readonly leaderSeed: Uint8Array
  readonly #schedule: readonly number[]

  /**
   * @param validators - in index order (validators[i].index === i), at least 1
   * @throws Error (a programming error: genesis.ts checks files before building a committee) on a
   *   bad index, a seed not 32 bytes, or a hybrid committee with a validator lacking its ML-DSA-65 key
   */
  constructor(
    epoch: number,
    validators: readonly Validator[],
    leaderSeed: Uint8Array,
    signatureMode: SignatureMode,
  ) {
    if (validators.length === 0) throw new Error('a committee needs at least one validator')
    validators.forEach((v, i) => {
      if (v.index !== i) throw new Error(`validator ${i} has index ${v.index}`)
      if (signatureMode === 'hybrid' && v.mldsa65 === undefined)
        throw new Error(`validator ${i} has no ML-DSA-65 key in a hybrid committee`)
    })
    if (leaderSeed.byteLength !== LEADER_SEED_BYTES) throw new Error('the leader seed must be 32 bytes')
    this.epoch = epoch
    this.validators = Object.freeze([...validators])
    this.n = validators.length
    this.f = Math.floor((this.n - 1) / 3)
    this.quorum = this.n - this.f
    this.validity = this.f + 1
    this.signatureMode = signatureMode
    this.leaderSeed = leaderSeed
    this.#schedule = Object.freeze(leaderPermutation(this.n, leaderSeed, epoch))
  }

  /** True when `author` is a validator index of this committee. */
  has(author: number): boolean {
    return Number.isSafeInteger(author) && author >= 0 && author < this.n
  }

  /** The leader (validator index) of `round` (≥ 1; round 0 is genesis and has no leader). */
  leader(round: number): number {
    return this.#schedule[(round - 1) % this.n] as number
  }

  /** The hybrid public key of `author` (hybrid mode), or undefined. */
  hybridKey(author: number): HybridPublicKey | undefined {
    const v = this.validators[author]
    return v?.mldsa65 === undefined ? undefined : { ed25519: v.ed25519, mldsa65: v.mldsa65 }
  }
}
