/**
 * Catch-up from a ledger snapshot plus the DAG (`/nodus/consensus-snapshot/1.0.0`, docs/PROTOCOLS.md),
 * for a node whose peers pruned the rounds it would need to replay (it joined late, or was down longer
 * than about `consensus.gcDepthRounds` rounds). Requests (wire.ts frames: one dag-cbor map each way):
 *
 * - `{ op: "head", epoch? }` → `{ height, floor }`: the peer's ledger height and the lowest round it
 *   serves vertices from, of the asker's epoch (default the peer's own; an epoch it no longer holds:
 *   2^32 − 1, nothing);
 * - `{ op: "vouch", height }` → `{ root, timestampMs, state }`: the ledger root and commit time at
 *   `height` and the digest of the committer state after that commit (vouch.ts), while kept;
 * - `{ op: "offer" }` → `{ height, root, timestampMs, state, chunks, bytes, chunkBytes }`: a snapshot
 *   of the peer's ledger at its height, with the committer state there (vouch.ts `VouchedState`: its
 *   epoch, the epoch's base, the commit index); exported once and cached (module doc of {@link CatchUp});
 * - `{ op: "chunk", height, seq }` → `{ chunk }`: chunk `seq` of that snapshot (ledger/snapshot.ts).
 *
 * Trust: one peer is never believed. An offer is taken only when f+1 distinct validators of the
 * committee this node runs answer `vouch` for its height with its root, commit time and state digest
 * (at least one of them is honest, and honest nodes agree on every committed height); the chunks are then imported
 * with that root expected (a state that does not give it: `LEDGER_SNAPSHOT_ROOT_MISMATCH`, the peer
 * reported, ban), and the next source is tried. The import is staged apart and replaces the ledger in
 * one write (ledger area `installSnapshot`): nothing is installed unless the whole snapshot checks.
 *
 * When: every `consensus.catchupCheckMs`, when this node's ledger height did not move since the
 * previous check while vertices wait in its DAG for parents, it asks a few peers it is connected to
 * for their head, and catches up when one is ahead and serves vertices only from above this node's DAG
 * floor (the parents it waits for are gone). A node that cannot fetch pruned parents stops committing,
 * so the check finds it; a node merely slowed by round timeouts waits for nothing and is left alone.
 * Only connected peers are asked: a request to a bare PeerId would start a libp2p dial that waits in
 * a peer-routing lookup, and libp2p joins every later dial to that peer to it.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Clock } from '../common/clock.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import type { FairSlots } from '../common/fair-slots.ts'
import type { Logger } from '../common/logger.ts'
import type { Random } from '../common/random.ts'
import type { CommitterState } from './committer.ts'
import type { VertexRef } from './vertex.ts'
import { heightOf, stateDigest, type VouchedState, type VouchLog } from './vouch.ts'
import { wireInvalid } from './wire.ts'

/** The protocol id. */
export const CONSENSUS_SNAPSHOT_PROTOCOL = '/nodus/consensus-snapshot/1.0.0'
/** Largest request frame served, bytes (a request is an op, a height and a seq). */
export const SNAPSHOT_MAX_REQUEST_BYTES = 1024
/**
 * Room above `ledger.snapshotChunkBytes` in a reply frame, bytes: an offer's committer state (n ×
 * (gcDepthRounds + 2) refs of about 45 bytes) or a chunk's envelope.
 */
export const SNAPSHOT_FRAME_OVERHEAD = 1024 * 1024

/** What catch-up needs of the ledger (the ledger area, node.ts). */
export interface SnapshotLedger {
  /** Largest snapshot chunk written or accepted, bytes (`ledger.snapshotChunkBytes`). */
  readonly chunkBytes: number
  height(): number
  rootAt(height: number): { root: Uint8Array; timestampMs: number } | undefined
  /** The chunks of a snapshot at the current height (ledger/snapshot.ts `exportSnapshot`). */
  exportSnapshot(signal: AbortSignal): AsyncIterable<Uint8Array>
  /**
   * Replace the ledger by the snapshot, checked against `expectRoot` before anything is replaced.
   * @throws `LEDGER_SNAPSHOT_INVALID` (reject), `LEDGER_SNAPSHOT_ROOT_MISMATCH` (ban)
   */
  installSnapshot(
    chunks: Iterable<Uint8Array>,
    options: { expectRoot: Uint8Array; expectHeight: number; signal: AbortSignal },
  ): Promise<{ height: number; timestampMs: number }>
}

/** The client side of the protocol (wire.ts `Wire.request`). */
export interface SnapshotWire {
  request(peer: PeerId, body: Record<string, unknown>, signal?: AbortSignal): Promise<Record<string, unknown>>
}

export interface CatchUpDeps {
  wire: SnapshotWire
  log: Logger
  clock: Clock
  random: Random
  ledger: SnapshotLedger
  vouch: VouchLog
  /** Bounds the snapshot requests served at once, per peer and in all. */
  slots: FairSlots
  /** f + 1 of the committee. */
  validity: number
  /** Largest committer state accepted: refs committed in `gcDepthRounds + 1` rounds (n × that). */
  maxCommittedRefs: number
  /** The other validators this node is connected to, PeerId strings (vouchers). */
  validators(): string[]
  /** Connected peers that may serve a snapshot (the DAG topic's, not banned), PeerId strings. */
  sources(): string[]
  /** The lowest round this node serves vertices from, of `epoch` (default its own; 2^32 − 1: none). */
  servedFloor(epoch?: number): number
  /** The epoch this node runs (sent with `head`; default: none sent). */
  epoch?(): number
  /** The lowest round this node's DAG wants (its GC floor). */
  dagFloor(): number
  /** True while vertices wait in this node's DAG for parents it has not got. */
  waiting(): boolean
  /** The round of this node's last committed leader. */
  lastCommittedRound(): number
  /** Run `fn` with no commit applied meanwhile (the area's apply queue). */
  serial<T>(fn: () => Promise<T>): Promise<T>
  /**
   * Restart the core at `state` (inside `serial`, after the ledger was replaced): of the epoch the
   * installed ledger runs (`state.epoch`, `state.base`).
   */
  restore(state: CommitterState & { epoch?: number; base?: number }): Promise<void>
  report(peer: string, err: NodusError): void
  /** Counts each catch-up attempt from one source by result. */
  counted(result: 'installed' | 'refused' | 'failed'): void
  signal(): AbortSignal
}

export interface CatchUpOptions {
  /** Largest snapshot exported or downloaded, bytes (`consensus.catchupMaxSnapshotBytes`). */
  maxSnapshotBytes: number
  /** Exported snapshots kept to serve chunks (`consensus.catchupCacheSnapshots`). */
  cacheSnapshots: number
  /** How long the newest export is offered again, ms (`consensus.catchupCacheMs`). */
  cacheMs: number
  /**
   * Rounds committed since an export after which it is no longer offered (half of `gcDepthRounds`):
   * a taker must still find the DAG above the snapshot on its peers.
   */
  cacheRounds: number
  /** Peers asked for their head per check (`consensus.catchupHeadPeers`). */
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

/** A peer's offer, checked for shape and bounds. */
export interface SnapshotOffer {
  height: number
  root: Uint8Array
  timestampMs: number
  state: VouchedState
  chunks: number
  bytes: number
  chunkBytes: number
}

const unavailable = (message: string): NodusError =>
  new NodusError('CONSENSUS_SNAPSHOT_UNAVAILABLE', message, { peerAction: 'ignore' })
const invalid = (message: string): NodusError => wireInvalid(CONSENSUS_SNAPSHOT_PROTOCOL, message)
const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
const isHash = (x: unknown): x is Uint8Array => x instanceof Uint8Array && x.byteLength === 32
const eq = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0

/**
 * A committer state from a peer, checked.
 * @throws PROTOCOL_ERROR (reject) when malformed or over `maxRefs` committed refs
 */
export function readState(raw: unknown, maxRefs: number): VouchedState {
  const s = raw as Record<string, unknown> | null
  if (
    typeof s !== 'object' ||
    s === null ||
    !isInt(s.lastIndex) ||
    (s.epoch !== undefined && !isInt(s.epoch)) ||
    (s.base !== undefined && !isInt(s.base)) ||
    !isInt(s.lastTimestampMs) ||
    !isInt(s.lastCommittedRound) ||
    !Array.isArray(s.committed)
  )
    throw invalid('state is not a committer state')
  if (s.committed.length > maxRefs) throw invalid(`state holds over ${maxRefs} committed refs`)
  const committed: VertexRef[] = []
  for (const r of s.committed as Record<string, unknown>[]) {
    if (typeof r !== 'object' || r === null || !isInt(r.author) || !isInt(r.round) || !isHash(r.digest))
      throw invalid('state.committed holds a malformed ref')
    committed.push({ author: r.author, round: r.round, digest: r.digest })
  }
  return {
    ...(s.epoch === undefined ? {} : { epoch: s.epoch as number }),
    ...(s.base === undefined ? {} : { base: s.base as number }),
    lastIndex: s.lastIndex,
    lastTimestampMs: s.lastTimestampMs,
    lastCommittedRound: s.lastCommittedRound,
    committed,
  }
}

/**
 * Serves snapshots and vouches, and catches this node up (module doc).
 *
 * Bounds: requests served at once per peer and in all (`slots`, beyond: `PEER_BUSY`); a snapshot of
 * at most `maxSnapshotBytes` in chunks of at most the ledger's `chunkBytes`; at most `cacheSnapshots`
 * exports held in memory (so at most `cacheSnapshots × maxSnapshotBytes` bytes); one catch-up at a
 * time, its chunks fetched one by one.
 */
export class CatchUp {
  readonly #d: CatchUpDeps
  readonly #o: CatchUpOptions
  readonly #cache: Cached[] = []
  #exporting: Promise<Cached> | undefined
  #running = false
  /** The ledger height at the previous check (-1: none yet). */
  #lastHeight = -1

  constructor(deps: CatchUpDeps, options: CatchUpOptions) {
    this.#d = deps
    this.#o = options
  }

  /** True while a check or catch-up runs. */
  get running(): boolean {
    return this.#running
  }

  /** Snapshots held to serve, and their bytes. */
  get cached(): { snapshots: number; bytes: number } {
    return { snapshots: this.#cache.length, bytes: this.#cache.reduce((a, c) => a + c.bytes, 0) }
  }

  /** The wire handler (wire.ts `WireHandler`). @throws PROTOCOL_ERROR, PEER_BUSY, CONSENSUS_SNAPSHOT_UNAVAILABLE */
  serve = async (req: Record<string, unknown>, peer: string): Promise<Record<string, unknown>> => {
    const slot = this.#d.slots.tryAcquire(peer)
    if ('refused' in slot)
      throw new NodusError('PEER_BUSY', `snapshot requests: the ${slot.refused} limit is reached`, {
        peerAction: 'ignore',
      })
    try {
      return await this.#serve(req)
    } finally {
      slot.release()
    }
  }

  async #serve(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    const d = this.#d
    switch (req.op) {
      case 'head':
        if (req.epoch !== undefined && !isInt(req.epoch))
          throw invalid('epoch must be a non-negative integer')
        return { height: d.ledger.height(), floor: d.servedFloor(req.epoch) }
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
        return { ...rest, chunks: chunks.length, chunkBytes: d.ledger.chunkBytes }
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

  /** The newest cached snapshot if fresh (in time and rounds), else one export shared by all asking. */
  async #snapshot(): Promise<Cached> {
    const newest = this.#cache.at(-1)
    if (
      newest !== undefined &&
      this.#d.clock.now() - newest.atMs < this.#o.cacheMs &&
      this.#d.lastCommittedRound() - newest.state.lastCommittedRound < this.#o.cacheRounds
    )
      return newest
    this.#exporting ??= this.#export().finally(() => {
      this.#exporting = undefined
    })
    return this.#exporting
  }

  async #export(): Promise<Cached> {
    const d = this.#d
    // In the apply queue: the ledger and the vouch log stand at the same commit for the whole export.
    const c = await d.serial(async () => {
      const state = d.vouch.current()
      const height = d.ledger.height()
      const r = d.ledger.rootAt(height)
      if (heightOf(state) !== height || r === undefined || height === 0)
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
   * Ask a few connected peers for their head; catch up when this node made no progress since the last
   * check, waits for parents, and a peer is ahead and has pruned what this node's DAG wants (module
   * doc). Sources are tried highest first.
   * @returns what happened
   */
  async check(): Promise<'current' | 'installed' | 'failed'> {
    if (this.#running) return 'current'
    this.#running = true
    try {
      const d = this.#d
      const own = d.ledger.height()
      const stalled = own === this.#lastHeight
      this.#lastHeight = own
      if (!stalled || !d.waiting()) return 'current'
      const need = d.dagFloor()
      const peers = [...new Set([...d.sources(), ...d.validators()])]
        .map((p) => ({ p, k: d.random.next() }))
        .sort((a, b) => a.k - b.k)
        .slice(0, this.#o.headPeers)
        .map((x) => x.p)
      const heads = await Promise.all(
        peers.map(async (p) => {
          try {
            const head = d.epoch === undefined ? { op: 'head' } : { op: 'head', epoch: d.epoch() }
            const r = await d.wire.request(peerIdFromString(p), head, d.signal())
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
          await this.catchUpFrom(peer)
          d.counted('installed')
          this.#lastHeight = d.ledger.height()
          return 'installed'
        } catch (err) {
          const refused = isNodusError(err) && (err.peerAction === 'reject' || err.peerAction === 'ban')
          d.counted(refused ? 'refused' : 'failed')
          if (refused) d.report(peer, err as NodusError)
          d.log.warn(
            { peer, code: isNodusError(err) ? err.code : undefined, err: (err as Error).message },
            'a snapshot was not installed',
          )
        }
      }
      return 'failed'
    } finally {
      this.#running = false
    }
  }

  /**
   * Take the snapshot `peer` offers, if f+1 validators vouch for it (module doc).
   * @throws CONSENSUS_SNAPSHOT_UNVOUCHED (ignore), CONSENSUS_SNAPSHOT_UNAVAILABLE (ignore: not ahead,
   *   over this node's bounds), PROTOCOL_ERROR (reject: a malformed offer or chunk),
   *   LEDGER_SNAPSHOT_INVALID (reject), LEDGER_SNAPSHOT_ROOT_MISMATCH (ban), the wire's errors
   */
  async catchUpFrom(peer: string): Promise<void> {
    const d = this.#d
    const id = peerIdFromString(peer)
    const offer = this.#readOffer(await d.wire.request(id, { op: 'offer' }, d.signal()))
    const { height, root, timestampMs } = offer
    const digest = stateDigest(offer.state)
    // Vouches: f+1 distinct validators must hold this root, time and committer state at this height.
    const answers = await Promise.all(
      d.validators().map(async (v) => {
        try {
          const r = await d.wire.request(peerIdFromString(v), { op: 'vouch', height }, d.signal())
          return (
            isHash(r.root) &&
            isHash(r.state) &&
            eq(r.root, root) &&
            r.timestampMs === timestampMs &&
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
        `${vouched} validators vouch for the snapshot at height ${height}; ${d.validity} needed`,
        { peerAction: 'ignore', details: { height, vouched, needed: d.validity } },
      )
    const chunks: Uint8Array[] = []
    let bytes = 0
    for (let seq = 0; seq < offer.chunks; seq++) {
      const r = await d.wire.request(id, { op: 'chunk', height, seq }, d.signal())
      if (!(r.chunk instanceof Uint8Array) || r.chunk.byteLength > offer.chunkBytes)
        throw invalid(`chunk ${seq} is not bytes of at most ${offer.chunkBytes}`)
      bytes += r.chunk.byteLength
      if (bytes > offer.bytes) throw invalid('the chunks are larger than offered')
      chunks.push(r.chunk)
    }
    let head: { timestampMs?: unknown } | null
    try {
      head = dagCbor.decode(chunks[0] as Uint8Array) as { timestampMs?: unknown } | null
    } catch {
      throw invalid('chunk 0 is not dag-cbor')
    }
    if (head?.timestampMs !== timestampMs) throw invalid('the snapshot’s commit time is not the vouched one')
    await d.serial(async () => {
      if (d.ledger.height() >= height) return
      const info = await d.ledger.installSnapshot(chunks, {
        expectRoot: root,
        expectHeight: height,
        signal: d.signal(),
      })
      await d.restore({ ...offer.state, lastDecidedRound: offer.state.lastCommittedRound })
      d.log.info({ height: info.height, peer, vouched, bytes }, 'caught up by snapshot')
    })
  }

  #readOffer(o: Record<string, unknown>): SnapshotOffer {
    const d = this.#d
    if (
      !isInt(o.height) ||
      !isHash(o.root) ||
      !isInt(o.timestampMs) ||
      !isInt(o.chunks) ||
      !isInt(o.bytes) ||
      !isInt(o.chunkBytes)
    )
      throw invalid('a malformed offer')
    const state = readState(o.state, d.maxCommittedRefs)
    if (heightOf(state) !== o.height || state.lastTimestampMs !== o.timestampMs)
      throw invalid('the offered committer state is not at the offered height')
    // Every chunk carries the chain and the root (64 bytes): no more chunks than that allows.
    if (o.chunks === 0 || o.chunks > Math.ceil(o.bytes / 64))
      throw invalid(`${o.chunks} chunks for ${o.bytes} bytes`)
    if (o.bytes > this.#o.maxSnapshotBytes)
      throw unavailable(`the snapshot is over consensus.catchupMaxSnapshotBytes (${o.bytes} bytes)`)
    if (o.chunkBytes > d.ledger.chunkBytes)
      throw unavailable(
        `chunks of ${o.chunkBytes} bytes, over ledger.snapshotChunkBytes (${d.ledger.chunkBytes})`,
      )
    if (o.height <= d.ledger.height()) throw unavailable('the offer is not ahead of this node')
    return {
      height: o.height,
      root: o.root,
      timestampMs: o.timestampMs,
      state,
      chunks: o.chunks,
      bytes: o.bytes,
      chunkBytes: o.chunkBytes,
    }
  }
}
