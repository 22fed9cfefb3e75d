/**
 * Put and get of whole files: segment, erasure-code, address, place, transfer, manifest (DESIGN.md,
 * "Storing a file"), and the reverse with verification, hedging and in-order streaming.
 */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import { withDeadline } from '../../common/abort.ts'
import { BufferPool } from '../../common/buffer-pool.ts'
import { bytesEqual } from '../../common/bytes.ts'
import { type Clock, systemClock } from '../../common/clock.ts'
import { isNodusError, NodusError, type PeerAction } from '../../common/errors.ts'
import { Blake3Stream, blake3, type HybridPublicKey, type HybridSignature } from '../../crypto/index.ts'
import { cidFromDigest, cidToString, parseCid, RAW_CODEC } from '../codec/cid.ts'
import { ReedSolomon } from '../codec/reed-solomon.ts'
import { segment } from '../codec/segmenter.ts'
import { closestTo, responsibleFor } from '../keeper/responsibility.ts'
import { placeShards } from '../placement/placement.ts'
import { type Ed25519Sign, MAX_RECORD_CIDS, signCommit, signOrder, signPin } from '../protocol/orders.ts'
import type { Receipt } from '../protocol/shard-messages.ts'
import {
  applyHolderUpdate,
  decodeHolderUpdate,
  decodeManifest,
  type HolderUpdate,
  type Manifest,
  type ManifestSegment,
  openHolderUpdate,
  type SignedManifest,
  signManifest,
} from './manifest.ts'

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
  get(peer: PeerId, cid: CID, options?: { signal?: AbortSignal; repair?: boolean }): Promise<Uint8Array>
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

const codecCache = new Map<string, ReedSolomon>()
/**
 * How long a peer that answered a shard get with PEER_UNREACHABLE goes to the back of later segments'
 * request orders, ms. Within one get, each segment would otherwise try the same dead holders first.
 */
export const UNREACHABLE_MEMORY_MS = 30_000
/** Most peers remembered as unreachable (the oldest is forgotten first). */
const UNREACHABLE_MEMORY_PEERS = 4_096
/**
 * A stored segment while its put runs: the shard CIDs packed end to end in one buffer (they all have
 * the same length) and each shard's holder. A CID object with its digest and views costs about 0.6 KB
 * of heap, kept for the whole put: 1.35 MB per GB of file with RS(4,2) and 1 MiB shards, which V8
 * promotes and sizes its heap by (docs/benchmarks-history.md, "Session 7"). Unpacked once the put is done.
 */
interface PackedSegment {
  size: number
  shardSize: number
  /** Shard CIDs, `cidLength` bytes each, k data then m parity. */
  cids: Uint8Array
  cidLength: number
  holders: string[]
}

function packSegment(size: number, shardSize: number, cids: CID[], holders: string[]): PackedSegment {
  const cidLength = cids[0]?.bytes.byteLength ?? 0
  const packed = new Uint8Array(cidLength * cids.length)
  cids.forEach((cid, j) => {
    if (cid.bytes.byteLength !== cidLength) {
      throw new NodusError('CID_INVALID', 'shard CIDs of one segment differ in length', {
        details: { cid: cidToString(cid), cidLength },
      })
    }
    packed.set(cid.bytes, j * cidLength)
  })
  return { size, shardSize, cids: packed, cidLength, holders }
}

function unpackSegment(p: PackedSegment): ManifestSegment {
  return {
    size: p.size,
    shardSize: p.shardSize,
    shards: p.holders.map((holder, j) => ({
      cid: parseCid(p.cids.subarray(j * p.cidLength, (j + 1) * p.cidLength)),
      holders: [holder],
    })),
  }
}

function codec(k: number, m: number): ReedSolomon {
  const key = `${k}/${m}`
  let rs = codecCache.get(key)
  if (rs === undefined) {
    rs = new ReedSolomon(k, m)
    codecCache.set(key, rs)
  }
  return rs
}

function errCode(err: unknown): string {
  return isNodusError(err) ? err.code : err instanceof Error ? err.name : 'unknown'
}

/** The code and (when the peer caused it) the peerAction of a failed transfer, for the observer. */
function errFields(err: unknown): { code: string; peerAction?: PeerAction } {
  const peerAction = isNodusError(err) ? err.peerAction : undefined
  return { code: errCode(err), ...(peerAction === undefined ? {} : { peerAction }) }
}

/** What the storage orders of one put (a segment, a manifest, a repaired shard) say; orders signed per holder. */
interface OrderTerms {
  cids: CID[]
  maxBytes: number
  expiresAt: number
  manifest: CID | undefined
  orders: Map<string, Promise<Uint8Array>>
}

/** Puts files into the network and gets them back. */
export class FileService {
  readonly #deps: FileServiceDeps
  readonly #options: FileServiceOptions
  readonly #clock: Clock
  readonly #peerIds = new Map<string, PeerId>()
  readonly #verified = new Map<string, SignedManifest>()
  /** Peer → the clock's time of its last PEER_UNREACHABLE answer to a shard get (see UNREACHABLE_MEMORY_MS). */
  readonly #unreachable = new Map<string, number>()
  #transfers = 0

  constructor(deps: FileServiceDeps, options: FileServiceOptions) {
    if (options.k < 1 || options.m < 0 || options.k + options.m > 256) {
      throw new NodusError('CONFIG_INVALID', 'need 1 ≤ k and k + m ≤ 256', {
        details: { k: options.k, m: options.m },
      })
    }
    this.#deps = deps
    this.#options = options
    this.#clock = deps.clock ?? systemClock
  }

  /** Puts and gets running on this node now (background work such as announcing waits for 0). */
  get transfers(): number {
    return this.#transfers
  }

  #peerId(s: string): PeerId {
    let p = this.#peerIds.get(s)
    if (p === undefined) {
      p = peerIdFromString(s)
      if (this.#peerIds.size > 10_000) this.#peerIds.clear()
      this.#peerIds.set(s, p)
    }
    return p
  }

  /**
   * Store a file read from `source`, streamed in segments; resolves with the manifest CID.
   * Memory is bounded by `segmentsInFlight` segments. Throws NOT_ENOUGH_PEERS when a shard finds no
   * home, ABORTED/TIMEOUT on cancellation.
   */
  async put(
    source: AsyncIterable<Uint8Array>,
    options: {
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
    } = {},
  ): Promise<PutResult> {
    this.#transfers++
    try {
      return await this.#put(source, options)
    } finally {
      this.#transfers--
    }
  }

  async #put(
    source: AsyncIterable<Uint8Array>,
    options: Parameters<FileService['put']>[1] & {},
  ): Promise<PutResult> {
    const { k, m, segmentSize } = this.#options
    const ac = new AbortController()
    const signal = options.signal === undefined ? ac.signal : AbortSignal.any([options.signal, ac.signal])
    // What holders are told: the pin's expiry, or a lease the pinner renews.
    const holderExpiry = options.expiresAt ?? this.#clock.now() + this.#options.leaseMs
    const hasher = new Blake3Stream()
    const packed: PackedSegment[] = []
    const inflight = new Set<Promise<void>>()
    // Segments and parity shards whose put has finished are reused for the next segments (fresh
    // memory costs a page fault per 4 KiB and counts toward V8's external-memory GC trigger).
    const shardBytes = Math.ceil(segmentSize / k)
    const buffers = new BufferPool({
      maxBytes: (this.#options.segmentsInFlight + 1) * (k + m) * shardBytes,
      minSize: 1,
    })
    let firstError: unknown
    let fileSize = 0
    let done = 0
    let index = 0
    try {
      for await (const seg of segment(
        source,
        segmentSize,
        k,
        signal,
        (n) => buffers.take(n),
        options.releaseChunks === true,
      )) {
        if (firstError !== undefined) break
        hasher.update(seg.data.subarray(0, seg.size))
        fileSize += seg.size
        const i = index++
        const p: Promise<void> = this.#putSegment(i, seg.data, seg.size, signal, holderExpiry, buffers).then(
          (s) => {
            packed[i] = s
            done++
            options.onProgress?.({ bytes: Math.min(done * segmentSize, fileSize), segments: done })
          },
          (err: unknown) => {
            firstError ??= err
            ac.abort(err)
          },
        )
        inflight.add(p)
        void p.finally(() => inflight.delete(p))
        while (inflight.size >= this.#options.segmentsInFlight) await Promise.race(inflight)
      }
    } catch (err) {
      firstError ??= err
      ac.abort(err)
    }
    await Promise.all(inflight)
    buffers.clear()
    if (firstError !== undefined) {
      this.#deps.metrics?.fileOps.inc({ op: 'put', result: errCode(firstError) })
      throw firstError
    }
    options.onProgress?.({ bytes: fileSize, segments: done })

    const segments = packed.map(unpackSegment)
    packed.length = 0
    const manifest: Manifest = {
      version: 1,
      name: options.name,
      fileSize,
      fileBlake3: hasher.digest(),
      k,
      m,
      segmentSize,
      segments,
      uploader: { peerId: this.#deps.selfPeerId, publicKey: this.#deps.publicKey },
      createdAt: this.#clock.now(),
      revision: 1,
    }
    const signed = await signManifest(manifest, (msg) => this.#deps.sign(msg))
    const manifestHolders = await this.#storeManifest(signed, signal, holderExpiry)
    // Holders kept every block provisionally: the commit names the manifest and makes them leases.
    const byHolder = new Map<string, CID[]>()
    for (const h of manifestHolders) byHolder.set(h, [signed.cid])
    for (const seg of segments) {
      for (const sh of seg.shards) {
        for (const h of sh.holders) {
          const list = byHolder.get(h) ?? []
          list.push(sh.cid)
          byHolder.set(h, list)
        }
      }
    }
    await this.#commit(signed.cid, byHolder, holderExpiry, signal)
    this.#deps.logger.info(
      {
        cid: cidToString(signed.cid),
        bytes: fileSize,
        segments: segments.length,
        manifestHolders: manifestHolders.length,
      },
      'file stored',
    )
    return { cid: signed.cid, manifest, manifestHolders }
  }

  async #putSegment(
    index: number,
    data: Uint8Array,
    size: number,
    signal: AbortSignal,
    expiresAt: number,
    buffers: BufferPool,
  ): Promise<PackedSegment> {
    const { k, m } = this.#options
    const shardSize = data.byteLength / k
    const shards: Uint8Array[] = []
    for (let i = 0; i < k; i++) shards.push(data.subarray(i * shardSize, (i + 1) * shardSize))
    // Encoding overwrites every parity byte, so reused memory needs no clearing.
    for (let i = 0; i < m; i++) shards.push(buffers.take(shardSize))
    const t0 = performance.now()
    codec(k, m).encode(shards)
    this.#deps.metrics?.erasureSeconds.observe({ op: 'encode' }, (performance.now() - t0) / 1000)
    const cids = shards.map((s) => cidFromDigest(blake3(s), RAW_CODEC))
    const candidates = this.#deps.peers.candidates().map((p) => p.toString())
    const pool = candidates.length > 0 ? candidates : [this.#deps.selfPeerId]
    if (candidates.length < k + m) {
      this.#deps.logger.warn(
        { candidates: candidates.length, need: k + m },
        'fewer peers than shards: some peers get several',
      )
    }
    const chosen =
      this.#deps.place !== undefined && candidates.length > 0
        ? this.#deps.place(pool, k + m, index, shardSize)
        : placeShards(pool, k + m, index)
    const used = new Set<string>()
    const terms = this.#terms(cids, shardSize, expiresAt, undefined)
    const holders = await Promise.all(
      shards.map((shard, j) =>
        this.#putShard(cids[j] as CID, shard, chosen[j] as string, pool, used, signal, terms),
      ),
    )
    // Every shard is stored and acknowledged: no transfer still reads these bytes. (After a failure
    // some transfers may still be running, so their memory is left to the garbage collector.)
    buffers.give(data)
    for (let i = k; i < k + m; i++) buffers.give(shards[i] as Uint8Array)
    return packSegment(size, shardSize, cids, holders)
  }

  /** Terms of the storage orders for blocks `cids`: signed per holder on first use (see {@link #orderFor}). */
  #terms(cids: CID[], maxBytes: number, expiresAt: number, manifest: CID | undefined): OrderTerms {
    return { cids, maxBytes, expiresAt, manifest, orders: new Map() }
  }

  /** The storage order for `holder` under `terms` (orders.ts), signed once per holder. */
  #orderFor(terms: OrderTerms, holder: string): Promise<Uint8Array> {
    let order = terms.orders.get(holder)
    if (order === undefined) {
      order = signOrder(
        {
          uploader: this.#deps.selfPeerId,
          holder,
          cids: terms.cids,
          maxBytes: terms.maxBytes,
          expiresAt: terms.expiresAt,
          issuedAt: this.#clock.now(),
          ...(terms.manifest === undefined ? {} : { manifest: terms.manifest }),
        },
        this.#deps.signEd25519,
      )
      terms.orders.set(holder, order)
    }
    return order
  }

  async #putShard(
    cid: CID,
    bytes: Uint8Array,
    first: string,
    pool: string[],
    used: Set<string>,
    signal: AbortSignal,
    terms: OrderTerms,
  ): Promise<string> {
    used.add(first)
    let peer = first
    for (let attempt = 0; ; attempt++) {
      signal.throwIfAborted()
      try {
        if (peer === this.#deps.selfPeerId) {
          await this.#deps.store.put(cid, bytes, { signal, expiresAt: terms.expiresAt })
        } else {
          const t0 = performance.now()
          try {
            const order = await this.#orderFor(terms, peer)
            // A shard placed by repair (its order names the manifest) goes in the holder's repair slots.
            const repair = terms.manifest !== undefined
            await this.#deps.client.put(this.#peerId(peer), cid, bytes, {
              signal,
              order,
              ...(repair ? { repair } : {}),
            })
          } catch (err) {
            if (!signal.aborted) {
              const ms = performance.now() - t0
              this.#deps.observer?.transfer(peer, 'put', { ok: false, ...errFields(err), bytes: 0, ms })
            }
            throw err
          }
          this.#deps.observer?.transfer(peer, 'put', {
            ok: true,
            bytes: bytes.byteLength,
            ms: performance.now() - t0,
          })
        }
        return peer
      } catch (err) {
        if (signal.aborted) throw err
        this.#deps.logger.warn(
          { peer, cid: cidToString(cid), code: errCode(err), attempt },
          'shard put failed',
        )
        if (attempt >= this.#options.putRetries) {
          throw new NodusError('NOT_ENOUGH_PEERS', `no peer accepted shard ${cidToString(cid)}`, {
            cause: err,
            details: { cid: cidToString(cid), attempts: attempt + 1 },
          })
        }
        const unused = pool.filter((p) => !used.has(p))
        const others = pool.filter((p) => p !== peer)
        const next = unused[0] ?? others[attempt % Math.max(1, others.length)] ?? peer
        used.add(next)
        peer = next
      }
    }
  }

  async #storeManifest(signed: SignedManifest, signal: AbortSignal, expiresAt: number): Promise<string[]> {
    await this.#deps.store.put(signed.cid, signed.bytes, { signal, expiresAt })
    this.#deps.onManifestStored?.(signed.cid)
    const holders = [this.#deps.selfPeerId]
    // The manifest goes to the peers responsible for it: the closest to its CID in XOR distance.
    const peers = this.#deps.peers.candidates()
    const byId = new Map(peers.map((p) => [p.toString(), p]))
    const targets = closestTo(signed.cid.bytes, [...byId.keys()])
      .slice(0, this.#options.manifestReplicas)
      .map((id) => byId.get(id) as PeerId)
    const terms = this.#terms([signed.cid], signed.bytes.byteLength, expiresAt, undefined)
    const results = await Promise.allSettled(
      targets.map(async (p) =>
        this.#deps.client.put(p, signed.cid, signed.bytes, {
          signal,
          order: await this.#orderFor(terms, p.toString()),
        }),
      ),
    )
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') holders.push((targets[i] as PeerId).toString())
      else
        this.#deps.logger.warn(
          { peer: targets[i]?.toString(), code: errCode(r.reason) },
          'manifest replica failed',
        )
    })
    if (peers.length === 0) return holders // no DHT to announce to
    try {
      using deadline = withDeadline(signal, this.#options.dhtTimeoutMs, 'manifest provide')
      await this.#deps.peers.provide(signed.cid, { signal: deadline.signal })
    } catch (err) {
      this.#deps.logger.warn(
        { cid: cidToString(signed.cid), code: errCode(err) },
        'manifest provide failed; replicas still hold it',
      )
    }
    return holders
  }

  /**
   * Send every holder (other than this node) a signed commit of `manifest` for its blocks, so it keeps
   * them until `expiresAt` instead of for the provisional lease; one retry per holder. A holder that
   * misses its commit still keeps the blocks for the provisional lease, and the next pin renewal (which
   * names the manifest) commits them. Never throws but for cancellation; failures are logged.
   */
  async #commit(
    manifest: CID,
    byHolder: Map<string, CID[]>,
    expiresAt: number,
    signal: AbortSignal,
  ): Promise<void> {
    byHolder.delete(this.#deps.selfPeerId)
    let failed = 0
    await Promise.all(
      [...byHolder.entries()].map(async ([holder, cids]) => {
        for (let i = 0; i < cids.length; i += MAX_RECORD_CIDS) {
          const batch = cids.slice(i, i + MAX_RECORD_CIDS)
          for (let attempt = 0; attempt < 2; attempt++) {
            try {
              const commit = await signCommit(
                {
                  uploader: this.#deps.selfPeerId,
                  holder,
                  manifest,
                  cids: batch,
                  expiresAt,
                  issuedAt: this.#clock.now(),
                },
                this.#deps.signEd25519,
              )
              await this.#deps.client.commit(this.#peerId(holder), commit, batch.length, { signal })
              break
            } catch (err) {
              if (signal.aborted) throw err
              if (attempt === 1) {
                failed++
                this.#deps.logger.warn(
                  { peer: holder, code: errCode(err) },
                  'commit failed; the holder keeps the blocks provisionally',
                )
              }
            }
          }
        }
      }),
    )
    if (failed > 0) this.#deps.metrics?.fileOps.inc({ op: 'commit', result: 'failed' })
  }

  /**
   * Pin a stored file until `expiresAt` (ms since the epoch; undefined: for one lease, `leaseMs`,
   * which the pinning node renews): every holder of its shards and every keeper of its manifest is
   * asked to keep them at least that long. A shard's expiry is the
   * latest of its pins, so this never shortens another pin. Resolves with the counts of shard copies
   * extended and of holders that could not be reached.
   */
  async pin(
    cid: CID,
    expiresAt: number | undefined,
    options: { signal?: AbortSignal; manifest?: SignedManifest; critical?: boolean; grant?: Uint8Array } = {},
  ): Promise<{ extended: number; missing: number; unreachable: number }> {
    const signal = options.signal ?? new AbortController().signal
    const signed = options.manifest ?? (await this.resolveManifest(cid, { signal }))
    // No TTL: a lease, renewed by the pinning node while the pin lasts.
    const until = expiresAt ?? this.#clock.now() + this.#options.leaseMs
    const byHolder = new Map<string, CID[]>()
    // The manifest's keepers may hold no shard: they get the manifest CID alone.
    const { holders: keepers } = await this.#fetchManifest(signed.cid, signal)
    for (const p of keepers) byHolder.set(p.toString(), [signed.cid])
    for (const seg of signed.manifest.segments) {
      for (const sh of seg.shards) {
        for (const h of sh.holders) {
          let list = byHolder.get(h)
          if (list === undefined) {
            list = [signed.cid]
            byHolder.set(h, list)
          }
          list.push(sh.cid)
        }
      }
    }
    let extended = 0
    let missing = 0
    let unreachable = 0
    const local = this.#deps.store.extendExpiry
    if (local !== undefined) {
      for (const c of [signed.cid, ...(byHolder.get(this.#deps.selfPeerId) ?? [])]) {
        if (await local.call(this.#deps.store, c, until)) extended++
      }
    }
    if (options.critical === true) await this.#deps.onCriticalPin?.(signed.cid, until)
    byHolder.delete(this.#deps.selfPeerId)
    await Promise.all(
      [...byHolder.entries()].map(async ([holder, cids]) => {
        for (let i = 0; i < cids.length; i += MAX_RECORD_CIDS) {
          const batch = cids.slice(i, i + MAX_RECORD_CIDS)
          try {
            // Signed: a holder extends only its pinner's own claims, a granting uploader's, or paid ones.
            const pin = await signPin(
              {
                pinner: this.#deps.selfPeerId,
                holder,
                cids: batch,
                expiresAt: until,
                issuedAt: this.#clock.now(),
                manifest: signed.cid,
                ...(options.critical === true && i === 0 ? { critical: true } : {}),
              },
              this.#deps.signEd25519,
              options.grant,
            )
            const ok = await this.#deps.client.pin(this.#peerId(holder), pin, batch.length, { signal })
            // The manifest CID leads each holder's list; most holders do not keep the manifest.
            ok.forEach((e, j) => {
              if (e) extended++
              else if (!(i === 0 && j === 0)) missing++
            })
          } catch (err) {
            if (signal.aborted) throw err
            unreachable++
            return
          }
        }
      }),
    )
    return { extended, missing, unreachable }
  }

  /**
   * Find, fetch and verify a signed manifest: from the local store, from connected peers, or from DHT
   * providers. Throws MANIFEST_NOT_FOUND, MANIFEST_INVALID, SIGNATURE_INVALID.
   */
  async resolveManifest(cid: CID, options: { signal?: AbortSignal } = {}): Promise<SignedManifest> {
    const signal = options.signal ?? new AbortController().signal
    const { signed, holders } = await this.#fetchManifest(cid, signal)
    const update = await this.#latestUpdate(signed, holders, signal)
    return update === undefined ? signed : { ...signed, manifest: applyHolderUpdate(signed.manifest, update) }
  }

  /**
   * The newest valid holder update for a manifest: kept locally (checked when it was kept), or from up
   * to 3 manifest holders. A remote one counts only if signed by the uploader or by a peer responsible
   * for the manifest as this node sees it (the 2 × manifestReplicas closest to its CID among this node
   * and its candidate peers), with a revision at most MAX_HOLDER_UPDATE_REVISION.
   */
  async #latestUpdate(
    signed: SignedManifest,
    holders: PeerId[],
    signal: AbortSignal,
  ): Promise<HolderUpdate | undefined> {
    const candidates: Uint8Array[] = []
    const local = this.#deps.updates?.latest(signed.cid)
    if (local !== undefined) candidates.push(local)
    const client = this.#deps.client
    if (local === undefined && client.latest !== undefined) {
      // The keepers closest to the manifest CID first: the closest one decides on extra parity from
      // the reads it counts (dynamic redundancy), so it should see them.
      const byId = new Map(holders.map((p) => [p.toString(), p]))
      const closest = closestTo(signed.cid.bytes, [...byId.keys()]).slice(0, 3)
      const answers = await Promise.allSettled(
        closest.map((p) => client.latest?.(byId.get(p) as PeerId, signed.cid, { signal })),
      )
      for (const a of answers) if (a.status === 'fulfilled' && a.value !== undefined) candidates.push(a.value)
    }
    let best: HolderUpdate | undefined
    const uploader = signed.manifest.uploader.peerId
    let responsible: Set<string> | undefined
    const authority = {
      has: (peer: string): boolean => {
        responsible ??= responsibleFor(
          signed.cid.bytes,
          [this.#deps.selfPeerId, ...this.#deps.peers.candidates().map((p) => p.toString())],
          this.#options.manifestReplicas,
        )
        return peer === uploader || responsible.has(peer)
      },
    }
    for (const bytes of candidates) {
      try {
        const u =
          bytes === local
            ? decodeHolderUpdate(bytes, signed).update
            : openHolderUpdate(bytes, signed, { authority }).update
        if (best === undefined || u.revision > best.revision) best = u
      } catch (err) {
        this.#deps.logger.debug({ code: errCode(err) }, 'ignored a bad holder update')
      }
    }
    return best
  }

  async #fetchManifest(
    cid: CID,
    signal: AbortSignal,
  ): Promise<{ signed: SignedManifest; holders: PeerId[] }> {
    // Peers that say they hold the manifest (asked also when it is local: they know of repairs).
    const peers = this.#deps.peers.candidates().slice(0, 32)
    const answers = await Promise.allSettled(peers.map((p) => this.#deps.client.has(p, [cid], { signal })))
    const holders = peers.filter((_, i) => {
      const a = answers[i]
      return a?.status === 'fulfilled' && a.value.have[0] === true
    })
    if (this.#deps.store.has(cid)) {
      const key = cid.toString()
      let signed = this.#verified.get(key)
      if (signed === undefined) {
        signed = decodeManifest(await this.#deps.store.get(cid, { signal }), cid)
        // Verified manifests are immutable: cache them (bounded) so hot files skip re-verification.
        if (this.#verified.size >= 256) this.#verified.delete(this.#verified.keys().next().value as string)
        this.#verified.set(key, signed)
      }
      return { signed, holders }
    }
    const tried = new Set<string>()
    const tryPeer = async (p: PeerId): Promise<SignedManifest | undefined> => {
      if (tried.has(p.toString())) return undefined
      tried.add(p.toString())
      try {
        const t0 = performance.now()
        const bytes = await this.#deps.client.get(p, cid, { signal }).catch((err: unknown) => {
          // Wrong bytes or a broken protocol: the peer's fault (a bad signature inside is the uploader's).
          const fields = errFields(err)
          if (fields.peerAction !== undefined && !signal.aborted) {
            const ms = performance.now() - t0
            this.#deps.observer?.transfer(p.toString(), 'get', { ok: false, ...fields, bytes: 0, ms })
          }
          throw err
        })
        const signed = decodeManifest(bytes, cid)
        // A cached copy, leased like any block: it goes away unless a pin renews it.
        await this.#deps.store
          .put(cid, bytes, { signal, expiresAt: this.#clock.now() + this.#options.leaseMs })
          .catch(() => {})
        return signed
      } catch (err) {
        if (signal.aborted) throw err
        this.#deps.logger.debug({ peer: p.toString(), code: errCode(err) }, 'manifest fetch failed')
        return undefined
      }
    }
    // 1. Connected peers that say they have it.
    for (const p of holders) {
      const got = await tryPeer(p)
      if (got !== undefined) return { signed: got, holders }
    }
    // 2. DHT providers.
    using dhtDeadline = withDeadline(signal, this.#options.dhtTimeoutMs, 'manifest provider look-up')
    const dhtSignal = dhtDeadline.signal
    try {
      for await (const p of this.#deps.peers.findProviders(cid, { signal: dhtSignal })) {
        if (p.toString() === this.#deps.selfPeerId) continue
        const got = await tryPeer(p)
        if (got !== undefined) return { signed: got, holders: [p, ...holders] }
      }
    } catch (err) {
      if (signal.aborted) throw err
    }
    throw new NodusError('MANIFEST_NOT_FOUND', `no peer could supply manifest ${cidToString(cid)}`, {
      details: { cid: cidToString(cid), tried: tried.size },
    })
  }

  /**
   * Stream the file with manifest `cid`, segment by segment in order, as views of the verified data
   * shards (not copied). Each part is the caller's alone: shards from this node's own store are
   * copies (ShardStore.get), the rest were received or rebuilt for this call, so the caller may free a
   * part's memory once done with it (`freeIfWhole`, as the HTTP API does). Every shard is checked against
   * its CID, each segment decodes from the first k shards to arrive, and for a whole-file read the
   * BLAKE3 of the file is checked at the end (throws CID_MISMATCH if it differs). `range` selects
   * bytes [offset, offset + length) and fetches only the segments that hold them. Throws
   * DECODE_FAILED when a segment has fewer than k reachable shards, INVALID_ARGUMENT for a range
   * outside the file.
   */
  async *get(
    cid: CID,
    options: {
      signal?: AbortSignal
      onProgress?: (p: FileProgress) => void
      manifest?: SignedManifest
      range?: { offset: number; length: number }
    } = {},
  ): AsyncGenerator<Uint8Array> {
    this.#transfers++
    try {
      yield* this.#get(cid, options)
    } finally {
      this.#transfers--
    }
  }

  async *#get(cid: CID, options: Parameters<FileService['get']>[1] & {}): AsyncGenerator<Uint8Array> {
    const ac = new AbortController()
    const signal = options.signal === undefined ? ac.signal : AbortSignal.any([options.signal, ac.signal])
    const signed = options.manifest ?? (await this.resolveManifest(cid, { signal }))
    const man = signed.manifest
    const range = options.range ?? { offset: 0, length: man.fileSize }
    if (range.offset < 0 || range.length < 0 || range.offset + range.length > man.fileSize) {
      throw new NodusError('INVALID_ARGUMENT', 'range outside the file', {
        details: { ...range, fileSize: man.fileSize },
      })
    }
    const whole = range.offset === 0 && range.length === man.fileSize
    const end = range.offset + range.length
    const first = Math.floor(range.offset / man.segmentSize)
    const last = range.length === 0 ? first - 1 : Math.floor((end - 1) / man.segmentSize)
    const hasher = whole ? new Blake3Stream() : undefined
    const ahead: Promise<Uint8Array[]>[] = []
    let next = first
    let bytes = 0
    const launch = (): void => {
      while (next <= last && ahead.length < this.#options.segmentsInFlight) {
        const p = this.#getSegment(man, man.segments[next] as ManifestSegment, next, signal)
        p.catch(() => {})
        ahead.push(p)
        next++
      }
    }
    try {
      launch()
      for (let i = first; i <= last; i++) {
        const parts = await (ahead.shift() as Promise<Uint8Array[]>)
        launch()
        let partStart = i * man.segmentSize
        for (const segPart of parts) {
          hasher?.update(segPart)
          let part = segPart
          if (!whole) {
            const from = Math.max(0, range.offset - partStart)
            const to = Math.min(segPart.byteLength, end - partStart)
            part = segPart.subarray(from, Math.max(from, to))
          }
          partStart += segPart.byteLength
          if (part.byteLength === 0) continue
          bytes += part.byteLength
          this.#deps.metrics?.fileBytes.inc({ direction: 'get' }, part.byteLength)
          yield part
        }
        options.onProgress?.({ bytes, segments: i - first + 1 })
      }
    } finally {
      ac.abort(new NodusError('ABORTED', 'get finished or abandoned'))
    }
    this.#deps.metrics?.fileOps.inc({ op: 'get', result: 'ok' })
    if (hasher !== undefined && !bytesEqual(hasher.digest(), man.fileBlake3)) {
      throw new NodusError('CID_MISMATCH', 'file hash does not match the manifest', {
        details: { cid: cidToString(cid) },
      })
    }
  }

  /**
   * Gather at least k verified shards of a segment (local first, then peers). With `signedOnly`, the
   * extra parity shards of a holder update (not signed by the uploader) are left out. Throws
   * DECODE_FAILED.
   */
  async #collectShards(
    man: Manifest,
    seg: ManifestSegment,
    index: number,
    outer: AbortSignal,
    signedOnly = false,
    repair = false,
  ): Promise<(Uint8Array | null)[]> {
    const k = man.k
    const n = signedOnly ? k + man.m : seg.shards.length
    if (signedOnly) seg = { ...seg, shards: seg.shards.slice(0, n) }
    const got: (Uint8Array | null)[] = new Array(n).fill(null)
    let have = 0
    const local = seg.shards.map((s) => this.#deps.store.has(s.cid))
    // Local shards first, no network.
    for (let j = 0; j < n && have < k; j++) {
      if (local[j] === true) {
        try {
          got[j] = await this.#deps.store.get((seg.shards[j] as { cid: CID }).cid, { signal: outer })
          have++
        } catch {
          // fall through to the network
        }
      }
    }
    if (have < k) await this.#fetchShards(seg, got, k - have, index, outer, repair)
    have = got.filter((s) => s !== null).length
    if (have < k) {
      throw new NodusError('DECODE_FAILED', `segment ${index}: ${have} of ${k} shards reachable`, {
        details: { segment: index, have, need: k },
      })
    }
    return got
  }

  /**
   * Fetch k shards of segment `index` and rebuild its shards (for repair): rows 0..k+parity−1, where
   * `parity` defaults to the parity shards the segment lists now (m plus any extra); a larger value
   * computes new parity rows (dynamic redundancy), a smaller one drops the last. The k+m shards the
   * uploader signed are checked against their CIDs; if that fails while extra parity was used, the
   * segment is rebuilt again from signed shards alone. Extra parity rows are returned as computed:
   * the caller compares their CIDs with the listed ones (a wrong one is replaced).
   *
   * @throws NodusError DECODE_FAILED when fewer than k shards are reachable or the signed shards do not
   *   match their CIDs; ERASURE_INVALID when k + parity > 256 or parity < m
   */
  async rebuildSegment(
    man: Manifest,
    index: number,
    options: { signal: AbortSignal; parity?: number },
  ): Promise<Uint8Array[]> {
    const seg = man.segments[index]
    if (seg === undefined) throw new NodusError('INVALID_ARGUMENT', `no segment ${index}`)
    const parity = options.parity ?? seg.shards.length - man.k
    if (parity < man.m || man.k + parity > 256) {
      throw new NodusError(
        'ERASURE_INVALID',
        `cannot rebuild ${parity} parity shards of RS(${man.k},${man.m})`,
      )
    }
    const attempt = async (signedOnly: boolean): Promise<Uint8Array[]> => {
      // Repair traffic: holders serve it from slots uploads cannot take.
      const got = await this.#collectShards(man, seg, index, options.signal, signedOnly, true)
      const usedExtra = got.some((s, j) => s !== null && j >= man.k + man.m)
      // Rows of our code do not depend on m (redundancy.ts), so RS(k, max) rebuilds any subset.
      const width = Math.max(got.length, man.k + parity)
      const input = [...got, ...new Array<null>(width - got.length).fill(null)]
      const t0 = performance.now()
      const all = codec(man.k, width - man.k).reconstruct(input)
      this.#deps.metrics?.erasureSeconds.observe({ op: 'decode' }, (performance.now() - t0) / 1000)
      for (let j = 0; j < man.k + man.m; j++) {
        const want = (seg.shards[j] as { cid: CID }).cid.multihash.digest
        if (!bytesEqual(blake3(all[j] as Uint8Array), want)) {
          if (usedExtra) return await attempt(true)
          throw new NodusError('DECODE_FAILED', `segment ${index} shard ${j} rebuilt with the wrong hash`)
        }
      }
      return all.slice(0, man.k + parity)
    }
    return await attempt(false)
  }

  /**
   * Store one shard on a connected peer not in `exclude` (trying up to `putRetries` of them).
   * Resolves with the new holder's PeerId. Throws NOT_ENOUGH_PEERS.
   */
  async placeShard(
    cid: CID,
    bytes: Uint8Array,
    exclude: ReadonlySet<string>,
    options: { signal: AbortSignal; expiresAt?: number; manifest?: CID },
  ): Promise<string> {
    const pool = this.#deps.peers
      .candidates()
      .map((p) => p.toString())
      .filter((p) => !exclude.has(p))
    if (pool.length === 0) throw new NodusError('NOT_ENOUGH_PEERS', 'no peer left to hold a repaired shard')
    const start = Number.parseInt(cidToString(cid).slice(-6), 32) % pool.length
    const first = pool[Number.isNaN(start) ? 0 : start] as string
    const expiresAt = options.expiresAt ?? this.#clock.now() + this.#options.leaseMs
    // The order names the manifest, so the new holder keeps the shard as a lease at once (no commit).
    const terms = this.#terms([cid], bytes.byteLength, expiresAt, options.manifest)
    return await this.#putShard(cid, bytes, first, pool, new Set(exclude), options.signal, terms)
  }

  async #getSegment(
    man: Manifest,
    seg: ManifestSegment,
    index: number,
    outer: AbortSignal,
  ): Promise<Uint8Array[]> {
    const k = man.k
    let dataShards: (Uint8Array | null)[] = []
    for (const signedOnly of [false, true]) {
      const got = await this.#collectShards(man, seg, index, outer, signedOnly)
      dataShards = got.slice(0, k)
      if (!dataShards.some((s) => s === null)) break
      const t0 = performance.now()
      const full = codec(k, got.length - k).reconstructData(got.slice())
      this.#deps.metrics?.erasureSeconds.observe({ op: 'decode' }, (performance.now() - t0) / 1000)
      dataShards = full.slice(0, k)
      // Rebuilt data shards must hash to the manifest's CIDs before a byte of them is streamed out.
      const bad = dataShards.findIndex((shard, j) => {
        if (got[j] !== null) return false
        const want = (seg.shards[j] as { cid: CID }).cid.multihash.digest
        return !bytesEqual(blake3(shard as Uint8Array), want)
      })
      if (bad < 0) break
      // Extra parity (from a holder update, not signed by the uploader) may be wrong: try without it.
      if (!signedOnly && got.some((s, j) => s !== null && j >= k + man.m)) {
        this.#deps.logger.warn(
          { segment: index },
          'extra parity shards did not decode; retrying without them',
        )
        continue
      }
      throw new NodusError(
        'DECODE_FAILED',
        `segment ${index}: rebuilt data shard ${bad} does not match its CID`,
        {
          details: { segment: index, shard: bad },
        },
      )
    }
    // The segment is its data shards in order, up to its size: handed out as views, not copied.
    const parts: Uint8Array[] = []
    let off = 0
    for (const s of dataShards) {
      if (off >= seg.size) break
      const part = (s as Uint8Array).subarray(0, Math.min(seg.shardSize, seg.size - off))
      parts.push(part)
      off += part.byteLength
    }
    return parts
  }

  /**
   * Fetch `need` more shards of a segment into `got`. Attempts go data shards first, each shard's
   * holders in order (holders that were unreachable in the last UNREACHABLE_MEMORY_MS last), then DHT
   * providers for shards still missing; a hedge timer adds one extra request whenever the segment is
   * slow. Resolves when `need` shards arrived or nothing is left.
   */
  async #fetchShards(
    seg: ManifestSegment,
    got: (Uint8Array | null)[],
    need: number,
    index: number,
    outer: AbortSignal,
    repair = false,
  ): Promise<void> {
    const ac = new AbortController()
    const signal = AbortSignal.any([outer, ac.signal])
    const attempts: { shard: number; peer: string }[] = []
    const maxHolders = Math.max(...seg.shards.map((s) => s.holders.length))
    for (let h = 0; h < maxHolders; h++) {
      seg.shards.forEach((s, j) => {
        const peer = s.holders[h]
        if (got[j] === null && peer !== undefined && peer !== this.#deps.selfPeerId)
          attempts.push({ shard: j, peer })
      })
    }
    if (this.#unreachable.size > 0) {
      // Holders unreachable in the last UNREACHABLE_MEMORY_MS go last, in their order (stable sort).
      const since = this.#clock.now() - UNREACHABLE_MEMORY_MS
      const late = (a: { peer: string }): number => ((this.#unreachable.get(a.peer) ?? 0) > since ? 1 : 0)
      attempts.sort((a, b) => late(a) - late(b))
    }
    const inFlightShards = new Set<number>()
    let arrived = 0
    let active = 0
    let extra = 0
    let dhtTried = false
    const deadPeers = new Set<string>()

    await new Promise<void>((resolve) => {
      let finished = false
      const finish = (): void => {
        if (finished) return
        finished = true
        clearInterval(hedge)
        ac.abort(new NodusError('ABORTED', 'segment complete'))
        resolve()
      }
      const hedge = setInterval(() => {
        extra++
        pump()
      }, this.#options.hedgeDelayMs)
      const pump = (): void => {
        if (finished) return
        if (arrived >= need || outer.aborted) {
          finish()
          return
        }
        while (active < need - arrived + extra) {
          const idx = attempts.findIndex(
            (a) => got[a.shard] === null && !inFlightShards.has(a.shard) && !deadPeers.has(a.peer),
          )
          if (idx < 0) break
          const a = attempts.splice(idx, 1)[0] as { shard: number; peer: string }
          start(a)
        }
        if (active === 0) {
          if (dhtTried) {
            finish()
            return
          }
          dhtTried = true
          active++ // the DHT look-up counts as a request in flight until it returns
          void this.#discoverHolders(seg, got, signal).then((found) => {
            active--
            attempts.push(...found)
            pump()
          })
        }
      }
      const start = (a: { shard: number; peer: string }): void => {
        active++
        inFlightShards.add(a.shard)
        const cid = (seg.shards[a.shard] as { cid: CID }).cid
        const t0 = performance.now()
        this.#deps.client.get(this.#peerId(a.peer), cid, { signal, ...(repair ? { repair } : {}) }).then(
          (bytes) => {
            this.#deps.observer?.transfer(a.peer, 'get', {
              ok: true,
              bytes: bytes.byteLength,
              ms: performance.now() - t0,
            })
            active--
            inFlightShards.delete(a.shard)
            this.#unreachable.delete(a.peer)
            if (got[a.shard] === null && bytes.byteLength === seg.shardSize) {
              got[a.shard] = bytes
              arrived++
            }
            pump()
          },
          (err: unknown) => {
            active--
            inFlightShards.delete(a.shard)
            if (!signal.aborted) {
              const code = errCode(err)
              this.#deps.observer?.transfer(a.peer, 'get', {
                ok: false,
                ...errFields(err),
                bytes: 0,
                ms: performance.now() - t0,
              })
              if (code === 'PEER_UNREACHABLE') {
                deadPeers.add(a.peer)
                this.#unreachable.delete(a.peer)
                this.#unreachable.set(a.peer, this.#clock.now())
                if (this.#unreachable.size > UNREACHABLE_MEMORY_PEERS)
                  this.#unreachable.delete(this.#unreachable.keys().next().value as string)
              }
              this.#deps.logger.debug(
                { segment: index, shard: a.shard, peer: a.peer, code },
                'shard get failed',
              )
            }
            pump()
          },
        )
      }
      pump()
    })
  }

  /** Ask the DHT who provides each missing shard. Bounded by dhtTimeoutMs. */
  async #discoverHolders(
    seg: ManifestSegment,
    got: (Uint8Array | null)[],
    signal: AbortSignal,
  ): Promise<{ shard: number; peer: string }[]> {
    const found: { shard: number; peer: string }[] = []
    using dhtDeadline = withDeadline(signal, this.#options.dhtTimeoutMs, 'shard provider look-up')
    const dhtSignal = dhtDeadline.signal
    await Promise.allSettled(
      seg.shards.map(async (s, j) => {
        if (got[j] !== null) return
        for await (const p of this.#deps.peers.findProviders(s.cid, { signal: dhtSignal })) {
          const id = p.toString()
          if (id !== this.#deps.selfPeerId && !s.holders.includes(id)) found.push({ shard: j, peer: id })
        }
      }),
    )
    return found
  }
}
