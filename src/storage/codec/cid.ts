/**
 * Content identifiers for shards and manifests: CIDv1 with a BLAKE3-256 multihash (DESIGN.md,
 * "Storing a file" item 3), built with `multiformats`.
 *
 * Sources: CID spec https://github.com/multiformats/cid; multicodec table
 * https://github.com/multiformats/multicodec (raw 0x55, dag-cbor 0x71, blake3 0x1e).
 */
import { createReadStream } from 'node:fs'
import { base32 } from 'multiformats/bases/base32'
import { base36 } from 'multiformats/bases/base36'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import { create as createDigest, Digest } from 'multiformats/hashes/digest'
import { type AbortOptions, throwIfAborted } from '../../common/abort.ts'
import { bytesEqual } from '../../common/bytes.ts'
import { NodusError } from '../../common/errors.ts'
import { BLAKE3_OUT_BYTES, Blake3Stream, blake3 } from '../../crypto/index.ts'

/** Multicodec `raw`: the CID addresses plain bytes (shards). */
export const RAW_CODEC = 0x55
/** Multicodec `dag-cbor`: the CID addresses a dag-cbor block (manifests). */
export const DAG_CBOR_CODEC = 0x71
/** Multicodec `blake3` multihash, used here with its default 32-byte output. */
export const BLAKE3_MULTIHASH = 0x1e

/** Read size of {@link cidForFile}, in bytes (1 MiB). */
export const CID_FILE_READ_BYTES = 1024 * 1024
/** Longest CID string `parseCid` looks at; a canonical one here is 59 characters in base32. */
const MAX_CID_STRING_LENGTH = 256
/** Longest binary CID `parseCid` looks at; a canonical one here is 36 bytes. */
const MAX_CID_BYTES = 128

export type { CID }

/**
 * The CID of content whose BLAKE3-256 digest is `digest`.
 *
 * @param digest - `Uint8Array` of 32 bytes
 * @param codec - multicodec of the content; default {@link RAW_CODEC}
 * @throws NodusError `CID_INVALID` when `digest` is not 32 bytes
 */
export function cidFromDigest(digest: Uint8Array, codec: number = RAW_CODEC): CID {
  if (!(digest instanceof Uint8Array) || digest.byteLength !== BLAKE3_OUT_BYTES) {
    throw new NodusError('CID_INVALID', `BLAKE3-256 digest must be ${BLAKE3_OUT_BYTES} bytes`)
  }
  if (codec > 0x7f) return CID.createV1(codec, createDigest(BLAKE3_MULTIHASH, digest))
  // One buffer for the CID, its multihash and digest (views into it): createV1 and decode allocate
  // two or three, and a manifest keeps a CID per shard.
  const bytes = new Uint8Array(4 + BLAKE3_OUT_BYTES)
  bytes[0] = 1 // CIDv1
  bytes[1] = codec // a one-byte varint
  bytes[2] = BLAKE3_MULTIHASH
  bytes[3] = BLAKE3_OUT_BYTES
  bytes.set(digest, 4)
  return new CID(
    1,
    codec,
    new Digest(BLAKE3_MULTIHASH, BLAKE3_OUT_BYTES, bytes.subarray(4), bytes.subarray(2)),
    bytes,
  )
}

/**
 * The CID of `bytes`: CIDv1, `codec`, multihash BLAKE3-256 of `bytes`.
 *
 * @param codec - default {@link RAW_CODEC}
 */
export function cidForBytes(bytes: Uint8Array, codec: number = RAW_CODEC): CID {
  return cidFromDigest(blake3(bytes), codec)
}

function cidInvalid(reason: string, cause?: unknown): NodusError {
  return new NodusError('CID_INVALID', `invalid CID: ${reason}`, {
    details: { reason },
    ...(cause === undefined ? {} : { cause }),
  })
}

/** Options of {@link parseCid}. */
export interface ParseCidOptions {
  /** When set, the CID's codec must be this multicodec (e.g. {@link RAW_CODEC} for shards). */
  codec?: number
}

/**
 * Parse a CID from untrusted input and check it is one of ours: CIDv1, multihash BLAKE3-256 with a
 * 32-byte digest, canonically encoded (minimal varints; the string re-encodes to itself).
 * Strings may be multibase base32 (`b`, the default), base58btc (`z`) or base36 (`k`).
 *
 * @param text - the CID as a string, or its binary form
 * @returns the CID; its codec is not restricted unless `options.codec` is given
 * @throws NodusError `CID_INVALID` for anything else (garbage, CIDv0, other hashes, wrong digest
 *   length, trailing bytes, oversized input); never a different error
 */
export function parseCid(text: string | Uint8Array, options: ParseCidOptions = {}): CID {
  let cid: CID
  let canonical: CID
  try {
    if (typeof text === 'string') {
      if (text.length === 0 || text.length > MAX_CID_STRING_LENGTH) throw cidInvalid('empty or too long')
      cid = CID.parse(text)
    } else if (text instanceof Uint8Array) {
      if (text.byteLength === 0 || text.byteLength > MAX_CID_BYTES) throw cidInvalid('empty or too long')
      cid = CID.decode(text)
    } else {
      throw cidInvalid('not a string or bytes')
    }
    if (cid.version !== 1) throw cidInvalid(`CIDv${cid.version}, expected CIDv1`)
    if (cid.multihash.code !== BLAKE3_MULTIHASH) {
      throw cidInvalid(`multihash 0x${cid.multihash.code.toString(16)}, expected blake3 (0x1e)`)
    }
    if (cid.multihash.digest.byteLength !== BLAKE3_OUT_BYTES) {
      throw cidInvalid(`digest is ${cid.multihash.digest.byteLength} bytes, expected ${BLAKE3_OUT_BYTES}`)
    }
    canonical = cidFromDigest(cid.multihash.digest.slice(), cid.code)
    const sameEncoding =
      typeof text === 'string'
        ? canonicalString(canonical, text[0]) === text
        : bytesEqual(canonical.bytes, text)
    if (!sameEncoding) throw cidInvalid('non-canonical encoding')
  } catch (err) {
    if (err instanceof NodusError) throw err
    throw cidInvalid(err instanceof Error ? err.message : 'unparseable', err)
  }
  if (options.codec !== undefined && canonical.code !== options.codec) {
    throw cidInvalid(`codec 0x${canonical.code.toString(16)}, expected 0x${options.codec.toString(16)}`)
  }
  return canonical
}

function canonicalString(cid: CID, prefix: string | undefined): string | undefined {
  if (prefix === base32.prefix) return cid.toString(base32)
  if (prefix === base58btc.prefix) return cid.toString(base58btc)
  if (prefix === base36.prefix) return cid.toString(base36)
  return undefined
}

/**
 * The 32-byte BLAKE3 digest inside `cid`.
 *
 * @throws NodusError `CID_INVALID` when its multihash is not BLAKE3-256
 */
export function cidDigest(cid: CID): Uint8Array {
  if (cid.multihash.code !== BLAKE3_MULTIHASH || cid.multihash.digest.byteLength !== BLAKE3_OUT_BYTES) {
    throw cidInvalid('multihash is not BLAKE3-256')
  }
  return cid.multihash.digest
}

/**
 * Check that `bytes` are the content `cid` names (BLAKE3 of `bytes` equals the CID's digest).
 *
 * @throws NodusError `CID_MISMATCH` (details: `cid`, `actual` digest hex) when they differ
 * @throws NodusError `CID_INVALID` when `cid` is not BLAKE3-256
 */
export function verifyCid(cid: CID, bytes: Uint8Array): void {
  const expected = cidDigest(cid)
  const actual = blake3(bytes)
  if (!bytesEqual(expected, actual)) {
    throw new NodusError('CID_MISMATCH', `content does not match ${cid.toString()}`, {
      details: { cid: cid.toString(), actual: Buffer.from(actual).toString('hex'), bytes: bytes.byteLength },
    })
  }
}

/** `cid` as its default string: multibase base32 (`b...`, lower case). */
export function cidToString(cid: CID): string {
  return cid.toString(base32)
}

/**
 * The raw-codec CID of a file's content, hashed incrementally in reads of 1 MiB; the file is never
 * read whole into memory.
 *
 * @param path - file to hash
 * @throws NodusError `FILE_NOT_FOUND` when `path` does not exist
 * @throws NodusError `ABORTED` (or the signal's NodusError reason, e.g. `TIMEOUT`) when `options.signal` aborts
 */
export async function cidForFile(path: string, options: AbortOptions = {}): Promise<CID> {
  const { signal } = options
  throwIfAborted(signal)
  const stream = createReadStream(path, {
    highWaterMark: CID_FILE_READ_BYTES,
    ...(signal === undefined ? {} : { signal }),
  })
  const hasher = new Blake3Stream()
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      throwIfAborted(signal)
      hasher.update(chunk)
    }
  } catch (err) {
    throwIfAborted(signal)
    if (typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOENT') {
      throw new NodusError('FILE_NOT_FOUND', `no such file: ${path}`, { details: { path }, cause: err })
    }
    throw err
  } finally {
    stream.destroy()
  }
  return cidFromDigest(hasher.digest(), RAW_CODEC)
}
