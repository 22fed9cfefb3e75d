/**
 * The op log and the authorization records, on the kv area's OrderedStore (store/ordered.ts), so an
 * operation is checked, logged and recorded in the same atomic write that applies it:
 *
 * ```ts
 * await store.write((w) => {
 *   const change = admitOp(w, op)   // KV_OP_DUPLICATE, KV_UNAUTHORIZED; logs it
 *   applyOp(w, op)                  // the typed state (state/)
 *   // change.invalidated: held operations a revoke just voided (see auth.ts)
 * })
 * ```
 *
 * Tables (key prefixes 0x01–0x0f are this module's; the values are dag-cbor maps unless said):
 *
 * | prefix | key | value |
 * |---|---|---|
 * | 0x01 op log | op id (32) | the operation's envelope bytes |
 * | 0x02 creates | db id (UTF-8) ‖ 0x00 ‖ op id (32) | `{ hlc: 8 bytes, signer, sealed? }` (`sealed: true` for a private database's create) |
 * | 0x03 grants | grant op id (32) | `{ db, hlc: 8 bytes, writer, expiresAt?, prefix? }` |
 * | 0x04 revocations | grant op id (32) ‖ BLAKE3(db id) (32) | `{ hlc: 8 bytes, id }`: the earliest revoke of that grant signed for that database |
 * | 0x05 by capability | grant op id (32) ‖ HLC (8) ‖ op id (32) | empty: the operations written under a capability, for revocation |
 * | 0x06 shares | db id (UTF-8) ‖ 0x00 ‖ reader key id (32) ‖ epoch (u32) ‖ op id (32) | empty: the `share` operations (sealed-share.ts), for a reader's lookup |
 *
 * A db id never holds 0x00, so a database's creates are the range [0x02 ‖ db ‖ 0x00, 0x02 ‖ db ‖ 0x01).
 * A revocation is keyed by the database it was signed for: a revoke by another database's owner,
 * naming a grant it does not own, never touches that grant.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { bytesEqual, concatBytes } from '../common/bytes.ts'
import { NodusError } from '../common/errors.ts'
import { blake3 } from '../crypto/index.ts'
import { type AuthView, authorize, type DbAuth, type GrantRecord } from './auth.ts'
import { parseDbIdFast } from './db-id.ts'
import { OP_ID_BYTES, parseDbOp } from './db-ops.ts'
import { compareHlc, type Hlc, hlcFromBytes, hlcToBytes, type Op } from './op-types.ts'
import { parseSealedOption } from './sealed.ts'
import { isHybridSigner, signerKeys } from './signer.ts'
import type { OrderedReader, OrderedWriter } from './store/ordered.ts'

/** Key prefix of the op log: op id → envelope bytes. */
export const OP_LOG_PREFIX = 0x01
/** Key prefix of held `create` operations. */
export const CREATES_PREFIX = 0x02
/** Key prefix of held `grant` operations. */
export const GRANTS_PREFIX = 0x03
/** Key prefix of the earliest revoke per (grant, database). */
export const REVOCATIONS_PREFIX = 0x04
/** Key prefix of the operations written under each capability. */
export const BY_CAP_PREFIX = 0x05
/** Key prefix of the `share` operations of private databases, by reader key id. */
export const SHARES_PREFIX = 0x06

const HLC_BYTES = 8
const utf8 = new TextEncoder()

const key = (prefix: number, ...parts: Uint8Array[]): Uint8Array =>
  concatBytes([Uint8Array.of(prefix), ...parts])

/** The first key after every key that starts with `prefix` (prefix with its last byte plus one). */
function after(prefix: Uint8Array): Uint8Array {
  const out = prefix.slice()
  let i = out.length - 1
  while (i >= 0 && out[i] === 0xff) i--
  if (i < 0) throw new NodusError('INVALID_ARGUMENT', 'no key follows an all-0xff prefix')
  out[i] = (out[i] as number) + 1
  return out.subarray(0, i + 1)
}

const createsKey = (db: string): Uint8Array => key(CREATES_PREFIX, utf8.encode(db), Uint8Array.of(0))
const revocationKey = (grantId: Uint8Array, db: string): Uint8Array =>
  key(REVOCATIONS_PREFIX, grantId, blake3(utf8.encode(db)))

const shareKey = (db: string, kid: Uint8Array, epoch?: number, id?: Uint8Array): Uint8Array => {
  const e = new Uint8Array(4)
  if (epoch !== undefined) new DataView(e.buffer).setUint32(0, epoch)
  return key(
    SHARES_PREFIX,
    utf8.encode(db),
    Uint8Array.of(0),
    kid,
    ...(epoch === undefined ? [] : [e]),
    ...(id === undefined ? [] : [id]),
  )
}

type CborMap = Record<string, unknown>
const decodeMap = (bytes: Uint8Array): CborMap => dagCbor.decode(bytes) as CborMap

/**
 * The authorization records of a store, read through `reader` (the store, or the writer of the write
 * in progress, which sees that write's own changes): the {@link AuthView} {@link authorize} takes.
 * Holds no state of its own: build one per read or write.
 */
export class AuthState implements AuthView {
  readonly #r: OrderedReader

  constructor(reader: OrderedReader) {
    this.#r = reader
  }

  db(db: string): DbAuth | undefined {
    const start = createsKey(db)
    const ownerKeys: Uint8Array[] = []
    let any = false
    let sealed = false
    for (const [, v] of this.#r.range({ start, end: after(start) })) {
      any = true
      const m = decodeMap(v)
      const signer = m.signer as Uint8Array
      if (isHybridSigner(signer)) ownerKeys.push(signer)
      if (m.sealed === true) sealed = true
    }
    if (!any) return undefined
    return sealed
      ? { hybrid: ownerKeys.length > 0, ownerKeys, sealed }
      : { hybrid: ownerKeys.length > 0, ownerKeys }
  }

  grant(id: Uint8Array): GrantRecord | undefined {
    if (id.byteLength !== OP_ID_BYTES) return undefined
    const v = this.#r.get(key(GRANTS_PREFIX, id))
    if (v === undefined) return undefined
    const m = decodeMap(v)
    const g: GrantRecord = {
      id,
      db: m.db as string,
      hlc: hlcFromBytes(m.hlc as Uint8Array),
      writer: m.writer as Uint8Array,
    }
    if (m.expiresAt !== undefined) g.expiresAt = m.expiresAt as number
    if (m.prefix !== undefined) g.prefix = m.prefix as string
    return g
  }

  revokedAt(grantId: Uint8Array, db: string): Hlc | undefined {
    const v = this.#r.get(revocationKey(grantId, db))
    return v === undefined ? undefined : hlcFromBytes(decodeMap(v).hlc as Uint8Array)
  }
}

/** True when the op log holds an operation with id `id`. */
export function hasOp(r: OrderedReader, id: Uint8Array): boolean {
  return r.get(key(OP_LOG_PREFIX, id)) !== undefined
}

/** The envelope bytes of the held operation `id` (decode with op.ts `decodeOp`), or undefined. */
export function getOp(r: OrderedReader, id: Uint8Array): Uint8Array | undefined {
  return r.get(key(OP_LOG_PREFIX, id))
}

/**
 * The envelopes of the held `share` operations of `db` sealed to the reader key `kid` (32 bytes), by
 * epoch, at most `max` of them.
 */
export function sharesFor(r: OrderedReader, db: string, kid: Uint8Array, max = 1024): Uint8Array[] {
  const start = shareKey(db, kid)
  const out: Uint8Array[] = []
  for (const [k] of r.range({ start, end: after(start) })) {
    const bytes = getOp(r, k.subarray(k.byteLength - OP_ID_BYTES))
    if (bytes !== undefined) out.push(bytes)
    if (out.length >= max) break
  }
  return out
}

/** What recording an operation changed beyond itself. */
export interface AuthChange {
  /**
   * Ids of held operations this operation (a `revoke`) voids: written under the revoked capability at
   * or after the revoke's HLC. The caller drops their effects (and may {@link removeOp} them), as a
   * node that saw the revoke first never applied them.
   */
  invalidated: Uint8Array[]
  /**
   * True when this operation (a hybrid `create`) switched its database to hybrid mode while a
   * non-hybrid `create` was held: the owner signed two creates. Operations the database held that
   * are not hybrid-signed no longer pass {@link authorize}; the caller drops them.
   */
  becameHybrid: boolean
  /**
   * True when this operation (a `create` with `sealed: true`) made its database private while a
   * create without it was held: operations with plaintext values no longer pass {@link authorize};
   * the caller drops them.
   */
  becameSealed: boolean
}

/** True when `op` was written under its `cap` (an owner's operation needs none, so a revoke cannot void it). */
function underCapability(op: Op): op is Op & { body: { cap: Uint8Array } } {
  const signer = signerKeys(op.body.signer)
  return (
    op.body.cap !== undefined &&
    signer !== undefined &&
    !bytesEqual(signer.ed25519, parseDbIdFast(op.body.db).owner)
  )
}

/**
 * Log `op` and record what it changes in authorization (a `create`, `grant` or `revoke`), without
 * checking it: for operations already checked ({@link admitOp} checks, then calls this).
 */
export function recordOp(w: OrderedWriter, op: Op): AuthChange {
  const b = op.body
  const change: AuthChange = { invalidated: [], becameHybrid: false, becameSealed: false }
  w.put(key(OP_LOG_PREFIX, op.id), op.bytes)
  if (b.type !== 'db') {
    if (underCapability(op))
      w.put(key(BY_CAP_PREFIX, op.body.cap, hlcToBytes(b.hlc), op.id), new Uint8Array(0))
    return change
  }
  const parsed = parseDbOp(b, Number.POSITIVE_INFINITY, (m) => new NodusError('KV_OP_INVALID', m))
  if (parsed.op === 'create') {
    const before = new AuthState(w).db(b.db)
    const sealed = parseSealedOption(parsed.options, (m) => new NodusError('KV_OP_INVALID', m))
    w.put(
      key(CREATES_PREFIX, utf8.encode(b.db), Uint8Array.of(0), op.id),
      dagCbor.encode({ hlc: hlcToBytes(b.hlc), signer: b.signer, ...(sealed ? { sealed } : {}) }),
    )
    change.becameHybrid = before !== undefined && !before.hybrid && isHybridSigner(b.signer)
    change.becameSealed = before !== undefined && before.sealed !== true && sealed
  } else if (parsed.op === 'grant') {
    const g = parsed.grant
    const rec: CborMap = { db: b.db, hlc: hlcToBytes(b.hlc), writer: g.writer }
    if (g.expiresAt !== undefined) rec.expiresAt = g.expiresAt
    if (g.prefix !== undefined) rec.prefix = g.prefix
    w.put(key(GRANTS_PREFIX, op.id), dagCbor.encode(rec))
  } else if (parsed.op === 'share') {
    w.put(shareKey(b.db, parsed.share.kid, parsed.share.epoch, op.id), new Uint8Array(0))
  } else {
    const rk = revocationKey(parsed.grantId, b.db)
    const held = w.get(rk)
    if (held !== undefined && compareHlc(hlcFromBytes(decodeMap(held).hlc as Uint8Array), b.hlc) <= 0)
      return change
    w.put(rk, dagCbor.encode({ hlc: hlcToBytes(b.hlc), id: op.id }))
    // Operations under this capability dated at or after the revoke are void; a grant of another
    // database named here has no operations under this database's revoke.
    const grant = new AuthState(w).grant(parsed.grantId)
    if (grant === undefined || grant.db !== b.db) return change
    const start = key(BY_CAP_PREFIX, parsed.grantId, hlcToBytes(b.hlc))
    for (const [k] of w.range({ start, end: after(key(BY_CAP_PREFIX, parsed.grantId)) })) {
      change.invalidated.push(k.slice(1 + OP_ID_BYTES + HLC_BYTES))
    }
  }
  return change
}

/**
 * Admit `op` (signature already verified) into the store: refuse a duplicate, authorize it against
 * the records held ({@link authorize}), then log and record it ({@link recordOp}).
 *
 * @throws NodusError `KV_OP_DUPLICATE` (peerAction `ignore`) when its id is held; what
 *   {@link authorize} throws. Nothing is written when it throws.
 */
export function admitOp(w: OrderedWriter, op: Op): AuthChange {
  if (hasOp(w, op.id)) {
    throw new NodusError('KV_OP_DUPLICATE', 'kv operation: already held', {
      peerAction: 'ignore',
      details: { db: op.body.db },
    })
  }
  authorize(op, new AuthState(w))
  return recordOp(w, op)
}

/**
 * Remove a held operation from the op log and the capability index (an operation a revoke voided).
 * Authorization records (creates, grants, revokes) are never removed.
 */
export function removeOp(w: OrderedWriter, op: Op): void {
  w.del(key(OP_LOG_PREFIX, op.id))
  if (underCapability(op)) w.del(key(BY_CAP_PREFIX, op.body.cap, hlcToBytes(op.body.hlc), op.id))
}
