/** JSON schemas of the HTTP API's inputs and outputs; they validate requests and generate OpenAPI. */

const str = { type: 'string' } as const
const int = { type: 'integer' } as const
const nullableStr = { type: 'string', nullable: true } as const
const nullableInt = { type: 'integer', nullable: true } as const

export const Ok = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } as const
export const Ready = {
  type: 'object',
  properties: { ok: { type: 'boolean' }, peers: int },
  required: ['ok', 'peers'],
} as const

export const SystemInfo = {
  type: 'object',
  properties: {
    peerId: str,
    did: str,
    multiaddrs: { type: 'array', items: str },
    api: str,
    version: str,
    node: str,
  },
  required: ['peerId', 'did', 'multiaddrs', 'api', 'version', 'node'],
} as const

export const Usage = {
  type: 'object',
  description: 'All values in bytes except shards',
  properties: { bytes: int, shards: int, capacityBytes: int, freeBytes: int },
  required: ['bytes', 'shards', 'capacityBytes', 'freeBytes'],
} as const

export const SystemStatus = {
  type: 'object',
  properties: {
    uptimeSeconds: int,
    peers: int,
    connections: int,
    usage: Usage,
    shardRequestsInFlight: int,
    shardRequestsServed: int,
    provideQueueDepth: int,
    rssBytes: int,
  },
  required: [
    'uptimeSeconds',
    'peers',
    'connections',
    'usage',
    'shardRequestsInFlight',
    'shardRequestsServed',
    'provideQueueDepth',
    'rssBytes',
  ],
} as const

export const Peers = {
  type: 'object',
  properties: {
    peers: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          peerId: str,
          addr: str,
          direction: str,
          openedAt: int,
          transport: {
            type: 'string',
            enum: ['tcp', 'quic', 'ws', 'memory', 'other'],
            description: 'transport of the connection (for a relayed one, to the relay)',
          },
          relayed: { type: 'boolean', description: 'through a circuit relay (a /p2p-circuit address)' },
          limitBytes: { type: 'integer', description: 'relayed: bytes left before the relay closes it' },
          limitSeconds: { type: 'integer', description: 'relayed: seconds left before the relay closes it' },
          trust: { type: 'number', description: "EigenTrust global trust (this node's view), 0–1" },
          latencyMs: { type: 'number', nullable: true, description: 'EWMA latency of shard transfers, ms' },
          performance: {
            type: 'number',
            description: 'performance score 0–1 (success × latency × throughput)',
          },
        },
        required: ['peerId', 'addr'],
      },
    },
  },
  required: ['peers'],
} as const

export const ConnectBody = {
  type: 'object',
  properties: { multiaddr: { type: 'string', minLength: 1, maxLength: 1024 } },
  required: ['multiaddr'],
  additionalProperties: false,
} as const
export const Reachability = {
  type: 'object',
  properties: {
    reachability: {
      type: 'string',
      enum: ['public', 'relayed', 'private'],
      description:
        'public: a direct address on a public IP (AutoNAT removes observed ones peers cannot dial back); relayed: reachable through a relay reservation only; private: loopback or private addresses only',
    },
    addresses: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          addr: str,
          transport: str,
          relayed: { type: 'boolean' },
          public: { type: 'boolean', description: 'a direct address on a public IP' },
        },
        required: ['addr', 'transport', 'relayed', 'public'],
      },
    },
  },
  required: ['reachability', 'addresses'],
} as const

export const ConnectResult = { type: 'object', properties: { peerId: str }, required: ['peerId'] } as const
export const DisconnectBody = {
  type: 'object',
  properties: { peerId: { type: 'string', minLength: 1, maxLength: 128 } },
  required: ['peerId'],
  additionalProperties: false,
} as const
export const DisconnectResult = {
  type: 'object',
  properties: { peerId: str, closed: { type: 'integer', description: 'connections closed' } },
  required: ['peerId', 'closed'],
} as const

export const PageQuery = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 1000 },
    after: { type: 'string', maxLength: 200 },
  },
  additionalProperties: false,
} as const

export const ShardList = {
  type: 'object',
  properties: {
    shards: {
      type: 'array',
      items: {
        type: 'object',
        properties: { cid: str, size: int, storedAt: int },
        required: ['cid', 'size', 'storedAt'],
      },
    },
    next: nullableStr,
  },
  required: ['shards', 'next'],
} as const

const FileRecord = {
  type: 'object',
  properties: {
    cid: str,
    name: nullableStr,
    bytes: int,
    segments: int,
    k: int,
    m: int,
    createdAt: int,
    expiresAt: nullableInt,
    critical: { type: 'boolean' },
  },
  required: ['cid', 'bytes', 'segments', 'k', 'm', 'createdAt'],
} as const
export const FileList = {
  type: 'object',
  properties: { files: { type: 'array', items: FileRecord } },
  required: ['files'],
} as const

export const PutQuery = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 4096, description: 'file name, informational' },
    ttl: { type: 'integer', minimum: 1, description: 'pin lifetime in seconds; default: no expiry' },
    critical: {
      type: 'boolean',
      description: 'keep extra parity shards (repair.criticalExtraParity) for as long as the pin lasts',
    },
  },
  additionalProperties: false,
} as const

export const PutResult = {
  type: 'object',
  properties: {
    cid: { type: 'string', description: 'manifest CID (CIDv1, dag-cbor, BLAKE3-256), base32' },
    bytes: int,
    segments: int,
    k: int,
    m: int,
    manifestHolders: { type: 'array', items: str },
    holders: { type: 'array', items: str, description: 'distinct peers holding shards' },
    expiresAt: nullableInt,
  },
  required: ['cid', 'bytes', 'segments', 'k', 'm', 'manifestHolders', 'holders'],
} as const

export const CidParams = {
  type: 'object',
  properties: { cid: { type: 'string', minLength: 1, maxLength: 200 } },
  required: ['cid'],
} as const

export const ManifestView = {
  type: 'object',
  properties: {
    cid: str,
    name: nullableStr,
    fileSize: int,
    k: int,
    m: int,
    segmentSize: int,
    uploader: str,
    createdAt: int,
    revision: int,
    segments: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          size: int,
          shardSize: int,
          shards: {
            type: 'array',
            items: {
              type: 'object',
              properties: { cid: str, holders: { type: 'array', items: str } },
              required: ['cid', 'holders'],
            },
          },
        },
        required: ['size', 'shardSize', 'shards'],
      },
    },
  },
  required: ['cid', 'fileSize', 'k', 'm', 'segmentSize', 'uploader', 'createdAt', 'revision', 'segments'],
} as const

export const Unpinned = {
  type: 'object',
  properties: { cid: str, unpinned: { type: 'boolean' } },
  required: ['cid', 'unpinned'],
} as const

export const Identity = {
  type: 'object',
  properties: {
    peerId: str,
    did: str,
    ed25519PublicKey: { type: 'string', description: 'base64, 32 bytes' },
    mldsa65PublicKey: { type: 'string', description: 'base64, 1952 bytes (FIPS 204)' },
  },
  required: ['peerId', 'did', 'ed25519PublicKey', 'mldsa65PublicKey'],
} as const

export const PinBody = {
  type: 'object',
  nullable: true,
  properties: {
    ttl: { type: 'integer', minimum: 1, description: 'pin lifetime in seconds; default: forever' },
    critical: {
      type: 'boolean',
      description:
        "keep extra parity shards (repair.criticalExtraParity) for as long as the pin lasts (keepers honour it for the file's uploader, or with its grant)",
    },
    grant: {
      type: 'string',
      maxLength: 8192,
      description:
        "base64 pin grant from the file's uploader (POST /files/{cid}/grant on its node): holders extend the uploader's leases instead of charging this node's quota",
    },
  },
  additionalProperties: false,
} as const

export const GrantBody = {
  type: 'object',
  properties: {
    pinner: {
      type: 'string',
      minLength: 1,
      maxLength: 128,
      description: 'PeerId of the node allowed to pin',
    },
    ttl: { type: 'integer', minimum: 1, description: 'grant lifetime in seconds; default 30 days' },
  },
  required: ['pinner'],
  additionalProperties: false,
} as const

export const GrantResult = {
  type: 'object',
  properties: {
    cid: str,
    pinner: str,
    expiresAt: { type: 'integer', description: 'ms since the epoch' },
    grant: { type: 'string', description: 'base64 signed pin grant (docs/PROTOCOLS.md, "Storage orders")' },
  },
  required: ['cid', 'pinner', 'expiresAt', 'grant'],
} as const

export const PinResult = {
  type: 'object',
  properties: {
    cid: str,
    expiresAt: nullableInt,
    extended: { type: 'integer', description: 'shard copies whose expiry was extended' },
    missing: { type: 'integer', description: 'listed shard copies their holder no longer has' },
    unreachable: { type: 'integer', description: 'holders that could not be reached' },
  },
  required: ['cid', 'expiresAt', 'extended', 'missing', 'unreachable'],
} as const
