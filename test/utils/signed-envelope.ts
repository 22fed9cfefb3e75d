/**
 * Sign any body, valid or not, as a signed record's envelope `{ body, sig }` (Ed25519 over dag-cbor
 * `{ domain, body }`, src/crypto/signed-record.ts): for tests that feed a decoder hostile records
 * with valid signatures. The codec itself only encodes well-typed values.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { type Ed25519Signer, signingBytes } from '../../src/crypto/index.ts'

export async function signEnvelope(
  domain: string,
  body: Record<string, unknown>,
  signer: Ed25519Signer,
): Promise<{ bytes: Uint8Array; signature: Uint8Array }> {
  const signature = await signer.ed25519.sign(signingBytes(domain, body))
  return { bytes: dagCbor.encode({ body, sig: signature }), signature }
}
