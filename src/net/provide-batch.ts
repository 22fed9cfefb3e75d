/**
 * Batched provider announcements: many CIDs announced with few DHT lookups and one stream per peer.
 *
 * A Kademlia provide (Maymounkov and Mazières, IPTPS 2002, section 2.3; libp2p kad-dht spec) is an
 * iterative lookup for the k peers closest to the key, then an ADD_PROVIDER message to each. kad-dht
 * does that per key, opening a new stream for every message. A holder that has just stored a file's
 * shards announces tens to thousands of keys at once; on a 16-process devnet that cost about 0.2 CPU-s
 * per key across the network, 10× the CPU of the put that stored them (docs/benchmarks-history.md, "Session 4").
 *
 * {@link announceBatch} takes a batch of keys and:
 * 1. reuses a lookup made earlier in the batch for any later key that the lookup provably covers,
 *    so the peers chosen are exactly the k closest the network would give for that key:
 *    - when the lookup found fewer than k peers, it found every reachable peer (the network is smaller
 *      than k), and the k closest to any key are among them;
 *    - otherwise, with x the looked-up key, r the XOR distance from x to the farthest of its k peers,
 *      y the new key and d the distance from y to the k-th closest of those peers: every peer p closer
 *      to y than d has d(y, p) ≤ d − 1, so d(x, p) = d(x, y) ⊕ d(y, p) ≤ d(x, y) | m, where m is
 *      d − 1 with every bit below its highest set. If d(x, y) | m ≤ r, every such peer is within r of
 *      x, so it is among the lookup's peers, and the k closest of those to y are the true k closest.
 *    Keys that no lookup covers get a lookup of their own. In a large network random keys are rarely
 *    covered, and the batch then costs what per-key provides cost, less the streams it shares.
 * 2. sends each peer all its ADD_PROVIDER messages on one stream, a few peers at a time. kad-dht's
 *    inbound handler reads messages from a stream until it ends, so any kad-dht peer accepts this.
 * 3. records this node as a provider of every key in the local provider store first (as kad-dht's own
 *    provide does, so that GET_PROVIDERS answered here include it and kad-dht's reprovider renews it).
 *
 * The message is the spec's protobuf `Message { type = ADD_PROVIDER (2), key = multihash,
 * providerPeers = [PeerInfo { id, addrs }] }`, encoded here (kad-dht does not export its codec).
 */
import { createHash } from 'node:crypto'
import type { PeerId, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { withDeadline } from '../common/abort.ts'
import { concatBytes } from '../common/bytes.ts'
import type { NodusLibp2p } from './host.ts'
import { encodeVarint, lengthPrefixed, sendWithBackpressure } from './stream-io.ts'

/** What {@link announceBatch} needs from the host (kad-dht and libp2p). */
export interface ProvideBatchDeps {
  /** Kademlia bucket size k (kad-dht `kBucketSize`). */
  k: number
  /**
   * The peers closest to `key` (a multihash's bytes) found by an iterative network lookup, at most k
   * (kad-dht `getClosestPeers`, its FINAL_PEER events). Throws on abort.
   */
  closestPeers(key: Uint8Array, options: { signal: AbortSignal }): Promise<PeerId[]>
  /** Record this node as a provider of `cid` in the local provider store. */
  addLocal(cid: CID, options: { signal: AbortSignal }): Promise<void>
  /** This node's PeerId (multihash bytes) and the multiaddrs (bytes) it advertises. */
  self(): { id: Uint8Array; addrs: Uint8Array[] }
  /** Open a stream to `peer` on the DHT protocol. */
  openStream(peer: PeerId, options: { signal: AbortSignal }): Promise<Stream>
}

/** Per-batch limits. */
export interface ProvideBatchOptions {
  /** Peers sent to at once. Default 4. */
  sendConcurrency?: number
  /** Time allowed for one lookup, ms. Default 30 000. */
  lookupTimeoutMs?: number
  /** Time allowed for sending one peer its messages, ms. Default 15 000. */
  sendTimeoutMs?: number
}

/** What one batch did. */
export interface ProvideBatchResult {
  /** Keys in the batch. */
  keys: number
  /** Network lookups made (keys − lookups were covered by an earlier lookup). */
  lookups: number
  /** Peers sent to, and how many of them failed. */
  peers: number
  failedPeers: number
  /** ADD_PROVIDER messages delivered to peers that took the stream. */
  records: number
}

/** The 256-bit Kademlia ID of a key or PeerId: SHA-256 of its multihash bytes (as kad-dht does). */
export function kadId(multihash: Uint8Array): bigint {
  return BigInt(`0x${createHash('sha256').update(multihash).digest('hex')}`)
}

/** Encode ADD_PROVIDER for `key` (multihash bytes) naming `self` as the provider. */
export function encodeAddProvider(
  key: Uint8Array,
  self: { id: Uint8Array; addrs: Uint8Array[] },
): Uint8Array {
  const field = (tag: number, bytes: Uint8Array): Uint8Array[] => [
    Uint8Array.of(tag),
    encodeVarint(bytes.byteLength),
    bytes,
  ]
  const peerInfo = concatBytes([...field(0x0a, self.id), ...self.addrs.flatMap((a) => field(0x12, a))])
  // type (field 1, varint) = 2, key (field 2), providerPeers (field 9)
  return concatBytes([Uint8Array.of(0x08, 2), ...field(0x12, key), ...field(0x4a, peerInfo)])
}

interface Lookup {
  x: bigint
  peers: { id: PeerId; kad: bigint }[]
  /** Fewer than k peers: every reachable peer. */
  exhaustive: boolean
  /** Distance from x to the farthest peer (meaningful when not exhaustive). */
  r: bigint
}

/** The `k` of `peers` closest to `y`, nearest first. */
function closestOf(peers: Lookup['peers'], y: bigint, k: number): Lookup['peers'] {
  return [...peers].sort((a, b) => ((a.kad ^ y) < (b.kad ^ y) ? -1 : 1)).slice(0, k)
}

/** `v` with every bit below its highest set bit set (0 for 0). */
function lowMask(v: bigint): bigint {
  return v <= 0n ? 0n : (1n << BigInt(v.toString(2).length)) - 1n
}

/** The lookup result that provably gives the k closest peers to `y`, if any. */
function coveredBy(lookups: Lookup[], y: bigint, k: number): PeerId[] | undefined {
  for (const l of lookups) {
    if (l.peers.length === 0) continue
    // d(x, y) | m ≥ d(x, y): a lookup whose key is farther from y than r cannot cover it (skips the sort).
    if (!l.exhaustive && (l.x ^ y) > l.r) continue
    const near = closestOf(l.peers, y, k)
    if (l.exhaustive) return near.map((p) => p.id)
    const d = (near[near.length - 1] as Lookup['peers'][number]).kad ^ y
    if (((l.x ^ y) | lowMask(d - 1n)) <= l.r) return near.map((p) => p.id)
  }
  return undefined
}

/**
 * Announce this node as a provider of every CID in `cids` (see the module comment for how).
 * Never throws for a failed peer or lookup (they are counted); throws only when `signal` aborts.
 */
export async function announceBatch(
  deps: ProvideBatchDeps,
  cids: readonly CID[],
  signal: AbortSignal,
  options: ProvideBatchOptions = {},
): Promise<ProvideBatchResult> {
  const k = deps.k
  const result: ProvideBatchResult = { keys: cids.length, lookups: 0, peers: 0, failedPeers: 0, records: 0 }
  for (const cid of cids) await deps.addLocal(cid, { signal })
  const self = deps.self()
  const lookups: Lookup[] = []
  const byPeer = new Map<string, { id: PeerId; messages: Uint8Array[] }>()
  for (const cid of cids) {
    signal.throwIfAborted()
    const key = cid.multihash.bytes
    const y = kadId(key)
    let chosen = coveredBy(lookups, y, k)
    if (chosen === undefined) {
      result.lookups++
      let found: PeerId[] = []
      try {
        using deadline = withDeadline(signal, options.lookupTimeoutMs ?? 30_000, 'closest-peers look-up')
        found = await deps.closestPeers(key, { signal: deadline.signal })
      } catch (err) {
        signal.throwIfAborted()
        void err // a failed lookup announces this key to nobody; the next batch or reprovide retries
      }
      const peers = found.map((id) => ({ id, kad: kadId(id.toMultihash().bytes) }))
      const near = closestOf(peers, y, k)
      const far = near.at(-1)
      lookups.push({ x: y, peers, exhaustive: peers.length < k, r: far === undefined ? 0n : far.kad ^ y })
      chosen = near.map((p) => p.id)
    }
    const message = lengthPrefixed(encodeAddProvider(key, self))
    for (const id of chosen) {
      const s = id.toString()
      let entry = byPeer.get(s)
      if (entry === undefined) {
        entry = { id, messages: [] }
        byPeer.set(s, entry)
      }
      entry.messages.push(message)
    }
  }
  const queue = [...byPeer.values()]
  result.peers = queue.length
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      signal.throwIfAborted()
      using sendDeadline = withDeadline(signal, options.sendTimeoutMs ?? 15_000, 'provider records send')
      const sendSignal = sendDeadline.signal
      let stream: Stream | undefined
      try {
        stream = await deps.openStream(next.id, { signal: sendSignal })
        for (const m of next.messages) await sendWithBackpressure(stream, m, sendSignal)
        await stream.close({ signal: sendSignal })
        result.records += next.messages.length
      } catch (err) {
        stream?.abort(err instanceof Error ? err : new Error(String(err)))
        signal.throwIfAborted()
        result.failedPeers++
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(options.sendConcurrency ?? 4, queue.length) }, worker))
  return result
}

/** The parts of kad-dht 16's KadDHT object used here beyond its public interface. */
interface KadDhtInternals {
  providers?: {
    addProvider?: (cid: CID, provider: PeerId, options?: { signal?: AbortSignal }) => Promise<void>
  }
}

/**
 * {@link ProvideBatchDeps} for a nodus libp2p host whose DHT speaks `protocol`. Undefined when kad-dht
 * does not have the shape of 16.x (no local provider store to add to): callers then provide per key.
 */
export function provideBatchDepsFor(
  libp2p: NodusLibp2p,
  protocol: string,
  k: number,
): ProvideBatchDeps | undefined {
  const dht = libp2p.services.dht
  const providers = (dht as unknown as KadDhtInternals).providers
  const addProvider = providers?.addProvider
  if (providers === undefined || typeof addProvider !== 'function') return undefined
  return {
    k,
    closestPeers: async (key, { signal }) => {
      const peers: PeerId[] = []
      for await (const event of dht.getClosestPeers(key, { signal })) {
        if (event.name === 'FINAL_PEER') peers.push(event.peer.id)
      }
      return peers
    },
    addLocal: (cid, { signal }) => addProvider.call(providers, cid, libp2p.peerId, { signal }),
    self: () => ({
      id: libp2p.peerId.toMultihash().bytes,
      addrs: libp2p.getMultiaddrs().map((m) => m.bytes),
    }),
    openStream: (peer, { signal }) => libp2p.dialProtocol(peer, protocol, { signal }),
  }
}
