/**
 * Private (sealed) databases from the command line (src/kv/sealed.ts, sealed-share.ts): the CLI seals
 * values before signing and opens them after reading, with the database keys shared to this node.
 *
 * A reader is a node: a share is sealed to the X-Wing key in the node's key record, and opens with the
 * X-Wing key files in `<dataDir>/keys/` (src/crypto/xwing-keys.ts) under the node's PeerId. So the
 * owner shares each epoch's key with its own node too (`create --sealed` and `rotate` do), and gets it
 * back from the shares its node holds, like every reader. Nothing of a database key is kept on disk
 * here: each command opens the shares again.
 */
import { isNodusError, NodusError } from '../common/errors.ts'
import { systemRandom } from '../common/random.ts'
import { listXWingKeys, loadIdentity, loadXWingKey, type RecipientKeys } from '../crypto/index.ts'
import {
  type DbKeyring,
  type KvType,
  type KvValue,
  keyringFromShares,
  newDbKey,
  newestKey,
  type OpInput,
  openOp,
  openRead,
  sealArgs,
  sealDbKey,
  shareArgs,
} from '../kv/index.ts'
import { type ApiTarget, getJson } from './client.ts'
import type { KvWriter } from './kv-writer.ts'

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

/** The node's PeerId and its X-Wing keys, from its data directory (none when it holds no identity). */
export async function nodeRecipient(dataDir: string): Promise<RecipientKeys> {
  let identity: Awaited<ReturnType<typeof loadIdentity>>
  try {
    identity = await loadIdentity(dataDir)
  } catch (err) {
    // No node here (--api to a remote node): no key opens, plain databases still work.
    if (isNodusError(err, 'KEYS_MISSING')) return { peerId: '', keys: [] }
    throw err
  }
  const keys = []
  for (const epoch of await listXWingKeys(dataDir))
    keys.push({ epoch, keyPair: await loadXWingKey(dataDir, epoch) })
  return { peerId: identity.peerId.toString(), keys }
}

/** Whether `db` is private, and the keys this node can open from the shares its node holds. */
export async function dbKeyring(
  api: ApiTarget,
  db: string,
  me: RecipientKeys,
): Promise<{ sealed: boolean; keys: Map<number, Uint8Array> }> {
  let sealed = false
  const ops = []
  const kids = me.keys.length === 0 ? [new Uint8Array(32)] : me.keys.map((k) => k.keyPair.keyId)
  for (const kid of kids) {
    const r = await getJson<{ sealed: boolean; shares: string[] }>(
      api,
      `/kv/${encodeURIComponent(db)}/shares/${hex(kid)}`,
    )
    sealed ||= r.sealed
    for (const b of r.shares) ops.push(openOp(new Uint8Array(Buffer.from(b, 'base64'))))
  }
  return { sealed, keys: keyringFromShares(db, ops, me) }
}

/** Sign and submit a `share` of each of `keys` to each of `peers` (their key records from the node). */
export async function shareTo(
  api: ApiTarget,
  writer: KvWriter,
  db: string,
  keys: DbKeyring,
  peers: readonly string[],
): Promise<string[]> {
  const ids: string[] = []
  for (const peer of peers) {
    const r = await getJson<{ peer: string; keyId: string; xwing: string }>(
      api,
      `/kv/reader-key/${encodeURIComponent(peer)}`,
    )
    const record = {
      peer: r.peer,
      keyId: new Uint8Array(Buffer.from(r.keyId, 'hex')),
      xwing: new Uint8Array(Buffer.from(r.xwing, 'base64')),
    }
    for (const [epoch, key] of keys) {
      const args = shareArgs(sealDbKey(db, key, epoch, record))
      const w = await writer.write(api, { db, key: '', type: 'db', op: 'share', args })
      ids.push(w.id)
    }
  }
  return ids
}

/**
 * Make the next epoch's key (0 for a new database) and share it with this node and `readers`.
 * @returns the new epoch
 */
export async function rotate(
  api: ApiTarget,
  writer: KvWriter,
  db: string,
  me: RecipientKeys,
  readers: readonly string[],
  held: DbKeyring = new Map(),
): Promise<number> {
  const epoch = (newestKey(held)?.epoch ?? -1) + 1
  await shareTo(api, writer, db, new Map([[epoch, newDbKey(systemRandom)]]), [me.peerId, ...readers])
  return epoch
}

/**
 * Seal the values of a write when `db` is private.
 * @throws NodusError `KV_DB_KEY_MISSING` when it is private and no share opens here
 */
export async function sealInput<T extends Omit<OpInput, 'hlc' | 'cap'>>(
  api: ApiTarget,
  dataDir: string,
  input: T,
): Promise<T> {
  const me = await nodeRecipient(dataDir)
  const { sealed, keys } = await dbKeyring(api, input.db, me)
  if (!sealed) return input
  if (keys.size === 0)
    throw new NodusError(
      'KV_DB_KEY_MISSING',
      `${input.db} is private and no key of it is shared with ${me.peerId}`,
      {
        details: { db: input.db },
      },
    )
  return { ...input, args: sealArgs(input, keys, systemRandom) }
}

/** Open what a read returned when `db` is private; as it is otherwise. */
export async function openInput(
  api: ApiTarget,
  dataDir: string,
  db: string,
  key: string,
  type: string,
  value: KvValue,
): Promise<KvValue> {
  const { sealed, keys } = await dbKeyring(api, db, await nodeRecipient(dataDir))
  return sealed ? openRead(keys, db, key, type as KvType, value) : value
}
