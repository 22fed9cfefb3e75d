/**
 * Storage accounts on a holder: who pays for each block it keeps for others, until when, and how much
 * each peer holds against its quota. Every block stored for a peer is *claimed* by an account (the
 * uploader whose order stored it, or a pinner who pays for it); a claim has an expiry, and a block
 * lives until its latest claim's expiry (the shard store's expiry is kept at least that late).
 *
 * An LMDB environment at `<dataDir>/accounts` with three databases:
 * - `claims`: `<cid>/<account>` → {@link Claim};
 * - `expiry`: `[expiresAt, cid, account]` → null, so expired claims are found without scanning;
 * - `totals`: account → `{ bytes, shards }`, updated in the same transaction as the claims.
 * Totals are also kept in memory (one entry per account) for quota checks on the hot path.
 *
 * Quotas (per account): `quotaBytes × (1 + (quotaTrustMultiplier − 1) × t)` and the same for
 * `quotaShards`, where `t ∈ [0, 1]` is the account's trust (injected: 0 for a stranger, 1 for a
 * pre-trusted or well-trusted peer). Puts in flight reserve their bytes in memory first.
 */
import { type Database, open, type RootDatabase } from 'lmdb'
import { NodusError } from '../../common/errors.ts'

/** One account's claim on one block. Times in ms since the Unix epoch. */
export interface Claim {
  /** Block size, bytes (counted against the account). */
  size: number
  /** The claim lapses at this time. */
  expiresAt: number
  /** False while provisional (stored by an order, no commit yet). */
  committed: boolean
  /** `order`: the account's storage order stored it; `pin`: the account pays to keep it. */
  origin: 'order' | 'pin'
  /** The manifest (CID string) the commit, order or pin named, if any. */
  manifest?: string
}

export interface AccountTotals {
  bytes: number
  shards: number
}

export interface StorageAccountsOptions {
  /** Directory of the LMDB environment. */
  path: string
  /** Bytes one account may claim at trust 0. */
  quotaBytes: number
  /** Blocks one account may claim at trust 0. */
  quotaShards: number
  /** Quota multiplier at full trust (≥ 1). */
  quotaTrustMultiplier: number
}

export interface StorageAccountsDeps {
  /** The account's trust in [0, 1] (0: stranger). */
  trust(account: string): number
}

const EMPTY: AccountTotals = Object.freeze({ bytes: 0, shards: 0 })

export class StorageAccounts {
  readonly #deps: StorageAccountsDeps
  readonly #options: StorageAccountsOptions
  #root: RootDatabase | undefined
  #claims: Database<Claim, string> | undefined
  #expiry: Database<null, [number, string, string]> | undefined
  #totals: Database<AccountTotals, string> | undefined
  readonly #memory = new Map<string, AccountTotals>()
  readonly #reserved = new Map<string, AccountTotals>()

  constructor(deps: StorageAccountsDeps, options: StorageAccountsOptions) {
    this.#deps = deps
    this.#options = options
  }

  open(): void {
    if (this.#root !== undefined) return
    const root = open({ path: this.#options.path, encoding: 'msgpack' })
    this.#root = root
    this.#claims = root.openDB<Claim, string>({ name: 'claims', encoding: 'msgpack' })
    this.#expiry = root.openDB<null, [number, string, string]>({ name: 'expiry', encoding: 'msgpack' })
    this.#totals = root.openDB<AccountTotals, string>({ name: 'totals', encoding: 'msgpack' })
    this.#memory.clear()
    for (const { key, value } of this.#totals.getRange()) this.#memory.set(key, value)
  }

  async close(): Promise<void> {
    const root = this.#root
    this.#root = undefined
    await root?.close()
  }

  #dbs(): {
    root: RootDatabase
    claims: Database<Claim, string>
    expiry: Database<null, [number, string, string]>
    totals: Database<AccountTotals, string>
  } {
    if (
      this.#root === undefined ||
      this.#claims === undefined ||
      this.#expiry === undefined ||
      this.#totals === undefined
    )
      throw new NodusError('STORE_CLOSED', 'storage accounts are closed')
    return { root: this.#root, claims: this.#claims, expiry: this.#expiry, totals: this.#totals }
  }

  /** An account's quota: bytes and blocks, scaled by its trust. */
  quota(account: string): AccountTotals {
    const t = Math.min(1, Math.max(0, this.#deps.trust(account)))
    const f = 1 + (this.#options.quotaTrustMultiplier - 1) * t
    return {
      bytes: Math.floor(this.#options.quotaBytes * f),
      shards: Math.floor(this.#options.quotaShards * f),
    }
  }

  /** What an account has claimed (committed and provisional), not counting puts in flight. */
  totals(account: string): AccountTotals {
    return this.#memory.get(account) ?? EMPTY
  }

  /** Accounts with claims, at most `limit`, largest first. */
  top(limit = 20): Array<{ account: string } & AccountTotals> {
    return [...this.#memory.entries()]
      .map(([account, t]) => ({ account, ...t }))
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, limit)
  }

  /**
   * Reserve `bytes` (one block) for `account` while its put is in flight. Returns the release
   * function (idempotent; call it once the claim is recorded or the put failed). Throws
   * QUOTA_EXCEEDED (peerAction ignore) when the account's claims plus reservations would pass its quota.
   */
  reserve(account: string, bytes: number): () => void {
    const used = this.totals(account)
    const held = this.#reserved.get(account) ?? { bytes: 0, shards: 0 }
    const q = this.quota(account)
    if (used.bytes + held.bytes + bytes > q.bytes || used.shards + held.shards + 1 > q.shards) {
      throw new NodusError('QUOTA_EXCEEDED', `peer ${account} is at its storage quota on this holder`, {
        peerAction: 'ignore',
        details: {
          account,
          quotaBytes: q.bytes,
          quotaShards: q.shards,
          usedBytes: used.bytes,
          usedShards: used.shards,
        },
      })
    }
    held.bytes += bytes
    held.shards += 1
    this.#reserved.set(account, held)
    let released = false
    return () => {
      if (released) return
      released = true
      held.bytes -= bytes
      held.shards -= 1
      if (held.shards <= 0) this.#reserved.delete(account)
    }
  }

  get(cid: string, account: string): Claim | undefined {
    return this.#dbs().claims.get(`${cid}/${account}`)
  }

  /** Every claim on `cid` (at most 1,000). */
  claims(cid: string): Array<{ account: string; claim: Claim }> {
    const out: Array<{ account: string; claim: Claim }> = []
    const prefix = `${cid}/`
    for (const { key, value } of this.#dbs().claims.getRange({ start: prefix })) {
      if (!key.startsWith(prefix) || out.length >= 1000) break
      out.push({ account: key.slice(prefix.length), claim: value })
    }
    return out
  }

  /**
   * Add or extend `account`'s claim on `cid`: a new claim counts `size` against the account; an
   * existing one keeps the later expiry, becomes committed if `committed`, and keeps its origin.
   * Resolves with the claim as stored, once durable.
   */
  async claim(
    cid: string,
    account: string,
    fields: {
      size: number
      expiresAt: number
      committed: boolean
      origin: Claim['origin']
      manifest?: string
    },
  ): Promise<Claim> {
    const { root, claims, expiry, totals } = this.#dbs()
    let result: Claim | undefined
    await root.transaction(() => {
      const key = `${cid}/${account}`
      const old = claims.get(key)
      const next: Claim =
        old === undefined
          ? {
              size: fields.size,
              expiresAt: fields.expiresAt,
              committed: fields.committed,
              origin: fields.origin,
            }
          : {
              ...old,
              expiresAt: Math.max(old.expiresAt, fields.expiresAt),
              committed: old.committed || fields.committed,
            }
      const manifest = fields.manifest ?? old?.manifest
      if (manifest !== undefined) next.manifest = manifest
      if (old !== undefined && old.expiresAt !== next.expiresAt) expiry.remove([old.expiresAt, cid, account])
      if (old === undefined || old.expiresAt !== next.expiresAt)
        expiry.put([next.expiresAt, cid, account], null)
      claims.put(key, next)
      if (old === undefined) this.#add(totals, account, next.size, 1)
      result = next
    })
    return result as Claim
  }

  #add(totals: Database<AccountTotals, string>, account: string, bytes: number, shards: number): void {
    const cur = this.#memory.get(account) ?? { bytes: 0, shards: 0 }
    const next = { bytes: Math.max(0, cur.bytes + bytes), shards: Math.max(0, cur.shards + shards) }
    if (next.shards === 0) {
      this.#memory.delete(account)
      totals.remove(account)
    } else {
      this.#memory.set(account, next)
      totals.put(account, next)
    }
  }

  /** Drop every claim on `cid` (the block left the store). Resolves with the number dropped. */
  async removeBlock(cid: string): Promise<number> {
    const { root, claims, expiry, totals } = this.#dbs()
    let n = 0
    await root.transaction(() => {
      for (const { account, claim } of this.claims(cid)) {
        claims.remove(`${cid}/${account}`)
        expiry.remove([claim.expiresAt, cid, account])
        this.#add(totals, account, -claim.size, -1)
        n++
      }
    })
    return n
  }

  /**
   * Drop claims that expired at or before `nowMs`, at most `limit` (default 10,000). The block itself
   * stays until the shard store's own expiry (the latest claim). Resolves with the number dropped.
   */
  async sweep(nowMs: number, limit = 10_000): Promise<number> {
    const { root, claims, expiry, totals } = this.#dbs()
    const due: Array<[number, string, string]> = []
    for (const { key } of expiry.getRange({ end: [nowMs, '\uffff', '\uffff'] })) {
      if (key[0] > nowMs || due.length >= limit) break
      due.push(key)
    }
    if (due.length === 0) return 0
    let n = 0
    await root.transaction(() => {
      for (const key of due) {
        const [at, cid, account] = key
        expiry.remove(key)
        const claim = claims.get(`${cid}/${account}`)
        if (claim === undefined || claim.expiresAt !== at) continue
        claims.remove(`${cid}/${account}`)
        this.#add(totals, account, -claim.size, -1)
        n++
      }
    })
    return n
  }
}
