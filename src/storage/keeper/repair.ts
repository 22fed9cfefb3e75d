/**
 * Repair: the peers that keep a manifest watch its segments' health and rebuild lost shards.
 *
 * Each round (every `intervalMs`): for every watched manifest, ask each listed holder, in one batched
 * `has` per holder, which shards it still has. A copy whose holder answers that it does not have it,
 * that failed an audit (remembered per holder and shard until a holder update replaces the copy) or that
 * its holder reported lost ({@link Repairer.markBad}) counts as lost at once; a copy whose holder does not
 * answer counts as lost after `graceMs`. A segment whose healthy shard count (shards with
 * at least one live copy) falls to `threshold` (default k + 2) is repaired: k shards are fetched, the
 * missing ones rebuilt, placed on peers that hold no shard of that segment, and a signed holder
 * update (next revision) is kept locally and offered to the other manifest holders. New holders
 * announce provider records for what they store, so the DHT learns the new locations too.
 *
 * Churn protection: the grace period (hysteresis: a node restarting within it causes no repair), a
 * per-round cap on segment repairs, a concurrency cap, and a coordination rule: of the manifest's
 * holders that answer, only the one closest to the manifest CID (XOR) repairs; others take over only
 * if it stays silent.
 *
 * Dynamic redundancy: `parityTarget` (deps) says how many parity shards each segment of a manifest
 * should have (m for ordinary data, more for critical or popular data: {@link parityFor}). The keeper
 * closest to the manifest CID (only it, so keepers with different read counts do not undo each other)
 * computes the missing parity rows from k fetched shards, places them on new peers and lists their
 * CIDs in the holder update; when the target falls it drops the extra rows from the update (their
 * holders let them expire). Extra parity rows are never below the uploader's m.
 */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import { isNodusError } from '../../common/errors.ts'
import { blake3, type HybridPublicKey, type HybridSignature } from '../../crypto/index.ts'
import { cidFromDigest, cidToString, RAW_CODEC } from '../codec/cid.ts'
import type { FileService } from '../files/files.ts'
import { MAX_EXTRA_PARITY, signHolderUpdate } from '../files/holder-update.ts'
import type { Manifest, SignedManifest } from '../files/manifest.ts'
import { BadCopies } from './audit-records.ts'
import { type Health, HealthCheck, type HealthCheckDeps } from './health.ts'
import { type KeptUpdates, ManifestLoader } from './manifest-loader.ts'
import { closestTo } from './responsibility.ts'

/** A change a repair made to one shard of one segment. */
interface ShardChange {
  segment: number
  shard: number
  holder: string
}

/** What repairing (or resizing) one segment produced. */
interface SegmentResult {
  segment: number
  changes: ShardChange[]
  /** CIDs of the segment's extra parity rows (k+m onward) after the repair. */
  extra: CID[]
}

export interface RepairOptions {
  /** Time between health rounds, ms. Default 60 000. */
  intervalMs: number
  /** A copy missing for longer than this counts as lost, ms. Default 120 000. */
  graceMs: number
  /** Repair when healthy shards ≤ k + thresholdMargin. Default 2 (DESIGN.md: k+2). */
  thresholdMargin: number
  /** Segments repaired at once. Default 2. */
  maxConcurrentRepairs: number
  /** Segments repaired per round at most (rate limit). Default 32. */
  maxRepairsPerRound: number
  /** Shard copies audited per round (random live copies of watched manifests). Default 8. */
  auditsPerRound: number
  /** Time allowed for one audit answer, ms. Default 10 000. */
  auditTimeoutMs: number
  /** Copies known bad (failed audit, or reported lost) remembered at most. Default 100 000. */
  maxBadCopies?: number
}

export const DEFAULT_REPAIR_OPTIONS: Readonly<RepairOptions> = Object.freeze({
  intervalMs: 60_000,
  graceMs: 120_000,
  thresholdMargin: 2,
  maxConcurrentRepairs: 2,
  maxRepairsPerRound: 32,
  auditsPerRound: 8,
  auditTimeoutMs: 10_000,
  maxBadCopies: 100_000,
})

/** A progress event of the repairer. */
export type RepairEvent =
  | { type: 'round'; manifests: number; segmentsChecked: number; unhealthy: number }
  | { type: 'started'; manifest: string; segment: number; healthy: number; missing: number[] }
  | { type: 'finished'; manifest: string; segment: number; rebuilt: number; newHolders: string[] }
  | { type: 'failed'; manifest: string; segment: number; code: string }
  | { type: 'published'; manifest: string; revision: number; acceptedBy: number }
  | { type: 'resized'; manifest: string; segment: number; from: number; to: number }

/** What the repairer needs; with what the health check needs ({@link HealthCheckDeps}). */
export interface RepairDeps extends HealthCheckDeps {
  files: Pick<FileService, 'rebuildSegment' | 'placeShard'>
  /**
   * Dynamic redundancy: parity shards per segment wanted for a manifest (≥ its m; see redundancy.ts).
   * Absent: every segment keeps the parity it has.
   */
  parityTarget?(signed: SignedManifest): number
  client: HealthCheckDeps['client'] & {
    offerUpdate(
      peer: PeerId,
      manifest: CID,
      update: Uint8Array,
      options?: { signal?: AbortSignal },
    ): Promise<boolean>
  }
  /** Local blocks (the manifests). */
  store: { get(cid: CID, options?: { signal?: AbortSignal }): Promise<Uint8Array>; has(cid: CID): boolean }
  watch: KeptUpdates & {
    list(limit?: number): string[]
    offer(cid: string, revision: number, update: Uint8Array, now: number): Promise<boolean>
  }
  sign(message: Uint8Array): Promise<HybridSignature>
  publicKey: HybridPublicKey
  logger: {
    debug(obj: object, msg?: string): void
    info(obj: object, msg?: string): void
    warn(obj: object, msg?: string): void
  }
  metrics?: {
    repairs: { inc(labels: { state: string }): void }
    /** A watched manifest loaded from its last good state (`nodus_storage_manifest_fallbacks_total`). */
    manifestFallbacks?: { inc(): void }
  }
  onEvent?: (e: RepairEvent) => void
}

/** Watches manifests and repairs their segments. */
export class Repairer {
  readonly #deps: RepairDeps
  readonly #options: RepairOptions
  /** `${manifest}/${segment}` → consecutive rounds this node saw it unhealthy. */
  readonly #unhealthyRounds = new Map<string, number>()
  /** Copies known bad (failed an audit, or reported lost): lost in every round, with no grace. */
  readonly #bad: BadCopies
  readonly #loader: ManifestLoader
  readonly #health: HealthCheck
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #ac = new AbortController()
  #rounds = 0
  #repaired = 0

  constructor(deps: RepairDeps, options: RepairOptions) {
    this.#deps = deps
    this.#options = options
    this.#bad = new BadCopies({ clock: deps.clock }, { maxEntries: options.maxBadCopies ?? 100_000 })
    this.#loader = new ManifestLoader(deps)
    this.#health = new HealthCheck(deps, options, this.#bad)
  }

  /**
   * Mark the copy of shard `shardCid` (CID string) on `holder` (PeerId string) as lost: from the next round
   * it counts as lost whatever the holder answers, with no grace period, so its segment is repaired at
   * once (when at or under the threshold). For a holder's own report that it dropped its copy (the
   * caller must have checked that the report comes from that holder); audits mark failures themselves.
   * The mark lasts until a repair places a fresh copy there, the copy is no longer listed, or the cap
   * (`maxBadCopies`) evicts it.
   */
  markBad(holder: string, shardCid: string): void {
    if (this.#bad.mark(holder, shardCid, 'reported')) {
      this.#deps.logger.debug({ peer: holder, cid: shardCid }, 'copy reported lost')
    }
  }

  /** Copies currently known bad (marked by a failed audit or {@link markBad}). */
  get badCopies(): number {
    return this.#bad.size
  }

  /** Rounds completed and segments repaired since start. */
  get stats(): { rounds: number; segmentsRepaired: number } {
    return { rounds: this.#rounds, segmentsRepaired: this.#repaired }
  }

  start(): void {
    if (this.#timer !== undefined) return
    this.#ac = new AbortController()
    this.#timer = setInterval(() => {
      if (this.#running === undefined) {
        this.#running = this.runRound().finally(() => {
          this.#running = undefined
        })
      }
    }, this.#options.intervalMs)
    this.#timer.unref()
  }

  /** Stop the timer, abort a round in progress and wait for it. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    this.#ac.abort(new Error('repairer stopping'))
    await this.#running?.catch(() => {})
  }

  /** One health-and-repair round over every watched manifest. Never throws. */
  async runRound(): Promise<void> {
    const signal = this.#ac.signal
    try {
      const manifests: SignedManifest[] = []
      for (const c of this.#deps.watch.list()) {
        const loaded = await this.#loader.load(c, signal)
        if (loaded !== undefined) manifests.push(loaded)
      }
      const revisionAtStart = new Map(
        manifests.map((m) => [
          cidToString(m.cid),
          this.#deps.watch.latest(cidToString(m.cid))?.revision ?? 1,
        ]),
      )
      const health = await this.#health.check(manifests, signal)
      await this.#health.audit(manifests, health, signal)
      let budget = this.#options.maxRepairsPerRound
      let unhealthy = 0
      let checked = 0
      const work: { signed: SignedManifest; segment: number; missing: number[]; parity: number }[] = []
      const resized = new Map<string, { signed: SignedManifest; parity: number }>()
      manifests.forEach((signed, mi) => {
        const man = signed.manifest
        const threshold = man.k + this.#options.thresholdMargin
        const target = this.#parityTarget(signed)
        const leader = this.#shouldRepair(signed, health[mi]?.keepers ?? new Set(), 1) && target !== undefined
        man.segments.forEach((seg, si) => {
          const current = seg.shards.length - man.k
          const parity = leader ? (target as number) : current
          checked++
          const live = health[mi]?.live[si] ?? []
          const lost = health[mi]?.lost[si] ?? []
          const healthy = live.filter((l) => l.length > 0).length
          // Shards with no live copy and at least one copy past its grace period.
          const missing = live.flatMap((l, j) => (l.length === 0 && (lost[j]?.length ?? 0) > 0 ? [j] : []))
          if (healthy > threshold || missing.length === 0)
            this.#unhealthyRounds.delete(`${cidToString(signed.cid)}/${si}`)
          if (healthy <= threshold && missing.length > 0) {
            unhealthy++
            const key = `${cidToString(signed.cid)}/${si}`
            const seen = (this.#unhealthyRounds.get(key) ?? 0) + 1
            this.#unhealthyRounds.set(key, seen)
            if (budget > 0 && this.#shouldRepair(signed, health[mi]?.keepers ?? new Set(), seen)) {
              budget--
              work.push({ signed, segment: si, missing: missing.filter((j) => j < man.k + parity), parity })
              return
            }
          }
          if (parity > current && budget > 0) {
            // Raise parity: compute the new rows (and rebuild any missing shard on the way).
            budget--
            work.push({ signed, segment: si, missing, parity })
          } else if (parity < current) {
            // Lower parity: drop the last extra rows from the next holder update.
            resized.set(cidToString(signed.cid), { signed, parity })
          }
        })
      })
      this.#deps.onEvent?.({
        type: 'round',
        manifests: manifests.length,
        segmentsChecked: checked,
        unhealthy,
      })
      // Repair with bounded concurrency; group results per manifest to publish one update each.
      const results = new Map<
        string,
        { signed: SignedManifest; segments: SegmentResult[]; parity?: number | undefined }
      >()
      let next = 0
      const worker = async (): Promise<void> => {
        while (next < work.length && !signal.aborted) {
          const w = work[next++] as (typeof work)[number]
          // Another keeper may have repaired and told us meanwhile: then this view is stale.
          const key = cidToString(w.signed.cid)
          if ((this.#deps.watch.latest(key)?.revision ?? 1) !== (revisionAtStart.get(key) ?? 1)) continue
          const done = await this.#repairSegment(w.signed, w.segment, w.missing, w.parity, signal)
          if (done !== undefined) {
            const r = results.get(key) ?? { signed: w.signed, segments: [] }
            r.segments.push(done)
            results.set(key, r)
          }
        }
      }
      await Promise.all(Array.from({ length: this.#options.maxConcurrentRepairs }, worker))
      for (const [key, { signed, parity }] of resized)
        results.set(key, { signed, segments: results.get(key)?.segments ?? [], parity })
      for (const r of results.values())
        await this.#publish(r.signed, r.segments, r.parity, health, manifests, signal)
      this.#rounds++
    } catch (err) {
      if (!signal.aborted) this.#deps.logger.warn({ err: (err as Error).message }, 'repair round failed')
    }
  }

  /** Parity wanted for a manifest, or undefined (no policy, or the policy failed on it). */
  #parityTarget(signed: SignedManifest): number | undefined {
    if (this.#deps.parityTarget === undefined) return undefined
    try {
      const t = this.#deps.parityTarget(signed)
      const man = signed.manifest
      return Math.min(Math.max(t, man.m), 256 - man.k, man.m + MAX_EXTRA_PARITY)
    } catch {
      return undefined
    }
  }

  /**
   * Coordination: among this node and the connected peers that keep the manifest, the one closest to
   * the manifest CID repairs at once; the others wait a number of rounds equal to their rank.
   */
  #shouldRepair(signed: SignedManifest, keepers: Set<string>, roundsSeen: number): boolean {
    const group = [this.#deps.selfPeerId, ...keepers]
    // The closest repairs at once; the peer of rank r takes over after r more rounds of seeing the
    // segment still unhealthy (the closer ones may not have seen the problem, or may be gone).
    const rank = closestTo(signed.cid.bytes, group).indexOf(this.#deps.selfPeerId)
    return roundsSeen > rank
  }

  /**
   * Rebuild segment `segment` with `parity` parity shards: place the `missing` shards, extra parity
   * rows whose listed CID is wrong, and new parity rows on peers that hold none of the segment.
   * Resolves undefined when it failed (logged and counted).
   */
  async #repairSegment(
    signed: SignedManifest,
    segment: number,
    missing: number[],
    parity: number,
    signal: AbortSignal,
  ): Promise<SegmentResult | undefined> {
    const man = signed.manifest
    const manifest = cidToString(signed.cid)
    const seg = man.segments[segment]
    if (seg === undefined) return undefined
    const current = seg.shards.length - man.k
    const healthy = seg.shards.length - missing.length
    this.#deps.onEvent?.({ type: 'started', manifest, segment, healthy, missing })
    this.#deps.metrics?.repairs.inc({ state: 'started' })
    try {
      const shards = await this.#deps.files.rebuildSegment(man, segment, { signal, parity })
      const base = man.k + man.m
      const extra: CID[] = []
      const place = new Set(missing)
      for (let j = base; j < shards.length; j++) {
        const cid = cidFromDigest(blake3(shards[j] as Uint8Array), RAW_CODEC)
        extra.push(cid)
        const listed = seg.shards[j]?.cid
        if (listed === undefined || !listed.equals(cid)) place.add(j)
      }
      // Peers holding no shard of the segment first; in a small network, then peers that hold only
      // shards being replaced (they lost them); never a peer already holding a healthy shard of it.
      const exclude = new Set(seg.shards.flatMap((s) => s.holders))
      exclude.add(this.#deps.selfPeerId)
      const fallback = new Set(seg.shards.flatMap((s, j) => (place.has(j) ? [] : s.holders)))
      fallback.add(this.#deps.selfPeerId)
      const changes: ShardChange[] = []
      for (const j of [...place].sort((a, b) => a - b)) {
        const cid = j < base ? (seg.shards[j] as { cid: CID }).cid : (extra[j - base] as CID)
        const bytes = shards[j] as Uint8Array
        let holder: string
        try {
          holder = await this.#deps.files.placeShard(cid, bytes, exclude, { signal, manifest: signed.cid })
        } catch (err) {
          if (!isNodusError(err, 'NOT_ENOUGH_PEERS')) throw err
          holder = await this.#deps.files.placeShard(cid, bytes, fallback, { signal, manifest: signed.cid })
        }
        exclude.add(holder)
        fallback.add(holder)
        // A fresh copy, even on a holder whose earlier copy went bad (a small network's fallback).
        this.#bad.clear(holder, cidToString(cid))
        changes.push({ segment, shard: j, holder })
      }
      this.#repaired++
      this.#deps.metrics?.repairs.inc({ state: 'finished' })
      this.#deps.onEvent?.({
        type: 'finished',
        manifest,
        segment,
        rebuilt: changes.length,
        newHolders: changes.map((c) => c.holder),
      })
      if (parity !== current)
        this.#deps.onEvent?.({ type: 'resized', manifest, segment, from: current, to: parity })
      return { segment, changes, extra }
    } catch (err) {
      const code = isNodusError(err) ? err.code : 'unknown'
      this.#deps.metrics?.repairs.inc({ state: 'failed' })
      this.#deps.onEvent?.({ type: 'failed', manifest, segment, code })
      this.#deps.logger.warn({ manifest, segment, code }, 'segment repair failed')
      return undefined
    }
  }

  /**
   * Sign the next holder update (live holders first, then the new ones; extra parity rows as the
   * segment results say, or cut to `parity` for segments not repaired) and spread it.
   */
  async #publish(
    signed: SignedManifest,
    segments: SegmentResult[],
    parity: number | undefined,
    health: Health[],
    manifests: SignedManifest[],
    signal: AbortSignal,
  ): Promise<void> {
    const key = cidToString(signed.cid)
    const mi = manifests.indexOf(signed)
    const h = health[mi]
    const man: Manifest = signed.manifest
    const base = man.k + man.m
    const bySegment = new Map(segments.map((r) => [r.segment, r]))
    const extra = man.segments.map((seg, si) => {
      const r = bySegment.get(si)
      if (r !== undefined) return r.extra
      const listed = seg.shards.slice(base).map((sh) => sh.cid)
      return parity === undefined ? listed : listed.slice(0, Math.max(0, parity - man.m))
    })
    const holders = man.segments.map((seg, si) =>
      Array.from({ length: base + (extra[si]?.length ?? 0) }, (_, j) => {
        const changes = bySegment.get(si)?.changes ?? []
        const fresh = changes.filter((c) => c.shard === j).map((c) => c.holder)
        const sh = seg.shards[j]
        // A row whose CID changed (a wrong extra parity CID replaced) keeps no old holder.
        if (sh === undefined || (j >= base && !sh.cid.equals(extra[si]?.[j - base] as CID))) return fresh
        const live = h?.live[si]?.[j] ?? sh.holders
        return [...new Set([...fresh, ...live])]
      }),
    )
    const revision = (this.#deps.watch.latest(key)?.revision ?? 1) + 1
    const update = await signHolderUpdate(
      {
        manifest: signed.cid,
        revision,
        holders,
        parity: extra,
        signer: { peerId: this.#deps.selfPeerId, publicKey: this.#deps.publicKey },
        createdAt: this.#deps.clock.now(),
      },
      (m) => this.#deps.sign(m),
    )
    await this.#deps.watch.offer(key, revision, update.bytes, this.#deps.clock.now())
    let acceptedBy = 0
    // Offer it to the other keepers, and to the holders (they may keep the manifest too).
    const others = [...new Set([...(h?.keepers ?? []), ...(h?.answered ?? [])])].filter(
      (p) => p !== this.#deps.selfPeerId,
    )
    await Promise.all(
      others.map(async (p) => {
        try {
          if (await this.#deps.client.offerUpdate(peerIdFromString(p), signed.cid, update.bytes, { signal }))
            acceptedBy++
        } catch {
          // peers that do not watch this manifest refuse; that is fine
        }
      }),
    )
    this.#deps.onEvent?.({ type: 'published', manifest: key, revision, acceptedBy })
    this.#deps.logger.info(
      {
        manifest: key,
        revision,
        acceptedBy,
        shards: segments.reduce((n, r) => n + r.changes.length, 0),
      },
      'holder update published',
    )
  }
}
