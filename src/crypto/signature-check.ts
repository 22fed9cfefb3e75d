/**
 * One signature to check, as a value: the public key, the exact signed bytes and the signature, so a
 * check can be made later, elsewhere (a worker thread: verify-pool.ts), or in a batch. Records build
 * these after their structural checks; the verifier knows nothing about what was signed.
 *
 * Loads only node:crypto and hybrid.ts, so a verification worker starts small.
 */
import type { KeyObject } from 'node:crypto'
import {
  ed25519PublicKeyObject,
  type HybridPublicKey,
  type HybridSignature,
  verifyEd25519,
  verifyHybrid,
} from './hybrid.ts'

/** A signature to verify. */
export type SignatureCheck =
  /** Plain Ed25519 (RFC 8032): `publicKey` 32 bytes, `signature` 64 bytes; no prefix added. */
  | { scheme: 'ed25519'; publicKey: Uint8Array; message: Uint8Array; signature: Uint8Array }
  /** Hybrid Ed25519 + ML-DSA-65 (hybrid.ts, with its domain separation): both halves must verify. */
  | { scheme: 'hybrid'; publicKey: HybridPublicKey; message: Uint8Array; signature: HybridSignature }

/** Default number of Ed25519 key objects a {@link SignatureVerifier} keeps. */
export const DEFAULT_VERIFIER_KEYS = 1024

/**
 * Verifies {@link SignatureCheck}s, keeping the OpenSSL key objects of the last `maxKeys` Ed25519 keys
 * (least recently used dropped first): writers sign many operations, and a key object costs a fifth
 * of a verification to build.
 */
export class SignatureVerifier {
  readonly #maxKeys: number
  readonly #keys = new Map<string, KeyObject>()

  /** @param maxKeys - key objects kept, ≥ 0 (0: none); default {@link DEFAULT_VERIFIER_KEYS} */
  constructor(maxKeys = DEFAULT_VERIFIER_KEYS) {
    this.#maxKeys = maxKeys
  }

  /** Key objects held now. */
  get size(): number {
    return this.#keys.size
  }

  /** True when the signature verifies; false on a wrong signature or malformed input. Never throws. */
  verify(check: SignatureCheck): boolean {
    if (check.scheme === 'hybrid') return verifyHybrid(check.publicKey, check.message, check.signature)
    if (check.scheme !== 'ed25519' || !(check.publicKey instanceof Uint8Array)) return false
    return verifyEd25519(this.#key(check.publicKey) ?? check.publicKey, check.message, check.signature)
  }

  #key(raw: Uint8Array): KeyObject | undefined {
    if (this.#maxKeys === 0 || raw.byteLength !== 32) return undefined
    const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1')
    let key = this.#keys.get(id)
    if (key !== undefined) {
      this.#keys.delete(id)
    } else {
      key = ed25519PublicKeyObject(raw)
      if (key === undefined) return undefined
      if (this.#keys.size >= this.#maxKeys) {
        const oldest = this.#keys.keys().next().value
        if (oldest !== undefined) this.#keys.delete(oldest)
      }
    }
    this.#keys.set(id, key)
    return key
  }
}

/** Verify one check without a key cache. True when it verifies; never throws. */
export function verifySignatureCheck(check: SignatureCheck): boolean {
  return new SignatureVerifier(0).verify(check)
}
