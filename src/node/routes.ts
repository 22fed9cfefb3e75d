/**
 * The node's own HTTP routes (tag `system` and `identity`): liveness, readiness, `/system/info`,
 * `/system/status` and `/identity`. They read the parts the composition root built, and only when
 * a request comes; none needs the token.
 */
import { type ApiRoutes, NODUS_VERSION, schemas as S } from '../api/index.ts'
import { didKeyFromEd25519 } from '../crypto/index.ts'
import type { ShardServer, ShardStore } from '../storage/index.ts'

/** The node's DID and public keys, as `GET /identity` shows them. */
export interface IdentityInfo {
  /** libp2p PeerId of the Ed25519 key. */
  peerId: string
  /** did:key of the Ed25519 key. */
  did: string
  /** Raw Ed25519 public key (32 bytes), base64. */
  ed25519PublicKey: string
  /** Raw ML-DSA-65 public key (1952 bytes, FIPS 204), base64. */
  mldsa65PublicKey: string
}

/** The public halves of this node's keys (a NodeIdentity is one). */
export interface PublicIdentity {
  /** libp2p PeerId of the Ed25519 key. */
  peerId: { toString(): string }
  /** `raw`: the Ed25519 public key, 32 bytes. */
  ed25519: { publicKey: { raw: Uint8Array } }
  /** `publicKey`: the ML-DSA-65 public key, 1952 bytes (FIPS 204 pkEncode). */
  mldsa: { publicKey: Uint8Array }
}

/** {@link IdentityInfo} of `identity`, whose did:key is `did` (computed once by the caller: it is costly). */
export function identityInfo(identity: PublicIdentity, did: string): IdentityInfo {
  return {
    peerId: identity.peerId.toString(),
    did,
    ed25519PublicKey: Buffer.from(identity.ed25519.publicKey.raw).toString('base64'),
    mldsa65PublicKey: Buffer.from(identity.mldsa.publicKey).toString('base64'),
  }
}

/** What the node routes use. */
export interface NodeRoutesDeps {
  /** This node's keys (a NodeIdentity; only the public halves are read). */
  identity: PublicIdentity
  /** Connected peers and open connections (counted), and listen addresses: the node's libp2p. */
  libp2p: {
    getPeers(): readonly unknown[]
    getConnections(): readonly unknown[]
    getMultiaddrs(): readonly { toString(): string }[]
  }
  /** Bytes and shards stored, capacity. */
  store: Pick<ShardStore, 'usage'>
  /** Shard requests in flight and served. */
  shardServer: Pick<ShardServer, 'inFlight' | 'served'>
  /** Provider records waiting to be announced. */
  provideQueue: { readonly size: number }
}

/** The node routes, as a plugin for createApiServer. */
export function nodeRoutes(deps: NodeRoutesDeps): ApiRoutes {
  const { identity, libp2p, store, shardServer, provideQueue } = deps
  // Computed at the first request that needs it: validating the key is costly on a hot route.
  let did: string | undefined
  const didOf = (): string => {
    did ??= didKeyFromEd25519(identity.ed25519.publicKey.raw)
    return did
  }
  return (r, ctx) => {
    r.get(
      '/health',
      { schema: { tags: ['system'], summary: 'Liveness: the process answers', response: { 200: S.Ok } } },
      async () => ({ ok: true }),
    )
    r.get(
      '/ready',
      {
        schema: {
          tags: ['system'],
          summary: 'Readiness: the node is started and has peers or runs alone',
          response: { 200: S.Ready },
        },
      },
      async () => ({ ok: true, peers: libp2p.getPeers().length }),
    )
    r.get(
      '/system/info',
      {
        schema: {
          tags: ['system'],
          summary: 'Identity, addresses and version',
          response: { 200: S.SystemInfo },
        },
      },
      async () => ({
        peerId: identity.peerId.toString(),
        did: didOf(),
        multiaddrs: libp2p.getMultiaddrs().map((m) => m.toString()),
        api: ctx.url(),
        version: NODUS_VERSION,
        node: process.version,
      }),
    )
    r.get(
      '/system/status',
      {
        schema: {
          tags: ['system'],
          summary: 'Uptime, peers, usage and in-flight work',
          response: { 200: S.SystemStatus },
        },
      },
      async () => ({
        uptimeSeconds: Math.round(process.uptime()),
        peers: libp2p.getPeers().length,
        connections: libp2p.getConnections().length,
        usage: store.usage(),
        shardRequestsInFlight: shardServer.inFlight,
        shardRequestsServed: shardServer.served,
        provideQueueDepth: provideQueue.size,
        rssBytes: process.memoryUsage().rss,
      }),
    )
    r.get(
      '/identity',
      {
        schema: {
          tags: ['identity'],
          summary: "The node's DID and public keys",
          response: { 200: S.Identity },
        },
      },
      async () => identityInfo(identity, didOf()),
    )
  }
}
