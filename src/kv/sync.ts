/**
 * Anti-entropy between two nodes hosting a database: `/nodus/kv-sync/1.0.0` (docs/PROTOCOLS.md, "KV
 * sync"). One session per stream; every frame is an unsigned-varint length-prefixed dag-cbor map.
 *
 * 1. Reconciliation (reconcile/protocol.ts, Meyer's range-based set reconciliation): the initiator
 *    sends `{ db, msg }`, then `{ msg }`; the responder answers each with `{ ok: true, msg? }` (no
 *    `msg`: it has nothing more to say). The initiator learns the op keys it lacks (`need`) and those
 *    the responder lacks (`have`).
 * 2. `{ get: [op id] }` (at most {@link MAX_IDS_PER_FRAME}) → `{ ok: true, ops: [envelope] }`: the
 *    responder's envelopes of those ids it holds, within `maxFrameBytes`; the initiator asks again
 *    for what did not fit.
 * 3. `{ put: [envelope] }` → `{ ok: true, applied }`: ops the responder lacks. Ops are signed and
 *    authorized on their own, so the responder checks each as it would a gossiped one.
 * 4. `{ end: true }`, then both close.
 *
 * A refusal is `{ ok: false, code, message }` and ends the session. The responder serves only the
 * databases `mayServe` allows (those it hosts, or keeps), at most `maxSessions` at once and at most
 * `maxSessionsPerPeer` of them to one peer (FairSlots), so one peer cannot take every slot: beyond
 * either, `PEER_BUSY` (peerAction `ignore`) before the first frame is read.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { AbortOptions, Connection, PeerId, Stream } from '@libp2p/interface'
import { withDeadline } from '../common/abort.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import { FairSlots } from '../common/fair-slots.ts'
import type { Logger } from '../common/logger.ts'
import { lengthPrefixed, StreamReader, sendWithBackpressure } from '../net/index.ts'
import type { KvEngine, SubmitResult } from './engine.ts'
import type { KvReconMetrics } from './metrics.ts'
import type { KvReconOptions } from './options.ts'
import { keyId } from './reconcile/fingerprint.ts'
import { indexSet, Reconciler } from './reconcile/protocol.ts'

/** The protocol id. */
export const KV_SYNC_PROTOCOL = '/nodus/kv-sync/1.0.0'
/** Most op ids in one `get` frame. */
export const MAX_IDS_PER_FRAME = 512

/** What the sync protocol needs of libp2p. */
export interface SyncHost {
  dialProtocol(peer: PeerId, protocol: string, options: { signal: AbortSignal }): Promise<Stream>
  handle(
    protocol: string,
    handler: (stream: Stream, connection: Connection) => void,
    options: { maxInboundStreams: number; maxOutboundStreams: number },
  ): Promise<void>
  unhandle(protocol: string): Promise<void>
}

export interface KvSyncDeps {
  engine: KvEngine
  host: SyncHost
  log: Logger
  metrics?: KvReconMetrics
  /**
   * May this node serve `db` to `peer`? (It hosts or keeps it.) `true`, or why not (the session is
   * refused with `KV_DB_NOT_HOSTED`, `message` its text).
   */
  mayServe(db: string, peer: string): true | SyncRefusal
  /** A session was refused before it began: `reason` is a metric label (peer_busy, busy, or mayServe's). */
  onRefused?(reason: string): void
  /** A peer sent something malformed: score it (peerAction reject/ban). */
  report?(peer: string, err: NodusError): void
}

/** Why a session is not served. */
export interface SyncRefusal {
  /** A metric label: not_keeper, owner_full, hosted_full, db_invalid, … */
  reason: string
  message: string
}

export interface KvSyncOptions {
  recon: KvReconOptions
  /** Largest frame sent or accepted, bytes (≥ the reconciliation message size plus slack). */
  maxFrameBytes: number
  /** Time one session may take, ms. */
  sessionTimeoutMs: number
  /** Sessions served at once. */
  maxSessions: number
  /** Sessions served at once to one peer (at most `maxSessions`). */
  maxSessionsPerPeer: number
}

/** What one session did (the initiator's view). */
export interface SyncReport {
  db: string
  peer: string
  /** Reconciliation messages this node sent. */
  rounds: number
  /** Bytes of reconciliation messages, both ways. */
  reconBytes: number
  /** Ops this node lacked / the peer lacked. */
  need: number
  have: number
  /** Ops fetched and applied here / pushed and applied there. */
  fetched: number
  pushed: number
}

const SLACK_BYTES = 1024

function frameOf(value: Record<string, unknown>): Uint8Array {
  return lengthPrefixed(dagCbor.encode(value))
}

function invalid(message: string): NodusError {
  return new NodusError('RECON_MESSAGE_INVALID', `kv sync: ${message}`, { peerAction: 'reject' })
}

async function readMap(reader: StreamReader, max: number): Promise<Record<string, unknown>> {
  let v: unknown
  try {
    v = dagCbor.decode(await reader.readFrame(max))
  } catch (err) {
    if (isNodusError(err) && err.code !== 'DECODE_FAILED') throw err
    throw invalid('a frame is not dag-cbor')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid('a frame is not a map')
  return v as Record<string, unknown>
}

function bytesList(v: unknown, what: string, max: number): Uint8Array[] {
  if (!Array.isArray(v) || v.length > max || !v.every((x) => x instanceof Uint8Array))
    throw invalid(`${what} is not a list of at most ${max} byte strings`)
  return v as Uint8Array[]
}

/** Throws the peer's refusal. */
function checkReply(m: Record<string, unknown>): Record<string, unknown> {
  if (m.ok === true) return m
  const code = typeof m.code === 'string' ? m.code : 'PROTOCOL_ERROR'
  throw new NodusError('PROTOCOL_ERROR', `kv sync refused by the peer: ${String(m.message ?? code)}`, {
    details: { remoteCode: code },
  })
}

/** The kv sync protocol: a client ({@link KvSync.sync}) and a server (registered by `start`). */
export class KvSync {
  readonly #deps: KvSyncDeps
  readonly #options: KvSyncOptions
  /** Serving slots: `maxSessions` in all, `maxSessionsPerPeer` per peer (no subnet limit). */
  readonly #slots: FairSlots
  #started = false

  constructor(deps: KvSyncDeps, options: KvSyncOptions) {
    this.#deps = deps
    this.#options = options
    this.#slots = new FairSlots({
      global: options.maxSessions,
      perPeer: Math.min(options.maxSessionsPerPeer, options.maxSessions),
      perGroup: options.maxSessions,
    })
  }

  /** Sessions being served now. */
  get serving(): number {
    return this.#slots.inUse
  }

  async start(): Promise<void> {
    if (this.#started) return
    await this.#deps.host.handle(KV_SYNC_PROTOCOL, (s, c) => void this.#serve(s, c), {
      // Streams past a peer's share are answered PEER_BUSY; libp2p resets those past twice it.
      maxInboundStreams: Math.max(4, 2 * this.#options.maxSessionsPerPeer),
      maxOutboundStreams: 64,
    })
    this.#started = true
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    await this.#deps.host.unhandle(KV_SYNC_PROTOCOL)
  }

  /**
   * Reconcile `db` with `peer`, fetch what this node lacks and push what the peer lacks.
   * @throws PEER_UNREACHABLE, TIMEOUT, STREAM_CLOSED, PROTOCOL_ERROR (the peer refused, e.g. it does
   *   not host `db`), RECON_MESSAGE_INVALID (the peer sent garbage; reported), the signal's reason
   */
  async sync(peer: PeerId, db: string, options: AbortOptions = {}): Promise<SyncReport> {
    const { engine, metrics } = this.#deps
    const max = this.#options.maxFrameBytes
    using deadline = withDeadline(options.signal, this.#options.sessionTimeoutMs, 'kv sync')
    const signal = deadline.signal
    const stream = await this.#deps.host.dialProtocol(peer, KV_SYNC_PROTOCOL, { signal })
    const report: SyncReport = {
      db,
      peer: peer.toString(),
      rounds: 0,
      reconBytes: 0,
      need: 0,
      have: 0,
      fetched: 0,
      pushed: 0,
    }
    try {
      const reader = new StreamReader(stream, { signal })
      const index = await engine.index(db)
      const rec = new Reconciler(
        { set: indexSet(index, engine.reader), ...(metrics === undefined ? {} : { metrics }) },
        this.#options.recon,
        'initiator',
      )
      const need: Uint8Array[] = []
      const have: Uint8Array[] = []
      let msg: Uint8Array | undefined = rec.initiate()
      let first = true
      while (msg !== undefined) {
        report.rounds++
        report.reconBytes += msg.byteLength
        await sendWithBackpressure(stream, frameOf(first ? { db, msg } : { msg }), signal)
        first = false
        const reply = checkReply(await readMap(reader, max))
        if (!(reply.msg instanceof Uint8Array)) break
        report.reconBytes += reply.msg.byteLength
        const r = rec.receive(reply.msg)
        need.push(...r.need)
        have.push(...r.have)
        msg = r.message
        if (r.done && msg === undefined) break
      }
      rec.end()
      report.need = need.length
      report.have = have.length
      // Fetch what this node lacks, a frame of ids at a time.
      let wanted = need.map(keyId)
      while (wanted.length > 0) {
        const batch = wanted.slice(0, MAX_IDS_PER_FRAME)
        await sendWithBackpressure(stream, frameOf({ get: batch }), signal)
        const reply = checkReply(await readMap(reader, max))
        const ops = bytesList(reply.ops, 'ops', MAX_IDS_PER_FRAME)
        const results = await engine.submit(ops, 'sync', { signal })
        report.fetched += results.filter((x) => x.status === 'applied').length
        // The peer sends what fits; ask again for the rest (none sent: it no longer holds them).
        if (ops.length === 0) break
        wanted = wanted.slice(ops.length)
      }
      // Push what the peer lacks, frames of at most maxFrameBytes.
      let batch: Uint8Array[] = []
      let bytes = 0
      const push = async (): Promise<void> => {
        if (batch.length === 0) return
        await sendWithBackpressure(stream, frameOf({ put: batch }), signal)
        const reply = checkReply(await readMap(reader, max))
        report.pushed += typeof reply.applied === 'number' ? reply.applied : 0
        batch = []
        bytes = 0
      }
      for (const key of have) {
        const env = engine.getOp(keyId(key))
        if (env === undefined) continue
        if (bytes + env.byteLength + SLACK_BYTES > max || batch.length >= MAX_IDS_PER_FRAME) await push()
        batch.push(env)
        bytes += env.byteLength + 8
      }
      await push()
      await sendWithBackpressure(stream, frameOf({ end: true }), signal)
      await stream.close({ signal })
      return report
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error('kv sync failed'))
      if (isNodusError(err) && (err.peerAction === 'reject' || err.peerAction === 'ban'))
        this.#deps.report?.(peer.toString(), err)
      throw err
    }
  }

  async #serve(stream: Stream, connection: Connection): Promise<void> {
    const remote = connection.remotePeer.toString()
    const { engine, metrics, log } = this.#deps
    const max = this.#options.maxFrameBytes
    using deadline = withDeadline(undefined, this.#options.sessionTimeoutMs, 'kv sync session')
    const signal = deadline.signal
    let release: (() => void) | undefined
    try {
      const got = this.#slots.tryAcquire(remote)
      if (!('release' in got)) {
        this.#deps.onRefused?.(got.refused === 'peer' ? 'peer_busy' : 'busy')
        throw new NodusError(
          'PEER_BUSY',
          got.refused === 'peer'
            ? `already serving this peer ${this.#slots.heldBy(remote)} kv sync sessions (kv.maxSyncSessionsPerPeer)`
            : `already serving ${this.#slots.inUse} kv sync sessions (kv.maxSyncSessions)`,
          { peerAction: 'ignore', details: { limit: got.refused } },
        )
      }
      release = got.release
      const reader = new StreamReader(stream, { signal })
      const start = await readMap(reader, max)
      const db = start.db
      if (typeof db !== 'string' || db.length > 256) throw invalid('the first frame names no database')
      const may = this.#deps.mayServe(db, remote)
      if (may !== true) {
        this.#deps.onRefused?.(may.reason)
        throw new NodusError('KV_DB_NOT_HOSTED', may.message, {
          peerAction: 'ignore',
          details: { db, reason: may.reason },
        })
      }
      const index = await engine.index(db)
      const rec = new Reconciler(
        { set: indexSet(index, engine.reader), ...(metrics === undefined ? {} : { metrics }) },
        this.#options.recon,
        'responder',
      )
      let frame: Record<string, unknown> = start
      for (;;) {
        if (frame.msg instanceof Uint8Array) {
          const r = rec.receive(frame.msg)
          await sendWithBackpressure(
            stream,
            frameOf(r.message === undefined ? { ok: true } : { ok: true, msg: r.message }),
            signal,
          )
        } else if (frame.get !== undefined) {
          const ids = bytesList(frame.get, 'get', MAX_IDS_PER_FRAME)
          const ops: Uint8Array[] = []
          let bytes = 0
          for (const id of ids) {
            const env = engine.getOp(id)
            if (env === undefined) continue
            if (bytes + env.byteLength + SLACK_BYTES > max) break
            ops.push(env)
            bytes += env.byteLength + 8
          }
          await sendWithBackpressure(stream, frameOf({ ok: true, ops }), signal)
        } else if (frame.put !== undefined) {
          const ops = bytesList(frame.put, 'put', MAX_IDS_PER_FRAME)
          const results = await engine.submit(ops, 'sync', { signal })
          const bad = results.find(
            (x): x is Extract<SubmitResult, { status: 'refused' }> =>
              x.status === 'refused' && (x.peerAction === 'reject' || x.peerAction === 'ban'),
          )
          if (bad !== undefined)
            this.#deps.report?.(remote, new NodusError(bad.code, bad.message, { peerAction: 'reject' }))
          const applied = results.filter((x) => x.status === 'applied').length
          await sendWithBackpressure(stream, frameOf({ ok: true, applied }), signal)
        } else if (frame.end === true) {
          break
        } else {
          throw invalid('a frame is none of msg, get, put, end')
        }
        frame = await readMap(reader, max)
      }
      rec.end()
      await stream.close({ signal })
    } catch (err) {
      log.debug({ peer: remote, err: (err as Error).message }, 'kv sync session ended with an error')
      try {
        if (stream.writeStatus === 'writable') {
          const code = isNodusError(err) ? err.code : 'PROTOCOL_ERROR'
          stream.send(frameOf({ ok: false, code, message: (err as Error).message }))
          await stream.close({ signal })
        }
      } catch {
        stream.abort(err instanceof Error ? err : new Error('kv sync failed'))
      }
      if (isNodusError(err) && (err.peerAction === 'reject' || err.peerAction === 'ban'))
        this.#deps.report?.(remote, err)
    } finally {
      release?.()
    }
  }
}
