/**
 * X-Wing key files, beside the node keys: `<dataDir>/keys/xwing-<epoch>.key`, one per key record epoch
 * (the messaging area rotates keys and keeps the previous one while messages sealed to it may arrive).
 *
 * Format: PKCS#8 `OneAsymmetricKey` as draft-connolly-cfrg-xwing-kem-10 §5.8.2 defines it, 54 bytes of
 * DER: a fixed 22-byte prefix (version 0, AlgorithmIdentifier id-XWing 1.3.6.1.4.1.62253.25722 with no
 * parameters, privateKey OCTET STRING (32)) then the 32-byte decapsulation key (the seed); the draft's
 * Appendix D example is this encoding of the seed 00 01 … 1f (test/crypto/xwing-keys.test.ts).
 * Written as the node keys are (src/crypto/key-files.ts): mode 0600, temp file, fsync, `link()` (never
 * overwrites), directory fsync.
 */
import { link, mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { type AbortOptions, throwIfAborted } from '../common/abort.ts'
import { bytesEqual } from '../common/bytes.ts'
import { NodusError } from '../common/errors.ts'
import { errnoCode, fsyncDir, readOrNull, unlinkQuietly, writeTemp } from './key-files.ts'
import { KEYS_DIR } from './keys.ts'
import { XWING_SECRET_KEY_BYTES, type XWingKeyPair, xwingKeyPairFromSeed } from './xwing.ts'

/**
 * 30 34 (SEQUENCE, 52) | 02 01 00 (version 0) | 30 0d 06 0b 2b0601040183e62d81c87a (AlgorithmIdentifier,
 * id-XWing) | 04 20 (privateKey OCTET STRING, 32).
 */
const XWING_PKCS8_PREFIX = Uint8Array.from(Buffer.from('3034020100300d060b2b0601040183e62d81c87a0420', 'hex'))
/** Bytes in an X-Wing key file. */
export const XWING_KEY_FILE_BYTES = XWING_PKCS8_PREFIX.length + XWING_SECRET_KEY_BYTES
const FILE_PATTERN = /^xwing-(0|[1-9][0-9]{0,9})\.key$/
const MAX_EPOCH = 2 ** 32 - 1

/** The file name of the key of `epoch`: `xwing-<epoch>.key`. */
export function xwingKeyFileName(epoch: number): string {
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH)
    throw new NodusError('INVALID_ARGUMENT', 'an X-Wing key epoch is an integer in [0, 2^32 − 1]')
  return `xwing-${epoch}.key`
}

/** The PKCS#8 encoding of `keyPair`'s decapsulation key (54 bytes; the module doc). */
export function encodeXWingKeyFile(keyPair: XWingKeyPair): Uint8Array {
  const out = new Uint8Array(XWING_KEY_FILE_BYTES)
  out.set(XWING_PKCS8_PREFIX, 0)
  out.set(keyPair.seed, XWING_PKCS8_PREFIX.length)
  return out
}

/**
 * Decode a key file.
 *
 * @throws NodusError `KEY_INVALID` when it is not the 54-byte X-Wing PKCS#8 encoding
 */
export function decodeXWingKeyFile(bytes: Uint8Array, file = 'xwing key'): XWingKeyPair {
  if (
    bytes.byteLength !== XWING_KEY_FILE_BYTES ||
    !bytesEqual(bytes.subarray(0, XWING_PKCS8_PREFIX.length), XWING_PKCS8_PREFIX)
  ) {
    throw new NodusError('KEY_INVALID', `${file} is not a valid key: not a 54-byte X-Wing PKCS#8 key`, {
      details: { file, reason: 'encoding' },
    })
  }
  return xwingKeyPairFromSeed(bytes.subarray(XWING_PKCS8_PREFIX.length))
}

/**
 * Save `keyPair` as the key of `epoch` in `dir/keys/` (format in the module doc), mode 0600.
 *
 * @throws NodusError `KEYS_EXIST` when that epoch's file exists; `INVALID_ARGUMENT` on a bad epoch
 */
export async function saveXWingKey(
  dir: string,
  epoch: number,
  keyPair: XWingKeyPair,
  options: AbortOptions = {},
): Promise<void> {
  throwIfAborted(options.signal)
  const name = xwingKeyFileName(epoch)
  const keysDir = join(dir, KEYS_DIR)
  await mkdir(keysDir, { recursive: true, mode: 0o700 })
  const temp = await writeTemp(keysDir, name, encodeXWingKeyFile(keyPair))
  try {
    throwIfAborted(options.signal)
    try {
      await link(temp, join(keysDir, name))
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err
      throw new NodusError('KEYS_EXIST', `${join(keysDir, name)} already exists; refusing to overwrite`, {
        details: { dir, file: name },
        cause: err,
      })
    }
  } finally {
    await unlinkQuietly(temp)
  }
  await fsyncDir(keysDir)
}

/**
 * Load the key of `epoch` saved by {@link saveXWingKey}.
 *
 * @throws NodusError `KEYS_MISSING` when the file is absent; `KEY_INVALID` when it is corrupt
 */
export async function loadXWingKey(
  dir: string,
  epoch: number,
  options: AbortOptions = {},
): Promise<XWingKeyPair> {
  throwIfAborted(options.signal)
  const name = xwingKeyFileName(epoch)
  const bytes = await readOrNull(join(dir, KEYS_DIR, name))
  if (bytes === null) {
    throw new NodusError('KEYS_MISSING', `no X-Wing key of epoch ${epoch} in ${join(dir, KEYS_DIR)}`, {
      details: { dir, missing: [name] },
    })
  }
  return decodeXWingKeyFile(bytes, name)
}

/** The epochs that have a key file in `dir/keys/`, ascending (empty when there is no keys folder). */
export async function listXWingKeys(dir: string): Promise<number[]> {
  let names: string[]
  try {
    names = await readdir(join(dir, KEYS_DIR))
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return []
    throw err
  }
  const epochs: number[] = []
  for (const n of names) {
    const m = FILE_PATTERN.exec(n)
    if (m !== null && Number(m[1]) <= MAX_EPOCH) epochs.push(Number(m[1]))
  }
  return epochs.sort((a, b) => a - b)
}

/** Delete the key of `epoch` (once no message sealed to it can still arrive); nothing when absent. */
export async function deleteXWingKey(dir: string, epoch: number): Promise<void> {
  const keysDir = join(dir, KEYS_DIR)
  await unlinkQuietly(join(keysDir, xwingKeyFileName(epoch)))
  try {
    await fsyncDir(keysDir)
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err
  }
}
