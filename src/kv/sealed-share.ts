/**
 * Sharing a private database's key (sealed.ts) with its readers and writers: the owner signs a
 * `share` operation (`type: 'db'`, db-ops.ts) carrying the database key of one epoch sealed to one
 * reader node's X-Wing key, from the key record that node publishes for the messaging area
 * (src/crypto/key-record.ts). Shares replicate like every operation, so a reader gets its share from
 * any host; hosts cannot open them.
 *
 * `share` args: `[{ peer, kid, epoch, enc, ct }]`: the reader's PeerId, its X-Wing key id (32 bytes,
 * BLAKE3 of the key; key-record.ts `keyId`), the database key's epoch (0 … 2^32 − 1), and HPKE base
 * mode with X-Wing (src/crypto/hpke.ts, RFC 9180; the same suite as sealed direct messages) of the
 * 32-byte database key: `enc` the 1,120-byte X-Wing ciphertext, `ct` 48 bytes, with `info` = dag-cbor
 * of `{ domain: "nodus/kv-db-key/v1", db, peer, kid, epoch }` (so a share opens only for that
 * database, reader, key and epoch) and empty `aad`.
 *
 * Rotation: the owner makes a new random key for epoch n + 1 and shares it with the readers and
 * writers that remain; writers seal with the newest epoch they hold. A removed reader keeps the keys
 * it had (and what was sealed under them) but never gets the new one. A share opens with the reader's
 * X-Wing key of that record: once the reader's node deletes that key (`messaging.keyGraceMs` after
 * rotating it), the owner shares again to the reader's current record.
 */

import * as dagCbor from '@ipld/dag-cbor'
import { bytesEqual } from '../common/bytes.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import type { Random } from '../common/random.ts'
import {
  type Fail,
  HPKE_TAG_BYTES,
  hpkeOpen,
  hpkeSeal,
  type KeyRecord,
  type RecipientKeys,
  XWING_CIPHERTEXT_BYTES,
} from '../crypto/index.ts'
import { parseDbIdFast } from './db-id.ts'
import type { KvValue, Op } from './op-types.ts'
import { DB_KEY_BYTES, MAX_DB_KEY_EPOCH } from './sealed.ts'
import { signerKeys } from './signer.ts'

/** The HPKE `info` domain of a share. */
export const DB_KEY_SHARE_DOMAIN = 'nodus/kv-db-key/v1'
/** Bytes of an X-Wing key id. */
export const SHARE_KID_BYTES = 32
/** Bytes of a share's `ct`: the database key and the AEAD tag. */
export const SHARE_CT_BYTES = DB_KEY_BYTES + HPKE_TAG_BYTES

/** A database key sealed to one reader: a `share` operation's argument. */
export interface DbKeyShare {
  /** The reader's PeerId (Ed25519). */
  peer: string
  /** The reader's X-Wing key id, 32 bytes. */
  kid: Uint8Array
  /** The database key's epoch. */
  epoch: number
  /** X-Wing ciphertext, 1,120 bytes. */
  enc: Uint8Array
  /** HPKE ciphertext of the key, 48 bytes. */
  ct: Uint8Array
}

const SHARE_KEYS = new Set(['peer', 'kid', 'epoch', 'enc', 'ct'])

/**
 * Check a `share`'s args.
 * @throws the error from `fail` naming what is wrong
 */
export function parseShareArgs(args: KvValue[], fail: Fail): DbKeyShare {
  const [s] = args
  if (args.length !== 1 || typeof s !== 'object' || s === null || Array.isArray(s) || s instanceof Uint8Array)
    throw fail('share takes [{ peer, kid, epoch, enc, ct }]')
  for (const k of Object.keys(s))
    if (!SHARE_KEYS.has(k)) throw fail(`share has an unknown key ${k.slice(0, 32)}`)
  const { peer, kid, epoch, enc, ct } = s
  if (typeof peer !== 'string' || peer.length === 0 || peer.length > 128)
    throw fail('share peer must be a PeerId string')
  const bytes = (v: KvValue | undefined, what: string, n: number): Uint8Array => {
    if (!(v instanceof Uint8Array) || v.byteLength !== n) throw fail(`share ${what} must be ${n} bytes`)
    return v
  }
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0 || epoch > MAX_DB_KEY_EPOCH)
    throw fail(`share epoch must be an integer in [0, ${MAX_DB_KEY_EPOCH}]`)
  return {
    peer,
    kid: bytes(kid, 'kid', SHARE_KID_BYTES),
    epoch,
    enc: bytes(enc, 'enc', XWING_CIPHERTEXT_BYTES),
    ct: bytes(ct, 'ct', SHARE_CT_BYTES),
  }
}

/** The args of a `share`. */
export function shareArgs(share: DbKeyShare): KvValue[] {
  return [{ peer: share.peer, kid: share.kid, epoch: share.epoch, enc: share.enc, ct: share.ct }]
}

/** The HPKE `info` of a share (dag-cbor, canonical). */
export function shareInfo(db: string, peer: string, kid: Uint8Array, epoch: number): Uint8Array {
  return dagCbor.encode({ domain: DB_KEY_SHARE_DOMAIN, db, peer, kid, epoch })
}

/**
 * Seal the database key `key` of `epoch` to the reader of `record` (a key record the caller opened
 * and verified).
 * @throws NodusError `INVALID_ARGUMENT` on a key that is not 32 bytes or a bad epoch; `KEY_INVALID`
 */
export function sealDbKey(
  db: string,
  key: Uint8Array,
  epoch: number,
  record: Pick<KeyRecord, 'peer' | 'keyId' | 'xwing'>,
): DbKeyShare {
  if (!(key instanceof Uint8Array) || key.byteLength !== DB_KEY_BYTES)
    throw new NodusError('INVALID_ARGUMENT', `a database key is ${DB_KEY_BYTES} bytes`)
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > MAX_DB_KEY_EPOCH)
    throw new NodusError('INVALID_ARGUMENT', `a database key epoch is an integer in [0, ${MAX_DB_KEY_EPOCH}]`)
  const info = shareInfo(db, record.peer, record.keyId, epoch)
  const { enc, ciphertext } = hpkeSeal(record.xwing, key, { info })
  return { peer: record.peer, kid: record.keyId, epoch, enc, ct: ciphertext }
}

/**
 * Open a share with the reader's X-Wing keys.
 * @returns the 32-byte database key
 * @throws NodusError `KV_DB_KEY_MISSING` when the share is for another peer or a key `recipient` does
 *   not hold; `DECRYPT_FAILED` when it does not open
 */
export function openDbKey(db: string, share: DbKeyShare, recipient: RecipientKeys): Uint8Array {
  const k = recipient.keys.find((r) => bytesEqual(r.keyPair.keyId, share.kid))
  if (share.peer !== recipient.peerId || k === undefined)
    throw new NodusError('KV_DB_KEY_MISSING', 'the share is sealed to another peer or key', {
      details: { db, epoch: share.epoch, reason: 'not-for-me' },
    })
  try {
    return hpkeOpen(k.keyPair, share.enc, share.ct, {
      info: shareInfo(db, share.peer, share.kid, share.epoch),
    })
  } catch (err) {
    if (!isNodusError(err, 'DECRYPT_FAILED')) throw err
    throw new NodusError('DECRYPT_FAILED', 'kv share: does not open with this key', {
      details: { db, epoch: share.epoch, reason: 'aead' },
      cause: err,
    })
  }
}

/** A new random database key (32 bytes). */
export function newDbKey(random: Random): Uint8Array {
  return random.bytes(DB_KEY_BYTES)
}

/**
 * The keyring a reader gets from `share` operations (verified envelopes, e.g. from `GET
 * /kv/:db/shares`): each op must be a `share` of `db` signed by its owner (anyone else's is
 * skipped: a host could otherwise hand a reader a key of its own), addressed to `recipient` and
 * opening with its keys; the rest are skipped.
 * @returns database keys by epoch (empty when none opens)
 */
export function keyringFromShares(
  db: string,
  ops: readonly Op[],
  recipient: RecipientKeys,
): Map<number, Uint8Array> {
  const owner = parseDbIdFast(db).owner
  const keys = new Map<number, Uint8Array>()
  const fail: Fail = (m) => new NodusError('KV_OP_INVALID', m)
  for (const op of ops) {
    const b = op.body
    if (b.db !== db || b.type !== 'db' || b.op !== 'share') continue
    const signer = signerKeys(b.signer)
    if (signer === undefined || !bytesEqual(signer.ed25519, owner)) continue
    try {
      const share = parseShareArgs(b.args, fail)
      if (keys.has(share.epoch)) continue
      keys.set(share.epoch, openDbKey(db, share, recipient))
    } catch (err) {
      if (!isNodusError(err)) throw err
    }
  }
  return keys
}
