/**
 * BLAKE3 hashing through the native `@napi-rs/blake-hash` binding.
 *
 * Source: the BLAKE3 specification (O'Connor, Aumasson, Neves, Wilcox-O'Hearn, 2020),
 * https://github.com/BLAKE3-team/BLAKE3-specs. Every output here is the default 32-byte output;
 * the binding has no extendable output (XOF).
 */
import { Blake3Hasher, blake3 as nativeBlake3 } from '@napi-rs/blake-hash'
import { NodusError } from '../common/errors.ts'

/** Bytes in every digest and key this module returns or accepts. */
export const BLAKE3_OUT_BYTES = 32
/** Bytes in a `blake3Keyed` key. */
export const BLAKE3_KEY_BYTES = 32

/** A zero-copy `Uint8Array` view of a Buffer, so callers compare plain Uint8Arrays. */
function view(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
}

/** A zero-copy Buffer view of a Uint8Array, for binding methods typed as `Buffer`. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/**
 * BLAKE3 hash (mode `hash`) of `data`.
 *
 * @param data - bytes to hash, any length
 * @returns `Uint8Array` of 32 bytes
 */
export function blake3(data: Uint8Array): Uint8Array {
  return view(nativeBlake3(data))
}

/**
 * BLAKE3 keyed hash (mode `keyed_hash`, a MAC/PRF) of `data` under `key`.
 *
 * @param key - `Uint8Array` of exactly 32 bytes
 * @param data - bytes to hash, any length
 * @returns `Uint8Array` of 32 bytes
 * @throws NodusError `KEY_INVALID` when `key` is not 32 bytes (checked here: the native binding
 *   aborts the whole process on a wrong-length key)
 */
export function blake3Keyed(key: Uint8Array, data: Uint8Array): Uint8Array {
  const hasher = Blake3Hasher.newKeyed(checkedKey(key))
  hasher.update(data)
  return view(hasher.digestBuffer())
}

/**
 * BLAKE3 key derivation (mode `derive_key`). The context string should be hardcoded, globally
 * unique and application-specific, e.g. `"nodus 2025-01-01 shard audit v1"` (BLAKE3 spec §6.2).
 *
 * @param context - the context string (UTF-8)
 * @param material - input key material, any length
 * @returns `Uint8Array` of 32 bytes
 */
export function blake3DeriveKey(context: string, material: Uint8Array): Uint8Array {
  return view(Blake3Hasher.deriveKey(context, material))
}

function checkedKey(key: Uint8Array): Buffer {
  if (!(key instanceof Uint8Array) || key.byteLength !== BLAKE3_KEY_BYTES) {
    throw new NodusError('KEY_INVALID', `BLAKE3 key must be ${BLAKE3_KEY_BYTES} bytes`, {
      details: { length: key instanceof Uint8Array ? key.byteLength : null },
    })
  }
  return asBuffer(key)
}

/**
 * Incremental BLAKE3 hasher, for data that arrives in chunks (files, streams). Feeding chunks
 * of any sizes gives the same digest as {@link blake3} over their concatenation.
 *
 * `digest()` does not finalize: it may be called several times, and `update()` may continue after.
 */
export class Blake3Stream {
  readonly #hasher: Blake3Hasher

  /**
   * @param key - optional `Uint8Array` of 32 bytes; when given, the stream computes {@link blake3Keyed}
   * @throws NodusError `KEY_INVALID` when `key` is given and is not 32 bytes
   */
  constructor(key?: Uint8Array) {
    this.#hasher = key === undefined ? new Blake3Hasher() : Blake3Hasher.newKeyed(checkedKey(key))
  }

  /** Absorb `chunk` (any length, including 0). The bytes are read before this returns. */
  update(chunk: Uint8Array): void {
    this.#hasher.update(chunk)
  }

  /** @returns `Uint8Array` of 32 bytes: the digest of everything absorbed so far */
  digest(): Uint8Array {
    return view(this.#hasher.digestBuffer())
  }
}
