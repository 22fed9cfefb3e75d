/**
 * The net area's config keys: section `net` of the config file (docs/CONFIG.md). Pure table; the type
 * {@link NetOptions} is derived from it.
 */

import { checkCidrs } from '../common/cidr.ts'
import { defineOptions, type OptionsOf } from '../common/options.ts'

/**
 * A listen address nodus can serve: `/ip4|ip6|dns4|dns6/H/` then `tcp/N`, `tcp/N/ws`, `tcp/N/wss`,
 * `udp/N/quic-v1`, or a relay reservation (ending in `/p2p-circuit`).
 */
const LISTEN_ADDR = /^\/(ip4|ip6)\/[^/]+\/(tcp\/\d+(\/(ws|wss|tls\/ws))?|udp\/\d+\/quic-v1)\/?$/

/** The problem with a `net.listen` list, or undefined when every address is one nodus can serve. */
export function checkListen(addrs: readonly string[]): string | undefined {
  for (const a of addrs) {
    if (/\/p2p-circuit\/?$/.test(a)) continue
    if (!LISTEN_ADDR.test(a))
      return `${a} is not a TCP (/ip4/H/tcp/N), QUIC (/ip4/H/udp/N/quic-v1), WebSockets (/ip4/H/tcp/N/ws) or relay (/p2p/ID/p2p-circuit) address`
  }
  return undefined
}

/** Section `net`: libp2p, the DHT, the bulk channel and the shard server's per-peer limits. */
export const NET_OPTIONS = defineOptions({
  listen: {
    kind: 'strings',
    default: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/udp/0/quic-v1'],
    check: checkListen,
    description:
      'libp2p listen multiaddrs: TCP `/ip4/H/tcp/N`, QUIC `/ip4/H/udp/N/quic-v1`, WebSockets `/ip4/H/tcp/N/ws` (or `/ip6/`), a relay reservation `/…/p2p/RELAY/p2p-circuit`; a fixed port uses one number for TCP and QUIC (tcp/4001 and udp/4001/quic-v1); 0 = any free port',
  },
  bootstrap: {
    kind: 'strings',
    default: [],
    description: 'multiaddrs (with /p2p/ID) to dial at start',
  },
  dhtProtocol: {
    kind: 'string',
    default: '/nodus/kad/1.0.0',
    check: (v: string) => (v.startsWith('/') ? undefined : 'must start with "/"'),
    description: 'Kademlia protocol id; `/ipfs/kad/1.0.0` joins standard libp2p DHTs',
  },
  requestTimeoutMs: {
    kind: 'int',
    default: 60_000,
    min: 100,
    description: 'time allowed for one shard-protocol request to a peer, ms',
  },
  encrypter: {
    kind: 'enum',
    default: 'noise',
    values: ['noise', 'tls'],
    description:
      'preferred connection encryption (the other is offered second): noise = cheaper handshakes, tls = faster bulk transfer (docs/benchmarks-history.md, "Data plane")',
  },
  bulk: {
    kind: 'enum',
    default: 'on',
    values: ['on', 'off'],
    description:
      'shard transfers over a direct TLS 1.3 socket per peer pair, keyed over libp2p (src/net/bulk.ts); off = libp2p streams only',
  },
  bulkPort: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 65_535,
    description:
      'TCP port of the bulk channel listener (on the host of the first /ip4 listen address); 0 = any free port',
  },
  maxConnections: {
    kind: 'int',
    default: 300,
    min: 1,
    description: 'maximum open libp2p connections',
  },
  minConnections: {
    kind: 'int',
    default: 32,
    min: 0,
    max: 1000,
    description:
      'connected peers to keep at least: below it the node dials peers of its DHT routing table, up to 8 at once every 10 s (src/net/peer-keeper.ts); a node behind NAT otherwise holds only its bootstrap connections, and puts its shards on those few peers; 0 = off',
  },
  maxRequestsPerPeer: {
    kind: 'int',
    default: 8,
    min: 1,
    description: 'shard puts and gets one peer may have served at once (of 64 in all); beyond it PEER_BUSY',
  },
  maxRequestsPerSubnet: {
    kind: 'int',
    default: 16,
    min: 1,
    description: 'shard puts and gets one IPv4 /24 or IPv6 /64 may have served at once; beyond it PEER_BUSY',
  },
  subnetExempt: {
    kind: 'strings',
    default: ['127.', '::1', '::ffff:127.'],
    description: 'address prefixes exempt from the per-subnet limit (loopback and private test networks)',
  },
  gaterMaxPerIp: {
    kind: 'int',
    default: 8,
    min: 1,
    description:
      'inbound libp2p connections from one IP address; more are refused (`nodus_net_gater_refused_total{reason="ip"}`, a warn log line)',
  },
  gaterMaxPerSubnet24: {
    kind: 'int',
    default: 16,
    min: 1,
    description: 'inbound libp2p connections from one IPv4 /24 (Sybil and eclipse limit, after Saorsa Core)',
  },
  gaterMaxPerSubnet16: {
    kind: 'int',
    default: 64,
    min: 1,
    description: 'inbound libp2p connections from one IPv4 /16',
  },
  gaterMaxPerSubnet64: {
    kind: 'int',
    default: 8,
    min: 1,
    description: 'inbound libp2p connections from one IPv6 /64 (one host or home network)',
  },
  gaterMaxPerSubnet48: {
    kind: 'int',
    default: 32,
    min: 1,
    description: 'inbound libp2p connections from one IPv6 /48 (one site)',
  },
  gaterJoinsPerMinute: {
    kind: 'int',
    default: 30,
    min: 1,
    description:
      'new inbound libp2p connections from one IPv4 /24 or IPv6 /64 per minute; more are refused (reason "rate")',
  },
  gaterExempt: {
    kind: 'strings',
    default: ['127.0.0.0/8', '::1/128'],
    check: checkCidrs,
    description:
      'CIDR ranges exempt from the gater limits and the routing-table subnet cap (loopback; add 10.0.0.0/8 etc. for a private test network; [] to apply the limits everywhere)',
  },
  dhtMaxPerSubnet: {
    kind: 'int',
    default: 3,
    min: 1,
    description:
      'contacts of one IPv4 /24 or IPv6 /64 in one k-bucket of the DHT routing table (of k = 20); more are not added (eclipse limit)',
  },
  relays: {
    kind: 'strings',
    default: [],
    description:
      'relays (multiaddrs with /p2p/ID) to reserve a circuit relay v2 slot on and advertise `<relay>/p2p-circuit` addresses through: set on a node behind NAT',
  },
  announce: {
    kind: 'strings',
    default: [],
    description:
      'public addresses (multiaddrs without /p2p/) to announce besides the listened ones, taken as reachable without an AutoNAT test: set when a port is forwarded by hand on a router without UPnP',
  },
  discoverRelays: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 4,
    description:
      'relays to find and reserve a slot on by themselves, besides net.relays: peers this node connects to that serve circuit relay v2, else peers a DHT random walk finds (one `/p2p-circuit` listen address each; src/net/README.md, "Relay discovery"); 0 = only net.relays. Set 1 on a node behind NAT that has no relay configured; while short of relays the node keeps walking the DHT',
  },
  relayServer: {
    kind: 'enum',
    default: 'auto',
    values: ['auto', 'on', 'off'],
    description:
      'serve circuit relay v2 to unreachable peers: auto = only while this node is publicly reachable (GET /network/reachability), on = always, off = never',
  },
  relayMaxReservations: {
    kind: 'int',
    default: 15,
    min: 1,
    description: 'relay: reservations held at once',
  },
  relayDataLimitBytes: {
    kind: 'int',
    default: 128 * 1024,
    min: 1024,
    description:
      'relay: bytes one relayed connection may carry each way before the relay closes it (shards never go through a relay)',
  },
  relayDurationLimitMs: {
    kind: 'int',
    default: 120_000,
    min: 1000,
    description: 'relay: how long one relayed connection may last, ms',
  },
  relayReservationTtlMs: {
    kind: 'int',
    default: 7_200_000,
    min: 10_000,
    description: 'relay: how long a reservation lasts before the reserving node renews it, ms',
  },
  autonat: {
    kind: 'enum',
    default: 'on',
    values: ['on', 'off'],
    description:
      "AutoNAT v1: ask peers to dial this node's public addresses back, so it knows whether it is reachable",
  },
  dcutr: {
    kind: 'enum',
    default: 'on',
    values: ['on', 'off'],
    description: 'DCUtR: hole-punch relayed connections into direct ones (both sides behind cone NATs)',
  },
  tcpDialPort: {
    kind: 'int',
    default: 0,
    min: -1,
    max: 65535,
    description:
      'local TCP port every outbound libp2p TCP dial is made from, so a cone NAT maps them all to one external address that DCUtR can hole-punch to; 0 = one free port picked at start, -1 = an ephemeral port per dial (no TCP hole punching); never the listen port',
  },
  dialPrivate: {
    kind: 'enum',
    default: 'local',
    values: ['local', 'all'],
    description:
      "private and loopback addresses to dial: local = only those in this host's own networks (a peer behind another NAT announces a home address nobody else reaches; a QUIC dial to it waits out the handshake timeout), all = every one (private networks routed between sites)",
  },
  upnp: {
    kind: 'enum',
    default: 'off',
    values: ['on', 'off'],
    description: 'map the listen ports on the home router by UPnP IGD (off: the router is left alone)',
  },
  minTransferBytesPerSec: {
    kind: 'int',
    default: 64 * 1024,
    min: 1,
    description: 'a shard put body arriving slower than this (bytes/s over 5 s) is cut off',
  },
})

/** The values of section `net` (config.net). */
export type NetOptions = OptionsOf<typeof NET_OPTIONS>
