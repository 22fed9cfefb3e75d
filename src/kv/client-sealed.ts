/**
 * Private (sealed) databases in the kv client (client.ts, client-reads.ts; sealed.ts, sealed-share.ts):
 * the client's keyring of database keys. A reader is whoever holds the X-Wing secret keys a share was
 * sealed to (`readerKeys`: a PeerId and its X-Wing key pairs; a node's, or the client's own). The
 * keyring asks the node for the shares sealed to those keys (GraphQL `shares`), checks each envelope's
 * signature and that the database's owner signed it (`keyringFromShares`: a node cannot hand it a key
 * of its own), opens them here and keeps the database keys by epoch in memory: no secret key and no
 * database key ever leaves the client.
 *
 * Cache: at most `maxDbs` databases (least recently used dropped first); an entry is asked again once
 * it is `maxAgeMs` old, and at once when a value names an epoch it lacks (a rotation), or when a
 * database it knew as plain returns a sealed value (a late sealed create).
 */
import type { AbortOptions } from '../common/abort.ts'
import type { Clock } from '../common/clock.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import type { Random } from '../common/random.ts'
import type { RecipientKeys } from '../crypto/index.ts'
import { type OpInput, openOp } from './op.ts'
import type { KvType, KvValue, Op } from './op-types.ts'
import { checkSealable, isSealedValue, openRead, sealArgs } from './sealed.ts'
import { keyringFromShares } from './sealed-share.ts'

/** The public part of a reader's key record: what a share is sealed to. */
export interface ReaderKeyRecord {
  /** The reader's PeerId (what its `RecipientKeys.peerId` says). */
  peer: string
  /** X-Wing key id, 32 bytes. */
  keyId: Uint8Array
  /** X-Wing encapsulation key, 1,216 bytes. */
  xwing: Uint8Array
}

/** A database as the keyring knows it. */
export interface DbKeyState {
  /** Whether the node holds a create with `sealed: true`. */
  sealed: boolean
  /** The database keys this client opened, by epoch. */
  keys: Map<number, Uint8Array>
  /** When the node was asked (the clock's ms). */
  atMs: number
}

/** What the keyring uses. */
export interface KvKeyringDeps {
  /** GraphQL `shares(db, kid)`: whether `db` is private and the envelopes (base64) of shares to `kid`. */
  shares(db: string, kid: string, options: AbortOptions): Promise<{ sealed: boolean; shares: string[] }>
  clock: Clock
}

export interface KvKeyringOptions {
  /** The reader's PeerId and X-Wing key pairs; without them nothing opens (reads return sealed bytes). */
  readerKeys?: RecipientKeys | undefined
  /** Most databases cached; default 1,024. */
  maxDbs?: number | undefined
  /** Age after which a database is asked again, ms; default 60,000. */
  maxAgeMs?: number | undefined
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
const ZERO_KID = '0'.repeat(64)

/** True when `v` holds a well-formed sealed value anywhere. */
function holdsSealed(v: unknown): boolean {
  if (isSealedValue(v)) return true
  if (Array.isArray(v)) return v.some(holdsSealed)
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array))
    return Object.values(v).some(holdsSealed)
  return false
}

/** The keyring (module doc). */
export class KvKeyring {
  readonly #deps: KvKeyringDeps
  readonly #reader: RecipientKeys | undefined
  readonly #maxDbs: number
  readonly #maxAgeMs: number
  readonly #dbs = new Map<string, DbKeyState>()

  constructor(deps: KvKeyringDeps, options: KvKeyringOptions = {}) {
    this.#deps = deps
    this.#reader = options.readerKeys
    this.#maxDbs = Math.max(1, options.maxDbs ?? 1024)
    this.#maxAgeMs = options.maxAgeMs ?? 60_000
  }

  /** The reader's keys, when the client was given them. */
  get readerKeys(): RecipientKeys | undefined {
    return this.#reader
  }

  /** The reader's own key record (its newest X-Wing key), when the client was given reader keys. */
  ownRecord(): ReaderKeyRecord | undefined {
    const r = this.#reader
    let best: RecipientKeys['keys'][number] | undefined
    for (const k of r?.keys ?? []) if (best === undefined || k.epoch > best.epoch) best = k
    if (r === undefined || best === undefined) return undefined
    return { peer: r.peerId, keyId: best.keyPair.keyId, xwing: best.keyPair.publicKey }
  }

  /**
   * `db` as the node says now (or the cached answer while it is fresh and `fresh` is not asked).
   * Held keys stay: keys asked again are added to them.
   * @throws the transport's errors
   */
  async state(db: string, options: AbortOptions & { fresh?: boolean } = {}): Promise<DbKeyState> {
    const held = this.#dbs.get(db)
    if (held !== undefined && options.fresh !== true && this.#deps.clock.now() - held.atMs < this.#maxAgeMs) {
      this.#touch(db, held)
      return held
    }
    const kids = this.#reader?.keys.map((k) => hex(k.keyPair.keyId)) ?? []
    let sealed = false
    const ops: Op[] = []
    for (const kid of kids.length === 0 ? [ZERO_KID] : kids) {
      const r = await this.#deps.shares(db, kid, options)
      sealed ||= r.sealed
      for (const b of r.shares) {
        try {
          ops.push(openOp(new Uint8Array(Buffer.from(b, 'base64'))))
        } catch (err) {
          // An envelope that does not verify is the node's fault, not the owner's: skipped.
          if (!isNodusError(err)) throw err
        }
      }
    }
    const keys = new Map(held?.keys)
    if (this.#reader !== undefined)
      for (const [epoch, key] of keyringFromShares(db, ops, this.#reader))
        if (!keys.has(epoch)) keys.set(epoch, key)
    const state: DbKeyState = { sealed: sealed || held?.sealed === true, keys, atMs: this.#deps.clock.now() }
    this.#touch(db, state)
    return state
  }

  /**
   * Seal the values of a key operation when `db` is private (client.ts `seal`).
   * @throws NodusError `KV_OP_INVALID` (`sealed-db`) for an op that cannot work sealed, checked first;
   *   `KV_DB_KEY_MISSING` when no share opens with the reader keys (or there are none)
   */
  async seal<T extends Omit<OpInput, 'hlc'>>(
    input: T,
    random: Random,
    options: AbortOptions = {},
  ): Promise<T> {
    if (input.type === 'db') return input
    const state = await this.state(input.db, options)
    if (!state.sealed) return input
    checkSealable(input)
    if (state.keys.size === 0) {
      const who = this.#reader?.peerId
      throw new NodusError(
        'KV_DB_KEY_MISSING',
        who === undefined
          ? `${input.db} is private and this client has no reader keys (readerKeys) to seal with`
          : `${input.db} is private and no share of its key opens with the reader keys of ${who}`,
        { details: { db: input.db } },
      )
    }
    return { ...input, args: sealArgs(input, state.keys, random) }
  }

  /** Keep a database key this client made (createDb, rotate), and that `db` is private. */
  remember(db: string, epoch: number, key: Uint8Array): void {
    const held = this.#dbs.get(db)
    const keys = new Map(held?.keys)
    keys.set(epoch, key)
    this.#touch(db, { sealed: true, keys, atMs: held?.atMs ?? this.#deps.clock.now() })
  }

  /**
   * Open what a read of `db`'s `key` returned (sealed.ts `openRead` shapes), when the client has
   * reader keys and the database is private; as it is otherwise. Without reader keys, a private
   * database's values come back as the sealed bytes (`Uint8Array`s starting with "NKS").
   * @throws NodusError `KV_DB_KEY_MISSING` when no share of the value's epoch opens here (asked again
   *   once); `DECRYPT_FAILED`, `KV_SEALED_VALUE_INVALID` as `openValue`
   */
  async open(
    db: string,
    key: string,
    type: KvType,
    value: KvValue,
    options: AbortOptions = {},
  ): Promise<KvValue> {
    if (this.#reader === undefined || value === null) return value
    let state = await this.state(db, options)
    if (!state.sealed) {
      if (!holdsSealed(value)) return value
      state = await this.state(db, { ...options, fresh: true })
      if (!state.sealed) return value
    }
    try {
      return openRead(state.keys, db, key, type, value)
    } catch (err) {
      if (!isNodusError(err, 'KV_DB_KEY_MISSING')) throw err
      state = await this.state(db, { ...options, fresh: true })
      try {
        return openRead(state.keys, db, key, type, value)
      } catch (again) {
        if (!isNodusError(again, 'KV_DB_KEY_MISSING')) throw again
        throw new NodusError(
          'KV_DB_KEY_MISSING',
          `${db} is private and no share of its key opens with the reader keys of ${this.#reader.peerId}`,
          { details: { db, ...(again.details ?? {}) }, cause: again },
        )
      }
    }
  }

  #touch(db: string, state: DbKeyState): void {
    this.#dbs.delete(db)
    this.#dbs.set(db, state)
    if (this.#dbs.size > this.#maxDbs) {
      const oldest = this.#dbs.keys().next().value
      if (oldest !== undefined) this.#dbs.delete(oldest)
    }
  }
}
