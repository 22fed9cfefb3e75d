/**
 * The kv operation envelope: canonical, signed, content-addressed (docs/PROTOCOLS.md, "KV operations").
 *
 * Bytes: dag-cbor (deterministic: map keys sorted, shortest integer forms, 64-bit floats, no
 * indefinite lengths; so one value has one encoding) of `{ body, sig }`:
 * - `body`: `{ v: 1, db, key, field?, type, op, args, hlc, expireAt?, signer, cap? }` (op-types.ts
 *   OpBody; `hlc` as its 8 order-preserving bytes; absent optional fields are left out, never null);
 * - `sig`: over the signing bytes `dag-cbor({ domain: "nodus/kv-op/v1", body })` (the signed-record
 *   convention, src/crypto/signed-record.ts: the domain is signed, never sent): with a 32-byte `signer`
 *   64 bytes of Ed25519; with a 1,984-byte (hybrid) `signer` `{ ed25519, mldsa65 }`, a hybrid
 *   signature (src/crypto/hybrid.ts; both must verify).
 * The operation's id is BLAKE3-256 of these bytes.
 *
 * dag-cbor sorts map keys by length first, so `sig` comes before `body`, and `body` before `domain`:
 * the envelope is a fixed header (`a2 63 "sig"`, the signature, `64 "body"`) then the body's bytes,
 * and the signing bytes are `a2 64 "body"`, the same body bytes, then `66 "domain" 6e "nodus/kv-op/v1"`.
 * Decoding checks that header byte for byte and signs over the body bytes as received, without
 * re-encoding anything: the signature covers every byte but its own fixed frame, and Ed25519 (S < L
 * enforced) and ML-DSA-65 signatures are not malleable, so no one but the signer can make a second
 * byte form (a second id) of a signed operation; a signer that does has only signed another operation.
 *
 * Two steps, so signatures can be checked in a worker pool (src/crypto/verify-pool.ts):
 * {@link decodeOp} (structure, bounds, id; cheap) gives a {@link DecodedOp} whose `check` is the
 * signature to verify; {@link verifyOp} checks it inline, or {@link verifiedOp} takes a pool's answer.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { type AbortOptions, throwIfAborted } from '../common/abort.ts'
import { concatBytes } from '../common/bytes.ts'
import { NodusError } from '../common/errors.ts'
import {
  blake3,
  ED25519_SIGNATURE_BYTES,
  type Fail,
  failWith,
  type HybridSignature,
  MLDSA65_SIGNATURE_BYTES,
  readMap,
  readString,
  type SignatureCheck,
  SignatureVerifier,
} from '../crypto/index.ts'
import { MAX_DB_ID_CHARS, parseDbIdFast } from './db-id.ts'
import { OP_ID_BYTES, parseDbOp } from './db-ops.ts'
import { isHlcMs } from './hlc.ts'
import {
  type Hlc,
  hlcFromBytes,
  hlcToBytes,
  KV_TYPES,
  type KvType,
  type KvValue,
  type Op,
  type OpBody,
} from './op-types.ts'
import { KV_OPTIONS } from './options.ts'
import { type OpSigner, signerBytes, signerKeys } from './signer.ts'

/** The signing domain: signed, never sent; a new envelope version is a new domain. */
export const OP_DOMAIN = 'nodus/kv-op/v1'
/** The envelope version, `body.v`. */
export const OP_VERSION = 1
/** An operation name: lower case, starting with a letter, at most 32 characters (`set`, `json.set`, `ts.add`). */
export const OP_NAME_PATTERN = /^[a-z][a-z0-9._]{0,31}$/
/** Deepest nesting of lists and maps inside one argument. */
export const MAX_VALUE_DEPTH = 32

/** The size bounds of an operation (section `kv` of the config). */
export interface OpLimits {
  /** Largest envelope, bytes (`kv.maxOpBytes`). */
  maxOpBytes: number
  /** Longest key and grant prefix, UTF-8 bytes (`kv.maxKeyBytes`). */
  maxKeyBytes: number
  /** Longest field, UTF-8 bytes (`kv.maxFieldBytes`). */
  maxFieldBytes: number
  /** Largest argument, bytes of its dag-cbor encoding (`kv.maxValueBytes`). */
  maxValueBytes: number
}

/** The defaults of section `kv`. */
export const DEFAULT_OP_LIMITS: Readonly<OpLimits> = Object.freeze({
  maxOpBytes: KV_OPTIONS.maxOpBytes.default,
  maxKeyBytes: KV_OPTIONS.maxKeyBytes.default,
  maxFieldBytes: KV_OPTIONS.maxFieldBytes.default,
  maxValueBytes: KV_OPTIONS.maxValueBytes.default,
})

/** Options of {@link encodeOp}. */
export interface EncodeOpOptions extends AbortOptions {
  /** The bounds peers apply; default {@link DEFAULT_OP_LIMITS}. */
  limits?: OpLimits
}

/** What an operation says before it is signed: its body without `v` and `signer`. */
export type OpInput = Omit<OpBody, 'v' | 'signer'>

/** An operation decoded from untrusted bytes: structure checked, id computed, signature not yet checked. */
export interface DecodedOp extends Op {
  /** The signature to verify (inline with {@link verifyOp}, or in a verification pool). */
  check: SignatureCheck
}

const BODY_KEYS = new Set([
  'v',
  'db',
  'key',
  'field',
  'type',
  'op',
  'args',
  'hlc',
  'expireAt',
  'signer',
  'cap',
])
const TYPES = new Set<string>([...KV_TYPES, 'db'])

const fail: Fail = failWith('KV_OP_INVALID', 'kv operation')

function tooLarge(what: string, max: number, actual: number): NodusError {
  return new NodusError('KV_OP_TOO_LARGE', `kv operation: ${what} is ${actual} bytes, more than ${max}`, {
    peerAction: 'reject',
    details: { reason: what, max, actual },
  })
}

const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8')

/** True for a value an operation may carry (op-types.ts KvValue), at most `depth` levels deep. */
function isKvValue(v: unknown, depth: number): boolean {
  if (v === null || typeof v === 'boolean' || typeof v === 'string' || v instanceof Uint8Array) return true
  if (typeof v === 'number') return Number.isFinite(v)
  if (depth <= 0 || typeof v !== 'object') return false
  if (Array.isArray(v)) return v.every((x) => isKvValue(x, depth - 1))
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) return false
  return Object.values(v).every((x) => isKvValue(x, depth - 1))
}

function readBytes(v: unknown, what: string, lengths: readonly number[]): Uint8Array {
  if (!(v instanceof Uint8Array) || !lengths.includes(v.byteLength))
    throw fail(`${what} must be ${lengths.join(' or ')} bytes`)
  return v
}

function readMs(v: unknown, what: string): number {
  if (!isHlcMs(v)) throw fail(`${what} must be Unix ms below 2^48`)
  return v
}

/** Check a received body map field by field and build the OpBody. */
function readBody(b: Record<string, unknown>, limits: OpLimits, envelopeBytes: number): OpBody {
  for (const k of Object.keys(b)) if (!BODY_KEYS.has(k)) throw fail(`unknown field ${k.slice(0, 32)}`)
  if (b.v !== OP_VERSION) throw fail(`v must be ${OP_VERSION}`)
  const db = readString(b.db, 'db', MAX_DB_ID_CHARS, fail)
  checkDb(db)
  if (typeof b.type !== 'string' || !TYPES.has(b.type))
    throw fail(`type must be one of ${[...TYPES].join(', ')}`)
  const type = b.type as KvType | 'db'
  const op = readString(b.op, 'op', 32, fail, OP_NAME_PATTERN)
  if (typeof b.key !== 'string') throw fail('key must be a string')
  if (utf8Bytes(b.key) > limits.maxKeyBytes) throw tooLarge('key', limits.maxKeyBytes, utf8Bytes(b.key))
  if (b.key === '' && type !== 'db') throw fail('key must not be empty')
  if (!Array.isArray(b.args)) throw fail('args must be a list')
  for (const [i, arg] of b.args.entries()) {
    if (!isKvValue(arg, MAX_VALUE_DEPTH)) throw fail(`args[${i}] is not a kv value`)
    // An argument is never larger than the envelope: encode it only when it could be over.
    if (envelopeBytes > limits.maxValueBytes) {
      const size = dagCbor.encode(arg).byteLength
      if (size > limits.maxValueBytes) throw tooLarge(`args[${i}]`, limits.maxValueBytes, size)
    }
  }
  const hlc: Hlc = hlcFromBytes(readBytes(b.hlc, 'hlc', [8]))
  const signer = b.signer
  if (!(signer instanceof Uint8Array) || signerKeys(signer) === undefined)
    throw fail('signer must be a 32-byte Ed25519 key or a hybrid key')
  const body: OpBody = { v: OP_VERSION, db, key: b.key, type, op, args: b.args as KvValue[], hlc, signer }
  if (b.field !== undefined) {
    if (typeof b.field !== 'string') throw fail('field must be a string')
    if (utf8Bytes(b.field) > limits.maxFieldBytes)
      throw tooLarge('field', limits.maxFieldBytes, utf8Bytes(b.field))
    body.field = b.field
  }
  if (b.expireAt !== undefined) body.expireAt = readMs(b.expireAt, 'expireAt')
  if (b.cap !== undefined) body.cap = readBytes(b.cap, 'cap', [OP_ID_BYTES])
  if (type === 'db') parseDbOp(body, limits.maxKeyBytes, fail, limits.maxFieldBytes)
  return body
}

/** The body map of `body` as signed and sent: optional fields left out when absent. */
function encodeBody(body: OpBody): Record<string, unknown> {
  const m: Record<string, unknown> = {
    v: body.v,
    db: body.db,
    key: body.key,
    type: body.type,
    op: body.op,
    args: body.args,
    hlc: hlcToBytes(body.hlc),
    signer: body.signer,
  }
  if (body.field !== undefined) m.field = body.field
  if (body.expireAt !== undefined) m.expireAt = body.expireAt
  if (body.cap !== undefined) m.cap = body.cap
  return m
}

const ascii = (t: string): number[] => [...t].map((ch) => ch.charCodeAt(0))
/** `a2 63 "sig"`: the envelope map's header and its first key. */
const ENV_HEAD = Uint8Array.from([0xa2, 0x63, ...ascii('sig')])
/** `64 "body"`: the envelope's second key, just before the body's bytes. */
const BODY_KEY = Uint8Array.from([0x64, ...ascii('body')])
/** `58 40`: a 64-byte byte string (an Ed25519 signature). */
const ED25519_SIG_HEAD = Uint8Array.of(0x58, 0x40)
/** `a2 67 "ed25519" 58 40`: a hybrid signature map and its Ed25519 half's header. */
const HYBRID_SIG_HEAD = Uint8Array.from([0xa2, 0x67, ...ascii('ed25519'), 0x58, 0x40])
/** `67 "mldsa65" 59 0c ed`: the ML-DSA-65 half's key and a 3,309-byte byte string header. */
const MLDSA_SIG_HEAD = Uint8Array.from([0x67, ...ascii('mldsa65'), 0x59, 0x0c, 0xed])
/** Signing bytes: `a2 64 "body"` ‖ body ‖ `66 "domain" 6e "nodus/kv-op/v1"`. */
const SIGN_HEAD = Uint8Array.from([0xa2, ...BODY_KEY])
const SIGN_TAIL = dagCbor.encode({ domain: OP_DOMAIN }).subarray(1)

function startsWithAt(bytes: Uint8Array, at: number, what: Uint8Array): boolean {
  if (bytes.byteLength < at + what.byteLength) return false
  for (let i = 0; i < what.byteLength; i++) if (bytes[at + i] !== what[i]) return false
  return true
}

/** The bytes a signer signs for a body encoded as `bodyBytes`: dag-cbor of `{ domain, body }`. */
export function opSigningBytes(bodyBytes: Uint8Array): Uint8Array {
  return concatBytes([SIGN_HEAD, bodyBytes, SIGN_TAIL])
}

/** The signature in the envelope's fixed frame, and where the body's bytes start. */
function readFrame(bytes: Uint8Array): { sig: Uint8Array | HybridSignature; bodyAt: number } {
  if (!startsWithAt(bytes, 0, ENV_HEAD)) throw fail('not a {sig, body} envelope')
  let at = ENV_HEAD.byteLength
  let sig: Uint8Array | HybridSignature
  if (startsWithAt(bytes, at, ED25519_SIG_HEAD)) {
    at += ED25519_SIG_HEAD.byteLength
    sig = bytes.subarray(at, at + ED25519_SIGNATURE_BYTES)
    at += ED25519_SIGNATURE_BYTES
  } else if (startsWithAt(bytes, at, HYBRID_SIG_HEAD)) {
    at += HYBRID_SIG_HEAD.byteLength
    const ed25519 = bytes.subarray(at, at + ED25519_SIGNATURE_BYTES)
    at += ED25519_SIGNATURE_BYTES
    if (!startsWithAt(bytes, at, MLDSA_SIG_HEAD))
      throw fail('sig must be { ed25519: 64 bytes, mldsa65: 3309 bytes }')
    at += MLDSA_SIG_HEAD.byteLength
    sig = { ed25519, mldsa65: bytes.subarray(at, at + MLDSA65_SIGNATURE_BYTES) }
    at += MLDSA65_SIGNATURE_BYTES
  } else throw fail('sig must be 64 bytes or { ed25519, mldsa65 }')
  if (!startsWithAt(bytes, at, BODY_KEY)) throw fail('the envelope has no body after sig')
  return { sig, bodyAt: at + BODY_KEY.byteLength }
}

function checkDb(db: string): void {
  try {
    parseDbIdFast(db)
  } catch (err) {
    throw fail(`db: ${err instanceof NodusError ? String(err.details.reason) : 'invalid'}`)
  }
}

/**
 * Decode an operation from untrusted bytes: the envelope's frame, the body as strict dag-cbor
 * (shortest forms, no duplicate keys, no indefinite lengths), every field typed and bounded, no
 * unknown fields, a `db` operation's arguments (db-ops.ts); its id computed. The signature is not
 * checked: pass the result to {@link verifyOp} or a verification pool.
 *
 * @param limits - the size bounds; default {@link DEFAULT_OP_LIMITS}
 * @throws NodusError `KV_OP_TOO_LARGE` (reject) when the envelope, key, field or an argument is over
 *   its bound; `KV_OP_INVALID` (reject, `details.reason` names the field) on anything else
 */
export function decodeOp(bytes: Uint8Array, limits: OpLimits = DEFAULT_OP_LIMITS): DecodedOp {
  if (!(bytes instanceof Uint8Array)) throw fail('not bytes')
  if (bytes.byteLength > limits.maxOpBytes) throw tooLarge('operation', limits.maxOpBytes, bytes.byteLength)
  const { sig, bodyAt } = readFrame(bytes)
  const bodyBytes = bytes.subarray(bodyAt)
  let raw: unknown
  try {
    raw = dagCbor.decode(bodyBytes)
  } catch {
    throw fail('body is not dag-cbor')
  }
  const body = readBody(readMap(raw, 'body', undefined, fail), limits, bytes.byteLength)
  const message = opSigningBytes(bodyBytes)
  const hybrid = signerKeys(body.signer)?.hybrid
  let check: SignatureCheck
  if (hybrid === undefined) {
    if (!(sig instanceof Uint8Array)) throw fail('a 32-byte signer signs with Ed25519 alone')
    check = { scheme: 'ed25519', publicKey: body.signer, message, signature: sig }
  } else {
    if (sig instanceof Uint8Array) throw fail('a hybrid signer signs with a hybrid signature')
    check = { scheme: 'hybrid', publicKey: hybrid, message, signature: sig }
  }
  return { body, id: blake3(bytes), bytes, check }
}

function forged(d: DecodedOp): NodusError {
  return new NodusError('SIGNATURE_INVALID', 'kv operation: signature does not verify', {
    peerAction: 'ban',
    details: { kind: 'kv operation', db: d.body.db, scheme: d.check.scheme },
  })
}

/**
 * The operation, once its signature is known to verify (`valid`, e.g. from a verification pool).
 *
 * @throws NodusError `SIGNATURE_INVALID` (peerAction `ban`: whoever sent it should have checked) when
 *   `valid` is false
 */
export function verifiedOp(decoded: DecodedOp, valid: boolean): Op {
  if (!valid) throw forged(decoded)
  return { body: decoded.body, id: decoded.id, bytes: decoded.bytes }
}

const inlineVerifier = new SignatureVerifier()

/**
 * Verify a decoded operation's signature here, on this thread.
 *
 * @throws NodusError `SIGNATURE_INVALID` (ban) when it does not verify
 */
export function verifyOp(decoded: DecodedOp): Op {
  return verifiedOp(decoded, inlineVerifier.verify(decoded.check))
}

/** {@link decodeOp} then {@link verifyOp}. @throws as both */
export function openOp(bytes: Uint8Array, limits: OpLimits = DEFAULT_OP_LIMITS): Op {
  return verifyOp(decodeOp(bytes, limits))
}

/**
 * Sign an operation and encode its envelope. The operation is checked as a peer would check it
 * before anything is signed, so what this returns is what peers accept (bounds included).
 *
 * @param input - the body without `v` and `signer` (both filled in here)
 * @param signer - {@link ed25519OpSigner} or {@link hybridOpSigner} (signer.ts)
 * @param options.limits - the bounds peers apply; default {@link DEFAULT_OP_LIMITS}
 * @param options.signal - aborts before signing
 * @returns the operation: body, id (BLAKE3-256 of the bytes) and envelope bytes
 * @throws NodusError `KV_OP_INVALID` or `KV_OP_TOO_LARGE` (as {@link decodeOp} would refuse it);
 *   `ABORTED` when `options.signal` aborts first
 */
export async function encodeOp(input: OpInput, signer: OpSigner, options: EncodeOpOptions = {}): Promise<Op> {
  const limits = options.limits ?? DEFAULT_OP_LIMITS
  let bodyBytes: Uint8Array
  try {
    bodyBytes = dagCbor.encode(encodeBody({ ...input, v: OP_VERSION, signer: signerBytes(signer) }))
  } catch (err) {
    throw fail(`cannot encode: ${(err as Error).message}`)
  }
  // A blank signature of the real one's length: the check covers the size bounds too.
  const frame = (sig: Uint8Array | HybridSignature): Uint8Array =>
    sig instanceof Uint8Array
      ? concatBytes([ENV_HEAD, ED25519_SIG_HEAD, sig, BODY_KEY, bodyBytes])
      : concatBytes([
          ENV_HEAD,
          HYBRID_SIG_HEAD,
          sig.ed25519,
          MLDSA_SIG_HEAD,
          sig.mldsa65,
          BODY_KEY,
          bodyBytes,
        ])
  const blank = new Uint8Array(ED25519_SIGNATURE_BYTES)
  decodeOp(
    frame(
      signer.scheme === 'ed25519'
        ? blank
        : { ed25519: blank, mldsa65: new Uint8Array(MLDSA65_SIGNATURE_BYTES) },
    ),
    limits,
  )
  throwIfAborted(options.signal)
  const sig = await signer.sign(opSigningBytes(bodyBytes))
  const bytes = frame(sig)
  const d = decodeOp(bytes, limits)
  return { body: d.body, id: d.id, bytes }
}
