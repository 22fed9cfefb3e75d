/**
 * What `nodus chaos --hostile` checks besides the hostile peer's own counts (src/cli/hostile.ts):
 *
 * - {@link RefusalStretch}: fair service, the longest stretch in which the honest load kept being
 *   refused for want of service (PEER_BUSY, 429);
 * - {@link checkHolderState}: after the run, in the stopped nodes' data directories, that the hostile
 *   peer's pins extended nobody else's claims and marked no file critical, that its own claims expire
 *   within the holder's bounds and its quota, and that no keeper kept its forged holder updates.
 */
import { join } from 'node:path'
import { isNodusError } from '../common/errors.ts'
import { ManifestWatch, parseHolderUpdate, StorageAccounts } from '../storage/index.ts'

/** An honest request refused for want of service: PEER_BUSY anywhere on its way, or HTTP 429. */
export function isServiceRefusal(err: unknown): boolean {
  if (!isNodusError(err)) return false
  return err.code === 'PEER_BUSY' || err.code === 'RATE_LIMITED' || err.details.status === 429
}

/**
 * The longest stretch of time in which honest requests kept being refused for want of service: from
 * the start of a refused request to the end of the last refused one before a request succeeded.
 * Requests that failed otherwise (a node killed by the chaos loop) neither extend nor end a stretch.
 */
export class RefusalStretch {
  #since: number | undefined
  #longestMs = 0
  #refused = 0

  /** Record one honest request: times in ms (any monotonic clock). */
  record(outcome: 'ok' | 'refused' | 'failed', startedMs: number, endedMs: number): void {
    if (outcome === 'ok') this.#since = undefined
    else if (outcome === 'refused') {
      this.#refused++
      this.#since ??= startedMs
      this.#longestMs = Math.max(this.#longestMs, endedMs - this.#since)
    }
  }

  /** Honest requests refused so far. */
  get refused(): number {
    return this.#refused
  }

  /** The longest stretch so far, seconds (one decimal). */
  get longestSeconds(): number {
    return Math.round(this.#longestMs / 100) / 10
  }
}

export interface HolderStateInput {
  /** Every devnet node (stopped: their LMDB environments are read here). */
  nodes: ReadonlyArray<{ index: number; peerId: string; dataDir: string }>
  /** The hostile peer's PeerId. */
  hostile: string
  /** The honest acknowledged files: manifest CID and every block CID (manifest and shards). */
  files: ReadonlyArray<{ manifest: string; blocks: readonly string[] }>
  /** The hostile peer's provisional puts that holders accepted. */
  provisional: ReadonlyArray<{ holder: string; cid: string; atMs: number }>
  /** The nodes' `storage.leaseMs`, `storage.maxLeaseMs`, `storage.provisionalLeaseMs`, ms. */
  leaseMs: number
  maxLeaseMs: number
  provisionalLeaseMs: number
  /** The hostile peer's quota at full trust on one holder, bytes. */
  maxQuotaBytes: number
  /** Now, ms since the epoch (after the run). */
  nowMs: number
}

export interface HolderState {
  /** Claims on honest blocks examined. */
  claimsChecked: number
  /** Honest claims (uploader's, repairers') that outlive their lease: someone else's pin extended them. */
  escalatedClaims: number
  /** Hostile claims that outlive the holder's maximum lease. */
  hostileClaimsTooLong: number
  /** Hostile provisional blocks committed or kept past the provisional lease. */
  provisionalKept: number
  /** Holders on which the hostile peer holds more than its quota. */
  overQuota: number
  /** Most bytes the hostile peer holds on one holder (its claims: provisional blocks and paid pins). */
  hostileHeldMaxBytes: number
  /** Most bytes any other account holds on one holder (the honest uploader's and repairers' claims). */
  honestHeldMaxBytes: number
  /** Honest manifests some keeper marked critical (no honest pin asked for it). */
  criticalMarks: number
  /** Honest manifests for which a keeper kept the hostile peer's holder update. */
  forgedUpdatesKept: number
  /** The first findings, in words. */
  problems: string[]
  /** Per node (by index), the bytes the hostile peer holds there. */
  hostileHeld: Array<{ index: number; bytes: number }>
}

/** Findings of {@link checkHolderState} that mean a defence failed. */
export function holderStateFailures(s: HolderState): number {
  return (
    s.escalatedClaims +
    s.hostileClaimsTooLong +
    s.provisionalKept +
    s.overQuota +
    s.criticalMarks +
    s.forgedUpdatesKept
  )
}

/**
 * Read every stopped node's storage accounts and manifest watch list and check what the hostile
 * peer's pins, provisional puts and forged holder updates left behind (see {@link HolderState}).
 */
export async function checkHolderState(input: HolderStateInput): Promise<HolderState> {
  const s: HolderState = {
    claimsChecked: 0,
    escalatedClaims: 0,
    hostileClaimsTooLong: 0,
    provisionalKept: 0,
    overQuota: 0,
    criticalMarks: 0,
    forgedUpdatesKept: 0,
    hostileHeldMaxBytes: 0,
    honestHeldMaxBytes: 0,
    problems: [],
    hostileHeld: [],
  }
  const problem = (msg: string): void => {
    if (s.problems.length < 20) s.problems.push(msg)
  }
  const now = input.nowMs
  for (const node of input.nodes) {
    const accounts = new StorageAccounts(
      { trust: () => 0 },
      { path: join(node.dataDir, 'accounts'), quotaBytes: 0, quotaShards: 0, quotaTrustMultiplier: 1 },
    )
    accounts.open()
    try {
      for (const f of input.files) {
        for (const cid of f.blocks) {
          for (const { account, claim } of accounts.claims(cid)) {
            s.claimsChecked++
            if (account === input.hostile) {
              if (claim.expiresAt > now + input.maxLeaseMs) {
                s.hostileClaimsTooLong++
                problem(`node ${node.index}: the hostile claim on ${cid} lasts until ${claim.expiresAt}`)
              }
            } else if (claim.expiresAt > now + input.leaseMs) {
              s.escalatedClaims++
              problem(`node ${node.index}: ${account}'s claim on ${cid} was extended to ${claim.expiresAt}`)
            }
          }
        }
      }
      for (const p of input.provisional) {
        if (p.holder !== node.peerId) continue
        const claim = accounts.get(p.cid, input.hostile)
        if (claim === undefined) continue // swept, or the node's disk was wiped
        if (claim.committed || claim.expiresAt > p.atMs + input.provisionalLeaseMs) {
          s.provisionalKept++
          problem(
            `node ${node.index}: the hostile provisional block ${p.cid} is kept until ${claim.expiresAt}`,
          )
        }
      }
      const held = accounts.totals(input.hostile).bytes
      s.hostileHeld.push({ index: node.index, bytes: held })
      s.hostileHeldMaxBytes = Math.max(s.hostileHeldMaxBytes, held)
      const honest = accounts.top(2).find((a) => a.account !== input.hostile)
      s.honestHeldMaxBytes = Math.max(s.honestHeldMaxBytes, honest?.bytes ?? 0)
      if (held > input.maxQuotaBytes) {
        s.overQuota++
        problem(`node ${node.index}: the hostile peer holds ${held} bytes, quota ${input.maxQuotaBytes}`)
      }
    } finally {
      await accounts.close()
    }
    const watch = new ManifestWatch(join(node.dataDir, 'watch'))
    watch.open()
    try {
      for (const f of input.files) {
        if (watch.isCritical(f.manifest, now)) {
          s.criticalMarks++
          problem(`node ${node.index}: ${f.manifest} is marked critical`)
        }
        const latest = watch.latest(f.manifest)
        if (latest === undefined) continue
        let signer: string | undefined
        try {
          if (latest.update !== undefined) signer = parseHolderUpdate(latest.update).update.signer.peerId
        } catch {
          // an update this node could not parse: repair falls back from it; not the hostile's
        }
        if (signer === input.hostile || latest.revision > 2 ** 32) {
          s.forgedUpdatesKept++
          problem(`node ${node.index}: keeps revision ${latest.revision} of ${f.manifest} by ${signer}`)
        }
      }
    } finally {
      await watch.close()
    }
  }
  return s
}
