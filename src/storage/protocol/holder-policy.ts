/**
 * What a holder accepts from other peers, and who pays for it (docs/PROTOCOLS.md, "Storage orders";
 * docs/SECURITY.md):
 *
 * - **put** needs a storage order signed by the sender naming this holder and the block; the block is
 *   claimed by the sender's account (quota checked before a byte is read) and kept *provisionally*, for
 *   `provisionalLeaseMs`, unless the order already names its manifest (repair);
 * - **commit** (signed by the uploader, naming the manifest) turns the uploader's provisional claims
 *   into leases until the commit's expiry;
 * - **pin** with a grant from the uploader extends the uploader's claim (up to the grant's expiry); else
 *   it extends the pinner's own claim; or else the pinner pays: a claim of its own, counted against its quota. Marking a file critical
 *   needs the manifest's uploader (or its grant), which the keeper checks against the manifest.
 *
 * Every expiry is clamped to `now + maxLeaseMs`: nothing is kept forever on a peer's word.
 */
import type { CID } from 'multiformats/cid'
import { isNodusError, NodusError } from '../../common/errors.ts'
import { cidToString } from '../codec/cid.ts'
import type { Claim, StorageAccounts } from './accounts.ts'
import { openCommit, openOrder, openPin } from './orders.ts'

export interface HolderPolicyOptions {
  /** Longest lease granted on any order, commit or pin, ms. */
  maxLeaseMs: number
  /** Lease of a block stored by an order until its commit arrives, ms. */
  provisionalLeaseMs: number
}

export interface HolderPolicyDeps {
  /** This node's PeerId string. */
  self: string
  accounts: Pick<StorageAccounts, 'reserve' | 'claim' | 'get'>
  store: {
    extendExpiry(cid: CID, expiresAt: number | undefined): Promise<boolean>
    stat(cid: CID): { size: number } | undefined
  }
  clock: { now(): number }
  /** A manifest block (`cid` = `manifest`) was committed here: this node is one of its keepers. */
  onManifestCommitted?(manifest: CID): void | Promise<void>
  /**
   * A pin asked for extra parity of `manifest` (dynamic redundancy) until `expiresAt`; `by` lists the
   * pinner and, with a valid grant, the grant's issuer. The keeper applies it only if the manifest's
   * uploader is among them.
   */
  onCriticalPin?(manifest: CID, expiresAt: number, by: string[]): Promise<void>
}

/** A put that passed the order and quota checks. */
export interface PutAdmission {
  /** The expiry to store the block with (ms since the epoch). */
  storeExpiresAt: number
  /** Record the claim once the block is durably stored (`size` bytes; `created`: by this put). */
  stored(size: number, created: boolean): Promise<void>
  /** Give back the quota reservation (idempotent; call in `finally`). */
  release(): void
}

export class HolderPolicy {
  readonly #deps: HolderPolicyDeps
  readonly #options: HolderPolicyOptions

  constructor(deps: HolderPolicyDeps, options: HolderPolicyOptions) {
    this.#deps = deps
    this.#options = options
  }

  #clamp(expiresAt: number, now: number): number {
    return Math.min(expiresAt, now + this.#options.maxLeaseMs)
  }

  /**
   * Check a put from `sender` of `size` bytes under `cid` against its order and the sender's quota,
   * before any byte is read. Throws ORDER_INVALID (no order, or one that does not cover this put),
   * SIGNATURE_INVALID, QUOTA_EXCEEDED.
   */
  admitPut(sender: string, cid: CID, size: number, orderBytes: Uint8Array | undefined): PutAdmission {
    if (orderBytes === undefined) {
      throw new NodusError('ORDER_INVALID', 'a put needs a storage order signed by the uploader', {
        peerAction: 'reject',
        details: { reason: 'no order' },
      })
    }
    const now = this.#deps.clock.now()
    const order = openOrder(orderBytes, sender, this.#deps.self, now)
    if (!order.cids.some((c) => c.equals(cid)))
      throw new NodusError('ORDER_INVALID', 'the order does not name this block', { peerAction: 'reject' })
    if (size > order.maxBytes)
      throw new NodusError('ORDER_INVALID', `the order allows ${order.maxBytes} bytes, the put has ${size}`, {
        peerAction: 'reject',
      })
    const granted = this.#clamp(order.expiresAt, now)
    if (granted <= now)
      throw new NodusError('ORDER_INVALID', 'the order has expired', { peerAction: 'reject' })
    const committed = order.manifest !== undefined
    const storeExpiresAt = committed ? granted : Math.min(granted, now + this.#options.provisionalLeaseMs)
    const key = cidToString(cid)
    const accounts = this.#deps.accounts
    const release = accounts.get(key, sender) === undefined ? accounts.reserve(sender, size) : () => {}
    const manifest = order.manifest === undefined ? undefined : cidToString(order.manifest)
    return {
      storeExpiresAt,
      release,
      stored: async (stored, created) => {
        await accounts.claim(key, sender, {
          size: stored,
          expiresAt: storeExpiresAt,
          committed,
          origin: 'order',
          ...(manifest === undefined ? {} : { manifest }),
        })
        // A block stored before (another account's claim) may have an earlier expiry; a new one has this.
        if (!created) await this.#deps.store.extendExpiry(cid, storeExpiresAt)
        const named = order.manifest
        if (named?.equals(cid)) await this.#deps.onManifestCommitted?.(named)
      },
    }
  }

  /**
   * Apply a commit from `sender`: each listed block it holds a claim on becomes a lease until the
   * commit's (clamped) expiry. Resolves, per CID, whether it was committed. Throws ORDER_INVALID,
   * SIGNATURE_INVALID.
   */
  async commit(sender: string, bytes: Uint8Array): Promise<boolean[]> {
    const now = this.#deps.clock.now()
    const commit = openCommit(bytes, sender, this.#deps.self, now)
    const until = this.#clamp(commit.expiresAt, now)
    const manifest = cidToString(commit.manifest)
    // All at once: concurrent LMDB writes share one commit (and one fsync) per database.
    return await Promise.all(
      commit.cids.map(async (cid) => {
        const key = cidToString(cid)
        const claim = this.#deps.accounts.get(key, sender)
        if (claim === undefined || until <= now || this.#deps.store.stat(cid) === undefined) return false
        await Promise.all([
          this.#deps.accounts.claim(key, sender, {
            size: claim.size,
            expiresAt: until,
            committed: true,
            origin: claim.origin,
            manifest,
          }),
          this.#deps.store.extendExpiry(cid, until),
        ])
        // Before the answer: once the uploader's put returns, its keepers watch the manifest.
        if (cid.equals(commit.manifest)) await this.#deps.onManifestCommitted?.(commit.manifest)
        return true
      }),
    )
  }

  /**
   * Apply a pin from `sender`. Per CID: false if this node does not hold it or the pinner's quota is
   * spent; else the (clamped) expiry is granted on the pinner's claim, the grant issuer's claim, or a
   * new paid claim of the pinner's. Throws ORDER_INVALID, SIGNATURE_INVALID.
   */
  async pin(sender: string, bytes: Uint8Array): Promise<boolean[]> {
    const now = this.#deps.clock.now()
    const pin = openPin(bytes, sender, this.#deps.self, now)
    const until = this.#clamp(pin.expiresAt, now)
    if (until <= now) return pin.cids.map(() => false)
    const manifest = pin.manifest === undefined ? undefined : cidToString(pin.manifest)
    // All at once: concurrent LMDB writes share commits; quota reservations are taken in order.
    const out = await Promise.all(
      pin.cids.map(async (cid) => {
        const st = this.#deps.store.stat(cid)
        if (st === undefined) return false
        const key = cidToString(cid)
        const own = this.#deps.accounts.get(key, sender)
        const issuer = pin.grant?.issuer
        // A grant covers the issuer's claims on the blocks of the manifest it names, not others it holds.
        const issuerClaim = issuer === undefined ? undefined : this.#deps.accounts.get(key, issuer)
        const granted = issuerClaim?.manifest === manifest ? issuerClaim : undefined
        let ok: boolean
        if (issuer !== undefined && granted !== undefined && pin.grant !== undefined) {
          ok = await this.#extend(key, issuer, granted, Math.min(until, pin.grant.expiresAt), manifest)
        } else if (own !== undefined) {
          ok = await this.#extend(key, sender, own, until, manifest)
        } else {
          ok = await this.#pay(key, sender, st.size, until, manifest)
        }
        if (ok) await this.#deps.store.extendExpiry(cid, until)
        return ok
      }),
    )
    if (
      pin.critical === true &&
      pin.manifest !== undefined &&
      this.#deps.store.stat(pin.manifest) !== undefined
    ) {
      const by = [sender, ...(pin.grant === undefined ? [] : [pin.grant.issuer])]
      await this.#deps.onCriticalPin?.(pin.manifest, until, by)
    }
    return out
  }

  async #extend(
    key: string,
    account: string,
    claim: Claim,
    until: number,
    manifest: string | undefined,
  ): Promise<boolean> {
    if (until <= this.#deps.clock.now()) return false
    // A pin that names the manifest commits a provisional claim (it retries a lost commit).
    await this.#deps.accounts.claim(key, account, {
      size: claim.size,
      expiresAt: until,
      committed: claim.committed || manifest !== undefined,
      origin: claim.origin,
      ...(manifest === undefined ? {} : { manifest }),
    })
    return true
  }

  async #pay(
    key: string,
    pinner: string,
    size: number,
    until: number,
    manifest: string | undefined,
  ): Promise<boolean> {
    let release: () => void
    try {
      release = this.#deps.accounts.reserve(pinner, size)
    } catch (err) {
      if (isNodusError(err, 'QUOTA_EXCEEDED')) return false
      throw err
    }
    try {
      await this.#deps.accounts.claim(key, pinner, {
        size,
        expiresAt: until,
        committed: true,
        origin: 'pin',
        ...(manifest === undefined ? {} : { manifest }),
      })
      return true
    } finally {
      release()
    }
  }
}
