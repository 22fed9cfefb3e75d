/**
 * HPKE (RFC 9180), base mode, single-shot, with the X-Wing KEM (src/crypto/xwing.ts, KEM id 0x647a),
 * HKDF-SHA256 (KDF id 0x0001) and AES-256-GCM (AEAD id 0x0002).
 *
 * - `SealBase(pkR, info, aad, pt)` (RFC 9180 §6.1): `(shared_secret, enc) = Encap(pkR)`; the key
 *   schedule (§5.1) with `mode_base = 0x00`, empty `psk` and `psk_id`, derives `key` (32 bytes) and
 *   `base_nonce` (12 bytes) through `LabeledExtract`/`LabeledExpand` (§4) over
 *   `suite_id = "HPKE" ‖ I2OSP(kem_id, 2) ‖ I2OSP(kdf_id, 2) ‖ I2OSP(aead_id, 2)`; the one message is
 *   sealed with sequence number 0 (nonce = `base_nonce`), `ct = AES-256-GCM(key, nonce, aad, pt) ‖ tag`.
 * - X-Wing is used as draft-connolly-cfrg-xwing-kem-10 §5.6 says: `Encap` is X-Wing Encapsulate and
 *   its 32-byte output is HPKE's `shared_secret` directly (no DHKEM extract-and-expand); `enc` is the
 *   1120-byte X-Wing ciphertext.
 *
 * Everything is node:crypto (HMAC-SHA256, AES-256-GCM), synchronous. `@hpke/core` (with
 * `@hpke/hybridkem-x-wing`) and `hpke` (WebCrypto) are the libraries measured against it in
 * bench/sealed.bench.ts, and test/crypto/hpke.test.ts checks that a message sealed here with a given
 * encapsulation is byte for byte what `@hpke/core` seals, and that each opens the other's.
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto'
import { NodusError } from '../common/errors.ts'
import {
  parseXWingPublicKey,
  XWING_CIPHERTEXT_BYTES,
  XWING_HPKE_KEM_ID,
  type XWingKeyPair,
  type XWingPublicKey,
  xwingDecapsulate,
  xwingEncapsulate,
} from './xwing.ts'

/** HPKE KDF id of HKDF-SHA256 (RFC 9180 §7.2). */
export const HPKE_KDF_HKDF_SHA256 = 0x0001
/** HPKE AEAD id of AES-256-GCM (RFC 9180 §7.3). */
export const HPKE_AEAD_AES_256_GCM = 0x0002
/** Bytes of the AES-256-GCM tag each ciphertext carries (Nt). */
export const HPKE_TAG_BYTES = 16

const NK = 32
const NN = 12
const MODE_BASE = 0x00
const ENCODER = new TextEncoder()
const HPKE_V1 = ENCODER.encode('HPKE-v1')
const EMPTY = new Uint8Array(0)
const LABEL_PSK_ID_HASH = ENCODER.encode('psk_id_hash')
const LABEL_INFO_HASH = ENCODER.encode('info_hash')
const LABEL_SECRET = ENCODER.encode('secret')
const LABEL_KEY = ENCODER.encode('key')
const LABEL_BASE_NONCE = ENCODER.encode('base_nonce')

/** Optional inputs of seal and open. */
export interface HpkeOptions {
  /** Application-supplied information bound into the key schedule (`info`); default empty. */
  info?: Uint8Array
  /** Additional authenticated data (`aad`); default empty. */
  aad?: Uint8Array
}

/** A sealed message: the KEM's `enc` and the AEAD ciphertext (plaintext length + 16 bytes). */
export interface HpkeSealed {
  enc: Uint8Array
  ciphertext: Uint8Array
}

function i2osp2(n: number): Uint8Array {
  return Uint8Array.of((n >> 8) & 0xff, n & 0xff)
}

interface Suite {
  /** `suite_id` of RFC 9180 §5.1. */
  id: Uint8Array
  /** `psk_id_hash` for the empty psk_id: the same for every message of the suite. */
  pskIdHash: Uint8Array
}

const SUITES = new Map<number, Suite>()

/** RFC 9180 §4 `LabeledExtract(salt, label, ikm)` with HKDF-SHA256 (`Extract` = HMAC(salt, ·)). */
function labeledExtract(
  suiteId: Uint8Array,
  salt: Uint8Array,
  label: Uint8Array,
  ikm: Uint8Array,
): Uint8Array {
  return createHmac('sha256', salt).update(HPKE_V1).update(suiteId).update(label).update(ikm).digest()
}

/** RFC 9180 §4 `LabeledExpand(prk, label, info, L)` for L ≤ 32 (one HMAC block, RFC 5869 §2.3). */
function labeledExpand(
  suiteId: Uint8Array,
  prk: Uint8Array,
  label: Uint8Array,
  info: Uint8Array,
  length: number,
): Uint8Array {
  const t = createHmac('sha256', prk)
    .update(i2osp2(length))
    .update(HPKE_V1)
    .update(suiteId)
    .update(label)
    .update(info)
    .update(Uint8Array.of(1))
    .digest()
  return t.subarray(0, length)
}

function suite(kemId: number): Suite {
  let s = SUITES.get(kemId)
  if (s === undefined) {
    const id = new Uint8Array(10)
    id.set(ENCODER.encode('HPKE'), 0)
    id.set(i2osp2(kemId), 4)
    id.set(i2osp2(HPKE_KDF_HKDF_SHA256), 6)
    id.set(i2osp2(HPKE_AEAD_AES_256_GCM), 8)
    s = { id, pskIdHash: labeledExtract(id, EMPTY, LABEL_PSK_ID_HASH, EMPTY) }
    SUITES.set(kemId, s)
  }
  return s
}

/** RFC 9180 §5.1 `KeySchedule(mode_base, shared_secret, info, "", "")`: key and base nonce. */
function keySchedule(
  kemId: number,
  sharedSecret: Uint8Array,
  info: Uint8Array,
): { key: Buffer; nonce: Buffer } {
  const s = suite(kemId)
  const infoHash = labeledExtract(s.id, EMPTY, LABEL_INFO_HASH, info)
  const context = new Uint8Array(1 + 32 + 32)
  context[0] = MODE_BASE
  context.set(s.pskIdHash, 1)
  context.set(infoHash, 33)
  const secret = labeledExtract(s.id, sharedSecret, LABEL_SECRET, EMPTY)
  const key = labeledExpand(s.id, secret, LABEL_KEY, context, NK) as Buffer
  const nonce = labeledExpand(s.id, secret, LABEL_BASE_NONCE, context, NN) as Buffer
  secret.fill(0)
  return { key, nonce }
}

function bytesOr(v: Uint8Array | undefined, what: string): Uint8Array {
  if (v === undefined) return EMPTY
  if (!(v instanceof Uint8Array)) throw new NodusError('INVALID_ARGUMENT', `HPKE: ${what} must be bytes`)
  return v
}

/**
 * The key schedule and AEAD of single-shot base-mode HPKE, given the KEM's shared secret: the part of
 * RFC 9180 that does not depend on the KEM (any KEM id; HKDF-SHA256; AES-256-GCM; sequence number 0).
 *
 * @param kemId - the HPKE KEM id the secret came from (it is part of `suite_id`)
 * @returns the ciphertext, `plaintext.length + 16` bytes
 */
export function sealWithSharedSecret(
  kemId: number,
  sharedSecret: Uint8Array,
  plaintext: Uint8Array,
  options: HpkeOptions = {},
): Uint8Array {
  const { key, nonce } = keySchedule(kemId, sharedSecret, bytesOr(options.info, 'info'))
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  cipher.setAAD(bytesOr(options.aad, 'aad'))
  const body = cipher.update(plaintext)
  cipher.final()
  const out = new Uint8Array(body.byteLength + HPKE_TAG_BYTES)
  out.set(body, 0)
  out.set(cipher.getAuthTag(), body.byteLength)
  key.fill(0)
  return out
}

/**
 * The inverse of {@link sealWithSharedSecret}.
 *
 * @throws NodusError `DECRYPT_FAILED` (peerAction `reject`) when the ciphertext is shorter than the tag
 *   or does not authenticate (tampered, other key, other `info` or `aad`)
 */
export function openWithSharedSecret(
  kemId: number,
  sharedSecret: Uint8Array,
  ciphertext: Uint8Array,
  options: HpkeOptions = {},
): Uint8Array {
  if (!(ciphertext instanceof Uint8Array) || ciphertext.byteLength < HPKE_TAG_BYTES) {
    throw new NodusError('DECRYPT_FAILED', 'HPKE: the ciphertext is shorter than its tag', {
      peerAction: 'reject',
      details: { reason: 'length' },
    })
  }
  const { key, nonce } = keySchedule(kemId, sharedSecret, bytesOr(options.info, 'info'))
  const split = ciphertext.byteLength - HPKE_TAG_BYTES
  const decipher = createDecipheriv('aes-256-gcm', key, nonce)
  decipher.setAAD(bytesOr(options.aad, 'aad'))
  decipher.setAuthTag(ciphertext.subarray(split))
  const body = decipher.update(ciphertext.subarray(0, split))
  try {
    decipher.final()
  } catch (err) {
    body.fill(0)
    throw new NodusError('DECRYPT_FAILED', 'HPKE: the ciphertext does not authenticate', {
      peerAction: 'reject',
      details: { reason: 'aead' },
      cause: err,
    })
  } finally {
    key.fill(0)
  }
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
}

/**
 * Seal `plaintext` to an X-Wing encapsulation key (RFC 9180 `SealBase`, single-shot).
 *
 * @param recipientPublicKey - 1216 bytes, or a key from `parseXWingPublicKey`
 * @returns `{ enc: 1120 bytes, ciphertext: plaintext.length + 16 bytes }`
 * @throws NodusError `KEY_INVALID` when the key is malformed (xwing.ts); `INVALID_ARGUMENT` when
 *   `info` or `aad` is not bytes
 */
export function hpkeSeal(
  recipientPublicKey: Uint8Array | XWingPublicKey,
  plaintext: Uint8Array,
  options: HpkeOptions = {},
): HpkeSealed {
  const pk =
    recipientPublicKey instanceof Uint8Array ? parseXWingPublicKey(recipientPublicKey) : recipientPublicKey
  const { sharedSecret, ciphertext: enc } = xwingEncapsulate(pk)
  const ciphertext = sealWithSharedSecret(XWING_HPKE_KEM_ID, sharedSecret, plaintext, options)
  sharedSecret.fill(0)
  return { enc, ciphertext }
}

/**
 * Open what {@link hpkeSeal} sealed (RFC 9180 `OpenBase`, single-shot) with the recipient's key pair.
 *
 * @param enc - 1120 bytes
 * @returns the plaintext
 * @throws NodusError `DECRYPT_FAILED` (peerAction `reject`) when `enc` is malformed or the ciphertext
 *   does not authenticate under this key, `info` and `aad`
 */
export function hpkeOpen(
  recipient: XWingKeyPair,
  enc: Uint8Array,
  ciphertext: Uint8Array,
  options: HpkeOptions = {},
): Uint8Array {
  if (!(enc instanceof Uint8Array) || enc.byteLength !== XWING_CIPHERTEXT_BYTES) {
    throw new NodusError('DECRYPT_FAILED', `HPKE: enc must be ${XWING_CIPHERTEXT_BYTES} bytes`, {
      peerAction: 'reject',
      details: { reason: 'length' },
    })
  }
  const sharedSecret = xwingDecapsulate(recipient, enc)
  try {
    return openWithSharedSecret(XWING_HPKE_KEM_ID, sharedSecret, ciphertext, options)
  } finally {
    sharedSecret.fill(0)
  }
}
