/**
 * Request slots shared fairly between peers: a global limit, a per-peer limit and a per-group limit
 * (a group is the peer's IP subnet, say), with no waiting queue — `tryAcquire` takes a slot or says
 * which limit said no, so an overloaded server answers "busy" instead of queueing without bound.
 *
 * One peer can hold at most `perPeer` slots and one group at most `perGroup`, so a single peer (or a
 * host with many PeerIds) cannot take the slots every other peer needs. Counters per key are dropped
 * when they reach zero, so memory is bounded by the slots in use.
 */
export interface FairSlotsOptions {
  /** Slots in use at once across all peers. */
  global: number
  /** Slots one peer may hold at once. */
  perPeer: number
  /** Slots one group (e.g. an IPv4 /24) may hold at once. */
  perGroup: number
}

/** Which limit refused a slot. */
export type SlotRefusal = 'global' | 'peer' | 'group'

export class FairSlots {
  readonly options: Readonly<FairSlotsOptions>
  #inUse = 0
  readonly #peers = new Map<string, number>()
  readonly #groups = new Map<string, number>()

  constructor(options: FairSlotsOptions) {
    for (const [k, v] of Object.entries(options)) {
      if (!Number.isSafeInteger(v) || v < 0)
        throw new RangeError(`FairSlots ${k} must be a non-negative integer`)
    }
    this.options = Object.freeze({ ...options })
  }

  /** Slots in use across all peers. */
  get inUse(): number {
    return this.#inUse
  }

  /** Slots `peer` holds. */
  heldBy(peer: string): number {
    return this.#peers.get(peer) ?? 0
  }

  /**
   * Take a slot for `peer` (in `group`, when known: undefined = no group limit, e.g. an exempt
   * address). Returns a release function (idempotent), or the limit that refused.
   */
  tryAcquire(peer: string, group?: string): { release: () => void } | { refused: SlotRefusal } {
    if (this.#inUse >= this.options.global) return { refused: 'global' }
    const p = this.#peers.get(peer) ?? 0
    if (p >= this.options.perPeer) return { refused: 'peer' }
    const g = group === undefined ? 0 : (this.#groups.get(group) ?? 0)
    if (group !== undefined && g >= this.options.perGroup) return { refused: 'group' }
    this.#inUse++
    this.#peers.set(peer, p + 1)
    if (group !== undefined) this.#groups.set(group, g + 1)
    let released = false
    return {
      release: () => {
        if (released) return
        released = true
        this.#inUse--
        dec(this.#peers, peer)
        if (group !== undefined) dec(this.#groups, group)
      },
    }
  }
}

function dec(m: Map<string, number>, key: string): void {
  const v = (m.get(key) ?? 1) - 1
  if (v <= 0) m.delete(key)
  else m.set(key, v)
}

/**
 * The subnet group of an IP address for fair-share limits: an IPv4 address's /24 (`a.b.c`), an IPv6
 * address's /64 (first four groups). Returns undefined for addresses in `exempt` prefixes (plain
 * string prefixes such as `127.` or `::1`), which then have no group limit.
 */
export function subnetGroup(ip: string | undefined, exempt: readonly string[]): string | undefined {
  if (ip === undefined || ip === '') return undefined
  if (exempt.some((p) => ip.startsWith(p))) return undefined
  if (ip.includes(':')) return `${expandIpv6(ip).slice(0, 4).join(':')}::/64`
  const parts = ip.split('.')
  return `${parts.slice(0, 3).join('.')}.0/24`
}

/** The eight 16-bit groups of an IPv6 address (lower-case hex, no leading zeros), `::` expanded. */
function expandIpv6(ip: string): string[] {
  const [head = '', tail] = ip.toLowerCase().split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const zeros =
    tail === undefined ? [] : Array.from({ length: Math.max(0, 8 - h.length - t.length) }, () => '0')
  return [...h, ...zeros, ...t].map((g) => g.replace(/^0+(?=.)/, ''))
}
