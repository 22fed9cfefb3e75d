/**
 * did:key for Ed25519 node keys, and the X25519 key-agreement key the did:key method derives from them.
 *
 * Sources: the did:key method, https://w3c-ccg.github.io/did-method-key/ (a did:key is
 * `did:key:` + multibase base58btc (`z`) of multicodec `ed25519-pub` (0xed) + the 32-byte key);
 * RFC 8032 §5.1.3 (Ed25519 point decoding); RFC 7748 §4.1 (the Edwards–Montgomery map).
 */
import { createHash } from 'node:crypto'
import { base58btc } from 'multiformats/bases/base58'
import { NodusError } from '../common/errors.ts'

/** Multicodec `ed25519-pub`. */
export const ED25519_PUB_CODEC = 0xed
/** Multicodec `x25519-pub`. */
export const X25519_PUB_CODEC = 0xec

const DID_KEY_PREFIX = 'did:key:'
/** Both codecs are below 2^14, so their unsigned varint is two bytes. */
const ED25519_PUB_PREFIX = Uint8Array.of(0xed, 0x01)
const X25519_PUB_PREFIX = Uint8Array.of(0xec, 0x01)
/** Longest did:key string we parse; a real Ed25519 did:key is 56 characters. */
const MAX_DID_LENGTH = 128

// --- edwards25519 field arithmetic (BigInt; public data only, so constant time is not needed) ---

const P = 2n ** 255n - 19n
const mod = (a: bigint): bigint => {
  const r = a % P
  return r < 0n ? r + P : r
}
function pow(base: bigint, exp: bigint): bigint {
  let result = 1n
  let b = mod(base)
  let e = exp
  while (e > 0n) {
    if ((e & 1n) === 1n) result = (result * b) % P
    b = (b * b) % P
    e >>= 1n
  }
  return result
}
const inv = (a: bigint): bigint => pow(a, P - 2n)
/** Curve constant d = -121665/121666 (RFC 8032 §5.1). */
const D = mod(-121665n * inv(121666n))
/** sqrt(-1) mod p. */
const SQRT_M1 = pow(2n, (P - 1n) / 4n)

function bytesToNumberLE(bytes: Uint8Array): bigint {
  let n = 0n
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] ?? 0)
  return n
}
function numberToBytesLE(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length)
  let v = n
  for (let i = 0; i < length; i++) {
    out[i] = Number(v & 0xffn)
    v >>= 8n
  }
  return out
}

interface Point {
  x: bigint
  y: bigint
}

/** RFC 8032 §5.1.3 decoding, strict: rejects y >= p and points off the curve. */
function decodePoint(raw: Uint8Array): Point | undefined {
  if (raw.length !== 32) return undefined
  const last = raw[31] ?? 0
  const sign = BigInt(last >> 7)
  const yBytes = raw.slice()
  yBytes[31] = last & 0x7f
  const y = bytesToNumberLE(yBytes)
  if (y >= P) return undefined
  const y2 = (y * y) % P
  const u = mod(y2 - 1n)
  const v = mod(D * y2 + 1n)
  // x = (u/v)^((p+3)/8), computed as u v^3 (u v^7)^((p-5)/8)
  const v3 = (v * v * v) % P
  let x = (u * v3 * pow(u * v3 * v3 * v, (P - 5n) / 8n)) % P
  const vx2 = (v * x * x) % P
  if (vx2 === mod(-u)) x = (x * SQRT_M1) % P
  else if (vx2 !== u) return undefined
  if (x === 0n && sign === 1n) return undefined
  if ((x & 1n) !== sign) x = P - x
  return { x, y }
}

/** Complete twisted-Edwards addition (a = -1). */
function add(a: Point, b: Point): Point {
  const t = (D * a.x * b.x * a.y * b.y) % P
  return {
    x: mod((a.x * b.y + a.y * b.x) * inv(1n + t)),
    y: mod((a.y * b.y + a.x * b.x) * inv(mod(1n - t))),
  }
}

/** Decode `raw` and refuse points in the 8-torsion (identity, orders 2, 4, 8). */
function decodeValidPoint(raw: Uint8Array): Point | undefined {
  if (!(raw instanceof Uint8Array)) return undefined
  const point = decodePoint(raw)
  if (point === undefined) return undefined
  let q = point
  for (let i = 0; i < 3; i++) q = add(q, q) // [8]P
  return q.x === 0n && q.y === 1n ? undefined : point
}

/**
 * True when `publicKeyRaw` is 32 bytes that decode (canonically, RFC 8032 §5.1.3) to a point of
 * edwards25519 whose order is not small (not in the 8-torsion). Small-order keys let anyone forge
 * signatures that many verifiers accept, so they are refused wherever we accept a key from outside.
 */
export function isValidEd25519PublicKey(publicKeyRaw: Uint8Array): boolean {
  return decodeValidPoint(publicKeyRaw) !== undefined
}

function requireEd25519(publicKeyRaw: Uint8Array): Point {
  const point = decodeValidPoint(publicKeyRaw)
  if (point === undefined) {
    throw new NodusError('KEY_INVALID', 'not a valid Ed25519 public key', {
      details: { length: publicKeyRaw instanceof Uint8Array ? publicKeyRaw.length : null },
    })
  }
  return point
}

function multibaseKey(prefix: Uint8Array, key: Uint8Array): string {
  const bytes = new Uint8Array(prefix.length + key.length)
  bytes.set(prefix, 0)
  bytes.set(key, prefix.length)
  return base58btc.encode(bytes)
}

/**
 * did:key for an Ed25519 public key: `did:key:z6Mk...`.
 *
 * @param publicKeyRaw - `Uint8Array` of 32 bytes (RFC 8032 encoding)
 * @returns the DID string (56 characters)
 * @throws NodusError `KEY_INVALID` when the key is not 32 bytes, not a curve point, or of small order
 */
export function didKeyFromEd25519(publicKeyRaw: Uint8Array): string {
  requireEd25519(publicKeyRaw)
  return DID_KEY_PREFIX + multibaseKey(ED25519_PUB_PREFIX, publicKeyRaw)
}

/**
 * The Ed25519 public key inside a did:key. Only the bare DID is accepted (no path, query or
 * `#fragment`), only multibase base58btc, only multicodec `ed25519-pub`.
 *
 * @param did - e.g. `did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp`
 * @param options.checkPoint - default true: refuse bytes that are not a valid, large-order point.
 *   That check costs about 1 ms (BigInt arithmetic); false skips it for a caller that checks the key
 *   once elsewhere (a kv database id is parsed per operation, its owner key checked at `create`)
 * @returns `Uint8Array` of 32 bytes
 * @throws NodusError `KEY_INVALID` on anything else, including (with `checkPoint`) invalid and
 *   small-order points
 */
export function ed25519FromDidKey(did: string, options: { checkPoint?: boolean } = {}): Uint8Array {
  const fail = (reason: string, cause?: unknown): NodusError =>
    new NodusError('KEY_INVALID', `not an Ed25519 did:key: ${reason}`, {
      details: { reason },
      ...(cause === undefined ? {} : { cause }),
    })
  if (typeof did !== 'string' || did.length > MAX_DID_LENGTH) throw fail('not a string of at most 128 chars')
  if (!did.startsWith(DID_KEY_PREFIX)) throw fail('missing did:key: prefix')
  const multibase = did.slice(DID_KEY_PREFIX.length)
  if (!multibase.startsWith(base58btc.prefix)) throw fail('multibase is not base58btc (z)')
  let bytes: Uint8Array
  try {
    bytes = base58btc.decode(multibase)
  } catch (err) {
    throw fail('bad base58btc', err)
  }
  if (bytes.length !== ED25519_PUB_PREFIX.length + 32) throw fail('wrong length')
  if (bytes[0] !== ED25519_PUB_PREFIX[0] || bytes[1] !== ED25519_PUB_PREFIX[1]) {
    throw fail('multicodec is not ed25519-pub (0xed)')
  }
  const key = bytes.slice(ED25519_PUB_PREFIX.length)
  if (options.checkPoint !== false && !isValidEd25519PublicKey(key)) throw fail('not a valid Ed25519 point')
  return key
}

/**
 * The X25519 public key (Montgomery u = (1 + y) / (1 - y), RFC 7748 §4.1) of an Ed25519 public key:
 * the did:key key-agreement key.
 *
 * @param publicKeyRaw - Ed25519 public key, `Uint8Array` of 32 bytes
 * @returns X25519 public key, `Uint8Array` of 32 bytes (RFC 7748 little-endian u)
 * @throws NodusError `KEY_INVALID` when the Ed25519 key is invalid or of small order
 */
export function x25519FromEd25519(publicKeyRaw: Uint8Array): Uint8Array {
  const { y } = requireEd25519(publicKeyRaw)
  return numberToBytesLE(mod((1n + y) * inv(mod(1n - y))), 32)
}

/**
 * The X25519 private key matching {@link x25519FromEd25519}: the first 32 bytes of SHA-512(seed),
 * clamped (RFC 8032 §5.1.5 step 1–2; the same scalar the Ed25519 key uses).
 *
 * @param seed - Ed25519 private key seed, `Uint8Array` of 32 bytes
 * @returns X25519 private key, `Uint8Array` of 32 bytes
 * @throws NodusError `KEY_INVALID` when `seed` is not 32 bytes
 */
export function x25519PrivateFromEd25519Seed(seed: Uint8Array): Uint8Array {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) {
    throw new NodusError('KEY_INVALID', 'Ed25519 seed must be 32 bytes')
  }
  const h = createHash('sha512').update(seed).digest()
  const scalar = new Uint8Array(h.subarray(0, 32))
  scalar[0] = (scalar[0] ?? 0) & 248
  scalar[31] = ((scalar[31] ?? 0) & 127) | 64
  return scalar
}

/**
 * Multibase (base58btc) multikey of an X25519 public key, `z6LS...`: the fragment did:key uses
 * for the key-agreement verification method.
 *
 * @param publicKeyRaw - X25519 public key, `Uint8Array` of 32 bytes
 * @throws NodusError `KEY_INVALID` when the key is not 32 bytes
 */
export function x25519Multikey(publicKeyRaw: Uint8Array): string {
  if (!(publicKeyRaw instanceof Uint8Array) || publicKeyRaw.length !== 32) {
    throw new NodusError('KEY_INVALID', 'X25519 public key must be 32 bytes')
  }
  return multibaseKey(X25519_PUB_PREFIX, publicKeyRaw)
}
