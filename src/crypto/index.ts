/**
 * The crypto area: hashing (BLAKE3), node identity (Ed25519 + ML-DSA-65), did:key, hybrid signatures.
 * Other areas import only from here.
 */
export {
  BLAKE3_KEY_BYTES,
  BLAKE3_OUT_BYTES,
  Blake3Stream,
  blake3,
  blake3DeriveKey,
  blake3Keyed,
} from './blake3.ts'
export {
  didKeyFromEd25519,
  ED25519_PUB_CODEC,
  ed25519FromDidKey,
  isValidEd25519PublicKey,
  X25519_PUB_CODEC,
  x25519FromEd25519,
  x25519Multikey,
  x25519PrivateFromEd25519Seed,
} from './did.ts'
export {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  HYBRID_CONTEXT,
  type HybridPublicKey,
  type HybridSignature,
  hybridPublicKey,
  MLDSA65_SIGNATURE_BYTES,
  signEd25519,
  signHybrid,
  verifyEd25519,
  verifyHybrid,
  verifyMlDsa65,
} from './hybrid.ts'
export {
  ED25519_KEY_FILE,
  generateIdentity,
  identityExists,
  identityFromSeeds,
  KEYS_DIR,
  loadIdentity,
  MLDSA_SEED_BYTES,
  MLDSA65_KEY_FILE,
  MLDSA65_PUBLIC_KEY_BYTES,
  type NodeIdentity,
  saveIdentity,
} from './keys.ts'
