/**
 * Iterative parallel Kademlia lookups (FIND_NODE) over simulated routing tables, on a per-response
 * timeline.
 *
 * Two strategies:
 * - `kad-dht` (default), as js @libp2p/kad-dht 16 does it (src/query/query-path.js): the initiator takes
 *   the k closest contacts from its own table; a queue ordered by XOR distance runs at most `alpha`
 *   requests at once, starting the next as soon as one answers. From each answer it queues only
 *   contacts not seen before, closer to the key than the peer that answered, and able to enter the k
 *   closest peers that have answered; a queued peer that can no longer enter them is skipped. The
 *   lookup ends when nothing is queued or running. Kademlia with asynchronous alpha (paper, 2.3).
 * - `rounds`: the paper's synchronous form (Maymounkov and Mazières 2002, section 2.3): query the
 *   alpha closest not yet queried, wait for all of them (or their timeouts), merge every returned
 *   contact, repeat until the k closest known that answered have all been queried.
 *
 * Timing: every request costs `rttsPerRpc` round trips from the initiator to the peer (1: connection
 * already open), or `timeoutMs` when the peer is offline. Lookup latency is the time at which the
 * lookup ends (what a caller of getClosestPeers waits); `closestFoundMs` is when the peer that turns
 * out closest answered.
 *
 * Hops: a peer in the initiator's own table is at hop 1; a peer first queued from the answer of a
 * peer at hop h is at hop h + 1. A lookup's `hops` is the hop of the closest peer it returns: the
 * length of the chain of requests that led to it. The same rule rebuilds hops from the real
 * kad-dht's PEER_RESPONSE events (bench/sim-validate.ts), so the two are comparable.
 */
import { type IdSpace, prefixRange } from './ids.ts'
import type { LatencyModel } from './latency.ts'
import { rttMs } from './latency.ts'
import type { RoutingTables } from './routing-table.ts'

export type LookupStrategy = 'kad-dht' | 'rounds'

/** Lookup parameters. */
export interface LookupOptions {
  /** Parallel requests; default 3 (nodus createHost; the paper's alpha). */
  alpha: number
  /** Result size and per-answer contact count; default 20. */
  k: number
  /** Default `kad-dht`. */
  strategy: LookupStrategy
  /** Cost of a request to an offline peer, ms; default 1,000. */
  timeoutMs: number
  /** Round trips per request: 1 for an open connection (default); about 4 with a fresh TCP + Noise dial. */
  rttsPerRpc: number
}

export const DEFAULT_LOOKUP_OPTIONS: Readonly<LookupOptions> = Object.freeze({
  alpha: 3,
  k: 20,
  strategy: 'kad-dht',
  timeoutMs: 1000,
  rttsPerRpc: 1,
})

/** What the simulator knows about the network. */
export interface SimNetwork {
  readonly ids: IdSpace
  readonly tables: RoutingTables
  /** 1 = online, 0 = offline (its entries stay in others' tables). */
  readonly alive: Uint8Array
  readonly latency: LatencyModel
}

/** One lookup's outcome. */
export interface LookupResult {
  /** Hop of the closest peer returned (see module doc); 0 when nothing answered. */
  hops: number
  /** Largest hop among the peers returned. */
  deepestHop: number
  /** Requests sent (including those that timed out). */
  rpcs: number
  /** Requests to offline peers. */
  timeouts: number
  /** Time until the lookup ended, ms. */
  latencyMs: number
  /** Time at which the returned closest peer answered, ms. */
  closestFoundMs: number
  /** Node ranks of the closest peers that answered, closest first (up to k). */
  found: number[]
}

const QUEUED = 0
const RUNNING = 1
const ANSWERED = 2
const FAILED = 3
const SKIPPED = 4

/** Runs lookups on one network; reuses its buffers between lookups. Not re-entrant. */
export class LookupEngine {
  readonly #net: SimNetwork
  readonly #opt: LookupOptions
  readonly #seen: Int32Array
  #serial = 0
  // candidates of the current lookup
  #cap = 1024
  #node = new Int32Array(1024)
  #dh = new Uint32Array(1024)
  #dl = new Uint32Array(1024)
  #hop = new Int32Array(1024)
  #state = new Uint8Array(1024)
  #finish = new Float64Array(1024)
  #count = 0
  // answered peers, closest first (candidate indexes), at most k
  readonly #closest: Int32Array
  #closestLen = 0
  // scratch for "k closest in a table"
  readonly #bestNode: Int32Array
  readonly #bestDh: Uint32Array
  readonly #bestDl: Uint32Array

  constructor(net: SimNetwork, options: LookupOptions) {
    this.#net = net
    this.#opt = options
    this.#seen = new Int32Array(net.ids.n)
    this.#closest = new Int32Array(options.k)
    this.#bestNode = new Int32Array(options.k)
    this.#bestDh = new Uint32Array(options.k)
    this.#bestDl = new Uint32Array(options.k)
  }

  /**
   * The up-to-k contacts in node x's table closest to the key (kh, kl), never `skip`; written to the
   * scratch arrays, closest first. Returns the count.
   */
  #closestInTable(x: number, kh: number, kl: number, skip: number): number {
    const { offsets, entries } = this.#net.tables
    const { hi, lo } = this.#net.ids
    const k = this.#opt.k
    const bn = this.#bestNode
    const bh = this.#bestDh
    const bl = this.#bestDl
    let len = 0
    const end = offsets[x + 1] as number
    for (let i = offsets[x] as number; i < end; i++) {
      const c = entries[i] as number
      if (c === skip) continue
      const dh = ((hi[c] as number) ^ kh) >>> 0
      const dl = ((lo[c] as number) ^ kl) >>> 0
      if (len === k) {
        const lh = bh[k - 1] as number
        if (dh > lh || (dh === lh && dl >= (bl[k - 1] as number))) continue
      } else len++
      let j = len - 1
      while (j > 0) {
        const ph = bh[j - 1] as number
        if (ph < dh || (ph === dh && (bl[j - 1] as number) < dl)) break
        bn[j] = bn[j - 1] as number
        bh[j] = ph
        bl[j] = bl[j - 1] as number
        j--
      }
      bn[j] = c
      bh[j] = dh
      bl[j] = dl
    }
    return len
  }

  #grow(): void {
    const cap = this.#cap * 2
    const grow32 = <T extends Int32Array | Uint32Array | Float64Array | Uint8Array>(a: T, b: T): T => {
      b.set(a)
      return b
    }
    this.#node = grow32(this.#node, new Int32Array(cap))
    this.#dh = grow32(this.#dh, new Uint32Array(cap))
    this.#dl = grow32(this.#dl, new Uint32Array(cap))
    this.#hop = grow32(this.#hop, new Int32Array(cap))
    this.#state = grow32(this.#state, new Uint8Array(cap))
    this.#finish = grow32(this.#finish, new Float64Array(cap))
    this.#cap = cap
  }

  #add(node: number, dh: number, dl: number, hop: number): void {
    if (this.#count === this.#cap) this.#grow()
    const i = this.#count++
    this.#node[i] = node
    this.#dh[i] = dh
    this.#dl[i] = dl
    this.#hop[i] = hop
    this.#state[i] = QUEUED
    this.#seen[node] = this.#serial
  }

  /** Could a peer at distance (dh, dl) still enter the k closest answered peers? */
  #canEnter(dh: number, dl: number): boolean {
    if (this.#closestLen < this.#opt.k) return true
    const last = this.#closest[this.#opt.k - 1] as number
    const lh = this.#dh[last] as number
    return dh < lh || (dh === lh && dl < (this.#dl[last] as number))
  }

  #insertClosest(c: number): void {
    const k = this.#opt.k
    const dh = this.#dh[c] as number
    const dl = this.#dl[c] as number
    if (!this.#canEnter(dh, dl)) return
    if (this.#closestLen < k) this.#closestLen++
    let j = this.#closestLen - 1
    while (j > 0) {
      const p = this.#closest[j - 1] as number
      const ph = this.#dh[p] as number
      if (ph < dh || (ph === dh && (this.#dl[p] as number) < dl)) break
      this.#closest[j] = p
      j--
    }
    this.#closest[j] = c
  }

  /** Start the queued candidate closest to the key that can still matter; false when none is left. */
  #dispatch(now: number, src: number): boolean {
    for (;;) {
      let best = -1
      for (let i = 0; i < this.#count; i++) {
        if (this.#state[i] !== QUEUED) continue
        if (
          best < 0 ||
          (this.#dh[i] as number) < (this.#dh[best] as number) ||
          ((this.#dh[i] as number) === (this.#dh[best] as number) &&
            (this.#dl[i] as number) < (this.#dl[best] as number))
        ) {
          best = i
        }
      }
      if (best < 0) return false
      if (!this.#canEnter(this.#dh[best] as number, this.#dl[best] as number)) {
        this.#state[best] = SKIPPED
        continue
      }
      const peer = this.#node[best] as number
      this.#state[best] = RUNNING
      this.#finish[best] =
        now +
        (this.#net.alive[peer] === 1
          ? rttMs(this.#net.latency, src, peer) * this.#opt.rttsPerRpc
          : this.#opt.timeoutMs)
      return true
    }
  }

  /**
   * Look up the k closest nodes to the 64-bit key (kh, kl) from node `src`.
   *
   * @param src initiator's node rank (should be online)
   * @param kh high 32 bits of the key
   * @param kl low 32 bits of the key
   */
  lookup(src: number, kh: number, kl: number): LookupResult {
    const { alive } = this.#net
    const { alpha, strategy } = this.#opt
    const closerOnly = strategy === 'kad-dht'
    this.#serial++
    this.#count = 0
    this.#closestLen = 0
    this.#seen[src] = this.#serial
    const start = this.#closestInTable(src, kh, kl, src)
    for (let j = 0; j < start; j++) {
      this.#add(this.#bestNode[j] as number, this.#bestDh[j] as number, this.#bestDl[j] as number, 1)
    }
    let now = 0
    let running = 0
    let rpcs = 0
    let timeouts = 0
    for (;;) {
      if (strategy === 'rounds') {
        if (running === 0) {
          while (running < alpha && this.#dispatch(now, src)) running++
        }
      } else {
        while (running < alpha && this.#dispatch(now, src)) running++
      }
      if (running === 0) break
      // next answer (or timeout) on the timeline
      let next = -1
      for (let i = 0; i < this.#count; i++) {
        if (
          this.#state[i] === RUNNING &&
          (next < 0 || (this.#finish[i] as number) < (this.#finish[next] as number))
        ) {
          next = i
        }
      }
      if (next < 0) break
      running--
      rpcs++
      now = this.#finish[next] as number
      const peer = this.#node[next] as number
      if (alive[peer] !== 1) {
        this.#state[next] = FAILED
        timeouts++
        continue
      }
      this.#state[next] = ANSWERED
      this.#insertClosest(next)
      const pdh = this.#dh[next] as number
      const pdl = this.#dl[next] as number
      const hop = (this.#hop[next] as number) + 1
      const m = this.#closestInTable(peer, kh, kl, src)
      for (let j = 0; j < m; j++) {
        const c = this.#bestNode[j] as number
        if (this.#seen[c] === this.#serial) continue
        const dh = this.#bestDh[j] as number
        const dl = this.#bestDl[j] as number
        if (closerOnly && (dh > pdh || (dh === pdh && dl >= pdl))) continue
        if (!this.#canEnter(dh, dl)) continue
        this.#add(c, dh, dl, hop)
      }
    }
    const found: number[] = []
    let deepest = 0
    for (let j = 0; j < this.#closestLen; j++) {
      const c = this.#closest[j] as number
      found.push(this.#node[c] as number)
      deepest = Math.max(deepest, this.#hop[c] as number)
    }
    const first = this.#closestLen > 0 ? (this.#closest[0] as number) : -1
    return {
      hops: first >= 0 ? (this.#hop[first] as number) : 0,
      deepestHop: deepest,
      rpcs,
      timeouts,
      latencyMs: now,
      closestFoundMs: first >= 0 ? (this.#finish[first] as number) : now,
      found,
    }
  }
}

/**
 * The true k closest online nodes to key (kh, kl) by XOR distance, closest first, leaving out node
 * `exclude` (the initiator: a lookup never returns itself; -1 for none), for checking lookups. Uses
 * the prefix structure: the k closest lie in the deepest key prefix holding k eligible nodes.
 */
export function trueClosest(
  ids: IdSpace,
  alive: Uint8Array,
  kh: number,
  kl: number,
  k: number,
  exclude = -1,
): number[] {
  const ok = (r: number): boolean => alive[r] === 1 && r !== exclude
  let depth = 0
  // deepest prefix of the key with at least k nodes
  for (let d = 1; d <= 64; d++) {
    const [s, e] = prefixRange(ids, kh, kl, d)
    if (e - s < k + 1) break
    depth = d
  }
  let s = 0
  let e = ids.n
  for (let d = depth; d >= 0; d--) {
    ;[s, e] = prefixRange(ids, kh, kl, d)
    let live = 0
    for (let r = s; r < e && live < k; r++) if (ok(r)) live++
    if (live >= k || d === 0) break
  }
  const pool: number[] = []
  for (let r = s; r < e; r++) if (ok(r)) pool.push(r)
  const dist = (r: number): [number, number] => [
    ((ids.hi[r] as number) ^ kh) >>> 0,
    ((ids.lo[r] as number) ^ kl) >>> 0,
  ]
  pool.sort((a, b) => {
    const [ah, al] = dist(a)
    const [bh, bl] = dist(b)
    return ah !== bh ? ah - bh : al - bl
  })
  return pool.slice(0, k)
}
