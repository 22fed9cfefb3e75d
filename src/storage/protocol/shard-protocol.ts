/**
 * `/nodus/shard/1.0.0`: put, get and has of content-addressed shards (and manifests) between peers.
 * Wire format and limits: docs/PROTOCOLS.md.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import { withDeadline } from '../../common/abort.ts'
import { bytesEqual } from '../../common/bytes.ts'
import { type Clock, systemClock } from '../../common/clock.ts'
import { type ErrorCode, isNodusError, NodusError } from '../../common/errors.ts'
import { FairSlots, subnetGroup } from '../../common/fair-slots.ts'
import { Semaphore } from '../../common/semaphore.ts'
import { blake3, verifyEd25519 } from '../../crypto/index.ts'
import {
  type BulkChannel,
  type BulkHandler,
  lengthPrefixed,
  parseReply,
  type RequestOptions,
  requestResponse,
  StreamReader,
  sendAll,
  sendWithBackpressure,
} from '../../net/index.ts'
import { cidToString, parseCid } from '../codec/cid.ts'
import {
  type AuditChallenge,
  type AuditProof,
  answerChallenge,
  decodeChallenge,
  decodeProof,
  encodeChallenge,
  encodeProof,
  MAX_AUDIT_PROOF_BYTES,
} from '../keeper/audit.ts'
import type { HolderPolicy } from './holder-policy.ts'

export const SHARD_PROTOCOL = '/nodus/shard/1.0.0'
/** Largest request or response header frame, bytes. */
export const MAX_HEADER_BYTES = 64 * 1024
/** Largest holder update accepted, bytes. */
export const MAX_UPDATE_BYTES = 16 * 1024 * 1024
/** Most CIDs in one `has` request. */
export const MAX_HAS_CIDS = 1024
const RECEIPT_DOMAIN = 'nodus/receipt/v1'

/** A holder's signed statement that it stored `cid` (`size` bytes) durably at `storedAt` (ms since epoch). */
export interface Receipt {
  cid: CID
  size: number
  holder: string
  storedAt: number
  /** Ed25519 signature (64 bytes) by the holder over the dag-cbor receipt body with domain `nodus/receipt/v1`. */
  sig: Uint8Array
}

type Request =
  | { op: 'put'; cid: CID; size: number; order: Uint8Array | undefined; repair: boolean }
  | { op: 'get'; cid: CID; offset: number; length: number | undefined; repair: boolean }
  | { op: 'has'; cids: CID[] }
  | { op: 'pin'; pin: Uint8Array }
  | { op: 'commit'; commit: Uint8Array }
  | { op: 'dropped'; cid: CID; cids: CID[] }
  | { op: 'latest'; cid: CID }
  | { op: 'audit'; challenge: AuditChallenge }
  | { op: 'update'; cid: CID; size: number }

function receiptBody(r: Omit<Receipt, 'sig'>): Uint8Array {
  return dagCbor.encode({
    domain: RECEIPT_DOMAIN,
    cid: r.cid.bytes,
    size: r.size,
    holder: r.holder,
    storedAt: r.storedAt,
  })
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function badRequest(msg: string): NodusError {
  return new NodusError('PROTOCOL_ERROR', msg, { peerAction: 'reject' })
}

function asCid(v: unknown): CID {
  if (!(v instanceof Uint8Array)) throw badRequest('cid must be bytes')
  try {
    return parseCid(v)
  } catch (err) {
    throw new NodusError('CID_INVALID', 'cid is not a BLAKE3-256 CIDv1', { cause: err, peerAction: 'reject' })
  }
}

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

function asBytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw badRequest(`${what} must be bytes`)
  return v
}

function asSize(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw badRequest(`${what} must be a non-negative integer`)
  return v
}

/** Decode and validate a request header. Throws PROTOCOL_ERROR / CID_INVALID on hostile input. */
export function decodeRequest(bytes: Uint8Array): Request {
  let msg: unknown
  try {
    msg = dagCbor.decode(bytes)
  } catch (err) {
    throw new NodusError('PROTOCOL_ERROR', 'request is not dag-cbor', { cause: err, peerAction: 'reject' })
  }
  if (!isRecord(msg) || msg.v !== 1) throw badRequest('unsupported request version')
  switch (msg.op) {
    case 'put':
      return {
        op: 'put',
        cid: asCid(msg.cid),
        size: asSize(msg.size, 'size'),
        order: msg.order === undefined ? undefined : asBytes(msg.order, 'order'),
        repair: msg.repair === true,
      }
    case 'get':
      return {
        op: 'get',
        cid: asCid(msg.cid),
        offset: msg.offset === undefined ? 0 : asSize(msg.offset, 'offset'),
        length: msg.length === undefined ? undefined : asSize(msg.length, 'length'),
        repair: msg.repair === true,
      }
    case 'has': {
      if (!Array.isArray(msg.cids) || msg.cids.length > MAX_HAS_CIDS)
        throw badRequest('cids must be a short array')
      return { op: 'has', cids: msg.cids.map(asCid) }
    }
    case 'latest':
      return { op: 'latest', cid: asCid(msg.cid) }
    case 'audit':
      if (!(msg.challenge instanceof Uint8Array)) throw badRequest('challenge must be bytes')
      return { op: 'audit', challenge: decodeChallenge(msg.challenge) }
    case 'update':
      return { op: 'update', cid: asCid(msg.cid), size: asSize(msg.size, 'size') }
    case 'pin':
      return { op: 'pin', pin: asBytes(msg.pin, 'pin') }
    case 'commit':
      return { op: 'commit', commit: asBytes(msg.commit, 'commit') }
    case 'dropped': {
      if (!Array.isArray(msg.cids) || msg.cids.length > MAX_HAS_CIDS)
        throw badRequest('cids must be a short array')
      return { op: 'dropped', cid: asCid(msg.cid), cids: msg.cids.map(asCid) }
    }
    default:
      throw badRequest('unknown op')
  }
}

function errorBody(err: unknown): Uint8Array {
  const code = isNodusError(err) ? err.code : 'PROTOCOL_ERROR'
  const message = err instanceof Error ? err.message : 'error'
  return dagCbor.encode({ ok: false, code, message })
}

function encodeError(err: unknown): Uint8Array {
  return lengthPrefixed(errorBody(err))
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
      const fault = peerFault(err, op)
      if (fault !== undefined) this.#deps.peers?.onPeerError(remote.toString(), fault)
      await fail(err)
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
          // The whole body as one buffer: the store can write it with direct I/O (storage/store/direct-io.ts).
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

/** What the shard client needs from libp2p. */
export interface ShardClientDeps {
  dialProtocol(peer: PeerId, protocol: string, options?: { signal?: AbortSignal }): Promise<Stream>
  /**
   * The bulk channel (src/net/bulk.ts): when present, gets and puts go over a direct TLS socket to
   * the peer, falling back to a libp2p stream when the peer has none or the socket fails.
   */
  bulk?: Pick<BulkChannel, 'request' | 'available'>
}

export interface ShardClientOptions {
  /** Time allowed for one request, ms. Default 60 000. */
  requestTimeoutMs: number
  /** Largest shard accepted from a peer, bytes. Default 16 MiB. */
  maxShardBytes: number
}

/** Error codes a shard server's `{ ok: false, code }` keeps on the client; any other is PROTOCOL_ERROR. */
const REMOTE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'PEER_BANNED',
  'ORDER_INVALID',
  'QUOTA_EXCEEDED',
  'TIMEOUT',
  'PEER_BUSY',
  'SHARD_MISSING',
  'STORE_FULL',
  'SHARD_TOO_LARGE',
  'CID_MISMATCH',
])

function parseResponse(bytes: Uint8Array, peer: PeerId): Record<string, unknown> {
  return parseReply(bytes, peer, REMOTE_CODES)
}

/** Verify a receipt's signature against the holder's Ed25519 PeerId. */
export async function verifyReceipt(r: Receipt): Promise<boolean> {
  try {
    const pid = peerIdFromString(r.holder)
    if (pid.publicKey?.type !== 'Ed25519') return false
    return verifyEd25519(pid.publicKey.raw, receiptBody(r), r.sig)
  } catch {
    return false
  }
}

/** The verified receipt in a put's response; throws PROTOCOL_ERROR or SIGNATURE_INVALID. */
async function checkReceipt(
  resp: Record<string, unknown>,
  peer: PeerId,
  cid: CID,
  size: number,
): Promise<Receipt> {
  const r = resp.receipt
  if (
    !isRecord(r) ||
    !(r.sig instanceof Uint8Array) ||
    typeof r.holder !== 'string' ||
    typeof r.storedAt !== 'number'
  ) {
    throw new NodusError('PROTOCOL_ERROR', 'malformed receipt', { peerAction: 'reject' })
  }
  const receipt: Receipt = {
    cid,
    size: asSize(r.size, 'size'),
    holder: r.holder,
    storedAt: r.storedAt,
    sig: r.sig,
  }
  if (
    receipt.holder !== peer.toString() ||
    receipt.size !== size ||
    !asCid(r.cid).equals(cid) ||
    !(await verifyReceipt(receipt))
  ) {
    throw new NodusError('SIGNATURE_INVALID', `bad receipt from ${peer.toString()}`, {
      peerAction: 'ban',
    })
  }
  return receipt
}

/** Bytes that must hash to `cid`; throws CID_MISMATCH (peerAction ban) otherwise. */
function checkBytes(bytes: Uint8Array, cid: CID, peer: PeerId): void {
  if (!bytesEqual(blake3(bytes), cid.multihash.digest)) {
    throw new NodusError(
      'CID_MISMATCH',
      `peer ${peer.toString()} sent bytes that do not hash to ${cidToString(cid)}`,
      {
        details: { peer: peer.toString(), cid: cidToString(cid) },
        peerAction: 'ban',
      },
    )
  }
}

/** Errors of the bulk transport itself, after which the same request goes over libp2p. */
function bulkTransportFailed(err: unknown): boolean {
  return isNodusError(err, 'BULK_UNAVAILABLE') || isNodusError(err, 'STREAM_CLOSED')
}

const NO_BODY = new Uint8Array(0)

/**
 * Client side of `/nodus/shard/1.0.0`. Every call opens one stream (src/net/request.ts) and applies
 * the request timeout; puts and gets try the bulk channel first when the peer has one.
 */
export class ShardClient {
  readonly #deps: ShardClientDeps
  readonly #options: ShardClientOptions

  constructor(deps: ShardClientDeps, options: ShardClientOptions) {
    this.#deps = deps
    this.#options = options
  }

  /**
   * One request over a new libp2p stream (`requestResponse`, src/net/request.ts): `frame` is the
   * encoded request header; the reply header is at most MAX_HEADER_BYTES and a remote error keeps its
   * code when it is one of REMOTE_CODES.
   */
  #request<T>(
    peer: PeerId,
    frame: Uint8Array,
    what: string,
    options: Pick<RequestOptions, 'signal' | 'body' | 'highWaterBytes'>,
    onReply: (reply: Record<string, unknown>, reader: StreamReader) => T | Promise<T>,
  ): Promise<T> {
    const request: RequestOptions = {
      ...options,
      timeoutMs: this.#options.requestTimeoutMs,
      what,
      maxReplyBytes: MAX_HEADER_BYTES,
      remoteCodes: REMOTE_CODES,
    }
    return requestResponse(this.#deps, peer, SHARD_PROTOCOL, frame, request, onReply)
  }

  /**
   * Store `bytes` under `cid` on `peer`; resolves with the holder's verified, signed receipt.
   * Throws PEER_UNREACHABLE, PEER_BUSY, STORE_FULL, SIGNATURE_INVALID (bad receipt), TIMEOUT.
   */
  async put(
    peer: PeerId,
    cid: CID,
    bytes: Uint8Array,
    options: { signal?: AbortSignal; order?: Uint8Array; repair?: boolean } = {},
  ): Promise<Receipt> {
    using deadline = withDeadline(options.signal, this.#options.requestTimeoutMs, 'shard put')
    const signal = deadline.signal
    const header = dagCbor.encode({
      v: 1,
      op: 'put',
      cid: cid.bytes,
      size: bytes.byteLength,
      ...(options.order === undefined ? {} : { order: options.order }),
      ...(options.repair === true ? { repair: true } : {}),
    })
    const bulk = this.#deps.bulk
    if (bulk?.available(peer) === true) {
      try {
        const resp = await bulk.request(peer, header, bytes, signal)
        return await checkReceipt(parseResponse(resp.header, peer), peer, cid, bytes.byteLength)
      } catch (err) {
        if (!bulkTransportFailed(err) || signal.aborted) throw err
      }
    }
    // The answer is read while the body is sent: a holder that refuses the put at once (ORDER_INVALID,
    // QUOTA_EXCEEDED, PEER_BUSY...) is heard at once, not at the request timeout.
    // `return await`: the deadline must outlive the request.
    return await this.#request(peer, header, 'shard put', { signal, body: bytes }, (resp) =>
      checkReceipt(resp, peer, cid, bytes.byteLength),
    )
  }

  /**
   * Fetch the whole block `cid` from `peer` and verify its BLAKE3 digest against the CID.
   * Throws SHARD_MISSING, PEER_BUSY, PEER_UNREACHABLE, CID_MISMATCH (peer sent wrong bytes), TIMEOUT.
   */
  async get(
    peer: PeerId,
    cid: CID,
    options: { signal?: AbortSignal; repair?: boolean } = {},
  ): Promise<Uint8Array> {
    using deadline = withDeadline(options.signal, this.#options.requestTimeoutMs, 'shard get')
    const signal = deadline.signal
    // `repair`: served from the holder's repair slots (keepers rebuilding a segment).
    const request = dagCbor.encode({
      v: 1,
      op: 'get',
      cid: cid.bytes,
      ...(options.repair === true ? { repair: true } : {}),
    })
    const bulk = this.#deps.bulk
    if (bulk?.available(peer) === true) {
      try {
        const resp = await bulk.request(peer, request, NO_BODY, signal)
        const size = asSize(parseResponse(resp.header, peer).size, 'size')
        if (size > this.#options.maxShardBytes) {
          throw new NodusError('SHARD_TOO_LARGE', `peer offered ${size} bytes`, { peerAction: 'reject' })
        }
        if (size !== resp.body.byteLength) {
          throw new NodusError(
            'PROTOCOL_ERROR',
            `peer announced ${size} bytes and sent ${resp.body.byteLength}`,
            {
              peerAction: 'reject',
            },
          )
        }
        checkBytes(resp.body, cid, peer)
        return resp.body
      } catch (err) {
        if (!bulkTransportFailed(err) || signal.aborted) throw err
      }
    }
    const stream = { signal, highWaterBytes: 2 * 1024 * 1024 }
    return await this.#request(peer, request, 'shard get', stream, async (resp, reader) => {
      const size = asSize(resp.size, 'size')
      if (size > this.#options.maxShardBytes) {
        throw new NodusError('SHARD_TOO_LARGE', `peer offered ${size} bytes`, { peerAction: 'reject' })
      }
      const bytes = await reader.readExactly(size)
      checkBytes(bytes, cid, peer)
      return bytes
    })
  }

  /**
   * Challenge `peer` to prove it holds a shard; resolves with the decoded proof (check it with
   * `verifyAnswer`). Throws SHARD_MISSING, PEER_BUSY, PEER_UNREACHABLE, TIMEOUT, PROTOCOL_ERROR.
   */
  async audit(
    peer: PeerId,
    challenge: AuditChallenge,
    options: { signal?: AbortSignal } = {},
  ): Promise<AuditProof> {
    const req = dagCbor.encode({ v: 1, op: 'audit', challenge: encodeChallenge(challenge) })
    return this.#request(peer, req, 'audit', { signal: options.signal }, async (resp, reader) => {
      const size = asSize(resp.size, 'size')
      if (size > MAX_AUDIT_PROOF_BYTES)
        throw new NodusError('MESSAGE_TOO_LARGE', 'audit proof too large', { peerAction: 'reject' })
      return decodeProof(await reader.readExactly(size))
    })
  }

  /** The latest holder update `peer` keeps for `manifest` (encoded), or undefined. */
  async latest(
    peer: PeerId,
    manifest: CID,
    options: { signal?: AbortSignal } = {},
  ): Promise<Uint8Array | undefined> {
    const req = dagCbor.encode({ v: 1, op: 'latest', cid: manifest.bytes })
    return this.#request(peer, req, 'holder update get', { signal: options.signal }, async (resp, reader) => {
      const size = asSize(resp.size, 'size')
      if (size > MAX_UPDATE_BYTES)
        throw new NodusError('MESSAGE_TOO_LARGE', 'holder update too large', { peerAction: 'reject' })
      return size === 0 ? undefined : await reader.readExactly(size)
    })
  }

  /** Offer a signed holder update to `peer`; resolves whether it kept it. */
  async offerUpdate(
    peer: PeerId,
    manifest: CID,
    update: Uint8Array,
    options: { signal?: AbortSignal } = {},
  ): Promise<boolean> {
    const req = dagCbor.encode({ v: 1, op: 'update', cid: manifest.bytes, size: update.byteLength })
    const body = { signal: options.signal, body: update }
    return this.#request(peer, req, 'holder update offer', body, (resp) => resp.accepted === true)
  }

  /**
   * Send `peer` a signed pin request (orders.ts `signPin`, naming `peer` as holder). Resolves with,
   * per CID of the request, whether the peer holds it and extended it.
   */
  async pin(
    peer: PeerId,
    pin: Uint8Array,
    count: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<boolean[]> {
    return this.#flags(peer, { v: 1, op: 'pin', pin }, 'extended', count, options.signal, 'shard pin')
  }

  /**
   * Send `peer` a signed commit (orders.ts `signCommit`). Resolves with, per CID, whether the peer
   * committed it (it held a provisional claim of ours on it).
   */
  async commit(
    peer: PeerId,
    commit: Uint8Array,
    count: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<boolean[]> {
    return this.#flags(
      peer,
      { v: 1, op: 'commit', commit },
      'committed',
      count,
      options.signal,
      'shard commit',
    )
  }

  /**
   * Tell `peer` (a keeper of `manifest`) that this node lost its copies of `cids` (at most
   * MAX_HAS_CIDS), so it repairs them without waiting for an audit.
   */
  async dropped(
    peer: PeerId,
    manifest: CID,
    cids: CID[],
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    const req = dagCbor.encode({ v: 1, op: 'dropped', cid: manifest.bytes, cids: cids.map((c) => c.bytes) })
    await this.#request(peer, req, 'shard dropped', { signal: options.signal }, () => undefined)
  }

  /** One request whose response carries `field`: a list of `count` booleans. */
  async #flags(
    peer: PeerId,
    request: Record<string, unknown>,
    field: string,
    count: number,
    signal: AbortSignal | undefined,
    what: string,
  ): Promise<boolean[]> {
    return this.#request(peer, dagCbor.encode(request), what, { signal }, (resp) => {
      const flags = resp[field]
      if (!Array.isArray(flags) || flags.length !== count || !flags.every((h) => typeof h === 'boolean')) {
        throw new NodusError('PROTOCOL_ERROR', `malformed ${request.op} response`, { peerAction: 'reject' })
      }
      return flags as boolean[]
    })
  }

  /** Ask `peer` which of `cids` it holds (at most MAX_HAS_CIDS). */
  async has(
    peer: PeerId,
    cids: CID[],
    options: { signal?: AbortSignal } = {},
  ): Promise<{ have: boolean[]; freeBytes: number }> {
    const req = dagCbor.encode({ v: 1, op: 'has', cids: cids.map((c) => c.bytes) })
    return this.#request(peer, req, 'shard has', { signal: options.signal }, (resp) => {
      const have = resp.have
      if (!Array.isArray(have) || have.length !== cids.length || !have.every((h) => typeof h === 'boolean')) {
        throw new NodusError('PROTOCOL_ERROR', 'malformed has response', { peerAction: 'reject' })
      }
      return { have: have as boolean[], freeBytes: typeof resp.freeBytes === 'number' ? resp.freeBytes : 0 }
    })
  }
}
