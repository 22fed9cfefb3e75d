/**
 * Signed records: one codec for every signed message type (trust vectors, capacity reports, holder
 * updates, storage orders, commits, pins and grants; KV operations, DAG vertices, votes, receipts and
 * key records next). A type is defined once ({@link SignedRecordType}: domain, scheme, size bound,
 * body encoder and strict decoder); the codec does the rest the same way for all of them.
 *
 * Wire form (dag-cbor, a format: changing it is a new domain version): the envelope `{ body, sig }`,
 * where `body` is the type's map and `sig` is
 * - `ed25519`: 64 bytes, the signer's pure Ed25519 signature (RFC 8032 §5.1.6) of the dag-cbor
 *   encoding of `{ domain, body }`, by the key inside the signer's PeerId (an identity multihash that
 *   embeds it, so the PeerId is all a verifier needs);
 * - `hybrid`: `{ ed25519: 64 bytes, mldsa65: 3309 bytes }`, a hybrid signature (src/crypto/hybrid.ts,
 *   both halves must verify) of the same `{ domain, body }` bytes; the record carries the signer's
 *   hybrid public key, whose Ed25519 half must be the key inside the signer's PeerId.
 * The domain (`nodus/<what>/v<n>`) is signed but never sent, so a signature made for one type never
 * verifies as another.
 *
 * Errors (all {@link NodusError}, each with a `peerAction` for peer scoring):
 * - malformed (size, dag-cbor, envelope, signature shape, body): the type's `code`, `reject`;
 * - a signer that is not an Ed25519 PeerId: the type's `code`, `reject` (or `SIGNATURE_INVALID`, `ban`,
 *   with {@link SignedRecordType.unusableSigner} `ban`);
 * - a signature that does not verify, or a hybrid key that is not the PeerId's: `SIGNATURE_INVALID`,
 *   `ban` (held against the peer that sent it, never against the named signer, who may be framed).
 *
 * Who may sign what, replays and rate limits are the inbox's (src/crypto/signed-record-inbox.ts).
 * How to add a type: src/crypto/README.md.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import { bytesEqual } from '../common/bytes.ts'
import { type ErrorCode, NodusError, type PeerAction } from '../common/errors.ts'
import {
  ED25519_SIGNATURE_BYTES,
  type HybridPublicKey,
  type HybridSignature,
  MLDSA65_SIGNATURE_BYTES,
  verifyEd25519,
  verifyHybrid,
} from './hybrid.ts'

/** Longest PeerId string accepted (base58btc Ed25519 PeerIds are 52 characters). */
export const MAX_PEER_ID_CHARS = 128

/** Builds a typed error for one record type (`reject` unless told; `details.reason` is the message). */
export type Fail = (message: string, peerAction?: PeerAction, details?: Record<string, unknown>) => NodusError

/** An error factory: `code`, message `<what>: <message>`, peerAction `reject` unless given. */
export function failWith(code: ErrorCode, what: string): Fail {
  return (message, peerAction = 'reject', details = {}) =>
    new NodusError(code, `${what}: ${message}`, { peerAction, details: { reason: message, ...details } })
}

/** `ed25519`: plain Ed25519 by the PeerId's key. `hybrid`: Ed25519 + ML-DSA-65 (src/crypto/hybrid.ts). */
export type SignatureScheme = 'ed25519' | 'hybrid'

/** A signature of scheme `S`: 64 bytes, or `{ ed25519, mldsa65 }`. */
export type SchemeSignature<S extends SignatureScheme> = S extends 'hybrid' ? HybridSignature : Uint8Array

/** Signs the signing bytes with the signer's key(s) (`signEd25519`, `signHybrid`, a libp2p key's `sign`). */
export type SignFn<S extends SignatureScheme> = (
  message: Uint8Array,
) => SchemeSignature<S> | Promise<SchemeSignature<S>>

/** The part of a node identity that signs Ed25519 records (a `NodeIdentity` fits). */
export interface Ed25519Signer {
  peerId: { toString(): string }
  ed25519: { sign(data: Uint8Array): Uint8Array | Promise<Uint8Array> }
}

/** A signed record type, defined once. `T` is the decoded value. */
export interface SignedRecordType<T, S extends SignatureScheme = 'ed25519'> {
  /** What the record is, for messages and logs: `trust vector`, `holder update`, … */
  kind: string
  /** Error code for a malformed record (`TRUST_VECTOR_INVALID`, `ORDER_INVALID`, …). */
  code: ErrorCode
  /** Domain separation string, `nodus/<what>/v<n>`: signed, never sent. */
  domain: string
  scheme: S
  /** Largest encoded envelope accepted, bytes. */
  maxBytes: number
  /** The body map of `value`. Must be deterministic: dag-cbor sorts the keys. */
  encodeBody(value: T): Record<string, unknown>
  /**
   * Check a body from untrusted bytes and build the value: every field typed and bounded (the
   * readers below help). Throw `fail(...)` (or another NodusError with a peerAction) on anything off.
   */
  decodeBody(body: Record<string, unknown>, fail: Fail): T
  /** The signer's PeerId string, as the record names it. */
  signer(value: T): string
  /** `hybrid` only: the signer's hybrid public key, as the record carries it. */
  hybridKey?(value: T): HybridPublicKey
  /**
   * Which body the signature is checked over. `decoded` (default): `encodeBody(value)`, so what was
   * verified is exactly what the caller gets (a field the decoder drops or truncates fails the
   * signature). `received`: the body map as received, so fields a newer version adds (and this one
   * ignores) still verify; storage orders do this.
   */
  signs?: 'decoded' | 'received'
  /**
   * `exact` (default): the envelope, and a hybrid `sig` map, have exactly their keys, and an ML-DSA-65
   * signature is 3,309 bytes. `open`: other keys are ignored and the ML-DSA-65 length is left to
   * verification (holder updates, which keepers keep on disk, were always read this way).
   */
  envelope?: 'exact' | 'open'
  /**
   * What a record naming a signer that is not an Ed25519 PeerId earns: `reject` (default; malformed,
   * the type's code) or `ban` (`SIGNATURE_INVALID`, as holder updates always did).
   */
  unusableSigner?: 'reject' | 'ban'
}

/** A record decoded from untrusted bytes: structure checked, signature not yet. */
export interface DecodedRecord<T, S extends SignatureScheme = 'ed25519'> {
  value: T
  signature: SchemeSignature<S>
  /** The body map as received. */
  body: Record<string, unknown>
  /** The envelope bytes as received. */
  bytes: Uint8Array
}

/** A record as the signature check needs it (`body` only when the type `signs: 'received'`). */
export type VerifiableRecord<T, S extends SignatureScheme> = Pick<
  DecodedRecord<T, S>,
  'value' | 'signature'
> & {
  body?: Record<string, unknown>
}

/** An encoded, signed record. */
export interface EncodedRecord<T, S extends SignatureScheme = 'ed25519'> {
  value: T
  signature: SchemeSignature<S>
  /** The envelope bytes to send or store. */
  bytes: Uint8Array
}

/** A signature over a record's signed bytes. */
export type RecordSignature =
  /** Plain Ed25519 (RFC 8032) by the key inside the signer's PeerId; 64 bytes. */
  | { scheme: 'ed25519'; signature: Uint8Array }
  /**
   * Hybrid Ed25519 + ML-DSA-65 (src/crypto/hybrid.ts; both must verify). `publicKey.ed25519` must be
   * the key inside the signer's PeerId; `publicKey.mldsa65` is taken from the record.
   */
  | { scheme: 'hybrid'; publicKey: HybridPublicKey; signature: HybridSignature }

/** A record whose signed bytes are already built, for {@link verifyRecordSignature}. */
export interface SignedMessage {
  /** What the record is, for messages and logs. */
  kind: string
  /** The signer's PeerId string (an Ed25519 PeerId: its key is the one that must verify). */
  signer: string
  /** The exact bytes that were signed. */
  message: Uint8Array
  signature: RecordSignature
}

/** The bytes a signer signs: dag-cbor of `{ domain, body }`. */
export function signingBytes(domain: string, body: Record<string, unknown>): Uint8Array {
  return dagCbor.encode({ domain, body })
}

/** The raw Ed25519 key inside `peerId`, or undefined when it is not an Ed25519 PeerId. */
export function ed25519KeyOf(peerId: string): Uint8Array | undefined {
  try {
    const peer = peerIdFromString(peerId)
    return peer.type === 'Ed25519' ? peer.publicKey?.raw : undefined
  } catch {
    return undefined
  }
}

function signatureInvalid(kind: string, signer: string, why: string): NodusError {
  return new NodusError('SIGNATURE_INVALID', `${kind}: ${why}`, {
    peerAction: 'ban',
    details: { kind, signer: String(signer).slice(0, MAX_PEER_ID_CHARS) },
  })
}

/** Verify with `key` (the signer's PeerId key, 32 bytes) or throw SIGNATURE_INVALID (ban). */
function verifyWithKey(record: SignedMessage, key: Uint8Array): void {
  const sig = record.signature
  if (sig.scheme === 'ed25519') {
    if (!verifyEd25519(key, record.message, sig.signature))
      throw signatureInvalid(record.kind, record.signer, 'signature does not verify')
    return
  }
  if (!(sig.publicKey?.ed25519 instanceof Uint8Array) || !bytesEqual(sig.publicKey.ed25519, key))
    throw signatureInvalid(
      record.kind,
      record.signer,
      'the signing key is not the one in the signer’s PeerId',
    )
  if (!verifyHybrid(sig.publicKey, record.message, sig.signature))
    throw signatureInvalid(record.kind, record.signer, 'signature does not verify')
}

/**
 * Verify a record's signature against its signer's PeerId (and, for hybrid records, the ML-DSA-65 key
 * it carries). Pure and synchronous.
 *
 * @throws NodusError `SIGNATURE_INVALID` (peerAction `ban`) when the signer is not an Ed25519 PeerId,
 *   the hybrid record's Ed25519 key is not the PeerId's, or the signature does not verify
 */
export function verifyRecordSignature(record: SignedMessage): void {
  const key = ed25519KeyOf(record.signer)
  if (key === undefined)
    throw signatureInvalid(record.kind, record.signer, 'the signer is not an Ed25519 PeerId')
  verifyWithKey(record, key)
}

/**
 * The codec of one signed record type: encode and sign, decode and check, verify.
 * Build one per type, once, at module level: `new SignedRecordCodec<MyRecord>({ ... })`.
 */
export class SignedRecordCodec<T, S extends SignatureScheme = 'ed25519'> {
  readonly type: Readonly<SignedRecordType<T, S>>
  /** The type's malformed-record error (its code, `<kind>: ` prefix): use it for checks of your own. */
  readonly fail: Fail

  /** @throws NodusError `INVALID_ARGUMENT` when a hybrid type has no `hybridKey` */
  constructor(type: SignedRecordType<T, S>) {
    if (type.scheme === 'hybrid' && type.hybridKey === undefined) {
      throw new NodusError('INVALID_ARGUMENT', `${type.kind}: a hybrid record type needs hybridKey`)
    }
    this.type = Object.freeze({ ...type })
    this.fail = failWith(type.code, type.kind)
  }

  /** The bytes the signature of `record` is checked over: dag-cbor of `{ domain, body }` (see `signs`). */
  signedBytes(record: VerifiableRecord<T, S>): Uint8Array {
    const t = this.type
    if (t.signs !== 'received') return signingBytes(t.domain, t.encodeBody(record.value))
    if (record.body === undefined)
      throw new NodusError('INVALID_ARGUMENT', `${t.kind}: the received body is needed`)
    return signingBytes(t.domain, record.body)
  }

  /**
   * Sign `value` with `sign` and encode the envelope. Does not check the value or who signs: for
   * records this node builds itself; see {@link signAs} for the checked form.
   */
  async encode(value: T, sign: SignFn<S>): Promise<EncodedRecord<T, S>> {
    const body = this.type.encodeBody(value)
    const signature = await sign(signingBytes(this.type.domain, body))
    const sig =
      this.type.scheme === 'hybrid'
        ? { ed25519: (signature as HybridSignature).ed25519, mldsa65: (signature as HybridSignature).mldsa65 }
        : signature
    return { value, signature, bytes: dagCbor.encode({ body, sig }) }
  }

  /**
   * Sign `value` as `signer` after checking that `signer` is the record's signer and that the record
   * would decode.
   *
   * @param signer - the signing identity's PeerId (string or PeerId)
   * @throws NodusError `INVALID_ARGUMENT` when `signer` is not the record's signer, or the value is malformed
   */
  async signAs(value: T, signer: { toString(): string }, sign: SignFn<S>): Promise<EncodedRecord<T, S>> {
    const named = this.type.signer(value)
    if (signer.toString() !== named) {
      throw new NodusError('INVALID_ARGUMENT', 'the signing identity is not the issuer of the message', {
        details: { issuer: named, signer: signer.toString() },
      })
    }
    try {
      this.type.decodeBody(this.type.encodeBody(value), this.fail)
    } catch (err) {
      throw new NodusError('INVALID_ARGUMENT', `${this.type.kind} is malformed`, { cause: err })
    }
    return this.encode(value, sign)
  }

  /**
   * Decode an envelope from untrusted bytes and check its structure and body (not its signature).
   *
   * @throws NodusError the type's `code` (peerAction `reject`) on anything malformed, or what
   *   `decodeBody` throws
   */
  decode(bytes: Uint8Array): DecodedRecord<T, S> {
    const fail = this.fail
    if (!(bytes instanceof Uint8Array)) throw fail('not bytes')
    if (bytes.byteLength > this.type.maxBytes) throw fail(`larger than ${this.type.maxBytes} bytes`)
    let raw: unknown
    try {
      raw = dagCbor.decode(bytes)
    } catch {
      throw fail('not dag-cbor')
    }
    const exact = this.type.envelope !== 'open'
    const env = readMap(raw, 'envelope', exact ? ['body', 'sig'] : undefined, fail)
    const body = readMap(env.body, 'body', undefined, fail)
    const signature = this.#readSignature(env.sig, exact)
    return { value: this.type.decodeBody(body, fail), signature, body, bytes }
  }

  /**
   * Verify the signature of a decoded record (see the module doc for what each failure earns).
   *
   * @throws NodusError the type's `code` (`reject`) or `SIGNATURE_INVALID` (`ban`) for a signer that
   *   is not an Ed25519 PeerId (per `unusableSigner`); `SIGNATURE_INVALID` (`ban`) otherwise
   */
  verify(record: VerifiableRecord<T, S>): void {
    const signer = this.type.signer(record.value)
    const key = ed25519KeyOf(signer)
    if (key === undefined) {
      const why = 'the signer is not an Ed25519 PeerId'
      throw this.type.unusableSigner === 'ban'
        ? signatureInvalid(this.type.kind, signer, why)
        : this.fail(why)
    }
    verifyWithKey(this.#message(record, signer), key)
  }

  /**
   * {@link decode} then {@link verify}.
   *
   * @throws as both
   */
  open(bytes: Uint8Array): DecodedRecord<T, S> {
    const record = this.decode(bytes)
    this.verify(record)
    return record
  }

  /** The record as {@link verifyRecordSignature} takes it, signed by `signer`. */
  #message(record: VerifiableRecord<T, S>, signer: string): SignedMessage {
    const t = this.type
    const signature: RecordSignature =
      t.scheme === 'hybrid' && t.hybridKey !== undefined
        ? {
            scheme: 'hybrid',
            publicKey: t.hybridKey(record.value),
            signature: record.signature as HybridSignature,
          }
        : { scheme: 'ed25519', signature: record.signature as Uint8Array }
    return { kind: t.kind, signer, message: this.signedBytes(record), signature }
  }

  #readSignature(v: unknown, exact: boolean): SchemeSignature<S> {
    const fail = this.fail
    if (this.type.scheme === 'ed25519') {
      if (!(v instanceof Uint8Array) || v.byteLength !== ED25519_SIGNATURE_BYTES)
        throw fail(`sig must be ${ED25519_SIGNATURE_BYTES} bytes`)
      return v as SchemeSignature<S>
    }
    const sig = readMap(v, 'sig', exact ? ['ed25519', 'mldsa65'] : undefined, fail)
    const ed25519 = sig.ed25519
    const mldsa65 = sig.mldsa65
    if (!(ed25519 instanceof Uint8Array) || ed25519.byteLength !== ED25519_SIGNATURE_BYTES)
      throw fail(`sig.ed25519 must be ${ED25519_SIGNATURE_BYTES} bytes`)
    if (!(mldsa65 instanceof Uint8Array) || (exact && mldsa65.byteLength !== MLDSA65_SIGNATURE_BYTES))
      throw fail(`sig.mldsa65 must be ${exact ? MLDSA65_SIGNATURE_BYTES : ''} bytes`)
    const hybrid: HybridSignature = { ed25519, mldsa65 }
    return hybrid as SchemeSignature<S>
  }
}

/** Freshness bounds of a record's timestamp. */
export interface FreshnessOptions {
  /** Now, milliseconds since the Unix epoch (from the injected clock). */
  nowMs: number
  /** Oldest timestamp accepted, as an age in ms. */
  maxAgeMs: number
  /** How far in the future a timestamp may be (clock skew), ms. */
  maxFutureSkewMs: number
}

/**
 * Check that `timestampMs` (ms since the Unix epoch) lies in `[nowMs − maxAgeMs, nowMs + maxFutureSkewMs]`.
 * Cheap: run it before the signature check.
 *
 * @param peerAction - default `ignore`: a stale or early record may be clock skew or a delayed relay
 * @throws the error from `fail` (`timestamp is in the future` / `timestamp is too old`)
 */
export function checkFreshness(
  timestampMs: number,
  freshness: FreshnessOptions,
  fail: Fail,
  peerAction: PeerAction = 'ignore',
): void {
  if (timestampMs > freshness.nowMs + freshness.maxFutureSkewMs)
    throw fail('timestamp is in the future', peerAction)
  if (timestampMs < freshness.nowMs - freshness.maxAgeMs) throw fail('timestamp is too old', peerAction)
}

// Strict field readers for decodeBody: each returns the typed value or throws `fail(...)`.

/**
 * A map with exactly the keys `keys` (any keys when undefined).
 *
 * @throws the error from `fail` when `v` is not a plain map or its keys differ
 */
export function readMap(
  v: unknown,
  what: string,
  keys: readonly string[] | undefined,
  fail: Fail,
): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw fail(`${what} is not a map`)
  }
  const rec = v as Record<string, unknown>
  if (keys !== undefined) {
    const have = Object.keys(rec)
    if (have.length !== keys.length || !keys.every((k) => Object.hasOwn(rec, k))) {
      throw fail(`${what} must have exactly the keys ${keys.join(', ')}`)
    }
  }
  return rec
}

/** A safe integer in [min, max]. */
export function readInt(v: unknown, what: string, min: number, max: number, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw fail(`${what} must be an integer in [${min}, ${max}]`)
  }
  return v
}

/** A string of 1..maxChars characters matching `pattern` when given. */
export function readString(v: unknown, what: string, maxChars: number, fail: Fail, pattern?: RegExp): string {
  if (
    typeof v !== 'string' ||
    v.length === 0 ||
    v.length > maxChars ||
    (pattern !== undefined && !pattern.test(v))
  ) {
    throw fail(
      `${what} must be a string of 1 to ${maxChars} characters${pattern === undefined ? '' : ` matching ${pattern}`}`,
    )
  }
  return v
}

/** A list of at most `maxItems` items. */
export function readList(v: unknown, what: string, maxItems: number, fail: Fail): unknown[] {
  if (!Array.isArray(v)) throw fail(`${what} must be a list`)
  if (v.length > maxItems) throw fail(`${what} has more than ${maxItems} items`)
  return v
}

/** A PeerId string that parses (any key type), at most {@link MAX_PEER_ID_CHARS} characters. */
export function readPeerId(v: unknown, what: string, fail: Fail): string {
  const s = readString(v, what, MAX_PEER_ID_CHARS, fail)
  try {
    peerIdFromString(s)
  } catch {
    throw fail(`${what} is not a PeerId`)
  }
  return s
}
