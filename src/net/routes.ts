/**
 * The net area's HTTP routes: `GET /network/peers` (connections with their transport, direct or
 * relayed, and each peer's trust and performance), `GET /network/reachability`, `POST /network/connect`
 * (dial a multiaddr; needs the token) and `POST /network/disconnect` (hang up a peer; needs the token).
 */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { type ApiRoutes, schemas as S } from '../api/index.ts'
import { NodusError } from '../common/errors.ts'
import { describeConnection, isCircuitAddr, transportOf } from './connections.ts'
import { isPublicAddr, reachabilityOf } from './reachability.ts'

/** What `GET /network/peers` shows of a connection (a libp2p Connection is one). */
export interface ConnectionView {
  remotePeer: { toString(): string }
  remoteAddr: { toString(): string }
  /** 'inbound' or 'outbound'. */
  direction: string
  /** `open`: when the connection opened, ms since the epoch. */
  timeline: { open: number }
  /** libp2p: present on a relayed (limited) connection. */
  limits?: { bytes?: bigint; seconds?: number } | undefined
}

/** What the net routes use. */
export interface NetRoutesDeps {
  /** Open connections, and dialing (the node's libp2p). */
  libp2p: {
    getConnections(): readonly ConnectionView[]
    /** The addresses it announces (for `GET /network/reachability`). */
    getMultiaddrs(): readonly { toString(): string }[]
    /** Dial `ma`; resolves with the connection. */
    dial(ma: Multiaddr, options: { signal: AbortSignal }): Promise<{ remotePeer: { toString(): string } }>
    /** Close every connection to `peer`. */
    hangUp(peer: PeerId, options: { signal: AbortSignal }): Promise<void>
  }
  /** A peer's global trust (EigenTrust, this node's view), 0–1, by PeerId string. */
  trust: { score(peer: string): number }
  /** A peer's transfer performance, by PeerId string (trust/perf-monitor.ts). */
  perf: {
    /** EWMA latency in ms (undefined before a sample); undefined for a peer never measured. */
    stats(peer: string): { latencyMs: number | undefined } | undefined
    /** Performance score, 0–1. */
    score(peer: string): number
  }
}

/** How long `POST /network/connect` waits for the dial, ms. */
const DIAL_TIMEOUT_MS = 10_000

/** The net routes, as a plugin for createApiServer. */
export function netRoutes(deps: NetRoutesDeps): ApiRoutes {
  const { libp2p, trust, perf } = deps
  return (r, ctx) => {
    r.get(
      '/network/peers',
      { schema: { tags: ['network'], summary: 'Connected peers', response: { 200: S.Peers } } },
      async () => ({
        peers: libp2p.getConnections().map((c) => ({
          peerId: c.remotePeer.toString(),
          addr: c.remoteAddr.toString(),
          direction: c.direction,
          ...describeConnection(c),
          openedAt: c.timeline.open,
          trust: trust.score(c.remotePeer.toString()),
          latencyMs: perf.stats(c.remotePeer.toString())?.latencyMs ?? null,
          performance: perf.score(c.remotePeer.toString()),
        })),
      }),
    )
    r.get(
      '/network/reachability',
      {
        schema: {
          tags: ['network'],
          summary: 'Whether this node is publicly reachable, relayed, or private (reachability.ts)',
          response: { 200: S.Reachability },
        },
      },
      async () => {
        const addrs = libp2p.getMultiaddrs().map((m) => m.toString())
        return {
          reachability: reachabilityOf(addrs),
          addresses: addrs.map((addr) => ({
            addr,
            transport: transportOf(addr),
            relayed: isCircuitAddr(addr),
            public: isPublicAddr(addr),
          })),
        }
      },
    )
    r.post<{ Body: { multiaddr: string } }>(
      '/network/connect',
      {
        ...ctx.mutating,
        schema: {
          tags: ['network'],
          summary: 'Dial a peer by multiaddr',
          security: [{ bearer: [] }],
          body: S.ConnectBody,
          response: { 200: S.ConnectResult },
        },
      },
      async (req) => {
        let ma: Multiaddr
        try {
          ma = multiaddr(req.body.multiaddr)
        } catch (err) {
          throw new NodusError('INVALID_ARGUMENT', `bad multiaddr: ${(err as Error).message}`)
        }
        try {
          const conn = await libp2p.dial(ma, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
          return { peerId: conn.remotePeer.toString() }
        } catch (err) {
          throw new NodusError(
            'PEER_UNREACHABLE',
            `cannot connect to ${req.body.multiaddr}: ${(err as Error).message}`,
          )
        }
      },
    )
    r.post<{ Body: { peerId: string } }>(
      '/network/disconnect',
      {
        ...ctx.mutating,
        schema: {
          tags: ['network'],
          summary: 'Close every connection to a peer (it may connect again)',
          security: [{ bearer: [] }],
          body: S.DisconnectBody,
          response: { 200: S.DisconnectResult },
        },
      },
      async (req) => {
        let peer: PeerId
        try {
          peer = peerIdFromString(req.body.peerId)
        } catch (err) {
          throw new NodusError('INVALID_ARGUMENT', `bad peerId: ${(err as Error).message}`)
        }
        const closed = libp2p
          .getConnections()
          .filter((c) => c.remotePeer.toString() === req.body.peerId).length
        await libp2p.hangUp(peer, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
        return { peerId: req.body.peerId, closed }
      },
    )
  }
}
