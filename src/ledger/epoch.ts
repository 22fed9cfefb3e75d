/**
 * The rules of `committee.propose` and `committee.vote` (committee.ts has the model and the state):
 * deterministic functions of the state entries and the transaction, as every kind in apply.ts. The
 * signer's nonce is already used when these run; a refusal changes nothing else.
 *
 * - Either kind from a key that is not a member of the current committee: `LEDGER_TX_NOT_MEMBER`
 *   (also in a ledger whose genesis has no committee).
 * - `epoch` must be the current epoch + 1: an epoch at or below the current one was decided already
 *   (`LEDGER_TX_EPOCH_DECIDED`, the one-decision-per-epoch rule), one further ahead is
 *   `LEDGER_TX_WRONG_EPOCH`.
 * - A proposal whose members do not fit the federation's signature mode (hybrid: every member has an
 *   ML-DSA-65 key; Ed25519: none has) is `LEDGER_TX_COMMITTEE_INVALID`.
 * - After a decision, the rest of its batch belongs to the epoch that ended: a committee transaction
 *   for a later epoch in it is `LEDGER_TX_WRONG_EPOCH` (one decision per batch, so no epoch is empty).
 * - A vote for a hash no pending proposal has: `LEDGER_TX_PROPOSAL_UNKNOWN`.
 * - The vote that brings one hash to n − f distinct members' votes decides: the state's epoch entry
 *   becomes the next epoch's (committee.ts module doc) and pending proposals are deleted.
 */
import { bytesEqual } from '../common/bytes.ts'
import type { ErrorCode } from '../common/errors.ts'
import {
  decodeProposal,
  type EpochState,
  encodeProposal,
  nextLeaderSeed,
  proposalHash,
  quorumOf,
} from './committee.ts'
import type { TxBody } from './tx.ts'

/** Why a committee transaction was refused (a part of apply.ts's `RefusalCode`). */
export type EpochRefusal = Extract<
  ErrorCode,
  | 'LEDGER_TX_NOT_MEMBER'
  | 'LEDGER_TX_WRONG_EPOCH'
  | 'LEDGER_TX_EPOCH_DECIDED'
  | 'LEDGER_TX_PROPOSAL_UNKNOWN'
  | 'LEDGER_TX_COMMITTEE_INVALID'
>

/** One state entry as the epoch rules change it (apply.ts `Slot`: read once, written back if dirty). */
interface EpochSlot<T> {
  value: T | undefined
  dirty: boolean
}

/** What the epoch rules need of a batch's working set (apply.ts `WorkingSet`). */
export interface EpochWorkingSet {
  /** The epoch this batch decided, if it did. */
  decided: EpochState | undefined
  /** The batch's height. */
  readonly height: number
  epoch(): EpochSlot<EpochState>
  proposal(hash: Uint8Array): EpochSlot<Uint8Array>
}

type ProposeBody = Extract<TxBody, { kind: 'committee.propose' }>
type VoteBody = Extract<TxBody, { kind: 'committee.vote' }>

/** The epoch slot and the signer's member index, or why the signer may not act on the committee. */
function member(
  ws: EpochWorkingSet,
  body: ProposeBody | VoteBody,
): { slot: EpochSlot<EpochState>; state: EpochState; index: number } | EpochRefusal {
  if (ws.decided !== undefined) return 'LEDGER_TX_WRONG_EPOCH' // the next epoch has not started yet
  const slot = ws.epoch()
  const state = slot.value
  if (state === undefined) return 'LEDGER_TX_NOT_MEMBER'
  const index = state.members.findIndex((m) => bytesEqual(m.ed25519, body.from))
  if (index < 0) return 'LEDGER_TX_NOT_MEMBER'
  if (body.epoch <= state.epoch) return 'LEDGER_TX_EPOCH_DECIDED'
  if (body.epoch !== state.epoch + 1) return 'LEDGER_TX_WRONG_EPOCH'
  return { slot, state, index }
}

/** Drop `hash`'s stored proposal when no pending proposal names it any more. */
function release(ws: EpochWorkingSet, state: EpochState, hash: Uint8Array): void {
  if (state.proposals.some((p) => bytesEqual(p.hash, hash))) return
  const s = ws.proposal(hash)
  s.value = undefined
  s.dirty = true
}

/** `committee.propose` (module doc): stores the proposal, replacing the signer's previous one. */
export function propose(ws: EpochWorkingSet, body: ProposeBody): EpochRefusal | undefined {
  const m = member(ws, body)
  if (typeof m === 'string') return m
  const hybrid = m.state.signatureMode === 'hybrid'
  if (body.members.some((x) => (x.mldsa65 !== undefined) !== hybrid)) return 'LEDGER_TX_COMMITTEE_INVALID'
  const proposal = {
    epoch: body.epoch,
    members: body.members,
    ...(body.params === undefined ? {} : { params: body.params }),
  }
  const hash = proposalHash(proposal)
  const state: EpochState = { ...m.state, proposals: m.state.proposals.filter((p) => p.proposer !== m.index) }
  state.proposals.push({ hash, proposer: m.index })
  const previous = m.state.proposals.find((p) => p.proposer === m.index)
  if (previous !== undefined && !bytesEqual(previous.hash, hash)) release(ws, state, previous.hash)
  const stored = ws.proposal(hash)
  if (stored.value === undefined) {
    stored.value = encodeProposal(proposal)
    stored.dirty = true
  }
  m.slot.value = state
  m.slot.dirty = true
  return undefined
}

/** `committee.vote` (module doc): records the vote; a quorum for one hash decides the next epoch. */
export function vote(ws: EpochWorkingSet, body: VoteBody, nowMs: number): EpochRefusal | undefined {
  const m = member(ws, body)
  if (typeof m === 'string') return m
  if (!m.state.proposals.some((p) => bytesEqual(p.hash, body.proposal))) return 'LEDGER_TX_PROPOSAL_UNKNOWN'
  const votes = [...m.state.votes]
  votes[m.index] = body.proposal
  const count = votes.filter((v) => v !== null && bytesEqual(v, body.proposal)).length
  if (count < quorumOf(m.state.members.length)) {
    m.slot.value = { ...m.state, votes }
    m.slot.dirty = true
    return undefined
  }
  const raw = ws.proposal(body.proposal).value
  const proposal = raw === undefined ? undefined : decodeProposal(raw)
  if (proposal === undefined) throw new Error('ledger state: a pending committee proposal is missing')
  const next: EpochState = {
    epoch: proposal.epoch,
    base: ws.height,
    startMs: nowMs,
    leaderSeed: nextLeaderSeed(m.state.leaderSeed, body.proposal, ws.height),
    signatureMode: m.state.signatureMode,
    members: proposal.members,
    params: { ...m.state.params, ...proposal.params },
    proposals: [],
    votes: proposal.members.map(() => null),
  }
  for (const p of m.state.proposals) {
    const s = ws.proposal(p.hash)
    s.value = undefined
    s.dirty = true
  }
  m.slot.value = next
  m.slot.dirty = true
  ws.decided = next
  return undefined
}
