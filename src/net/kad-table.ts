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

/** What {@link useSubnetCap} needs. */
export interface SubnetCapOptions {
  /** Most contacts of one subnet in one k-bucket. */
  perBucket: number
  /**
   * The subnet key of a peer (IPv4 /24 or IPv6 /64, gater.ts `subnetKeys().narrow`), from its
   * connection or its known addresses; undefined when unknown or exempt (then it is not capped).
   */
  subnetOf(peer: { toString(): string }): Promise<string | undefined> | string | undefined
  /** Called when a contact is kept out of a bucket (the metric). */
  onRefused?: (() => void) | undefined
}

interface BucketPeer {
  peerId: { toString(): string }
  kadId: Uint8Array
}

/**
 * Cap the contacts of one subnet in each k-bucket of a kad-dht 16 routing table (Saorsa Core's
 * IP-diversity rule against eclipse attacks: an attacker with one /24 cannot fill a bucket). kad-dht's
 * `KBucket.add(peerId)` is wrapped to look up the peer's subnet first, and `_add(peer)` (called again
 * after each split) to refuse the contact when its leaf bucket already holds `perBucket` contacts of
 * that subnet. Private members of kad-dht 16.x, as {@link useKademliaSplitting}: false (unchanged) when
 * the table has another shape. Idempotent.
 */
export function useSubnetCap(dht: unknown, options: SubnetCapOptions): boolean {
  const kb = kbucketOf(dht) as
    | (KBucketInternals & {
        add?: (peerId: unknown, o?: unknown) => Promise<void>
        _add?: (peer: BucketPeer, o?: unknown) => Promise<void>
      })
    | undefined
  if (kb === undefined || typeof kb.add !== 'function' || typeof kb._add !== 'function') return false
  if ((kb as { __nodusSubnetCap?: boolean }).__nodusSubnetCap === true) return true
  /** Subnet of every contact looked up (bounded: rebuilt from the table when it grows past 4096). */
  const subnets = new Map<string, string | undefined>()
  const add = kb.add.bind(kb)
  const addToBucket = kb._add.bind(kb)
  kb.add = async (peerId, o) => {
    const key = String(peerId)
    if (!subnets.has(key)) {
      if (subnets.size >= 4096) {
        const inTable = new Set(allPeers(kb).map((p) => p.peerId.toString()))
        for (const k of subnets.keys()) if (!inTable.has(k)) subnets.delete(k)
      }
      subnets.set(key, await options.subnetOf(peerId as { toString(): string }))
    }
    await add(peerId, o)
  }
  kb._add = async (peer, o) => {
    const subnet = subnets.get(peer.peerId.toString())
    if (subnet !== undefined) {
      const bucket = kb._determineBucket(peer.kadId) as { peers?: BucketPeer[] }
      const peers = bucket.peers ?? []
      const self = peer.peerId.toString()
      if (!peers.some((p) => p.peerId.toString() === self)) {
        let same = 0
        for (const p of peers) if (subnets.get(p.peerId.toString()) === subnet) same++
        if (same >= options.perBucket) {
          options.onRefused?.()
          return
        }
      }
    }
    await addToBucket(peer, o)
  }
  Object.defineProperty(kb, '__nodusSubnetCap', { value: true })
  return true
}

function allPeers(kb: unknown): BucketPeer[] {
  const out: BucketPeer[] = []
  const walk = (b: unknown): void => {
    const node = b as { peers?: BucketPeer[]; left?: unknown; right?: unknown }
    if (Array.isArray(node.peers)) out.push(...node.peers)
    if (node.left !== undefined) walk(node.left)
    if (node.right !== undefined) walk(node.right)
  }
  walk((kb as { root?: unknown }).root)
  return out
}
