/**
 * The operations of `type: 'db'`, which manage a database rather than a key: their arguments, checked
 * from untrusted input, and built for signing. Who may sign them, and what they do, is auth.ts.
 *
 * | op | args | signed by |
 * |---|---|---|
 * | `create` | `[]` or `[options]`: a map of per-database options: `indexes` (declared secondary indexes, checked here: index-spec.ts; which create's count: index-defs.ts), … | the owner; with the owner's hybrid key for a database in hybrid mode |
 * | `grant` | `[{ writer, expiresAt?, prefix? }]`: `writer` the writer's public key (32 bytes Ed25519, or 1,984 bytes hybrid), `expiresAt` Unix ms after which the grant no longer covers operations (by their HLC), `prefix` a key prefix the writer is confined to | the owner |
 * | `revoke` | `[grantId]`: the 32-byte id of the `grant` operation revoked | the owner |
 * | `share` | `[{ peer, kid, epoch, enc, ct }]`: a private database's key of one epoch sealed to one reader (sealed-share.ts) | the owner |
 *
 * A `db` operation has key `''` and no field, `expireAt` or `cap`.
 */
import type { Fail } from '../crypto/index.ts'
import { isHlcMs } from './hlc.ts'
import { parseIndexes } from './index-spec.ts'
import type { KvValue, OpBody } from './op-types.ts'
import { parseSealedOption } from './sealed.ts'
import { type DbKeyShare, parseShareArgs } from './sealed-share.ts'
import { HYBRID_SIGNER_BYTES } from './signer.ts'

/** The operation names of `type: 'db'`. */
export const DB_OPS = ['create', 'grant', 'revoke', 'share'] as const
export type DbOpName = (typeof DB_OPS)[number]

/** Bytes of an operation id (BLAKE3-256), and so of a `cap` and a revoked grant id. */
export const OP_ID_BYTES = 32

/** A writer capability, as a `grant` carries it. */
export interface Grant {
  /** The writer's public key: 32 bytes (Ed25519), or 1,984 (hybrid Ed25519 ‖ ML-DSA-65). */
  writer: Uint8Array
  /** Unix ms: the grant covers operations whose HLC `ms` is below this. Absent: no expiry. */
  expiresAt?: number
  /** The writer may write only keys starting with this (UTF-8, at most `kv.maxKeyBytes`). Absent: any key. */
  prefix?: string
}

/** A `db` operation's arguments, checked. */
export type DbOp =
  | { op: 'create'; options: { [k: string]: KvValue } }
  | { op: 'grant'; grant: Grant }
  | { op: 'revoke'; grantId: Uint8Array }
  | { op: 'share'; share: DbKeyShare }

const isMap = (v: unknown): v is { [k: string]: KvValue } =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)

/**
 * Check the arguments (and the key, field, expireAt and cap) of a `type: 'db'` operation whose other
 * fields are checked already (args are KvValues).
 *
 * @param maxKeyBytes - longest grant prefix, UTF-8 bytes (`kv.maxKeyBytes`)
 * @param maxFieldBytes - longest declared index field or JSONPath, UTF-8 bytes (`kv.maxFieldBytes`;
 *   index-spec.ts); default unbounded (for operations checked already)
 * @throws the error from `fail` (KV_OP_INVALID, reject) naming what is wrong
 */
export function parseDbOp(body: OpBody, maxKeyBytes: number, fail: Fail, maxFieldBytes = Infinity): DbOp {
  if (body.key !== '') throw fail('a db operation has key ""')
  if (body.field !== undefined || body.expireAt !== undefined || body.cap !== undefined)
    throw fail('a db operation has no field, expireAt or cap')
  const args = body.args
  switch (body.op) {
    case 'create': {
      if (args.length === 0) return { op: 'create', options: {} }
      const [options] = args
      if (args.length !== 1 || !isMap(options)) throw fail('create takes [] or [options map]')
      parseIndexes(options.indexes, maxFieldBytes, fail)
      // An index over sealed values would hold only ciphertext: refuse the pair rather than mislead.
      if (parseSealedOption(options, fail) && options.indexes !== undefined)
        throw fail('a sealed database cannot declare indexes (its values are ciphertext)')
      return { op: 'create', options }
    }
    case 'grant': {
      const [g] = args
      if (args.length !== 1 || !isMap(g)) throw fail('grant takes [{ writer, expiresAt?, prefix? }]')
      for (const k of Object.keys(g)) {
        if (k !== 'writer' && k !== 'expiresAt' && k !== 'prefix') throw fail(`grant has an unknown key ${k}`)
      }
      const { writer, expiresAt, prefix } = g
      if (
        !(writer instanceof Uint8Array) ||
        (writer.byteLength !== 32 && writer.byteLength !== HYBRID_SIGNER_BYTES)
      )
        throw fail(`grant writer must be 32 or ${HYBRID_SIGNER_BYTES} bytes`)
      const grant: Grant = { writer }
      if (expiresAt !== undefined) {
        if (!isHlcMs(expiresAt)) throw fail('grant expiresAt must be Unix ms below 2^48')
        grant.expiresAt = expiresAt
      }
      if (prefix !== undefined) {
        if (typeof prefix !== 'string' || Buffer.byteLength(prefix) > maxKeyBytes)
          throw fail(`grant prefix must be a string of at most ${maxKeyBytes} bytes`)
        grant.prefix = prefix
      }
      return { op: 'grant', grant }
    }
    case 'revoke': {
      const [grantId] = args
      if (args.length !== 1 || !(grantId instanceof Uint8Array) || grantId.byteLength !== OP_ID_BYTES)
        throw fail(`revoke takes [grant op id (${OP_ID_BYTES} bytes)]`)
      return { op: 'revoke', grantId }
    }
    case 'share':
      return { op: 'share', share: parseShareArgs(args, fail) }
    default:
      throw fail(`unknown db operation ${body.op}; one of ${DB_OPS.join(', ')}`)
  }
}

/** The args of a `create`: `[]`, or `[options]` when there are options. */
export function createArgs(options: { [k: string]: KvValue } = {}): KvValue[] {
  return Object.keys(options).length === 0 ? [] : [options]
}

/** The args of a `grant`. */
export function grantArgs(grant: Grant): KvValue[] {
  const g: { [k: string]: KvValue } = { writer: grant.writer }
  if (grant.expiresAt !== undefined) g.expiresAt = grant.expiresAt
  if (grant.prefix !== undefined) g.prefix = grant.prefix
  return [g]
}

/** The args of a `revoke` of the grant whose op id is `grantId` (32 bytes). */
export function revokeArgs(grantId: Uint8Array): KvValue[] {
  return [grantId]
}
