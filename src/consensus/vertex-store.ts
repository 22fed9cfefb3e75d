/**
 * What the consensus area keeps on disk (`<dataDir>/consensus`, an ordered store): every vertex it
 * accepted, so a restarted node rebuilds its DAG above the garbage-collection floor and serves
 * fetches; the committer's state as of the last commit the ledger applied; and (proposal-store.ts)
 * the validator's last signed vertex.
 *
 * Keys (one epoch per store; the genesis id guards against reuse with another federation):
 * - `0x56 ‖ digest (32)` → the vertex's signed bytes;
 * - `0x72 ‖ round (u32 BE) ‖ digest` → empty: the round index (load above a floor, prune below it);
 * - `0x00 ‖ "committer"` → dag-cbor {@link CommitterState};
 * - `0x00 ‖ "genesis"` → the genesis id (32 bytes).
 */
import * as dagCbor from '@ipld/dag-cbor'
import { NodusError } from '../common/errors.ts'
import type { OrderedStore } from '../kv/index.ts'
import type { CommitterState } from './committer.ts'
import type { VertexRef } from './vertex.ts'

const VERTEX_PREFIX = 0x56
const ROUND_PREFIX = 0x72
const COMMITTER_KEY = Uint8Array.from([0x00, ...new TextEncoder().encode('committer')])
const GENESIS_KEY = Uint8Array.from([0x00, ...new TextEncoder().encode('genesis')])

function vertexKey(digest: Uint8Array): Uint8Array {
  const k = new Uint8Array(1 + digest.byteLength)
  k[0] = VERTEX_PREFIX
  k.set(digest, 1)
  return k
}

function roundKey(round: number, digest?: Uint8Array): Uint8Array {
  const k = new Uint8Array(5 + (digest?.byteLength ?? 0))
  k[0] = ROUND_PREFIX
  new DataView(k.buffer).setUint32(1, round)
  if (digest !== undefined) k.set(digest, 5)
  return k
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0

/** The consensus area's persistent state (module doc). */
export class VertexStore {
  readonly store: OrderedStore

  constructor(store: OrderedStore) {
    this.store = store
  }

  /**
   * Bind the store to a genesis: a new store takes `id`; a store of another genesis is refused.
   * @throws NodusError `GENESIS_INVALID` when the store belongs to another federation
   */
  async bind(id: Uint8Array): Promise<void> {
    const have = this.store.get(GENESIS_KEY)
    if (have === undefined) await this.store.write((w) => w.put(GENESIS_KEY, id))
    else if (!sameBytes(have, id))
      throw new NodusError('GENESIS_INVALID', 'the consensus store belongs to another genesis', {
        details: { reason: 'store of another genesis' },
      })
  }

  /** Keep vertices (signed bytes, with their slot). Durable when it resolves. */
  async put(vertices: readonly (VertexRef & { bytes: Uint8Array })[]): Promise<void> {
    if (vertices.length === 0) return
    await this.store.write((w) => {
      for (const v of vertices) {
        w.put(vertexKey(v.digest), v.bytes)
        w.put(roundKey(v.round, v.digest), new Uint8Array(0))
      }
    })
  }

  /** The signed bytes of the vertex `digest`, if held. */
  get(digest: Uint8Array): Uint8Array | undefined {
    return this.store.get(vertexKey(digest))
  }

  /** The vertices of rounds ≥ `floor`, in round order (bytes). */
  *above(floor: number): Generator<Uint8Array> {
    for (const [k] of this.store.range({ start: roundKey(floor), end: Uint8Array.of(ROUND_PREFIX + 1) })) {
      const bytes = this.store.get(vertexKey(k.subarray(5)))
      if (bytes !== undefined) yield bytes
    }
  }

  /** Delete the vertices of rounds below `floor`. @returns how many */
  async prune(floor: number): Promise<number> {
    const keys: Uint8Array[] = []
    for (const [k] of this.store.range({ start: roundKey(0), end: roundKey(floor), limit: 100_000 }))
      keys.push(k)
    if (keys.length === 0) return 0
    await this.store.write((w) => {
      for (const k of keys) {
        w.del(k)
        w.del(vertexKey(k.subarray(5)))
      }
    })
    return keys.length
  }

  /** The committer state saved last, if any. */
  committerState(): CommitterState | undefined {
    const raw = this.store.get(COMMITTER_KEY)
    if (raw === undefined) return undefined
    const s = dagCbor.decode(raw) as CommitterState
    return {
      ...s,
      committed: s.committed.map((r) => ({ author: r.author, round: r.round, digest: r.digest })),
    }
  }

  /** Save the committer state (after the ledger applied every commit up to `state.lastIndex`). */
  async saveCommitterState(state: CommitterState): Promise<void> {
    const bytes = dagCbor.encode({
      ...state,
      committed: state.committed.map((r) => ({ author: r.author, round: r.round, digest: r.digest })),
    })
    await this.store.write((w) => w.put(COMMITTER_KEY, bytes))
  }
}
