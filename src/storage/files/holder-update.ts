/**
 * Holder updates: a keeper that repaired a file signs, with its hybrid key, the holders that changed
 * since the manifest (and extra parity rows), at the next revision; getters merge the latest one into
 * the manifest (docs/PROTOCOLS.md, "Holder updates"). A signed record (src/crypto/signed-record.ts);
 * who may sign one is checked by its receiver (keeper/holder-update-inbox.ts).
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import {
  ANY_SIGNER,
  type AuthorityRules,
  checkDecodedRecord,
  type HybridPublicKey,
  type HybridSignature,
  refuseVerified,
  SignedRecordCodec,
} from '../../crypto/index.ts'
import { cidForBytes, DAG_CBOR_CODEC } from '../codec/cid.ts'
import {
  arr,
  bytesOf,
  cidOf,
  int,
  invalid,
  MAX_MANIFEST_BYTES,
  type Manifest,
  type ManifestSegment,
  rec,
  type SignedManifest,
} from './manifest.ts'

export const HOLDER_UPDATE_DOMAIN = 'nodus/holder-update/v1'

/**
 * A repair's record of where a manifest's shards now live. The manifest itself (signed by the
 * uploader) is immutable and names the shard CIDs; a holder update, signed by the keeper that
 * repaired, only lists holders, so a wrong update can at worst send a getter to peers that do not
 * answer (it then falls back to the manifest's holders and DHT provider records). Who may sign one
 * and which revisions follow: {@link openHolderUpdate}, docs/PROTOCOLS.md ("Holder updates").
 */
export interface HolderUpdate {
  /** CID of the manifest this update is for. */
  manifest: CID
  /** Strictly increasing per manifest; the manifest itself is revision 1, updates start at 2. */
  revision: number
  /** Per segment, per shard (k+m, then the segment's extra parity shards), the PeerIds holding it, best first. */
  holders: string[][][]
  /**
   * Dynamic redundancy: per segment, the CIDs of extra parity shards (rows k+m, k+m+1, …) that a
   * keeper computed and placed; at most {@link MAX_EXTRA_PARITY} per segment and k+m+extra ≤ 256.
   * Absent or empty: none. The uploader did not sign these, so readers use them last and check what
   * they rebuild from them against the signed data shard CIDs.
   */
  parity?: CID[][]
  signer: { peerId: string; publicKey: HybridPublicKey }
  /** ms since the epoch. */
  createdAt: number
}

export interface SignedHolderUpdate {
  update: HolderUpdate
  bytes: Uint8Array
  cid: CID
}

/** Most extra parity shards a holder update may add to one segment. */
export const MAX_EXTRA_PARITY = 32

function updateBody(u: HolderUpdate): Record<string, unknown> {
  return {
    manifest: u.manifest,
    revision: u.revision,
    holders: u.holders,
    // Omitted when there is none, so updates without extra parity keep their encoding.
    ...(u.parity === undefined || u.parity.every((p) => p.length === 0) ? {} : { parity: u.parity }),
    signer: {
      peerId: u.signer.peerId,
      ed25519: u.signer.publicKey.ed25519,
      mldsa65: u.signer.publicKey.mldsa65,
    },
    createdAt: u.createdAt,
  }
}

/** Sign and encode a holder update with the repairer's hybrid key. */
export async function signHolderUpdate(
  u: HolderUpdate,
  sign: (message: Uint8Array) => Promise<HybridSignature>,
): Promise<SignedHolderUpdate> {
  const { bytes } = await HOLDER_UPDATE_RECORD.encode(u, sign)
  return { update: u, bytes, cid: cidForBytes(bytes, DAG_CBOR_CODEC) }
}

/** Most revisions a holder update may jump past the last one a keeper accepted (docs/PROTOCOLS.md). */
export const MAX_HOLDER_UPDATE_STEP = 16
/**
 * Highest holder update revision accepted anywhere (2^32): revisions grow by one per published repair,
 * so an honest manifest never gets near it; keepers and getters alike refuse one past it (and repair
 * does not load one), so no revision can leave the next one without room.
 */
export const MAX_HOLDER_UPDATE_REVISION = 2 ** 32

/** A holder update decoded from untrusted bytes: its structure is checked, its signature not yet. */
export interface ParsedHolderUpdate {
  update: HolderUpdate
  sig: HybridSignature
  bytes: Uint8Array
  cid: CID
}

/** Holder PeerId strings already seen to parse, so a large table costs one parse per distinct peer. */
function peerIdChecker(): (v: unknown) => string {
  const ok = new Set<string>()
  return (h) => {
    if (typeof h !== 'string' || h.length > 128) throw invalid('holder must be a PeerId string')
    if (!ok.has(h)) {
      try {
        peerIdFromString(h)
      } catch {
        throw invalid('holder is not a PeerId')
      }
      ok.add(h)
    }
    return h
  }
}

function decodeUpdateBody(b: Record<string, unknown>): HolderUpdate {
  const signer = rec(b.signer, 'signer')
  const holder = peerIdChecker()
  const parity =
    b.parity === undefined
      ? undefined
      : arr(b.parity, 'parity').map((pv, i) => {
          const list = arr(pv, `parity[${i}]`)
          if (list.length > MAX_EXTRA_PARITY) throw invalid(`parity[${i}] lists too many extra parity shards`)
          return list.map((c) => cidOf(c, 'extra parity cid'))
        })
  const holders = arr(b.holders, 'holders').map((segv, i) =>
    arr(segv, `holders[${i}]`).map((hv) => arr(hv, 'holder list').slice(0, 64).map(holder)),
  )
  return {
    manifest: cidOf(b.manifest, 'manifest'),
    revision: int(b.revision, 'revision', 2),
    holders,
    ...(parity === undefined ? {} : { parity }),
    signer: {
      // Not a PeerId: the signature check refuses it (SIGNATURE_INVALID, ban), as it always did.
      peerId: typeof signer.peerId === 'string' && signer.peerId.length <= 128 ? signer.peerId : '',
      publicKey: {
        ed25519: bytesOf(signer.ed25519, 'signer ed25519', 32),
        mldsa65: bytesOf(signer.mldsa65, 'signer mldsa65'),
      },
    },
    createdAt: int(b.createdAt, 'createdAt'),
  }
}

/**
 * Holder updates as signed records (src/crypto/signed-record.ts): hybrid signature, verified over the
 * re-encoded update, read with the open envelope and a signer that is not an Ed25519 PeerId counted
 * as a bad signature, as keepers have always read the updates they keep on disk.
 */
const HOLDER_UPDATE_RECORD = new SignedRecordCodec<HolderUpdate, 'hybrid'>({
  kind: 'holder update',
  code: 'MANIFEST_INVALID',
  domain: HOLDER_UPDATE_DOMAIN,
  scheme: 'hybrid',
  maxBytes: MAX_MANIFEST_BYTES,
  encodeBody: updateBody,
  decodeBody: decodeUpdateBody,
  signer: (u) => u.signer.peerId,
  hybridKey: (u) => u.signer.publicKey,
  envelope: 'open',
  unusableSigner: 'ban',
})

/**
 * Decode a holder update's structure from untrusted bytes, without a manifest and without checking
 * the signature: sizes, types, PeerId strings (signer and holders), at most 64 holders per shard and
 * {@link MAX_EXTRA_PARITY} extra parity CIDs per segment. Throws MANIFEST_INVALID (peerAction `reject`).
 */
export function parseHolderUpdate(bytes: Uint8Array): ParsedHolderUpdate {
  const { value, signature } = HOLDER_UPDATE_RECORD.decode(bytes)
  return { update: value, sig: signature, bytes, cid: cidForBytes(bytes, DAG_CBOR_CODEC) }
}

/**
 * Check that `update` applies to `manifest`: a holder table with one entry per segment and, per
 * segment, k+m entries plus one per extra parity shard; a parity table (when present) with one entry
 * per segment and k+m+extra ≤ 256. Throws MANIFEST_INVALID.
 */
export function checkHolderUpdateFits(manifest: Manifest, update: HolderUpdate): void {
  const segments = manifest.segments.length
  if (update.holders.length !== segments) throw invalid('holder table has the wrong number of segments')
  if (update.parity !== undefined && update.parity.length !== segments)
    throw invalid('parity table has the wrong number of segments')
  update.holders.forEach((shards, i) => {
    const extra = update.parity?.[i]?.length ?? 0
    if (manifest.k + manifest.m + extra > 256)
      throw invalid(`parity[${i}] lists too many extra parity shards`)
    if (shards.length !== manifest.k + manifest.m + extra)
      throw invalid(`holders[${i}] must list k+m shards and the extra parity shards`)
  })
  const view = applyHolderUpdate(manifest, update)
  view.segments.forEach((seg, i) => {
    if (seg.shards.length !== (update.holders[i]?.length ?? -1))
      throw invalid(`segment ${i} does not apply: shard count`)
  })
}

/**
 * Decode a holder update from untrusted bytes and check it against `manifest` and `rules`: same
 * manifest CID, then the signed-record-with-authority check (src/crypto/signed-record-inbox.ts: a
 * valid hybrid signature by a key bound to the signer's PeerId, a signer in `rules.authority`, a
 * revision within `rules.sequence`), then a revision at most {@link MAX_HOLDER_UPDATE_REVISION}, then that it applies
 * to the manifest ({@link checkHolderUpdateFits}).
 *
 * @throws NodusError `MANIFEST_INVALID` (peerAction `reject`) when malformed, for another manifest, or
 *   (accountable: crypto's `accountableSigner` returns the signer) when it does not apply
 * @throws NodusError `SIGNATURE_INVALID`, `NOT_AUTHORIZED`, `REVISION_INVALID` as `checkDecodedRecord`;
 *   `REVISION_INVALID` (accountable) above {@link MAX_HOLDER_UPDATE_REVISION}
 */
export function openHolderUpdate(
  bytes: Uint8Array,
  manifest: SignedManifest,
  rules: AuthorityRules,
): SignedHolderUpdate {
  const parsed = parseHolderUpdate(bytes)
  if (!parsed.update.manifest.equals(manifest.cid)) throw invalid('holder update is for another manifest')
  const verified = checkDecodedRecord(
    HOLDER_UPDATE_RECORD,
    { value: parsed.update, signature: parsed.sig },
    rules,
    parsed.update.revision,
  )
  if (parsed.update.revision > MAX_HOLDER_UPDATE_REVISION) {
    throw refuseVerified(verified, 'REVISION_INVALID', `revision above ${MAX_HOLDER_UPDATE_REVISION}`, {
      reason: 'too-far',
      revision: parsed.update.revision,
    })
  }
  try {
    checkHolderUpdateFits(manifest.manifest, parsed.update)
  } catch (err) {
    throw refuseVerified(verified, 'MANIFEST_INVALID', (err as Error).message)
  }
  return { update: parsed.update, bytes, cid: parsed.cid }
}

/**
 * Decode a holder update from untrusted bytes and check it against `manifest`: same manifest CID, a
 * valid hybrid signature by a key bound to the signer's PeerId (any signer), a revision at most
 * {@link MAX_HOLDER_UPDATE_REVISION}, a holder table that applies to the manifest. Throws
 * MANIFEST_INVALID, SIGNATURE_INVALID or REVISION_INVALID. Where the signer's authority
 * and the revision matter, use {@link openHolderUpdate}.
 */
export function decodeHolderUpdate(bytes: Uint8Array, manifest: SignedManifest): SignedHolderUpdate {
  return openHolderUpdate(bytes, manifest, { authority: ANY_SIGNER })
}

/**
 * The manifest with the update's holders first, then the manifest's own (deduplicated), and the
 * update's extra parity shards appended to each segment (`m` stays the uploader's).
 */
export function applyHolderUpdate(manifest: Manifest, update: HolderUpdate | undefined): Manifest {
  if (update === undefined) return manifest
  const base = manifest.k + manifest.m
  return {
    ...manifest,
    revision: update.revision,
    segments: manifest.segments.map((seg, i) => ({
      ...seg,
      shards: [
        ...seg.shards.slice(0, base).map((sh, j) => ({
          cid: sh.cid,
          holders: [...new Set([...(update.holders[i]?.[j] ?? []), ...sh.holders])],
        })),
        ...(update.parity?.[i] ?? []).map((cid, x) => ({
          cid,
          holders: update.holders[i]?.[base + x] ?? [],
        })),
      ],
    })),
  }
}

/** Extra parity shards a segment has beyond the uploader's k+m (dynamic redundancy). */
export function extraParityOf(manifest: Manifest, segment: ManifestSegment): number {
  return Math.max(0, segment.shards.length - manifest.k - manifest.m)
}
