/**
 * How nodus runs gossipsub (@libp2p/gossipsub, the libp2p 3 line): the service's init from the
 * `messaging.*` keys, and the application-specific score (gossipsub's P5) that penalizes peers whose
 * batches this node rejected. The host (src/net/host.ts) runs the service; the messaging area uses it.
 *
 * Gossipsub v1.1/v1.2 (libp2p specs, pubsub/gossipsub): StrictSign (every gossip message signed by its
 * publisher's Ed25519 key and checked before anything else), peer scoring with the default thresholds
 * (gossip −10, publish −50, graylist −80), IDONTWANT (v1.2) for large messages, and the bounds of
 * docs/PROTOCOLS.md, "Pub/sub".
 */
import type { GossipsubOpts } from '@libp2p/gossipsub'
import type { Clock } from '../common/clock.ts'
import type { MessagingOptions } from './options.ts'

/** The init of gossipsub's service factory (`gossipsub(init)`). */
export type GossipsubInit = Partial<GossipsubOpts>

/** Score taken off a peer per batch of it this node rejected (before decay); gossipsub's P5, weight 1. */
export const REJECT_PENALTY = 10
/** A penalty halves every this many ms. */
export const PENALTY_HALF_LIFE_MS = 60_000

/**
 * Recent rejected batches per peer, decaying (half-life {@link PENALTY_HALF_LIFE_MS}), as a score for
 * gossipsub's P5: −{@link REJECT_PENALTY} per reject, so 2 recent rejects put a peer below the gossip
 * threshold (−10: no IHAVE/IWANT with it), 5 below the publish threshold (−50), 8 below the graylist
 * threshold (−80: its RPCs are ignored). Bounded: `maxPeers` peers, least recently penalized forgotten.
 */
export class PeerPenalties {
  readonly #clock: Clock
  readonly #maxPeers: number
  /** peer → penalty at `atMs`. Insertion order = least recently penalized first. */
  readonly #byPeer = new Map<string, { penalty: number; atMs: number }>()

  constructor(clock: Clock, maxPeers: number) {
    this.#clock = clock
    this.#maxPeers = maxPeers
  }

  /** Peers with a penalty remembered. */
  get size(): number {
    return this.#byPeer.size
  }

  #decayed(e: { penalty: number; atMs: number }, now: number): number {
    return e.penalty * 0.5 ** (Math.max(0, now - e.atMs) / PENALTY_HALF_LIFE_MS)
  }

  /** Count one rejected batch against `peer` (PeerId string). */
  reject(peer: string): void {
    const now = this.#clock.now()
    const e = this.#byPeer.get(peer)
    const penalty = (e === undefined ? 0 : this.#decayed(e, now)) + REJECT_PENALTY
    this.#byPeer.delete(peer)
    this.#byPeer.set(peer, { penalty, atMs: now })
    if (this.#byPeer.size > this.#maxPeers) this.#byPeer.delete(this.#byPeer.keys().next().value as string)
  }

  /** Gossipsub's P5 for `peer`: minus its decayed penalty (0 for a peer with none). */
  score(peer: string): number {
    const e = this.#byPeer.get(peer)
    if (e === undefined) return 0
    const p = this.#decayed(e, this.#clock.now())
    if (p < 0.01) {
      this.#byPeer.delete(peer)
      return 0
    }
    return -p
  }
}

/** Hex of `bytes` (message ids as strings: Buffer's native hex, not a JS loop). */
function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/**
 * Gossipsub's init from the `messaging.*` keys, scoring peers with `penalties`.
 *
 * - `fastMsgIdFn`: the gossip message's `from` and `seqno` as they arrived, so a duplicate is dropped
 *   before its signature is verified (without it every duplicate costs a verification:
 *   ../shared/NOTES-libp2p.md). Safe: it is entered in the fast cache only once the signature verified.
 * - The spec'd message id stays gossipsub's StrictSign default: the publisher's key and seqno, no hash.
 * - `batchPublish`: a batch is serialized once for all recipients.
 * - `fallbackToFloodsub` off: floodsub peers would get every batch without scoring.
 */
export function gossipsubInit(o: MessagingOptions, penalties: PeerPenalties): GossipsubInit {
  return {
    globalSignaturePolicy: 'StrictSign',
    emitSelf: false,
    allowPublishToZeroTopicPeers: true,
    ignoreDuplicatePublishError: true,
    fallbackToFloodsub: false,
    floodPublish: o.floodPublish === 'on',
    batchPublish: true,
    heartbeatInterval: o.heartbeatMs,
    seenTTL: o.maxAgeMs,
    fastMsgIdFn: (m) => {
      const from = m.from === undefined ? '' : hex(m.from)
      const seqno = m.seqno === undefined ? '' : hex(m.seqno)
      return `${from}:${seqno}`
    },
    msgIdToStrFn: hex,
    maxInboundDataLength: o.maxRpcBytes,
    maxTopicBytesPerPeer: o.maxPeerSubscriptions * 1024,
    idontwantMaxMessages: o.maxIdontwantPerHeartbeat,
    decodeRpcLimits: {
      maxSubscriptions: o.maxSubscriptionsPerRpc,
      maxMessages: o.maxMessagesPerRpc,
      maxIhaveMessageIDs: o.maxIhaveIdsPerRpc,
      maxIwantMessageIDs: o.maxIwantIdsPerRpc,
      maxIdontwantMessageIDs: o.maxIdontwantPerHeartbeat,
      maxControlMessages: o.maxControlPerRpc,
      maxPeerInfos: 16,
    },
    scoreParams: {
      appSpecificScore: (peer) => penalties.score(peer),
      appSpecificWeight: 1,
      IPColocationFactorWhitelist: new Set(o.colocationExempt),
    },
  }
}
