/**
 * Keeps a relay that grants reservations and then drops them from holding a node's relay discovery.
 *
 * @libp2p/circuit-relay-v2's discovery (`net.discoverRelays`) takes relays from the peer store, the most
 * recently dialed first, so a relay that accepts a reservation and hangs up soon after is picked again
 * and again (seen in test/net/relay-discovery.test.ts: 4 to 17 times before the node found the other
 * relay, and once not within 60 s). {@link RelayFlapGuard} watches which relays the node announces an
 * address through; a discovered relay whose reservation is gone within `minHoldMs` of its appearance
 * gets a strike, and dials to it are refused (the host's connection gater, `denyDialPeer`) for
 * `backoffMs` doubled per strike up to `maxBackoffMs`, so the discovery moves on to the next relay.
 * Configured relays (`net.relays`) are left alone: the relay watchdog (relay-watchdog.ts) keeps those,
 * with its own backoff, and a relay that restarts must not be shut out. State is bounded: at most
 * `maxTracked` relays, the oldest forgotten first.
 */
import type { Clock } from '../common/clock.ts'

/** Settings of {@link RelayFlapGuard}. */
export interface RelayFlapGuardOptions {
  /** The relays never refused: the configured ones (PeerId strings). */
  configured: readonly string[]
  /** A reservation lost sooner than this after it appeared is a strike, ms. Default 30,000. */
  minHoldMs?: number
  /** Refusal after the first strike, ms; doubled per further strike. Default 60,000. */
  backoffMs?: number
  /** The longest refusal, ms. Default 3,600,000 (1 h). */
  maxBackoffMs?: number
  /** Relays remembered at most. Default 256. */
  maxTracked?: number
  clock: Clock
}

interface RelayRecord {
  /** When the node's address through it appeared (undefined while none is announced). */
  since: number | undefined
  strikes: number
  /** Dials refused until then, ms since the epoch. */
  until: number
}

/** See the file comment. */
export class RelayFlapGuard {
  readonly #configured: ReadonlySet<string>
  readonly #minHoldMs: number
  readonly #backoffMs: number
  readonly #maxBackoffMs: number
  readonly #maxTracked: number
  readonly #clock: Clock
  readonly #relays = new Map<string, RelayRecord>()

  constructor(options: RelayFlapGuardOptions) {
    this.#configured = new Set(options.configured)
    this.#minHoldMs = options.minHoldMs ?? 30_000
    this.#backoffMs = options.backoffMs ?? 60_000
    this.#maxBackoffMs = options.maxBackoffMs ?? 3_600_000
    this.#maxTracked = options.maxTracked ?? 256
    this.#clock = options.clock
  }

  /**
   * The relays the node announces an address through now (PeerId strings), on every change of its
   * addresses. Returns the relays that got a strike.
   */
  update(held: readonly string[]): string[] {
    const now = this.#clock.now()
    const current = new Set(held)
    const struck: string[] = []
    for (const [peer, r] of this.#relays) {
      if (r.since === undefined || current.has(peer)) continue
      if (now - r.since < this.#minHoldMs) {
        r.strikes++
        r.until = now + Math.min(this.#maxBackoffMs, this.#backoffMs * 2 ** (r.strikes - 1))
        struck.push(peer)
      }
      r.since = undefined
    }
    for (const peer of current) {
      if (this.#configured.has(peer)) continue
      const r = this.#relays.get(peer)
      if (r === undefined) {
        this.#relays.set(peer, { since: now, strikes: 0, until: 0 })
        if (this.#relays.size > this.#maxTracked) {
          const oldest = this.#relays.keys().next().value
          if (oldest !== undefined) this.#relays.delete(oldest)
        }
      } else if (r.since === undefined) r.since = now
    }
    return struck
  }

  /** Whether dials to `peer` are refused now (a discovered relay in its backoff). */
  denied(peer: string): boolean {
    const r = this.#relays.get(peer)
    return r !== undefined && this.#clock.now() < r.until
  }
}
