/**
 * The peers XOR-closest to a key (Kademlia, Maymounkov & Mazières 2002): a kad-dht lookup bounded in
 * time, plus the connected peers, sorted by the XOR distance of their kad ids (SHA-256, as kad-dht's
 * routing table measures it) to the key's. The keepers of a mailbox and of a kv database are found
 * this way.
 */
import { createHash } from 'node:crypto'
import type { Connection, PeerId } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'

/** What {@link closestPeers} needs of libp2p. */
export interface ClosestPeersHost {
  readonly peerId: PeerId
  getConnections(peer?: PeerId): Connection[]
  readonly services: { dht: Pick<KadDHT, 'getClosestPeers'> }
}

/** The kad-dht id of a key: SHA-256 of it. */
export function kadId(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest()
}

/** Order of `a` and `b` by XOR distance to `target` (all kad ids of one length). */
export function xorCompare(a: Uint8Array, b: Uint8Array, target: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const da = (a[i] as number) ^ (target[i] as number)
    const db = (b[i] as number) ^ (target[i] as number)
    if (da !== db) return da - db
  }
  return 0
}

/**
 * Up to `n` peers XOR-closest to `key` that this node can find: a kad-dht lookup of `key` (cut off
 * after `timeoutMs`, keeping what it found by then) and the connected peers; never this node nor
 * `exclude`. With no connection, no lookup (kad-dht would wait for its timeout): the empty list.
 * @throws the signal's reason when `signal` aborts
 */
export async function closestPeers(
  host: ClosestPeersHost,
  key: Uint8Array,
  n: number,
  options: { signal: AbortSignal; timeoutMs: number; exclude?: string; onError?: (err: unknown) => void },
): Promise<PeerId[]> {
  if (host.getConnections().length === 0 || n <= 0) return []
  const found = new Map<string, PeerId>()
  const query = AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)])
  try {
    for await (const ev of host.services.dht.getClosestPeers(key, { signal: query })) {
      if (ev.name === 'FINAL_PEER') found.set(ev.peer.id.toString(), ev.peer.id)
    }
  } catch (err) {
    if (options.signal.aborted) throw options.signal.reason
    options.onError?.(err)
  }
  for (const c of host.getConnections()) found.set(c.remotePeer.toString(), c.remotePeer)
  found.delete(host.peerId.toString())
  if (options.exclude !== undefined) found.delete(options.exclude)
  const t = kadId(key)
  return [...found.values()]
    .map((p) => ({ p, d: kadId(p.toMultihash().bytes) }))
    .sort((a, b) => xorCompare(a.d, b.d, t))
    .slice(0, n)
    .map((x) => x.p)
}

/** What {@link closestPeersLocal} needs of libp2p: the kad-dht service is optional and read structurally. */
export interface LocalClosestHost {
  readonly peerId: PeerId
  getConnections(peer?: PeerId): Connection[]
  readonly services: { dht?: unknown }
}

/** kad-dht's routing table, as far as {@link closestPeersLocal} uses it (kad-dht 16's `routingTable`). */
interface RoutingTableView {
  closestPeers(kadId: Uint8Array, options?: { count?: number }): PeerId[]
}

function routingTableOf(dht: unknown): RoutingTableView | undefined {
  const rt = (dht as { routingTable?: unknown } | undefined)?.routingTable as
    | Partial<RoutingTableView>
    | undefined
  return typeof rt?.closestPeers === 'function' ? (rt as RoutingTableView) : undefined
}

/**
 * Up to `count` peers of kad-dht's routing table XOR-closest to the kad id `target` (32 bytes, already
 * hashed: {@link kadId}); none when `dht` has no routing table.
 */
export function routingTableClosest(dht: unknown, target: Uint8Array, count: number): PeerId[] {
  return routingTableOf(dht)?.closestPeers(target, { count }) ?? []
}

/**
 * Up to `n` peers XOR-closest to `key` in this node's own view, with no network request: its kad-dht
 * routing table's closest and its connected peers; never this node. What a node checks when a peer
 * claims it is one of a key's keepers (kv), where a lookup per request would let the peer make it
 * query the network at will.
 */
export function closestPeersLocal(host: LocalClosestHost, key: Uint8Array, n: number): PeerId[] {
  if (n <= 0) return []
  const t = kadId(key)
  const found = new Map<string, PeerId>()
  for (const p of routingTableOf(host.services.dht)?.closestPeers(t, { count: n }) ?? [])
    found.set(p.toString(), p)
  for (const c of host.getConnections()) found.set(c.remotePeer.toString(), c.remotePeer)
  found.delete(host.peerId.toString())
  return [...found.values()]
    .map((p) => ({ p, d: kadId(p.toMultihash().bytes) }))
    .sort((a, b) => xorCompare(a.d, b.d, t))
    .slice(0, n)
    .map((x) => x.p)
}
