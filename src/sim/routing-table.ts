/**
 * Routing tables for every simulated node, built directly from the sorted ID space.
 *
 * Two models:
 * - `kademlia` (Maymounkov and Mazières, "Kademlia: A Peer-to-peer Information System Based on the XOR
 *   Metric", IPTPS 2002, section 2.2; go-libp2p-kad-dht does the same): bucket i of node x holds up to
 *   k nodes whose IDs share exactly i leading bits with x. Those nodes are one contiguous range in ID
 *   order (same first i bits as x, bit i flipped), so a bucket is "sample up to k of a range".
 * - `trie` (js @libp2p/kad-dht 16.x, which nodus runs): a prefix trie that splits any full bucket
 *   until depth `prefixLength` (default 6), whatever the node's own ID, so a node keeps up to k nodes
 *   in each of the 2^prefixLength prefixes: at most 64 x 20 = 1,280 contacts, and no finer structure
 *   near its own ID.
 * - `nodus`: the kad-dht 16 trie as nodus runs it (src/net/kad-table.ts): the same 2^prefixLength
 *   prefix buckets, and inside the node's own prefix Kademlia buckets (split only toward its own ID)
 *   down to full depth.
 *
 * Contacts are a uniform sample of the eligible nodes (real buckets prefer long-lived contacts; with
 * no churn history that is the same as uniform). Storage is flat: `entries[offsets[x] ..
 * offsets[x+1])` are node x's contacts (node ranks), bucket by bucket, so 10^6 nodes with about 330
 * contacts each take about 1.3 GB.
 */
import { commonPrefixLength, type IdSpace, prefixRange } from './ids.ts'
import type { Rng } from './rng.ts'

export type TableModel = 'kademlia' | 'trie' | 'nodus'

/** Shape of the routing tables. */
export interface TableOptions {
  /** Bucket model; default `kademlia`. */
  model: TableModel
  /** Bucket size k (contacts per bucket); default 20 (paper and kad-dht). */
  k: number
  /** Trie depth for models `trie` and `nodus`, 1..16; default 6 (kad-dht 16 `prefixLength`). */
  prefixLength: number
}

export const DEFAULT_TABLE_OPTIONS: Readonly<TableOptions> = Object.freeze({
  model: 'kademlia',
  k: 20,
  prefixLength: 6,
})

/** All nodes' routing tables in two flat arrays. */
export interface RoutingTables {
  readonly model: TableModel
  readonly k: number
  readonly prefixLength: number
  /** Node x's contacts are `entries[offsets[x]] .. entries[offsets[x + 1] - 1]`; length n + 1. */
  readonly offsets: Uint32Array
  /** Contact node ranks. */
  readonly entries: Uint32Array
}

/**
 * Visit node x's buckets as index ranges of eligible nodes: `visit(bucket, start, end, exclude)`;
 * `exclude` is a rank inside [start, end) that must not be chosen (x itself), or -1.
 */
function forEachBucket(
  ids: IdSpace,
  x: number,
  options: TableOptions,
  visit: (bucket: number, start: number, end: number, exclude: number) => void,
): void {
  const h = ids.hi[x] as number
  const l = ids.lo[x] as number
  let first = 0
  let bucketBase = 0
  if (options.model === 'trie' || options.model === 'nodus') {
    const depth = options.prefixLength
    const buckets = 2 ** depth
    const shift = 2 ** (32 - depth)
    const own = depth === 0 ? 0 : h >>> (32 - depth)
    for (let p = 0; p < buckets; p++) {
      if (options.model === 'nodus' && p === own) continue
      const [s, e] = prefixRange(ids, p * shift, 0, depth)
      if (e > s) visit(p, s, e, x >= s && x < e ? x : -1)
    }
    if (options.model === 'trie') return
    // nodus: Kademlia buckets inside the own prefix, numbered after the prefix buckets.
    first = depth
    bucketBase = buckets
  }
  let [start, end] = prefixRange(ids, h, l, first)
  if (end - start <= 1) return
  for (let d = first; d < 64; d++) {
    const [s2, e2] = prefixRange(ids, h, l, d + 1)
    // bucket d: same first d bits as x, bit d differs; the part of [start, end) outside [s2, e2)
    if (s2 > start) visit(bucketBase + d, start, s2, -1)
    else if (end > e2) visit(bucketBase + d, e2, end, -1)
    if (e2 - s2 <= 1) return
    start = s2
    end = e2
  }
}

/** Number of contacts node x gets (no randomness). */
function tableSize(ids: IdSpace, x: number, options: TableOptions): number {
  let count = 0
  forEachBucket(ids, x, options, (_b, s, e, ex) => {
    count += Math.min(options.k, e - s - (ex >= 0 ? 1 : 0))
  })
  return count
}

/**
 * Write up to `k` distinct uniform picks from [start, end) minus `exclude` into out[at ..]; returns how
 * many were written (all of them when the range is small).
 */
function sampleRange(
  start: number,
  end: number,
  exclude: number,
  k: number,
  rng: Rng,
  out: Uint32Array,
  at: number,
): number {
  const size = end - start - (exclude >= 0 ? 1 : 0)
  if (size <= k) {
    let w = at
    for (let r = start; r < end; r++) if (r !== exclude) out[w++] = r
    return w - at
  }
  for (let j = 0; j < k; j++) {
    let v: number
    let dup: boolean
    do {
      v = start + rng.nextInt(size)
      if (exclude >= 0 && v >= exclude) v++
      dup = false
      for (let q = at; q < at + j; q++) {
        if (out[q] === v) {
          dup = true
          break
        }
      }
    } while (dup)
    out[at + j] = v
  }
  return k
}

/**
 * Build every node's routing table: a count pass, then a fill pass, in O(n x buckets x k).
 *
 * @param ids the sorted ID space
 * @param options bucket model and k; see {@link DEFAULT_TABLE_OPTIONS}
 * @param rng seeded source for the contact samples
 * @param onProgress called every 65,536 nodes with the number done (for RSS sampling and progress)
 */
export function buildRoutingTables(
  ids: IdSpace,
  options: TableOptions,
  rng: Rng,
  onProgress?: (done: number) => void,
): RoutingTables {
  const n = ids.n
  const offsets = new Uint32Array(n + 1)
  let total = 0
  for (let x = 0; x < n; x++) {
    offsets[x] = total
    total += tableSize(ids, x, options)
    if (total > 0xffffffff) throw new RangeError('routing tables exceed 2^32 entries')
  }
  offsets[n] = total
  onProgress?.(0)
  const entries = new Uint32Array(total)
  const k = options.k
  for (let x = 0; x < n; x++) {
    let at = offsets[x] as number
    forEachBucket(ids, x, options, (_b, s, e, ex) => {
      at += sampleRange(s, e, ex, k, rng, entries, at)
    })
    if ((x & 0xffff) === 0xffff) onProgress?.(x + 1)
  }
  onProgress?.(n)
  return { model: options.model, k, prefixLength: options.prefixLength, offsets, entries }
}

/**
 * Build tables from explicit contact lists (e.g. real kad-dht routing tables), node ranks per node.
 */
export function tablesFromLists(lists: readonly (readonly number[])[], k: number): RoutingTables {
  const offsets = new Uint32Array(lists.length + 1)
  let total = 0
  for (let x = 0; x < lists.length; x++) {
    offsets[x] = total
    total += lists[x]?.length ?? 0
  }
  offsets[lists.length] = total
  const entries = new Uint32Array(total)
  let at = 0
  for (const list of lists) for (const c of list) entries[at++] = c
  return { model: 'kademlia', k, prefixLength: 0, offsets, entries }
}

/** Bucket of contact c in node x's table under the tables' model. */
export function bucketOf(ids: IdSpace, tables: RoutingTables, x: number, c: number): number {
  if (tables.model === 'trie') return (ids.hi[c] as number) >>> (32 - tables.prefixLength)
  const cpl = commonPrefixLength(
    ids.hi[x] as number,
    ids.lo[x] as number,
    ids.hi[c] as number,
    ids.lo[c] as number,
  )
  if (tables.model === 'nodus') {
    const P = tables.prefixLength
    return cpl < P ? (ids.hi[c] as number) >>> (32 - P) : 2 ** P + cpl
  }
  return cpl
}

/** Routing-table health of the live nodes once some nodes are offline. */
export interface TableHealth {
  /** Contacts of live nodes that are live / all contacts of live nodes. */
  liveEntryFraction: number
  /** Non-empty buckets of live nodes in which no contact is live. */
  deadBucketFraction: number
  /** Live nodes with at least one such dead bucket. */
  nodesWithDeadBucketFraction: number
  /** Mean contacts per node. */
  meanEntries: number
}

/** Measure {@link TableHealth}; `alive[x]` is 1 for a live node. O(total entries). */
export function tableHealth(ids: IdSpace, tables: RoutingTables, alive: Uint8Array): TableHealth {
  let liveNodes = 0
  let entries = 0
  let liveEntries = 0
  let buckets = 0
  let deadBuckets = 0
  let nodesWithDead = 0
  const { offsets, entries: e } = tables
  for (let x = 0; x < ids.n; x++) {
    if (alive[x] !== 1) continue
    liveNodes++
    const s = offsets[x] as number
    const end = offsets[x + 1] as number
    let current = -1
    let bucketLive = 0
    let hasDead = false
    for (let i = s; i < end; i++) {
      const c = e[i] as number
      const b = bucketOf(ids, tables, x, c)
      if (b !== current) {
        if (current >= 0 && bucketLive === 0) {
          deadBuckets++
          hasDead = true
        }
        current = b
        bucketLive = 0
        buckets++
      }
      entries++
      if (alive[c] === 1) {
        liveEntries++
        bucketLive++
      }
    }
    if (current >= 0 && bucketLive === 0) {
      deadBuckets++
      hasDead = true
    }
    if (hasDead) nodesWithDead++
  }
  return {
    liveEntryFraction: entries === 0 ? 0 : liveEntries / entries,
    deadBucketFraction: buckets === 0 ? 0 : deadBuckets / buckets,
    nodesWithDeadBucketFraction: liveNodes === 0 ? 0 : nodesWithDead / liveNodes,
    meanEntries: ids.n === 0 ? 0 : (offsets[ids.n] as number) / ids.n,
  }
}
