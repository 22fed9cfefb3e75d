/**
 * Who signs a kv operation: the `signer` bytes an operation carries, and the signers that make its
 * signature. A signer key is either 32 bytes (Ed25519) or 1,984 bytes (a hybrid key: the Ed25519 key
 * then the ML-DSA-65 key, src/crypto/hybrid.ts); its length says which signature the operation has.
 */
import type { Ed25519PrivateKey } from '@libp2p/interface'
import {
  ED25519_PUBLIC_KEY_BYTES,
  type HybridPublicKey,
  type HybridSignature,
  hybridPublicKey,
  MLDSA65_PUBLIC_KEY_BYTES,
  type NodeIdentity,
  signEd25519,
  signHybrid,
} from '../crypto/index.ts'

/** Bytes of a hybrid signer key: Ed25519 (32) ‖ ML-DSA-65 (1,952). */
export const HYBRID_SIGNER_BYTES = ED25519_PUBLIC_KEY_BYTES + MLDSA65_PUBLIC_KEY_BYTES

/** Makes an operation's signature over its signing bytes (op.ts). */
export type OpSigner =
  | {
      scheme: 'ed25519'
      /** The Ed25519 public key, 32 bytes. */
      publicKey: Uint8Array
      sign(message: Uint8Array): Uint8Array | Promise<Uint8Array>
    }
  | {
      scheme: 'hybrid'
      publicKey: HybridPublicKey
      sign(message: Uint8Array): Promise<HybridSignature>
    }

/** A signer with an Ed25519 key (a node's, or a client's libp2p key). */
export function ed25519OpSigner(key: Ed25519PrivateKey): OpSigner {
  return { scheme: 'ed25519', publicKey: key.publicKey.raw, sign: (m) => signEd25519(key, m) }
}

/** A signer with both keys of `id`: every operation gets a hybrid Ed25519 + ML-DSA-65 signature. */
export function hybridOpSigner(id: NodeIdentity): OpSigner {
  return { scheme: 'hybrid', publicKey: hybridPublicKey(id), sign: (m) => signHybrid(id, m) }
}

/** The `signer` bytes of an operation signed by `signer`: 32 bytes, or Ed25519 ‖ ML-DSA-65. */
export function signerBytes(signer: OpSigner): Uint8Array {
  if (signer.scheme === 'ed25519') return signer.publicKey
  const out = new Uint8Array(HYBRID_SIGNER_BYTES)
  out.set(signer.publicKey.ed25519, 0)
  out.set(signer.publicKey.mldsa65, ED25519_PUBLIC_KEY_BYTES)
  return out
}

/**
 * The keys inside `signer` bytes (views, no copies): `hybrid` is set for a hybrid key.
 * Undefined when the length is neither 32 nor {@link HYBRID_SIGNER_BYTES}.
 */
export function signerKeys(
  signer: Uint8Array,
): { ed25519: Uint8Array; hybrid?: HybridPublicKey } | undefined {
  if (signer.byteLength === ED25519_PUBLIC_KEY_BYTES) return { ed25519: signer }
  if (signer.byteLength !== HYBRID_SIGNER_BYTES) return undefined
  const ed25519 = signer.subarray(0, ED25519_PUBLIC_KEY_BYTES)
  return { ed25519, hybrid: { ed25519, mldsa65: signer.subarray(ED25519_PUBLIC_KEY_BYTES) } }
}

/** True for a hybrid signer key ({@link HYBRID_SIGNER_BYTES} long). */
export function isHybridSigner(signer: Uint8Array): boolean {
  return signer.byteLength === HYBRID_SIGNER_BYTES
}
