/**
 * The verification worker (a piscina task module, verify-pool.ts): verifies one packed batch of
 * signatures (verify-batch.ts) and answers one byte per signature. Keeps Ed25519 key objects across
 * batches. Loads only node:crypto and the hybrid-signature code.
 */
import { SignatureVerifier } from './signature-check.ts'
import { verifyPacked } from './verify-batch.ts'

const verifier = new SignatureVerifier()

/** Verify a packed batch: one byte per check, 1 when it verifies. */
export default function verifyTask(packed: Uint8Array): Uint8Array {
  return verifyPacked(packed, verifier)
}
