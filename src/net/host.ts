import { networkInterfaces } from 'node:os'
import { noise } from '@chainsafe/libp2p-noise'
import { type QuicComponents, quic } from '@chainsafe/libp2p-quic'
import { yamux } from '@chainsafe/libp2p-yamux'
import { autoNAT } from '@libp2p/autonat'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { type GossipSub, type GossipsubOpts, gossipsub } from '@libp2p/gossipsub'
import { identify, identifyPush } from '@libp2p/identify'
import {
  type Connection,
  type ConnectionEncrypter,
  type ConnectionGater,
  FaultTolerance,
  type PeerId,
  type PrivateKey,
  type Transport,
} from '@libp2p/interface'
import { type KadDHT, kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { type Ping, ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import type { TLSComponents } from '@libp2p/tls'
import { uPnPNAT } from '@libp2p/upnp-nat'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { type Clock, systemClock } from '../common/clock.ts'
import type { NudgeAddress } from './autonat-nudge.ts'
import { isCircuitAddr } from './connections.ts'
import type { DiversityGater } from './gater.ts'
import { ipOfAddr } from './gater.ts'
import {
  DCUTR_PROTOCOL,
  type DcutrRunner,
  ObservedTcpAddrs,
  PrivateDialFilter,
  PunchCoordinator,
  type PunchRoundResult,
  pickDialPort,
  stopsWith,
  tcpFromDialPort,
  withFreshDialBack,
  withPunchAddrs,
  withPunchCoordinator,
} from './holepunch.ts'
import { useMultihashProviderKeys } from './kad-providers.ts'
import { useKademliaSplitting, useSubnetCap } from './kad-table.ts'
import { isPublicAddr } from './reachability.ts'
import { RelayFlapGuard } from './relay-flap.ts'
import { type ReservationAttemptResult, relayPeerOf, relayWatchdogService } from './relay-watchdog.ts'

/**
 * @libp2p/tls, offered under its protocol id but loaded on the first TLS handshake: with its X.509 and
 * ASN.1 code it adds about 5 MB of heap and 7–10 MB of RSS to every node, which a node preferring Noise
 * never needs unless a TLS-preferring peer dials it (measured, docs/benchmarks-history.md "Where the idle RSS
 * goes").
 */
function lazyTls(): (components: TLSComponents) => ConnectionEncrypter {
  return (components) => {
    let real: Promise<ConnectionEncrypter> | undefined
    const load = (): Promise<ConnectionEncrypter> => {
      real ??= import('@libp2p/tls').then((m) => m.tls()(components))
      return real
    }
    return {
      protocol: '/tls/1.0.0',
      [Symbol.toStringTag]: '@libp2p/tls',
      secureInbound: async (connection, options) => (await load()).secureInbound(connection, options),
      secureOutbound: async (connection, options) => (await load()).secureOutbound(connection, options),
    } as ConnectionEncrypter
  }
}

/**
 * QUIC (@chainsafe/libp2p-quic) whose dials give up after `handshakeMs`. Its native dial does not
 * apply `handshakeTimeout` to an address where nothing answers (UDP has no connection refused) nor
 * read the dial's signal, so a dial to a stopped peer's QUIC address otherwise waits out the idle
 * timeout (10 s) while TCP fails at once. A connection completing after the deadline is closed.
 */
function quicWithDialDeadline(handshakeMs: number): (components: QuicComponents) => Transport {
  const factory = quic({ handshakeTimeout: handshakeMs })
  return (components) => {
    const transport = factory(components)
    const dial = transport.dial.bind(transport)
    transport.dial = async (ma, options) => {
      const pending = dial(ma, options)
      const deadline = AbortSignal.any([
        AbortSignal.timeout(handshakeMs),
        ...(options.signal === undefined ? [] : [options.signal]),
      ])
      let onAbort = (): void => {}
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () =>
          reject(
            options.signal?.aborted === true
              ? options.signal.reason
              : new Error(`QUIC handshake with ${ma.toString()} did not complete in ${handshakeMs} ms`),
          )
        if (deadline.aborted) onAbort()
        else deadline.addEventListener('abort', onAbort, { once: true })
      })
      try {
        return await Promise.race([pending, aborted])
      } catch (err) {
        pending.then(
          (c) => c.abort(err instanceof Error ? err : new Error(String(err))),
          () => {},
        )
        throw err
      } finally {
        deadline.removeEventListener('abort', onAbort)
      }
    }
    return transport
  }
}

/** Options for the libp2p host. Times in milliseconds. */
export interface HostOptions {
  /**
   * Multiaddrs to listen on: TCP (`/ip4/H/tcp/N`), QUIC (`/ip4/H/udp/N/quic-v1`), WebSockets
   * (`/ip4/H/tcp/N/ws`), the same with `/ip6/`, and relay reservations (`/p2p/RELAY/p2p-circuit`).
   * Default {@link DEFAULT_LISTEN}: TCP and QUIC on loopback, any free ports.
   */
  listen: string[]
  /** Kademlia protocol id. Default `/nodus/kad/1.0.0`; `/ipfs/kad/1.0.0` speaks to standard libp2p peers. */
  dhtProtocol: string
  /** Keep loopback and private addresses in DHT records (needed on a local devnet). Default true. */
  dhtAllowPrivateAddresses: boolean
  /** Maximum open connections. Default 300. */
  maxConnections: number
  /** Per-stream yamux receive window in bytes; kept below the stream read buffer (4 MiB). Default 2 MiB. */
  yamuxMaxStreamWindowBytes: number
  /**
   * libp2p connection monitor ping interval in ms; 0 turns the monitor off. Default 0: yamux already
   * pings every connection every 30 s at the frame level (its keep-alive), nodus reads no round-trip time
   * from the monitor, and each monitor ping opens a stream (`/ipfs/ping/1.0.0`), about 8 ms of CPU across
   * both ends here, 2 CPU-s per 30 s for an idle 16-node devnet (docs/benchmarks-history.md, "Session 8").
   * When on, it never aborts a connection whose ping fails (../shared/NOTES-libp2p.md, trap 3).
   */
  monitorPingIntervalMs: number
  /** Kademlia bucket size k. Default 20 (the paper's and kad-dht's). */
  dhtKBucketSize: number
  /** Depth to which kad-dht's trie splits every full bucket (kad-dht `prefixLength`). Default 6. */
  dhtPrefixLength: number
  /**
   * Preferred connection encryption: `noise` (Noise XX, @chainsafe/libp2p-noise) or `tls` (TLS 1.3
   * through OpenSSL, @libp2p/tls). The other one is offered second, so peers preferring either still
   * connect (multistream-select takes the dialer's first choice the listener supports). Default
   * `noise`. Measured trade-off (docs/benchmarks-history.md, "Data plane"): on one established connection TLS
   * moves shards 1.1–1.4× faster at 0.7–0.9× the CPU, but each TLS handshake costs about twice the
   * CPU of a Noise one (@libp2p/tls makes a P-256 key and an X.509 certificate per connection), and
   * under the chaos workload, where connections come and go, TLS completed 76 puts against Noise's 105.
   */
  encrypter: 'noise' | 'tls'
  /**
   * QUIC handshake timeout in ms (@chainsafe/libp2p-quic `handshakeTimeout`, its default 5,000).
   * Default 3,000: UDP has no connection refused, so a dial to a stopped peer's QUIC address waits this
   * long; at 200 ms RTT the 1-RTT handshake has room for several retransmissions.
   */
  quicHandshakeTimeoutMs: number
  /**
   * Serve circuit relay v2 (@libp2p/circuit-relay-v2): `on`; `auto` (default) serves reservations only
   * while {@link HostHooks.reachability} says `public`; `off` registers no relay service.
   */
  relayServer: 'auto' | 'on' | 'off'
  /** Relay: reservations held at once. Default 15 (circuit-relay-v2's). */
  relayMaxReservations: number
  /** Relay: bytes each relayed connection may carry (each way) before the relay closes it. Default 128 KiB. */
  relayDataLimitBytes: number
  /** Relay: how long a relayed connection may last, ms. Default 120,000 (2 min). */
  relayDurationLimitMs: number
  /** Relay: how long a reservation lasts before it must be renewed, ms. Default 7,200,000 (2 h). */
  relayReservationTtlMs: number
  /** AutoNAT v1 (@libp2p/autonat): ask peers to dial our public addresses back. Default true. */
  autonat: boolean
  /** DCUtR (@libp2p/dcutr): hole-punch relayed connections into direct ones. Default true. */
  dcutr: boolean
  /** UPnP IGD port mapping on the home router (@libp2p/upnp-nat). Default false. */
  upnp: boolean
  /**
   * Local TCP port every outbound TCP dial is made from (holepunch.ts), so that a cone NAT maps all of
   * them to one external address, which peers observe and DCUtR hole-punches to (a TCP simultaneous
   * open). 0 (default): one free port picked at start; -1: an ephemeral port per dial (no TCP hole
   * punching). Never the listen port (Linux refuses a connected socket on a listening port).
   */
  tcpDialPort: number
  /**
   * Public multiaddrs to announce besides the listened ones, taken as reachable (libp2p
   * `addresses.appendAnnounce`: no AutoNAT test). Default none.
   */
  announce: readonly string[]
  /**
   * Which private (and loopback) addresses to dial: `local` (default) only those in this host's own
   * networks (its interfaces' subnets), as a peer behind another NAT announces a home address nobody
   * else reaches (holepunch.ts `PrivateDialFilter`); `all` dials every one (private networks routed
   * between sites).
   */
  dialPrivate: 'local' | 'all'
}

/**
 * libp2p's `connectionMonitor` init for {@link HostOptions.monitorPingIntervalMs}: off for 0, else pings at
 * that interval and never aborts a connection whose ping fails.
 */
export function connectionMonitorInit(
  pingIntervalMs: number,
): { enabled: false } | { pingInterval: number; abortConnectionOnPingFailure: false } {
  return pingIntervalMs > 0
    ? { pingInterval: pingIntervalMs, abortConnectionOnPingFailure: false }
    : { enabled: false }
}

/**
 * The default listen addresses: TCP and QUIC on loopback, each on any free port. A node with a fixed
 * port uses the same number for both (`/ip4/0.0.0.0/tcp/4001` and `/ip4/0.0.0.0/udp/4001/quic-v1`):
 * TCP and UDP ports are separate spaces, so one number serves both and one firewall rule names both.
 */
export const DEFAULT_LISTEN: readonly string[] = Object.freeze([
  '/ip4/127.0.0.1/tcp/0',
  '/ip4/127.0.0.1/udp/0/quic-v1',
])

export const DEFAULT_HOST_OPTIONS: Readonly<HostOptions> = Object.freeze({
  listen: [...DEFAULT_LISTEN],
  dhtProtocol: '/nodus/kad/1.0.0',
  dhtAllowPrivateAddresses: true,
  maxConnections: 300,
  yamuxMaxStreamWindowBytes: 2 * 1024 * 1024,
  monitorPingIntervalMs: 0,
  dhtKBucketSize: 20,
  dhtPrefixLength: 6,
  encrypter: 'noise',
  quicHandshakeTimeoutMs: 3_000,
  relayServer: 'auto',
  relayMaxReservations: 15,
  relayDataLimitBytes: 128 * 1024,
  relayDurationLimitMs: 120_000,
  relayReservationTtlMs: 7_200_000,
  autonat: true,
  dcutr: true,
  upnp: false,
  tcpDialPort: 0,
  announce: [],
  dialPrivate: 'local',
})

/** The libp2p host: its `pubsub` service is there when {@link HostHooks.pubsub} was given. */
/** What {@link HostHooks.onAutonat} gets: the AutoNAT service's test, and this node's addresses. */
export interface AutoNatHandle {
  /** @libp2p/autonat's `verifyExternalAddresses(connection)`: asks that peer to test an untested address. */
  verify(connection: Connection): Promise<void>
  /** The address manager's `getAddressesWithMetadata()`. */
  addresses(): NudgeAddress[]
}

export type NodusLibp2p = Libp2p<{ dht: KadDHT; ping: Ping; identify: unknown; pubsub?: GossipSub }>

/** Run-time hooks of the host (functions, kept apart from the plain {@link HostOptions}). */
export interface HostHooks {
  /** Is `peer` (PeerId string) banned? Its connections are refused both ways (trust/peer-actions.ts). */
  isBanned?(peer: string): boolean
  /**
   * Run gossipsub (@libp2p/gossipsub) as the `pubsub` service with this init (the messaging area's
   * `gossipsubInit`: limits, scoring, message ids). Absent: no pub/sub service.
   */
  pubsub?: Partial<GossipsubOpts> | undefined
  /**
   * Extra kad-dht record namespaces: for a key `/<ns>/...`, `validators[ns]` throws on a record that
   * must not be stored or returned, `selectors[ns]` picks the best of several (kad-dht `validators`,
   * `selectors`). The messaging area's key records use `nodus-key`.
   */
  dhtRecords?:
    | {
        validators: Record<string, (key: Uint8Array, value: Uint8Array) => void | Promise<void>>
        selectors: Record<string, (key: Uint8Array, records: Uint8Array[]) => number>
      }
    | undefined
  /**
   * IP-diversity limits (gater.ts): inbound connections past its per-IP, per-subnet or join-rate
   * limits are refused, and each k-bucket holds at most `dhtMaxPerSubnet` contacts of one /24 (/64).
   */
  /** Counts each attempt of the relay watchdog (relay-watchdog.ts) to reserve a missing relay slot. */
  onRelayReservation?: ((result: ReservationAttemptResult) => void) | undefined
  /** Counts each DCUtR round (holepunch.ts `PunchCoordinator`) by outcome. */
  onPunchRound?: ((result: PunchRoundResult) => void) | undefined
  /** The clock of the hole-punching state (holepunch.ts). Default the system clock. */
  clock?: Clock | undefined
  /** This node's reachability (reachability.ts): `relayServer: 'auto'` serves reservations only when `public`. */
  reachability?: (() => string) | undefined
  /**
   * Called once the AutoNAT service is built, with its `verifyExternalAddresses` and the address
   * manager's addresses with their verification state (autonat-nudge.ts uses both).
   */
  onAutonat?: ((handle: AutoNatHandle) => void) | undefined
  /**
   * Called once with the connection gater's test of a dial address (`net.dialPrivate` `local`:
   * another site's private address is refused; holepunch.ts `PrivateDialFilter`); not called when
   * every address may be dialed. The peer keeper reads it (peer-keeper.ts).
   */
  onDialFilter?: ((deny: (addr: string) => boolean) => void) | undefined
  diversity?:
    | { gater: DiversityGater; dhtMaxPerSubnet: number; onTableRefused?: (() => void) | undefined }
    | undefined
}

/**
 * A libp2p connection gater that refuses banned peers both ways: dials to them (`denyDialPeer`, and
 * `denyOutboundConnection` for a multiaddr naming one), and any connection, inbound or outbound, whose
 * remote turns out to be one once encrypted (`denyInbound/OutboundEncryptedConnection`: the first
 * point where an inbound peer's identity is known). Everything else is allowed, as libp2p's default.
 */
export function bannedPeerGater(isBanned: (peer: string) => boolean): ConnectionGater {
  const deny = (peer: PeerId): boolean => isBanned(peer.toString())
  return {
    denyDialPeer: deny,
    denyOutboundConnection: deny,
    denyInboundEncryptedConnection: deny,
    denyOutboundEncryptedConnection: deny,
  }
}

/**
 * Build (not start) a libp2p host: TCP, Noise (or TLS 1.3), Yamux, identify, ping and kad-dht in server mode,
 * and gossipsub when `hooks.pubsub` is given.
 * With `hooks.isBanned`, banned peers are refused both ways ({@link bannedPeerGater}).
 *
 * Choices follow ../shared/NOTES-libp2p.md: yamux window below the read buffer (trap 2), ping with
 * several outbound streams and a gentle connection monitor (trap 3), no per-host inbound rate limit on
 * loopback (trap 4), a pass-through DHT address mapper so loopback addresses survive (trap 4).
 */
export async function createHost(
  privateKey: PrivateKey,
  options: HostOptions,
  hooks: HostHooks = {},
): Promise<NodusLibp2p> {
  const isBanned = hooks.isBanned
  const diversity = hooks.diversity
  const privateDials =
    options.dialPrivate === 'local'
      ? new PrivateDialFilter(isPublicAddr, networkInterfaces, hooks.clock ?? systemClock)
      : undefined
  if (privateDials !== undefined) hooks.onDialFilter?.((addr) => privateDials.deny(addr))
  const relayListen = options.listen.filter(
    (a) => /\/p2p-circuit\/?$/.test(a) && relayPeerOf(a) !== undefined,
  )
  // Discovered relays that drop reservations are not dialed for a while (relay-flap.ts).
  const relayFlaps = new RelayFlapGuard({
    configured: relayListen.map((a) => relayPeerOf(a) ?? ''),
    clock: hooks.clock ?? systemClock,
  })
  const banned = isBanned === undefined ? undefined : bannedPeerGater((p) => isBanned(p))
  const connectionGater: ConnectionGater = {
    ...banned,
    denyDialPeer: (peer) => relayFlaps.denied(peer.toString()) || banned?.denyDialPeer?.(peer) === true,
    // Nor let in while refused: it would redial (kad-dht keeps its closest peers connected) and the
    // discovery would reserve on the connection it came on.
    denyInboundEncryptedConnection: (peer, conn) =>
      relayFlaps.denied(peer.toString()) || banned?.denyInboundEncryptedConnection?.(peer, conn) === true,
    ...(privateDials === undefined
      ? {}
      : { denyDialMultiaddr: (ma: { toString(): string }) => privateDials.deny(ma.toString()) }),
    ...(diversity === undefined ? {} : { denyInboundConnection: diversity.gater.denyInboundConnection }),
    // `auto`: a relay only for nodes others can reach directly (go-libp2p's rule for its relay service).
    ...(options.relayServer === 'auto'
      ? { denyInboundRelayReservation: () => hooks.reachability?.() !== 'public' }
      : {}),
  }
  // TCP dials from one port, and the observed address of that port for DCUtR (holepunch.ts).
  const dialPort = options.tcpDialPort === 0 ? await pickDialPort() : Math.max(0, options.tcpDialPort)
  const observed = new ObservedTcpAddrs({ clock: hooks.clock ?? systemClock })
  const node = await createLibp2p({
    privateKey,
    start: false,
    connectionGater,
    // Announced addresses (a port forwarded by hand) are added to the listened ones as verified
    // (libp2p's appendAnnounce).
    addresses: { listen: options.listen, appendAnnounce: [...options.announce] },
    // A relay that cannot be reached (or refuses a reservation) at start must not stop the node: the
    // circuit relay transport retries its reservations; a TCP or QUIC listen failure is still fatal
    // (the node checks its listen addresses after start).
    transportManager: { faultTolerance: FaultTolerance.NO_FATAL },
    // TCP and WebSockets are upgraded with Noise/TLS and yamux; QUIC brings its own TLS 1.3 and
    // streams (no receive-side backpressure: ../shared/NOTES-libp2p.md, trap 2). The circuit relay
    // transport dials `/p2p-circuit` addresses and, for listen addresses naming a relay, reserves a slot.
    transports: [
      tcpFromDialPort(tcp(), () => dialPort),
      quicWithDialDeadline(options.quicHandshakeTimeoutMs),
      webSockets(),
      circuitRelayTransport(),
    ],
    connectionEncrypters: options.encrypter === 'tls' ? [lazyTls(), noise()] : [noise(), lazyTls()],
    streamMuxers: [
      yamux({
        streamOptions: {
          maxStreamWindowSize: options.yamuxMaxStreamWindowBytes,
          initialStreamWindowSize: 256 * 1024,
          maxReadBufferLength: 2 * options.yamuxMaxStreamWindowBytes + 1024 * 1024,
        },
      }),
    ],
    connectionManager: {
      maxConnections: options.maxConnections,
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 100,
      dialTimeout: 10_000,
    },
    connectionMonitor: connectionMonitorInit(options.monitorPingIntervalMs),
    services: {
      identify: identify(),
      // Tells connected peers when this node's addresses change (AutoNAT verified one, a relay
      // reservation was made): without it they keep what the first identify said, which for a public
      // node in its first seconds is no address at all (libp2p 3 announces verified ones only), and
      // kad-dht, which adds a peer to its routing table on identify only when it lists an address the
      // DHT keeps, never added it: every k-bucket table on the namespace topology held 1 or 2 peers.
      // libp2p's registrar hands each identify push to kad-dht's topology as a connect.
      identifyPush: identifyPush(),
      ping: ping({ maxOutboundStreams: 8, maxInboundStreams: 16 }),
      dht: kadDHT({
        protocol: options.dhtProtocol,
        clientMode: false,
        alpha: 3,
        disjointPaths: 1,
        kBucketSize: options.dhtKBucketSize,
        prefixLength: options.dhtPrefixLength,
        ...(hooks.dhtRecords === undefined
          ? {}
          : { validators: hooks.dhtRecords.validators, selectors: hooks.dhtRecords.selectors }),
        ...(options.dhtAllowPrivateAddresses ? { peerInfoMapper: passthroughMapper } : {}),
      }),
      ...(hooks.pubsub === undefined ? {} : { pubsub: gossipsub(hooks.pubsub) }),
      ...(options.autonat
        ? {
            autonat: (components: Parameters<ReturnType<typeof autoNAT>>[0]) => {
              const service = autoNAT()(withFreshDialBack(components))
              hooks.onAutonat?.({
                verify: (c) =>
                  (
                    service as unknown as { verifyExternalAddresses(c: Connection): Promise<void> }
                  ).verifyExternalAddresses(c),
                addresses: () => components.addressManager.getAddressesWithMetadata(),
              })
              return service
            },
          }
        : {}),
      ...(options.dcutr
        ? {
            dcutr: (components: Parameters<ReturnType<typeof dcutr>>[0]) => {
              // One punch per peer at a time, and more rounds while relayed (holepunch.ts, point 4).
              const log = components.logger.forComponent('libp2p:dcutr:nodus')
              const coordinator = new PunchCoordinator({
                self: String((components as unknown as { peerId: PeerId }).peerId),
                connections: (peer) =>
                  components.connectionManager
                    .getConnections()
                    .filter((c) => c.remotePeer.toString() === peer),
                upgrade: async (c) => await (service as unknown as DcutrRunner).upgradeInbound(c),
                onRound: hooks.onPunchRound,
                log,
              })
              const punchComponents = withPunchAddrs(components, () => observed.agreed(), multiaddr, log)
              const service = dcutr()(
                withPunchCoordinator(punchComponents, DCUTR_PROTOCOL, coordinator),
              ) as object
              return stopsWith(service, () => coordinator.stop())
            },
          }
        : {}),
      ...(options.upnp ? { upnp: uPnPNAT() } : {}),
      // Reservations on the configured relays made again while missing (relay-watchdog.ts).
      ...(relayListen.length === 0
        ? {}
        : {
            relayWatchdog: relayWatchdogService(relayListen, multiaddr, {
              onAttempt: (_relay, result) => hooks.onRelayReservation?.(result),
            }) as (components: unknown) => object,
          }),
      ...(options.relayServer === 'off'
        ? {}
        : {
            relay: circuitRelayServer({
              reservations: {
                maxReservations: options.relayMaxReservations,
                applyDefaultLimit: true,
                defaultDataLimit: BigInt(options.relayDataLimitBytes),
                defaultDurationLimit: options.relayDurationLimitMs,
                reservationTtl: options.relayReservationTtlMs,
              },
            }),
          }),
    },
  })
  node.addEventListener('peer:identify', (evt) => observed.record(evt.detail))
  // Kademlia splitting toward the node's own ID (kad-table.ts); kad-dht's default trie stops at depth
  // A circuit listener announces a reservation made or lost with 'listening' (transport:listening),
  // after it changed the node's addresses.
  const checkRelays = (): void => {
    const held = node
      .getMultiaddrs()
      .map((m) => /\/p2p\/([^/]+)\/p2p-circuit/.exec(m.toString())?.[1])
      .filter((p) => p !== undefined)
    relayFlaps.update(held)
  }
  node.addEventListener('transport:listening', checkRelays)
  node.addEventListener('transport:close', checkRelays)
  // 6. If kad-dht's internals change shape this is a no-op (test/net/kad-table.test.ts fails then).
  useKademliaSplitting(node.services.dht)
  // kad-dht 16 refuses provider records keyed by a non-SHA2-256 multihash (kad-providers.ts).
  useMultihashProviderKeys(node.services.dht)
  if (diversity !== undefined) {
    // At most dhtMaxPerSubnet contacts of one /24 (/64) per k-bucket; the subnet is that of the peer's
    // direct connection, else of its first known direct address.
    useSubnetCap(node.services.dht, {
      perBucket: diversity.dhtMaxPerSubnet,
      onRefused: diversity.onTableRefused,
      subnetOf: async (peer) => {
        const id = peer as PeerId
        const addrs = node.getConnections(id).map((c) => c.remoteAddr.toString())
        if (addrs.length === 0) {
          const known = await node.peerStore.get(id).catch(() => undefined)
          for (const a of known?.addresses ?? []) addrs.push(a.multiaddr.toString())
        }
        const ip = addrs
          .filter((a) => !isCircuitAddr(a))
          .map(ipOfAddr)
          .find((x) => x !== undefined)
        return ip === undefined ? undefined : diversity.gater.subnetOf(ip)
      },
    })
  }
  return node
}
