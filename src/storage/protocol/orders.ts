/**
 * Signed storage orders, commits, pin requests and pin grants: what a holder needs before it keeps a
 * block for a peer (docs/PROTOCOLS.md, "Storage orders"). The idea follows Storj's signed order limits
 * (Storj white paper v3, §4.17) and Tahoe-LAFS leases: nobody stores or keeps data on a holder without
 * a signature that names who pays for it, what, and until when.
 *
 * Every record is a dag-cbor envelope `{ body, sig }`; `sig` is the signer's Ed25519 signature
 * (RFC 8032, 64 bytes) over dag-cbor `{ domain, body }`, so a signature for one kind never verifies as
 * another. The signer is named in the body by PeerId (an identity multihash embedding its Ed25519
 * key), which is the only key material needed to verify.
 *
 * - order `nodus/order/v1`: `{ uploader, holder, cids: [CID bytes], maxBytes, expiresAt, issuedAt,
 *   manifest? }` — the uploader asks `holder` to store any of `cids` (a segment's shard CIDs, or a
 *   manifest's), each at most `maxBytes`, until `expiresAt`; with `manifest` the blocks are committed
 *   at once (repair), else provisional until a commit.
 * - commit `nodus/commit/v1`: `{ uploader, holder, manifest, cids, expiresAt, issuedAt }` — the upload
 *   of `manifest` finished: keep `cids` until `expiresAt`.
 * - pin `nodus/pin/v1`: `{ pinner, holder, cids, expiresAt, issuedAt, manifest?, critical?, grant? }`.
 * - grant `nodus/pin-grant/v1`: `{ issuer, pinner, manifest, expiresAt, issuedAt }` — the uploader
 *   `issuer` lets `pinner` extend its pins of `manifest`'s blocks until `expiresAt`.
 *
 * Times are ms since the Unix epoch.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import { NodusError } from '../../common/errors.ts'
import { verifyEd25519 } from '../../crypto/index.ts'
import { decodeEnvelope, signingBytes } from '../../trust/index.ts'
import { parseCid } from '../codec/cid.ts'

export const ORDER_DOMAIN = 'nodus/order/v1'
export const COMMIT_DOMAIN = 'nodus/commit/v1'
export const PIN_DOMAIN = 'nodus/pin/v1'
export const GRANT_DOMAIN = 'nodus/pin-grant/v1'
/** Most CIDs in one order, commit or pin (as a `has`). */
export const MAX_RECORD_CIDS = 1024
/** Largest encoded record accepted, bytes (1,024 CIDs of 36 bytes plus a grant fit). */
export const MAX_RECORD_BYTES = 48 * 1024
/** How old an order, commit or pin may be when it arrives, ms (10 minutes). */
export const MAX_RECORD_AGE_MS = 10 * 60_000
/** How far in the future `issuedAt` may be (clock skew), ms. */
export const MAX_RECORD_SKEW_MS = 2 * 60_000

export interface StorageOrder {
  uploader: string
  holder: string
  cids: CID[]
  maxBytes: number
  expiresAt: number
  issuedAt: number
  manifest?: CID
}

export interface StorageCommit {
  uploader: string
  holder: string
  manifest: CID
  cids: CID[]
  expiresAt: number
  issuedAt: number
}

export interface PinGrant {
  issuer: string
  pinner: string
  manifest: CID
  expiresAt: number
  issuedAt: number
}

export interface PinRequest {
  pinner: string
  holder: string
  cids: CID[]
  expiresAt: number
  issuedAt: number
  manifest?: CID
  critical?: boolean
  /** A verified grant from the uploader, when the request carried one. */
  grant?: PinGrant
}

/** Signs bytes with the node's Ed25519 key (64-byte signature). */
export type Ed25519Sign = (data: Uint8Array) => Uint8Array | Promise<Uint8Array>

function invalid(message: string): NodusError {
  return new NodusError('ORDER_INVALID', message, { peerAction: 'reject', details: { reason: message } })
}

/** The envelope of trust/signed.ts (`{ body, sig }`, signature over `{ domain, body }`), signed by `sign`. */
async function seal(domain: string, body: Record<string, unknown>, sign: Ed25519Sign): Promise<Uint8Array> {
  const sig = await sign(signingBytes(domain, body))
  return dagCbor.encode({ body, sig })
}

/**
 * Decode an envelope (trust/signed.ts `decodeEnvelope`: bounded size, exact shape) and verify the
 * signature of the PeerId in `body[signerField]`; returns the body. Throws ORDER_INVALID or SIGNATURE_INVALID.
 */
function open(bytes: Uint8Array, domain: string, signerField: string): Record<string, unknown> {
  const { body, signature } = decodeEnvelope(bytes, MAX_RECORD_BYTES, (m) =>
    invalid(`${domain} record: ${m}`),
  )
  const signer = body[signerField]
  if (typeof signer !== 'string' || signer.length > 128) throw invalid(`${domain} ${signerField} is missing`)
  let key: Uint8Array
  try {
    const pid = peerIdFromString(signer)
    if (pid.publicKey?.type !== 'Ed25519') throw new Error('not Ed25519')
    key = pid.publicKey.raw
  } catch {
    throw invalid(`${domain} ${signerField} is not an Ed25519 PeerId`)
  }
  if (!verifyEd25519(key, signingBytes(domain, body), signature))
    throw new NodusError('SIGNATURE_INVALID', `${domain} signature does not verify`, { peerAction: 'ban' })
  return body
}

function time(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(`${what} must be a time`)
  return v
}

function text(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 128) throw invalid(`${what} must be a PeerId`)
  return v
}

function cidList(v: unknown): CID[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_RECORD_CIDS)
    throw invalid(`cids must list 1 to ${MAX_RECORD_CIDS} CIDs`)
  return v.map((c) => {
    if (!(c instanceof Uint8Array)) throw invalid('cids must be bytes')
    return parseCid(c)
  })
}

function cidField(v: unknown, what: string): CID {
  if (!(v instanceof Uint8Array)) throw invalid(`${what} must be a CID`)
  return parseCid(v)
}

/** Freshness of `issuedAt` against `nowMs`. Throws ORDER_INVALID. */
function fresh(issuedAt: number, nowMs: number, what: string): void {
  if (issuedAt < nowMs - MAX_RECORD_AGE_MS) throw invalid(`${what} is stale`)
  if (issuedAt > nowMs + MAX_RECORD_SKEW_MS) throw invalid(`${what} is from the future`)
}

/** Sign a storage order as `order.uploader` (whose key `sign` must hold). */
export function signOrder(order: StorageOrder, sign: Ed25519Sign): Promise<Uint8Array> {
  return seal(
    ORDER_DOMAIN,
    {
      uploader: order.uploader,
      holder: order.holder,
      cids: order.cids.map((c) => c.bytes),
      maxBytes: order.maxBytes,
      expiresAt: order.expiresAt,
      issuedAt: order.issuedAt,
      ...(order.manifest === undefined ? {} : { manifest: order.manifest.bytes }),
    },
    sign,
  )
}

/**
 * Decode and verify an order sent by `sender` to `self`: signed by `sender`, naming `self` as holder,
 * fresh. Throws ORDER_INVALID (peerAction reject) or SIGNATURE_INVALID (ban).
 */
export function openOrder(bytes: Uint8Array, sender: string, self: string, nowMs: number): StorageOrder {
  const b = open(bytes, ORDER_DOMAIN, 'uploader')
  const order: StorageOrder = {
    uploader: text(b.uploader, 'uploader'),
    holder: text(b.holder, 'holder'),
    cids: cidList(b.cids),
    maxBytes: time(b.maxBytes, 'maxBytes'),
    expiresAt: time(b.expiresAt, 'expiresAt'),
    issuedAt: time(b.issuedAt, 'issuedAt'),
    ...(b.manifest === undefined ? {} : { manifest: cidField(b.manifest, 'manifest') }),
  }
  if (order.uploader !== sender) throw invalid('the order is not signed by the peer that sent it')
  if (order.holder !== self) throw invalid('the order names another holder')
  fresh(order.issuedAt, nowMs, 'order')
  return order
}

export function signCommit(commit: StorageCommit, sign: Ed25519Sign): Promise<Uint8Array> {
  return seal(
    COMMIT_DOMAIN,
    {
      uploader: commit.uploader,
      holder: commit.holder,
      manifest: commit.manifest.bytes,
      cids: commit.cids.map((c) => c.bytes),
      expiresAt: commit.expiresAt,
      issuedAt: commit.issuedAt,
    },
    sign,
  )
}

/** Decode and verify a commit sent by `sender` to `self`. Throws ORDER_INVALID or SIGNATURE_INVALID. */
export function openCommit(bytes: Uint8Array, sender: string, self: string, nowMs: number): StorageCommit {
  const b = open(bytes, COMMIT_DOMAIN, 'uploader')
  const commit: StorageCommit = {
    uploader: text(b.uploader, 'uploader'),
    holder: text(b.holder, 'holder'),
    manifest: cidField(b.manifest, 'manifest'),
    cids: cidList(b.cids),
    expiresAt: time(b.expiresAt, 'expiresAt'),
    issuedAt: time(b.issuedAt, 'issuedAt'),
  }
  if (commit.uploader !== sender) throw invalid('the commit is not signed by the peer that sent it')
  if (commit.holder !== self) throw invalid('the commit names another holder')
  fresh(commit.issuedAt, nowMs, 'commit')
  return commit
}

export function signGrant(grant: PinGrant, sign: Ed25519Sign): Promise<Uint8Array> {
  return seal(
    GRANT_DOMAIN,
    {
      issuer: grant.issuer,
      pinner: grant.pinner,
      manifest: grant.manifest.bytes,
      expiresAt: grant.expiresAt,
      issuedAt: grant.issuedAt,
    },
    sign,
  )
}

/** Decode and verify a pin grant (signed by its issuer, unexpired at `nowMs`). Throws ORDER_INVALID or SIGNATURE_INVALID. */
export function openGrant(bytes: Uint8Array, nowMs: number): PinGrant {
  const b = open(bytes, GRANT_DOMAIN, 'issuer')
  const grant: PinGrant = {
    issuer: text(b.issuer, 'issuer'),
    pinner: text(b.pinner, 'pinner'),
    manifest: cidField(b.manifest, 'manifest'),
    expiresAt: time(b.expiresAt, 'expiresAt'),
    issuedAt: time(b.issuedAt, 'issuedAt'),
  }
  if (grant.expiresAt <= nowMs) throw invalid('the pin grant has expired')
  if (grant.issuedAt > nowMs + MAX_RECORD_SKEW_MS) throw invalid('the pin grant is from the future')
  return grant
}

/** Sign a pin request as `pin.pinner`; `grant` is an encoded grant to carry (from {@link signGrant}). */
export function signPin(
  pin: Omit<PinRequest, 'grant'>,
  sign: Ed25519Sign,
  grant?: Uint8Array,
): Promise<Uint8Array> {
  return seal(
    PIN_DOMAIN,
    {
      pinner: pin.pinner,
      holder: pin.holder,
      cids: pin.cids.map((c) => c.bytes),
      expiresAt: pin.expiresAt,
      issuedAt: pin.issuedAt,
      ...(pin.manifest === undefined ? {} : { manifest: pin.manifest.bytes }),
      ...(pin.critical === true ? { critical: true } : {}),
      ...(grant === undefined ? {} : { grant }),
    },
    sign,
  )
}

/**
 * Decode and verify a pin request sent by `sender` to `self`, and its grant if any (which must name
 * `sender` as pinner and the request's manifest). Throws ORDER_INVALID or SIGNATURE_INVALID.
 */
export function openPin(bytes: Uint8Array, sender: string, self: string, nowMs: number): PinRequest {
  const b = open(bytes, PIN_DOMAIN, 'pinner')
  const pin: PinRequest = {
    pinner: text(b.pinner, 'pinner'),
    holder: text(b.holder, 'holder'),
    cids: cidList(b.cids),
    expiresAt: time(b.expiresAt, 'expiresAt'),
    issuedAt: time(b.issuedAt, 'issuedAt'),
    ...(b.manifest === undefined ? {} : { manifest: cidField(b.manifest, 'manifest') }),
    ...(b.critical === true ? { critical: true } : {}),
  }
  if (pin.pinner !== sender) throw invalid('the pin is not signed by the peer that sent it')
  if (pin.holder !== self) throw invalid('the pin names another holder')
  fresh(pin.issuedAt, nowMs, 'pin')
  if (b.grant !== undefined) {
    if (!(b.grant instanceof Uint8Array)) throw invalid('grant must be bytes')
    const grant = openGrant(b.grant, nowMs)
    if (grant.pinner !== pin.pinner) throw invalid('the grant is for another pinner')
    if (pin.manifest === undefined || !grant.manifest.equals(pin.manifest))
      throw invalid('the grant is for another manifest')
    pin.grant = grant
  }
  return pin
}
