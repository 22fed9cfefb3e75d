/**
 * The net area's config keys: section `net` of the config file (docs/CONFIG.md). Pure table; the type
 * {@link NetOptions} is derived from it.
 */
import { defineOptions, type OptionsOf } from '../common/options.ts'

/** Section `net`: libp2p, the DHT, the bulk channel and the shard server's per-peer limits. */
export const NET_OPTIONS = defineOptions({
  listen: {
    kind: 'strings',
    default: ['/ip4/127.0.0.1/tcp/0'],
    description: 'libp2p listen multiaddrs',
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
  minTransferBytesPerSec: {
    kind: 'int',
    default: 64 * 1024,
    min: 1,
    description: 'a shard put body arriving slower than this (bytes/s over 5 s) is cut off',
  },
})

/** The values of section `net` (config.net). */
export type NetOptions = OptionsOf<typeof NET_OPTIONS>
