/**
 * The validator committee as ledger state (issue 21: "changes take effect at an epoch boundary, once
 * committed in the DAG"), so the state root and snapshots cover it and every node that applies the
 * same commit sequence holds the same committee.
 *
 * The model is Sui's end-of-epoch (the committee of epoch e+1 is decided by a quorum of epoch e, in
 * its own commit sequence, and takes effect after the commit that decides it; Mysticeti, Babel et
 * al., arXiv 2310.14821, runs one committee per epoch) and Aptos's reconfiguration (the validator set
 * is on-chain state; a reconfiguration event ends the epoch at the block that emits it). Two
 * transaction kinds (tx.ts), each signed by a current member's Ed25519 key (the member's account):
 * - `committee.propose { epoch: e+1, members, params? }`: a candidate committee, stored by its hash
 *   ({@link proposalHash}); one pending proposal per member (a new one replaces the member's last);
 * - `committee.vote { epoch: e+1, proposal: hash }`: a member's vote (a later vote replaces it).
 * Once 2f+1 distinct members of epoch e (n − f: committee.ts's quorum) vote for one hash, the batch
 * applying that vote decides epoch e+1: the state's {@link EpochState} becomes the proposal's
 * committee, `base` the deciding batch's height (so commit index i of epoch e+1 is ledger height
 * base + i), `startMs` its commit timestamp, the leader seed {@link nextLeaderSeed}; pending
 * proposals and votes are dropped. One decision per epoch: any later vote or proposal in the same
 * batch names an epoch already decided (`LEDGER_TX_EPOCH_DECIDED`).
 *
 * State entries (codec.ts's key space): `00 "committee"` → dag-cbor {@link EpochState}; `04 ‖ hash`
 * → dag-cbor of the proposal {@link CommitteeProposal}.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { concatBytes } from '../common/bytes.ts'
import { blake3, type Fail, readInt, readList, readMap, readString } from '../crypto/index.ts'

export const COMMITTEE_KEY = Uint8Array.from([0x00, ...new TextEncoder().encode('committee')])
export const PROPOSAL_TAG = 0x04
/** Most members of one committee (as a genesis file: consensus genesis.ts `MAX_MEMBERS`). */
export const MAX_COMMITTEE_MEMBERS = 256
/**
 * Largest `committee.propose` envelope, bytes (64 KiB; every other kind stays at tx.ts's 1,024): 256
 * Ed25519 members, or about 30 in hybrid mode (each ML-DSA-65 key is 1,952 bytes).
 */
export const MAX_COMMITTEE_TX_BYTES = 64 * 1024
/** Bytes of an ML-DSA-65 public key. */
export const MLDSA65_KEY_BYTES = 1952
/** The proposal hash's domain. */
export const PROPOSAL_DOMAIN = 'nodus/ledger-committee/v1'
/** The next epoch's leader seed's domain. */
export const EPOCH_SEED_DOMAIN = 'nodus/consensus-epoch-seed/v1'

/** Bounds of the consensus parameters a proposal may change: the genesis file's (consensus genesis.ts). */
export const PARAM_BOUNDS = Object.freeze({
  roundTimeoutMs: [10, 600_000],
  maxTxsPerVertex: [0, 1_000_000],
  maxVertexBytes: [1024, 64 * 1024 * 1024],
} as const)
export type ConsensusParams = { -readonly [K in keyof typeof PARAM_BOUNDS]?: number }
const PARAM_KEYS = Object.keys(PARAM_BOUNDS) as (keyof typeof PARAM_BOUNDS)[]

/** One member of a committee. */
export interface CommitteeMember {
  /** Ed25519 public key, 32 bytes: its vertex key and its ledger account. */
  ed25519: Uint8Array
  /** ML-DSA-65 public key, 1,952 bytes: required in hybrid mode, refused otherwise. */
  mldsa65?: Uint8Array
  /** A label, 1–64 characters (not used by the protocol). */
  name?: string
}

/** What a `committee.propose` carries (and what its hash covers). */
export interface CommitteeProposal {
  /** The epoch it would run: the current epoch + 1. */
  epoch: number
  /** In index order (member i is validator i of the epoch), 1–256, distinct Ed25519 keys. */
  members: CommitteeMember[]
  /** Consensus parameters that change from the epoch's (absent: unchanged). */
  params?: ConsensusParams
}

/** The committee of the current epoch and the change in progress, as the ledger state holds it. */
export interface EpochState {
  epoch: number
  /** Ledger height of the commit before this epoch's first: commit index i is height base + i (0 at genesis). */
  base: number
  /** Commit timestamp of the deciding commit (the genesis time for the first epoch), Unix ms. */
  startMs: number
  /** 32 bytes: the leader schedule's seed (consensus committee.ts). */
  leaderSeed: Uint8Array
  signatureMode: 'ed25519' | 'hybrid'
  members: CommitteeMember[]
  /** Parameters changed since genesis (the genesis file's apply otherwise). */
  params: ConsensusParams
  /** Pending proposals for epoch + 1: hash and proposing member index, one per member. */
  proposals: { hash: Uint8Array; proposer: number }[]
  /** Per member index, the proposal hash it voted for, or null. */
  votes: (Uint8Array | null)[]
}

/** Distinct members that decide: n − f, f = ⌊(n − 1)/3⌋ (2f+1 when n = 3f+1; consensus committee.ts). */
export function quorumOf(n: number): number {
  return n - Math.floor((n - 1) / 3)
}

/** Logical state key of a proposal. */
export function proposalKey(hash: Uint8Array): Uint8Array {
  return concatBytes([Uint8Array.of(PROPOSAL_TAG), hash])
}

/** A member as encoded: absent fields left out. */
export function plainMember(m: CommitteeMember): Record<string, unknown> {
  const o: Record<string, unknown> = { ed25519: m.ed25519 }
  if (m.mldsa65 !== undefined) o.mldsa65 = m.mldsa65
  if (m.name !== undefined) o.name = m.name
  return o
}

/** Parameters as encoded: absent ones left out. */
export function plainParams(p: ConsensusParams): Record<string, number> {
  const o: Record<string, number> = {}
  for (const k of PARAM_KEYS) if (p[k] !== undefined) o[k] = p[k]
  return o
}

/** The proposal as encoded (stored, and hashed under {@link PROPOSAL_DOMAIN}). */
export function encodeProposal(p: CommitteeProposal): Uint8Array {
  const o: Record<string, unknown> = { epoch: p.epoch, members: p.members.map(plainMember) }
  if (p.params !== undefined && Object.keys(plainParams(p.params)).length > 0)
    o.params = plainParams(p.params)
  return dagCbor.encode(o)
}

/** A proposal's hash: BLAKE3-256 of dag-cbor `{ domain, proposal }` (32 bytes). */
export function proposalHash(p: CommitteeProposal): Uint8Array {
  return blake3(dagCbor.encode({ domain: PROPOSAL_DOMAIN, proposal: encodeProposal(p) }))
}

/** Read a member list from untrusted decoded dag-cbor (structure and bounds; hybrid keys checked at apply). */
export function readMembers(v: unknown, fail: Fail): CommitteeMember[] {
  const list = readList(v, 'members', MAX_COMMITTEE_MEMBERS, fail)
  if (list.length === 0) throw fail('members must list at least one')
  const seen = new Set<string>()
  return list.map((raw, i) => {
    const m = readMap(raw, `members[${i}]`, undefined, fail)
    for (const k of Object.keys(m))
      if (k !== 'ed25519' && k !== 'mldsa65' && k !== 'name') throw fail(`members[${i}]: unknown field`)
    if (!(m.ed25519 instanceof Uint8Array) || m.ed25519.byteLength !== 32)
      throw fail(`members[${i}].ed25519 must be 32 bytes`)
    const id = Buffer.from(m.ed25519).toString('hex')
    if (seen.has(id)) throw fail(`members[${i}] is listed twice`)
    seen.add(id)
    const out: CommitteeMember = { ed25519: m.ed25519 }
    if (m.mldsa65 !== undefined) {
      if (!(m.mldsa65 instanceof Uint8Array) || m.mldsa65.byteLength !== MLDSA65_KEY_BYTES)
        throw fail(`members[${i}].mldsa65 must be ${MLDSA65_KEY_BYTES} bytes`)
      out.mldsa65 = m.mldsa65
    }
    if (m.name !== undefined) out.name = readString(m.name, `members[${i}].name`, 64, fail)
    return out
  })
}

/** Read consensus parameters from untrusted decoded dag-cbor: known keys, each within {@link PARAM_BOUNDS}. */
export function readParams(v: unknown, fail: Fail): ConsensusParams {
  const m = readMap(v, 'params', undefined, fail)
  const out: ConsensusParams = {}
  for (const k of Object.keys(m)) {
    const key = k as keyof typeof PARAM_BOUNDS
    if (!PARAM_KEYS.includes(key)) throw fail(`params: unknown field ${k.slice(0, 32)}`)
    const [min, max] = PARAM_BOUNDS[key]
    out[key] = readInt(m[k], `params.${k}`, min, max, fail)
  }
  return out
}

/** The state entry of an epoch. */
export function encodeEpochState(s: EpochState): Uint8Array {
  return dagCbor.encode({
    epoch: s.epoch,
    base: s.base,
    startMs: s.startMs,
    leaderSeed: s.leaderSeed,
    signatureMode: s.signatureMode,
    members: s.members.map(plainMember),
    params: plainParams(s.params),
    proposals: s.proposals.map((p) => ({ hash: p.hash, proposer: p.proposer })),
    votes: s.votes,
  })
}

const stateFail: Fail = (message) => new Error(message) as never

/** Decode the state entry (undefined when it does not decode: snapshot import checks entries with this). */
export function decodeEpochState(b: Uint8Array): EpochState | undefined {
  try {
    const m = readMap(dagCbor.decode(b), 'committee', undefined, stateFail)
    const members = readMembers(m.members, stateFail)
    if (!(m.leaderSeed instanceof Uint8Array) || m.leaderSeed.byteLength !== 32) return undefined
    if (m.signatureMode !== 'ed25519' && m.signatureMode !== 'hybrid') return undefined
    const votes = readList(m.votes, 'votes', members.length, stateFail)
    if (votes.length !== members.length) return undefined
    for (const x of votes)
      if (x !== null && !(x instanceof Uint8Array && x.byteLength === 32)) return undefined
    const proposals = readList(m.proposals, 'proposals', members.length, stateFail).map((raw) => {
      const p = readMap(raw, 'proposal', ['hash', 'proposer'], stateFail)
      if (!(p.hash instanceof Uint8Array) || p.hash.byteLength !== 32) throw new Error('hash')
      return { hash: p.hash, proposer: readInt(p.proposer, 'proposer', 0, members.length - 1, stateFail) }
    })
    return {
      epoch: readInt(m.epoch, 'epoch', 0, 2 ** 32 - 1, stateFail),
      base: readInt(m.base, 'base', 0, Number.MAX_SAFE_INTEGER, stateFail),
      startMs: readInt(m.startMs, 'startMs', 0, Number.MAX_SAFE_INTEGER, stateFail),
      leaderSeed: m.leaderSeed,
      signatureMode: m.signatureMode,
      members,
      params: readParams(m.params, stateFail),
      proposals,
      votes: votes as (Uint8Array | null)[],
    }
  } catch {
    return undefined
  }
}

/** Decode a stored proposal (undefined when it does not decode). */
export function decodeProposal(b: Uint8Array): CommitteeProposal | undefined {
  try {
    const m = readMap(dagCbor.decode(b), 'proposal', undefined, stateFail)
    for (const k of Object.keys(m)) if (k !== 'epoch' && k !== 'members' && k !== 'params') return undefined
    const p: CommitteeProposal = {
      epoch: readInt(m.epoch, 'epoch', 0, 2 ** 32 - 1, stateFail),
      members: readMembers(m.members, stateFail),
    }
    if (m.params !== undefined) p.params = readParams(m.params, stateFail)
    return p
  } catch {
    return undefined
  }
}

/**
 * The leader seed of the epoch a decision starts: BLAKE3-256 of dag-cbor `{ domain:
 * "nodus/consensus-epoch-seed/v1", seed: the deciding epoch's seed, proposal: the decided hash,
 * height: the deciding batch's height }`. Ledger state only, so a node restored from a snapshot derives
 * the same schedule. Whoever shapes a proposal can try hashes, but the schedule is a round-robin over a
 * permutation: every member leads equally often whatever the seed, only the order changes.
 */
export function nextLeaderSeed(seed: Uint8Array, proposal: Uint8Array, height: number): Uint8Array {
  return blake3(dagCbor.encode({ domain: EPOCH_SEED_DOMAIN, seed, proposal, height }))
}

/** The first epoch's state, from the genesis committee. */
export function initialEpochState(c: {
  epoch: number
  leaderSeed: Uint8Array
  signatureMode: 'ed25519' | 'hybrid'
  members: readonly CommitteeMember[]
  startMs: number
}): EpochState {
  return {
    epoch: c.epoch,
    base: 0,
    startMs: c.startMs,
    leaderSeed: c.leaderSeed,
    signatureMode: c.signatureMode,
    members: [...c.members],
    params: {},
    proposals: [],
    votes: c.members.map(() => null),
  }
}
