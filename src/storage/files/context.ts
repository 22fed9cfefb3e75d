/**
 * What the file service's parts share (files.ts puts them together): its deps and options, the
 * shapes of puts and gets, a PeerId cache, the Reed-Solomon codecs, and how a failed transfer is
 * described to the observer.
 */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import { type Clock, systemClock } from '../../common/clock.ts'
import { isNodusError, type PeerAction } from '../../common/errors.ts'
import type { HybridPublicKey, HybridSignature } from '../../crypto/index.ts'
import { ReedSolomon } from '../codec/reed-solomon.ts'
import type { placeShards } from '../placement/placement.ts'
import type { Ed25519Sign } from '../protocol/orders.ts'
import type { Receipt } from '../protocol/shard-messages.ts'
import type { Manifest, SignedManifest } from './manifest.ts'

export interface FileServiceOptions {
  /** Data shards per segment. Default 10. */
  k: number
  /** Parity shards per segment. Default 4. */
  m: number
  /**
   * Segment size, bytes. Default 20 MiB (2 MiB shards with k = 10). Each shard costs its holder a file,
   * three fsyncs and a request whatever its size, so larger segments spend less CPU per byte (a warm
   * 16-node put: about 25 % less CPU than with 10 MiB; docs/benchmarks-history.md, "Session 8"), at the price of
   * more memory per segment in flight and more bytes read to repair one lost shard (Storj uses 64 MiB
   * segments, Sia 40 MiB).
   */
  segmentSize: number
  /** Segments encoded/transferred (put) or fetched ahead (get) at once. Bounds memory. Default 2. */
  segmentsInFlight: number
  /** Peers besides this node that keep a copy of the manifest. Default 4. */
  manifestReplicas: number
  /** Other peers tried for a shard whose chosen peer fails, on put. Default 3. */
  putRetries: number
  /** On get, start one more shard request when a segment is not complete after this long, ms. Default 3 000. */
  hedgeDelayMs: number
  /**
   * A get keys bulk sockets to this many connected peers (the closest to the manifest CID first)
   * while it resolves the manifest, so its first shard requests skip the keying round trips. 0: none.
   * Default 16.
   */
  warmPeers: number
  /** Timeout for DHT provider look-ups and announcements, ms. Default 20 000. */
  dhtTimeoutMs: number
  /**
   * Lease on holders, ms. Default 30 days. Holders keep a shard until the latest pin's expiry; a pin
   * without a TTL is a lease of this length that the pinning node renews while the pin lasts, so data
   * nobody pins any more goes away instead of filling disks.
   */
  leaseMs: number
}

export const DEFAULT_FILE_OPTIONS: Readonly<FileServiceOptions> = Object.freeze({
  k: 10,
  m: 4,
  segmentSize: 20 * 1024 * 1024,
  segmentsInFlight: 2,
  manifestReplicas: 4,
  putRetries: 3,
  hedgeDelayMs: 3_000,
  warmPeers: 16,
  dhtTimeoutMs: 20_000,
  leaseMs: 30 * 24 * 3600 * 1000,
})

/** What files need from the local shard store. */
export interface FileLocalStore {
  put(
    cid: CID,
    data: Uint8Array,
    options?: { signal?: AbortSignal; expiresAt?: number },
  ): Promise<{ size: number; created: boolean }>
  get(cid: CID, options?: { signal?: AbortSignal }): Promise<Uint8Array>
  has(cid: CID): boolean
  /** Extend a stored block's expiry (latest wins). Optional: stores without expiry omit it. */
  extendExpiry?(cid: CID, expiresAt: number | undefined): Promise<boolean>
}

/** What files need from the shard protocol client. */
export interface FileShardClient {
  /** Store a block on `peer` under a signed storage order (orders.ts). */
  put(
    peer: PeerId,
    cid: CID,
    bytes: Uint8Array,
    options?: { signal?: AbortSignal; order?: Uint8Array; repair?: boolean },
  ): Promise<Receipt>
  /**
   * Fetch a block, verified against `cid`. `small`: a block of a few KiB (a manifest), sent on the
   * quickest path open now rather than on a bulk socket still to be keyed.
   */
  get(
    peer: PeerId,
    cid: CID,
    options?: { signal?: AbortSignal; repair?: boolean; small?: boolean },
  ): Promise<Uint8Array>
  /** Prepare the bulk path to `peer` ahead of shard gets (optional; see ShardClient `warm`). */
  warm?(peer: PeerId): boolean
  has(peer: PeerId, cids: CID[], options?: { signal?: AbortSignal }): Promise<{ have: boolean[] }>
  /** Send a signed pin request covering `count` CIDs; resolves per CID whether it was extended. */
  pin(peer: PeerId, pin: Uint8Array, count: number, options?: { signal?: AbortSignal }): Promise<boolean[]>
  /** Send a signed commit covering `count` CIDs; resolves per CID whether it was committed. */
  commit(
    peer: PeerId,
    commit: Uint8Array,
    count: number,
    options?: { signal?: AbortSignal },
  ): Promise<boolean[]>
  /** The latest holder update a manifest holder keeps (optional: repair-aware clients). */
  latest?(peer: PeerId, manifest: CID, options?: { signal?: AbortSignal }): Promise<Uint8Array | undefined>
}

/** What files need from the network: candidate peers and the DHT's content routing. */
export interface FilePeers {
  /** Connected peers that speak the shard protocol, in a stable order. */
  candidates(): PeerId[]
  findProviders(cid: CID, options: { signal: AbortSignal }): AsyncIterable<PeerId>
  provide(cid: CID, options: { signal: AbortSignal }): Promise<void>
}

export interface FileServiceDeps {
  selfPeerId: string
  store: FileLocalStore
  client: FileShardClient
  peers: FilePeers
  sign(message: Uint8Array): Promise<HybridSignature>
  /** Ed25519-sign with this node's key (its PeerId): storage orders, commits and pins (orders.ts). */
  signEd25519: Ed25519Sign
  publicKey: HybridPublicKey
  /** Source of lease expiries, order and pin `issuedAt`, manifest `createdAt`; defaults to the system clock. */
  clock?: Clock
  /** Holder updates this node keeps for manifests it watches. */
  updates?: { latest(manifest: CID): Uint8Array | undefined }
  /** A pin marked critical reached this node as a keeper of `manifest` (dynamic redundancy). */
  onCriticalPin?(manifest: CID, expiresAt: number | undefined): Promise<void>
  /** Called once this node stored a manifest it uploaded (it then watches it). */
  onManifestStored?(cid: CID): void
  /**
   * Told about every shard transfer with a peer (feeds performance and trust records). A failure the
   * peer caused carries its `peerAction` (docs/ERRORS.md): peer actions act on it.
   */
  observer?: {
    transfer(
      peer: string,
      op: 'put' | 'get',
      outcome: { ok: boolean; code?: string; peerAction?: PeerAction; bytes: number; ms: number },
    ): void
  }
  /**
   * Placement strategy: choose `n` peers (entry i holds shard i) from `candidates` for segment
   * `segmentIndex` with shards of `shardBytes`. Default: placement v0 ({@link placeShards}).
   */
  place?(candidates: readonly string[], n: number, segmentIndex: number, shardBytes: number): string[]
  logger: {
    debug(obj: object, msg?: string): void
    info(obj: object, msg?: string): void
    warn(obj: object, msg?: string): void
  }
  metrics?: {
    erasureSeconds: { observe(labels: { op: string }, v: number): void }
    /** Phases of a get (`manifest`, `first_segment`), seconds. Optional. */
    getPhaseSeconds?: { observe(labels: { phase: string }, v: number): void }
    fileBytes: { inc(labels: { direction: string }, v: number): void }
    fileOps: { inc(labels: { op: string; result: string }): void }
  }
}

/** Progress of a put or get, for progress bars. */
export interface FileProgress {
  bytes: number
  segments: number
}

export interface PutResult {
  cid: CID
  manifest: Manifest
  /** Peers that stored the manifest (including this node). */
  manifestHolders: string[]
}

/** Options of `FileService.put`. */
export interface PutOptions {
  signal?: AbortSignal
  name?: string
  onProgress?: (p: FileProgress) => void
  /** Holders may delete the shards after this time (ms since the epoch); default never. */
  expiresAt?: number
  /**
   * Default false. True hands each chunk of `source` over to put, which frees its memory once
   * copied (see `segment`'s `releaseChunks`); for sources nothing else reads, like an HTTP body.
   */
  releaseChunks?: boolean
}

/** Options of `FileService.get`. */
export interface GetOptions {
  signal?: AbortSignal
  onProgress?: (p: FileProgress) => void
  manifest?: SignedManifest
  range?: { offset: number; length: number }
}

const codecCache = new Map<string, ReedSolomon>()

/** The Reed-Solomon codec RS(k, m), built once per (k, m) and shared. */
export function codec(k: number, m: number): ReedSolomon {
  const key = `${k}/${m}`
  let rs = codecCache.get(key)
  if (rs === undefined) {
    rs = new ReedSolomon(k, m)
    codecCache.set(key, rs)
  }
  return rs
}

/** A failure's error code (a NodusError's `code`, else the error's name), for logs and metrics. */
export function errCode(err: unknown): string {
  return isNodusError(err) ? err.code : err instanceof Error ? err.name : 'unknown'
}

/** The code and (when the peer caused it) the peerAction of a failed transfer, for the observer. */
export function errFields(err: unknown): { code: string; peerAction?: PeerAction } {
  const peerAction = isNodusError(err) ? err.peerAction : undefined
  return { code: errCode(err), ...(peerAction === undefined ? {} : { peerAction }) }
}

/** The deps and options of one `FileService`, shared by its parts, and its PeerId cache. */
export class FileContext {
  readonly deps: FileServiceDeps
  readonly options: FileServiceOptions
  readonly clock: Clock
  readonly #peerIds = new Map<string, PeerId>()

  constructor(deps: FileServiceDeps, options: FileServiceOptions) {
    this.deps = deps
    this.options = options
    this.clock = deps.clock ?? systemClock
  }

  /** The PeerId of a PeerId string, cached (at most about 10,000). */
  peerId(s: string): PeerId {
    let p = this.#peerIds.get(s)
    if (p === undefined) {
      p = peerIdFromString(s)
      if (this.#peerIds.size > 10_000) this.#peerIds.clear()
      this.#peerIds.set(s, p)
    }
    return p
  }
}

/**
 * A part of the file service (put, get, manifests, pins): the shared {@link FileContext}, and its
 * deps, options and clock at hand.
 */
export abstract class FilePart {
  protected readonly ctx: FileContext
  protected readonly deps: FileServiceDeps
  protected readonly options: FileServiceOptions
  protected readonly clock: Clock

  constructor(ctx: FileContext) {
    this.ctx = ctx
    this.deps = ctx.deps
    this.options = ctx.options
    this.clock = ctx.clock
  }
}
