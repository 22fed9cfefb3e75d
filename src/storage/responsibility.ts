/**
 * Who is responsible for a manifest: the peers closest to its CID in the Kademlia XOR metric, with
 * keys mapped as libp2p kad-dht maps them (SHA-256 of the key bytes; a PeerId's key is its multihash).
 * Pure functions, so the simulator can use them too.
 */
import { createHash } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'

function kadId(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest()
}

/** The Kademlia key of a PeerId string (SHA-256 of its multihash bytes). */
export function peerKadId(peerId: string): Uint8Array {
  return kadId(peerIdFromString(peerId).toMultihash().bytes)
}

/** Compare XOR distances of `a` and `b` to `target` (all 32 bytes): negative when `a` is closer. */
export function compareXor(target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const da = (a[i] as number) ^ (target[i] as number)
    const db = (b[i] as number) ^ (target[i] as number)
    if (da !== db) return da - db
  }
  return 0
}

/**
 * `peers` (PeerId strings) sorted by XOR distance to the key `cidBytes` (closest first).
 * Ties cannot happen between distinct peers.
 */
export function closestTo(cidBytes: Uint8Array, peers: readonly string[]): string[] {
  const target = kadId(cidBytes)
  const keyed = peers.map((p) => ({ p, k: peerKadId(p) }))
  keyed.sort((x, y) => compareXor(target, x.k, y.k))
  return keyed.map((x) => x.p)
}
