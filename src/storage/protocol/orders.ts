/**
 * Signed storage orders, commits, pin requests and pin grants: what a holder needs before it keeps a
 * block for a peer (docs/PROTOCOLS.md, "Storage orders"). The idea follows Storj's signed order limits
 * (Storj white paper v3, §4.17) and Tahoe-LAFS leases: nobody stores or keeps data on a holder without
 * a signature that names who pays for it, what, and until when.
 *
 * Every record is a signed record of src/crypto/signed-record.ts: a dag-cbor envelope `{ body, sig }`;
 * `sig` is the signer's Ed25519 signature (RFC 8032, 64 bytes) over dag-cbor `{ domain, body }`, so a
 * signature for one kind never verifies as another. The signer is named in the body by PeerId (an
 * identity multihash embedding its Ed25519 key), which is the only key material needed to verify. The
 * signature covers the body as received (`signs: 'received'`), so fields a later version adds verify.
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
import type { CID } from 'multiformats/cid'
import {
  checkFreshness,
  type Fail,
  MAX_PEER_ID_CHARS,
  readInt,
  readString,
  SignedRecordCodec,
  type SignedRecordType,
} from '../../crypto/index.ts'
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

/** A pin request as signed: the request and the encoded grant it carries, if any. */
interface SignedPin {
  pin: Omit<PinRequest, 'grant'>
  grant: Uint8Array | undefined
}

function text(v: unknown, what: string, fail: Fail): string {
  return readString(v, what, MAX_PEER_ID_CHARS, fail)
}

function time(v: unknown, what: string, fail: Fail): number {
  return readInt(v, what, 0, Number.MAX_SAFE_INTEGER, fail)
}

function cidList(v: unknown, fail: Fail): CID[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_RECORD_CIDS)
    throw fail(`cids must list 1 to ${MAX_RECORD_CIDS} CIDs`)
  return v.map((c) => {
    if (!(c instanceof Uint8Array)) throw fail('cids must be bytes')
    return parseCid(c)
  })
}

function cidField(v: unknown, what: string, fail: Fail): CID {
  if (!(v instanceof Uint8Array)) throw fail(`${what} must be a CID`)
  return parseCid(v)
}

function optionalManifest(b: Record<string, unknown>, fail: Fail): { manifest?: CID } {
  return b.manifest === undefined ? {} : { manifest: cidField(b.manifest, 'manifest', fail) }
}

/** What every storage record shares: its error code, size bound and the received body being signed. */
function storageRecord<T>(
  kind: string,
  domain: string,
  type: Pick<SignedRecordType<T>, 'encodeBody' | 'decodeBody' | 'signer'>,
): SignedRecordCodec<T> {
  return new SignedRecordCodec<T>({
    kind,
    code: 'ORDER_INVALID',
    domain,
    scheme: 'ed25519',
    maxBytes: MAX_RECORD_BYTES,
    signs: 'received',
    ...type,
  })
}

const ORDER_RECORD = storageRecord<StorageOrder>('storage order', ORDER_DOMAIN, {
  encodeBody: (order) => ({
    uploader: order.uploader,
    holder: order.holder,
    cids: order.cids.map((c) => c.bytes),
    maxBytes: order.maxBytes,
    expiresAt: order.expiresAt,
    issuedAt: order.issuedAt,
    ...(order.manifest === undefined ? {} : { manifest: order.manifest.bytes }),
  }),
  decodeBody: (b, fail) => ({
    uploader: text(b.uploader, 'uploader', fail),
    holder: text(b.holder, 'holder', fail),
    cids: cidList(b.cids, fail),
    maxBytes: time(b.maxBytes, 'maxBytes', fail),
    expiresAt: time(b.expiresAt, 'expiresAt', fail),
    issuedAt: time(b.issuedAt, 'issuedAt', fail),
    ...optionalManifest(b, fail),
  }),
  signer: (order) => order.uploader,
})

const COMMIT_RECORD = storageRecord<StorageCommit>('storage commit', COMMIT_DOMAIN, {
  encodeBody: (commit) => ({
    uploader: commit.uploader,
    holder: commit.holder,
    manifest: commit.manifest.bytes,
    cids: commit.cids.map((c) => c.bytes),
    expiresAt: commit.expiresAt,
    issuedAt: commit.issuedAt,
  }),
  decodeBody: (b, fail) => ({
    uploader: text(b.uploader, 'uploader', fail),
    holder: text(b.holder, 'holder', fail),
    manifest: cidField(b.manifest, 'manifest', fail),
    cids: cidList(b.cids, fail),
    expiresAt: time(b.expiresAt, 'expiresAt', fail),
    issuedAt: time(b.issuedAt, 'issuedAt', fail),
  }),
  signer: (commit) => commit.uploader,
})

const GRANT_RECORD = storageRecord<PinGrant>('pin grant', GRANT_DOMAIN, {
  encodeBody: (grant) => ({
    issuer: grant.issuer,
    pinner: grant.pinner,
    manifest: grant.manifest.bytes,
    expiresAt: grant.expiresAt,
    issuedAt: grant.issuedAt,
  }),
  decodeBody: (b, fail) => ({
    issuer: text(b.issuer, 'issuer', fail),
    pinner: text(b.pinner, 'pinner', fail),
    manifest: cidField(b.manifest, 'manifest', fail),
    expiresAt: time(b.expiresAt, 'expiresAt', fail),
    issuedAt: time(b.issuedAt, 'issuedAt', fail),
  }),
  signer: (grant) => grant.issuer,
})

const PIN_RECORD = storageRecord<SignedPin>('pin request', PIN_DOMAIN, {
  encodeBody: ({ pin, grant }) => ({
    pinner: pin.pinner,
    holder: pin.holder,
    cids: pin.cids.map((c) => c.bytes),
    expiresAt: pin.expiresAt,
    issuedAt: pin.issuedAt,
    ...(pin.manifest === undefined ? {} : { manifest: pin.manifest.bytes }),
    ...(pin.critical === true ? { critical: true } : {}),
    ...(grant === undefined ? {} : { grant }),
  }),
  decodeBody: (b, fail) => {
    if (b.grant !== undefined && !(b.grant instanceof Uint8Array)) throw fail('grant must be bytes')
    return {
      pin: {
        pinner: text(b.pinner, 'pinner', fail),
        holder: text(b.holder, 'holder', fail),
        cids: cidList(b.cids, fail),
        expiresAt: time(b.expiresAt, 'expiresAt', fail),
        issuedAt: time(b.issuedAt, 'issuedAt', fail),
        ...optionalManifest(b, fail),
        ...(b.critical === true ? { critical: true } : {}),
      },
      grant: b.grant,
    }
  },
  signer: ({ pin }) => pin.pinner,
})

/**
 * The record was sent by its signer, to this holder, within the freshness window.
 * Throws ORDER_INVALID (peerAction reject) through `fail`.
 */
function checkDelivery(
  fail: Fail,
  signer: string,
  holder: string,
  issuedAt: number,
  to: { sender: string; self: string; nowMs: number },
): void {
  if (signer !== to.sender) throw fail('the record is not signed by the peer that sent it')
  if (holder !== to.self) throw fail('the record names another holder')
  const freshness = { nowMs: to.nowMs, maxAgeMs: MAX_RECORD_AGE_MS, maxFutureSkewMs: MAX_RECORD_SKEW_MS }
  checkFreshness(issuedAt, freshness, fail, 'reject')
}

/** Sign a storage order as `order.uploader` (whose key `sign` must hold). */
export async function signOrder(order: StorageOrder, sign: Ed25519Sign): Promise<Uint8Array> {
  return (await ORDER_RECORD.encode(order, sign)).bytes
}

/**
 * Decode and verify an order sent by `sender` to `self`: signed by `sender`, naming `self` as holder,
 * fresh. Throws ORDER_INVALID (peerAction reject), CID_INVALID or SIGNATURE_INVALID (ban).
 */
export function openOrder(bytes: Uint8Array, sender: string, self: string, nowMs: number): StorageOrder {
  const order = ORDER_RECORD.open(bytes).value
  checkDelivery(ORDER_RECORD.fail, order.uploader, order.holder, order.issuedAt, { sender, self, nowMs })
  return order
}

export async function signCommit(commit: StorageCommit, sign: Ed25519Sign): Promise<Uint8Array> {
  return (await COMMIT_RECORD.encode(commit, sign)).bytes
}

/**
 * Decode and verify a commit sent by `sender` to `self`. Throws ORDER_INVALID, CID_INVALID or
 * SIGNATURE_INVALID.
 */
export function openCommit(bytes: Uint8Array, sender: string, self: string, nowMs: number): StorageCommit {
  const commit = COMMIT_RECORD.open(bytes).value
  checkDelivery(COMMIT_RECORD.fail, commit.uploader, commit.holder, commit.issuedAt, { sender, self, nowMs })
  return commit
}

export async function signGrant(grant: PinGrant, sign: Ed25519Sign): Promise<Uint8Array> {
  return (await GRANT_RECORD.encode(grant, sign)).bytes
}

/**
 * Decode and verify a pin grant (signed by its issuer, unexpired at `nowMs`). Throws ORDER_INVALID,
 * CID_INVALID or SIGNATURE_INVALID.
 */
export function openGrant(bytes: Uint8Array, nowMs: number): PinGrant {
  const grant = GRANT_RECORD.open(bytes).value
  if (grant.expiresAt <= nowMs) throw GRANT_RECORD.fail('the pin grant has expired')
  if (grant.issuedAt > nowMs + MAX_RECORD_SKEW_MS) throw GRANT_RECORD.fail('the pin grant is from the future')
  return grant
}

/** Sign a pin request as `pin.pinner`; `grant` is an encoded grant to carry (from {@link signGrant}). */
export async function signPin(
  pin: Omit<PinRequest, 'grant'>,
  sign: Ed25519Sign,
  grant?: Uint8Array,
): Promise<Uint8Array> {
  return (await PIN_RECORD.encode({ pin, grant }, sign)).bytes
}

/**
 * Decode and verify a pin request sent by `sender` to `self`, and its grant if any (which must name
 * `sender` as pinner and the request's manifest). Throws ORDER_INVALID, CID_INVALID or SIGNATURE_INVALID.
 */
export function openPin(bytes: Uint8Array, sender: string, self: string, nowMs: number): PinRequest {
  const { pin, grant: grantBytes } = PIN_RECORD.open(bytes).value
  checkDelivery(PIN_RECORD.fail, pin.pinner, pin.holder, pin.issuedAt, { sender, self, nowMs })
  if (grantBytes === undefined) return pin
  const grant = openGrant(grantBytes, nowMs)
  if (grant.pinner !== pin.pinner) throw PIN_RECORD.fail('the grant is for another pinner')
  if (pin.manifest === undefined || !grant.manifest.equals(pin.manifest))
    throw PIN_RECORD.fail('the grant is for another manifest')
  return { ...pin, grant }
}
