/**
 * Database ids: `<name>-<owner key id>`, as in Cyberfly, e.g. `sensors-z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp`.
 *
 * - **name**: 1 to 64 characters of `a-z`, `0-9`, `.`, `_` and `-`, starting with a letter or digit.
 *   Lower case only: the id appears in URLs, pub/sub topic names and on command lines, where `Logs`
 *   and `logs` would be two databases that look alike. A name may contain `-`: the id splits at its
 *   last `-`, and base58 has none.
 * - **owner key id**: the owner's Ed25519 public key as did:key spells it without `did:key:` —
 *   multibase base58btc (`z`) of multicodec `ed25519-pub` (0xed 0x01) and the 32-byte key, so it
 *   always starts `z6Mk` (src/crypto/did.ts; https://w3c-ccg.github.io/did-method-key/).
 *
 * The owner signs the database's `create` and every grant and revoke (auth.ts). A database in hybrid
 * mode is one whose `create` is signed with the owner's hybrid key (Ed25519 ‖ ML-DSA-65): the id
 * still names the Ed25519 half only, which must match.
 */
import { NodusError } from '../common/errors.ts'
import { didKeyFromEd25519, ed25519FromDidKey, isValidEd25519PublicKey } from '../crypto/index.ts'

/** Longest database name, characters (all ASCII). */
export const MAX_DB_NAME_CHARS = 64
/** A database name. */
export const DB_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/
/** Longest database id accepted, characters (a real one is at most 64 + 1 + 48). */
export const MAX_DB_ID_CHARS = 128

const DID_KEY_PREFIX = 'did:key:'

/** A parsed database id. */
export interface DbId {
  /** The id, `<name>-<ownerKeyId>`. */
  id: string
  name: string
  /** `z6Mk…`: multibase base58btc multicodec `ed25519-pub` of the owner's key. */
  ownerKeyId: string
  /** The owner's Ed25519 public key, `Uint8Array` of 32 bytes. */
  owner: Uint8Array
}

function invalid(message: string, id: unknown): NodusError {
  return new NodusError('KV_DB_ID_INVALID', `database id: ${message}`, {
    details: { reason: message, id: typeof id === 'string' ? id.slice(0, MAX_DB_ID_CHARS) : null },
  })
}

/**
 * The owner key id of an Ed25519 public key: `z6Mk…` (did:key without `did:key:`).
 *
 * @param owner - `Uint8Array` of 32 bytes
 * @throws NodusError `KEY_INVALID` when it is not a valid, large-order Ed25519 public key
 */
export function ownerKeyId(owner: Uint8Array): string {
  return didKeyFromEd25519(owner).slice(DID_KEY_PREFIX.length)
}

/**
 * The id of database `name` owned by `owner`.
 *
 * @param name - see the module doc
 * @param owner - Ed25519 public key, `Uint8Array` of 32 bytes
 * @throws NodusError `KV_DB_ID_INVALID` for a bad name, `KEY_INVALID` for a bad key
 */
export function formatDbId(name: string, owner: Uint8Array): string {
  if (typeof name !== 'string' || !DB_NAME_PATTERN.test(name))
    throw invalid(`name must match ${DB_NAME_PATTERN}`, name)
  return `${name}-${ownerKeyId(owner)}`
}

/**
 * Parse a database id.
 *
 * @param options.checkKey - default true: refuse an owner key that is not a valid, large-order
 *   Ed25519 point (about 1 ms). False skips that check (the key is still 32 bytes of multicodec
 *   `ed25519-pub`): for the per-operation path, where the owner key was checked at `create`.
 * @throws NodusError `KV_DB_ID_INVALID` (`details.reason` says what is wrong)
 */
export function parseDbId(id: string, options: { checkKey?: boolean } = {}): DbId {
  if (typeof id !== 'string' || id.length > MAX_DB_ID_CHARS)
    throw invalid(`not a string of at most ${MAX_DB_ID_CHARS} characters`, id)
  const dash = id.lastIndexOf('-')
  if (dash < 0) throw invalid('no "-" between name and owner key id', id)
  const name = id.slice(0, dash)
  const keyId = id.slice(dash + 1)
  if (!DB_NAME_PATTERN.test(name)) throw invalid(`name must match ${DB_NAME_PATTERN}`, id)
  let owner: Uint8Array
  try {
    owner = ed25519FromDidKey(DID_KEY_PREFIX + keyId, { checkPoint: options.checkKey !== false })
  } catch (err) {
    throw new NodusError('KV_DB_ID_INVALID', 'database id: the owner key id is not an Ed25519 did:key', {
      details: { reason: 'owner key id', id },
      cause: err,
    })
  }
  return { id, name, ownerKeyId: keyId, owner }
}

/** Ids parsed lately by {@link parseDbIdFast}; cleared when full. */
const recent = new Map<string, DbId>()
const MAX_RECENT_IDS = 1024

/**
 * {@link parseDbId} without the owner key's point check (`checkKey: false`), remembering the last
 * 1,024 ids: the parse (base58) costs about 9 µs, and operations of one database arrive by the
 * thousand. The result is shared: do not modify it.
 *
 * @throws NodusError `KV_DB_ID_INVALID`
 */
export function parseDbIdFast(id: string): DbId {
  let parsed = recent.get(id)
  if (parsed === undefined) {
    parsed = parseDbId(id, { checkKey: false })
    if (recent.size >= MAX_RECENT_IDS) recent.clear()
    recent.set(id, parsed)
  }
  return parsed
}

/** True when the owner key of a parsed id is a valid, large-order Ed25519 point (about 1 ms). */
export function isValidOwnerKey(db: DbId): boolean {
  return isValidEd25519PublicKey(db.owner)
}
