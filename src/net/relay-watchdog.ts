/**
 * Keeps the reservations on the configured relays (`net.relays`) held. @libp2p/circuit-relay-v2 makes
 * a configured relay's reservation once, when libp2p listens on `<relay>/p2p-circuit` at start, and
 * renews it before it expires; it never tries again after that first dial failed (its listener gives
 * up), nor after the relay restarted (the connection closed, the reservation and the relayed address are
 * dropped). A node behind a NAT is then unreachable for new peers until it restarts: seen in about 1 of
 * 20 restarts on the namespace topology (bench/holepunch.ts `--fresh`).
 *
 * {@link RelayWatchdog} checks every `checkMs` that the node announces an address through each relay
 * and, while it does not, listens on that relay's `/p2p-circuit` address again, with exponential
 * backoff (`backoffMs`, doubled up to `maxBackoffMs`, ± 25 %), one attempt per relay at a time; a
 * change of the node's own addresses (`self:peer:update`, as when a reservation is dropped) checks at
 * once.
 * {@link relayWatchdogService} runs it as a libp2p service (it needs the transport manager, which
 * libp2p's public API does not give): the attempt calls `listen` again on the circuit relay listener
 * libp2p made for that relay at start (one listener per relay, so nothing accumulates), or on a new one
 * when there is none.
 */
import type { AbortOptions } from '@libp2p/interface'
import { systemRandom } from '../common/random.ts'

/** The outcome of one reservation attempt, as counted (`onAttempt`). */
export type ReservationAttemptResult = 'ok' | 'failed'

/** Settings and hooks of a {@link RelayWatchdog}. */
export interface RelayWatchdogOptions {
  /** The relays' listen addresses, `<relay multiaddr with /p2p/ID>/p2p-circuit`. */
  relays: readonly string[]
  /** Does the node announce an address through the relay with this PeerId (string)? */
  held(relay: string): boolean
  /** Makes a reservation on the relay of `circuitAddr` (listens on it); rejects when it failed. */
  reserve(circuitAddr: string, options: AbortOptions): Promise<void>
  /** How often a held reservation is checked, ms. Default 10,000. */
  checkMs?: number
  /** Wait after the first failed attempt, ms; doubled after each further failure. Default 1,000. */
  backoffMs?: number
  /** The longest wait between attempts, ms. Default 60,000. */
  maxBackoffMs?: number
  /** One attempt's deadline, ms. Default 15,000. */
  attemptTimeoutMs?: number
  /** Uniform in [0, 1): each wait after a failure is scaled by 0.75 to 1.25. Default common/random.ts `systemRandom`. */
  random?: () => number
  /** Called after each attempt (a metric). */
  onAttempt?: ((relay: string, result: ReservationAttemptResult) => void) | undefined
  /** Debug log. */
  log?: ((format: string, ...args: unknown[]) => void) | undefined
}

/** The PeerId (string) of the relay a `<relay>/p2p/ID/p2p-circuit` address names; undefined if none. */
export function relayPeerOf(circuitAddr: string): string | undefined {
  return /\/p2p\/([^/]+)\/p2p-circuit\/?$/.exec(circuitAddr)?.[1]
}

interface RelayState {
  addr: string
  peer: string
  failures: number
  attempting: boolean
  timer: ReturnType<typeof setTimeout> | undefined
}

/** Re-reserves the configured relays' slots while they are missing (the file comment). */
export class RelayWatchdog {
  readonly #o: Required<Omit<RelayWatchdogOptions, 'onAttempt' | 'log'>> &
    Pick<RelayWatchdogOptions, 'onAttempt' | 'log'>
  readonly #relays: RelayState[]
  #stopping = new AbortController()
  #running = false

  constructor(options: RelayWatchdogOptions) {
    this.#o = {
      checkMs: 10_000,
      backoffMs: 1000,
      maxBackoffMs: 60_000,
      attemptTimeoutMs: 15_000,
      random: () => systemRandom.next(),
      ...options,
    }
    this.#relays = []
    for (const addr of options.relays) {
      const peer = relayPeerOf(addr)
      if (peer === undefined) continue
      this.#relays.push({ addr, peer, failures: 0, attempting: false, timer: undefined })
    }
  }

  /** Consecutive failed attempts per relay (PeerId string). */
  failures(): Record<string, number> {
    return Object.fromEntries(this.#relays.map((r) => [r.peer, r.failures]))
  }

  /** Checks every relay now, then every `checkMs`. */
  start(): void {
    if (this.#running) return
    this.#running = true
    this.#stopping = new AbortController()
    for (const r of this.#relays) this.#check(r)
  }

  /**
   * Checks now the relays not backing off after a failure (called when the node's addresses change:
   * a reservation dropped because the relay's connection closed is then made again at once).
   */
  poke(): void {
    for (const r of this.#relays) if (r.failures === 0 && r.timer !== undefined) this.#check(r)
  }

  /** Stops the checks and aborts attempts under way. */
  stop(): void {
    this.#running = false
    this.#stopping.abort()
    for (const r of this.#relays) {
      if (r.timer !== undefined) clearTimeout(r.timer)
      r.timer = undefined
    }
  }

  #schedule(r: RelayState, ms: number): void {
    if (!this.#running) return
    if (r.timer !== undefined) clearTimeout(r.timer)
    r.timer = setTimeout(() => {
      r.timer = undefined
      this.#check(r)
    }, ms)
    r.timer.unref?.()
  }

  #check(r: RelayState): void {
    if (!this.#running || r.attempting) return
    if (this.#o.held(r.peer)) {
      r.failures = 0
      this.#schedule(r, this.#o.checkMs)
      return
    }
    r.attempting = true
    this.#o.log?.('relay %s: no reservation, reserving (after %d failures)', r.peer, r.failures)
    const signal = AbortSignal.any([this.#stopping.signal, AbortSignal.timeout(this.#o.attemptTimeoutMs)])
    this.#o
      .reserve(r.addr, { signal })
      .then(
        () => {
          const ok = this.#o.held(r.peer)
          this.#o.onAttempt?.(r.peer, ok ? 'ok' : 'failed')
          return ok
        },
        (err: unknown) => {
          this.#o.log?.('relay %s: reservation failed: %s', r.peer, String(err))
          this.#o.onAttempt?.(r.peer, 'failed')
          return false
        },
      )
      .then((ok) => {
        r.attempting = false
        if (ok) {
          r.failures = 0
          this.#schedule(r, this.#o.checkMs)
          return
        }
        r.failures++
        const wait = Math.min(this.#o.maxBackoffMs, this.#o.backoffMs * 2 ** (r.failures - 1))
        this.#schedule(r, wait * (0.75 + this.#o.random() / 2))
      })
  }
}

/** What {@link relayWatchdogService} reads of libp2p's components. */
export interface RelayWatchdogComponents {
  addressManager: { getAddresses(): Array<{ toString(): string }> }
  transportManager: {
    getListeners(): unknown[]
    listen(addrs: unknown[]): Promise<void>
  }
  logger: { forComponent(name: string): (format: string, ...args: unknown[]) => void }
  events: {
    addEventListener(type: 'self:peer:update', fn: () => void): void
    removeEventListener(type: 'self:peer:update', fn: () => void): void
  }
}

/** A circuit relay listener as @libp2p/circuit-relay-v2 makes it (not exported: recognised by shape). */
interface CircuitListenerLike {
  reservationStore: unknown
  relay?: { toString(): string } | undefined
  listen(addr: unknown): Promise<void>
}

function isCircuitListener(l: unknown): l is CircuitListenerLike {
  return typeof l === 'object' && l !== null && 'reservationStore' in l && 'listen' in l
}

/**
 * A libp2p service factory running a {@link RelayWatchdog} over `relays` (circuit listen addresses)
 * from libp2p's `afterStart` to its `stop`. `toMultiaddr` parses an address (@multiformats/multiaddr).
 */
export function relayWatchdogService(
  relays: readonly string[],
  toMultiaddr: (addr: string) => unknown,
  options: Omit<RelayWatchdogOptions, 'relays' | 'held' | 'reserve'> = {},
): (components: RelayWatchdogComponents) => { start(): void; afterStart(): void; stop(): void } {
  return (components) => {
    const log = components.logger.forComponent('libp2p:circuit-relay:nodus-watchdog')
    const watchdog = new RelayWatchdog({
      log,
      ...options,
      relays,
      held: (peer) =>
        components.addressManager
          .getAddresses()
          .some((a) => a.toString().includes(`/p2p/${peer}/p2p-circuit`)),
      reserve: async (addr, { signal }) => {
        const peer = relayPeerOf(addr)
        const listeners = components.transportManager.getListeners().filter(isCircuitListener)
        // The listener that held this relay, else one that never got any (its first attempt failed).
        const listener =
          listeners.find((l) => l.relay?.toString() === peer) ?? listeners.find((l) => l.relay === undefined)
        const attempt =
          listener === undefined
            ? components.transportManager.listen([toMultiaddr(addr)])
            : listener.listen(toMultiaddr(addr))
        await new Promise<void>((resolve, reject) => {
          const onAbort = (): void => reject(signal?.reason)
          signal?.addEventListener('abort', onAbort, { once: true })
          attempt.then(resolve, reject).finally(() => signal?.removeEventListener('abort', onAbort))
        })
      },
    })
    const poke = (): void => watchdog.poke()
    return {
      start: () => {},
      afterStart: () => {
        watchdog.start()
        components.events.addEventListener('self:peer:update', poke)
      },
      stop: () => {
        components.events.removeEventListener('self:peer:update', poke)
        watchdog.stop()
      },
    }
  }
}
