/**
 * The receiving side of signed records: who may sign a record (authority), replays (a sequence per
 * signer or subject, or a time window), and a rate limit per signer, around the codec's signature
 * check (src/crypto/signed-record.ts). Every bound is explicit and every map is bounded.
 *
 * Two forms:
 * - {@link checkSignedRecord} / {@link checkDecodedRecord}: stateless, with the rules (who may sign,
 *   the last revision) built by the caller from its own state for one subject (holder updates: the
 *   manifest's uploader and the peers responsible for it, the revision a keeper keeps);
 * - {@link SignedRecordInbox}: stateful, for records that are their signer's own news (trust vectors,
 *   capacity reports): bytes in, a verified record out, with replay and rate state per signer.
 *
 * Checks run in this order, and the order is part of the contract (cheap and blameless first, so
 * nothing is spent on a replay and forgeries cannot drain an honest signer's tokens):
 * 1. decode: the type's code, peerAction `reject`;
 * 2. replay: a seq not above the signer's last (the type's code, `ignore`, `details.reason` `replay`),
 *    a record already received within its window (same), or a revision not newer than
 *    `rules.sequence.last` (`REVISION_INVALID`, `ignore`, `stale`: a late copy, or an honest peer
 *    that is behind);
 * 3. rate: `RATE_LIMITED`, `ignore` (checked, not spent);
 * 4. freshness: the type's code, `ignore` (clock skew or a delayed relay);
 * 5. signature: `SIGNATURE_INVALID`, `ban` (held against the sending peer: the named signer may be
 *    framed) or, for a signer that is no Ed25519 PeerId, per the type;
 * 6. authority: `NOT_AUTHORIZED`, `reject`;
 * 7. revision beyond `last + maxStep` (or missing): `REVISION_INVALID`, `reject`;
 * then a token is spent and the seq or record remembered. Errors from steps 6 and 7 are raised after
 * the signature verified, so the signer did sign the record and can be held to it:
 * {@link accountableSigner} returns it for them (and for errors a caller raises later with
 * {@link refuseVerified}), and undefined for every other error.
 */
import type { Clock } from '../common/clock.ts'
import { type ErrorCode, isNodusError, NodusError, type PeerAction } from '../common/errors.ts'
import { type TokenBucketDeps, TokenBucketLimiter } from '../common/token-bucket.ts'
import { blake3 } from './blake3.ts'
import {
  checkFreshness,
  type DecodedRecord,
  type SignatureScheme,
  type SignedMessage,
  type SignedRecordCodec,
  type VerifiableRecord,
  verifyRecordSignature,
} from './signed-record.ts'

/** A record whose signed bytes are already built, with its revision, for {@link checkSignedRecord}. */
export interface SignedRecord extends SignedMessage {
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

/** Steps 2 (revision), 5, 6 and 7 of the module doc, with `verify` as step 5. */
function admit(
  kind: string,
  signer: string,
  revision: number | undefined,
  rules: AuthorityRules,
  verify: () => void,
): VerifiedRecord {
  const seq = rules.sequence
  const known = typeof revision === 'number' && Number.isSafeInteger(revision)
  if (seq !== undefined && known && revision <= seq.last) {
    throw new NodusError('REVISION_INVALID', `${kind}: revision ${revision} is not newer than ${seq.last}`, {
      peerAction: 'ignore',
      details: { kind, reason: 'stale', revision, last: seq.last },
    })
  }
  verify()
  const verified: VerifiedRecord = {
    kind,
    signer,
    revision: seq === undefined ? undefined : (revision as number),
  }
  if (!rules.authority.has(signer)) {
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
 * The signed-record-with-authority check over a record whose signed bytes are built (order of checks
 * and what each error means: module doc).
 *
 * @param record - the decoded record (untrusted)
 * @param rules - from the caller's own state
 * @returns the signer and revision of a record that passed
 * @throws NodusError `REVISION_INVALID` (peerAction `ignore`, `details.reason` `stale`) when the revision
 *   is not newer than `rules.sequence.last`
 * @throws NodusError `SIGNATURE_INVALID` (peerAction `ban`) as `verifyRecordSignature`
 * @throws NodusError `NOT_AUTHORIZED` (peerAction `reject`, accountable) when `rules.authority` does not
 *   have the signer
 * @throws NodusError `REVISION_INVALID` (peerAction `reject`, accountable, `details.reason` `too-far` or
 *   `missing`) when the revision is above `last + maxStep`, or absent or not a safe integer
 */
export function checkSignedRecord(record: SignedRecord, rules: AuthorityRules): VerifiedRecord {
  return admit(record.kind, record.signer, record.revision, rules, () => verifyRecordSignature(record))
}

/**
 * {@link checkSignedRecord} for a record decoded by `codec`: its signature is checked with
 * `codec.verify`.
 *
 * @param revision - the record's revision, when `rules.sequence` applies
 * @throws as {@link checkSignedRecord}, and as `codec.verify` for the signature
 */
export function checkDecodedRecord<T, S extends SignatureScheme>(
  codec: SignedRecordCodec<T, S>,
  record: VerifiableRecord<T, S>,
  rules: AuthorityRules,
  revision?: number,
): VerifiedRecord {
  return admit(codec.type.kind, codec.type.signer(record.value), revision, rules, () => codec.verify(record))
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
 * verified ({@link checkSignedRecord} steps 6 and 7, {@link refuseVerified}); undefined otherwise.
 */
export function accountableSigner(err: unknown): string | undefined {
  if (!(err instanceof NodusError)) return undefined
  const s = err.details[ACCOUNTABLE]
  return typeof s === 'string' ? s : undefined
}

/** Options of {@link IssuerGate}. */
export interface IssuerGateOptions {
  /** One message per issuer per `intervalMs` on average. Absent (with `burst`): no rate limit. */
  intervalMs?: number
  /** Messages an issuer may send back to back. Absent (with `intervalMs`): no rate limit. */
  burst?: number
  /** Issuers tracked (buckets and last sequence numbers); least recently used forgotten beyond it. */
  maxIssuers: number
}

/**
 * Admission per issuer for signed messages: a replay check (seq must grow, when a seq is given) and a
 * token bucket (when a rate is set). Use it in two steps around signature verification:
 * {@link IssuerGate.check} before (cheap, spends nothing), {@link IssuerGate.commit} after the signature
 * verified. Tokens are spent only for verified messages, so forgeries naming an honest issuer cannot
 * drain its bucket. Forgetting an issuer (beyond `maxIssuers`) forgets its last seq too, which lets an
 * old message of it be replayed once within its freshness window; size `maxIssuers` above the number of
 * peers you expect.
 */
export class IssuerGate {
  readonly #limiter: TokenBucketLimiter | undefined
  readonly #lastSeq = new Map<string, number>()
  readonly #maxIssuers: number
  readonly #code: ErrorCode
  readonly #what: string

  /**
   * @param code - the error code of a replay (the message type's), e.g. `TRUST_VECTOR_INVALID`
   * @param what - the message type, for error messages
   * @throws NodusError `INVALID_ARGUMENT` on a bad rate or `maxIssuers` < 1
   */
  constructor(deps: TokenBucketDeps, options: IssuerGateOptions, code: ErrorCode, what: string) {
    if (!Number.isSafeInteger(options.maxIssuers) || options.maxIssuers < 1) {
      throw new NodusError('INVALID_ARGUMENT', 'maxIssuers must be an integer ≥ 1')
    }
    this.#limiter =
      options.intervalMs === undefined && options.burst === undefined
        ? undefined
        : new TokenBucketLimiter(deps, {
            intervalMs: options.intervalMs ?? 0,
            burst: options.burst ?? 0,
            maxKeys: options.maxIssuers,
          })
    this.#maxIssuers = options.maxIssuers
    this.#code = code
    this.#what = what
  }

  /** The last committed seq of `issuer`. */
  lastSeq(issuer: string): number | undefined {
    return this.#lastSeq.get(issuer)
  }

  /**
   * Would a message `seq` from `issuer` be admitted? Spends nothing.
   *
   * @throws NodusError with the gate's code (peerAction `ignore`, `details.reason` `replay`) on a replay
   * @throws NodusError `RATE_LIMITED` (peerAction `ignore`)
   */
  check(issuer: string, seq?: number): void {
    const last = this.#lastSeq.get(issuer)
    if (seq !== undefined && last !== undefined && seq <= last) {
      throw new NodusError(this.#code, `${this.#what}: seq ${seq} is not above ${last} (replay)`, {
        details: { issuer, seq, lastSeq: last, reason: 'replay' },
        peerAction: 'ignore',
      })
    }
    if (this.#limiter !== undefined && this.#limiter.tokens(issuer) < 1) {
      throw new NodusError('RATE_LIMITED', `${this.#what}s from ${issuer} exceed the rate limit`, {
        details: { issuer },
        peerAction: 'ignore',
      })
    }
  }

  /**
   * Admit a verified message: re-checks (another message may have been admitted meanwhile), spends a
   * token and records seq.
   *
   * @throws as {@link IssuerGate.check}
   */
  commit(issuer: string, seq?: number): void {
    this.check(issuer, seq)
    this.#limiter?.take(issuer)
    if (seq === undefined) return
    this.#lastSeq.delete(issuer)
    this.#lastSeq.set(issuer, seq)
    if (this.#lastSeq.size > this.#maxIssuers) {
      const oldest = this.#lastSeq.keys().next()
      if (oldest.done !== true) this.#lastSeq.delete(oldest.value)
    }
  }
}

/** Records accepted within their freshness window, by digest of their signed bytes; bounded. */
class SeenRecords {
  readonly #expiresAt = new Map<string, number>()
  readonly #max: number

  constructor(max: number) {
    this.#max = max
  }

  has(key: string, nowMs: number): boolean {
    const e = this.#expiresAt.get(key)
    return e !== undefined && e >= nowMs
  }

  /** Remember `key` until `expiresAtMs`; forget expired keys and, beyond the bound, the oldest. */
  add(key: string, expiresAtMs: number, nowMs: number): void {
    this.#expiresAt.delete(key)
    this.#expiresAt.set(key, expiresAtMs)
    for (const [k, e] of this.#expiresAt) {
      if (this.#expiresAt.size <= this.#max && e >= nowMs) break
      this.#expiresAt.delete(k)
    }
  }
}

/** Optional counters of an inbox (a `prom-client` counter behind each fits). */
export interface SignedRecordInboxMetrics {
  /** A record passed every check. */
  accepted(kind: string): void
  /** A record was refused: its error code and what to do with the sending peer. */
  refused(kind: string, code: ErrorCode | undefined, peerAction: PeerAction | undefined): void
}

/** What {@link SignedRecordInbox} needs. */
export interface SignedRecordInboxDeps {
  /** Milliseconds since the Unix epoch (rate limits, freshness). */
  clock: Clock
  metrics?: SignedRecordInboxMetrics
}

/** Policy and bounds of a {@link SignedRecordInbox}; every field but `maxSigners` is optional. */
export interface SignedRecordInboxOptions<T> {
  /**
   * Replay protection. `seq`: the record's sequence number must be above the last one accepted from its
   * signer (kept for `maxSigners` signers). `window` (needs `freshness`): a record (by BLAKE3 of its
   * signed bytes) is accepted once until it ages out; at most `maxRecords` are remembered, the oldest
   * forgotten first (it may then be replayed within its window: size it above rate × window). Absent:
   * no replay check.
   */
  replay?: { by: 'seq'; seqOf(value: T): number } | { by: 'window'; maxRecords: number }
  /**
   * Records with a timestamp (ms since the epoch) outside `[now − maxAgeMs, now + maxFutureSkewMs]`
   * are ignored.
   */
  freshness?: { timestampOf(value: T): number; maxAgeMs: number; maxFutureSkewMs: number }
  /** One record per signer per `intervalMs` on average, `burst` back to back. Absent: no limit. */
  rateLimit?: { intervalMs: number; burst: number }
  /** May `signer` sign `value`? Asked after the signature verified. Absent: any signer. */
  authority?(signer: string, value: T): boolean
  /** Signers tracked (rate buckets, last seqs); least recently used forgotten beyond it. */
  maxSigners: number
}

/** Limits of an inbox for records that are their signer's own numbered, timestamped news. */
export interface SequencedInboxLimits {
  /** One record per signer per `intervalMs` on average. */
  intervalMs: number
  /** Records a signer may send back to back. */
  burst: number
  /** Signers tracked (rate buckets and last seqs). */
  maxIssuers: number
  /** Oldest record accepted, ms. */
  maxAgeMs: number
  /** Clock skew tolerated, ms. */
  maxFutureSkewMs: number
}

/**
 * Inbox options for records carrying a per-signer `seq` and a `timestampMs` (trust vectors, capacity
 * reports): seq replay, freshness and a rate limit per signer, with `limits`.
 */
export function sequencedInboxOptions<T extends { seq: number; timestampMs: number }>(
  limits: SequencedInboxLimits,
): SignedRecordInboxOptions<T> {
  return {
    replay: { by: 'seq', seqOf: (v) => v.seq },
    freshness: {
      timestampOf: (v) => v.timestampMs,
      maxAgeMs: limits.maxAgeMs,
      maxFutureSkewMs: limits.maxFutureSkewMs,
    },
    rateLimit: { intervalMs: limits.intervalMs, burst: limits.burst },
    maxSigners: limits.maxIssuers,
  }
}

/**
 * The receiving side for one record type: bytes in, a verified record out, in the order of the module
 * doc. Memory is bounded by `maxSigners` (and `replay.maxRecords`).
 */
export class SignedRecordInbox<T, S extends SignatureScheme = 'ed25519'> {
  readonly #codec: SignedRecordCodec<T, S>
  readonly #deps: SignedRecordInboxDeps
  readonly #options: SignedRecordInboxOptions<T>
  readonly #gate: IssuerGate
  readonly #seen: SeenRecords | undefined

  /** @throws NodusError `INVALID_ARGUMENT` on bad bounds, or a `window` replay without `freshness` */
  constructor(
    deps: SignedRecordInboxDeps,
    codec: SignedRecordCodec<T, S>,
    options: SignedRecordInboxOptions<T>,
  ) {
    this.#codec = codec
    this.#deps = deps
    this.#options = options
    const rate = options.rateLimit
    this.#gate = new IssuerGate(
      deps,
      { ...(rate === undefined ? {} : rate), maxIssuers: options.maxSigners },
      codec.type.code,
      codec.type.kind,
    )
    const replay = options.replay
    if (replay?.by === 'window') {
      if (options.freshness === undefined)
        throw new NodusError('INVALID_ARGUMENT', 'a replay window needs freshness bounds')
      if (!Number.isSafeInteger(replay.maxRecords) || replay.maxRecords < 1)
        throw new NodusError('INVALID_ARGUMENT', 'replay.maxRecords must be an integer ≥ 1')
      this.#seen = new SeenRecords(replay.maxRecords)
    }
  }

  /** The last accepted sequence number of `signer` (`replay.by` `seq`). */
  lastSeq(signer: string): number | undefined {
    return this.#gate.lastSeq(signer)
  }

  /**
   * Accept a record from untrusted bytes.
   *
   * @returns the decoded, verified record
   * @throws NodusError the type's code (malformed: `reject`; replayed, stale or future: `ignore`),
   *   `RATE_LIMITED` (`ignore`), `SIGNATURE_INVALID` (`ban`), `NOT_AUTHORIZED` (`reject`, accountable)
   */
  async receive(bytes: Uint8Array): Promise<DecodedRecord<T, S>> {
    const codec = this.#codec
    const { freshness, replay, authority } = this.#options
    try {
      const record = codec.decode(bytes)
      const { value } = record
      const signer = codec.type.signer(value)
      const seq = replay?.by === 'seq' ? replay.seqOf(value) : undefined
      const nowMs = this.#deps.clock.now()
      const digest =
        this.#seen === undefined ? undefined : Buffer.from(blake3(codec.signedBytes(record))).toString('hex')
      if (digest !== undefined && this.#seen?.has(digest, nowMs) === true)
        throw codec.fail('already received (replay)', 'ignore', { reason: 'replay' })
      this.#gate.check(signer, seq)
      const timestampMs = freshness?.timestampOf(value)
      if (freshness !== undefined && timestampMs !== undefined)
        checkFreshness(timestampMs, { nowMs, ...freshness }, codec.fail)
      const rules: AuthorityRules = {
        authority: authority === undefined ? ANY_SIGNER : { has: (peer) => authority(peer, value) },
      }
      checkDecodedRecord(codec, record, rules)
      this.#gate.commit(signer, seq)
      if (digest !== undefined && freshness !== undefined && timestampMs !== undefined)
        this.#seen?.add(digest, timestampMs + freshness.maxAgeMs, nowMs)
      this.#deps.metrics?.accepted(codec.type.kind)
      return record
    } catch (err) {
      const nodus = isNodusError(err) ? err : undefined
      this.#deps.metrics?.refused(codec.type.kind, nodus?.code, nodus?.peerAction)
      throw err
    }
  }
}
