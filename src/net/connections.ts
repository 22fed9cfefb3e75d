/**
 * What kind of connection a libp2p connection is: its transport (tcp, quic, ws) and whether it runs
 * through a circuit relay (a `/p2p-circuit` address, libp2p `connection.limits`). Read by
 * `GET /network/peers`, the dashboard, `nodus status`, the bulk channel and the shard client.
 */

/** The transport a connection runs on (for a relayed one, the transport to the relay). */
export type TransportName = 'tcp' | 'quic' | 'ws' | 'memory' | 'other'

/** What {@link describeConnection} reads of a connection (a libp2p Connection is one). */
export interface DescribableConnection {
  remoteAddr: { toString(): string }
  /** libp2p: present on a relayed connection (bytes and seconds left before the relay closes it). */
  limits?: { bytes?: bigint; seconds?: number } | undefined
}

/** A connection's transport, and whether it is relayed (with the relay's limits when known). */
export interface ConnectionKind {
  transport: TransportName
  /** True for a circuit relay connection: the bytes pass through a third node within its limits. */
  relayed: boolean
  /** Relayed: bytes left before the relay closes the connection (undefined: no byte limit, or direct). */
  limitBytes?: number
  /** Relayed: seconds left before the relay closes the connection. */
  limitSeconds?: number
}

/** The transport named by a multiaddr string (its first hop, for a circuit address). */
export function transportOf(addr: string): TransportName {
  const hop = addr.split('/p2p-circuit')[0] ?? addr
  if (/\/quic-v1(\/|$)/.test(hop)) return 'quic'
  if (/\/(ws|wss)(\/|$)/.test(hop)) return 'ws'
  if (/\/tcp\/\d+/.test(hop)) return 'tcp'
  if (/^\/memory\//.test(hop)) return 'memory'
  return 'other'
}

/** True when `addr` is a circuit relay address (it contains `/p2p-circuit`). */
export function isCircuitAddr(addr: string): boolean {
  return /\/p2p-circuit(\/|$)/.test(addr)
}

/** The transport and relay status of a connection (the relay's limits when it set any). */
export function describeConnection(c: DescribableConnection): ConnectionKind {
  const addr = c.remoteAddr.toString()
  const relayed = c.limits !== undefined || isCircuitAddr(addr)
  const kind: ConnectionKind = { transport: transportOf(addr), relayed }
  if (c.limits?.bytes !== undefined) kind.limitBytes = Number(c.limits.bytes)
  if (c.limits?.seconds !== undefined) kind.limitSeconds = c.limits.seconds
  return kind
}
