/**
 * Kademlia bucket splitting for the routing table of @libp2p/kad-dht 16.
 *
 * kad-dht 16 keeps its contacts in a prefix trie that splits any full bucket until depth
 * `prefixLength` (default 6) and never deeper, so a node knows at most k = 20 peers of its own
 * 6-bit prefix and nothing finer near its own ID. Our simulator (docs/SIMULATOR.md, "The js kad-dht
 * 16 routing table does not scale like Kademlia") measured what that costs: at 100,000 nodes p99 7
 * hops and the closest peer found in only 34 % of lookups.
 *
 * Kademlia (Maymounkov and Mazières, IPTPS 2002, section 2.4), and go-libp2p-kad-dht, split only the
 * bucket whose range contains the node's own ID. {@link useKademliaSplitting} adds that rule to
 * kad-dht's trie: below `prefixLength` every full bucket still splits (kad-dht's own rule, kept for
 * the first hop), and beyond it the bucket on the path to the node's own ID keeps splitting down to
 * `maxDepth`. The table then holds about 2^prefixLength × k + log2(n / 2^prefixLength) × k contacts
 * (1,404 per node at 100,000 nodes in the simulator's `nodus` model, against 1,280), and the
 * simulator measures p99 3 hops with the exact k closest found in every lookup at 100,000 nodes.
 *
 * How: kad-dht's `KBucket._add` decides to split with `bucket.depth < this.prefixLength` right after
 * `this._determineBucket(peer.kadId)`, with no await in between. We wrap `_determineBucket` to
 * remember the leaf it returned, and make `prefixLength` a getter that answers `maxDepth` when that
 * leaf is the one holding the node's own ID, the configured value otherwise. These are private
 * members of kad-dht 16.x: if their shape differs (another version), nothing is changed and the
 * function returns false, so the node runs with kad-dht's default table.
 */

/** The parts of kad-dht 16's KBucket we rely on. */
interface KBucketInternals {
  prefixLength: number
  localPeer?: { kadId: Uint8Array }
  _determineBucket(kadId: Uint8Array): unknown
}

function kbucketOf(dht: unknown): KBucketInternals | undefined {
  const kb = (dht as { routingTable?: { kb?: unknown } } | undefined)?.routingTable?.kb as
    | Partial<KBucketInternals>
    | undefined
  if (kb === undefined || kb === null) return undefined
  if (typeof kb.prefixLength !== 'number' || typeof kb._determineBucket !== 'function') return undefined
  return kb as KBucketInternals
}

/**
 * Make a kad-dht 16 service split its own-ID bucket like Kademlia, down to `maxDepth` bits (default
 * 64; kad-dht IDs are 256 bits). Call before or after start. Idempotent.
 *
 * @param dht the `KadDHT` service (`libp2p.services.dht`)
 * @returns true when applied, false when the routing table does not have kad-dht 16's shape
 */
export function useKademliaSplitting(dht: unknown, options: { maxDepth?: number } = {}): boolean {
  const kb = kbucketOf(dht)
  if (kb === undefined) return false
  if ((kb as { __nodusKademlia?: boolean }).__nodusKademlia === true) return true
  const maxDepth = options.maxDepth ?? 64
  const base = kb.prefixLength
  const determine = kb._determineBucket.bind(kb)
  let last: unknown
  kb._determineBucket = (kadId: Uint8Array): unknown => {
    last = determine(kadId)
    return last
  }
  Object.defineProperty(kb, 'prefixLength', {
    configurable: true,
    enumerable: true,
    get(): number {
      const own = kb.localPeer
      if (last === undefined || own === undefined) return base
      return determine(own.kadId) === last ? Math.max(base, maxDepth) : base
    },
  })
  Object.defineProperty(kb, '__nodusKademlia', { value: true })
  return true
}

/** Depth of each leaf bucket of a kad-dht 16 routing table and its size (for tests and metrics). */
export function routingTableShape(dht: unknown): { depth: number; peers: number; own: boolean }[] {
  const kb = kbucketOf(dht) as (KBucketInternals & { root?: unknown }) | undefined
  if (kb === undefined) return []
  const ownLeaf = kb.localPeer === undefined ? undefined : kb._determineBucket(kb.localPeer.kadId)
  const out: { depth: number; peers: number; own: boolean }[] = []
  const walk = (b: unknown, depth: number): void => {
    const node = b as { peers?: unknown[]; left?: unknown; right?: unknown }
    if (Array.isArray(node.peers)) {
      out.push({ depth, peers: node.peers.length, own: b === ownLeaf })
      return
    }
    if (node.left !== undefined) walk(node.left, depth + 1)
    if (node.right !== undefined) walk(node.right, depth + 1)
  }
  walk(kb.root, 0)
  return out
}
