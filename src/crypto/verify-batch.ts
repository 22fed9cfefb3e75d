/**
 * A batch of {@link SignatureCheck}s packed into one buffer, so a verification worker gets a whole
 * batch in one message whose buffer is transferred, not copied or structured-cloned item by item.
 *
 * Layout (all integers big-endian): `count` u32, then per check: `scheme` u8 (0 Ed25519, 1 hybrid),
 * message length u32, the public key (32 bytes; hybrid: 32 + 1,952), the signature (64 bytes;
 * hybrid: 64 + 3,309) and the message. Answers: one byte per check, 1 when it verifies.
 */
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  MLDSA65_PUBLIC_KEY_BYTES,
  MLDSA65_SIGNATURE_BYTES,
} from './hybrid.ts'
import type { SignatureCheck, SignatureVerifier } from './signature-check.ts'

const HEAD_BYTES = 5
const ED_BYTES = ED25519_PUBLIC_KEY_BYTES + ED25519_SIGNATURE_BYTES
const HYBRID_BYTES = ED_BYTES + MLDSA65_PUBLIC_KEY_BYTES + MLDSA65_SIGNATURE_BYTES

/** True when every part of `c` has the length its scheme needs (what a batch can carry). */
function wellFormed(c: SignatureCheck): boolean {
  if (!(c.message instanceof Uint8Array)) return false
  if (c.scheme === 'ed25519')
    return (
      c.publicKey instanceof Uint8Array &&
      c.publicKey.byteLength === ED25519_PUBLIC_KEY_BYTES &&
      c.signature instanceof Uint8Array &&
      c.signature.byteLength === ED25519_SIGNATURE_BYTES
    )
  return (
    c.scheme === 'hybrid' &&
    c.publicKey?.ed25519?.byteLength === ED25519_PUBLIC_KEY_BYTES &&
    c.publicKey.mldsa65?.byteLength === MLDSA65_PUBLIC_KEY_BYTES &&
    c.signature?.ed25519?.byteLength === ED25519_SIGNATURE_BYTES &&
    c.signature.mldsa65?.byteLength === MLDSA65_SIGNATURE_BYTES
  )
}

/**
 * Pack `checks` into one buffer. A check whose parts have wrong lengths cannot verify: it is left
 * out, and its index is in `malformed` (the caller answers false for it).
 */
export function packChecks(checks: readonly SignatureCheck[]): { packed: Uint8Array; malformed: number[] } {
  const malformed: number[] = []
  let size = 4
  for (const [i, c] of checks.entries()) {
    if (!wellFormed(c)) malformed.push(i)
    else size += HEAD_BYTES + (c.scheme === 'ed25519' ? ED_BYTES : HYBRID_BYTES) + c.message.byteLength
  }
  const packed = new Uint8Array(size)
  const view = new DataView(packed.buffer)
  view.setUint32(0, checks.length - malformed.length)
  let at = 4
  const put = (b: Uint8Array): void => {
    packed.set(b, at)
    at += b.byteLength
  }
  for (const c of checks) {
    if (!wellFormed(c)) continue
    view.setUint8(at, c.scheme === 'ed25519' ? 0 : 1)
    view.setUint32(at + 1, c.message.byteLength)
    at += HEAD_BYTES
    if (c.scheme === 'ed25519') {
      put(c.publicKey)
      put(c.signature)
    } else {
      put(c.publicKey.ed25519)
      put(c.publicKey.mldsa65)
      put(c.signature.ed25519)
      put(c.signature.mldsa65)
    }
    put(c.message)
  }
  return { packed, malformed }
}

/** The checks in a packed batch (views into `packed`). @throws RangeError on a truncated batch */
export function unpackChecks(packed: Uint8Array): SignatureCheck[] {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength)
  const count = view.getUint32(0)
  const out: SignatureCheck[] = []
  let at = 4
  const take = (n: number): Uint8Array => {
    if (at + n > packed.byteLength) throw new RangeError('truncated signature batch')
    const b = packed.subarray(at, at + n)
    at += n
    return b
  }
  for (let i = 0; i < count; i++) {
    const scheme = view.getUint8(at)
    const length = view.getUint32(at + 1)
    at += HEAD_BYTES
    if (scheme === 0) {
      const publicKey = take(ED25519_PUBLIC_KEY_BYTES)
      const signature = take(ED25519_SIGNATURE_BYTES)
      out.push({ scheme: 'ed25519', publicKey, signature, message: take(length) })
    } else {
      const publicKey = { ed25519: take(ED25519_PUBLIC_KEY_BYTES), mldsa65: take(MLDSA65_PUBLIC_KEY_BYTES) }
      const signature = { ed25519: take(ED25519_SIGNATURE_BYTES), mldsa65: take(MLDSA65_SIGNATURE_BYTES) }
      out.push({ scheme: 'hybrid', publicKey, signature, message: take(length) })
    }
  }
  return out
}

/** Verify every check of a packed batch: one byte per check, 1 when it verifies. */
export function verifyPacked(packed: Uint8Array, verifier: SignatureVerifier): Uint8Array {
  const checks = unpackChecks(packed)
  const answers = new Uint8Array(checks.length)
  for (const [i, c] of checks.entries()) answers[i] = verifier.verify(c) ? 1 : 0
  return answers
}
