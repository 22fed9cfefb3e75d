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

/**
 * Slack on responsibility when checking who may sign for a manifest: peers see different parts of the
 * network, so a keeper the uploader chose may rank below `replicas` in another keeper's view.
 */
export const RESPONSIBILITY_SLACK = 2

/**
 * The peers responsible for the key `cidBytes` as one node sees them: the `replicas × slack` closest
 * (XOR) among `peers` (that node's connected peers and itself; duplicates ignored).
 *
 * @param replicas - `storage.manifestReplicas`
 * @param slack - default {@link RESPONSIBILITY_SLACK}
 */
export function responsibleFor(
  cidBytes: Uint8Array,
  peers: readonly string[],
  replicas: number,
  slack = RESPONSIBILITY_SLACK,
): Set<string> {
  return new Set(closestTo(cidBytes, [...new Set(peers)]).slice(0, Math.max(1, replicas * slack)))
}
