/**
 * Private (sealed) databases: values sealed on the writer's side under a database key, so the nodes
 * that host a private database replicate it without being able to read it (docs/PROTOCOLS.md, "KV
 * operations", "Private databases"). Keys, hash field names and stream field names stay plaintext:
 * hosts need them to merge last-writer-wins per element and to serve ranges.
 *
 * **Private.** A database is private when any held `create` of it has the option `sealed: true`
 * (db-ops.ts). It is a function of the set of held creates (auth.ts), as hybrid mode is: a later
 * create without the option never unseals it, and a sealed create that arrives after plaintext
 * operations voids them (engine.ts rebuilds the database without them), so every replica ends with
 * what a node that held the sealed create first would hold.
 *
 * **Sealed value.** A byte string: `"NKS"` (3 bytes) ‖ version 1 (1 byte) ‖ the database key's epoch
 * (u32, big-endian) ‖ nonce (24 random bytes) ‖ XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03, via
 * `@noble/ciphers`) of dag-cbor(value) with a 16-byte tag. The AEAD's associated data is dag-cbor of
 * `{ domain: "nodus/kv-sealed/v1", db, key, field, type, header }` (`field` the hash or stream field
 * name, or null; `header` the first 32 bytes), so a ciphertext opens only in the slot it was written
 * for (database, key, field, type) and under the epoch its header names. The op name is not bound:
 * a reader sees state, not which op (lpush, rpush or lset; one hset or another) wrote an element.
 *
 * **What works sealed.** string `set`; hash `hset` (values sealed, fields plain); list `lpush`,
 * `rpush`, `lset` (values sealed), `lrem`/`lpop`/`rpop` (element ids); stream `xadd` (field values
 * sealed, field names and the id plain), `xdel`; `hdel`; `del` of any key. Refused, with
 * `KV_OP_INVALID` (`details.reason` `sealed-db`): set, sorted set, geo, JSON and time series
 * operations, whose merge or queries read the member, score or value (a sealed member could not be
 * deduplicated, a sealed score not ordered). peerAction `ignore`: whether a database is private
 * depends on the creates a node holds (a relay may lack the sealed one).
 */
import * as dagCbor from '@ipld/dag-cbor'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { NodusError } from '../common/errors.ts'
import type { Random } from '../common/random.ts'
import type { Fail } from '../crypto/index.ts'
import type { KvType, KvValue, OpBody } from './op-types.ts'

/** The first bytes of every sealed value: `"NKS"`. */
export const SEALED_MAGIC = Uint8Array.of(0x4e, 0x4b, 0x53)
/** The sealed value format version. */
export const SEALED_VERSION = 1
/** Bytes of the XChaCha20-Poly1305 nonce. */
export const SEALED_NONCE_BYTES = 24
/** Bytes of the header: magic, version, epoch, nonce. */
export const SEALED_HEADER_BYTES = SEALED_MAGIC.length + 1 + 4 + SEALED_NONCE_BYTES
/** Bytes of the Poly1305 tag. */
export const SEALED_TAG_BYTES = 16
/** Bytes a sealed value adds to dag-cbor(value): header and tag. */
export const SEALED_OVERHEAD_BYTES = SEALED_HEADER_BYTES + SEALED_TAG_BYTES
/** Bytes of a database key. */
export const DB_KEY_BYTES = 32
/** Largest database key epoch. */
export const MAX_DB_KEY_EPOCH = 2 ** 32 - 1
/** The AEAD associated data's domain. */
export const SEALED_VALUE_DOMAIN = 'nodus/kv-sealed/v1'
/** The create option that makes a database private. */
export const SEALED_OPTION = 'sealed'

/** Where a sealed value lives: what its associated data binds. */
export interface ValueSlot {
  db: string
  key: string
  type: KvType
  /** The hash field or stream field name; undefined for string and list values. */
  field?: string | undefined
}

/** Database keys by epoch: what opens values and seals new ones (the newest epoch). */
export type DbKeyring = ReadonlyMap<number, Uint8Array>

/**
 * Read the `sealed` option of a `create`'s options map: true when the database is private.
 * @throws the error from `fail` when `sealed` is present and not a boolean
 */
export function parseSealedOption(options: { [k: string]: KvValue }, fail: Fail): boolean {
  const v = options[SEALED_OPTION]
  if (v === undefined) return false
  if (typeof v !== 'boolean') throw fail('create option sealed must be true or false')
  return v
}

/** True when `v` is a well-formed sealed value (format only: hosts cannot open it). */
export function isSealedValue(v: unknown): v is Uint8Array {
  return (
    v instanceof Uint8Array &&
    v.byteLength >= SEALED_OVERHEAD_BYTES + 1 &&
    v[0] === SEALED_MAGIC[0] &&
    v[1] === SEALED_MAGIC[1] &&
    v[2] === SEALED_MAGIC[2] &&
    v[3] === SEALED_VERSION
  )
}

/** The database key epoch a sealed value names. @throws KV_SEALED_VALUE_INVALID when it is not one */
export function sealedEpoch(blob: Uint8Array): number {
  if (!isSealedValue(blob)) throw notSealed('not a sealed value')
  return new DataView(blob.buffer, blob.byteOffset + 4, 4).getUint32(0)
}

function notSealed(message: string): NodusError {
  return new NodusError('KV_SEALED_VALUE_INVALID', `sealed value: ${message}`, {
    details: { reason: message },
  })
}

function sealedAad(slot: ValueSlot, header: Uint8Array): Uint8Array {
  return dagCbor.encode({
    domain: SEALED_VALUE_DOMAIN,
    db: slot.db,
    key: slot.key,
    field: slot.field ?? null,
    type: slot.type,
    header,
  })
}

function checkKey(key: Uint8Array, epoch: number): void {
  if (!(key instanceof Uint8Array) || key.byteLength !== DB_KEY_BYTES)
    throw new NodusError('INVALID_ARGUMENT', `a database key is ${DB_KEY_BYTES} bytes`)
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > MAX_DB_KEY_EPOCH)
    throw new NodusError('INVALID_ARGUMENT', `a database key epoch is an integer in [0, ${MAX_DB_KEY_EPOCH}]`)
}

/**
 * Seal `value` for `slot` under the database key `key` of `epoch` (the module doc's format).
 * @param key - 32 bytes
 * @param random - draws the 24-byte nonce
 * @returns the sealed value, dag-cbor(value) + 48 bytes
 * @throws NodusError `INVALID_ARGUMENT` on a bad key or epoch
 */
export function sealValue(
  key: Uint8Array,
  epoch: number,
  slot: ValueSlot,
  value: KvValue,
  random: Random,
): Uint8Array {
  checkKey(key, epoch)
  const header = new Uint8Array(SEALED_HEADER_BYTES)
  header.set(SEALED_MAGIC, 0)
  header[3] = SEALED_VERSION
  new DataView(header.buffer).setUint32(4, epoch)
  const nonce = random.bytes(SEALED_NONCE_BYTES)
  header.set(nonce, 8)
  const ct = xchacha20poly1305(key, nonce, sealedAad(slot, header)).encrypt(dagCbor.encode(value))
  const out = new Uint8Array(SEALED_HEADER_BYTES + ct.byteLength)
  out.set(header, 0)
  out.set(ct, SEALED_HEADER_BYTES)
  return out
}

/**
 * Open a sealed value read from `slot` with the key of the epoch it names.
 * @throws NodusError `KV_SEALED_VALUE_INVALID` when `blob` is not a sealed value; `KV_DB_KEY_MISSING` when
 *   `keys` has no key of its epoch; `DECRYPT_FAILED` when it does not open (another key, or written
 *   for another slot, or tampered)
 */
export function openValue(keys: DbKeyring, slot: ValueSlot, blob: Uint8Array): KvValue {
  const epoch = sealedEpoch(blob)
  const key = keys.get(epoch)
  if (key === undefined)
    throw new NodusError('KV_DB_KEY_MISSING', `no key of epoch ${epoch} for ${slot.db}`, {
      details: { db: slot.db, epoch },
    })
  const header = blob.subarray(0, SEALED_HEADER_BYTES)
  let pt: Uint8Array
  try {
    pt = xchacha20poly1305(key, header.subarray(8), sealedAad(slot, header)).decrypt(
      blob.subarray(SEALED_HEADER_BYTES),
    )
  } catch {
    throw new NodusError('DECRYPT_FAILED', 'sealed value: does not open with this key in this slot', {
      details: { db: slot.db, key: slot.key, epoch, reason: 'aead' },
    })
  }
  return dagCbor.decode(pt) as KvValue
}

/** The newest epoch of `keys` and its key: what new writes seal with. */
export function newestKey(keys: DbKeyring): { epoch: number; key: Uint8Array } | undefined {
  let best: { epoch: number; key: Uint8Array } | undefined
  for (const [epoch, key] of keys) if (best === undefined || epoch > best.epoch) best = { epoch, key }
  return best
}

/** One value an op carries: its index in `args` and its field. */
interface ValueArg {
  index: number
  field?: string | undefined
}

function refused(body: OpBody): NodusError {
  const what = `${body.type}.${body.op}`
  return new NodusError(
    'KV_OP_INVALID',
    `kv operation: ${what} is not available in a private (sealed) database: its merge or queries read the value`,
    { peerAction: 'ignore', details: { reason: 'sealed-db', db: body.db, type: body.type, op: body.op } },
  )
}

/**
 * The values a key operation carries, where its type may be sealed (the module doc).
 * @throws NodusError `KV_OP_INVALID` (`sealed-db`, ignore) for an op refused in a private database
 */
function valueArgs(body: OpBody): ValueArg[] {
  const a = body.args
  const every = (from: number, step: number, field: (i: number) => string | undefined): ValueArg[] => {
    const out: ValueArg[] = []
    for (let i = from; i < a.length; i += step) out.push({ index: i, field: field(i) })
    return out
  }
  const nameAt = (i: number): string | undefined => {
    const n = a[i]
    return typeof n === 'string' ? n : undefined
  }
  if (body.op === 'del') return []
  switch (`${body.type}.${body.op}`) {
    case 'string.set':
      return [{ index: 0 }]
    case 'hash.hset':
      return body.field !== undefined ? [{ index: 0, field: body.field }] : every(1, 2, (i) => nameAt(i - 1))
    case 'hash.hdel':
    case 'list.lrem':
    case 'list.lpop':
    case 'list.rpop':
    case 'stream.xdel':
      return []
    case 'list.lpush':
    case 'list.rpush':
      return every(0, 1, () => undefined)
    case 'list.lset':
      return [{ index: 1 }]
    case 'stream.xadd':
      return every(2, 2, (i) => nameAt(i - 1))
    default:
      throw refused(body)
  }
}

/**
 * Whether a key operation works in a private database (the module doc), without sealing anything:
 * what a client checks before it asks for a key.
 * @throws NodusError `KV_OP_INVALID` (`sealed-db`) for an op refused in a private database
 */
export function checkSealable(body: Pick<OpBody, 'db' | 'type' | 'op' | 'args' | 'field'>): void {
  if (body.type !== 'db') valueArgs(body as OpBody)
}

/**
 * What a host checks of a key operation in a private database: its op is one that works sealed, and
 * every value it carries is a well-formed sealed value (hosts cannot open them).
 * @throws NodusError `KV_OP_INVALID` (peerAction `ignore`, `details.reason` `sealed-db` or
 *   `plaintext-value`); nothing else
 */
export function checkSealedOp(body: OpBody): void {
  for (const { index } of valueArgs(body)) {
    if (index < body.args.length && !isSealedValue(body.args[index]))
      throw new NodusError(
        'KV_OP_INVALID',
        `kv operation: args[${index}] is not a sealed value, and the database is private (sealed)`,
        {
          peerAction: 'ignore',
          details: { reason: 'plaintext-value', db: body.db, type: body.type, op: body.op },
        },
      )
  }
}

/**
 * Seal the values of a key operation's args for a private database, with the newest key of `keys`
 * (what a client does before signing). Other args (fields, stream ids, list element ids) stay.
 * @returns new args
 * @throws NodusError `KV_OP_INVALID` (`sealed-db`) for an op refused in a private database;
 *   `KV_DB_KEY_MISSING` when `keys` is empty
 */
export function sealArgs(
  body: Pick<OpBody, 'db' | 'key' | 'field' | 'type' | 'op' | 'args'>,
  keys: DbKeyring,
  random: Random,
): KvValue[] {
  if (body.type === 'db') return body.args
  const newest = newestKey(keys)
  if (newest === undefined)
    throw new NodusError('KV_DB_KEY_MISSING', `no key to seal with for ${body.db}`, {
      details: { db: body.db },
    })
  const args = [...body.args]
  for (const { index, field } of valueArgs(body as OpBody)) {
    if (index >= args.length) continue
    const slot: ValueSlot = { db: body.db, key: body.key, type: body.type, field }
    args[index] = sealValue(newest.key, newest.epoch, slot, args[index] as KvValue, random)
  }
  return args
}

/**
 * Open what a read of a private database's key returned (key-read.ts `readKey`, `GET /kv/:db/:key`,
 * after `valueFromJson`): a string's value; a hash's `[field, value]` pairs; a list's `{ id, value }`
 * elements; a stream's `{ id, fields: [f1, v1, …] }` entries. Other types are never sealed and come
 * back as they are.
 * @throws what {@link openValue} throws
 */
export function openRead(keys: DbKeyring, db: string, key: string, type: KvType, value: KvValue): KvValue {
  const open = (v: KvValue | undefined, field?: string): KvValue => {
    if (!(v instanceof Uint8Array)) throw notSealed(`${type} value of ${key} is not a sealed value`)
    return openValue(keys, { db, key, type, field }, v)
  }
  const list = (v: KvValue): KvValue[] => (Array.isArray(v) ? v : [])
  const map = (v: KvValue | undefined): { [k: string]: KvValue } =>
    v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) ? v : {}
  switch (type) {
    case 'string':
      return value === null ? null : open(value)
    case 'hash':
      return list(value).map((p) => {
        const [f, v] = list(p)
        return [f ?? null, open(v, typeof f === 'string' ? f : undefined)]
      })
    case 'list':
      return list(value).map((e) => ({ ...map(e), value: open(map(e).value ?? null) }))
    case 'stream':
      return list(value).map((e) => {
        const fields = list(map(e).fields ?? null)
        return {
          ...map(e),
          fields: fields.map((v, i) => (i % 2 === 0 ? v : open(v, String(fields[i - 1])))),
        }
      })
    default:
      return value
  }
}
