/**
 * X-Wing, the hybrid post-quantum KEM: ML-KEM-768 (FIPS 203) + X25519 (RFC 7748), combined with
 * SHA3-256 (FIPS 202). Source: draft-connolly-cfrg-xwing-kem-10 ("X-Wing: general-purpose hybrid
 * post-quantum KEM"), §5; the construction is unchanged since -06 (32-byte seed as decapsulation key,
 * SHAKE256 expansion), and the vectors in ../shared/vectors/crypto/xwing/test-vectors.json are those
 * of its Appendix C (test/crypto/xwing.test.ts checks all three).
 *
 * - Decapsulation key: 32 bytes (the seed `sk`). `expandDecapsulationKey(sk)`:
 *   `expanded = SHAKE256(sk, 96 bytes)`; ML-KEM-768 `KeyGen_internal(d = expanded[0:32],
 *   z = expanded[32:64])`; `sk_X = expanded[64:96]`, `pk_X = X25519(sk_X, 9)`.
 * - Encapsulation key: `pk_M (1184) ‖ pk_X (32)`, 1216 bytes. Ciphertext: `ct_M (1088) ‖ ct_X (32)`,
 *   1120 bytes. Shared secret: 32 bytes,
 *   `SHA3-256(ss_M ‖ ss_X ‖ ct_X ‖ pk_X ‖ "\.//^\")` (the label is 5c2e2f2f5e5c).
 * - HPKE KEM id 0x647a (draft §7).
 *
 * Every primitive is node:crypto (OpenSSL 3.5): ML-KEM-768 keys are created from the 64-byte FIPS 203
 * seed `d ‖ z` (`format: 'raw-seed'`), which is exactly what the draft's expansion yields, so no
 * expanded ML-KEM key is ever stored or parsed. Importing an encapsulation key runs the FIPS 203 §7.2
 * modulus check (OpenSSL refuses a key with a coefficient ≥ q), which the draft requires of
 * Encapsulate. Measured in bench/sealed.bench.ts against `@hpke/hybridkem-x-wing` (pure JS ML-KEM).
 *
 * One deviation, refusal only: OpenSSL's X25519 refuses an all-zero shared secret (a small-order
 * point), where the draft computes on. Encapsulating to such a `pk_X` throws KEY_INVALID, and
 * decapsulating such a `ct_X` throws DECRYPT_FAILED; an honest peer never produces either.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  decapsulate,
  diffieHellman,
  encapsulate,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto'
import { bytesEqual } from '../common/bytes.ts'
import { NodusError } from '../common/errors.ts'
import { blake3 } from './blake3.ts'

/** Bytes in an X-Wing decapsulation key (the seed). */
export const XWING_SECRET_KEY_BYTES = 32
/** Bytes in an X-Wing encapsulation key (`pk_M ‖ pk_X`). */
export const XWING_PUBLIC_KEY_BYTES = 1216
/** Bytes in an X-Wing ciphertext (`ct_M ‖ ct_X`). */
export const XWING_CIPHERTEXT_BYTES = 1120
/** Bytes in an X-Wing shared secret. */
export const XWING_SHARED_SECRET_BYTES = 32
/** Bytes of randomness a derandomized encapsulation takes (ML-KEM `m` ‖ X25519 ephemeral key). */
export const XWING_ESEED_BYTES = 64
/** The HPKE KEM identifier of X-Wing (draft §7; the IANA request `25519 + 203`). */
export const XWING_HPKE_KEM_ID = 0x647a

const MLKEM_PUBLIC_KEY_BYTES = 1184
const MLKEM_CIPHERTEXT_BYTES = 1088
/** `XWingLabel`, draft §5.3: the ASCII art `\./` `/^\`. */
const XWING_LABEL = Uint8Array.from([0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c])

/** An X-Wing key pair with its expansion cached (draft §5.5.1). Holds secrets: never log it. */
export interface XWingKeyPair {
  /** The decapsulation key: 32 bytes, the only secret that is stored. */
  readonly seed: Uint8Array
  /** The encapsulation key, 1216 bytes. */
  readonly publicKey: Uint8Array
  /** {@link xwingKeyId} of `publicKey`: 32 bytes. */
  readonly keyId: Uint8Array
  /** ML-KEM-768 private key (node:crypto, created from `d ‖ z`). */
  readonly mlkem: KeyObject
  /** X25519 private key `sk_X`. */
  readonly x25519: KeyObject
  /** `pk_X`, 32 bytes (the combiner hashes it). */
  readonly x25519Public: Uint8Array
}

/** An encapsulation key, checked and imported once (ML-KEM modulus check, X25519 point). */
export interface XWingPublicKey {
  /** The 1216 bytes. */
  readonly bytes: Uint8Array
  readonly mlkem: KeyObject
  readonly x25519: KeyObject
  /** `pk_X`, 32 bytes. */
  readonly x25519Public: Uint8Array
}

/** What Encapsulate returns. */
export interface XWingEncapsulation {
  /** 32 bytes. */
  sharedSecret: Uint8Array
  /** 1120 bytes. */
  ciphertext: Uint8Array
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** A copy as a plain Uint8Array (node:crypto may hand out views of its shared pool). */
function copy(buf: Uint8Array): Uint8Array {
  return new Uint8Array(buf)
}

function keyInvalid(message: string, cause?: unknown): NodusError {
  return new NodusError('KEY_INVALID', `X-Wing: ${message}`, cause === undefined ? {} : { cause })
}

/**
 * The key id of an X-Wing encapsulation key: BLAKE3-256 of its 1216 bytes. Sealed messages name the
 * recipient key by it (docs/PROTOCOLS.md, "Sealed messages").
 *
 * @returns `Uint8Array` of 32 bytes
 */
export function xwingKeyId(publicKey: Uint8Array): Uint8Array {
  return blake3(publicKey)
}

/**
 * A key pair from a 32-byte decapsulation key (draft §5.2 `expandDecapsulationKey`, §5.2.1
 * `GenerateKeyPairDerand`). Deterministic: the draft's vectors give `pk` for each `seed`.
 *
 * @param seed - `Uint8Array` of 32 bytes
 * @throws NodusError `KEY_INVALID` when `seed` is not 32 bytes
 */
export function xwingKeyPairFromSeed(seed: Uint8Array): XWingKeyPair {
  if (!(seed instanceof Uint8Array) || seed.byteLength !== XWING_SECRET_KEY_BYTES)
    throw keyInvalid(`the decapsulation key must be ${XWING_SECRET_KEY_BYTES} bytes`)
  const expanded = createHash('shake256', { outputLength: 96 }).update(seed).digest()
  const mlkem = createPrivateKey({
    key: expanded.subarray(0, 64),
    format: 'raw-seed',
    asymmetricKeyType: 'ml-kem-768',
  })
  const x25519 = createPrivateKey({
    key: expanded.subarray(64, 96),
    format: 'raw-private',
    asymmetricKeyType: 'x25519',
  })
  expanded.fill(0)
  const pkM = createPublicKey(mlkem).export({ format: 'raw-public' })
  const x25519Public = copy(createPublicKey(x25519).export({ format: 'raw-public' }))
  const publicKey = new Uint8Array(XWING_PUBLIC_KEY_BYTES)
  publicKey.set(pkM, 0)
  publicKey.set(x25519Public, MLKEM_PUBLIC_KEY_BYTES)
  return { seed: copy(seed), publicKey, keyId: xwingKeyId(publicKey), mlkem, x25519, x25519Public }
}

/** A new key pair from 32 bytes of node:crypto's CSPRNG (draft §5.2 `GenerateKeyPair`). */
export function generateXWingKeyPair(): XWingKeyPair {
  const seed = randomBytes(XWING_SECRET_KEY_BYTES)
  try {
    return xwingKeyPairFromSeed(seed)
  } finally {
    seed.fill(0)
  }
}

/** Parsed keys by their bytes' array, so a sender sealing to one recipient again skips the imports. */
const PARSED = new WeakMap<Uint8Array, XWingPublicKey>()

/**
 * Check and import an encapsulation key: 1216 bytes, the ML-KEM-768 part passing the FIPS 203 §7.2
 * modulus check. Cached per array (the bytes are compared on a hit, so a mutated array is parsed again).
 *
 * @throws NodusError `KEY_INVALID` when the length is wrong or a part is refused
 */
export function parseXWingPublicKey(bytes: Uint8Array): XWingPublicKey {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength !== XWING_PUBLIC_KEY_BYTES)
    throw keyInvalid(`an encapsulation key must be ${XWING_PUBLIC_KEY_BYTES} bytes`)
  const hit = PARSED.get(bytes)
  if (hit !== undefined && bytesEqual(hit.bytes, bytes)) return hit
  let mlkem: KeyObject
  let x25519: KeyObject
  try {
    mlkem = createPublicKey({
      key: toBuffer(bytes.subarray(0, MLKEM_PUBLIC_KEY_BYTES)),
      format: 'raw-public',
      asymmetricKeyType: 'ml-kem-768',
    })
  } catch (err) {
    throw keyInvalid('the ML-KEM-768 encapsulation key fails the FIPS 203 modulus check', err)
  }
  const x25519Public = copy(bytes.subarray(MLKEM_PUBLIC_KEY_BYTES))
  try {
    x25519 = createPublicKey({
      key: toBuffer(x25519Public),
      format: 'raw-public',
      asymmetricKeyType: 'x25519',
    })
  } catch (err) {
    throw keyInvalid('the X25519 public key is refused', err)
  }
  const parsed: XWingPublicKey = { bytes: copy(bytes), mlkem, x25519, x25519Public }
  PARSED.set(bytes, parsed)
  return parsed
}

/** Draft §5.3 `Combiner`. */
function combine(ssM: Uint8Array, ssX: Uint8Array, ctX: Uint8Array, pkX: Uint8Array): Uint8Array {
  return copy(
    createHash('sha3-256').update(ssM).update(ssX).update(ctX).update(pkX).update(XWING_LABEL).digest(),
  )
}

/** The ML-KEM-768 half of an encapsulation: `{ sharedKey: 32 bytes, ciphertext: 1088 bytes }`. */
export interface MlKemEncapsulation {
  sharedKey: Uint8Array
  ciphertext: Uint8Array
}

/**
 * Draft §5.4 with the ephemeral X25519 key and the ML-KEM result given: the one code path of both
 * {@link xwingEncapsulate} and {@link xwingEncapsulateDerand}.
 */
function encapsulateWith(
  pk: XWingPublicKey,
  ephemeral: KeyObject,
  ctX: Uint8Array,
  mlkem: MlKemEncapsulation,
): XWingEncapsulation {
  let ssX: Uint8Array
  try {
    ssX = diffieHellman({ privateKey: ephemeral, publicKey: pk.x25519 })
  } catch (err) {
    throw keyInvalid('X25519 with the recipient key gives no shared secret (small-order point)', err)
  }
  const ciphertext = new Uint8Array(XWING_CIPHERTEXT_BYTES)
  ciphertext.set(mlkem.ciphertext, 0)
  ciphertext.set(ctX, MLKEM_CIPHERTEXT_BYTES)
  return { sharedSecret: combine(mlkem.sharedKey, ssX, ctX, pk.x25519Public), ciphertext }
}

/**
 * Encapsulate to `publicKey` (draft §5.4 `Encapsulate`): a fresh shared secret and its ciphertext.
 * Randomness: node:crypto's CSPRNG (OpenSSL), for the ephemeral X25519 key and ML-KEM's `m`.
 *
 * @param publicKey - 1216 bytes, or a key from {@link parseXWingPublicKey}
 * @returns `{ sharedSecret: 32 bytes, ciphertext: 1120 bytes }`
 * @throws NodusError `KEY_INVALID` when the key is malformed or fails the ML-KEM modulus check
 */
export function xwingEncapsulate(publicKey: Uint8Array | XWingPublicKey): XWingEncapsulation {
  const pk = publicKey instanceof Uint8Array ? parseXWingPublicKey(publicKey) : publicKey
  const ephemeral = generateKeyPairSync('x25519')
  const ctX = ephemeral.publicKey.export({ format: 'raw-public' })
  const { sharedKey, ciphertext } = encapsulate(pk.mlkem)
  return encapsulateWith(pk, ephemeral.privateKey, ctX, { sharedKey, ciphertext })
}

/**
 * Derandomized encapsulation (draft §5.4.1 `EncapsulateDerand`), for test vectors. node:crypto has no
 * derandomized ML-KEM encapsulation, so the caller passes one (`ML-KEM-768.EncapsDerand(pk_M, m)`);
 * the X25519 half and the combiner are this module's, as in {@link xwingEncapsulate}.
 *
 * @param eseed - 64 bytes: `m` (32) ‖ the ephemeral X25519 private key (32)
 * @param mlkemEncapsDerand - `(pk_M: 1184 bytes, m: 32 bytes) → { sharedKey, ciphertext }`
 * @throws NodusError `KEY_INVALID` on a bad key or eseed length
 */
export function xwingEncapsulateDerand(
  publicKey: Uint8Array,
  eseed: Uint8Array,
  mlkemEncapsDerand: (pkM: Uint8Array, m: Uint8Array) => MlKemEncapsulation,
): XWingEncapsulation {
  if (!(eseed instanceof Uint8Array) || eseed.byteLength !== XWING_ESEED_BYTES)
    throw keyInvalid(`eseed must be ${XWING_ESEED_BYTES} bytes`)
  const pk = parseXWingPublicKey(publicKey)
  const ephemeral = createPrivateKey({
    key: toBuffer(eseed.subarray(32, 64)),
    format: 'raw-private',
    asymmetricKeyType: 'x25519',
  })
  const ctX = createPublicKey(ephemeral).export({ format: 'raw-public' })
  const mlkem = mlkemEncapsDerand(pk.bytes.subarray(0, MLKEM_PUBLIC_KEY_BYTES), eseed.subarray(0, 32))
  return encapsulateWith(pk, ephemeral, ctX, mlkem)
}

/**
 * Decapsulate `ciphertext` with `keyPair` (draft §5.5 `Decapsulate`). ML-KEM's implicit rejection
 * means a tampered `ct_M` gives a different secret, not an error: the AEAD above it refuses.
 *
 * @param ciphertext - 1120 bytes
 * @returns the 32-byte shared secret
 * @throws NodusError `DECRYPT_FAILED` (peerAction `reject`) when `ciphertext` is not 1120 bytes or its
 *   `ct_X` is a small-order point
 */
export function xwingDecapsulate(keyPair: XWingKeyPair, ciphertext: Uint8Array): Uint8Array {
  if (!(ciphertext instanceof Uint8Array) || ciphertext.byteLength !== XWING_CIPHERTEXT_BYTES) {
    throw new NodusError('DECRYPT_FAILED', `X-Wing: a ciphertext must be ${XWING_CIPHERTEXT_BYTES} bytes`, {
      peerAction: 'reject',
      details: { reason: 'length' },
    })
  }
  const ctX = ciphertext.subarray(MLKEM_CIPHERTEXT_BYTES)
  let ssX: Uint8Array
  try {
    const peer = createPublicKey({ key: toBuffer(ctX), format: 'raw-public', asymmetricKeyType: 'x25519' })
    ssX = diffieHellman({ privateKey: keyPair.x25519, publicKey: peer })
  } catch (err) {
    throw new NodusError('DECRYPT_FAILED', 'X-Wing: ct_X gives no X25519 shared secret', {
      peerAction: 'reject',
      details: { reason: 'small-order' },
      cause: err,
    })
  }
  const ssM = decapsulate(keyPair.mlkem, toBuffer(ciphertext.subarray(0, MLKEM_CIPHERTEXT_BYTES)))
  return combine(ssM, ssX, ctX, keyPair.x25519Public)
}
