/**
 * Who may write a kv operation: a pure function of the operation and what this node holds of its
 * database's `db` operations (db-ops.ts). Persisted by auth-store.ts.
 *
 * **Rules.** Let the database id name the owner's Ed25519 key O (db-id.ts) and the operation's
 * `signer` be S (Ed25519, or hybrid with Ed25519 half S.ed).
 * 1. `create` must be signed by the owner (S.ed = O; O a valid, large-order point). A database in
 *    **hybrid mode** is one with a held `create` signed by a hybrid key. Every other operation needs
 *    a held `create` of its database (`db-unknown` until it arrives).
 * 2. In hybrid mode every operation must be hybrid-signed (`hybrid-required`), and the owner's must
 *    be signed by a hybrid key some held `create` was signed with (else `not-owner`).
 * 2a. A database is **private** when a held `create` has the option `sealed: true` (sealed.ts): its key
 *    operations must be of the ops that work sealed and carry only sealed values (`KV_OP_INVALID`,
 *    `details.reason` `sealed-db` or `plaintext-value`, peerAction `ignore`).
 * 3. The owner (S.ed = O) may write anything: keys, `grant`, `revoke`, `share`, another `create`.
 * 4. Anyone else needs `cap` = the id of a held `grant` G, and: G is of the same database (`wrong-db`),
 *    G.writer = S (`no-capability`), G.hlc < op.hlc (`no-capability`: a capability covers nothing
 *    before it), op.hlc.ms < G.expiresAt when set (`capability-expired`), op.hlc < R for the
 *    earliest held `revoke` R of G in the same database (`capability-revoked`), and the key starts
 *    with G.prefix when set (`out-of-scope`). No `db` operations (`not-owner`).
 *
 * **Revocation is decided by HLC, not by arrival.** A revoke at HLC R wins over every operation of
 * that grant whose HLC is ≥ R (ties go to the revoke); operations before R stay valid. Expiry, too, is
 * judged against the operation's HLC, never against this node's clock. So whether an operation is
 * authorized depends only on the set of `create`, `grant` and `revoke` operations held, never on
 * their order: a node that saw an operation before the revoke accepted it, and when the revoke
 * arrives auth-store.ts names every held operation it invalidates (`invalidated`), so every replica
 * ends with the same set. A node that sees the operation after the revoke refuses it. The owner's
 * clock matters: a revoke dated R leaves valid whatever the writer dated before R, including what a
 * revoked writer backdates; such writes lose, by LWW, to every later write, and the owner can
 * overwrite or delete them.
 *
 * **Replays.** An operation is known by its id (BLAKE3 of its bytes; op.ts), and a node refuses an id
 * it holds (`KV_OP_DUPLICATE`, auth-store.ts). A replayed copy of an old operation is the same
 * operation, and where it is new to a node, it still carries its own old HLC: under last-writer-wins
 * by (HLC, id) it loses to every newer write of the same key, field or element, so it cannot revert
 * a value. (Cyberfly signs `db:key:value` with no time or nonce: a replayed old write is
 * indistinguishable from a new one and sets the value back.)
 *
 * Errors: `KV_UNAUTHORIZED` with `details.reason`. peerAction `reject` where the operation alone
 * proves it wrong (a `db` operation not signed by the owner; a non-owner operation without `cap`);
 * `ignore` where the answer depends on what this node holds (a relay may not have the revoke yet, or
 * this node may lack the create or grant).
 */
import { bytesEqual } from '../common/bytes.ts'
import { NodusError, type PeerAction } from '../common/errors.ts'
import { isValidEd25519PublicKey } from '../crypto/index.ts'
import { parseDbIdFast } from './db-id.ts'
import { parseDbOp } from './db-ops.ts'
import { compareHlc, type Hlc, type Op } from './op-types.ts'
import { checkSealedOp } from './sealed.ts'
import { signerKeys } from './signer.ts'

/** Why an operation is not authorized (`details.reason` of `KV_UNAUTHORIZED`). */
export type UnauthorizedReason =
  | 'not-owner'
  | 'no-capability'
  | 'capability-expired'
  | 'capability-revoked'
  | 'out-of-scope'
  | 'wrong-db'
  | 'hybrid-required'
  | 'db-unknown'

/** What authorization needs to know of a database: from its held `create` operations. */
export interface DbAuth {
  /** True when a held `create` is hybrid-signed. */
  hybrid: boolean
  /** The hybrid signer keys (1,984 bytes each) of the held hybrid `create`s. */
  ownerKeys: readonly Uint8Array[]
  /** True when a held `create` has the option `sealed: true`: a private database (sealed.ts). */
  sealed?: boolean
}

/** A held `grant`. */
export interface GrantRecord {
  /** The grant operation's id (what a writer's `cap` names). */
  id: Uint8Array
  db: string
  hlc: Hlc
  /** The writer's signer key: 32 bytes, or 1,984 (hybrid). */
  writer: Uint8Array
  /** Unix ms: covers operations whose HLC ms is below it. */
  expiresAt?: number
  prefix?: string
}

/** What this node holds of `db` operations; auth-store.ts reads it from the store. */
export interface AuthView {
  /** Undefined when no `create` of `db` is held. */
  db(db: string): DbAuth | undefined
  /** Undefined when the grant is not held. */
  grant(id: Uint8Array): GrantRecord | undefined
  /** The HLC of the earliest held `revoke` of `grantId` signed for database `db`. */
  revokedAt(grantId: Uint8Array, db: string): Hlc | undefined
}

function unauthorized(
  reason: UnauthorizedReason,
  message: string,
  op: Op,
  peerAction: PeerAction = 'ignore',
): NodusError {
  return new NodusError('KV_UNAUTHORIZED', `kv operation: ${message}`, {
    peerAction,
    details: { reason, db: op.body.db, op: op.body.op },
  })
}

function invalid(message: string): NodusError {
  return new NodusError('KV_OP_INVALID', `kv operation: ${message}`, {
    peerAction: 'reject',
    details: { reason: message },
  })
}

/**
 * Refuse `op` unless its signer may write it, given what `view` holds (the rules in the module doc).
 * Pure: the same operation and the same held `db` operations give the same answer on every node.
 * Run it after the signature check.
 *
 * @throws NodusError `KV_UNAUTHORIZED` (`details.reason`: {@link UnauthorizedReason}; peerAction
 *   `reject` or `ignore`, see the module doc); `KV_OP_INVALID` (reject) for a `create` whose owner key
 *   is not a valid point, or a grant to a writer key that is not
 */
export function authorize(op: Op, view: AuthView): void {
  const b = op.body
  const owner = parseDbIdFast(b.db).owner
  const signer = signerKeys(b.signer)
  if (signer === undefined) throw invalid('signer must be a 32-byte Ed25519 key or a hybrid key')
  const isOwner = bytesEqual(signer.ed25519, owner)
  if (b.type === 'db' && b.op === 'create') {
    if (!isOwner) throw unauthorized('not-owner', 'only the owner creates its database', op, 'reject')
    if (!isValidEd25519PublicKey(owner)) throw invalid('the owner key is not a valid Ed25519 point')
    return
  }
  const db = view.db(b.db)
  if (db === undefined) throw unauthorized('db-unknown', 'the database’s create is not held', op)
  if (db.hybrid && signer.hybrid === undefined)
    throw unauthorized('hybrid-required', 'the database is in hybrid mode: sign with a hybrid key', op)
  if (db.sealed === true && b.type !== 'db') checkSealedOp(b)
  if (isOwner) {
    if (db.hybrid && !db.ownerKeys.some((k) => bytesEqual(k, b.signer)))
      throw unauthorized('not-owner', 'the hybrid key is not one the owner created the database with', op)
    if (b.type === 'db') authorizeOwnerDbOp(op, db, view)
    return
  }
  if (b.type === 'db') throw unauthorized('not-owner', 'only the owner grants and revokes', op, 'reject')
  authorizeWriter(op, view)
}

/** The owner's grant and revoke: what the operation itself must satisfy. */
function authorizeOwnerDbOp(op: Op, db: DbAuth, view: AuthView): void {
  const parsed = parseDbOp(op.body, Number.POSITIVE_INFINITY, invalid)
  if (parsed.op === 'grant') {
    const writer = signerKeys(parsed.grant.writer)
    if (writer === undefined || !isValidEd25519PublicKey(writer.ed25519))
      throw invalid('the grant’s writer key is not a valid Ed25519 point')
    if (db.hybrid && writer.hybrid === undefined)
      throw unauthorized('hybrid-required', 'the database is in hybrid mode: grant a hybrid key', op)
  } else if (parsed.op === 'revoke') {
    const grant = view.grant(parsed.grantId)
    if (grant !== undefined && grant.db !== op.body.db)
      throw unauthorized('wrong-db', 'the revoked grant is of another database', op)
  }
}

/** A non-owner's key operation: the capability it names. */
function authorizeWriter(op: Op, view: AuthView): void {
  const b = op.body
  if (b.cap === undefined)
    throw unauthorized('no-capability', 'not the owner, and no capability (cap)', op, 'reject')
  const grant = view.grant(b.cap)
  if (grant === undefined) throw unauthorized('no-capability', 'the capability’s grant is not held', op)
  if (grant.db !== b.db) throw unauthorized('wrong-db', 'the capability is for another database', op)
  if (!bytesEqual(grant.writer, b.signer))
    throw unauthorized('no-capability', 'the capability is for another key', op)
  if (compareHlc(b.hlc, grant.hlc) <= 0)
    throw unauthorized('no-capability', 'the operation is dated before its capability', op)
  if (grant.expiresAt !== undefined && b.hlc.ms >= grant.expiresAt)
    throw unauthorized('capability-expired', 'the capability expired before the operation’s time', op)
  const revoked = view.revokedAt(b.cap, b.db)
  if (revoked !== undefined && compareHlc(b.hlc, revoked) >= 0)
    throw unauthorized(
      'capability-revoked',
      'the capability was revoked at or before the operation’s time',
      op,
    )
  if (grant.prefix !== undefined && !b.key.startsWith(grant.prefix))
    throw unauthorized('out-of-scope', 'the key is outside the capability’s prefix', op)
}
