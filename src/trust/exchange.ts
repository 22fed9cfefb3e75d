/**
 * `/nodus/reports/1.0.0`: peers push their signed trust vector and signed capacity/locality report
 * to connected peers, every `intervalMs` and once when a connection is identified. One message per
 * stream: an unsigned-varint length-prefixed dag-cbor frame `{ v: 1, kind: 'trust' | 'capacity',
 * bytes }` of at most 64 KiB; the answer is `{ ok: true }` or `{ ok: false, code }`. Receivers verify
 * signatures, freshness, replays and per-issuer rate limits through the inboxes, then feed EigenTrust
 * (trust vectors) and keep the latest report per peer (placement reads free space, region, network).
 * See docs/PROTOCOLS.md.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { withDeadline } from '../common/abort.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import { lengthPrefixed, requestResponse, StreamReader, sendWithBackpressure } from '../net/index.ts'
import type { CapacityReport, CapacityReportInbox } from './reports.ts'
import type { TrustVectorInbox } from './trust-vector.ts'

export const REPORTS_PROTOCOL = '/nodus/reports/1.0.0'
const MAX_FRAME_BYTES = 64 * 1024

export interface ExchangeDeps {
  trustInbox: Pick<TrustVectorInbox, 'receive'>
  capacityInbox: Pick<CapacityReportInbox, 'receive'>
  /** A verified trust vector arrived: its issuer's row for EigenTrust. */
  onTrustVector(issuer: string, entries: Array<[string, number]>): void
  /** A verified capacity report arrived. */
  onCapacityReport(report: CapacityReport): void
  /** This node's current signed messages (encoded envelopes). */
  ownMessages(): Promise<{ trust: Uint8Array; capacity: Uint8Array }>
  dialProtocol(peer: PeerId, protocol: string, options: { signal: AbortSignal }): Promise<Stream>
  logger: { debug(obj: object, msg?: string): void }
  /**
   * A message `peer` pushed was refused for a reason that names a peerAction (malformed: `reject`; bad
   * signature: `ban`; stale, replayed or rate-limited: `ignore`), for peer actions (peer-actions.ts).
   */
  onPeerError?(peer: string, err: NodusError): void
}

function decodeMessage(bytes: Uint8Array): Record<string, unknown> {
  try {
    return dagCbor.decode(bytes) as Record<string, unknown>
  } catch (err) {
    throw new NodusError('PROTOCOL_ERROR', 'report message is not dag-cbor', {
      cause: err,
      peerAction: 'reject',
    })
  }
}

/** Both directions of the reports protocol. */
export class ReportExchange {
  readonly #deps: ExchangeDeps
  #received = 0
  #rejected = 0

  constructor(deps: ExchangeDeps) {
    this.#deps = deps
  }

  /** Messages accepted and refused since start. */
  get stats(): { received: number; rejected: number } {
    return { received: this.#received, rejected: this.#rejected }
  }

  readonly handler = (stream: Stream, connection: Connection): void => {
    void this.#serve(stream, connection.remotePeer.toString())
  }

  async #serve(stream: Stream, peer: string): Promise<void> {
    // A disposable deadline, not AbortSignal.timeout: that timer would fire 10 s later for every message
    // and build a DOMException each time (docs/benchmarks-history.md, "Session 8").
    using deadline = withDeadline(undefined, 10_000, 'report exchange')
    const signal = deadline.signal
    try {
      const reader = new StreamReader(stream, { signal })
      const msg = decodeMessage(await reader.readFrame(MAX_FRAME_BYTES))
      if (typeof msg !== 'object' || msg === null || msg.v !== 1 || !(msg.bytes instanceof Uint8Array)) {
        throw new NodusError('PROTOCOL_ERROR', 'bad report message', { peerAction: 'reject' })
      }
      if (msg.kind === 'trust') {
        const v = await this.#deps.trustInbox.receive(msg.bytes)
        this.#deps.onTrustVector(v.vector.issuer, v.vector.entries)
      } else if (msg.kind === 'capacity') {
        const r = await this.#deps.capacityInbox.receive(msg.bytes)
        this.#deps.onCapacityReport(r.report)
      } else throw new NodusError('PROTOCOL_ERROR', 'unknown report kind', { peerAction: 'reject' })
      this.#received++
      await sendWithBackpressure(stream, lengthPrefixed(dagCbor.encode({ ok: true })), signal)
      await stream.close({ signal })
    } catch (err) {
      this.#rejected++
      const code = isNodusError(err) ? err.code : 'PROTOCOL_ERROR'
      this.#deps.logger.debug({ code, peer }, 'report refused')
      if (isNodusError(err) && err.peerAction !== undefined) this.#deps.onPeerError?.(peer, err)
      try {
        stream.send(lengthPrefixed(dagCbor.encode({ ok: false, code })))
        using closing = withDeadline(undefined, 2_000, 'report refusal')
        await stream.close({ signal: closing.signal })
      } catch {
        stream.abort(err instanceof Error ? err : new Error('report refused'))
      }
    }
  }

  /**
   * Push this node's trust vector and capacity report to `peer`, one stream each (src/net/request.ts,
   * 10 s per message). Resolves whether both were accepted; throws PEER_UNREACHABLE when no stream opens.
   */
  async push(peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const own = await this.#deps.ownMessages()
    const pushOptions = {
      signal: options.signal,
      timeoutMs: 10_000,
      what: 'report push',
      maxReplyBytes: 1024,
    }
    let ok = true
    for (const [kind, bytes] of [
      ['trust', own.trust],
      ['capacity', own.capacity],
    ] as const) {
      try {
        const frame = dagCbor.encode({ v: 1, kind, bytes })
        await requestResponse(this.#deps, peer, REPORTS_PROTOCOL, frame, pushOptions, () => undefined)
      } catch (err) {
        // A peer that cannot be reached rejects the push; a refused or failed message only makes it false.
        if (isNodusError(err, 'PEER_UNREACHABLE')) throw err
        ok = false
      }
    }
    return ok
  }
}
