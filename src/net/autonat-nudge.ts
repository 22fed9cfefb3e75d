/**
 * Asks connected peers again to dial back an address AutoNAT has not tested yet.
 *
 * @libp2p/autonat (AutoNAT v1, libp2p specs autonat/autonat-v1.md) tests this node's unverified public
 * addresses only when a new peer that speaks AutoNAT connects (its topology's `onConnect`), and its
 * random walk dials peers it is already connected to, which opens nothing new. An address that appears
 * after the node has met its peers (a UPnP port mapping made a few seconds after start, a new listen
 * address) is then never tested in a small network: the node stays `relayed` although its router
 * forwards the port (seen on the namespace topology with a UPnP router). {@link AutoNatNudge} checks
 * every `intervalMs` for an address waiting for its test (public, direct, unverified, its retry time
 * passed) and hands up to `maxPeers` open direct connections to peers that speak AutoNAT to the
 * service's own `verifyExternalAddresses`, which picks the address, asks the peer and confirms or
 * refutes it by the library's rules (one success for a listen or mapped address). Nothing happens while
 * every address is tested, so a settled node costs one scan per interval.
 */
import type { Logger } from '../common/logger.ts'
import { isCircuitAddr } from './connections.ts'
import { isPublicAddr } from './reachability.ts'

/** The AutoNAT v1 protocol id: peers that speak it can test our addresses. */
export const AUTONAT_PROTOCOL = '/libp2p/autonat/1.0.0'

/** One of this node's addresses as libp2p's address manager holds it (`getAddressesWithMetadata`). */
export interface NudgeAddress {
  multiaddr: { toString(): string }
  verified: boolean
  /** Until when the last result stands, ms since the epoch; an expired unverified address is waiting for a test. */
  expires: number
}

/** What {@link AutoNatNudge} needs of a connection. */
export interface NudgeConnection {
  remotePeer: { toString(): string }
  remoteAddr: { toString(): string }
  status: string
  /** Set on a relayed (limited) connection. */
  limits?: unknown
}

/** What {@link AutoNatNudge} needs. */
export interface AutoNatNudgeDeps<C extends NudgeConnection> {
  /** This node's addresses with their verification state. */
  addresses(): NudgeAddress[]
  /** Open connections. */
  connections(): C[]
  /** Whether `peer` (PeerId string) speaks AutoNAT (identify's protocol list). */
  speaksAutonat(peer: string): boolean
  /** @libp2p/autonat's `verifyExternalAddresses(connection)`. */
  verify(connection: C): Promise<void>
  /** Now, ms since the epoch (common/clock.ts). */
  now(): number
  logger: Logger
}

/** Settings of {@link AutoNatNudge}. */
export interface AutoNatNudgeOptions {
  /** How often to look for an untested address, ms. Default 10,000. */
  intervalMs?: number
  /** Connections handed to AutoNAT per look, at most. Default 3. */
  maxPeers?: number
}

/** See the file comment. Call {@link AutoNatNudge.start} after libp2p started; {@link AutoNatNudge.stop} before it stops. */
export class AutoNatNudge<C extends NudgeConnection> {
  readonly #deps: AutoNatNudgeDeps<C>
  readonly #intervalMs: number
  readonly #maxPeers: number
  #timer: ReturnType<typeof setInterval> | undefined
  /** Where the next look starts in the connection list, so every peer gets its turn. */
  #offset = 0

  constructor(deps: AutoNatNudgeDeps<C>, options: AutoNatNudgeOptions = {}) {
    this.#deps = deps
    this.#intervalMs = options.intervalMs ?? 10_000
    this.#maxPeers = options.maxPeers ?? 3
  }

  /** The public, direct addresses waiting for an AutoNAT test now. */
  pending(): string[] {
    const now = this.#deps.now()
    return this.#deps
      .addresses()
      .filter((a) => !a.verified && a.expires <= now)
      .map((a) => a.multiaddr.toString())
      .filter((a) => !isCircuitAddr(a) && isPublicAddr(a))
  }

  /**
   * One look: when an address waits for a test, hands up to `maxPeers` open, direct connections to
   * peers that speak AutoNAT (one each, in turn) to AutoNAT. Returns how many it handed over.
   */
  tick(): number {
    if (this.pending().length === 0) return 0
    const seen = new Set<string>()
    const candidates = this.#deps.connections().filter((c) => {
      const peer = c.remotePeer.toString()
      if (c.status !== 'open' || c.limits !== undefined || isCircuitAddr(c.remoteAddr.toString()))
        return false
      if (seen.has(peer) || !this.#deps.speaksAutonat(peer)) return false
      seen.add(peer)
      return true
    })
    if (candidates.length === 0) return 0
    const n = Math.min(this.#maxPeers, candidates.length)
    const start = this.#offset % candidates.length
    this.#offset = start + n
    for (let i = 0; i < n; i++) {
      const c = candidates[(start + i) % candidates.length] as C
      this.#deps.verify(c).catch((err: unknown) => {
        this.#deps.logger.debug(
          { peer: c.remotePeer.toString(), err: (err as Error).message },
          'AutoNAT re-check failed',
        )
      })
    }
    return n
  }

  /** Looks every `intervalMs` until {@link AutoNatNudge.stop}. Idempotent. */
  start(): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => this.tick(), this.#intervalMs)
    this.#timer.unref()
  }

  /** Stops looking. Idempotent. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }
}
