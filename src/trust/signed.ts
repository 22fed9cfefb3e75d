/**
 * The signed envelope shared by trust vectors and capacity reports, and strict field readers for
 * decoding hostile input.
 *
 * Wire form (dag-cbor): `{ body: {...}, sig: bytes(64) }`. The issuer signs, with its Ed25519 libp2p key
 * (RFC 8032, pure Ed25519), the dag-cbor encoding of `{ domain: <message domain>, body }`, so a signature
 * made for one message type never verifies as another. The issuer's PeerId (an identity multihash that
 * embeds the Ed25519 public key) is the only key material needed to verify.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type ErrorCode, NodusError, type PeerAction } from '../common/errors.ts'

/** Bytes in an Ed25519 signature (RFC 8032 §5.1.6). */
export const ED25519_SIGNATURE_BYTES = 64
/** Longest PeerId string accepted (base58btc Ed25519 PeerIds are 52 characters). */
export const MAX_PEER_ID_CHARS = 128

/** The part of a node identity that signs (a `NodeIdentity` fits). */
export interface Ed25519Signer {
  peerId: PeerId
  ed25519: { sign(data: Uint8Array): Uint8Array | Promise<Uint8Array> }
}

/** Freshness bounds applied when verifying a signed message. */
export interface FreshnessOptions {
  /** Now, milliseconds since the Unix epoch (from the injected clock). */
  nowMs: number
  /** Oldest timestamp accepted, as an age in ms. */
  maxAgeMs: number
  /** How far in the future a timestamp may be (clock skew), ms. */
  maxFutureSkewMs: number
}

/** Builds the typed error for one message type. */
export type Fail = (message: string, peerAction?: PeerAction) => NodusError

/** An error factory for `code` (peerAction `reject` unless given). */
export function failWith(code: ErrorCode, what: string): Fail {
  return (message, peerAction = 'reject') =>
    new NodusError(code, `${what}: ${message}`, { peerAction, details: { reason: message } })
}

/** The bytes an issuer signs: dag-cbor of `{ domain, body }`. */
export function signingBytes(domain: string, body: Record<string, unknown>): Uint8Array {
  return dagCbor.encode({ domain, body })
}

/** Sign `body` under `domain` and return the envelope bytes and the signature. */
export async function signEnvelope(
  domain: string,
  body: Record<string, unknown>,
  signer: Ed25519Signer,
): Promise<{ bytes: Uint8Array; signature: Uint8Array }> {
  const signature = await signer.ed25519.sign(signingBytes(domain, body))
  return { bytes: dagCbor.encode({ body, sig: signature }), signature }
}

/** Decode an envelope: a map with exactly `body` (map) and `sig` (64 bytes), at most `maxBytes`. */
export function decodeEnvelope(
  bytes: Uint8Array,
  maxBytes: number,
  fail: Fail,
): { body: Record<string, unknown>; signature: Uint8Array } {
  if (!(bytes instanceof Uint8Array)) throw fail('not bytes')
  if (bytes.byteLength > maxBytes) throw fail(`larger than ${maxBytes} bytes`)
  let raw: unknown
  try {
    raw = dagCbor.decode(bytes)
  } catch {
    throw fail('not dag-cbor')
  }
  const env = readMap(raw, 'envelope', ['body', 'sig'], fail)
  const body = readMap(env.body, 'body', undefined, fail)
  const sig = env.sig
  if (!(sig instanceof Uint8Array) || sig.byteLength !== ED25519_SIGNATURE_BYTES) {
    throw fail(`sig must be ${ED25519_SIGNATURE_BYTES} bytes`)
  }
  return { body, signature: sig }
}

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

/** A PeerId string that parses (any key type). */
export function readPeerId(v: unknown, what: string, fail: Fail): string {
  const s = readString(v, what, MAX_PEER_ID_CHARS, fail)
  try {
    peerIdFromString(s)
  } catch {
    throw fail(`${what} is not a PeerId`)
  }
  return s
}

/**
 * Check that `timestampMs` is within the freshness bounds, then `signature` by `issuer` (a PeerId string
 * with an inline Ed25519 key) over `{ domain, body }`.
 *
 * @throws NodusError `SIGNATURE_INVALID` (peerAction `ban`) when the signature does not verify
 * @throws the error from `fail` (peerAction `reject`) when the issuer has no inline Ed25519 key, or
 *   (peerAction `ignore`, it may be clock skew or a delayed gossip message) when stale or in the future
 */
export async function verifyEnvelope(
  domain: string,
  body: Record<string, unknown>,
  issuer: string,
  signature: Uint8Array,
  timestampMs: number,
  freshness: FreshnessOptions,
  fail: Fail,
): Promise<void> {
  // Freshness first: it is cheap, and a stale message needs no signature check.
  if (timestampMs > freshness.nowMs + freshness.maxFutureSkewMs)
    throw fail('timestamp is in the future', 'ignore')
  if (timestampMs < freshness.nowMs - freshness.maxAgeMs) throw fail('timestamp is too old', 'ignore')
  let peer: PeerId
  try {
    peer = peerIdFromString(issuer)
  } catch {
    throw fail('issuer is not a PeerId')
  }
  if (peer.type !== 'Ed25519' || peer.publicKey === undefined) throw fail('issuer must be an Ed25519 PeerId')
  const ok = await peer.publicKey.verify(signingBytes(domain, body), signature)
  if (!ok) {
    throw new NodusError('SIGNATURE_INVALID', `${domain}: signature does not verify`, {
      peerAction: 'ban',
      details: { issuer },
    })
  }
}

/**
 * Check that `signer` is the issuer named in a message.
 *
 * @throws NodusError `INVALID_ARGUMENT` when it is not
 */
export function assertSigner(signer: Ed25519Signer, issuer: string): void {
  if (signer.peerId.toString() !== issuer) {
    throw new NodusError('INVALID_ARGUMENT', 'the signing identity is not the issuer of the message', {
      details: { issuer, signer: signer.peerId.toString() },
    })
  }
}
