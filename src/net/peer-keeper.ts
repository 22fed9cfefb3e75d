/**
 * Keeps this node connected to at least `net.minConnections` peers, dialing out to peers of its
 * Kademlia routing table (k-buckets) when it has fewer.
 *
 * js-libp2p 3 has no autodialer (its `minConnections` went in libp2p 2), and a node's connections
 * are then only the bootstrap dials, the peers that dial it and those its DHT queries happened to open.
 * A public node soon has many (every peer that meets it in a query dials it), but a node behind a NAT
 * that nobody can dial keeps its 3 bootstrap connections. The storage area places shards on connected
 * peers, so such a node put every file on those 3 peers (RS(10,4) on 3 peers: losing one loses the
 * file), and its first get spent about 5.4 s of its 7.5 s to the first byte opening connections to the
 * holders (docs/BENCHMARKS.md, "Issue 22: WAN get at 80 ms, session 15"). Kubo keeps a low-water mark
 * of 32 connections for the same reason (go-libp2p connmgr).
 *
 * Every `intervalMs`, while fewer than `minConnections` peers are connected, {@link PeerKeeper} dials
 * up to `maxDialsPerRound` peers at once: the known peers XOR-closest to a random key (so the picks
 * spread over the key space, not only this node's neighbourhood), first from the routing table, then
 * from the peer store (kad-dht puts only peers it connected to in its k-buckets, so the table of a node
 * nobody dials holds little more than its bootstrap peers, while its lookups have learned the addresses
 * of many more), skipping banned peers, peers
 * known only through a relay (a kept connection must not hold a relay's slot), and peers whose last
 * dial failed, which wait `backoffMs`, doubled per failure up to `maxBackoffMs` (± 25 %). A round
 * that connected someone and left the node short is followed by another after `quickMs`, so a node
 * fills up in seconds after start rather than in minutes. A settled node costs one count per interval.
 */
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '../common/logger.ts'
import type { Random } from '../common/random.ts'
import { kadId, routingTableClosest, xorCompare } from './closest.ts'
import { isCircuitAddr } from './connections.ts'

/** The outcome of one dial, as counted (`onDial`). */
export type KeeperDialResult = 'ok' | 'failed'

/** What {@link PeerKeeper} needs. */
export interface PeerKeeperDeps {
  /** Peers (PeerId strings) this node holds an open connection to. */
  connected(): string[]
  /**
   * Up to `count` known peers XOR-closest to the kad id `key` (32 bytes): the routing table's, then
   * other peers the node learned of (a DHT query's closer peers, kept in libp2p's peer store).
   */
  candidates(key: Uint8Array, count: number): Promise<string[]>
  /**
   * Looks up the peers closest to the kad id `key` in the DHT (what it learns lands in the routing
   * table and the peer store); called when a round found too few peers to dial.
   */
  discover(key: Uint8Array, options: { signal: AbortSignal }): Promise<void>
  /** Whether `peer` has a known address this node can dial directly (not through a relay). */
  dialable(peer: string): Promise<boolean>
  /** Whether `peer` is banned (the trust area's decision). */
  isBanned(peer: string): boolean
  /** Opens a connection to `peer`; rejects when it could not. */
  dial(peer: string, options: { signal: AbortSignal }): Promise<void>
  /** Now, ms since the epoch (common/clock.ts). */
  now(): number
  random: Random
  logger: Logger
  /** Called after each dial (a metric). */
  onDial?: ((result: KeeperDialResult) => void) | undefined
}

/** Settings of {@link PeerKeeper}. */
export interface PeerKeeperOptions {
  /** Connected peers to keep at least; 0 turns the keeper off. Default 32. */
  minConnections: number
  /** How often the count is checked, ms. Default 10,000. */
  intervalMs?: number
  /** The wait before the next round after one that connected a peer and left the node short, ms. Default 1,000. */
  quickMs?: number
  /** Dials at once per round, at most. Default 8. */
  maxDialsPerRound?: number
  /** One dial's deadline, ms. Default 10,000. */
  dialTimeoutMs?: number
  /** Wait before dialing a peer again after its first failed dial, ms; doubled per failure. Default 30,000. */
  backoffMs?: number
  /** The longest such wait, ms. Default 1,800,000 (30 min). */
  maxBackoffMs?: number
  /** Peers whose failures are remembered, at most (the oldest forgotten first). Default 4,096. */
  maxRemembered?: number
  /** The shortest time between two DHT lookups for more peers, ms. Default 60,000. */
  discoverIntervalMs?: number
  /** One such lookup's deadline, ms. Default 30,000. */
  discoverTimeoutMs?: number
}

/** What one {@link PeerKeeper.round} did. */
export interface KeeperRound {
  /** Connected peers before the round. */
  connected: number
  /** Dials made, and how many of them connected. */
  dialed: number
  ok: number
}

/** See the file comment. {@link PeerKeeper.start} after libp2p started; {@link PeerKeeper.stop} before it stops. */
export class PeerKeeper {
  readonly #deps: PeerKeeperDeps
  readonly #o: Required<PeerKeeperOptions>
  /** Peer → consecutive failed dials and when it may be dialed again (ms). Insertion order: oldest first. */
  readonly #failed = new Map<string, { failures: number; retryAt: number }>()
  #timer: ReturnType<typeof setTimeout> | undefined
  #stopping = new AbortController()
  #running = false
  #inRound = false
  /** When the last DHT lookup for more peers started (the clock's ms), or -∞ before the first. */
  #discoveredAt = Number.NEGATIVE_INFINITY

  constructor(deps: PeerKeeperDeps, options: PeerKeeperOptions) {
    this.#deps = deps
    this.#o = {
      intervalMs: 10_000,
      quickMs: 1000,
      maxDialsPerRound: 8,
      dialTimeoutMs: 10_000,
      backoffMs: 30_000,
      maxBackoffMs: 1_800_000,
      maxRemembered: 4096,
      discoverIntervalMs: 60_000,
      discoverTimeoutMs: 30_000,
      ...options,
    }
  }

  /** Runs a round now, then every `intervalMs`. Does nothing when `minConnections` is 0. */
  start(): void {
    if (this.#running || this.#o.minConnections <= 0) return
    this.#running = true
    this.#stopping = new AbortController()
    this.#tick()
  }

  /** Stops the rounds and aborts dials under way. */
  stop(): void {
    this.#running = false
    this.#stopping.abort()
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Peers waiting out a backoff after failed dials (PeerId → failures). */
  backingOff(): Record<string, number> {
    const now = this.#deps.now()
    const out: Record<string, number> = {}
    for (const [p, f] of this.#failed) if (f.retryAt > now) out[p] = f.failures
    return out
  }

  #tick(): void {
    this.round().then(
      (r) => {
        const short = r.connected + r.ok < this.#o.minConnections
        this.#schedule(short && r.ok > 0 ? this.#o.quickMs : this.#o.intervalMs)
      },
      (err: unknown) => {
        this.#deps.logger.debug({ err: String(err) }, 'peer keeper round failed')
        this.#schedule(this.#o.intervalMs)
      },
    )
  }

  #schedule(ms: number): void {
    if (!this.#running) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#tick()
    }, ms)
    this.#timer.unref?.()
  }

  /** Up to `want` peers to dial: known, not connected, not banned, not backing off, reachable directly. */
  async #pick(key: Uint8Array, want: number, connected: Set<string>): Promise<string[]> {
    const now = this.#deps.now()
    const picks: string[] = []
    for (const p of await this.#deps.candidates(key, Math.max(64, want * 8))) {
      if (picks.length >= want) break
      if (connected.has(p) || this.#deps.isBanned(p)) continue
      const f = this.#failed.get(p)
      if (f !== undefined && f.retryAt > now) continue
      if (!(await this.#deps.dialable(p))) continue
      picks.push(p)
    }
    return picks
  }

  /**
   * One round: when fewer than `minConnections` peers are connected, dials up to `maxDialsPerRound`
   * of the routing table's peers at once (see the file comment for which) and waits for them.
   */
  async round(): Promise<KeeperRound> {
    const connectedPeers = this.#deps.connected()
    const connected = new Set(connectedPeers)
    const want = Math.min(this.#o.maxDialsPerRound, this.#o.minConnections - connected.size)
    if (want <= 0 || this.#inRound) return { connected: connected.size, dialed: 0, ok: 0 }
    this.#inRound = true
    try {
      const key = this.#deps.random.bytes(32)
      let picks = await this.#pick(key, want, connected)
      if (picks.length < want && this.#deps.now() - this.#discoveredAt >= this.#o.discoverIntervalMs) {
        // Too few known peers: a lookup of the same random key learns more (Kademlia's bucket refresh,
        // Maymounkov and Mazières 2002, section 2.3).
        this.#discoveredAt = this.#deps.now()
        const signal = AbortSignal.any([
          this.#stopping.signal,
          AbortSignal.timeout(this.#o.discoverTimeoutMs),
        ])
        try {
          await this.#deps.discover(key, { signal })
        } catch (err) {
          this.#deps.logger.debug({ err: String(err) }, 'peer keeper lookup failed')
        }
        if (this.#stopping.signal.aborted) return { connected: connected.size, dialed: 0, ok: 0 }
        picks = await this.#pick(key, want, connected)
      }
      const signal = AbortSignal.any([this.#stopping.signal, AbortSignal.timeout(this.#o.dialTimeoutMs)])
      const results = await Promise.allSettled(picks.map((p) => this.#deps.dial(p, { signal })))
      let ok = 0
      results.forEach((r, i) => {
        const p = picks[i] as string
        if (this.#stopping.signal.aborted) return
        this.#deps.onDial?.(r.status === 'fulfilled' ? 'ok' : 'failed')
        if (r.status === 'fulfilled') {
          ok++
          this.#failed.delete(p)
          return
        }
        const failures = (this.#failed.get(p)?.failures ?? 0) + 1
        const wait = Math.min(this.#o.maxBackoffMs, this.#o.backoffMs * 2 ** (failures - 1))
        this.#failed.delete(p)
        this.#failed.set(p, {
          failures,
          retryAt: this.#deps.now() + wait * (0.75 + this.#deps.random.next() / 2),
        })
        this.#deps.logger.debug({ peer: p, failures, err: String(r.reason) }, 'peer keeper dial failed')
      })
      while (this.#failed.size > this.#o.maxRemembered) {
        const oldest = this.#failed.keys().next().value
        if (oldest === undefined) break
        this.#failed.delete(oldest)
      }
      return { connected: connected.size, dialed: picks.length, ok }
    } finally {
      this.#inRound = false
    }
  }
}

/** What {@link knownPeersClosest} reads of libp2p. */
export interface KnownPeersHost {
  readonly peerId: PeerId
  readonly services: { dht?: unknown }
  readonly peerStore: {
    all(query: {
      filters: Array<(p: { addresses: Array<{ multiaddr: { toString(): string } }> }) => boolean>
    }): Promise<Array<{ id: PeerId }>>
  }
}

/**
 * {@link PeerKeeperDeps.candidates} of a libp2p host: up to `count` peers XOR-closest to the kad id
 * `key`, from kad-dht's routing table, then from the peer store's peers with an address that is not
 * through a relay; never the host itself.
 */
export async function knownPeersClosest(
  host: KnownPeersHost,
  key: Uint8Array,
  count: number,
): Promise<string[]> {
  const out = new Set(routingTableClosest(host.services.dht, key, count).map((p) => p.toString()))
  if (out.size < count) {
    const known = await host.peerStore.all({
      filters: [(p) => p.addresses.some((a) => !isCircuitAddr(a.multiaddr.toString()))],
    })
    const byDistance = known
      .map((p) => ({ id: p.id.toString(), d: kadId(p.id.toMultihash().bytes) }))
      .sort((a, b) => xorCompare(a.d, b.d, key))
    for (const { id } of byDistance) {
      if (out.size >= count) break
      out.add(id)
    }
  }
  out.delete(host.peerId.toString())
  return [...out]
}
