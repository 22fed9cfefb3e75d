/**
 * What the consensus area keeps on disk (`<dataDir>/consensus`, an ordered store): every vertex it
 * accepted, so a restarted node rebuilds its DAG above the garbage-collection floor and serves
 * fetches; the committer's state as of the last commit the ledger applied; and (proposal-store.ts)
 * the validator's last signed vertex.
 *
 * Keys (every epoch of one federation; the genesis id guards against reuse with another one):
 * - `0x56 ‖ digest (32)` → the vertex's signed bytes (the digest covers the epoch);
 * - `0x45 ‖ epoch (u32 BE) ‖ round (u32 BE) ‖ digest` → empty: the round index per epoch (load an
 *   epoch's rounds above a floor; prune everything below (epoch, floor), so earlier epochs go too);
 * - `0x00 ‖ "committer"` → dag-cbor {@link CommitterState} with its `epoch` (a state of another epoch
 *   than the ledger's is not restored);
 * - `0x00 ‖ "genesis"` → the genesis id (32 bytes).
 */
import * as dagCbor from '@ipld/dag-cbor'
import { NodusError } from '../common/errors.ts'
import type { OrderedStore } from '../kv/index.ts'
import type { CommitterState } from './committer.ts'
import type { VertexRef } from './vertex.ts'

const VERTEX_PREFIX = 0x56
const ROUND_PREFIX = 0x45
const COMMITTER_KEY = Uint8Array.from([0x00, ...new TextEncoder().encode('committer')])
const GENESIS_KEY = Uint8Array.from([0x00, ...new TextEncoder().encode('genesis')])

function vertexKey(digest: Uint8Array): Uint8Array {
  const k = new Uint8Array(1 + digest.byteLength)
  k[0] = VERTEX_PREFIX
  k.set(digest, 1)
  return k
}

const ROUND_KEY_BYTES = 9

function roundKey(epoch: number, round: number, digest?: Uint8Array): Uint8Array {
  const k = new Uint8Array(ROUND_KEY_BYTES + (digest?.byteLength ?? 0))
  k[0] = ROUND_PREFIX
  const view = new DataView(k.buffer)
  view.setUint32(1, epoch)
  view.setUint32(5, round)
  if (digest !== undefined) k.set(digest, ROUND_KEY_BYTES)
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

  /** Keep vertices (signed bytes, with their epoch and slot). Durable when it resolves. */
  async put(vertices: readonly (VertexRef & { epoch: number; bytes: Uint8Array })[]): Promise<void> {
    if (vertices.length === 0) return
    await this.store.write((w) => {
      for (const v of vertices) {
        w.put(vertexKey(v.digest), v.bytes)
        w.put(roundKey(v.epoch, v.round, v.digest), new Uint8Array(0))
      }
    })
  }

  /** The signed bytes of the vertex `digest`, if held. */
  get(digest: Uint8Array): Uint8Array | undefined {
    return this.store.get(vertexKey(digest))
  }

  /** The vertices of `epoch`'s rounds ≥ `floor`, in round order (bytes). */
  *above(epoch: number, floor: number): Generator<Uint8Array> {
    for (const [k] of this.store.range({ start: roundKey(epoch, floor), end: roundKey(epoch + 1, 0) })) {
      const bytes = this.store.get(vertexKey(k.subarray(ROUND_KEY_BYTES)))
      if (bytes !== undefined) yield bytes
    }
  }

  /**
   * Delete the vertices below (`epoch`, `floor`): `epoch`'s rounds below `floor` and every earlier
   * epoch's (at most 100,000 per call). @returns how many
   */
  async prune(epoch: number, floor: number): Promise<number> {
    const keys: Uint8Array[] = []
    for (const [k] of this.store.range({
      start: roundKey(0, 0),
      end: roundKey(epoch, floor),
      limit: 100_000,
    }))
      keys.push(k)
    if (keys.length === 0) return 0
    await this.store.write((w) => {
      for (const k of keys) {
        w.del(k)
        w.del(vertexKey(k.subarray(ROUND_KEY_BYTES)))
      }
    })
    return keys.length
  }

  /** The committer state saved last, if it is `epoch`'s (a state saved before an epoch switch is not). */
  committerState(epoch: number): CommitterState | undefined {
    const raw = this.store.get(COMMITTER_KEY)
    if (raw === undefined) return undefined
    const { epoch: saved, ...s } = dagCbor.decode(raw) as CommitterState & { epoch?: number }
    if ((saved ?? 0) !== epoch) return undefined
    return {
      ...s,
      committed: s.committed.map((r) => ({ author: r.author, round: r.round, digest: r.digest })),
    }
  }

  /** Save `epoch`'s committer state (after the ledger applied every commit up to `state.lastIndex`). */
  async saveCommitterState(state: CommitterState, epoch: number): Promise<void> {
    const bytes = dagCbor.encode({
      epoch,
      lastDecidedRound: state.lastDecidedRound,
      lastIndex: state.lastIndex,
      lastTimestampMs: state.lastTimestampMs,
      lastCommittedRound: state.lastCommittedRound,
      committed: state.committed.map((r) => ({ author: r.author, round: r.round, digest: r.digest })),
    })
    await this.store.write((w) => w.put(COMMITTER_KEY, bytes))
  }
}
