/**
 * Which databases a node keeps for peers (docs/PROTOCOLS.md, "KV sync", Keepers). A peer that syncs
 * a database this node does not host asks it to keep it; the node does so only when it is plausibly
 * one of the database's keepers (among the `kv.keepers + kv.keeperSlack` peers XOR-closest to its id
 * in its own view: the kad-dht routing table and the connections, never a lookup a peer could make it
 * run at will), for at most `kv.maxKeptDbsPerOwner` databases of one owner key and `kv.maxHostedDbs`
 * hosted in all. A peer can still grind names near a chosen node: the byte quotas (quota.ts) bound
 * what each kept database costs.
 */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { kadId, xorCompare } from '../net/index.ts'
import { parseDbIdFast } from './db-id.ts'
import type { SyncRefusal } from './sync.ts'

export interface KeptDbsDeps {
  /** This node's PeerId string. */
  self: string
  /** Up to `n` peers XOR-closest to `key` in this node's own view, never this node (net's `closestPeersLocal`). */
  closestPeersLocal(key: Uint8Array, n: number): PeerId[]
}

export interface KeptDbsOptions {
  /** `kv.keepers`: 0 keeps nothing for peers. */
  keepers: number
  /** `kv.keeperSlack`: how much further than `keepers` this node may rank and still keep. */
  keeperSlack: number
  /** `kv.maxKeptDbsPerOwner`. */
  maxKeptDbsPerOwner: number
  /** `kv.maxHostedDbs`. */
  maxHostedDbs: number
}

const utf8 = new TextEncoder()

/** The databases kept for peers, counted per owner key, and the rules for keeping another. */
export class KeptDbs {
  readonly #deps: KeptDbsDeps
  readonly #options: KeptDbsOptions
  readonly #selfKad: Uint8Array
  readonly #kept = new Set<string>()
  readonly #byOwner = new Map<string, number>()

  constructor(deps: KeptDbsDeps, options: KeptDbsOptions) {
    this.#deps = deps
    this.#options = options
    this.#selfKad = kadId(peerIdFromString(deps.self).toMultihash().bytes)
  }

  /** Whether `db` is kept for peers (rather than hosted through this node's API). */
  has(db: string): boolean {
    return this.#kept.has(db)
  }

  /** Count `db` as kept for peers (`keep`) or not (hosted through the API, or no longer hosted). */
  mark(db: string, keep: boolean): void {
    if (this.#kept.has(db) === keep) return
    const owner = parseDbIdFast(db).ownerKeyId
    const n = (this.#byOwner.get(owner) ?? 0) + (keep ? 1 : -1)
    if (n > 0) this.#byOwner.set(owner, n)
    else this.#byOwner.delete(owner)
    if (keep) this.#kept.add(db)
    else this.#kept.delete(db)
  }

  /**
   * Is this node plausibly one of `db`'s keepers: are fewer than `keepers + keeperSlack` peers of its
   * own view closer to the id (a peer's lookup may have found others: the slack)?
   */
  isKeeper(db: string): boolean {
    const { keepers, keeperSlack } = this.#options
    if (keepers === 0) return false
    const want = keepers + keeperSlack
    const key = utf8.encode(db)
    const farthest = this.#deps.closestPeersLocal(key, want)[want - 1]
    if (farthest === undefined) return true
    return xorCompare(this.#selfKad, kadId(farthest.toMultihash().bytes), kadId(key)) < 0
  }

  /**
   * Why this node would not start keeping `db` (not hosted yet) for a peer, hosting `hosted`
   * databases; undefined when it would. Reasons: db_invalid, hosted_full, not_keeper, owner_full.
   */
  refusal(db: string, hosted: number): SyncRefusal | undefined {
    let owner: string
    try {
      owner = parseDbIdFast(db).ownerKeyId
    } catch {
      return { reason: 'db_invalid', message: 'the first frame names no valid database id' }
    }
    if (hosted >= this.#options.maxHostedDbs)
      return { reason: 'hosted_full', message: `this node hosts ${hosted} databases (kv.maxHostedDbs)` }
    if (!this.isKeeper(db))
      return {
        reason: 'not_keeper',
        message: `this node does not host ${db} and is not among its ${this.#options.keepers} keepers (+${this.#options.keeperSlack}) in its view`,
      }
    const held = this.#byOwner.get(owner) ?? 0
    if (held >= this.#options.maxKeptDbsPerOwner)
      return {
        reason: 'owner_full',
        message: `this node keeps ${held} databases of ${owner} (kv.maxKeptDbsPerOwner)`,
      }
    return undefined
  }
}
