/**
 * A node's identity: an Ed25519 key (libp2p PeerId, did:key) and an ML-DSA-65 key (FIPS 204),
 * and their files in the data directory.
 *
 * On disk, in `<dataDir>/keys/` (directory mode 0700, files mode 0600):
 * - `ed25519.key`: the libp2p `PrivateKey` protobuf (`{ Type: Ed25519, Data: seed(32) || publicKey(32) }`),
 *   the same bytes as `privateKeyToProtobuf` and as a js-libp2p / kubo identity.
 * - `mldsa65.key`: PKCS#8 DER, seed-only form (54 bytes: a fixed 22-byte prefix with the ML-DSA-65 OID
 *   2.16.840.1.101.3.4.3.18 and `[0] OCTET STRING (32)`, then the 32-byte FIPS 204 seed ξ), as in
 *   RFC 9881 (ML-DSA in X.509). OpenSSL 3.5 (`openssl pkey -inform DER`) reads it. The seed form was
 *   chosen over Node's default "both" export (4,098 bytes) because the expanded key adds nothing the
 *   seed cannot regenerate and its consistency would have to be checked on load.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { link, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import {
  generateKeyPair,
  generateKeyPairFromSeed,
  privateKeyFromProtobuf,
  privateKeyToProtobuf,
} from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { type AbortOptions, throwIfAborted } from '../common/abort.ts'
import { bytesEqual } from '../common/bytes.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import { errnoCode, exists, fsyncDir, readOrNull, unlinkQuietly, writeTemp } from './key-files.ts'

/** Bytes in an ML-DSA seed ξ (FIPS 204 Algorithm 1). */
export const MLDSA_SEED_BYTES = 32
/** Bytes in an Ed25519 public key and in its seed (RFC 8032 §5.1.5). */
export const ED25519_KEY_BYTES = 32

/** Folder under the data directory that holds the key files. */
export const KEYS_DIR = 'keys'
/** File name of the Ed25519 key (libp2p protobuf). */
export const ED25519_KEY_FILE = 'ed25519.key'
/** File name of the ML-DSA-65 key (PKCS#8 DER, seed-only). */
export const MLDSA65_KEY_FILE = 'mldsa65.key'

/**
 * Seed-only PKCS#8 up to the seed: 30 34 (SEQUENCE) | 02 01 00 (version 0) |
 * 30 0b 06 09 608648016503040312 (AlgorithmIdentifier, id-ml-dsa-65) | 04 22 (privateKey OCTET STRING) |
 * 80 20 (`seed [0] IMPLICIT OCTET STRING (SIZE (32))`).
 */
const MLDSA65_PKCS8_SEED_PREFIX = Uint8Array.from(
  Buffer.from('3034020100300b060960864801650304031204228020', 'hex'),
)
const MLDSA65_PKCS8_SEED_BYTES = MLDSA65_PKCS8_SEED_PREFIX.length + MLDSA_SEED_BYTES

/** A node's keys. Holds secrets: never log it. */
export interface NodeIdentity {
  /** Ed25519 key; `ed25519.publicKey.raw` is the 32-byte public key. */
  ed25519: Ed25519PrivateKey
  /** The libp2p PeerId of `ed25519` (identity multihash of its protobuf public key). */
  peerId: PeerId
  mldsa: {
    /** Raw ML-DSA-65 public key, `Uint8Array` of 1952 bytes (FIPS 204 pkEncode). */
    publicKey: Uint8Array
    /** Node KeyObject of type `ml-dsa-65`, created from a seed (so it can be saved). */
    privateKey: KeyObject
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function mldsaFromSeed(seed: Uint8Array): NodeIdentity['mldsa'] {
  const privateKey = createPrivateKey({
    key: toBuffer(seed),
    format: 'raw-seed',
    asymmetricKeyType: 'ml-dsa-65',
  })
  const publicKey = new Uint8Array(createPublicKey(privateKey).export({ format: 'raw-public' }))
  return { publicKey, privateKey }
}

/**
 * A new random identity (Ed25519 from libp2p's generator, ML-DSA-65 from OpenSSL through node:crypto).
 * Does not touch the disk.
 */
export async function generateIdentity(): Promise<NodeIdentity> {
  const ed25519 = await generateKeyPair('Ed25519')
  const { privateKey } = generateKeyPairSync('ml-dsa-65')
  const publicKey = new Uint8Array(createPublicKey(privateKey).export({ format: 'raw-public' }))
  return { ed25519, peerId: peerIdFromPrivateKey(ed25519), mldsa: { publicKey, privateKey } }
}

/**
 * A deterministic identity from two seeds, for fixtures and tests (and what `loadIdentity` rebuilds).
 *
 * @param ed25519Seed - `Uint8Array` of 32 bytes (RFC 8032 private key)
 * @param mldsaSeed - `Uint8Array` of 32 bytes (FIPS 204 ML-DSA.KeyGen seed ξ)
 * @throws NodusError `KEY_INVALID` when a seed is not 32 bytes
 */
export async function identityFromSeeds(
  ed25519Seed: Uint8Array,
  mldsaSeed: Uint8Array,
): Promise<NodeIdentity> {
  if (ed25519Seed.length !== ED25519_KEY_BYTES || mldsaSeed.length !== MLDSA_SEED_BYTES) {
    throw new NodusError('KEY_INVALID', 'Ed25519 and ML-DSA seeds must be 32 bytes each', {
      details: { ed25519SeedBytes: ed25519Seed.length, mldsaSeedBytes: mldsaSeed.length },
    })
  }
  const ed25519 = await generateKeyPairFromSeed('Ed25519', ed25519Seed)
  return { ed25519, peerId: peerIdFromPrivateKey(ed25519), mldsa: mldsaFromSeed(mldsaSeed) }
}

function keyPaths(dir: string): { keysDir: string; ed: string; mldsa: string } {
  const keysDir = join(dir, KEYS_DIR)
  return { keysDir, ed: join(keysDir, ED25519_KEY_FILE), mldsa: join(keysDir, MLDSA65_KEY_FILE) }
}

function keysExist(dir: string, cause?: unknown): NodusError {
  return new NodusError('KEYS_EXIST', `keys already exist in ${join(dir, KEYS_DIR)}; refusing to overwrite`, {
    details: { dir },
    ...(cause === undefined ? {} : { cause }),
  })
}

/**
 * Save `id` to `dir/keys/ed25519.key` and `dir/keys/mldsa65.key` (formats in the module doc), mode 0600.
 *
 * Each file is written to a temp file (mode 0600), fsynced, then hard-linked to its final name and the
 * directory fsynced. `link(2)` fails with EEXIST instead of replacing, so unlike `rename(2)` a race can
 * never overwrite an existing key (it is the `'wx'` guarantee, plus atomic content). If the second link
 * loses a race, the first file is removed again, so a failed save leaves no key of ours behind.
 * The data directory must be on a filesystem with hard links (every local POSIX filesystem, NTFS).
 *
 * @throws NodusError `KEYS_EXIST` when either key file already exists
 * @throws NodusError `KEY_INVALID` when the ML-DSA private key was not created from a seed
 */
export async function saveIdentity(dir: string, id: NodeIdentity, options: AbortOptions = {}): Promise<void> {
  throwIfAborted(options.signal)
  const edBytes = privateKeyToProtobuf(id.ed25519)
  let seed: Buffer
  try {
    seed = id.mldsa.privateKey.export({ format: 'raw-seed' })
  } catch (err) {
    throw new NodusError('KEY_INVALID', 'ML-DSA-65 private key has no seed to save', { cause: err })
  }
  const mldsaBytes = new Uint8Array(MLDSA65_PKCS8_SEED_BYTES)
  mldsaBytes.set(MLDSA65_PKCS8_SEED_PREFIX, 0)
  mldsaBytes.set(seed, MLDSA65_PKCS8_SEED_PREFIX.length)

  const paths = keyPaths(dir)
  await mkdir(paths.keysDir, { recursive: true, mode: 0o700 })
  if ((await exists(paths.ed)) || (await exists(paths.mldsa))) throw keysExist(dir)

  const temps: string[] = []
  try {
    const edTemp = await writeTemp(paths.keysDir, ED25519_KEY_FILE, edBytes)
    temps.push(edTemp)
    const mldsaTemp = await writeTemp(paths.keysDir, MLDSA65_KEY_FILE, mldsaBytes)
    temps.push(mldsaTemp)
    throwIfAborted(options.signal)
    try {
      await link(edTemp, paths.ed)
    } catch (err) {
      throw errnoCode(err) === 'EEXIST' ? keysExist(dir, err) : err
    }
    try {
      await link(mldsaTemp, paths.mldsa)
    } catch (err) {
      await unlinkQuietly(paths.ed) // ours: the link above succeeded
      throw errnoCode(err) === 'EEXIST' ? keysExist(dir, err) : err
    }
  } finally {
    for (const t of temps) await unlinkQuietly(t)
  }
  await fsyncDir(paths.keysDir)
  await fsyncDir(dir)
}

/**
 * True when either key file exists in `dir/keys/`. (A half-written identity counts as existing, so
 * callers that generate keys when none exist never overwrite one; `loadIdentity` then reports it.)
 */
export async function identityExists(dir: string): Promise<boolean> {
  const paths = keyPaths(dir)
  return (await exists(paths.ed)) || (await exists(paths.mldsa))
}

function keyInvalid(file: string, reason: string, cause?: unknown): NodusError {
  return new NodusError('KEY_INVALID', `${file} is not a valid key: ${reason}`, {
    details: { file, reason },
    ...(cause === undefined ? {} : { cause }),
  })
}

async function decodeEd25519File(bytes: Uint8Array): Promise<Ed25519PrivateKey> {
  let stored: ReturnType<typeof privateKeyFromProtobuf>
  try {
    stored = privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw keyInvalid(ED25519_KEY_FILE, 'not a libp2p private key protobuf', err)
  }
  if (stored.type !== 'Ed25519') throw keyInvalid(ED25519_KEY_FILE, `key type is ${stored.type}, not Ed25519`)
  // Rebuild from the seed: libp2p signs with the stored public half as given, and a wrong one would
  // produce signatures that leak the private scalar. The file must be exactly the canonical encoding.
  const rebuilt = await generateKeyPairFromSeed('Ed25519', stored.raw.subarray(0, ED25519_KEY_BYTES))
  if (!bytesEqual(privateKeyToProtobuf(rebuilt), bytes)) {
    throw keyInvalid(ED25519_KEY_FILE, 'public key does not match the seed, or non-canonical encoding')
  }
  return rebuilt
}

function decodeMldsaFile(bytes: Uint8Array): NodeIdentity['mldsa'] {
  if (
    bytes.length !== MLDSA65_PKCS8_SEED_BYTES ||
    !bytesEqual(bytes.subarray(0, MLDSA65_PKCS8_SEED_PREFIX.length), MLDSA65_PKCS8_SEED_PREFIX)
  ) {
    throw keyInvalid(MLDSA65_KEY_FILE, 'not a 54-byte seed-only PKCS#8 ML-DSA-65 key')
  }
  try {
    return mldsaFromSeed(bytes.subarray(MLDSA65_PKCS8_SEED_PREFIX.length))
  } catch (err) {
    throw keyInvalid(MLDSA65_KEY_FILE, 'rejected by node:crypto', err)
  }
}

/**
 * Load the identity saved by {@link saveIdentity}.
 *
 * @throws NodusError `KEYS_MISSING` when either key file is absent (`details.missing` names them)
 * @throws NodusError `KEY_INVALID` when a key file is corrupt (wrong type, length, encoding, or an
 *   Ed25519 public half that does not match its seed)
 */
export async function loadIdentity(dir: string, options: AbortOptions = {}): Promise<NodeIdentity> {
  throwIfAborted(options.signal)
  const paths = keyPaths(dir)
  const [edBytes, mldsaBytes] = await Promise.all([readOrNull(paths.ed), readOrNull(paths.mldsa)])
  if (edBytes === null || mldsaBytes === null) {
    const missing = [
      edBytes === null ? ED25519_KEY_FILE : null,
      mldsaBytes === null ? MLDSA65_KEY_FILE : null,
    ]
    throw new NodusError('KEYS_MISSING', `no complete identity in ${paths.keysDir}`, {
      details: { dir, missing: missing.filter((m) => m !== null) },
    })
  }
  try {
    const ed25519 = await decodeEd25519File(edBytes)
    return { ed25519, peerId: peerIdFromPrivateKey(ed25519), mldsa: decodeMldsaFile(mldsaBytes) }
  } catch (err) {
    if (isNodusError(err)) throw err
    throw keyInvalid(ED25519_KEY_FILE, 'could not be decoded', err)
  }
}
