/**
 * Shard audits (proof of storage): a challenger that knows only a shard's CID and size asks a holder for
 * a random byte range; the holder answers with a Bao-style slice of the shard's BLAKE3 tree (the chunks
 * covering the range and the sibling CVs up to the root); the challenger checks it against the CID's
 * digest. Pure functions, no I/O. Scheme, wire format and soundness argument: src/storage/README.md,
 * "Audits".
 *
 * Sources: BLAKE3 specification (O'Connor, Aumasson, Neves, Wilcox-O'Hearn, 2020) §2.1–2.6; Bao
 * (https://github.com/oconnor663/bao/blob/master/docs/spec.md) for slices.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { CID } from 'multiformats/cid'
import { bytesEqual } from '../../common/bytes.ts'
import { NodusError } from '../../common/errors.ts'
import { blake3DeriveKey } from '../../crypto/index.ts'
import {
  BLAKE3_CHUNK_BYTES,
  BLAKE3_CV_BYTES,
  MAX_SLICE_CVS,
  sliceCvCount,
  sliceCvs,
  verifySlice,
} from '../codec/blake3-tree.ts'
import { BLAKE3_MULTIHASH, parseCid } from '../codec/cid.ts'

/** BLAKE3 `derive_key` context of the range derivation (spec §6.2: hardcoded, unique, versioned). */
export const AUDIT_RANGE_CONTEXT = 'nodus 2025-06-01 shard audit range v1'
/** Bytes of the nonce {@link makeChallenge} draws. */
export const AUDIT_NONCE_BYTES = 32
/** Shortest nonce accepted from the wire, bytes. */
export const AUDIT_NONCE_MIN_BYTES = 16
/** Longest nonce accepted from the wire, bytes. */
export const AUDIT_NONCE_MAX_BYTES = 32
/** Default longest range {@link makeChallenge} asks for, bytes (4 KiB). */
export const DEFAULT_AUDIT_MAX_LENGTH = 4 * 1024
/** Longest range any challenge may ask for, bytes (64 KiB). Holders reject longer ones. */
export const MAX_AUDIT_RANGE_BYTES = 64 * 1024
/** Most chunk bytes a proof can carry: the range plus a partial chunk at each end. */
export const MAX_AUDIT_PROOF_DATA_BYTES = MAX_AUDIT_RANGE_BYTES + 2 * BLAKE3_CHUNK_BYTES
/** Largest encoded proof {@link decodeProof} reads, bytes (data, CVs, nonce and dag-cbor framing). */
export const MAX_AUDIT_PROOF_BYTES = MAX_AUDIT_PROOF_DATA_BYTES + MAX_SLICE_CVS * BLAKE3_CV_BYTES + 256
/** Largest encoded challenge {@link decodeChallenge} reads, bytes. */
export const MAX_AUDIT_CHALLENGE_BYTES = 512
/** Version field of both wire messages. */
const WIRE_VERSION = 1

/**
 * An audit challenge: prove possession of bytes `[offset, offset + length)` of the shard `cid`.
 *
 * `offset` is not free: it is {@link challengeOffset}(cid, size, length, nonce), so the nonce alone
 * decides which bytes are asked for, and holders reject challenges whose offset does not match.
 */
export interface AuditChallenge {
  /** The shard: CIDv1 with a BLAKE3-256 (0x1e) multihash. */
  cid: CID
  /** Shard size in bytes (≥ 1), from the manifest. */
  size: number
  /** First byte of the range. */
  offset: number
  /** Bytes in the range, 1–{@link MAX_AUDIT_RANGE_BYTES}, and offset + length ≤ size. */
  length: number
  /** Fresh random bytes from the challenger, 16–32 bytes (32 from {@link makeChallenge}). */
  nonce: Uint8Array
}

/**
 * A holder's answer: a BLAKE3 slice of the shard covering the challenged range.
 *
 * With chunks of 1024 bytes, the slice covers chunks `first = ⌊offset / 1024⌋` to
 * `end = ⌈(offset + length) / 1024⌉` (exclusive).
 */
export interface AuditProof {
  /** The challenge's nonce, echoed (binds a signed answer to its challenge; see the README). */
  nonce: Uint8Array
  /** The shard's bytes `[1024·first, min(size, 1024·end))`: whole chunks, the last one maybe partial. */
  data: Uint8Array
  /** Sibling CVs, 32 bytes each, in left-to-right order (BLAKE3 tree walk; see blake3-tree.ts `sliceCvs`). */
  cvs: Uint8Array
}

/** Options of {@link makeChallenge}. */
export interface MakeChallengeOptions {
  /** Longest range to ask for, bytes, 1–{@link MAX_AUDIT_RANGE_BYTES}. Default {@link DEFAULT_AUDIT_MAX_LENGTH}. */
  maxLength?: number
}

function protocolError(message: string, details: Record<string, unknown> = {}, cause?: unknown): NodusError {
  return new NodusError('PROTOCOL_ERROR', message, {
    details,
    peerAction: 'reject',
    ...(cause === undefined ? {} : { cause }),
  })
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isCid(v: unknown): v is CID {
  return (
    isRecord(v) &&
    v.version === 1 &&
    isRecord(v.multihash) &&
    v.multihash.code === BLAKE3_MULTIHASH &&
    v.multihash.digest instanceof Uint8Array &&
    v.multihash.digest.byteLength === BLAKE3_CV_BYTES &&
    v.bytes instanceof Uint8Array
  )
}

/**
 * The offset a challenge must ask for: BLAKE3 `derive_key`({@link AUDIT_RANGE_CONTEXT}, material), read
 * as a little-endian uint64, modulo `size − length + 1`, where material = nonce length (1 byte) ‖ nonce ‖
 * size (uint64 BE) ‖ length (uint32 BE) ‖ CID bytes. The modulo bias is below size / 2^64.
 *
 * @param cid - the shard's CID (its binary form is hashed)
 * @param size - shard size in bytes, safe integer ≥ 1
 * @param length - range length in bytes, 1–size
 * @param nonce - 16–32 bytes
 * @returns an integer in [0, size − length]
 * @throws NodusError `INVALID_ARGUMENT` when the numbers or the nonce are out of range
 */
export function challengeOffset(cid: CID, size: number, length: number, nonce: Uint8Array): number {
  if (
    !Number.isSafeInteger(size) ||
    !Number.isSafeInteger(length) ||
    length < 1 ||
    length > size ||
    !(nonce instanceof Uint8Array) ||
    nonce.byteLength < AUDIT_NONCE_MIN_BYTES ||
    nonce.byteLength > AUDIT_NONCE_MAX_BYTES
  ) {
    throw new NodusError('INVALID_ARGUMENT', 'audit range parameters out of range', {
      details: { size, length, nonceBytes: nonce instanceof Uint8Array ? nonce.byteLength : null },
    })
  }
  const cidBytes = cid.bytes
  const material = new Uint8Array(1 + nonce.byteLength + 8 + 4 + cidBytes.byteLength)
  const dv = new DataView(material.buffer)
  material[0] = nonce.byteLength
  material.set(nonce, 1)
  let p = 1 + nonce.byteLength
  dv.setBigUint64(p, BigInt(size), false)
  p += 8
  dv.setUint32(p, length, false)
  p += 4
  material.set(cidBytes, p)
  const h = blake3DeriveKey(AUDIT_RANGE_CONTEXT, material)
  const x = new DataView(h.buffer, h.byteOffset, h.byteLength).getBigUint64(0, true)
  return Number(x % BigInt(size - length + 1))
}

/** Why `c` is not a valid challenge, or undefined when it is one. Never throws. */
function challengeProblem(c: AuditChallenge): string | undefined {
  if (!isRecord(c)) return 'not an object'
  if (!isCid(c.cid)) return 'cid is not a BLAKE3-256 CIDv1'
  if (!Number.isSafeInteger(c.size) || c.size < 1) return 'size must be an integer ≥ 1'
  if (!Number.isSafeInteger(c.length) || c.length < 1 || c.length > MAX_AUDIT_RANGE_BYTES) {
    return `length must be an integer in 1..${MAX_AUDIT_RANGE_BYTES}`
  }
  if (c.length > c.size) return 'length exceeds size'
  if (
    !(c.nonce instanceof Uint8Array) ||
    c.nonce.byteLength < AUDIT_NONCE_MIN_BYTES ||
    c.nonce.byteLength > AUDIT_NONCE_MAX_BYTES
  ) {
    return `nonce must be ${AUDIT_NONCE_MIN_BYTES}–${AUDIT_NONCE_MAX_BYTES} bytes`
  }
  if (!Number.isSafeInteger(c.offset) || c.offset !== challengeOffset(c.cid, c.size, c.length, c.nonce)) {
    return 'offset is not the one the nonce derives'
  }
  return undefined
}

/** Chunks `[first, end)` covering a valid challenge's range. */
function chunkRange(c: AuditChallenge): { first: number; end: number } {
  return {
    first: Math.floor(c.offset / BLAKE3_CHUNK_BYTES),
    end: Math.ceil((c.offset + c.length) / BLAKE3_CHUNK_BYTES),
  }
}

/**
 * Challenger: a fresh challenge for shard `cid` of `size` bytes. The nonce is `rng(32)`; the length is
 * uniform in 1..min(maxLength, size) from `rng(4)`; the offset is derived from the nonce
 * ({@link challengeOffset}), so it is as unpredictable as the nonce.
 *
 * @param cid - CIDv1 with a BLAKE3-256 multihash (the manifest's shard CID)
 * @param size - shard size in bytes (≥ 1; a 0-byte shard has nothing to audit)
 * @param rng - `n => n` cryptographically random bytes (e.g. `crypto.randomBytes`); injected for tests
 * @throws NodusError `CID_INVALID` when `cid` is not BLAKE3-256; `INVALID_ARGUMENT` on a bad size or
 *   maxLength, or when `rng` returns the wrong number of bytes
 */
export function makeChallenge(
  cid: CID,
  size: number,
  rng: (n: number) => Uint8Array,
  options: MakeChallengeOptions = {},
): AuditChallenge {
  if (!isCid(cid)) throw new NodusError('CID_INVALID', 'audit: cid is not a BLAKE3-256 CIDv1')
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new NodusError('INVALID_ARGUMENT', 'audit: shard size must be an integer ≥ 1', {
      details: { size },
    })
  }
  const maxLength = options.maxLength ?? DEFAULT_AUDIT_MAX_LENGTH
  if (!Number.isSafeInteger(maxLength) || maxLength < 1 || maxLength > MAX_AUDIT_RANGE_BYTES) {
    throw new NodusError('INVALID_ARGUMENT', `audit: maxLength must be in 1..${MAX_AUDIT_RANGE_BYTES}`, {
      details: { maxLength },
    })
  }
  const nonce = rng(AUDIT_NONCE_BYTES)
  const r = rng(4)
  if (
    !(nonce instanceof Uint8Array) ||
    nonce.byteLength !== AUDIT_NONCE_BYTES ||
    !(r instanceof Uint8Array) ||
    r.byteLength !== 4
  ) {
    throw new NodusError('INVALID_ARGUMENT', 'audit: rng returned the wrong number of bytes')
  }
  const u32 = new DataView(r.buffer, r.byteOffset, 4).getUint32(0, true)
  const length = 1 + (u32 % Math.min(maxLength, size))
  const ownNonce = nonce.slice()
  return { cid, size, offset: challengeOffset(cid, size, length, ownNonce), length, nonce: ownNonce }
}

/**
 * Holder: the proof for `challenge` from the whole shard. Costs a BLAKE3 pass over the shard in pure
 * TypeScript (about 2 ms of CPU per MiB; see bench/audit.bench.ts), so keep shards ≤ 16 MiB here.
 * Does not check the shard against the CID (the store did at write time): a corrupt shard gives a
 * proof that fails, which is the truth.
 *
 * @param shard - the shard's bytes
 * @param challenge - a challenge received from a peer (possibly decoded with {@link decodeChallenge})
 * @returns a proof whose `data` and `nonce` are copies (they do not alias `shard`)
 * @throws NodusError `PROTOCOL_ERROR` (peerAction `reject`) when the challenge is invalid (bad range,
 *   nonce, CID, or an offset the nonce does not derive) or names a size other than `shard`'s
 */
export function answerChallenge(shard: Uint8Array, challenge: AuditChallenge): AuditProof {
  const problem = challengeProblem(challenge)
  if (problem !== undefined) throw protocolError(`invalid audit challenge: ${problem}`, { reason: problem })
  if (shard.byteLength !== challenge.size) {
    throw protocolError('audit challenge names another shard size', {
      size: challenge.size,
      have: shard.byteLength,
    })
  }
  const { first, end } = chunkRange(challenge)
  const data = shard.slice(first * BLAKE3_CHUNK_BYTES, Math.min(shard.byteLength, end * BLAKE3_CHUNK_BYTES))
  return { nonce: challenge.nonce.slice(), data, cvs: sliceCvs(shard, first, end) }
}

/**
 * Challenger: check `proof` against `challenge` using only the CID's digest and the size: the challenge
 * is valid, the nonce is echoed, and the slice hashes to the digest (blake3-tree.ts `verifySlice`).
 * Never throws, whatever `proof` holds.
 *
 * @returns true when the holder proved it has the challenged bytes
 */
export function verifyAnswer(challenge: AuditChallenge, proof: AuditProof): boolean {
  try {
    if (challengeProblem(challenge) !== undefined || !isRecord(proof)) return false
    const { nonce, data, cvs } = proof
    if (!(nonce instanceof Uint8Array) || !(data instanceof Uint8Array) || !(cvs instanceof Uint8Array)) {
      return false
    }
    if (!bytesEqual(nonce, challenge.nonce)) return false
    const { first, end } = chunkRange(challenge)
    return verifySlice(challenge.cid.multihash.digest, challenge.size, first, end, data, cvs)
  } catch {
    return false
  }
}

/**
 * Bytes of the proof for `challenge`'s shape (data and CV count are fixed by size, offset and length),
 * before encoding. For limits and docs.
 *
 * @returns `{ dataBytes, cvBytes }`
 * @throws NodusError `INVALID_ARGUMENT` when the challenge is invalid
 */
export function proofShape(challenge: AuditChallenge): { dataBytes: number; cvBytes: number } {
  const problem = challengeProblem(challenge)
  if (problem !== undefined) throw new NodusError('INVALID_ARGUMENT', `invalid audit challenge: ${problem}`)
  const { first, end } = chunkRange(challenge)
  return {
    dataBytes: Math.min(challenge.size, end * BLAKE3_CHUNK_BYTES) - first * BLAKE3_CHUNK_BYTES,
    cvBytes: sliceCvCount(challenge.size, first, end) * BLAKE3_CV_BYTES,
  }
}

/**
 * Wire form of a challenge: dag-cbor map `{ v: 1, cid: bytes (binary CID, 36 B), size: uint, offset: uint,
 * length: uint, nonce: bytes (16–32 B) }`.
 *
 * @throws NodusError `INVALID_ARGUMENT` when the challenge is invalid (encode only what you can verify)
 */
export function encodeChallenge(c: AuditChallenge): Uint8Array {
  const problem = challengeProblem(c)
  if (problem !== undefined) throw new NodusError('INVALID_ARGUMENT', `invalid audit challenge: ${problem}`)
  return dagCbor.encode({
    v: WIRE_VERSION,
    cid: c.cid.bytes,
    size: c.size,
    offset: c.offset,
    length: c.length,
    nonce: c.nonce,
  })
}

function decodeMap(bytes: Uint8Array, maxBytes: number, what: string, keys: readonly string[]) {
  if (!(bytes instanceof Uint8Array)) throw protocolError(`${what} is not bytes`)
  if (bytes.byteLength > maxBytes) {
    throw new NodusError('MESSAGE_TOO_LARGE', `${what} is ${bytes.byteLength} bytes, limit ${maxBytes}`, {
      details: { bytes: bytes.byteLength, maxBytes },
      peerAction: 'reject',
    })
  }
  let msg: unknown
  try {
    msg = dagCbor.decode(bytes)
  } catch (err) {
    throw protocolError(`${what} is not dag-cbor`, {}, err)
  }
  if (!isRecord(msg)) throw protocolError(`${what} is not a map`)
  if (msg.v !== WIRE_VERSION) throw protocolError(`unsupported ${what} version`, { v: String(msg.v) })
  const extra = Object.keys(msg).filter((k) => !keys.includes(k))
  if (extra.length > 0) throw protocolError(`${what} has unknown fields`, { fields: extra.slice(0, 8) })
  return msg
}

function asBytes(v: unknown, what: string, min: number, max: number): Uint8Array {
  if (!(v instanceof Uint8Array) || v.byteLength < min || v.byteLength > max) {
    throw protocolError(`${what} must be ${min}–${max} bytes`)
  }
  return v.slice()
}

/**
 * Read a challenge from the wire (the holder's side) and check it fully, including that its offset is
 * the one its nonce derives.
 *
 * @param bytes - at most {@link MAX_AUDIT_CHALLENGE_BYTES}
 * @throws NodusError `MESSAGE_TOO_LARGE` or `PROTOCOL_ERROR`, both with peerAction `reject`, on any
 *   malformed or invalid input; never another error
 */
export function decodeChallenge(bytes: Uint8Array): AuditChallenge {
  const msg = decodeMap(bytes, MAX_AUDIT_CHALLENGE_BYTES, 'audit challenge', [
    'v',
    'cid',
    'size',
    'offset',
    'length',
    'nonce',
  ])
  if (!(msg.cid instanceof Uint8Array)) throw protocolError('audit challenge cid must be bytes')
  let cid: CID
  try {
    cid = parseCid(msg.cid)
  } catch (err) {
    throw protocolError('audit challenge cid is invalid', {}, err)
  }
  const c = {
    cid,
    size: msg.size,
    offset: msg.offset,
    length: msg.length,
    nonce: asBytes(msg.nonce, 'audit challenge nonce', AUDIT_NONCE_MIN_BYTES, AUDIT_NONCE_MAX_BYTES),
  } as AuditChallenge
  let problem: string | undefined
  try {
    problem = challengeProblem(c)
  } catch (err) {
    throw protocolError('invalid audit challenge', {}, err)
  }
  if (problem !== undefined) throw protocolError(`invalid audit challenge: ${problem}`, { reason: problem })
  return c
}

/**
 * Wire form of a proof: dag-cbor map `{ v: 1, nonce: bytes (16–32 B), data: bytes (the chunks),
 * cvs: bytes (32·n B, concatenated CVs) }`. For a 1 MiB shard and a chunk-aligned 1 KiB range that is
 * 1,024 + 10 × 32 bytes of payload and 1,398 bytes encoded (see the README).
 */
export function encodeProof(p: AuditProof): Uint8Array {
  return dagCbor.encode({ v: WIRE_VERSION, nonce: p.nonce, data: p.data, cvs: p.cvs })
}

/**
 * Read a proof from the wire (the challenger's side). Checks framing and sizes only; whether the proof
 * is right is {@link verifyAnswer}'s job.
 *
 * @param bytes - at most {@link MAX_AUDIT_PROOF_BYTES}
 * @returns a proof whose fields are copies (they do not alias `bytes`)
 * @throws NodusError `MESSAGE_TOO_LARGE` or `PROTOCOL_ERROR`, both with peerAction `reject`, on any
 *   malformed input (not dag-cbor, wrong version, unknown fields, wrong types, CVs not a multiple of
 *   32 bytes, more than 128 CVs, empty or oversized data); never another error
 */
export function decodeProof(bytes: Uint8Array): AuditProof {
  const msg = decodeMap(bytes, MAX_AUDIT_PROOF_BYTES, 'audit proof', ['v', 'nonce', 'data', 'cvs'])
  const nonce = asBytes(msg.nonce, 'audit proof nonce', AUDIT_NONCE_MIN_BYTES, AUDIT_NONCE_MAX_BYTES)
  const data = asBytes(msg.data, 'audit proof data', 1, MAX_AUDIT_PROOF_DATA_BYTES)
  const cvs = asBytes(msg.cvs, 'audit proof cvs', 0, MAX_SLICE_CVS * BLAKE3_CV_BYTES)
  if (cvs.byteLength % BLAKE3_CV_BYTES !== 0) {
    throw protocolError(`audit proof cvs must be a multiple of ${BLAKE3_CV_BYTES} bytes`)
  }
  return { nonce, data, cvs }
}
