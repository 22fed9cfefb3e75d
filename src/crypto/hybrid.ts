/**
 * Hybrid signatures: Ed25519 (RFC 8032) and ML-DSA-65 (FIPS 204) over the same message; a hybrid
 * signature is valid only when both verify, so it stays unforgeable while either scheme holds.
 *
 * Domain separation (part of the format; changing it is a new version):
 * - Ed25519 signs `"nodus/hybrid-signature/v1" || 0x00 || message` (pure Ed25519, no prehash).
 * - ML-DSA-65 signs `message` with the FIPS 204 context string `ctx = "nodus/hybrid-signature/v1"`
 *   (pure ML-DSA, hedged; so it signs M' = 0x00 || 25 || ctx || message, FIPS 204 Algorithm 2).
 * Neither half is therefore a valid plain signature on `message`, so a half stripped from a hybrid
 * signature cannot be replayed where a single-algorithm signature is expected, and vice versa.
 *
 * Both verifiers are node:crypto (OpenSSL 3.5), the same Ed25519 code libp2p uses under Node. It passes
 * all 151 Wycheproof Ed25519 cases (it rejects S >= L and non-canonical R) and the ML-DSA-65 Wycheproof
 * and ACVP (external, pure) vectors; see test/crypto/.
 */

import { createPrivateKey, createPublicKey, KeyObject, sign, verify } from 'node:crypto'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { type AbortOptions, throwIfAborted } from '../common/abort.ts'
import type { NodeIdentity } from './keys.ts'

/** The domain-separation label, ASCII. */
export const HYBRID_CONTEXT = 'nodus/hybrid-signature/v1'
/** Bytes in an Ed25519 public key. */
export const ED25519_PUBLIC_KEY_BYTES = 32
/** Bytes in an Ed25519 signature. */
export const ED25519_SIGNATURE_BYTES = 64
/** Bytes in a raw ML-DSA-65 public key (FIPS 204 Table 2). */
export const MLDSA65_PUBLIC_KEY_BYTES = 1952
/** Bytes in an ML-DSA-65 signature (FIPS 204 Table 2). */
export const MLDSA65_SIGNATURE_BYTES = 3309
/** Longest FIPS 204 context string. */
const MAX_MLDSA_CONTEXT_BYTES = 255

const CONTEXT_BYTES = new TextEncoder().encode(HYBRID_CONTEXT)
const ED25519_PREFIX = Uint8Array.from([...CONTEXT_BYTES, 0x00])

/** The public half of a node identity. */
export interface HybridPublicKey {
  /** Raw Ed25519 public key, 32 bytes. */
  ed25519: Uint8Array
  /** Raw ML-DSA-65 public key, 1952 bytes. */
  mldsa65: Uint8Array
}

/** Both signatures; valid only together. */
export interface HybridSignature {
  /** Ed25519 signature, 64 bytes. */
  ed25519: Uint8Array
  /** ML-DSA-65 signature, 3309 bytes. */
  mldsa65: Uint8Array
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function isBytes(value: unknown, length?: number): value is Uint8Array {
  return value instanceof Uint8Array && (length === undefined || value.byteLength === length)
}

function ed25519Message(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(ED25519_PREFIX.length + message.length)
  out.set(ED25519_PREFIX, 0)
  out.set(message, ED25519_PREFIX.length)
  return out
}

/**
 * The OpenSSL key object of a raw Ed25519 public key, for a verifier that checks many signatures by
 * one key: building it takes about a fifth of a verification (25 of 145 µs here).
 *
 * @param publicKey - 32 bytes
 * @returns undefined when `publicKey` is not 32 bytes or OpenSSL refuses it; never throws
 */
export function ed25519PublicKeyObject(publicKey: Uint8Array): KeyObject | undefined {
  if (!isBytes(publicKey, ED25519_PUBLIC_KEY_BYTES)) return undefined
  try {
    return createPublicKey({ key: toBuffer(publicKey), format: 'raw-public', asymmetricKeyType: 'ed25519' })
  } catch {
    return undefined
  }
}

/**
 * Plain Ed25519 verification (RFC 8032 §5.1.7, as OpenSSL implements it: S < L and canonical R
 * enforced, cofactorless equation). No domain prefix is added.
 *
 * @param publicKey - 32 bytes, or its key object from {@link ed25519PublicKeyObject}
 * @param message - any length
 * @param signature - 64 bytes
 * @returns false on a wrong signature and on any malformed input; never throws
 */
export function verifyEd25519(
  publicKey: Uint8Array | KeyObject,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (!isBytes(message) || !isBytes(signature, ED25519_SIGNATURE_BYTES)) return false
  const key = publicKey instanceof KeyObject ? publicKey : ed25519PublicKeyObject(publicKey)
  if (key === undefined || key.asymmetricKeyType !== 'ed25519' || key.type !== 'public') return false
  try {
    return verify(null, message, key, signature)
  } catch {
    return false
  }
}

/** OpenSSL key objects for Ed25519 private keys, built once per key. */
const ED25519_KEY_OBJECTS = new WeakMap<Ed25519PrivateKey, KeyObject>()

/**
 * Plain Ed25519 signing (RFC 8032 §5.1.6, OpenSSL through node:crypto), with the same result as
 * `key.sign(message)`. No domain prefix is added. The OpenSSL key object is built on the first call for
 * `key` and kept: libp2p's `sign` builds one from JWK on every call, which took as long as the signature
 * itself (78 µs each here; a holder signs a receipt per stored shard).
 *
 * @param key - a libp2p Ed25519 private key (`raw`: 32-byte seed then 32-byte public key)
 * @param message - any length
 * @returns the 64-byte signature
 */
export function signEd25519(key: Ed25519PrivateKey, message: Uint8Array): Uint8Array {
  let obj = ED25519_KEY_OBJECTS.get(key)
  if (obj === undefined) {
    obj = createPrivateKey({
      key: toBuffer(key.raw.subarray(0, 32)),
      format: 'raw-private',
      asymmetricKeyType: 'ed25519',
    })
    ED25519_KEY_OBJECTS.set(key, obj)
  }
  // A copy: node:crypto may hand out a view of its shared pool, which a kept signature would pin.
  return new Uint8Array(sign(null, message, obj))
}

/**
 * Plain ML-DSA-65 verification (FIPS 204 Algorithm 3, ML-DSA.Verify, pure, with context string).
 * No domain prefix is added beyond `context`.
 *
 * @param publicKey - raw public key, 1952 bytes
 * @param message - any length
 * @param signature - 3309 bytes
 * @param context - FIPS 204 context string, 0 to 255 bytes; default empty
 * @returns false on a wrong signature and on any malformed input; never throws
 */
export function verifyMlDsa65(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  context: Uint8Array = new Uint8Array(0),
): boolean {
  if (!isBytes(publicKey, MLDSA65_PUBLIC_KEY_BYTES) || !isBytes(message)) return false
  if (!isBytes(signature, MLDSA65_SIGNATURE_BYTES)) return false
  if (!isBytes(context) || context.byteLength > MAX_MLDSA_CONTEXT_BYTES) return false
  try {
    const key = createPublicKey({
      key: toBuffer(publicKey),
      format: 'raw-public',
      asymmetricKeyType: 'ml-dsa-65',
    })
    return verify(null, message, { key, context }, signature)
  } catch {
    return false
  }
}

/** Run ML-DSA signing on the libuv thread pool rather than the event loop. */
function signMlDsa(privateKey: KeyObject, message: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    sign(null, message, { key: privateKey, context: CONTEXT_BYTES }, (err, signature) => {
      if (err !== null) reject(err)
      else resolve(new Uint8Array(signature.buffer, signature.byteOffset, signature.byteLength))
    })
  })
}

/** The public keys of `id` (copies), as other nodes need them to verify its hybrid signatures. */
export function hybridPublicKey(id: NodeIdentity): HybridPublicKey {
  return { ed25519: new Uint8Array(id.ed25519.publicKey.raw), mldsa65: new Uint8Array(id.mldsa.publicKey) }
}

/**
 * Sign `message` with both keys of `id` (domain separation in the module doc). The ML-DSA half is
 * hedged (randomized), so two signatures of the same message differ; the Ed25519 half is deterministic.
 *
 * @returns `{ ed25519: 64 bytes, mldsa65: 3309 bytes }`
 * @throws NodusError `ABORTED` when `options.signal` is already aborted
 */
export async function signHybrid(
  id: NodeIdentity,
  message: Uint8Array,
  options: AbortOptions = {},
): Promise<HybridSignature> {
  throwIfAborted(options.signal)
  const ed25519 = signEd25519(id.ed25519, ed25519Message(message))
  return { ed25519, mldsa65: await signMlDsa(id.mldsa.privateKey, message) }
}

/**
 * Verify a hybrid signature: true only when both the Ed25519 and the ML-DSA-65 halves verify
 * under `pub` for `message` (with the domain separation in the module doc).
 *
 * @returns false on any failure and on malformed input (wrong lengths, wrong types); never throws,
 *   so it is safe on attacker-supplied data
 */
export function verifyHybrid(pub: HybridPublicKey, message: Uint8Array, sig: HybridSignature): boolean {
  try {
    if (typeof pub !== 'object' || pub === null || typeof sig !== 'object' || sig === null) return false
    if (!isBytes(message)) return false
    return (
      verifyEd25519(pub.ed25519, ed25519Message(message), sig.ed25519) &&
      verifyMlDsa65(pub.mldsa65, message, sig.mldsa65, CONTEXT_BYTES)
    )
  } catch {
    return false
  }
}
