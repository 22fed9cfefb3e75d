/**
 * The trust area's factories (the composition seam of docs/ARCHITECTURE.md):
 *
 * - {@link createTrust}: EigenTrust, the performance monitor, peer actions with the persisted ban
 *   list, peers' capacity reports, and the observer that turns what other areas saw a peer do into
 *   trust records. Built first: the net area's connection gater reads its bans.
 * - {@link createTrustExchange}: `/nodus/reports/1.0.0` (exchange.ts), which pushes this node's signed
 *   trust vector and capacity report to its peers. Built once net and storage exist (it needs a host
 *   and the store's free space).
 */
import type { PeerId } from '@libp2p/interface'
import type { Clock } from '../common/clock.ts'
import type { PeerAction } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import type { Ed25519Signer } from '../crypto/index.ts'
import { EigenTrust } from './eigentrust.ts'
import { type ExchangeDeps, REPORTS_PROTOCOL, ReportExchange } from './exchange.ts'
import { type BanStore, PeerActions } from './peer-actions.ts'
import { PerfMonitor } from './perf-monitor.ts'
import { type CapacityReport, CapacityReportInbox, checkReport, signCapacityReport } from './reports.ts'
import { signTrustVector, TrustVectorInbox, trustVectorFromLocalTrust } from './trust-vector.ts'

/** How often global trust is recomputed when scores are read, ms. */
const RECOMPUTE_MS = 10_000
/** Most peers whose capacity reports (and observed refusals) are kept. */
const MAX_REPORTS = 10_000

/** What {@link createTrust} needs. */
export interface TrustComponents {
  logger: Logger
  clock: Clock
  /** This node's PeerId string (the issuer of its trust row; never penalized). */
  self: string
  /** Where bans persist (`LmdbBanStore` at `<dataDir>/bans` in a node, `MemoryBanStore` in tests). */
  bans: BanStore
  metrics?: { peerActions: { inc(labels: { action: string }): void } }
}

/** The trust keys of the node's config (`trust.*`, docs/CONFIG.md) that {@link createTrust} reads. */
export interface TrustAreaOptions {
  preTrusted: readonly string[]
  banMs: number
  rejectWindowMs: number
  rejectsToDisconnect: number
  maxBans: number
}

/** The outcome of one transfer with a peer, as the storage area reports it. */
export interface TransferOutcome {
  ok: boolean
  code?: string
  peerAction?: PeerAction
  bytes: number
  ms: number
}

/** What other areas saw peers do, turned into trust records and peer actions. */
export interface PeerObserver {
  /** A shard transfer with `peer` ended (a fault carrying `peerAction` goes to peer actions). */
  transfer(peer: string, op: 'put' | 'get', outcome: TransferOutcome): void
  /** An audit of `peer`'s copy ended: a failure is a `reject` (docs/ERRORS.md, AUDIT_FAILED). */
  audit(peer: string, result: 'pass' | 'fail' | 'timeout'): void
  /** `peer` did not answer a request in time. */
  unanswered(peer: string): void
}

/** The trust area's public services. */
export interface Trust {
  readonly eigentrust: EigenTrust
  readonly perf: PerfMonitor
  readonly peerActions: PeerActions
  /** Peers' latest verified capacity/locality reports (at most 10,000). */
  readonly reports: ReadonlyMap<string, CapacityReport>
  readonly observer: PeerObserver
  /** Global trust of `peer` in [0, 1] (EigenTrust, recomputed at most every 10 s when read). */
  score(peer: string): number
  /**
   * How far `peer` stands above the average, in [0, 1]: 0 for an average peer or a stranger (EigenTrust
   * gives a peer nobody vouches for about 1/N), 1 at four times the average or when pre-trusted.
   * @param peers N, the number of peers this node knows (its own included)
   */
  standing(peer: string, peers: number): number
  /** Keep a verified capacity report (the exchange calls it). */
  acceptReport(report: CapacityReport): void
  beforeStart(): Promise<void>
  start(): void
  stop(): void
  afterStop(): Promise<void>
}

/**
 * Build the trust area. `beforeStart` loads the bans (before the first connection: the connection
 * gater reads them); `afterStop` flushes and closes them.
 */
export function createTrust(components: TrustComponents, options: TrustAreaOptions): Trust {
  const { self, clock } = components
  const log = components.logger.child({ area: 'trust' })
  const eigentrust = new EigenTrust({ preTrusted: [...options.preTrusted] })
  const perf = new PerfMonitor({ clock })
  const peerActions = new PeerActions(
    {
      self,
      clock,
      trust: eigentrust,
      perf,
      bans: components.bans,
      logger: log,
      ...(components.metrics === undefined ? {} : { metrics: components.metrics }),
    },
    {
      banMs: options.banMs,
      rejectWindowMs: options.rejectWindowMs,
      rejectsToDisconnect: options.rejectsToDisconnect,
      maxBans: options.maxBans,
    },
  )
  let computedAt = Number.NEGATIVE_INFINITY
  const score = (peer: string): number => {
    if (clock.now() - computedAt > RECOMPUTE_MS) {
      eigentrust.compute()
      computedAt = clock.now()
    }
    return eigentrust.score(peer)
  }
  // Peers' latest capacity reports, and what we saw them do (refusals, acceptances) to check them.
  const reports = new Map<string, CapacityReport>()
  const refusals = new Map<string, { atMs: number; bytes: number }[]>()
  const accepted = new Map<string, { atMs: number; bytes: number }[]>()
  const remember = (m: Map<string, { atMs: number; bytes: number }[]>, peer: string, bytes: number): void => {
    const list = m.get(peer) ?? []
    list.push({ atMs: clock.now(), bytes })
    if (list.length > 64) list.shift()
    m.set(peer, list)
    if (m.size > MAX_REPORTS) m.delete(m.keys().next().value as string)
  }
  const observer: PeerObserver = {
    transfer: (peer, op, o) => {
      // A fault of the peer's (CID_MISMATCH, SIGNATURE_INVALID, PROTOCOL_ERROR...): peer actions
      // penalize (trust and performance), disconnect or ban. Other outcomes are recorded here.
      const effect =
        o.peerAction === undefined ? 'none' : peerActions.apply(peer, o.peerAction, { code: o.code ?? '' })
      if (effect === 'none' || effect === 'ignore') {
        perf.record(peer, { ok: o.ok, latencyMs: o.ms, bytes: o.bytes, durationMs: o.ms })
        eigentrust.recordInteraction(
          self,
          peer,
          o.ok ? (op === 'get' ? 'shard-served' : 'shard-stored') : 'timeout',
        )
      }
      if (op === 'put' && o.ok) remember(accepted, peer, o.bytes)
      if (op === 'put' && o.code === 'STORE_FULL') {
        // A refusal for lack of room: does it match the free space the peer reported?
        remember(refusals, peer, 16 * 1024 * 1024)
        const report = reports.get(peer)
        if (report !== undefined) {
          const check = checkReport(
            report,
            { refusals: refusals.get(peer) ?? [], accepted: accepted.get(peer) ?? [] },
            { nowMs: clock.now() },
          )
          if (!check.consistent && !check.stale)
            eigentrust.recordInteraction(self, peer, 'report-inconsistent')
        }
      }
    },
    audit: (peer, result) => {
      if (result === 'fail') peerActions.apply(peer, 'reject', { code: 'AUDIT_FAILED', kind: 'audit-failed' })
      else eigentrust.recordInteraction(self, peer, result === 'pass' ? 'audit-passed' : 'timeout')
    },
    unanswered: (peer) => {
      perf.record(peer, { ok: false })
      eigentrust.recordInteraction(self, peer, 'timeout')
    },
  }
  return {
    eigentrust,
    perf,
    peerActions,
    reports,
    observer,
    score,
    standing: (peer, peers) => {
      if (options.preTrusted.includes(peer)) return 1
      const relative = score(peer) * peers
      return Math.min(1, Math.max(0, (relative - 1) / 3))
    },
    acceptReport: (r) => {
      reports.set(r.peer, r)
      if (reports.size > MAX_REPORTS) reports.delete(reports.keys().next().value as string)
    },
    beforeStart: () => peerActions.start(),
    start: () => {},
    stop: () => {},
    afterStop: () => peerActions.stop(),
  }
}

/** The host services {@link createTrustExchange} uses (a libp2p node satisfies it). */
export interface ExchangeHost {
  handle(
    protocol: string,
    handler: ReportExchange['handler'],
    options: { maxInboundStreams: number; maxOutboundStreams: number },
  ): Promise<void>
  unhandle(protocol: string): Promise<void>
  dialProtocol: ExchangeDeps['dialProtocol']
  getPeers(): PeerId[]
  addEventListener(
    type: 'peer:identify',
    listener: (evt: CustomEvent<{ peerId: PeerId; protocols: string[] }>) => void,
  ): void
}

/** What {@link createTrustExchange} needs. */
export interface TrustExchangeComponents {
  logger: Logger
  clock: Clock
  host: ExchangeHost
  trust: Trust
  /** Signs the trust vector and the capacity report (this node's Ed25519 key). */
  signer: Ed25519Signer
  /** This node's free and offered bytes (the shard store's usage), for its capacity report. */
  capacity(): { freeBytes: number; capacityBytes: number }
}

/** The `trust.*` keys {@link createTrustExchange} reads. */
export interface TrustExchangeOptions {
  exchangeIntervalMs: number
  region: string
  networks: readonly string[]
}

/** The exchange of signed trust vectors and capacity reports, as an area service. */
export interface TrustExchange {
  readonly exchange: ReportExchange
  start(): Promise<void>
  stop(): Promise<void>
}

/**
 * Build the reports exchange: `start` registers `/nodus/reports/1.0.0`, pushes to each peer whose
 * identify lists it, and pushes to (at most 64) connected peers every `exchangeIntervalMs`.
 */
export function createTrustExchange(
  components: TrustExchangeComponents,
  options: TrustExchangeOptions,
): TrustExchange {
  const { trust, clock, host } = components
  const self = components.signer.peerId.toString()
  const exchange = new ReportExchange({
    trustInbox: new TrustVectorInbox({ clock }),
    capacityInbox: new CapacityReportInbox({ clock }),
    onTrustVector: (issuer, entries) => {
      if (issuer !== self) trust.eigentrust.setLocalTrust(issuer, entries)
    },
    onCapacityReport: (r) => trust.acceptReport(r),
    // Signed afresh for every push (two Ed25519 signatures); seq is the time, so it only grows.
    ownMessages: async () => {
      const now = clock.now()
      const u = components.capacity()
      const row = trust.eigentrust.localTrust().get(self) ?? new Map<string, number>()
      const tv = await signTrustVector(trustVectorFromLocalTrust(self, now, now, row), components.signer)
      const cr = await signCapacityReport(
        {
          peer: self,
          seq: now,
          timestampMs: now,
          freeBytes: u.freeBytes,
          capacityBytes: u.capacityBytes,
          region: options.region,
          networks: [...options.networks],
        },
        components.signer,
      )
      return { trust: tv.bytes, capacity: cr.bytes }
    },
    dialProtocol: (peer, protocol, o) => host.dialProtocol(peer, protocol, o),
    logger: components.logger.child({ area: 'net' }),
    onPeerError: (peer, err) => trust.peerActions.report(peer, err, 'report-inconsistent'),
  })
  let timer: NodeJS.Timeout | undefined
  let running = false
  host.addEventListener('peer:identify', (evt) => {
    if (running && evt.detail.protocols.includes(REPORTS_PROTOCOL))
      void exchange.push(evt.detail.peerId).catch(() => {})
  })
  return {
    exchange,
    start: async () => {
      if (running) return
      running = true
      await host.handle(REPORTS_PROTOCOL, exchange.handler, { maxInboundStreams: 4, maxOutboundStreams: 4 })
      timer = setInterval(() => {
        for (const p of host.getPeers().slice(0, 64)) void exchange.push(p).catch(() => {})
      }, options.exchangeIntervalMs)
      timer.unref()
    },
    stop: async () => {
      if (!running) return
      running = false
      clearInterval(timer)
      await host.unhandle(REPORTS_PROTOCOL).catch(() => {})
    },
  }
}
