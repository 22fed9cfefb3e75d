/**
 * Catch-up from a ledger snapshot plus the DAG (`/nodus/consensus-snapshot/1.0.0`, docs/PROTOCOLS.md),
 * for a node whose peers pruned the rounds it would need to replay (it joined late, or was down longer
 * than `2 · consensus.gcDepthRounds` rounds of commits). Requests (wire.ts frames):
 *
 * - `{ op: "head" }` → `{ height, floor }`: the peer's ledger height and the lowest round it serves
 *   vertices from;
 * - `{ op: "vouch", height }` → `{ root, timestampMs, state }`: the ledger root and commit time at
 *   `height` and the digest of the committer state after that commit (vouch.ts), while kept;
 * - `{ op: "offer" }` → `{ height, root, timestampMs, state, chunks, bytes }`: a snapshot of the
 *   peer's ledger at its height, with the committer state there (vouch.ts `VouchedState`); exported
 *   once and cached (`consensus.catchupCacheSnapshots` of them, reused for `consensus.catchupCacheMs`);
 * - `{ op: "chunk", height, seq }` → `{ chunk }`: chunk `seq` of that snapshot (ledger/snapshot.ts).
 *
 * Trust: one peer is never believed. An offer is taken only when f+1 distinct validators of the
 * committee answer `vouch` for its height with its root, commit time and state digest (at least one
 * of them is honest, and honest nodes agree on every committed height); the chunks are then imported
 * with that root expected (a state that does not give it: `LEDGER_SNAPSHOT_ROOT_MISMATCH`, the peer
 * reported, ban), and the next source is tried.
 *
 * When: every `consensus.catchupCheckMs` (and at start) the node asks a few peers for their head; it
 * catches up when one is higher and serves vertices only from above this node's last committed round
 * (the rounds it needs are gone). A node that cannot fetch pruned parents stops committing, so the
 * check finds it.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Clock } from '../common/clock.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import type { Random } from '../common/random.ts'
import type { CommitterState } from './committer.ts'
import type { VertexRef } from './vertex.ts'
import { stateDigest, type VouchedState, type VouchLog } from './vouch.ts'
import { type Wire, wireInvalid } from './wire.ts'

/** The protocol id. */
export const CONSENSUS_SNAPSHOT_PROTOCOL = '/nodus/consensus-snapshot/1.0.0'

/** What catch-up needs of the ledger. */
export interface SnapshotLedger {
  /** Largest snapshot chunk, bytes (`ledger.snapshotChunkBytes`). */
  readonly chunkBytes: number
  height(): number
  rootAt(height: number): { root: Uint8Array; timestampMs: number } | undefined
  /** The chunks of a snapshot at the current height (ledger/snapshot.ts `exportSnapshot`). */
  exportSnapshot(signal: AbortSignal): AsyncIterable<Uint8Array>
  /** Replace the ledger by the snapshot (verified against `expectRoot` before anything is replaced). */
  installSnapshot(
    chunks: Iterable<Uint8Array>,
    options: { expectRoot: Uint8Array; expectHeight: number; signal: AbortSignal },
  ): Promise<{ height: number; timestampMs: number }>
}

export interface CatchUpDeps {
  wire: Wire
  log: Logger
  clock: Clock
  random: Random
  ledger: SnapshotLedger
  vouch: VouchLog
  /** f + 1 of the committee. */
  validity: number
  /** The other validators, PeerId strings (vouchers). */
  validators(): string[]
  /** Peers that may serve a snapshot (topic peers, validators; not banned), PeerId strings. */
  sources(): string[]
  /** The lowest round this node serves vertices from. */
  servedFloor(): number
  /** The round of this node's last committed leader. */
  lastCommittedRound(): number
  /** Run `fn` with no commit applied meanwhile (the area's apply queue). */
  serial<T>(fn: () => Promise<T>): Promise<T>
  /** Restart the core at `state` (inside `serial`, after the ledger was replaced). */
  restore(state: CommitterState): Promise<void>
  report(peer: string, err: NodusError): void
  /** Counts each catch-up by result. */
  counted(result: 'installed' | 'refused' | 'failed'): void
  signal(): AbortSignal
}

export interface CatchUpOptions {
  maxSnapshotBytes: number
  cacheSnapshots: number
  cacheMs: number
  /** Peers asked for their head per check. */
  headPeers: number
}

interface Cached {
  height: number
  root: Uint8Array
  timestampMs: number
  state: VouchedState
  chunks: Uint8Array[]
  bytes: number
  atMs: number
}

const unavailable = (message: string): NodusError =>
  new NodusError('CONSENSUS_SNAPSHOT_UNAVAILABLE', message, { peerAction: 'ignore' })
const invalid = (message: string): NodusError => wireInvalid(CONSENSUS_SNAPSHOT_PROTOCOL, message)
const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
const isHash = (x: unknown): x is Uint8Array => x instanceof Uint8Array && x.byteLength === 32
const eq = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0

function readState(raw: unknown): VouchedState {
  const s = raw as Record<string, unknown> | null
  if (
    typeof s !== 'object' ||
    s === null ||
    !isInt(s.lastIndex) ||
    !isInt(s.lastTimestampMs) ||
    !isInt(s.lastCommittedRound) ||
    !Array.isArray(s.committed) ||
    s.committed.length > 1_000_000
  )
    throw invalid('state is not a committer state')
  const committed: VertexRef[] = []
  for (const r of s.committed as Record<string, unknown>[]) {
    if (typeof r !== 'object' || r === null || !isInt(r.author) || !isInt(r.round) || !isHash(r.digest))
      throw invalid('state.committed holds a malformed ref')
    committed.push({ author: r.author, round: r.round, digest: r.digest })
  }
  return {
    lastIndex: s.lastIndex,
    lastTimestampMs: s.lastTimestampMs,
    lastCommittedRound: s.lastCommittedRound,
    committed,
  }
}

/** Serves snapshots and vouches, and catches this node up (module doc). */
export class CatchUp {
  readonly #d: CatchUpDeps
  readonly #o: CatchUpOptions
  readonly #cache: Cached[] = []
  #exporting: Promise<Cached> | undefined
  #running = false

  constructor(deps: CatchUpDeps, options: CatchUpOptions) {
    this.#d = deps
    this.#o = options
  }

  /** True while a catch-up runs. */
  get running(): boolean {
    return this.#running
  }

  /** The wire handler. */
  serve = async (req: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const d = this.#d
    switch (req.op) {
      case 'head':
        return { height: d.ledger.height(), floor: d.servedFloor() }
      case 'vouch': {
        if (!isInt(req.height)) throw invalid('height must be a non-negative integer')
        const r = d.ledger.rootAt(req.height)
        const s = d.vouch.digestAt(req.height)
        if (r === undefined || s === undefined) throw unavailable(`no vouch kept for height ${req.height}`)
        return { root: r.root, timestampMs: r.timestampMs, state: s }
      }
      case 'offer': {
        const c = await this.#snapshot()
        const { chunks, atMs: _a, ...rest } = c
        return { ...rest, chunks: chunks.length }
      }
      case 'chunk': {
        if (!isInt(req.height) || !isInt(req.seq)) throw invalid('height and seq must be integers')
        const c = this.#cache.find((x) => x.height === req.height)
        const chunk = c?.chunks[req.seq]
        if (chunk === undefined) throw unavailable(`no chunk ${req.seq} of a snapshot at ${req.height}`)
        return { chunk }
      }
      default:
        throw invalid('op must be head, vouch, offer or chunk')
    }
  }

  /** The newest cached snapshot if fresh, else one export (shared by concurrent requests). */
  async #snapshot(): Promise<Cached> {
    const newest = this.#cache.at(-1)
    if (newest !== undefined && this.#d.clock.now() - newest.atMs < this.#o.cacheMs) return newest
    this.#exporting ??= this.#export().finally(() => {
      this.#exporting = undefined
    })
    return this.#exporting
  }

  async #export(): Promise<Cached> {
    const d = this.#d
    const c = await d.serial(async () => {
      const state = d.vouch.current()
      const height = d.ledger.height()
      const r = d.ledger.rootAt(height)
      if (state.lastIndex !== height || r === undefined || height === 0)
        throw unavailable(`no snapshot at height ${height} (the committer is at ${state.lastIndex})`)
      const chunks: Uint8Array[] = []
      let bytes = 0
      for await (const chunk of d.ledger.exportSnapshot(d.signal())) {
        bytes += chunk.byteLength
        if (bytes > this.#o.maxSnapshotBytes)
          throw unavailable(
            `the snapshot is over consensus.catchupMaxSnapshotBytes (${this.#o.maxSnapshotBytes})`,
          )
        chunks.push(chunk)
      }
      return { height, root: r.root, timestampMs: r.timestampMs, state, chunks, bytes, atMs: d.clock.now() }
    })
    const i = this.#cache.findIndex((x) => x.height === c.height)
    if (i >= 0) this.#cache.splice(i, 1)
    this.#cache.push(c)
    while (this.#cache.length > this.#o.cacheSnapshots) this.#cache.shift()
    return c
  }

  /**
   * Ask a few peers for their head; catch up when one is ahead and has pruned what this node needs.
   * @returns what happened
   */
  async check(): Promise<'current' | 'installed' | 'failed'> {
    if (this.#running) return 'current'
    this.#running = true
    try {
      const d = this.#d
      const own = d.ledger.height()
      const need = d.lastCommittedRound()
      const peers = [...new Set([...d.sources(), ...d.validators()])]
        .sort(() => d.random.next() - 0.5)
        .slice(0, this.#o.headPeers)
      const heads = await Promise.all(
        peers.map(async (p) => {
          try {
            const r = await d.wire.request(peerIdFromString(p), { op: 'head' }, d.signal())
            return isInt(r.height) && isInt(r.floor)
              ? { peer: p, height: r.height, floor: r.floor }
              : undefined
          } catch {
            return undefined
          }
        }),
      )
      const ahead = heads
        .filter((h) => h !== undefined && h.height > own && h.floor > need)
        .sort((a, b) => (b?.height ?? 0) - (a?.height ?? 0)) as { peer: string; height: number }[]
      if (ahead.length === 0) return 'current'
      d.log.info(
        { height: own, peer: ahead[0]?.peer, peerHeight: ahead[0]?.height },
        'catching up by snapshot',
      )
      for (const { peer } of ahead) {
        if (d.signal().aborted) break
        try {
          await this.#from(peer)
          d.counted('installed')
          return 'installed'
        } catch (err) {
          const refused = isNodusError(err) && (err.peerAction === 'reject' || err.peerAction === 'ban')
          d.counted(refused ? 'refused' : 'failed')
          if (refused) d.report(peer, err as NodusError)
          d.log.warn({ peer, err: (err as Error).message }, 'a snapshot was not installed')
        }
      }
      return 'failed'
    } finally {
      this.#running = false
    }
  }

  /** Take the snapshot `peer` offers, if f+1 validators vouch for it. */
  async #from(peer: string): Promise<void> {
    const d = this.#d
    const id = peerIdFromString(peer)
    const o = await d.wire.request(id, { op: 'offer' }, d.signal())
    if (!isInt(o.height) || !isHash(o.root) || !isInt(o.timestampMs) || !isInt(o.chunks) || !isInt(o.bytes))
      throw invalid('a malformed offer')
    const state = readState(o.state)
    if (state.lastIndex !== o.height || state.lastTimestampMs !== o.timestampMs)
      throw invalid('the offered committer state is not at the offered height')
    if (o.bytes > this.#o.maxSnapshotBytes)
      throw unavailable(`the snapshot is over consensus.catchupMaxSnapshotBytes (${o.bytes} bytes)`)
    const maxChunks = Math.ceil(this.#o.maxSnapshotBytes / 1024) + 1
    if (o.chunks === 0 || o.chunks > maxChunks) throw invalid(`${o.chunks} chunks`)
    if (o.height <= d.ledger.height()) throw unavailable('the offer is not ahead of this node')
    const height = o.height
    const digest = stateDigest(state)
    const root = o.root
    const ts = o.timestampMs
    // Vouches: f+1 distinct validators must hold this root, time and committer state at this height.
    const answers = await Promise.all(
      d.validators().map(async (v) => {
        try {
          const r = await d.wire.request(peerIdFromString(v), { op: 'vouch', height: o.height }, d.signal())
          return (
            isHash(r.root) &&
            isHash(r.state) &&
            eq(r.root, root) &&
            r.timestampMs === ts &&
            eq(r.state, digest)
          )
        } catch {
          return false
        }
      }),
    )
    const vouched = answers.filter(Boolean).length
    if (vouched < d.validity)
      throw new NodusError(
        'CONSENSUS_SNAPSHOT_UNVOUCHED',
        `${vouched} validators vouch for the snapshot at height ${o.height}; ${d.validity} needed`,
        { peerAction: 'ignore', details: { height: o.height, vouched, needed: d.validity } },
      )
    const chunks: Uint8Array[] = []
    let bytes = 0
    for (let seq = 0; seq < o.chunks; seq++) {
      const r = await d.wire.request(id, { op: 'chunk', height: o.height, seq }, d.signal())
      if (!(r.chunk instanceof Uint8Array) || r.chunk.byteLength > d.ledger.chunkBytes)
        throw invalid(`chunk ${seq} is not bytes of at most ${d.ledger.chunkBytes}`)
      bytes += r.chunk.byteLength
      if (bytes > o.bytes) throw invalid('the chunks are larger than offered')
      chunks.push(r.chunk)
    }
    const head = dagCbor.decode(chunks[0] as Uint8Array) as { timestampMs?: unknown } | null
    if (head?.timestampMs !== ts) throw invalid('the snapshot’s commit time is not the vouched one')
    await d.serial(async () => {
      if (d.ledger.height() >= height) return
      const info = await d.ledger.installSnapshot(chunks, {
        expectRoot: root,
        expectHeight: height,
        signal: d.signal(),
      })
      await d.restore({ ...state, lastDecidedRound: state.lastCommittedRound })
      d.log.info({ height: info.height, peer, vouched }, 'caught up by snapshot')
    })
  }
}
