/**
 * What a validator vouches for at a commit height (catch-up by snapshot, catchup.ts): the committer
 * state right after commit `h`, in canonical form, as a digest. The state is a function of the commit
 * sequence alone, so every honest node that applied commits 1..h computes the same digest:
 * `{ epoch, base, lastIndex, lastTimestampMs, lastCommittedRound, committed }` with `committed` the
 * vertices committed at rounds ≥ lastCommittedRound − gcDepthRounds, sorted by (round, author,
 * digest); the ledger height is `base + lastIndex` (the epoch's base: consensus epoch.ts). At an epoch
 * switch the height of the deciding commit is vouched as the next epoch's start (`startEpoch`: index
 * 0, nothing committed), as every honest node switches there.
 * `lastDecidedRound` is left out (a node may have decided skipped slots after its last commit): a
 * restored committer takes `lastCommittedRound` and decides those slots again, from the DAG.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { blake3 } from '../crypto/index.ts'
import type { CommitterState } from './committer.ts'
import { digestKey, refOf, type VertexRef } from './vertex.ts'

/**
 * The committer state after commit `lastIndex` of epoch `epoch` (default 0), without
 * `lastDecidedRound`; ledger height `base` (default 0) + `lastIndex`.
 */
export type VouchedState = Omit<CommitterState, 'lastDecidedRound'> & { epoch?: number; base?: number }

/** The ledger height a vouched state stands at. */
export const heightOf = (s: VouchedState): number => (s.base ?? 0) + s.lastIndex

const byRef = (a: VertexRef, b: VertexRef): number =>
  a.round - b.round || a.author - b.author || Buffer.compare(a.digest, b.digest)

/** The canonical form of `s` (committed refs sorted, plain refs). */
export function canonicalState(s: VouchedState): VouchedState {
  return {
    epoch: s.epoch ?? 0,
    base: s.base ?? 0,
    lastIndex: s.lastIndex,
    lastTimestampMs: s.lastTimestampMs,
    lastCommittedRound: s.lastCommittedRound,
    committed: s.committed.map(refOf).sort(byRef),
  }
}

/** BLAKE3-256 of the dag-cbor of the canonical state. */
export function stateDigest(s: VouchedState): Uint8Array {
  return blake3(dagCbor.encode(canonicalState(s)))
}

/**
 * The running committer state, advanced commit by commit in commit order, and the digests of the
 * last `maxHeights` ledger heights (a bounded ring, across epoch switches).
 */
export class VouchLog {
  readonly #gcDepth: number
  readonly #max: number
  readonly #digests = new Map<number, Uint8Array>()
  #epoch = 0
  #base = 0
  #index = 0
  #timestampMs = 0
  #round = 0
  #committed = new Map<string, VertexRef>()

  constructor(gcDepthRounds: number, maxHeights: number) {
    this.#gcDepth = gcDepthRounds
    this.#max = maxHeights
  }

  /**
   * Start from `state` (a restart, a snapshot installed), or from nothing (commit index 0 of `at`'s
   * epoch: default the state's epoch and base, else epoch 0 at height 0).
   */
  reset(
    state: VouchedState | undefined,
    initialTimestampMs: number,
    at: { epoch: number; base: number } = { epoch: state?.epoch ?? 0, base: state?.base ?? 0 },
  ): void {
    this.#epoch = at.epoch
    this.#base = at.base
    this.#index = state?.lastIndex ?? 0
    this.#timestampMs = Math.max(initialTimestampMs, state?.lastTimestampMs ?? 0)
    this.#round = state?.lastCommittedRound ?? 0
    this.#committed = new Map((state?.committed ?? []).map((r) => [digestKey(r.digest), refOf(r)]))
    this.#digests.clear()
    if (state !== undefined) this.#keep(this.#base + this.#index, stateDigest(this.current()))
  }

  /**
   * The epoch ended at the last commit recorded: start `epoch` there (commit index 0 at height
   * `base`, commit time `startMs`); the height `base` is vouched as that start from now on.
   */
  startEpoch(epoch: number, base: number, startMs: number): void {
    this.#epoch = epoch
    this.#base = base
    this.#index = 0
    this.#timestampMs = startMs
    this.#round = 0
    this.#committed = new Map()
    this.#keep(base, stateDigest(this.current()))
  }

  /** Advance by commit `c` (a `CommittedSubDag`; its index must be the next one, others are ignored). */
  record(c: { index: number; timestampMs: number; leader: VertexRef; vertices: readonly VertexRef[] }): void {
    if (c.index !== this.#index + 1) return
    for (const v of c.vertices) this.#committed.set(digestKey(v.digest), refOf(v))
    const floor = c.leader.round - this.#gcDepth
    for (const [k, r] of this.#committed) if (r.round < floor) this.#committed.delete(k)
    this.#index = c.index
    this.#timestampMs = c.timestampMs
    this.#round = c.leader.round
    this.#keep(this.#base + c.index, stateDigest(this.current()))
  }

  /** The state after the last commit recorded. */
  current(): VouchedState {
    return canonicalState({
      epoch: this.#epoch,
      base: this.#base,
      lastIndex: this.#index,
      lastTimestampMs: this.#timestampMs,
      lastCommittedRound: this.#round,
      committed: [...this.#committed.values()],
    })
  }

  /** The state digest at ledger `height`, while kept. */
  digestAt(height: number): Uint8Array | undefined {
    return this.#digests.get(height)
  }

  #keep(height: number, digest: Uint8Array): void {
    this.#digests.delete(height)
    this.#digests.set(height, digest)
    if (this.#digests.size > this.#max) {
      const oldest = this.#digests.keys().next().value as number
      this.#digests.delete(oldest)
    }
  }
}
