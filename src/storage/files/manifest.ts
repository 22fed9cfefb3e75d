/**
 * File manifests: what a user gets back from a put and shares.
 *
 * A manifest is a dag-cbor map (DESIGN.md, "Storing a file" step 6) with the file size, the BLAKE3 of
 * the whole file, k, m, the segment size and, per segment, its shard CIDs and their holders. The
 * uploader signs the encoded body with a hybrid signature (Ed25519 + ML-DSA-65, both must verify);
 * the signed envelope `{ body, sig }` is itself dag-cbor and its CIDv1 (codec dag-cbor 0x71,
 * multihash BLAKE3-256) is the manifest CID.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { bytesEqual } from '../../common/bytes.ts'
import { NodusError } from '../../common/errors.ts'
import { type HybridPublicKey, type HybridSignature, verifyHybrid } from '../../crypto/index.ts'
import { cidForBytes, DAG_CBOR_CODEC, parseCid } from '../codec/cid.ts'

export const MANIFEST_DOMAIN = 'nodus/manifest/v1'
/** Largest encoded manifest accepted, bytes (about 40,000 segments of RS(10,4)). */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024

export interface ManifestShard {
  cid: CID
  /** PeerId strings of the peers that acknowledged storing this shard. */
  holders: string[]
}

export interface ManifestSegment {
  /** Bytes of file data in this segment (the last segment may be short). */
  size: number
  /** Bytes per shard: ceil(size / k); data is zero-padded to k × shardSize. */
  shardSize: number
  /**
   * k data shards then m parity shards. After a holder update that added parity (dynamic redundancy,
   * {@link HolderUpdate.parity}), extra parity shards follow: rows k+m, k+m+1, … of the same code.
   */
  shards: ManifestShard[]
}

export interface Manifest {
  version: 1
  /** Optional file name, informational only. */
  name: string | undefined
  /** File size in bytes. */
  fileSize: number
  /** BLAKE3-256 of the whole file, 32 bytes. */
  fileBlake3: Uint8Array
  k: number
  m: number
  /** Segment size in bytes (every segment but the last has exactly this many bytes). */
  segmentSize: number
  segments: ManifestSegment[]
  uploader: { peerId: string; publicKey: HybridPublicKey }
  /** Milliseconds since the Unix epoch. */
  createdAt: number
  /** Starts at 1; repair publishes higher versions. */
  revision: number
}

export interface SignedManifest {
  manifest: Manifest
  sig: HybridSignature
  /** The exact dag-cbor bytes of the envelope; its CID is the manifest CID. */
  bytes: Uint8Array
  cid: CID
}

function bodyToCbor(m: Manifest): Record<string, unknown> {
  return {
    version: m.version,
    ...(m.name === undefined ? {} : { name: m.name }),
    fileSize: m.fileSize,
    fileBlake3: m.fileBlake3,
    k: m.k,
    m: m.m,
    segmentSize: m.segmentSize,
    segments: m.segments.map((s) => ({
      size: s.size,
      shardSize: s.shardSize,
      shards: s.shards.map((sh) => ({ cid: sh.cid, holders: sh.holders })),
    })),
    uploader: {
      peerId: m.uploader.peerId,
      ed25519: m.uploader.publicKey.ed25519,
      mldsa65: m.uploader.publicKey.mldsa65,
    },
    createdAt: m.createdAt,
    revision: m.revision,
  }
}

/** The bytes that the uploader signs: domain string, then the dag-cbor body. */
export function manifestSigningBytes(m: Manifest): Uint8Array {
  return dagCbor.encode({ domain: MANIFEST_DOMAIN, body: bodyToCbor(m) })
}

/** Sign and encode a manifest. `sign` produces the uploader's hybrid signature. */
export async function signManifest(
  m: Manifest,
  sign: (message: Uint8Array) => Promise<HybridSignature>,
): Promise<SignedManifest> {
  validateManifest(m)
  const sig = await sign(manifestSigningBytes(m))
  const bytes = dagCbor.encode({ body: bodyToCbor(m), sig: { ed25519: sig.ed25519, mldsa65: sig.mldsa65 } })
  return { manifest: m, sig, bytes, cid: cidForBytes(bytes, DAG_CBOR_CODEC) }
}

/** MANIFEST_INVALID (reject) with `msg` (the decoders here and in holder-update.ts). */
export function invalid(msg: string): NodusError {
  return new NodusError('MANIFEST_INVALID', `manifest: ${msg}`, { peerAction: 'reject' })
}

export function rec(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array)
    throw invalid(`${what} is not a map`)
  return v as Record<string, unknown>
}

export function int(v: unknown, what: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)
    throw invalid(`${what} must be an integer ≥ ${min}`)
  return v
}

export function bytesOf(v: unknown, what: string, len?: number): Uint8Array {
  if (!(v instanceof Uint8Array) || (len !== undefined && v.byteLength !== len))
    throw invalid(`${what} must be ${len ?? ''} bytes`)
  return v
}

export function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw invalid(`${what} must be a list`)
  return v
}

export function cidOf(v: unknown, what: string): CID {
  const c = CID.asCID(v)
  if (c === null) throw invalid(`${what} must be a CID`)
  return parseCid(c.bytes)
}

/** Check a manifest's internal consistency. Throws MANIFEST_INVALID. */
export function validateManifest(m: Manifest): void {
  if (m.version !== 1) throw invalid('unsupported version')
  if (m.k < 1 || m.m < 0 || m.k + m.m > 256) throw invalid('bad k/m')
  if (m.segmentSize < 1) throw invalid('bad segment size')
  const expectSegments = m.fileSize === 0 ? 0 : Math.ceil(m.fileSize / m.segmentSize)
  if (m.segments.length !== expectSegments) throw invalid('segment count does not match file size')
  let total = 0
  m.segments.forEach((s, i) => {
    const last = i === m.segments.length - 1
    if (!last && s.size !== m.segmentSize) throw invalid(`segment ${i} has the wrong size`)
    if (s.size < 1 || s.size > m.segmentSize) throw invalid(`segment ${i} size out of range`)
    if (s.shardSize !== Math.ceil(s.size / m.k)) throw invalid(`segment ${i} shard size is wrong`)
    if (s.shards.length !== m.k + m.m) throw invalid(`segment ${i} must have k+m shards`)
    total += s.size
  })
  if (total !== m.fileSize) throw invalid('segment sizes do not add up to the file size')
}

/**
 * Decode a signed manifest from untrusted bytes, check its structure, that `cid` (if given) matches
 * the bytes, and that both signatures verify against the uploader key bound to its PeerId.
 * Throws MANIFEST_INVALID, CID_MISMATCH or SIGNATURE_INVALID.
 */
export function decodeManifest(bytes: Uint8Array, cid?: CID): SignedManifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) throw invalid('too large')
  const actual = cidForBytes(bytes, DAG_CBOR_CODEC)
  if (cid !== undefined && !actual.equals(cid)) {
    throw new NodusError('CID_MISMATCH', 'manifest bytes do not match the CID', { peerAction: 'ban' })
  }
  let raw: unknown
  try {
    raw = dagCbor.decode(bytes)
  } catch (err) {
    throw new NodusError('MANIFEST_INVALID', 'manifest is not dag-cbor', { cause: err, peerAction: 'reject' })
  }
  const env = rec(raw, 'envelope')
  const b = rec(env.body, 'body')
  const s = rec(env.sig, 'sig')
  const up = rec(b.uploader, 'uploader')
  const k = int(b.k, 'k', 1)
  const m: Manifest = {
    version: int(b.version, 'version', 1) as 1,
    name:
      b.name === undefined
        ? undefined
        : typeof b.name === 'string'
          ? b.name.slice(0, 4096)
          : (() => {
              throw invalid('name must be text')
            })(),
    fileSize: int(b.fileSize, 'fileSize'),
    fileBlake3: bytesOf(b.fileBlake3, 'fileBlake3', 32),
    k,
    m: int(b.m, 'm'),
    segmentSize: int(b.segmentSize, 'segmentSize', 1),
    segments: arr(b.segments, 'segments').map((sv, i) => {
      const sg = rec(sv, `segment ${i}`)
      return {
        size: int(sg.size, 'segment size', 1),
        shardSize: int(sg.shardSize, 'shard size', 1),
        shards: arr(sg.shards, 'shards').map((shv) => {
          const sh = rec(shv, 'shard')
          return {
            cid: cidOf(sh.cid, 'shard cid'),
            holders: arr(sh.holders, 'holders').map((h) => {
              if (typeof h !== 'string' || h.length > 128) throw invalid('holder must be a PeerId string')
              return h
            }),
          }
        }),
      }
    }),
    uploader: {
      peerId:
        typeof up.peerId === 'string'
          ? up.peerId
          : (() => {
              throw invalid('uploader peerId')
            })(),
      publicKey: {
        ed25519: bytesOf(up.ed25519, 'uploader ed25519', 32),
        mldsa65: bytesOf(up.mldsa65, 'uploader mldsa65'),
      },
    },
    createdAt: int(b.createdAt, 'createdAt'),
    revision: int(b.revision, 'revision', 1),
  }
  validateManifest(m)
  const sig: HybridSignature = {
    ed25519: bytesOf(s.ed25519, 'ed25519 sig', 64),
    mldsa65: bytesOf(s.mldsa65, 'mldsa65 sig'),
  }
  let boundKey: Uint8Array | undefined
  try {
    boundKey = peerIdFromString(m.uploader.peerId).publicKey?.raw
  } catch {
    boundKey = undefined
  }
  if (boundKey === undefined || !bytesEqual(boundKey, m.uploader.publicKey.ed25519)) {
    throw new NodusError('SIGNATURE_INVALID', 'uploader key does not match its PeerId', { peerAction: 'ban' })
  }
  if (!verifyHybrid(m.uploader.publicKey, manifestSigningBytes(m), sig)) {
    throw new NodusError('SIGNATURE_INVALID', 'manifest signature does not verify', { peerAction: 'ban' })
  }
  return { manifest: m, sig, bytes, cid: actual }
}
