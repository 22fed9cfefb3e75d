/**
 * Epoch changes on the consensus side (issue 21: "changes take effect at an epoch boundary, once
 * committed in the DAG"). The committee of each epoch is ledger state (src/ledger/committee.ts):
 * epoch e's quorum decides epoch e+1's committee with committed `committee.vote` transactions, and
 * the commit whose ledger batch decides it is epoch e's last (Sui's end-of-epoch, Aptos's
 * reconfiguration). Every honest node applies the same commit sequence, so all switch after the same
 * commit. Then, as Mysticeti runs one committee per epoch (Babel et al., arXiv 2310.14821):
 * - a new {@link Committee}(e+1, members, the ledger's next leader seed), genesis vertices of e+1 and
 *   a new core (members) or follower (everyone else) whose commit indexes restart at 1 and whose
 *   timestamps start at the deciding commit's;
 * - ledger height of commit index i of epoch e+1 = the deciding height (`base`) + i;
 * - later commits of epoch e are not applied, and vertices of epoch e are ignored
 *   (`VERTEX_WRONG_EPOCH`, peerAction ignore), though the DAG of epoch e is kept to serve peers still
 *   reaching the boundary;
 * - a validator hands the transactions it held (pool and own uncommitted vertices) to the next
 *   epoch ({@link leftoverTxs}); one already committed is refused by its nonce, so nothing applies twice.
 *
 * These functions are pure: the area and the simulator (src/sim/consensus-epoch.ts) drive them.
 */
import { bytesEqual } from '../common/bytes.ts'
import { Committee, type SignatureMode } from './committee.ts'
import type { CommittedSubDag } from './committer.ts'
import type { Core } from './core.ts'

/** An epoch's committee as the ledger holds it (src/ledger/committee.ts `EpochState`, structurally). */
export interface EpochCommittee {
  epoch: number
  /** Ledger height before the epoch's first commit: commit index i is height base + i. */
  base: number
  /** Commit timestamp the epoch starts from, Unix ms. */
  startMs: number
  leaderSeed: Uint8Array
  signatureMode: SignatureMode
  members: readonly { ed25519: Uint8Array; mldsa65?: Uint8Array; name?: string }[]
  params: { roundTimeoutMs?: number; maxTxsPerVertex?: number; maxVertexBytes?: number }
}

/** The consensus parameters of the genesis file an epoch's `params` change. */
export interface EpochParams {
  roundTimeoutMs: number
  maxTxsPerVertex: number
  maxVertexBytes: number
}

/** The committee an epoch runs (validator i = member i). */
export function committeeOfEpoch(e: EpochCommittee): Committee {
  return new Committee(
    e.epoch,
    e.members.map((m, index) => ({
      index,
      ed25519: m.ed25519,
      ...(m.mldsa65 === undefined ? {} : { mldsa65: m.mldsa65 }),
      ...(m.name === undefined ? {} : { name: m.name }),
    })),
    e.leaderSeed,
    e.signatureMode,
  )
}

/** The genesis's parameters with the epoch's changes. */
export function paramsOfEpoch(genesis: EpochParams, e: EpochCommittee): EpochParams {
  return {
    roundTimeoutMs: e.params.roundTimeoutMs ?? genesis.roundTimeoutMs,
    maxTxsPerVertex: e.params.maxTxsPerVertex ?? genesis.maxTxsPerVertex,
    maxVertexBytes: e.params.maxVertexBytes ?? genesis.maxVertexBytes,
  }
}

/** This node's validator index in the epoch (its Ed25519 key among the members), or −1: a follower. */
export function memberIndex(e: EpochCommittee, ed25519: Uint8Array): number {
  return e.members.findIndex((m) => bytesEqual(m.ed25519, ed25519))
}

/**
 * What a validator of the epoch that ended still held: its pool and the transactions of its own
 * vertices that no applied commit included (uncommitted, or in `discarded`: commits after the deciding
 * one), oldest first (to submit to the next epoch's core, or forward to one of its validators).
 */
export function leftoverTxs(core: Core, discarded: readonly CommittedSubDag[] = []): Uint8Array[] {
  const author = core.status().author
  const out: Uint8Array[] = []
  for (const c of discarded) for (const v of c.vertices) if (v.author === author) out.push(...v.txs)
  for (let r = Math.max(1, core.dag.floor); r <= core.dag.highestRound; r++) {
    for (const v of core.dag.slot(r, author)) if (!core.committer.isCommitted(v)) out.push(...v.txs)
  }
  out.push(...core.poolTxs())
  return out
}
