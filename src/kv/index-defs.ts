/**
 * Which secondary indexes a database has: those its **first** `create` declares (index-spec.ts), the
 * earliest held create by (HLC, op id); in hybrid mode the earliest hybrid-signed create (an
 * Ed25519-only create cannot redefine a hybrid database's indexes). So the definitions are a function
 * of the set of creates held, never of their arrival order (as authorization is, auth.ts), and a later
 * create, from another of the owner's devices, changes nothing.
 *
 * A create that arrives late with an earlier HLC changes the definitions: {@link updateDeclaredIndexes}
 * then drops the indexes no longer declared and builds the new ones from the database's current state
 * (state/secondary.ts `defineIndex`, O(keys of the database)), inside the write that admits the create,
 * so every node holding the same ops holds the same index entries, and a crash leaves either the old
 * definitions with their entries or the new ones with theirs.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { NodusError } from '../common/errors.ts'
import { AuthState, CREATES_PREFIX, getOp } from './auth-store.ts'
import { parseDbOp } from './db-ops.ts'
import { parseIndexes } from './index-spec.ts'
import type { Op, OpBody } from './op-types.ts'
import { isHybridSigner } from './signer.ts'
import { defineIndex, dropIndex, type IndexSpec, loadIndexDefs } from './state/secondary.ts'
import type { OrderedReader, OrderedWriter } from './store/ordered.ts'

const utf8 = new TextEncoder()

/** The op id of the first create of `db` held (module doc), or undefined when none is held. */
function firstCreate(r: OrderedReader, db: string): Uint8Array | undefined {
  const start = Uint8Array.from([CREATES_PREFIX, ...utf8.encode(db), 0])
  const end = Uint8Array.from([CREATES_PREFIX, ...utf8.encode(db), 1])
  const hybrid = new AuthState(r).db(db)?.hybrid === true
  let best: { order: Buffer; id: Uint8Array } | undefined
  for (const [k, v] of r.range({ start, end })) {
    const rec = dagCbor.decode<{ hlc: Uint8Array; signer: Uint8Array }>(v)
    if (hybrid && !isHybridSigner(rec.signer)) continue
    const id = k.slice(start.length)
    // HLC (8 order-preserving bytes) then op id: the merge order, as bytes.
    const order = Buffer.concat([rec.hlc, id])
    if (best === undefined || Buffer.compare(order, best.order) < 0) best = { order, id }
  }
  return best?.id
}

/**
 * The indexes `db` declares: those of its first held create (module doc); none when no create is held.
 * Reads the held ops (trusted: checked at decode), so it does not depend on this node's current limits.
 */
export function declaredIndexes(r: OrderedReader, db: string): IndexSpec[] {
  const id = firstCreate(r, db)
  const bytes = id === undefined ? undefined : getOp(r, id)
  if (bytes === undefined) return []
  const { body } = dagCbor.decode<{ body: OpBody }>(bytes)
  const fail = (m: string): NodusError => new NodusError('KV_OP_INVALID', `held create: ${m}`)
  const parsed = parseDbOp(body, Number.POSITIVE_INFINITY, fail)
  return parsed.op === 'create' ? parseIndexes(parsed.options.indexes, Number.POSITIVE_INFINITY, fail) : []
}

/**
 * After `op` is admitted (auth-store.ts `admitOp`, in the same write): when it is a `create`, bring
 * the database's index definitions (IDXDEF) and entries (IDX) to {@link declaredIndexes}: drop the
 * indexes no longer declared, and define (and build from the current state) the new or changed ones.
 * Other ops change nothing here.
 *
 * @returns whether the definitions changed
 */
export function updateDeclaredIndexes(w: OrderedWriter, op: Op): boolean {
  const b = op.body
  if (b.type !== 'db' || b.op !== 'create') return false
  const want = declaredIndexes(w, b.db)
  const have = loadIndexDefs(w, b.db)
  const same = (x: IndexSpec, y: IndexSpec): boolean =>
    Buffer.compare(dagCbor.encode(x), dagCbor.encode(y)) === 0
  if (want.length === have.length && want.every((s) => have.some((h) => same(h, s)))) return false
  for (const h of have) if (!want.some((s) => s.name === h.name)) dropIndex(w, b.db, h.name)
  for (const s of want) defineIndex(w, b.db, s)
  return true
}
