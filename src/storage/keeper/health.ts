/**
 * The repairer's health check of watched manifests: which shard copies are live and which lost (one
 * batched `has` per holder; a copy known bad or denied is lost at once, an unanswered one after
 * `graceMs`), and which connected peers keep each manifest; then audits of random live copies, whose
 * failures mark the copies bad. See src/storage/README.md ("Audits").
 */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import { withDeadline } from '../../common/abort.ts'
import { isNodusError } from '../../common/errors.ts'
import { cidToString } from '../codec/cid.ts'
import type { SignedManifest } from '../files/manifest.ts'
import { type AuditChallenge, type AuditProof, makeChallenge, verifyAnswer } from './audit.ts'
import type { AuditResult, BadCopies } from './audit-records.ts'

/** What the health check and the audits need (the repairer's deps include it). */
export interface HealthCheckDeps {
  selfPeerId: string
  client: {
    has(peer: PeerId, cids: CID[], options?: { signal?: AbortSignal }): Promise<{ have: boolean[] }>
    audit(peer: PeerId, challenge: AuditChallenge, options?: { signal?: AbortSignal }): Promise<AuditProof>
  }
  /** Where audit results go (per-peer records; trust reads them). */
  onAudit?(peer: string, result: AuditResult): void
  /** A listed holder did not answer a health check (unreachable or timed out). */
  onUnanswered?(peer: string): void
  /** Random bytes (nonces) and numbers (which copies to audit). */
  random: { bytes(n: number): Uint8Array; next(): number }
  store: { has(cid: CID): boolean }
  /** Connected peers (PeerId strings). */
  connected(): string[]
  clock: { now(): number }
  logger: { warn(obj: object, msg?: string): void }
}

/** The repair options the health check and the audits read (see `RepairOptions`). */
export interface HealthCheckOptions {
  /** A copy missing for longer than this counts as lost, ms. Default 120 000. */
  graceMs: number
  /** Shard copies audited per round (random live copies of watched manifests). Default 8. */
  auditsPerRound: number
  /** Time allowed for one audit answer, ms. Default 10 000. */
  auditTimeoutMs: number
}

/** One round's view of a manifest's copies. */
export interface Health {
  /** Per segment, per shard: holders that answered yes. */
  live: string[][][]
  /** Per segment, per shard: holders missing for longer than grace. */
  lost: string[][][]
  /** Holders that answered (any answer) this round. */
  answered: Set<string>
  /** Connected peers that say they keep this manifest. */
  keepers: Set<string>
}

/** Checks the health of watched manifests and audits their copies, round after round. */
export class HealthCheck {
  readonly #deps: HealthCheckDeps
  readonly #options: HealthCheckOptions
  /** `${manifest}/${segment}/${shard}/${holder}` → first time seen missing (ms). */
  readonly #missingSince = new Map<string, number>()
  /** Copies known bad (failed an audit, or reported lost): lost in every round, with no grace. */
  readonly #bad: BadCopies

  /** `bad`: the copies known bad, shared with the repairer (which clears a mark when it replaces the copy). */
  constructor(deps: HealthCheckDeps, options: HealthCheckOptions, bad: BadCopies) {
    this.#deps = deps
    this.#options = options
    this.#bad = bad
  }

  /** Batched health check: one `has` per holder (≤ 1024 CIDs per request). */
  async check(manifests: SignedManifest[], signal: AbortSignal): Promise<Health[]> {
    const now = this.#deps.clock.now()
    const byHolder = new Map<string, { cid: CID; mi: number; si: number; j: number }[]>()
    const health: Health[] = manifests.map((s) => ({
      live: s.manifest.segments.map((seg) => seg.shards.map(() => [])),
      lost: s.manifest.segments.map((seg) => seg.shards.map(() => [])),
      answered: new Set<string>(),
      keepers: new Set<string>(),
    }))
    manifests.forEach((signed, mi) => {
      signed.manifest.segments.forEach((seg, si) => {
        seg.shards.forEach((sh, j) => {
          for (const h of sh.holders) {
            let list = byHolder.get(h)
            if (list === undefined) {
              list = []
              byHolder.set(h, list)
            }
            list.push({ cid: sh.cid, mi, si, j })
          }
        })
      })
    })
    // Ask every connected peer whether it keeps each manifest (same batched request).
    for (const p of this.#deps.connected()) {
      if (p === this.#deps.selfPeerId) continue
      let list = byHolder.get(p)
      if (list === undefined) {
        list = []
        byHolder.set(p, list)
      }
      manifests.forEach((signed, mi) => {
        list.push({ cid: signed.cid, mi, si: -1, j: -1 })
      })
    }
    const answered = new Set<string>()
    await Promise.all(
      [...byHolder.entries()].map(async ([holder, items]) => {
        for (let i = 0; i < items.length; i += 1024) {
          const batch = items.slice(i, i + 1024)
          let have: boolean[] | undefined
          if (holder === this.#deps.selfPeerId) have = batch.map((b) => this.#deps.store.has(b.cid))
          else {
            try {
              have = (
                await this.#deps.client.has(
                  peerIdFromString(holder),
                  batch.map((b) => b.cid),
                  { signal },
                )
              ).have
              answered.add(holder)
            } catch {
              have = undefined
              if (!signal.aborted) this.#deps.onUnanswered?.(holder)
            }
          }
          batch.forEach((b, x) => {
            if (b.si < 0) {
              if (have?.[x] === true) health[b.mi]?.keepers.add(holder)
              return
            }
            const key = `${cidToString(manifests[b.mi]?.cid as CID)}/${b.si}/${b.j}/${holder}`
            const h = health[b.mi] as Health
            if (this.#bad.has(holder, cidToString(b.cid))) {
              // Known bad (failed an audit, or reported lost): lost whatever it answers, no grace.
              this.#missingSince.delete(key)
              h.lost[b.si]?.[b.j]?.push(holder)
            } else if (have?.[x] === true) {
              this.#missingSince.delete(key)
              h.live[b.si]?.[b.j]?.push(holder)
            } else if (have?.[x] === false) {
              // The holder answered that it does not have it (e.g. its store dropped a copy found lost or
              // corrupt on disk): lost at once. Grace is for holders that do not answer (restarts).
              this.#missingSince.delete(key)
              h.lost[b.si]?.[b.j]?.push(holder)
            } else {
              const since = this.#missingSince.get(key) ?? now
              this.#missingSince.set(key, since)
              if (now - since >= this.#options.graceMs) h.lost[b.si]?.[b.j]?.push(holder)
            }
          })
        }
      }),
    )
    for (const h of health) for (const a of answered) h.answered.add(a)
    if (this.#missingSince.size > 1_000_000) this.#missingSince.clear()
    if (this.#bad.size > 0) {
      // Marks of copies no longer listed (a later holder update dropped the holder) go.
      const listed = new Set<string>()
      for (const [holder, items] of byHolder)
        for (const b of items) if (b.si >= 0) listed.add(`${holder}/${cidToString(b.cid)}`)
      this.#bad.retain((holder, cid) => listed.has(`${holder}/${cid}`))
    }
    return health
  }

  /**
   * Audit random live copies: challenge a random byte range (derived from a fresh nonce) and check
   * the answer against the CID alone. A failed audit (a wrong proof, or SHARD_MISSING: the holder's store
   * found the copy lost or corrupt on disk and dropped it) makes that copy lost at once and marks it bad,
   * so it stays lost in later rounds (an honest holder never fails); a busy holder is skipped; anything
   * else counts as a timeout.
   */
  async audit(manifests: SignedManifest[], health: Health[], signal: AbortSignal): Promise<void> {
    const copies: { mi: number; si: number; j: number; holder: string }[] = []
    health.forEach((h, mi) => {
      h.live.forEach((seg, si) => {
        seg.forEach((holders, j) => {
          for (const holder of holders)
            if (holder !== this.#deps.selfPeerId) copies.push({ mi, si, j, holder })
        })
      })
    })
    const picked: typeof copies = []
    for (let i = 0; i < this.#options.auditsPerRound && copies.length > 0; i++) {
      const x = Math.floor(this.#deps.random.next() * copies.length)
      picked.push(...copies.splice(x, 1))
    }
    const auditOne = async (c: (typeof copies)[number]): Promise<void> => {
      const seg = manifests[c.mi]?.manifest.segments[c.si]
      const sh = seg?.shards[c.j]
      if (seg === undefined || sh === undefined) return
      const challenge = makeChallenge(sh.cid, seg.shardSize, (n) => this.#deps.random.bytes(n))
      let result: AuditResult
      try {
        using deadline = withDeadline(signal, this.#options.auditTimeoutMs, 'audit')
        const proof = await this.#deps.client.audit(peerIdFromString(c.holder), challenge, {
          signal: deadline.signal,
        })
        result = verifyAnswer(challenge, proof) ? 'pass' : 'fail'
      } catch (err) {
        if (signal.aborted) return
        if (isNodusError(err, 'PEER_BUSY')) return
        result =
          isNodusError(err, 'SHARD_MISSING') || isNodusError(err, 'PROTOCOL_ERROR') ? 'fail' : 'timeout'
      }
      this.#deps.onAudit?.(c.holder, result)
      if (result === 'fail') {
        this.#bad.mark(c.holder, cidToString(sh.cid), 'audit-failed')
        const h = health[c.mi] as Health
        const live = h.live[c.si]?.[c.j]
        if (live !== undefined) live.splice(live.indexOf(c.holder), 1)
        h.lost[c.si]?.[c.j]?.push(c.holder)
        this.#deps.logger.warn(
          { peer: c.holder, cid: cidToString(sh.cid) },
          'audit failed: copy counted as lost',
        )
      }
    }
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < picked.length && !signal.aborted)
        await auditOne(picked[next++] as (typeof copies)[number])
    }
    await Promise.all(Array.from({ length: 4 }, worker))
  }
}
