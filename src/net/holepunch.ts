/**
 * What TCP hole punching (DCUtR, libp2p's "Direct Connection Upgrade through Relay", specs
 * relay/DCUtR.md) needs that js-libp2p does not give on its own:
 *
 * 1. **One local port for every outbound TCP dial** ({@link tcpFromDialPort}). A socket that dials
 *    from an ephemeral port gets a new port, and a new NAT mapping, per connection, so no peer can
 *    predict the address to punch to (js-libp2p issue #2620: its identify ignores observed TCP
 *    addresses for that reason). Dialing every connection from one port P makes a cone NAT
 *    (endpoint-independent mapping, RFC 4787 §4.1) map all of them to the same external address E:P',
 *    which every peer then observes, and a TCP simultaneous open (RFC 9293 §3.5) between two such
 *    ports passes both NATs. Linux allows several connected sockets on one local port when each sets
 *    SO_REUSEADDR (libuv does) and none listens on it, so P is not the listen port. A dial whose
 *    4-tuple is taken (a second connection to the same address, or one in TIME_WAIT) falls back to an
 *    ephemeral port.
 * 2. **The observed address** ({@link ObservedTcpAddrs}): identify tells each peer the address it sees
 *    us at; an outbound TCP address that observers at at least `minObservers` distinct IP addresses
 *    (IPv6: /64 prefixes) agree on is the NAT's stable mapping of P (go-libp2p's observed-address
 *    manager also counts observers by IP address, and asks for 4). A symmetric NAT shows each peer another
 *    port, so none is ever agreed on, and DCUtR is not attempted in vain. Observers are counted by
 *    address, not PeerId, because PeerIds cost nothing: Sybil peers on one host count once. Agreed
 *    addresses come most-observed first, since DCUtR's dials try them in that order: a false address
 *    reported by a few hosts comes after the one every honest peer sees.
 * 3. **DCUtR told about it** ({@link withPunchAddrs}): @libp2p/dcutr sends the addresses of
 *    `addressManager.getAddresses()`, which holds only addresses AutoNAT verified (dialable from
 *    outside: never so behind a NAT that filters). Its components get an address manager that adds the
 *    agreed observed addresses; the node's announced addresses (identify, the DHT, reachability) are
 *    left as they were.
 * 4. **One punch per peer, and more rounds** ({@link PunchCoordinator}): two nodes often hold two
 *    relayed connections to each other (each dialed the other through the relay), and DCUtR ran on
 *    both at once, in opposite roles, from the same two dial ports: the dials collided. One run per
 *    peer at a time, the lower PeerId's run kept; a connection still relayed after a run (no agreed
 *    observed address yet, every SYN refused) gets another round after 1, 2, 4 s (4 rounds at most).
 * 5. **No TIME_WAIT on the dial port** ({@link closesWithReset}): a closed connection's 4-tuple (dial
 *    port ↔ peer) stays in TIME_WAIT for 60 s on the side that closed first, and the next punch with
 *    the same peer could not use it (the dial fell back to an ephemeral port: a NAT mapping the peer
 *    does not know). Connections dialed from the dial port close with a RST (SO_LINGER 0).
 * 6. **A refused SYN is sent again** ({@link withPunchAddrs}): both sides dial when DCUtR's sync says
 *    (the responder half the relayed round trip after its Sync), but on a loaded host the two SYNs
 *    leave up to 150 ms apart (seen on the namespace topology, 2 cores, load 12), more than the one-way
 *    time between the homes: the early SYN reaches the other router before that router's own SYN
 *    left, the router answers RST (no mapping yet), and the late SYN then finds no socket waiting.
 *    Dialing again at once after ECONNREFUSED (up to {@link REFUSED_REDIALS} times) keeps a socket in
 *    SYN-SENT behind the early side's NAT when the late SYN arrives.
 */
import { type BlockList, createServer, type Socket } from 'node:net'
import type { Connection, PeerId, Transport } from '@libp2p/interface'
import { cidrList } from '../common/cidr.ts'
import type { Clock } from '../common/clock.ts'
import { systemRandom } from '../common/random.ts'
import { isCircuitAddr } from './connections.ts'
import { ipOfAddr, subnetKeys } from './gater.ts'

/** What {@link ObservedTcpAddrs} needs of a `peer:identify` event's detail. */
export interface IdentifyObservation {
  peerId: PeerId | { toString(): string }
  observedAddr?: { toString(): string } | undefined
  connection: Pick<Connection, 'direction' | 'remoteAddr'> & { status?: string }
}

/** Settings of {@link ObservedTcpAddrs}. */
export interface ObservedTcpAddrsOptions {
  /** Observers at distinct IP addresses (IPv6: /64) that must report one address before it is used. Default 2. */
  minObservers?: number
  /**
   * How long an observation counts after its connection closed, ms (while the connection is open it
   * counts: identify reports once per connection, and the NAT mapping lives as long as the flow).
   * Default 600,000 (10 min).
   */
  ttlMs?: number
  /** Addresses remembered at most (the oldest go first). Default 16. */
  maxAddrs?: number
  /** The clock (common/clock.ts): milliseconds since the epoch. */
  clock: Clock
}

const TCP_ADDR = /^\/ip[46]\/[^/]+\/tcp\/\d+$/

/**
 * The external TCP addresses peers observe this node's outbound connections at (identify's
 * `observedAddr`), and which of them enough distinct peers agree on (see the file comment).
 */
export class ObservedTcpAddrs {
  readonly #minObservers: number
  readonly #ttlMs: number
  readonly #maxAddrs: number
  readonly #clock: Clock
  /**
   * address → (observer PeerId → its group (IP address, IPv6 /64), last seen, ms, and the connection).
   * Insertion order: the oldest address first.
   */
  readonly #seen = new Map<string, Map<string, Observer>>()

  constructor(options: ObservedTcpAddrsOptions) {
    this.#minObservers = options.minObservers ?? 2
    this.#ttlMs = options.ttlMs ?? 600_000
    this.#maxAddrs = options.maxAddrs ?? 16
    this.#clock = options.clock
  }

  /**
   * Records one identify result: only an outbound, direct (not relayed) TCP connection's observed
   * `/ip4|ip6/H/tcp/N` counts (an inbound connection's observed address is the one the peer dialed).
   */
  record(obs: IdentifyObservation): void {
    if (obs.connection.direction !== 'outbound') return
    const remote = obs.connection.remoteAddr.toString()
    if (isCircuitAddr(remote) || !/\/tcp\/\d+/.test(remote) || /\/(ws|wss)(\/|$)/.test(remote)) return
    const addr = obs.observedAddr?.toString().replace(/\/p2p\/[^/]+$/, '')
    if (addr === undefined || !TCP_ADDR.test(addr)) return
    const observers = this.#seen.get(addr) ?? new Map<string, Observer>()
    this.#seen.delete(addr)
    observers.set(obs.peerId.toString(), {
      group: observerGroup(remote),
      at: this.#clock.now(),
      connection: obs.connection,
    })
    this.#seen.set(addr, observers)
    while (this.#seen.size > this.#maxAddrs) {
      const oldest = this.#seen.keys().next().value
      if (oldest === undefined) break
      this.#seen.delete(oldest)
    }
  }

  /**
   * The addresses that observers in at least `minObservers` distinct groups (IP address; IPv6 /64)
   * reported on a connection still open or within the last `ttlMs`, the most groups first (ties: the
   * most recently reported first).
   */
  agreed(): string[] {
    const since = this.#clock.now() - this.#ttlMs
    const out: Array<{ addr: string; groups: number; order: number }> = []
    let order = 0
    for (const [addr, observers] of this.#seen) {
      for (const [peer, o] of observers)
        if (o.at < since && o.connection.status !== 'open') observers.delete(peer)
      if (observers.size === 0) this.#seen.delete(addr)
      const groups = new Set([...observers.values()].map((o) => o.group)).size
      if (groups >= this.#minObservers) out.push({ addr, groups, order: order++ })
    }
    return out.sort((a, b) => b.groups - a.groups || b.order - a.order).map((o) => o.addr)
  }
}

/** One observer of an address in {@link ObservedTcpAddrs}. */
interface Observer {
  group: string
  at: number
  connection: { status?: string }
}

/**
 * The group an observer is counted in, from the remote address of our outbound connection to it: its
 * IPv4 address, or the /64 of its IPv6 address (one host or home network: gater.ts `subnetKeys`); any
 * other host (a DNS name) is its own group.
 */
export function observerGroup(remoteAddr: string): string {
  const ip = ipOfAddr(remoteAddr)
  const keys = ip === undefined ? undefined : subnetKeys(ip)
  if (keys === undefined) return /^\/[^/]+\/[^/]+/.exec(remoteAddr)?.[0] ?? remoteAddr
  return keys.family === 4 ? keys.ip : keys.narrow
}

/** How often a hole-punch dial answered by a RST is made again at once (about one round trip each). */
export const REFUSED_REDIALS = 8

/** Is `err` a TCP connection refused (ECONNREFUSED: a RST answered the SYN)? */
function isRefused(err: unknown): boolean {
  return (
    (err as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(String(err))
  )
}

/** The part of libp2p's address manager DCUtR reads. */
interface AddressManagerLike {
  getAddresses(): Array<{ toString(): string; encapsulate(s: string): unknown }>
}

/** The part of libp2p's transport manager {@link withPunchAddrs} dials with. */
interface TransportManagerLike {
  dial(ma: unknown, options?: Record<string, unknown>): Promise<unknown>
}

/**
 * libp2p components for @libp2p/dcutr (file comment, point 3), every other component the node's own:
 *
 * - `addressManager.getAddresses()` also returns the observed TCP addresses `extra()` gives (with
 *   `/p2p/<self>`), made by `toMultiaddr`;
 * - `connectionManager.openConnection(addrs, options)` with an array of addresses (DCUtR's hole-punch
 *   and unilateral dials) dials them one by one through the transport manager, outside libp2p's dial
 *   queue: a queued dial joins any dial to the same peer already under way (one the node's protocols
 *   start when they find only a relayed connection), which dials its own addresses first, late for a
 *   simultaneous open, and without DCUtR's `initiator: false`, so both sides would start Noise as
 *   initiators. The connection made is the node's like any other (the upgrader announces it).
 */
export function withPunchAddrs<C extends object>(
  components: C,
  extra: () => string[],
  toMultiaddr: (addr: string) => unknown,
  log?: (format: string, ...args: unknown[]) => void,
): C {
  const wrap = <T extends object>(target: T, name: string, fn: (t: T) => unknown): T =>
    new Proxy(target, {
      get(t, p, r) {
        if (p === name) return fn(t)
        const v = Reflect.get(t, p, r)
        return typeof v === 'function' ? v.bind(t) : v
      },
    })
  return new Proxy(components, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (prop === 'addressManager') {
        const peerId = String(Reflect.get(target, 'peerId', receiver))
        return wrap(value as AddressManagerLike, 'getAddresses', (t) => () => {
          const own = t.getAddresses()
          const have = new Set(own.map((a) => a.toString()))
          const added = extra()
            .map((a) => `${a}/p2p/${peerId}`)
            .filter((a) => !have.has(a))
            .map(toMultiaddr)
          return [...own, ...added]
        })
      }
      if (prop === 'connectionManager') {
        const transports = Reflect.get(target, 'transportManager', receiver) as TransportManagerLike
        const cm = value as { openConnection(a: unknown, o?: Record<string, unknown>): Promise<unknown> }
        return wrap(
          cm,
          'openConnection',
          (t) => async (addrs: unknown, options?: Record<string, unknown>) => {
            if (!Array.isArray(addrs)) return await t.openConnection(addrs, options)
            const errors: unknown[] = []
            const given = options?.signal as AbortSignal | undefined
            for (const ma of addrs) {
              // The transport hands the signal to the socket (net.connect's `signal`), which it would
              // destroy when DCUtR's 5 s timeout fires later: a signal of the dial alone, unlinked after.
              const dialing = new AbortController()
              const onAbort = (): void => dialing.abort(given?.reason)
              if (given?.aborted === true) onAbort()
              given?.addEventListener('abort', onAbort, { once: true })
              try {
                // Refused (a RST: our SYN reached the peer's router before the peer's own SYN left
                // it): dialed again at once from the same port, so that our socket is waiting when
                // the peer's SYN arrives (point 6).
                for (let refused = 0; ; refused++) {
                  try {
                    return await transports.dial(ma, { ...options, signal: dialing.signal })
                  } catch (err) {
                    if (!isRefused(err) || refused >= REFUSED_REDIALS || given?.aborted === true) throw err
                    log?.('hole punch dial to %s refused, again (%d)', String(ma), refused + 1)
                  }
                }
              } catch (err) {
                errors.push(err)
                log?.('hole punch dial to %s failed: %s', String(ma), String(err))
                if (given?.aborted === true) break
              } finally {
                given?.removeEventListener('abort', onAbort)
              }
            }
            throw new AggregateError(errors, `hole punch: every dial failed (${addrs.length} addresses)`)
          },
        )
      }
      return value
    },
  })
}

/** Error codes of a dial whose local port cannot be used for this destination (taken 4-tuple). */
const PORT_TAKEN = new Set(['EADDRINUSE', 'EADDRNOTAVAIL'])

/**
 * Wraps a TCP transport (@libp2p/tcp) so every outbound dial is made from local port `port()` (the
 * file comment, point 1); a dial refused for that port (EADDRINUSE, EADDRNOTAVAIL) is retried from an
 * ephemeral port. `port()` returning 0 leaves dials as they are. A connection dialed from the port is
 * closed with a reset (point 5), so no TIME_WAIT holds its 4-tuple.
 */
export function tcpFromDialPort<C>(
  factory: (components: C) => Transport,
  port: () => number,
): (components: C) => Transport {
  return (components) => {
    const transport = factory(components)
    const dial = transport.dial.bind(transport)
    transport.dial = async (ma, given) => {
      const p = port()
      if (p === 0) return await dial(ma, upgradedAs(given, false))
      try {
        return await dial(ma, { ...upgradedAs(given, true), localPort: p } as typeof given)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        const taken =
          (code !== undefined && PORT_TAKEN.has(code)) || /EADDRINUSE|EADDRNOTAVAIL/.test(String(err))
        if (!taken || given.signal?.aborted === true) throw err
        return await dial(ma, upgradedAs(given, false))
      }
    }
    return transport
  }
}

/** What {@link closesWithReset} reads of @libp2p/tcp's connection (its `socket` is not in the types). */
interface TcpMaConn {
  direction: string
  socket?: Socket
  sendClose?: (options?: { signal?: AbortSignal }) => Promise<void>
}

/**
 * Dial options whose upgrader adjusts the new socket's connection before upgrading it:
 *
 * - for a dial with `initiator: false` (DCUtR's side B of a TCP simultaneous open) it is marked
 *   `inbound`: libp2p's upgrader then runs multistream-select and Noise as the responder, but yamux
 *   picks its role from the socket's own direction (`outbound` for any dial), so both ends would be
 *   yamux clients and the first stream fails ("Both endpoints are clients");
 * - with `reset` (a dial from the dial port) it closes with a reset ({@link closesWithReset}).
 */
function upgradedAs<O extends { initiator?: boolean; upgrader: unknown }>(options: O, reset: boolean): O {
  if (options.initiator !== false && !reset) return options
  const upgrader = options.upgrader as {
    upgradeOutbound(maConn: TcpMaConn, opts: unknown): Promise<unknown>
  }
  return {
    ...options,
    upgrader: new Proxy(upgrader, {
      get(t, p, r) {
        if (p !== 'upgradeOutbound') {
          const v = Reflect.get(t, p, r)
          return typeof v === 'function' ? v.bind(t) : v
        }
        return async (maConn: TcpMaConn, opts: unknown) => {
          if (options.initiator === false) maConn.direction = 'inbound'
          if (reset) closesWithReset(maConn)
          return await t.upgradeOutbound(maConn, opts)
        }
      },
    }),
  }
}

/**
 * Makes a TCP connection's close abortive (SO_LINGER 0, as go-libp2p's TCP transport does): once the
 * bytes libp2p wrote have left Node's buffer, `resetAndDestroy()` sends a RST instead of a FIN, so the
 * socket skips TIME_WAIT (60 s on Linux) and its 4-tuple (dial port ↔ the peer's address) is free for
 * the next hole punch with the same peer at once (point 5). libp2p closes a connection after its
 * streams and the muxer closed, so nothing that was still to be read is lost.
 */
export function closesWithReset(maConn: TcpMaConn): void {
  const socket = maConn.socket
  if (socket === undefined || typeof socket.resetAndDestroy !== 'function') return
  maConn.sendClose = async (options) => {
    if (socket.destroyed) return
    if (socket.writableLength > 0) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          options?.signal?.removeEventListener('abort', done)
          resolve()
        }
        socket.once('drain', done)
        socket.once('close', done)
        options?.signal?.addEventListener('abort', done, { once: true })
      })
    }
    if (!socket.destroyed) socket.resetAndDestroy()
  }
}

/**
 * A free TCP port on `host` for {@link tcpFromDialPort}: the kernel's pick for a listener on port 0,
 * closed at once (libuv binds with SO_REUSEADDR, so the dials can take it after).
 */
export async function pickDialPort(host = '0.0.0.0'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen({ port: 0, host }, () => {
      const a = srv.address()
      const p = typeof a === 'object' && a !== null ? a.port : 0
      srv.close(() => resolve(p))
    })
  })
}

/** What {@link PrivateDialFilter} reads of the host's interfaces (`os.networkInterfaces()` is one). */
export type InterfacesSource = () => NodeJS.Dict<Array<{ cidr: string | null }>>

/**
 * Refuses dials to a private or loopback address (reachability.ts `isPublicAddr` false) that lies in
 * none of this host's own networks (its interfaces' CIDRs): a peer behind another NAT announces its home
 * address (10.0.2.2), which cannot be reached from here. Dialing it costs nothing over TCP
 * (ENETUNREACH at once) but a whole handshake timeout over QUIC (UDP has no error to wait for), and
 * libp2p dials a peer's addresses one after another in one dial job, which a DCUtR dial joins: the
 * hole punch's simultaneous open would come seconds late. Loopback and LAN peers (same subnet) are
 * dialed as before. The interfaces are read at most every `refreshMs` (default 10 s).
 */
export class PrivateDialFilter {
  readonly #interfaces: InterfacesSource
  readonly #refreshMs: number
  readonly #isPublic: (addr: string) => boolean
  #local: { list: BlockList; at: number } | undefined

  readonly #clock: Clock

  constructor(
    isPublic: (addr: string) => boolean,
    interfaces: InterfacesSource,
    clock: Clock,
    refreshMs = 10_000,
  ) {
    this.#isPublic = isPublic
    this.#interfaces = interfaces
    this.#clock = clock
    this.#refreshMs = refreshMs
  }

  /** True when a dial to `addr` (a multiaddr string) should be refused (see the class comment). */
  deny(addr: string): boolean {
    if (isCircuitAddr(addr)) return false
    const m = /^\/(ip4|ip6)\/([^/]+)/.exec(addr)
    if (m === null || m[1] === undefined || m[2] === undefined) return false
    if (this.#isPublic(addr)) return false
    return !this.#localNets().check(m[2], m[1] === 'ip4' ? 'ipv4' : 'ipv6')
  }

  #localNets(): BlockList {
    const now = this.#clock.now()
    if (this.#local === undefined || now - this.#local.at > this.#refreshMs) {
      const cidrs: string[] = []
      for (const list of Object.values(this.#interfaces())) {
        for (const i of list ?? []) if (i.cidr !== null) cidrs.push(i.cidr)
      }
      this.#local = { list: cidrList(cidrs), at: now }
    }
    return this.#local.list
  }
}

/**
 * libp2p components for @libp2p/autonat whose `connectionManager.openConnection(multiaddr)` (one
 * address: the AutoNAT server's dial-back) always makes a new connection (`force`). Without it the
 * server gets back the connection the request came on, then fails the check ("Unexpected remote
 * address": its remote address is the requester's dial port, not the address under test) or reports
 * success for an address it never dialed and closes that very connection, losing the reply. Seen on
 * the namespace topology: no public node was ever confirmed. Dials by peer or address list (AutoNAT's
 * random walk) are left as they are.
 */
export function withFreshDialBack<C extends object>(components: C): C {
  return new Proxy(components, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (prop !== 'connectionManager') return value
      const cm = value as { openConnection(a: unknown, o?: Record<string, unknown>): Promise<unknown> }
      return new Proxy(cm, {
        get(t, p, r) {
          const v = Reflect.get(t, p, r)
          if (p !== 'openConnection') return typeof v === 'function' ? v.bind(t) : v
          return async (addr: unknown, options?: Record<string, unknown>) => {
            const single =
              typeof addr === 'object' && addr !== null && 'bytes' in addr && !Array.isArray(addr)
            return await t.openConnection(addr, single ? { ...options, force: true } : options)
          }
        },
      })
    },
  })
}

/** @libp2p/dcutr's protocol id (its `multicodec`). */
export const DCUTR_PROTOCOL = '/libp2p/dcutr'

/** The method of @libp2p/dcutr's service that runs side B on a relayed connection (not in its types). */
export interface DcutrRunner {
  upgradeInbound(connection: unknown): Promise<void>
}

/** `service` whose `stop()` also calls `onStop` (after the service's own). */
export function stopsWith<S extends object>(service: S, onStop: () => void): S {
  const own = (service as { stop?: () => unknown }).stop
  Object.defineProperty(service, 'stop', {
    configurable: true,
    value: async () => {
      try {
        await own?.call(service)
      } finally {
        onStop()
      }
    },
  })
  return service
}

/** What {@link PunchCoordinator} reads of a libp2p connection. */
export interface PunchConnection {
  remotePeer: { toString(): string }
  remoteAddr: { toString(): string }
  direction: 'inbound' | 'outbound'
  status: string
}

/** Outcome of one DCUtR round of a {@link PunchCoordinator}, as counted (`onRound`). */
export type PunchRoundResult = 'direct' | 'failed' | 'busy' | 'yielded'

/** Settings and hooks of a {@link PunchCoordinator}. */
export interface PunchCoordinatorOptions {
  /** This node's PeerId (string): of two nodes punching each other at once, the lower one's run goes on. */
  self: string
  /** The node's connections to `peer` (libp2p `getConnections`). */
  connections(peer: string): PunchConnection[]
  /**
   * Runs DCUtR as side B on a relayed inbound connection (@libp2p/dcutr `upgradeInbound`: its 3 attempts)
   * and settles when it is over, succeeded or not.
   */
  upgrade(connection: PunchConnection): Promise<void>
  /** DCUtR rounds per relayed connection at most, the first included. Default 4. */
  rounds?: number
  /** Wait before the second round, ms; doubled for each later one (1, 2, 4 s: past conntrack's 10 s CLOSE). Default 1,000. */
  backoffMs?: number
  /** Uniform in [0, 1): each wait is scaled by 0.75 to 1.25 with it. Default common/random.ts `systemRandom`. */
  random?: () => number
  /** Called after each round with its outcome (a metric). */
  onRound?: ((result: PunchRoundResult) => void) | undefined
  /** Debug log (libp2p's logger). */
  log?: ((format: string, ...args: unknown[]) => void) | undefined
}

/**
 * One hole punch per peer at a time, and more rounds while a connection stays relayed (the file
 * comment, point 4). @libp2p/dcutr starts a run (side B) for every relayed inbound connection once
 * identify says the peer speaks DCUtR, and answers every run the peer starts (side A). Two nodes often
 * hold two relayed connections to each other at once (each dialed the other through the relay: a
 * protocol of each, or libp2p redialing a kad-dht keep-alive peer), so each ran B on one and A on the
 * other, and the four dials of two simultaneous opens from the same two dial ports collided (seen on
 * the namespace topology: every dial of all 3 attempts failed). Here:
 *
 * - `onRelayed` (the DCUtR topology's `onConnect`) starts B unless the peer is already reached
 *   directly or a run with it (A or B) is under way; then it is tried again when that run ends.
 * - `onRequest` (the DCUtR protocol handler, side A) refuses a run while this node runs B with the same
 *   peer and has the lower PeerId (the peer's B then fails at once, before dialing, and the peer does
 *   the same with ours), and while a direct connection exists (a dial on its 4-tuple would fail).
 * - After a B run that left the connection relayed (no agreed observed address yet on one side, every
 *   simultaneous open refused), another round after `backoffMs` × 2^(round − 1) (± 25 %), up to
 *   `rounds` per connection.
 */
export class PunchCoordinator {
  readonly #o: Required<Omit<PunchCoordinatorOptions, 'log' | 'onRound'>> &
    Pick<PunchCoordinatorOptions, 'log' | 'onRound'>
  /** Peer → the side of the run under way with it. */
  readonly #active = new Map<string, 'A' | 'B'>()
  /** Relayed connections waiting for a round: connection → the round it will be. */
  readonly #waiting = new Map<PunchConnection, number>()
  readonly #timers = new Set<ReturnType<typeof setTimeout>>()
  #stopped = false

  constructor(options: PunchCoordinatorOptions) {
    this.#o = { rounds: 4, backoffMs: 1000, random: () => systemRandom.next(), ...options }
  }

  /** Runs under way (peers). */
  get active(): number {
    return this.#active.size
  }

  /** A relayed connection opened and identified (DCUtR's topology `onConnect`): maybe start B. */
  onRelayed(connection: PunchConnection): void {
    if (connection.direction !== 'inbound' || !isCircuitAddr(connection.remoteAddr.toString())) return
    this.#round(connection, 1)
  }

  /**
   * A peer started a run (side A): `run` answers it unless it must be refused (class comment), in which
   * case `refuse` is called instead. Settles when the run is over.
   */
  async onRequest(connection: PunchConnection, run: () => Promise<void>, refuse: () => void): Promise<void> {
    const peer = connection.remotePeer.toString()
    const busy = this.#active.get(peer)
    if (this.#direct(peer) || busy === 'A' || (busy === 'B' && this.#o.self < peer)) {
      this.#o.log?.('hole punch with %s: refusing its run (%s)', peer, busy ?? 'direct')
      this.#o.onRound?.('yielded')
      refuse()
      return
    }
    this.#active.set(peer, 'A')
    try {
      await run()
    } finally {
      this.#active.delete(peer)
      this.#resume(peer)
    }
  }

  /** Clears every pending round (libp2p stops). */
  stop(): void {
    this.#stopped = true
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
    this.#waiting.clear()
  }

  #direct(peer: string): boolean {
    return this.#o
      .connections(peer)
      .some((c) => c.status === 'open' && !isCircuitAddr(c.remoteAddr.toString()))
  }

  #round(connection: PunchConnection, round: number): void {
    if (this.#stopped || connection.status !== 'open') return
    const peer = connection.remotePeer.toString()
    if (this.#direct(peer)) return
    if (this.#active.has(peer)) {
      // Tried again when the run under way ends (#resume), if the connection is still relayed then.
      this.#waiting.set(connection, round)
      this.#o.onRound?.('busy')
      return
    }
    this.#active.set(peer, 'B')
    this.#o.log?.('hole punch with %s: round %d of %d', peer, round, this.#o.rounds)
    void this.#o
      .upgrade(connection)
      .catch((err: unknown) => this.#o.log?.('hole punch with %s: %s', peer, String(err)))
      .finally(() => {
        this.#active.delete(peer)
        const direct = this.#direct(peer)
        this.#o.onRound?.(direct ? 'direct' : 'failed')
        if (!direct && round < this.#o.rounds) this.#later(connection, round + 1)
        this.#resume(peer)
      })
  }

  #later(connection: PunchConnection, round: number): void {
    if (this.#stopped) return
    const ms = this.#o.backoffMs * 2 ** (round - 2) * (0.75 + this.#o.random() / 2)
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      this.#round(connection, round)
    }, ms)
    timer.unref?.()
    this.#timers.add(timer)
  }

  /** A run with `peer` ended: start the rounds that waited for it (at most one runs, the others wait again). */
  #resume(peer: string): void {
    for (const [connection, round] of [...this.#waiting]) {
      if (connection.remotePeer.toString() !== peer) continue
      this.#waiting.delete(connection)
      this.#round(connection, round)
    }
  }
}

/** The part of libp2p's registrar {@link withPunchCoordinator} wraps. */
interface RegistrarLike {
  register(protocol: string, topology: { onConnect?(peer: unknown, conn: unknown): void }): Promise<string>
  handle(
    protocol: string,
    handler: (stream: unknown, conn: unknown) => unknown,
    options?: unknown,
  ): Promise<void>
}

/**
 * libp2p components for @libp2p/dcutr whose registrar hands the DCUtR topology's `onConnect` and the
 * protocol handler of `protocol` to `coordinator` ({@link PunchCoordinator}); other protocols pass.
 */
export function withPunchCoordinator<C extends object>(
  components: C,
  protocol: string,
  coordinator: PunchCoordinator,
): C {
  return new Proxy(components, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (prop !== 'registrar') return value
      const registrar = value as RegistrarLike
      return new Proxy(registrar, {
        get(t, p, r) {
          const v = Reflect.get(t, p, r)
          if (p === 'register')
            return async (proto: string, topology: { onConnect?(peer: unknown, conn: unknown): void }) =>
              await t.register(
                proto,
                proto !== protocol
                  ? topology
                  : {
                      ...topology,
                      onConnect: (_peer: unknown, conn: unknown) =>
                        coordinator.onRelayed(conn as PunchConnection),
                    },
              )
          if (p === 'handle')
            return async (
              proto: string,
              handler: (stream: unknown, conn: unknown) => unknown,
              options?: unknown,
            ) =>
              await t.handle(
                proto,
                proto !== protocol
                  ? handler
                  : async (stream: unknown, conn: unknown) =>
                      await coordinator.onRequest(
                        conn as PunchConnection,
                        async () => {
                          await handler(stream, conn)
                        },
                        () =>
                          (stream as { abort(err: Error): void }).abort(
                            new Error('hole punch already under way'),
                          ),
                      ),
                options,
              )
          return typeof v === 'function' ? v.bind(t) : v
        },
      })
    },
  })
}
