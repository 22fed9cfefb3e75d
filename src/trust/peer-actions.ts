/**
 * Peers pay for their faults: reads the `peerAction` that errors caused by a remote peer carry
 * (src/common/errors.ts) and acts on it.
 *
 * - `ignore`: nothing (counted in `nodus_trust_peer_actions_total{action="ignore"}`).
 * - `reject`: penalize: one negative interaction in this node's EigenTrust row (`shard-bad` unless the
 *   caller names another kind) and a failed sample in the performance monitor. The
 *   `rejectsToDisconnect`-th reject within `rejectWindowMs` also disconnects the peer (it may come back).
 * - `ban`: penalize, then ban for `banMs`: disconnected at once; the connection gater refuses its
 *   connections both ways, the bulk channel its tickets, the shard server its requests. Bans persist
 *   (a {@link BanStore}) and are loaded again at start; expired ones are dropped.
 *
 * Bounded: at most `maxBans` bans (the oldest evicted) and reject windows for `maxTrackedPeers` peers
 * (least recently rejected forgotten). Clock injected. docs/ERRORS.md says what each code does;
 * docs/TRUST.md, "Peer actions", explains the choices.
 */
import { isNodusError, NodusError, type PeerAction } from '../common/errors.ts'
import type { TransferSample } from './perf-monitor.ts'
import type { InteractionKind } from './records.ts'

/** What {@link PeerActions.apply} did to the peer. `none`: the error named no peer action. */
export type PeerEffect = 'none' | 'ignore' | 'penalize' | 'disconnect' | 'ban'

/** One ban. Times in ms since the Unix epoch. */
export interface BanRecord {
  /** PeerId string. */
  peer: string
  /** When the (latest) ban was made. */
  atMs: number
  /** When it ends. */
  untilMs: number
  /** The error code that caused it (e.g. `CID_MISMATCH`). */
  code: string
}

/**
 * Where bans persist. {@link LmdbBanStore} (src/trust/ban-store.ts) in a node, {@link MemoryBanStore}
 * in tests. Writes may be slow; {@link PeerActions} never waits for them on a fault's path.
 */
export interface BanStore {
  /** Open the store and return every ban in it, expired ones included. */
  load(): Promise<BanRecord[]>
  /** Record (or replace) the ban of `rec.peer`; resolves once durable. */
  put(rec: BanRecord): Promise<void>
  /** Remove the ban of `peer` (absent: nothing). */
  delete(peer: string): Promise<void>
  /** Close the store; idempotent. */
  close(): Promise<void>
}

/** A {@link BanStore} in memory (tests; a node that keeps no bans across restarts). */
export class MemoryBanStore implements BanStore {
  readonly records = new Map<string, BanRecord>()

  async load(): Promise<BanRecord[]> {
    return [...this.records.values()].map((r) => ({ ...r }))
  }

  async put(rec: BanRecord): Promise<void> {
    this.records.set(rec.peer, { ...rec })
  }

  async delete(peer: string): Promise<void> {
    this.records.delete(peer)
  }

  async close(): Promise<void> {}
}

/** What {@link PeerActions} needs. */
export interface PeerActionsDeps {
  /** This node's PeerId string: the issuer of its EigenTrust row; never banned. */
  self: string
  /** Milliseconds since the Unix epoch; `Date` in a node, a fake clock in tests. */
  clock: { now(): number }
  /** This node's EigenTrust (src/trust/eigentrust.ts). */
  trust: { recordInteraction(from: string, to: string, kind: InteractionKind): void }
  /** The performance monitor (src/trust/perf-monitor.ts). */
  perf: { record(peer: string, sample: TransferSample): void }
  /**
   * Close every connection to `peer` (libp2p `hangUp`). Failures are logged. Optional: the net area
   * subscribes through {@link PeerActions.onDisconnect} instead, as it is built after trust.
   */
  disconnect?(peer: string): Promise<void>
  bans: BanStore
  logger: {
    debug(obj: object, msg?: string): void
    info(obj: object, msg?: string): void
    warn(obj: object, msg?: string): void
  }
  metrics?: { peerActions: { inc(labels: { action: string }): void } }
}

/** Tuning; defaults in {@link DEFAULT_PEER_ACTIONS_OPTIONS}. Times in ms. */
export interface PeerActionsOptions {
  /** How long a `ban` lasts, ms (config `trust.banMs`). Default 86,400,000 (24 h). */
  banMs: number
  /** Window in which rejects are counted, ms (config `trust.rejectWindowMs`). Default 600,000 (10 min). */
  rejectWindowMs: number
  /** Rejects within the window that disconnect the peer (config `trust.rejectsToDisconnect`). Default 10. */
  rejectsToDisconnect: number
  /** Most bans kept; beyond it the oldest is evicted (config `trust.maxBans`). Default 10,000. */
  maxBans: number
  /** Most peers whose recent rejects are remembered (least recently rejected forgotten). Default 10,000. */
  maxTrackedPeers: number
}

/** Defaults of {@link PeerActionsOptions}. */
export const DEFAULT_PEER_ACTIONS_OPTIONS: Readonly<PeerActionsOptions> = Object.freeze({
  banMs: 24 * 60 * 60 * 1000,
  rejectWindowMs: 10 * 60 * 1000,
  rejectsToDisconnect: 10,
  maxBans: 10_000,
  maxTrackedPeers: 10_000,
})

/** Acts on peers' faults: penalize, disconnect, ban. `start()` loads the bans; `stop()` flushes them. */
export class PeerActions {
  readonly #deps: PeerActionsDeps
  readonly #o: PeerActionsOptions
  /** Bans in the order they were made or renewed (oldest first: the first to evict). */
  readonly #bans = new Map<string, BanRecord>()
  /** Per peer, the times of its latest rejects (at most rejectsToDisconnect), least recent peer first. */
  readonly #rejects = new Map<string, number[]>()
  /** Store writes in flight (awaited by flush and stop). */
  readonly #writes = new Set<Promise<void>>()
  /** Who closes a peer's connections when it is disconnected or banned (the net area). */
  readonly #disconnectListeners = new Set<(peer: string) => Promise<void>>()
  #started = false

  /** @throws NodusError `INVALID_ARGUMENT` when an option is not a positive integer */
  constructor(deps: PeerActionsDeps, options: Partial<PeerActionsOptions> = {}) {
    this.#deps = deps
    this.#o = { ...DEFAULT_PEER_ACTIONS_OPTIONS, ...options }
    for (const [name, v] of Object.entries(this.#o)) {
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new NodusError('INVALID_ARGUMENT', `${name} must be an integer ≥ 1`, { details: { [name]: v } })
      }
    }
  }

  /** Load the persisted bans (expired ones are dropped from the store, the newest `maxBans` kept). Idempotent. */
  async start(): Promise<void> {
    if (this.#started) return
    this.#started = true
    const now = this.#deps.clock.now()
    const all = (await this.#deps.bans.load()).sort((a, b) => a.atMs - b.atMs)
    const keep = all.filter((r) => r.untilMs > now).slice(-this.#o.maxBans)
    const kept = new Set(keep.map((r) => r.peer))
    for (const r of keep) this.#bans.set(r.peer, r)
    for (const r of all) if (!kept.has(r.peer)) this.#persist(() => this.#deps.bans.delete(r.peer))
    if (all.length > 0)
      this.#deps.logger.info({ bans: keep.length, dropped: all.length - keep.length }, 'bans loaded')
  }

  /** Wait for pending store writes, then close the store. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    await this.flush()
    await this.#deps.bans.close()
  }

  /** Resolves once every ban change made so far is in the store. */
  async flush(): Promise<void> {
    while (this.#writes.size > 0) await Promise.allSettled([...this.#writes])
  }

  /**
   * Act on an error a remote peer caused: its `peerAction` decides (see the module comment). Errors
   * without one (not a NodusError, or no peer at fault) do nothing.
   *
   * @param peer PeerId string of the peer whose input caused `err`
   * @param kind the EigenTrust interaction recorded when penalizing; default `shard-bad`
   * @returns what was done
   */
  report(peer: string, err: unknown, kind?: InteractionKind): PeerEffect {
    if (!isNodusError(err) || err.peerAction === undefined) return 'none'
    return this.apply(peer, err.peerAction, { code: err.code, ...(kind === undefined ? {} : { kind }) })
  }

  /**
   * Apply `action` to `peer` for a fault named by `reason.code` (logged, and kept with a ban). This
   * node itself is never acted on (`none`).
   *
   * @returns `ignore`; `penalize`; `disconnect` (a reject that reached `rejectsToDisconnect` within
   *   `rejectWindowMs`); `ban`
   */
  apply(peer: string, action: PeerAction, reason: { code: string; kind?: InteractionKind }): PeerEffect {
    if (peer === this.#deps.self) return 'none'
    let effect: PeerEffect
    if (action === 'ignore') {
      effect = 'ignore'
    } else {
      this.#penalize(peer, reason.kind ?? 'shard-bad')
      if (action === 'ban') {
        this.ban(peer, reason.code)
        effect = 'ban'
      } else effect = this.#countReject(peer) ? 'disconnect' : 'penalize'
    }
    this.#deps.metrics?.peerActions.inc({ action: effect })
    this.#deps.logger[effect === 'ignore' || effect === 'penalize' ? 'debug' : 'info'](
      { peer, code: reason.code, action: effect },
      'peer action',
    )
    if (effect === 'disconnect') this.#disconnect(peer)
    return effect
  }

  /**
   * Ban `peer` for `banMs` from now (a ban already in force is renewed) and disconnect it. Evicts the
   * oldest ban beyond `maxBans`. The store is written in the background ({@link flush}).
   */
  ban(peer: string, code: string): void {
    if (peer === this.#deps.self) return
    const now = this.#deps.clock.now()
    const rec: BanRecord = { peer, atMs: now, untilMs: now + this.#o.banMs, code }
    this.#bans.delete(peer)
    this.#bans.set(peer, rec)
    this.#rejects.delete(peer)
    this.#persist(() => this.#deps.bans.put(rec))
    while (this.#bans.size > this.#o.maxBans) {
      const oldest = this.#bans.keys().next().value as string
      this.#bans.delete(oldest)
      this.#persist(() => this.#deps.bans.delete(oldest))
    }
    this.#disconnect(peer)
  }

  /**
   * Call `listener` each time a peer is to be disconnected (a ban, or a reject that reached
   * `rejectsToDisconnect`). The net area subscribes here: it is built after trust, whose bans its
   * connection gater reads. A listener's rejection is logged.
   */
  onDisconnect(listener: (peer: string) => Promise<void>): void {
    this.#disconnectListeners.add(listener)
  }

  /** Lift the ban of `peer`; false if it had none in force. */
  unban(peer: string): boolean {
    const had = this.isBanned(peer)
    if (this.#bans.delete(peer)) this.#persist(() => this.#deps.bans.delete(peer))
    return had
  }

  /** Is `peer` (PeerId string) banned now? O(1); an expired ban found here is dropped. */
  isBanned(peer: string): boolean {
    const rec = this.#bans.get(peer)
    if (rec === undefined) return false
    if (rec.untilMs > this.#deps.clock.now()) return true
    this.#bans.delete(peer)
    this.#persist(() => this.#deps.bans.delete(peer))
    return false
  }

  /** The ban of `peer` in force, if any. */
  banOf(peer: string): BanRecord | undefined {
    return this.isBanned(peer) ? { ...(this.#bans.get(peer) as BanRecord) } : undefined
  }

  /** Bans in force (expired ones dropped first), oldest first. O(bans). */
  bans(): BanRecord[] {
    this.#dropExpired()
    return [...this.#bans.values()].map((r) => ({ ...r }))
  }

  /** Number of bans in force (expired ones dropped first). O(bans). */
  get bannedCount(): number {
    this.#dropExpired()
    return this.#bans.size
  }

  #dropExpired(): void {
    const now = this.#deps.clock.now()
    for (const [peer, rec] of this.#bans) {
      if (rec.untilMs > now) continue
      this.#bans.delete(peer)
      this.#persist(() => this.#deps.bans.delete(peer))
    }
  }

  #penalize(peer: string, kind: InteractionKind): void {
    this.#deps.trust.recordInteraction(this.#deps.self, peer, kind)
    this.#deps.perf.record(peer, { ok: false })
  }

  /** Count a reject; true when it is the `rejectsToDisconnect`-th within `rejectWindowMs` (the count restarts). */
  #countReject(peer: string): boolean {
    const now = this.#deps.clock.now()
    const times = (this.#rejects.get(peer) ?? []).filter((t) => t > now - this.#o.rejectWindowMs)
    times.push(now)
    this.#rejects.delete(peer)
    if (times.length >= this.#o.rejectsToDisconnect) return true
    this.#rejects.set(peer, times)
    if (this.#rejects.size > this.#o.maxTrackedPeers) {
      this.#rejects.delete(this.#rejects.keys().next().value as string)
    }
    return false
  }

  #disconnect(peer: string): void {
    const listeners = [...this.#disconnectListeners]
    if (this.#deps.disconnect !== undefined) listeners.push(this.#deps.disconnect)
    for (const listener of listeners) {
      listener(peer).catch((err: unknown) => {
        this.#deps.logger.debug({ peer, err: (err as Error).message }, 'disconnect failed')
      })
    }
  }

  #persist(write: () => Promise<void>): void {
    const p = write()
      .catch((err: unknown) => {
        this.#deps.logger.warn({ err: (err as Error).message }, 'ban store write failed')
      })
      .finally(() => this.#writes.delete(p))
    this.#writes.add(p)
  }
}
