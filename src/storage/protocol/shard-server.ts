/**
 * `/nodus/shard/1.0.0`, holder side: `ShardServer` answers put, get, has, audit, pin, commit, dropped,
 * latest and update requests from peers, on libp2p streams and on the bulk channel, within fair-share
 * slots. Messages: shard-messages.ts; wire format and limits: docs/PROTOCOLS.md.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { withDeadline } from '../../common/abort.ts'
import { type Clock, systemClock } from '../../common/clock.ts'
import { isNodusError, NodusError } from '../../common/errors.ts'
import { FairSlots, subnetGroup } from '../../common/fair-slots.ts'
import { Semaphore } from '../../common/semaphore.ts'
import {
  type BulkHandler,
  lengthPrefixed,
  StreamReader,
  sendAll,
  sendWithBackpressure,
} from '../../net/index.ts'
import { cidToString } from '../codec/cid.ts'
import { type AuditChallenge, answerChallenge, encodeProof } from '../keeper/audit.ts'
import type { HolderPolicy } from './holder-policy.ts'
import {
  decodeRequest,
  encodeError,
  errorBody,
  MAX_HEADER_BYTES,
  MAX_UPDATE_BYTES,
  receiptBody,
} from './shard-messages.ts'

/**
 * `err` as the requesting peer's fault, if it is one: an error naming a peerAction, or the store's
 * CID_MISMATCH on a put (the peer's bytes do not hash to the CID it named: peerAction `ban`).
 */
function peerFault(err: unknown, op: string): NodusError | undefined {
  if (!isNodusError(err)) return undefined
  if (err.peerAction !== undefined) return err
  if (err.code === 'CID_MISMATCH' && op === 'put') {
    return new NodusError('CID_MISMATCH', err.message, {
      details: err.details,
      peerAction: 'ban',
      cause: err,
    })
  }
  return undefined
}

/** What the shard server needs from the shard store. */
export interface ShardServerStore {
  put(
    cid: CID,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    options?: { signal?: AbortSignal; expectedSize?: number; expiresAt?: number },
  ): Promise<{ size: number; created: boolean }>
  read(
    cid: CID,
    options?: { offset?: number; length?: number; signal?: AbortSignal },
  ): AsyncIterable<Uint8Array>
  stat(cid: CID): { size: number } | undefined
  has(cid: CID): boolean
  usage(): { freeBytes: number }
  /**
   * The whole shard from its file on disk (not a cache), checked against the CID's BLAKE3 digest; what
   * audits answer from. Throws SHARD_MISSING when absent, lost or corrupt (the store then drops the copy).
   */
  readForAudit(cid: CID, options?: { signal?: AbortSignal }): Promise<Uint8Array>
}

export interface ShardServerDeps {
  store: ShardServerStore
  /** This node's PeerId string, written into receipts. */
  peerId: string
  /** Ed25519-sign with the node key (64-byte signature). */
  sign(data: Uint8Array): Promise<Uint8Array>
  /** Holder updates of the manifests this node watches (repair); absent: ops answer PROTOCOL_ERROR. */
  updates?: {
    /** The kept update; `requester` (a PeerId) counts as one read of the file (popularity). */
    latest(manifest: CID, requester: string): Uint8Array | undefined
    /** Validate and keep a newer holder update; resolves whether it was kept. */
    offer(manifest: CID, update: Uint8Array): Promise<boolean>
  }
  /**
   * What this holder accepts from whom (storage orders, commits, pins, quotas): src/storage/protocol/holder-policy.ts.
   */
  policy: Pick<HolderPolicy, 'admitPut' | 'commit' | 'pin'>
  /**
   * `peer` says it no longer has its copies of `cids` (blocks of `manifest`): found missing or corrupt
   * on its disk. A keeper marks those copies lost at once (the sender speaks only for itself).
   */
  onDropped?(peer: string, manifest: CID, cids: CID[]): void
  /** Called after a new shard is durably stored (used to announce a provider record). */
  onStored?(cid: CID, size: number): void
  /**
   * Peer faults and bans (trust/peer-actions.ts): a banned peer's requests are refused with
   * PEER_BANNED; an error a request caused that names a peerAction is reported to `onPeerError`.
   */
  peers?: { isBanned(peer: string): boolean; onPeerError(peer: string, err: NodusError): void }
  logger: { debug(obj: object, msg?: string): void; warn(obj: object, msg?: string): void }
  /** Source of receipts' `storedAt` and of the last-activity time; defaults to the system clock. */
  clock?: Clock
  metrics?: {
    shardRequests: { inc(labels: { op: string; result: string }): void }
    shardWriteSeconds: { observe(v: number): void }
    shardReadSeconds: { observe(v: number): void }
  }
}

export interface ShardServerOptions {
  /** Largest shard accepted, bytes. Default 16 MiB. */
  maxShardBytes: number
  /** Data requests (put, get) served at once across all peers; beyond it the reply is PEER_BUSY. Default 64. */
  maxConcurrentRequests: number
  /** Data requests one peer may have served at once. Default 8. */
  maxRequestsPerPeer: number
  /** Data requests one subnet (IPv4 /24, IPv6 /64) may have served at once. Default 16. */
  maxRequestsPerSubnet: number
  /**
   * Control requests (has, audit, latest, update, commit, pin) served at once, in slots of their own
   * that data requests cannot take (audits and repair stay served under upload load). Default 32;
   * per peer a quarter of it.
   */
  controlSlots: number
  /**
   * Puts and gets flagged `repair` (keepers rebuilding a segment) served at once, in slots of their
   * own that uploads and reads cannot take. Default 16; per peer 8.
   */
  repairSlots: number
  /** Address prefixes exempt from the subnet limit (loopback and test networks). Default `127.`, `::1`. */
  subnetExempt: readonly string[]
  /**
   * A put body must arrive at this rate or faster, bytes per second, measured over `stallWindowMs`;
   * a slower transfer is cut off (TIMEOUT) well before `requestTimeoutMs`. Default 64 KiB/s.
   */
  minTransferBytesPerSec: number
  /** Window of the transfer-rate check, ms. Default 5,000. */
  stallWindowMs: number
  /** Inbound streams per connection (per peer). Default 16. */
  maxInboundStreamsPerConnection: number
  /** Time allowed for one request, ms. Default 60 000. */
  requestTimeoutMs: number
}

export const DEFAULT_SHARD_SERVER_OPTIONS: Readonly<ShardServerOptions> = Object.freeze({
  maxShardBytes: 16 * 1024 * 1024,
  maxConcurrentRequests: 64,
  maxRequestsPerPeer: 8,
  maxRequestsPerSubnet: 16,
  controlSlots: 32,
  repairSlots: 16,
  subnetExempt: Object.freeze(['127.', '::1', '::ffff:127.']),
  minTransferBytesPerSec: 64 * 1024,
  stallWindowMs: 5_000,
  maxInboundStreamsPerConnection: 16,
  requestTimeoutMs: 60_000,
})

/** Serves `/nodus/shard/1.0.0`. Register with `libp2p.handle(SHARD_PROTOCOL, server.handler, server.handleOptions)`. */
export class ShardServer {
  readonly #deps: ShardServerDeps
  readonly #options: ShardServerOptions
  /** Slots for put and get, shared fairly between peers and subnets. */
  readonly #slots: FairSlots
  /** Slots for control requests (has, audit, latest, update, commit, pin), which data requests cannot take. */
  readonly #control: FairSlots
  /** Slots for repair puts and gets, which uploads and reads cannot take. */
  readonly #repair: FairSlots
  readonly #clock: Clock
  #served = 0
  #lastActivityMs = 0

  constructor(deps: ShardServerDeps, options: ShardServerOptions) {
    this.#deps = deps
    this.#options = options
    this.#clock = deps.clock ?? systemClock
    this.#slots = new FairSlots({
      global: options.maxConcurrentRequests,
      perPeer: Math.min(options.maxRequestsPerPeer, options.maxConcurrentRequests),
      perGroup: Math.min(options.maxRequestsPerSubnet, options.maxConcurrentRequests),
    })
    this.#repair = new FairSlots({
      global: options.repairSlots,
      perPeer: Math.max(1, Math.floor(options.repairSlots / 2)),
      perGroup: options.repairSlots,
    })
    this.#control = new FairSlots({
      global: options.controlSlots,
      perPeer: Math.max(1, Math.floor(options.controlSlots / 4)),
      perGroup: Math.max(1, Math.floor(options.controlSlots / 2)),
    })
  }

  /** Audits answered at once: each is a full pass over a shard. */
  readonly #auditSlots = new Semaphore(2)

  get handleOptions(): { maxInboundStreams: number; maxOutboundStreams: number } {
    return { maxInboundStreams: this.#options.maxInboundStreamsPerConnection, maxOutboundStreams: 64 }
  }

  /** Requests in progress. */
  get inFlight(): number {
    return this.#slots.inUse + this.#control.inUse + this.#repair.inUse
  }

  /** When a request last started or ended, ms since the epoch (0: never). */
  get lastActivityMs(): number {
    return this.#lastActivityMs
  }

  /** Requests completed since start. */
  get served(): number {
    return this.#served
  }

  readonly handler = (stream: Stream, connection: Connection): void => {
    const [first] = connection.remoteAddr.getComponents()
    const ip = first?.name === 'ip4' || first?.name === 'ip6' ? first.value : undefined
    void this.#serve(stream, connection.remotePeer, ip)
  }

  /**
   * Take a slot for `op` from `remote` (at `ip`, when known): put and get share the data slots,
   * everything else the control slots. Throws PEER_BUSY (peerAction ignore) naming the limit.
   */
  #acquire(op: string, repair: boolean, remote: PeerId, ip: string | undefined): () => void {
    const data = op === 'put' || op === 'get'
    const pool = data ? (repair ? this.#repair : this.#slots) : this.#control
    const got = pool.tryAcquire(remote.toString(), subnetGroup(ip, this.#options.subnetExempt))
    if ('release' in got) return got.release
    throw new NodusError('PEER_BUSY', `too many shard requests in progress (${got.refused} limit)`, {
      peerAction: 'ignore',
      details: { limit: got.refused, op },
    })
  }

  /**
   * The bookkeeping both transports share around one request: a fair-share slot (PEER_BUSY beyond
   * the global, per-peer or per-subnet limit), the activity clock, and the duration and result
   * metrics. `serve` decodes and answers, calling `begin(op)` once it knows the op (which takes the
   * slot, or throws PEER_BUSY); on error `fail` answers with it (and may rethrow).
   */
  async #handle(
    remote: PeerId,
    ip: string | undefined,
    serve: (begin: (op: string, repair?: boolean) => void) => Promise<void>,
    fail: (err: unknown) => Promise<void>,
  ): Promise<void> {
    let release: (() => void) | undefined
    this.#lastActivityMs = this.#clock.now()
    let op = 'unknown'
    let t0 = performance.now()
    try {
      if (this.#deps.peers?.isBanned(remote.toString()) === true) {
        throw new NodusError('PEER_BANNED', 'this node has banned the requesting peer', {
          details: { peer: remote.toString() },
        })
      }
      await serve((o, repair = false) => {
        op = o
        release = this.#acquire(o, repair, remote, ip)
        t0 = performance.now()
      })
      const seconds = (performance.now() - t0) / 1000
      if (op === 'put') this.#deps.metrics?.shardWriteSeconds.observe(seconds)
      else if (op === 'get') this.#deps.metrics?.shardReadSeconds.observe(seconds)
      this.#served++
      this.#deps.metrics?.shardRequests.inc({ op, result: 'ok' })
    } catch (err) {
      this.#deps.metrics?.shardRequests.inc({ op, result: isNodusError(err) ? err.code : 'ERROR' })
      this.#deps.logger.debug({ err, peer: remote.toString() }, 'shard request failed')
      // Answer first, then act on the peer (a ban hangs up on it): the peer hears why it was refused.
      const fault = peerFault(err, op)
      try {
        await fail(err)
      } finally {
        if (fault !== undefined) this.#deps.peers?.onPeerError(remote.toString(), fault)
      }
    } finally {
      release?.()
      this.#lastActivityMs = this.#clock.now()
    }
  }

  async #serve(stream: Stream, remote: PeerId, ip: string | undefined): Promise<void> {
    using deadline = withDeadline(undefined, this.#options.requestTimeoutMs, 'shard request')
    const signal = deadline.signal
    const reader = new StreamReader(stream, { signal })
    await this.#handle(
      remote,
      ip,
      async (begin) => {
        const req = decodeRequest(await reader.readFrame(MAX_HEADER_BYTES))
        begin(req.op, 'repair' in req && req.repair)
        if (req.op === 'put') await this.#put(stream, reader, req, remote, signal)
        else if (req.op === 'get') await this.#get(stream, req, signal)
        else if (req.op === 'pin') await this.#pin(stream, req, remote)
        else if (req.op === 'commit') await this.#commit(stream, req, remote)
        else if (req.op === 'dropped') {
          this.#deps.onDropped?.(remote.toString(), req.cid, req.cids)
          stream.send(lengthPrefixed(dagCbor.encode({ ok: true })))
        } else if (req.op === 'latest') await this.#latest(stream, req, remote, signal)
        else if (req.op === 'audit') await this.#audit(stream, req, signal)
        else if (req.op === 'update') await this.#update(stream, reader, req, signal)
        else await this.#has(stream, req)
        await stream.close({ signal })
      },
      async (err) => {
        try {
          if (stream.writeStatus === 'writable') {
            stream.send(encodeError(err))
            using closing = withDeadline(undefined, 5_000, 'shard error reply')
            await stream.close({ signal: closing.signal })
          }
        } catch {
          stream.abort(err instanceof Error ? err : new Error('shard request failed'))
        }
      },
    )
  }

  async #put(
    stream: Stream,
    reader: StreamReader,
    req: { cid: CID; size: number; order: Uint8Array | undefined },
    remote: PeerId,
    signal: AbortSignal,
  ): Promise<void> {
    this.#checkPutSize(req.size)
    let consumed = 0
    const counted = async function* (): AsyncGenerator<Uint8Array> {
      for await (const chunk of reader.readChunks(req.size)) {
        consumed += chunk.byteLength
        yield chunk
      }
    }
    // A body that arrives slower than minTransferBytesPerSec is cut off: aborting the stream ends the read.
    const windowBytes = Math.ceil((this.#options.minTransferBytesPerSec * this.#options.stallWindowMs) / 1000)
    let seen = 0
    const watchdog = setInterval(() => {
      if (consumed >= req.size) return
      if (consumed - seen < windowBytes) {
        this.#deps.metrics?.shardRequests.inc({ op: 'put', result: 'STALLED' })
        stream.abort(
          new NodusError('TIMEOUT', `put body slower than ${this.#options.minTransferBytesPerSec} B/s`, {
            peerAction: 'ignore',
          }),
        )
      }
      seen = consumed
    }, this.#options.stallWindowMs)
    watchdog.unref()
    try {
      const stored = await this.#store(req, remote, counted(), signal)
      // A block already stored is not read again by the store: drain what the peer sent.
      for await (const chunk of reader.readChunks(req.size - consumed)) consumed += chunk.byteLength
      await sendWithBackpressure(stream, lengthPrefixed(stored.response), signal)
      stored.announce()
    } finally {
      clearInterval(watchdog)
    }
  }

  #checkPutSize(size: number): void {
    if (size > this.#options.maxShardBytes) {
      throw new NodusError(
        'SHARD_TOO_LARGE',
        `shard of ${size} bytes exceeds ${this.#options.maxShardBytes}`,
        {
          details: { size, max: this.#options.maxShardBytes },
          peerAction: 'reject',
        },
      )
    }
  }

  /**
   * Checks the put's storage order and the uploader's quota (before reading a byte), stores the shard,
   * records the uploader's claim and signs the receipt; `announce()` after the response is sent.
   */
  async #store(
    req: { cid: CID; size: number; order: Uint8Array | undefined },
    remote: PeerId,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    signal: AbortSignal,
  ): Promise<{ response: Uint8Array; announce(): void }> {
    const admission = this.#deps.policy.admitPut(remote.toString(), req.cid, req.size, req.order)
    let size: number
    let created: boolean
    try {
      ;({ size, created } = await this.#deps.store.put(req.cid, data, {
        signal,
        expectedSize: req.size,
        expiresAt: admission.storeExpiresAt,
      }))
      await admission.stored(size, created)
    } finally {
      admission.release()
    }
    const body = { cid: req.cid, size, holder: this.#deps.peerId, storedAt: this.#clock.now() }
    const sig = await this.#deps.sign(receiptBody(body))
    const response = dagCbor.encode({
      ok: true,
      receipt: { cid: req.cid.bytes, size, holder: body.holder, storedAt: body.storedAt, sig },
    })
    return {
      response,
      announce: () => {
        if (created) this.#deps.onStored?.(req.cid, size)
      },
    }
  }

  async #get(
    stream: Stream,
    req: { cid: CID; offset: number; length: number | undefined },
    signal: AbortSignal,
  ): Promise<void> {
    const { offset, length } = this.#range(req)
    await sendWithBackpressure(stream, lengthPrefixed(dagCbor.encode({ ok: true, size: length })), signal)
    for await (const chunk of this.#deps.store.read(req.cid, { offset, length, signal })) {
      await sendWithBackpressure(stream, chunk, signal)
    }
  }

  /** The byte range a get asks for, clamped to the shard; throws SHARD_MISSING. */
  #range(req: { cid: CID; offset: number; length: number | undefined }): { offset: number; length: number } {
    const st = this.#deps.store.stat(req.cid)
    if (st === undefined) {
      throw new NodusError('SHARD_MISSING', `no shard ${cidToString(req.cid)}`, {
        details: { cid: cidToString(req.cid) },
      })
    }
    const offset = Math.min(req.offset, st.size)
    return { offset, length: Math.min(req.length ?? st.size - offset, st.size - offset) }
  }

  /**
   * Serves `get` and `put` requests arriving on the bulk channel (src/net/bulk.ts): the same request
   * header as on a `/nodus/shard/1.0.0` stream, the put's shard as the request body, the got shard as
   * the response body. Same slots (PEER_BUSY), timeout and metrics as the libp2p path; other ops are
   * answered with PROTOCOL_ERROR.
   */
  readonly bulkHandler: BulkHandler = async (request, reply, socketSignal) => {
    using deadline = withDeadline(socketSignal, this.#options.requestTimeoutMs, 'shard request')
    const signal = deadline.signal
    let replied = false
    const send = (header: Uint8Array, size?: number, body?: AsyncIterable<Uint8Array>): Promise<void> => {
      replied = true
      return reply.send(header, size, body)
    }
    await this.#handle(
      request.peer,
      request.remoteHost,
      async (begin) => {
        const req = decodeRequest(request.header)
        begin(req.op, 'repair' in req && req.repair)
        if (req.op === 'get') {
          const { offset, length } = this.#range(req)
          await send(
            dagCbor.encode({ ok: true, size: length }),
            length,
            this.#deps.store.read(req.cid, { offset, length, signal }),
          )
        } else if (req.op === 'put') {
          this.#checkPutSize(req.size)
          const body = request.body
          if (body.byteLength !== req.size) {
            throw new NodusError('PROTOCOL_ERROR', `put of ${req.size} bytes carried ${body.byteLength}`, {
              peerAction: 'reject',
            })
          }
          // The whole body as one buffer: the store can write it with direct I/O (common/direct-io.ts).
          const stored = await this.#store(req, request.peer, body, signal)
          await send(stored.response)
          stored.announce()
        } else {
          throw new NodusError('PROTOCOL_ERROR', `op ${req.op} is not served on the bulk channel`, {
            peerAction: 'reject',
          })
        }
      },
      async (err) => {
        // After part of a body went out the socket's framing is lost: rethrow, and the channel closes it.
        if (replied) throw err
        await send(errorBody(err))
      },
    )
  }

  async #audit(stream: Stream, req: { challenge: AuditChallenge }, signal: AbortSignal): Promise<void> {
    const release = this.#auditSlots.tryAcquire()
    if (release === undefined) throw new NodusError('PEER_BUSY', 'too many audits in progress')
    try {
      const c = req.challenge
      // From the file on disk, never the cache, checked against the CID: a copy lost or corrupt on disk
      // fails here (SHARD_MISSING) and the store drops it, whatever a cached copy holds.
      const shard = await this.#deps.store.readForAudit(c.cid, { signal })
      const proof = encodeProof(answerChallenge(shard, c))
      await sendWithBackpressure(
        stream,
        lengthPrefixed(dagCbor.encode({ ok: true, size: proof.byteLength })),
        signal,
      )
      await sendAll(stream, proof, signal)
    } finally {
      release()
    }
  }

  async #latest(stream: Stream, req: { cid: CID }, remote: PeerId, signal: AbortSignal): Promise<void> {
    const u = this.#deps.updates?.latest(req.cid, remote.toString())
    await sendWithBackpressure(
      stream,
      lengthPrefixed(dagCbor.encode({ ok: true, size: u?.byteLength ?? 0 })),
      signal,
    )
    if (u !== undefined) await sendAll(stream, u, signal)
  }

  async #update(
    stream: Stream,
    reader: StreamReader,
    req: { cid: CID; size: number },
    signal: AbortSignal,
  ): Promise<void> {
    if (req.size > MAX_UPDATE_BYTES) {
      throw new NodusError('MESSAGE_TOO_LARGE', `holder update of ${req.size} bytes`, {
        peerAction: 'reject',
      })
    }
    const bytes = await reader.readExactly(req.size)
    const updates = this.#deps.updates
    if (updates === undefined) throw new NodusError('PROTOCOL_ERROR', 'this node keeps no holder updates')
    const accepted = await updates.offer(req.cid, bytes)
    await sendWithBackpressure(stream, lengthPrefixed(dagCbor.encode({ ok: true, accepted })), signal)
  }

  /** A signed pin (holder-policy.ts decides what it may extend); answers `extended` per CID. */
  async #pin(stream: Stream, req: { pin: Uint8Array }, remote: PeerId): Promise<void> {
    const extended = await this.#deps.policy.pin(remote.toString(), req.pin)
    stream.send(lengthPrefixed(dagCbor.encode({ ok: true, extended })))
  }

  /** A signed commit of an upload; answers `committed` per CID. */
  async #commit(stream: Stream, req: { commit: Uint8Array }, remote: PeerId): Promise<void> {
    const committed = await this.#deps.policy.commit(remote.toString(), req.commit)
    stream.send(lengthPrefixed(dagCbor.encode({ ok: true, committed })))
  }

  async #has(stream: Stream, req: { cids: CID[] }): Promise<void> {
    const have = req.cids.map((c) => this.#deps.store.has(c))
    stream.send(
      lengthPrefixed(dagCbor.encode({ ok: true, have, freeBytes: this.#deps.store.usage().freeBytes })),
    )
  }
}
