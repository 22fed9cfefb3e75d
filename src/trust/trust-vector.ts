/**
 * Signed trust vectors: the local-trust row a peer publishes so others can run EigenTrust over it.
 *
 * Body (dag-cbor map, exactly these keys):
 *
 * | key | type | meaning |
 * |---|---|---|
 * | `v` | uint | format version, 1 |
 * | `issuer` | text | the issuer's PeerId (Ed25519, base58btc), ≤ 128 chars |
 * | `seq` | uint | sequence (epoch) number; strictly increasing per issuer |
 * | `ts` | uint | issue time, ms since the Unix epoch |
 * | `entries` | list of `[peer: text, weight: uint]` | ≤ 256 entries, peers strictly ascending (no duplicates), never the issuer; weight in [1, 1,000,000], the share of the row in parts per million (Σ ≤ 1,000,000) |
 *
 * A signed record of src/crypto/signed-record.ts: the envelope `{ body, sig }` carries the issuer's
 * Ed25519 signature over dag-cbor `{ domain: "nodus/trust-vector/v1", body }`. At most 32 KiB encoded.
 * Integer weights keep the encoding exact and free of floats; a receiver normalises them anyway.
 */
import { NodusError } from '../common/errors.ts'
import {
  checkFreshness,
  type Ed25519Signer,
  type Fail,
  type FreshnessOptions,
  readInt,
  readList,
  readMap,
  readPeerId,
  SignedRecordCodec,
  SignedRecordInbox,
  sequencedInboxOptions,
} from '../crypto/index.ts'

/** Domain separation string signed with every trust vector. */
export const TRUST_VECTOR_DOMAIN = 'nodus/trust-vector/v1'
/** Most entries in one trust vector (N). */
export const MAX_TRUST_VECTOR_ENTRIES = 256
/** Largest encoded trust vector accepted, bytes (256 entries of a 52-char PeerId and a weight ≈ 15 KiB). */
export const MAX_TRUST_VECTOR_BYTES = 32 * 1024
/** Weights are parts per million of the issuer's row. */
export const TRUST_WEIGHT_SCALE = 1_000_000

/** A trust vector (the body of the signed message). */
export interface TrustVector {
  /** Issuer PeerId string (Ed25519). */
  issuer: string
  /** Sequence (epoch) number, strictly increasing per issuer. */
  seq: number
  /** Issue time, ms since the Unix epoch. */
  timestampMs: number
  /** `[peer, weight]`, weight in parts per million of the row, peers strictly ascending. */
  entries: Array<[string, number]>
}

/** A decoded (and, from {@link openTrustVector}, verified) trust vector with its wire bytes. */
export interface SignedTrustVector {
  vector: TrustVector
  /** Ed25519 signature, 64 bytes. */
  signature: Uint8Array
  /** The envelope bytes as sent. */
  bytes: Uint8Array
}

function bodyOf(v: TrustVector): Record<string, unknown> {
  return { v: 1, issuer: v.issuer, seq: v.seq, ts: v.timestampMs, entries: v.entries }
}

/** The trust vector codec accepting at most `maxEntries` entries (at most 256). */
function trustVectorCodec(maxEntries: number): SignedRecordCodec<TrustVector> {
  return new SignedRecordCodec<TrustVector>({
    kind: 'trust vector',
    code: 'TRUST_VECTOR_INVALID',
    domain: TRUST_VECTOR_DOMAIN,
    scheme: 'ed25519',
    maxBytes: MAX_TRUST_VECTOR_BYTES,
    encodeBody: bodyOf,
    decodeBody: (body, fail) => validateBody(body, fail, maxEntries),
    signer: (v) => v.issuer,
  })
}

/** Trust vectors as signed records (src/crypto/signed-record.ts). */
export const TRUST_VECTOR_RECORD: SignedRecordCodec<TrustVector> = trustVectorCodec(MAX_TRUST_VECTOR_ENTRIES)

/** The codec for `maxEntries` (the shared one for the default). */
function codecFor(maxEntries: number): SignedRecordCodec<TrustVector> {
  return maxEntries === MAX_TRUST_VECTOR_ENTRIES ? TRUST_VECTOR_RECORD : trustVectorCodec(maxEntries)
}

/**
 * Build a trust vector from local trust: keep the `maxEntries` highest positive values (ties by peer),
 * drop the issuer itself, quantise each to parts per million of their sum (floor, so Σ ≤ 1,000,000;
 * entries that round to 0 are dropped) and sort by peer.
 *
 * @param localTrust - `[peer, s_ij]` pairs, e.g. `InteractionRecords.entries()`
 * @param maxEntries - default {@link MAX_TRUST_VECTOR_ENTRIES} (256), at most that
 * @throws NodusError `INVALID_ARGUMENT` on a bad seq, timestamp or maxEntries
 */
export function trustVectorFromLocalTrust(
  issuer: string,
  seq: number,
  timestampMs: number,
  localTrust: Iterable<readonly [string, number]>,
  maxEntries = MAX_TRUST_VECTOR_ENTRIES,
): TrustVector {
  if (!Number.isSafeInteger(seq) || seq < 0)
    throw new NodusError('INVALID_ARGUMENT', 'seq must be an integer ≥ 0')
  if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) {
    throw new NodusError('INVALID_ARGUMENT', 'timestampMs must be an integer ≥ 0')
  }
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 0 || maxEntries > MAX_TRUST_VECTOR_ENTRIES) {
    throw new NodusError('INVALID_ARGUMENT', `maxEntries must be in [0, ${MAX_TRUST_VECTOR_ENTRIES}]`)
  }
  const positive: Array<[string, number]> = []
  for (const [peer, s] of localTrust) {
    if (peer !== issuer && s > 0 && Number.isFinite(s)) positive.push([peer, s])
  }
  positive.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  positive.length = Math.min(positive.length, maxEntries)
  const sum = positive.reduce((acc, [, s]) => acc + s, 0)
  const entries: Array<[string, number]> = []
  for (const [peer, s] of positive) {
    const w = Math.floor((s / sum) * TRUST_WEIGHT_SCALE)
    if (w >= 1) entries.push([peer, w])
  }
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  return { issuer, seq, timestampMs, entries }
}

/**
 * Sign a trust vector with the issuer's Ed25519 key.
 *
 * @throws NodusError `INVALID_ARGUMENT` when `signer` is not `vector.issuer`, or the vector is malformed
 */
export async function signTrustVector(
  vector: TrustVector,
  signer: Ed25519Signer,
): Promise<SignedTrustVector> {
  const { signature, bytes } = await TRUST_VECTOR_RECORD.signAs(vector, signer.peerId, (m) =>
    signer.ed25519.sign(m),
  )
  return { vector, signature, bytes }
}

function validateBody(body: Record<string, unknown>, fail: Fail, maxEntries: number): TrustVector {
  const b = readMap(body, 'body', ['entries', 'issuer', 'seq', 'ts', 'v'], fail)
  readInt(b.v, 'v', 1, 1, fail)
  const issuer = readPeerId(b.issuer, 'issuer', fail)
  const seq = readInt(b.seq, 'seq', 0, Number.MAX_SAFE_INTEGER, fail)
  const timestampMs = readInt(b.ts, 'ts', 0, Number.MAX_SAFE_INTEGER, fail)
  const list = readList(b.entries, 'entries', Math.min(maxEntries, MAX_TRUST_VECTOR_ENTRIES), fail)
  const entries: Array<[string, number]> = []
  let prev = ''
  let sum = 0
  for (const item of list) {
    const pair = readList(item, 'entry', 2, fail)
    if (pair.length !== 2) throw fail('entry must be [peer, weight]')
    const peer = readPeerId(pair[0], 'entry peer', fail)
    if (peer === issuer) throw fail('issuer rates itself')
    if (entries.length > 0 && !(peer > prev)) throw fail('entries must be sorted by peer without duplicates')
    const weight = readInt(pair[1], 'entry weight', 1, TRUST_WEIGHT_SCALE, fail)
    sum += weight
    entries.push([peer, weight])
    prev = peer
  }
  if (sum > TRUST_WEIGHT_SCALE) throw fail(`weights add up to more than ${TRUST_WEIGHT_SCALE}`)
  return { issuer, seq, timestampMs, entries }
}

/**
 * Decode a trust vector from untrusted bytes and check its structure (not its signature or age: see
 * {@link openTrustVector}).
 *
 * @param maxEntries - reject vectors with more entries; default and upper bound 256
 * @throws NodusError `TRUST_VECTOR_INVALID` (peerAction `reject`) on anything malformed
 */
export function decodeTrustVector(
  bytes: Uint8Array,
  maxEntries = MAX_TRUST_VECTOR_ENTRIES,
): SignedTrustVector {
  const { value, signature } = codecFor(maxEntries).decode(bytes)
  return { vector: value, signature, bytes }
}

/**
 * Check a decoded trust vector's age and signature.
 *
 * @throws NodusError `TRUST_VECTOR_INVALID` (peerAction `ignore`) when stale or from the future,
 *   (`reject`) when the issuer is not an Ed25519 PeerId
 * @throws NodusError `SIGNATURE_INVALID` (peerAction `ban`) when the signature does not verify
 */
export async function verifyTrustVector(
  signed: SignedTrustVector,
  freshness: FreshnessOptions,
): Promise<void> {
  checkFreshness(signed.vector.timestampMs, freshness, TRUST_VECTOR_RECORD.fail)
  TRUST_VECTOR_RECORD.verify({ value: signed.vector, signature: signed.signature })
}

/**
 * Decode, validate and verify a trust vector from untrusted bytes.
 *
 * @throws NodusError `TRUST_VECTOR_INVALID` or `SIGNATURE_INVALID` (see above)
 */
export async function openTrustVector(
  bytes: Uint8Array,
  freshness: FreshnessOptions,
  maxEntries = MAX_TRUST_VECTOR_ENTRIES,
): Promise<SignedTrustVector> {
  const signed = decodeTrustVector(bytes, maxEntries)
  await verifyTrustVector(signed, freshness)
  return signed
}

/** What {@link TrustVectorInbox} needs. */
export interface TrustVectorInboxDeps {
  /** Milliseconds since the Unix epoch. */
  clock: { now(): number }
}

/** Limits of {@link TrustVectorInbox}; defaults in {@link DEFAULT_TRUST_VECTOR_INBOX_OPTIONS}. */
export interface TrustVectorInboxOptions {
  /** One vector per issuer per `intervalMs` on average. Default 60,000 (1 min). */
  intervalMs: number
  /** Vectors an issuer may send back to back. Default 3. */
  burst: number
  /** Issuers tracked (rate-limit buckets and last sequence numbers). Default 10,000. */
  maxIssuers: number
  /** Oldest vector accepted, ms. Default 3,600,000 (1 h). */
  maxAgeMs: number
  /** Clock skew tolerated, ms. Default 60,000. */
  maxFutureSkewMs: number
  /** Most entries accepted per vector. Default 256. */
  maxEntries: number
}

/** Defaults of {@link TrustVectorInboxOptions} (docs/TRUST.md). */
export const DEFAULT_TRUST_VECTOR_INBOX_OPTIONS: Readonly<TrustVectorInboxOptions> = Object.freeze({
  intervalMs: 60_000,
  burst: 3,
  maxIssuers: 10_000,
  maxAgeMs: 3_600_000,
  maxFutureSkewMs: 60_000,
  maxEntries: MAX_TRUST_VECTOR_ENTRIES,
})

/**
 * The receiving side, a {@link SignedRecordInbox}: decode → replay check (seq must grow) and rate limit
 * per issuer (checked, not yet spent) → freshness and signature → spend a token and remember seq. A
 * verified vector's entries go to `EigenTrust.setLocalTrust(vector.issuer, vector.entries)`.
 */
export class TrustVectorInbox {
  readonly #inbox: SignedRecordInbox<TrustVector>

  /** @throws NodusError `INVALID_ARGUMENT` on bad limits */
  constructor(deps: TrustVectorInboxDeps, options: Partial<TrustVectorInboxOptions> = {}) {
    const o = { ...DEFAULT_TRUST_VECTOR_INBOX_OPTIONS, ...options }
    this.#inbox = new SignedRecordInbox(deps, codecFor(o.maxEntries), sequencedInboxOptions(o))
  }

  /** The last accepted sequence number of `issuer`. */
  lastSeq(issuer: string): number | undefined {
    return this.#inbox.lastSeq(issuer)
  }

  /**
   * Accept a trust vector from untrusted bytes.
   *
   * @throws NodusError `TRUST_VECTOR_INVALID` (malformed: `reject`; replayed, stale or future: `ignore`)
   * @throws NodusError `RATE_LIMITED` (peerAction `ignore`) when the issuer exceeds its rate
   * @throws NodusError `SIGNATURE_INVALID` (peerAction `ban`)
   */
  async receive(bytes: Uint8Array): Promise<SignedTrustVector> {
    const { value, signature } = await this.#inbox.receive(bytes)
    return { vector: value, signature, bytes }
  }
}
