/**
 * Simulated node IDs: random 64-bit Kademlia IDs in flat typed arrays, sorted.
 *
 * Real IDs are 256-bit (SHA-256 of the PeerId in libp2p). Only the leading bits that tell nodes apart
 * matter to routing: with N nodes, IDs differ within their first log2(N) + a few bits (about 20 to 30
 * at 10^6 nodes), and bucket membership, XOR order and therefore hop counts depend only on those. A
 * uniform 64-bit prefix of a uniform 256-bit ID has the same distribution, so 64 bits give the same
 * hop counts while leaving 30+ spare bits; duplicates (probability about N^2 / 2^65) are redrawn.
 *
 * Node `i` is the node of rank `i` in ID order. Because nodes sharing a prefix are contiguous in that
 * order, every prefix (and every k-bucket) is an index range; `prefixStart` finds it in O(1).
 */
import type { Rng } from './rng.ts'

/** N sorted unique 64-bit IDs, split into 32-bit halves, and a prefix index over them. */
export interface IdSpace {
  /** Number of nodes. */
  readonly n: number
  /** High 32 bits of node i's ID (ascending with `lo` as tie-break). */
  readonly hi: Uint32Array
  /** Low 32 bits of node i's ID. */
  readonly lo: Uint32Array
  /** Bits of the prefix index, P. */
  readonly prefixBits: number
  /** `prefixStart[p]` = first rank whose top P bits are >= p; length 2^P + 1. */
  readonly prefixStart: Uint32Array
}

/** Random unique IDs for `n` nodes (1 <= n <= 2^31), sorted. */
export function randomIds(n: number, rng: Rng): IdSpace {
  const all = new BigUint64Array(n)
  const words = new Uint32Array(all.buffer)
  for (let i = 0; i < 2 * n; i++) words[i] = rng.nextU32()
  all.sort()
  // redraw duplicates (about N^2 / 2^65 of them) until unique
  for (;;) {
    let dup = false
    for (let i = 1; i < n; i++) {
      if (all[i] === all[i - 1]) {
        all[i] = (BigInt(rng.nextU32()) << 32n) | BigInt(rng.nextU32())
        dup = true
      }
    }
    if (!dup) break
    all.sort()
  }
  const hi = new Uint32Array(n)
  const lo = new Uint32Array(n)
  for (let i = 0; i < n; i++) {
    lo[i] = words[2 * i] as number
    hi[i] = words[2 * i + 1] as number
  }
  return idSpaceFromSorted(hi, lo)
}

/**
 * Build an {@link IdSpace} from IDs already sorted ascending and unique (e.g. the top 64 bits of real
 * kad-dht IDs). Throws RangeError if they are not.
 */
export function idSpaceFromSorted(hi: Uint32Array, lo: Uint32Array): IdSpace {
  const n = hi.length
  for (let i = 1; i < n; i++) {
    if (cmp(hi[i - 1] as number, lo[i - 1] as number, hi[i] as number, lo[i] as number) >= 0) {
      throw new RangeError('IDs must be sorted and unique')
    }
  }
  const prefixBits = Math.max(4, Math.min(24, Math.ceil(Math.log2(Math.max(2, n))) + 1))
  const size = 2 ** prefixBits
  const prefixStart = new Uint32Array(size + 1)
  const shift = 32 - prefixBits
  let r = 0
  for (let p = 0; p <= size; p++) {
    while (r < n && (hi[r] as number) >>> shift < p) r++
    prefixStart[p] = r
  }
  return { n, hi, lo, prefixBits, prefixStart }
}

/** Compare two 64-bit values given as (hi, lo) unsigned halves: -1, 0 or 1. */
export function cmp(ah: number, al: number, bh: number, bl: number): number {
  if (ah !== bh) return ah < bh ? -1 : 1
  if (al !== bl) return al < bl ? -1 : 1
  return 0
}

/** Number of leading bits two IDs share (0..64): the Kademlia bucket index of one in the other's table. */
export function commonPrefixLength(ah: number, al: number, bh: number, bl: number): number {
  const x = (ah ^ bh) >>> 0
  if (x !== 0) return Math.clz32(x)
  const y = (al ^ bl) >>> 0
  return y === 0 ? 64 : 32 + Math.clz32(y)
}

/** First rank in [from, to) whose ID is >= (h, l); `to` when none. */
export function lowerBound(ids: IdSpace, h: number, l: number, from: number, to: number): number {
  let a = from
  let b = to
  const { hi, lo } = ids
  while (a < b) {
    const m = (a + b) >>> 1
    if (cmp(hi[m] as number, lo[m] as number, h, l) < 0) a = m + 1
    else b = m
  }
  return a
}

/**
 * Index range [start, end) of the nodes whose IDs share the first `depth` bits (0..64) with (h, l).
 * O(1) for depth <= P, a binary search inside the P-bit range beyond.
 */
export function prefixRange(ids: IdSpace, h: number, l: number, depth: number): [number, number] {
  const P = ids.prefixBits
  const top = h >>> (32 - P)
  if (depth <= P) {
    const span = 2 ** (P - depth)
    const first = Math.floor(top / span) * span
    return [ids.prefixStart[first] as number, ids.prefixStart[first + span] as number]
  }
  const from = ids.prefixStart[top] as number
  const to = ids.prefixStart[top + 1] as number
  // lowest and highest IDs with this depth-bit prefix
  let lh: number
  let ll: number
  let uh: number
  let ul: number
  if (depth <= 32) {
    const mask = depth === 32 ? 0xffffffff : ~(0xffffffff >>> depth) >>> 0
    lh = (h & mask) >>> 0
    uh = (lh | ~mask) >>> 0
    ll = 0
    ul = 0xffffffff
  } else {
    const d = depth - 32
    const mask = d === 32 ? 0xffffffff : ~(0xffffffff >>> d) >>> 0
    lh = h
    uh = h
    ll = (l & mask) >>> 0
    ul = (ll | ~mask) >>> 0
  }
  const start = lowerBound(ids, lh, ll, from, to)
  // first rank > (uh, ul)
  let end: number
  if (ul === 0xffffffff && uh === 0xffffffff) end = to
  else if (ul === 0xffffffff) end = lowerBound(ids, uh + 1, 0, start, to)
  else end = lowerBound(ids, uh, ul + 1, start, to)
  return [start, end]
}
