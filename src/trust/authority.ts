/**
 * The signed-record-with-authority check: one place that decides whether a record a peer sent was
 * signed by whom it claims, whether that signer may sign records of this kind for this subject, and
 * whether its revision follows the last one accepted within a bounded step.
 *
 * Holder updates use it (src/storage/keeper/holder-update-inbox.ts); KV operations, DAG vertices, votes and
 * receipts are to use it too. The caller decodes its own wire format and hands over the exact signed
 * bytes (already domain-separated by that format), the signature and the signer's PeerId; the rules
 * (who may sign, the sequence) come from the caller's own state, never from the record.
 *
 * Checks run in this order, and the order is part of the contract:
 * 1. revision not newer than the last accepted: `REVISION_INVALID`, peerAction `ignore` (a late copy,
 *    or an honest peer that is behind; no signature work spent);
 * 2. signature: `SIGNATURE_INVALID`, peerAction `ban` (the named signer may be framed: nothing is held
 *    against it, only against the peer that sent the record);
 * 3. authority: `NOT_AUTHORIZED`, peerAction `reject`;
 * 4. revision beyond `last + maxStep` (or missing): `REVISION_INVALID`, peerAction `reject`.
 * Errors from steps 3 and 4 are raised after the signature verified, so the signer did sign the record
 * and can be held to it: {@link accountableSigner} returns it for them (and for errors a caller raises
 * later with {@link refuseVerified}), and undefined for every other error.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { bytesEqual } from '../common/bytes.ts'
import { type ErrorCode, NodusError, type PeerAction } from '../common/errors.ts'
import { type HybridPublicKey, type HybridSignature, verifyEd25519, verifyHybrid } from '../crypto/index.ts'

/** A signature over a record's signed bytes. */
export type RecordSignature =
  /** Plain Ed25519 (RFC 8032) by the key inside the signer's PeerId; 64 bytes. */
  | { scheme: 'ed25519'; signature: Uint8Array }
  /**
   * Hybrid Ed25519 + ML-DSA-65 (src/crypto/hybrid.ts; both must verify). `publicKey.ed25519` must be
   * the key inside the signer's PeerId; `publicKey.mldsa65` is taken from the record.
   */
  | { scheme: 'hybrid'; publicKey: HybridPublicKey; signature: HybridSignature }

/** A decoded record, as the check needs it. */
export interface SignedRecord {
  /** What the record is, for messages and logs: `holder update`, `kv op`, … */
  kind: string
  /** The signer's PeerId string (an Ed25519 PeerId: its key is the one that must verify). */
  signer: string
  /** The exact bytes that were signed. */
  message: Uint8Array
  signature: RecordSignature
  /** The record's sequence number, when its kind has one. */
  revision?: number | undefined
}

/** Who may sign, and which revisions follow. Built by the caller from its own state. */
export interface AuthorityRules {
  /** The PeerIds allowed to sign records of this kind for this subject (a `Set<string>` fits). */
  authority: { has(peerId: string): boolean }
  /**
   * Sequence rules: the revision must be an integer with `last < revision ≤ last + maxStep`.
   * Absent: the kind has no sequence and `revision` is not looked at.
   */
  sequence?: { last: number; maxStep: number }
}

/** A record that passed the check. */
export interface VerifiedRecord {
  kind: string
  signer: string
  /** The revision, when sequence rules applied. */
  revision: number | undefined
}

/** Authority that admits any signer whose signature verifies. */
export const ANY_SIGNER: AuthorityRules['authority'] = Object.freeze({ has: () => true })

const ACCOUNTABLE = 'accountableSigner'

/**
 * Verify a record's signature against its signer's PeerId (and, for hybrid records, the ML-DSA-65 key
 * it carries). Pure and synchronous.
 *
 * @throws NodusError `SIGNATURE_INVALID` (peerAction `ban`) when the signer is not an Ed25519 PeerId,
 *   the hybrid record's Ed25519 key is not the PeerId's, or the signature does not verify
 */
export function verifyRecordSignature(record: SignedRecord): void {
  const bad = (why: string): NodusError =>
    new NodusError('SIGNATURE_INVALID', `${record.kind}: ${why}`, {
      peerAction: 'ban',
      details: { kind: record.kind, signer: String(record.signer).slice(0, 128) },
    })
  let key: Uint8Array | undefined
  try {
    const peer = peerIdFromString(record.signer)
    key = peer.type === 'Ed25519' ? peer.publicKey?.raw : undefined
  } catch {
    key = undefined
  }
  if (key === undefined) throw bad('the signer is not an Ed25519 PeerId')
  const sig = record.signature
  if (sig.scheme === 'ed25519') {
    if (!verifyEd25519(key, record.message, sig.signature)) throw bad('signature does not verify')
    return
  }
  if (!(sig.publicKey?.ed25519 instanceof Uint8Array) || !bytesEqual(sig.publicKey.ed25519, key))
    throw bad('the signing key is not the one in the signer’s PeerId')
  if (!verifyHybrid(sig.publicKey, record.message, sig.signature)) throw bad('signature does not verify')
}

/**
 * The signed-record-with-authority check (order of checks and what each error means: module doc).
 *
 * @param record - the decoded record (untrusted)
 * @param rules - from the caller's own state
 * @returns the signer and revision of a record that passed
 * @throws NodusError `REVISION_INVALID` (peerAction `ignore`, `details.reason` `stale`) when the revision
 *   is not newer than `rules.sequence.last`
 * @throws NodusError `SIGNATURE_INVALID` (peerAction `ban`) as {@link verifyRecordSignature}
 * @throws NodusError `NOT_AUTHORIZED` (peerAction `reject`, accountable) when `rules.authority` does not
 *   have the signer
 * @throws NodusError `REVISION_INVALID` (peerAction `reject`, accountable, `details.reason` `too-far` or
 *   `missing`) when the revision is above `last + maxStep`, or absent or not a safe integer
 */
export function checkSignedRecord(record: SignedRecord, rules: AuthorityRules): VerifiedRecord {
  const seq = rules.sequence
  const revision = record.revision
  const known = typeof revision === 'number' && Number.isSafeInteger(revision)
  if (seq !== undefined && known && revision <= seq.last) {
    throw new NodusError(
      'REVISION_INVALID',
      `${record.kind}: revision ${revision} is not newer than ${seq.last}`,
      {
        peerAction: 'ignore',
        details: { kind: record.kind, reason: 'stale', revision, last: seq.last },
      },
    )
  }
  verifyRecordSignature(record)
  const verified: VerifiedRecord = {
    kind: record.kind,
    signer: record.signer,
    revision: seq === undefined ? undefined : (revision as number),
  }
  if (!rules.authority.has(record.signer)) {
    throw refuseVerified(verified, 'NOT_AUTHORIZED', 'the signer has no authority over this record')
  }
  if (seq !== undefined) {
    if (!known) throw refuseVerified(verified, 'REVISION_INVALID', 'no valid revision', { reason: 'missing' })
    if (revision > seq.last + seq.maxStep) {
      throw refuseVerified(
        verified,
        'REVISION_INVALID',
        `revision ${revision} jumps more than ${seq.maxStep} past ${seq.last}`,
        { reason: 'too-far', revision, last: seq.last },
      )
    }
  }
  return verified
}

/**
 * An error for a record refused after its signature verified (the signer is accountable: see
 * {@link accountableSigner}). Use it for checks a caller makes after {@link checkSignedRecord}, such
 * as whether the record applies to the caller's state.
 *
 * @param peerAction - default `reject`
 */
export function refuseVerified(
  verified: VerifiedRecord,
  code: ErrorCode,
  message: string,
  details: Record<string, unknown> = {},
  peerAction: PeerAction = 'reject',
): NodusError {
  return new NodusError(code, `${verified.kind}: ${message}`, {
    peerAction,
    details: { ...details, kind: verified.kind, signer: verified.signer, [ACCOUNTABLE]: verified.signer },
  })
}

/**
 * The signer a refusal can be held against: set only on errors raised after the record's signature
 * verified ({@link checkSignedRecord} steps 3 and 4, {@link refuseVerified}); undefined otherwise.
 */
export function accountableSigner(err: unknown): string | undefined {
  if (!(err instanceof NodusError)) return undefined
  const s = err.details[ACCOUNTABLE]
  return typeof s === 'string' ? s : undefined
}
