/**
 * The net area's factory (the composition seam of docs/ARCHITECTURE.md): the libp2p host, the bulk
 * channel, which peers speak which protocol (learned by identify), and the bootstrap dials.
 */
import type { GossipSub, GossipsubOpts } from '@libp2p/gossipsub'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Clock } from '../common/clock.ts'
import { NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import { type Random, systemRandom } from '../common/random.ts'
import { AUTONAT_PROTOCOL, AutoNatNudge } from './autonat-nudge.ts'
import { BulkChannel, type BulkHandler, DEFAULT_BULK_OPTIONS } from './bulk.ts'
import { describeConnection, isCircuitAddr } from './connections.ts'
import { DiversityGater, type GaterRefusal } from './gater.ts'
import type { PunchRoundResult } from './holepunch.ts'
import {
  type AutoNatHandle,
  createHost,
  DEFAULT_HOST_OPTIONS,
  type HostHooks,
  type NodusLibp2p,
} from './host.ts'
import { type KeeperDialResult, knownPeersClosest, PeerKeeper } from './peer-keeper.ts'
import { reachabilityOf } from './reachability.ts'
import type { ReservationAttemptResult } from './relay-watchdog.ts'

/** What the net area needs from the trust area's peer actions. */
export interface NetPeerPolicy {
  /** Is `peer` (PeerId string) banned? The connection gater and the bulk channel refuse it. */
  isBanned(peer: string): boolean
  /** A peer's input broke the bulk channel (the error names its `peerAction`). */
  report(peer: string, err: unknown): unknown
  /** Subscribe to disconnect decisions (the net area hangs up on the peer). */
  onDisconnect(listener: (peer: string) => Promise<void>): void
}

/** What {@link createNet} needs. */
export interface NetComponents {
  logger: Logger
  clock: Clock
  /** The node's Ed25519 key (its PeerId). */
  privateKey: PrivateKey
  peers: NetPeerPolicy
  /**
   * Memory for bulk request bodies (e.g. 4 KiB-aligned views the shard store writes with direct I/O);
   * default `Buffer.allocUnsafeSlow`.
   */
  allocateBody?: ((size: number) => Uint8Array) | undefined
  /** Run gossipsub with this init (the messaging area's `gossipsubInit`); absent: no pub/sub service. */
  pubsub?: Partial<GossipsubOpts> | undefined
  /** Extra kad-dht record namespaces (the messaging area's key records): {@link HostHooks.dhtRecords}. */
  dhtRecords?: HostHooks['dhtRecords']
  /** Randomness (the peer keeper's picks and backoff jitter); default common/random.ts `systemRandom`. */
  random?: Random | undefined
  /** The net metrics it counts into (IP-diversity refusals); absent: not counted. */
  metrics?: NetAreaMetrics | undefined
}

/** The counters of the net area's metrics (metrics.ts) that {@link createNet} increments. */
export interface NetAreaMetrics {
  gaterRefused: { inc(labels: { reason: GaterRefusal }): void }
  routingTableRefused: { inc(): void }
  relayReservations: { inc(labels: { result: ReservationAttemptResult }): void }
  holePunchRounds: { inc(labels: { result: PunchRoundResult }): void }
  keeperDials: { inc(labels: { result: KeeperDialResult }): void }
}

/** The `net.*` keys of the node's config (docs/CONFIG.md) that {@link createNet} reads. */
export interface NetAreaOptions {
  listen: readonly string[]
  bootstrap: readonly string[]
  dhtProtocol: string
  maxConnections: number
  minConnections: number
  encrypter: 'noise' | 'tls'
  bulk: 'on' | 'off'
  bulkPort: number
  gaterMaxPerIp: number
  gaterMaxPerSubnet24: number
  gaterMaxPerSubnet16: number
  gaterMaxPerSubnet64: number
  gaterMaxPerSubnet48: number
  gaterJoinsPerMinute: number
  gaterExempt: readonly string[]
  dhtMaxPerSubnet: number
  relays: readonly string[]
  announce: readonly string[]
  discoverRelays: number
  relayServer: 'auto' | 'on' | 'off'
  relayMaxReservations: number
  relayDataLimitBytes: number
  relayDurationLimitMs: number
  relayReservationTtlMs: number
  autonat: 'on' | 'off'
  dcutr: 'on' | 'off'
  upnp: 'on' | 'off'
  tcpDialPort: number
  dialPrivate: 'local' | 'all'
}

/** The net area's public services. */
export interface Net {
  readonly libp2p: NodusLibp2p
  /** The bulk channel (undefined when `net.bulk` is off). */
  readonly bulk: BulkChannel | undefined
  /** The gossipsub service (undefined when {@link NetComponents.pubsub} was not given). */
  readonly pubsub: GossipSub | undefined
  /**
   * Connected peers that speak `protocol` (or whose protocols identify has not told yet), sorted by
   * PeerId string.
   */
  peersSpeaking(protocol: string): PeerId[]
  /** Serve bulk channel requests with `handler` (the storage area's shard server). */
  handleBulk(handler: BulkHandler): void
  /** Starts libp2p, then the bulk listener. @throws NodusError `PORT_IN_USE` */
  start(): Promise<void>
  /** Dials the bootstrap peers (10 s each; failures are logged), once every area runs. */
  afterStart(): Promise<void>
  stop(): Promise<void>
}

/** How long the lookup of the node's own id after the bootstrap dials may take, ms. */
const JOIN_LOOKUP_TIMEOUT_MS = 30_000

/** The bulk listener's host: that of the first /ip4 listen address, else loopback. */
function bulkHost(listen: readonly string[]): string {
  for (const addr of listen) {
    const m = /^\/ip4\/([0-9.]+)\//.exec(addr)
    if (m?.[1] !== undefined) return m[1]
  }
  return '127.0.0.1'
}

/** Map an address-in-use failure to PORT_IN_USE. */
function portInUse(err: unknown, what: string): unknown {
  const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' || /EADDRINUSE/.test(String(err))
  return inUse ? new NodusError('PORT_IN_USE', `${what} is in use`, { cause: err }) : err
}

/**
 * The direct listen addresses (not relay reservations) of `listen` that no listener serves: none of
 * `listening` (the listeners' addresses) has the same transport, host and, unless 0, port.
 */
export function unlistened(listen: readonly string[], listening: readonly string[]): string[] {
  type Key = { family: string; host: string; proto: string; port: string; rest: string }
  const key = (a: string): Key | undefined => {
    const m = /^\/(ip[46])\/([^/]+)\/(tcp|udp)\/(\d+)(.*)$/.exec(a.replace(/\/p2p\/[^/]+$/, ''))
    if (m === null) return undefined
    return { family: m[1] ?? '', host: m[2] ?? '', proto: m[3] ?? '', port: m[4] ?? '', rest: m[5] ?? '' }
  }
  const have = listening.map(key).filter((k) => k !== undefined)
  return listen.filter((a) => {
    if (isCircuitAddr(a)) return false
    const want = key(a)
    if (want === undefined) return false
    const anyHost = want.host === '0.0.0.0' || want.host === '::'
    return !have.some(
      (k) =>
        k.family === want.family &&
        k.proto === want.proto &&
        k.rest === want.rest &&
        (anyHost || k.host === want.host) &&
        (want.port === '0' || k.port === want.port),
    )
  })
}

/**
 * The listen addresses of `options`: `net.listen`, then `<relay>/p2p-circuit` for each configured relay
 * (the circuit relay transport reserves a slot there and the node announces the relayed address), then
 * `/p2p-circuit` once per relay to discover (`net.discoverRelays`): each such listener asks the
 * transport's reservation store for one more relay, which its relay discovery finds among connected
 * peers that speak the hop protocol, else through a random walk of the DHT (src/net/README.md, "Relay
 * discovery").
 */
export function relayListenAddrs(
  options: Pick<NetAreaOptions, 'listen' | 'relays' | 'discoverRelays'>,
): string[] {
  return [
    ...options.listen,
    ...options.relays.map((r) => `${r.replace(/\/$/, '')}/p2p-circuit`),
    ...Array.from({ length: options.discoverRelays }, () => '/p2p-circuit'),
  ]
}

/** Build (not start) the net area. */
export async function createNet(components: NetComponents, options: NetAreaOptions): Promise<Net> {
  const { peers } = components
  const log = components.logger.child({ area: 'net' })
  const gater = new DiversityGater(
    {
      perIp: options.gaterMaxPerIp,
      perSubnet24: options.gaterMaxPerSubnet24,
      perSubnet16: options.gaterMaxPerSubnet16,
      perSubnet64: options.gaterMaxPerSubnet64,
      perSubnet48: options.gaterMaxPerSubnet48,
      joinsPerMinute: options.gaterJoinsPerMinute,
      exempt: options.gaterExempt,
    },
    {
      clock: components.clock,
      logger: log,
      refused: (reason) => components.metrics?.gaterRefused.inc({ reason }),
    },
  )
  for (const a of options.announce) {
    try {
      multiaddr(a)
    } catch (err) {
      throw new NodusError(
        'CONFIG_INVALID',
        `net.announce: "${a}" is not a multiaddr: ${(err as Error).message}`,
      )
    }
  }
  let libp2pRef: NodusLibp2p | undefined
  let autonatHandle: AutoNatHandle | undefined
  /** The gater's test of a dial address (host.ts `onDialFilter`); absent: every address may be dialed. */
  let denyDial: ((addr: string) => boolean) | undefined
  const libp2p = await createHost(
    components.privateKey,
    {
      ...DEFAULT_HOST_OPTIONS,
      listen: relayListenAddrs(options),
      announce: options.announce,
      relayServer: options.relayServer,
      relayMaxReservations: options.relayMaxReservations,
      relayDataLimitBytes: options.relayDataLimitBytes,
      relayDurationLimitMs: options.relayDurationLimitMs,
      relayReservationTtlMs: options.relayReservationTtlMs,
      autonat: options.autonat === 'on',
      dcutr: options.dcutr === 'on',
      upnp: options.upnp === 'on',
      tcpDialPort: options.tcpDialPort,
      dialPrivate: options.dialPrivate,
      dhtProtocol: options.dhtProtocol,
      maxConnections: options.maxConnections,
      encrypter: options.encrypter,
    },
    {
      isBanned: (peer) => peers.isBanned(peer),
      pubsub: components.pubsub,
      dhtRecords: components.dhtRecords,
      clock: components.clock,
      onRelayReservation: (result) => components.metrics?.relayReservations.inc({ result }),
      onPunchRound: (result) => components.metrics?.holePunchRounds.inc({ result }),
      reachability: () => reachabilityOf(libp2pRef?.getMultiaddrs().map((m) => m.toString()) ?? []),
      onAutonat: (handle) => {
        autonatHandle = handle
      },
      onDialFilter: (deny) => {
        denyDial = deny
      },
      diversity: {
        gater,
        dhtMaxPerSubnet: options.dhtMaxPerSubnet,
        onTableRefused: () => components.metrics?.routingTableRefused.inc(),
      },
    },
  )
  libp2pRef = libp2p
  peers.onDisconnect(async (peer) => {
    await libp2p.hangUp(peerIdFromString(peer))
  })
  // Which protocols each connected peer speaks (learned by identify).
  const protocolsOf = new Map<string, readonly string[]>()
  libp2p.addEventListener('peer:identify', (evt) => {
    protocolsOf.set(evt.detail.peerId.toString(), evt.detail.protocols)
  })
  libp2p.addEventListener('peer:disconnect', (evt) => {
    protocolsOf.delete(evt.detail.toString())
  })
  // AutoNAT tests addresses that appear after the peers connected (a UPnP mapping): autonat-nudge.ts.
  const handle = autonatHandle as AutoNatHandle | undefined
  const nudge =
    handle === undefined
      ? undefined
      : new AutoNatNudge({
          addresses: () => handle.addresses(),
          connections: () => libp2p.getConnections(),
          speaksAutonat: (peer) => protocolsOf.get(peer)?.includes(AUTONAT_PROTOCOL) === true,
          verify: (c) => handle.verify(c),
          now: () => components.clock.now(),
          logger: log,
        })
  /** A DHT lookup of the peers closest to `key`, drained: kad-dht keeps what it learns (table, peer store). */
  const lookup = async (key: Uint8Array, signal: AbortSignal): Promise<void> => {
    for await (const _ of libp2p.services.dht.getClosestPeers(key, { signal })) {
      // drained
    }
  }
  // Stay connected to net.minConnections peers (a node behind NAT holds only its bootstrap peers otherwise).
  const keeper = new PeerKeeper(
    {
      connected: () => libp2p.getPeers().map((p) => p.toString()),
      candidates: (key, count) => knownPeersClosest(libp2p, key, count),
      discover: (key, o) => lookup(key, o.signal),
      // A kept connection must not hold a relay's circuit, nor wait on another site's private address.
      dialable: async (peer) => {
        try {
          const known = await libp2p.peerStore.get(peerIdFromString(peer))
          return known.addresses.some((a) => {
            const addr = a.multiaddr.toString()
            return !isCircuitAddr(addr) && denyDial?.(addr) !== true
          })
        } catch {
          return false
        }
      },
      isBanned: (peer) => peers.isBanned(peer),
      dial: async (peer, o) => {
        await libp2p.dial(peerIdFromString(peer), o)
      },
      now: () => components.clock.now(),
      random: components.random ?? systemRandom,
      logger: log,
      onDial: (result) => components.metrics?.keeperDials.inc({ result }),
    },
    { minConnections: options.minConnections },
  )
  /** Aborted on stop: the join lookup. */
  let lifetime = new AbortController()
  let bulkHandler: BulkHandler | undefined
  // The bulk channel carries shard bytes over direct TLS sockets keyed through libp2p.
  const bulk =
    options.bulk === 'on'
      ? new BulkChannel(
          {
            handle: (protocol, handler, o) => libp2p.handle(protocol, handler, o),
            dialProtocol: (peer, protocol, o) => libp2p.dialProtocol(peer, protocol, o),
            remoteHost: (peer) => {
              for (const c of libp2p.getConnections(peer)) {
                if (c.status !== 'open' || describeConnection(c).relayed) continue
                // Only a direct IP connection (TCP, QUIC or WebSockets; not a relay, whose first address
                // is the relay's, nor a memory address) leads to the peer's host.
                const [first, second] = c.remoteAddr.getComponents()
                if (
                  (first?.name === 'ip4' || first?.name === 'ip6') &&
                  (second?.name === 'tcp' || second?.name === 'udp')
                )
                  return first.value
              }
              return undefined
            },
            handler: (request, reply, signal) => {
              if (bulkHandler === undefined) throw new NodusError('NOT_STARTED', 'shard server not ready')
              return bulkHandler(request, reply, signal)
            },
            logger: log,
            clock: components.clock,
            allocateBody: components.allocateBody,
            isBanned: (peer) => peers.isBanned(peer.toString()),
            onPeerError: (peer, err: NodusError) => peers.report(peer.toString(), err),
          },
          { ...DEFAULT_BULK_OPTIONS, host: bulkHost(options.listen), port: options.bulkPort },
        )
      : undefined
  let started = false
  return {
    libp2p,
    bulk,
    pubsub: libp2p.services.pubsub,
    peersSpeaking: (protocol) =>
      libp2p
        .getPeers()
        .filter((p) => protocolsOf.get(p.toString())?.includes(protocol) !== false)
        .sort((a, b) => (a.toString() < b.toString() ? -1 : 1)),
    handleBulk: (handler) => {
      bulkHandler = handler
    },
    start: async () => {
      if (started) return
      started = true
      // libp2p runs with FaultTolerance.NO_FATAL (an unreachable relay must not stop the node), so a
      // TCP, QUIC or WebSockets address it could not listen on is found here.
      const listening: string[] = []
      const onListening = (evt: CustomEvent<{ getAddrs(): Array<{ toString(): string }> }>): void => {
        for (const a of evt.detail.getAddrs()) listening.push(a.toString())
      }
      libp2p.addEventListener('transport:listening', onListening)
      try {
        await libp2p.start()
      } catch (err) {
        throw portInUse(err, `a listen address (${options.listen.join(', ')})`)
      } finally {
        libp2p.removeEventListener('transport:listening', onListening)
      }
      const missing = unlistened(options.listen, listening)
      if (missing.length > 0) {
        await Promise.resolve(libp2p.stop()).catch(() => {})
        throw new NodusError(
          'PORT_IN_USE',
          `could not listen on ${missing.join(', ')} (the port is in use, or the address is not this host's)`,
          { details: { listen: missing } },
        )
      }
      try {
        await bulk?.start()
      } catch (err) {
        throw portInUse(err, `bulk port ${options.bulkPort}`)
      }
      nudge?.start()
    },
    afterStart: async () => {
      await Promise.allSettled(
        options.bootstrap.map(async (addr) => {
          try {
            await libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) })
          } catch (err) {
            log.warn({ addr, err: (err as Error).message }, 'bootstrap dial failed')
          }
        }),
      )
      if (!started) return
      // Kademlia's join (Maymounkov and Mazières 2002, section 2.3): a lookup of the node's own id
      // through its bootstrap peers fills its k-buckets and peer store. kad-dht's own self-query runs
      // 1 s after start, before the bootstrap dials connect (at 80 ms RTT it found nobody), and then
      // only every 5 min, so a node learned the network only through the lookups of its first gets.
      // The peer keeper starts once the lookup ended: it dials from what the lookup found.
      const joined = lifetime.signal
      void (async () => {
        try {
          const signal = AbortSignal.any([joined, AbortSignal.timeout(JOIN_LOOKUP_TIMEOUT_MS)])
          await lookup(libp2p.peerId.toMultihash().bytes, signal)
        } catch (err) {
          if (!joined.aborted) log.debug({ err: (err as Error).message }, 'join lookup failed')
        }
        if (started && !joined.aborted) keeper.start()
      })()
    },
    stop: async () => {
      if (!started) return
      started = false
      lifetime.abort()
      lifetime = new AbortController()
      keeper.stop()
      nudge?.stop()
      await bulk?.stop()
      await libp2p.stop()
    },
  }
}
