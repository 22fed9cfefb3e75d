/**
 * The challenger's per-peer audit record: how many audits each holder passed, failed and let time out,
 * when the last one ended, and how many in a row it has not passed. Trust (src/trust, EigenTrust) and
 * repair read it through {@link AuditRecords.records}. In memory, bounded (least recently updated peer
 * evicted), with an injected clock; {@link AuditRecords.toJSON} / {@link AuditRecords.fromJSON} let the
 * owner persist it.
 */
import { NodusError } from '../../common/errors.ts'

/** Outcome of one audit. `fail`: a proof that did not verify, a malformed answer, or "I lost it". */
export type AuditResult = 'pass' | 'fail' | 'timeout'

const RESULTS: readonly AuditResult[] = ['pass', 'fail', 'timeout']

/** One peer's audit record (a snapshot: changing it changes nothing inside {@link AuditRecords}). */
export interface AuditRecord {
  /** The holder's PeerId string. */
  peer: string
  /** Audits passed. */
  passed: number
  /** Audits failed (wrong or malformed proof, or the holder said it no longer has the shard). */
  failed: number
  /** Audits with no answer in time (or the holder was unreachable). */
  timedOut: number
  /** When the last audit of this peer ended, ms since the epoch (the clock's time). */
  lastAt: number
  /** Result of that last audit. */
  lastResult: AuditResult
  /** Audits since the last pass that did not pass (fail or timeout); 0 right after a pass. */
  consecutiveFailures: number
}

/** Dependencies of {@link AuditRecords}. */
export interface AuditRecordsDeps {
  /** Milliseconds; `Date` in production, a fake clock in tests. */
  clock: { now(): number }
}

/** Options of {@link AuditRecords}. */
export interface AuditRecordsOptions {
  /** Most peers kept; beyond it the least recently updated peer is forgotten. Default 10,000. */
  maxPeers: number
}

/** Default {@link AuditRecordsOptions}. */
export const DEFAULT_AUDIT_RECORDS_OPTIONS: Readonly<AuditRecordsOptions> = Object.freeze({
  maxPeers: 10_000,
})

/** Persisted form: `{ v: 1, peers: AuditRecord[] }`, least recently updated first. */
export interface AuditRecordsJSON {
  v: 1
  peers: AuditRecord[]
}

/** Longest peer id accepted by {@link AuditRecords.fromJSON} (a PeerId string is ~52 characters). */
const MAX_PEER_ID_LENGTH = 256

function invalid(message: string, details: Record<string, unknown> = {}): NodusError {
  return new NodusError('INVALID_ARGUMENT', message, { details })
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

function checkRecord(v: unknown, index: number): AuditRecord {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw invalid('audit record is not an object', { index })
  }
  const r = v as Record<string, unknown>
  const { peer, passed, failed, timedOut, lastAt, lastResult, consecutiveFailures } = r
  if (typeof peer !== 'string' || peer.length === 0 || peer.length > MAX_PEER_ID_LENGTH) {
    throw invalid('audit record peer must be a non-empty string', { index })
  }
  if (!isCount(passed) || !isCount(failed) || !isCount(timedOut) || !isCount(consecutiveFailures)) {
    throw invalid('audit record counts must be non-negative integers', { index, peer })
  }
  if (passed + failed + timedOut === 0) throw invalid('audit record has no audits', { index, peer })
  if (consecutiveFailures > failed + timedOut) {
    throw invalid('audit record consecutiveFailures exceeds failed + timedOut', { index, peer })
  }
  if (typeof lastAt !== 'number' || !Number.isFinite(lastAt)) {
    throw invalid('audit record lastAt must be a finite number', { index, peer })
  }
  if (typeof lastResult !== 'string' || !RESULTS.includes(lastResult as AuditResult)) {
    throw invalid('audit record lastResult must be pass, fail or timeout', { index, peer })
  }
  if ((lastResult === 'pass') !== (consecutiveFailures === 0)) {
    throw invalid('audit record lastResult and consecutiveFailures disagree', { index, peer })
  }
  return {
    peer,
    passed,
    failed,
    timedOut,
    lastAt,
    lastResult: lastResult as AuditResult,
    consecutiveFailures,
  }
}

/**
 * Per-peer audit records kept by a challenger. O(1) per update; at most `maxPeers` peers (a `Map` in
 * least-recently-updated order; reads do not refresh a peer).
 */
export class AuditRecords {
  readonly #clock: { now(): number }
  readonly #maxPeers: number
  readonly #peers = new Map<string, AuditRecord>()

  /** @throws NodusError `INVALID_ARGUMENT` when `maxPeers` is not an integer ≥ 1 */
  constructor(deps: AuditRecordsDeps, options: Partial<AuditRecordsOptions> = {}) {
    this.#clock = deps.clock
    this.#maxPeers = options.maxPeers ?? DEFAULT_AUDIT_RECORDS_OPTIONS.maxPeers
    if (!Number.isSafeInteger(this.#maxPeers) || this.#maxPeers < 1) {
      throw invalid('maxPeers must be an integer ≥ 1', { maxPeers: this.#maxPeers })
    }
  }

  /** Peers tracked. */
  get size(): number {
    return this.#peers.size
  }

  /**
   * Record one audit of `peer` that ended now (the clock's time) with `result`. Makes `peer` the most
   * recently updated; evicts the least recently updated peer when a new one would pass `maxPeers`.
   *
   * @returns a snapshot of `peer`'s record after the update
   * @throws NodusError `INVALID_ARGUMENT` on an empty peer id or an unknown result
   */
  record(peer: string, result: AuditResult): AuditRecord {
    if (typeof peer !== 'string' || peer.length === 0) throw invalid('peer must be a non-empty string')
    if (!RESULTS.includes(result)) throw invalid('result must be pass, fail or timeout', { result })
    const now = this.#clock.now()
    let r = this.#peers.get(peer)
    if (r === undefined) {
      if (this.#peers.size >= this.#maxPeers) {
        const oldest = this.#peers.keys().next()
        if (oldest.done !== true) this.#peers.delete(oldest.value)
      }
      r = { peer, passed: 0, failed: 0, timedOut: 0, lastAt: now, lastResult: result, consecutiveFailures: 0 }
    } else {
      this.#peers.delete(peer) // re-inserted below: Map order is least recently updated first
    }
    if (result === 'pass') {
      r.passed = Math.min(r.passed + 1, Number.MAX_SAFE_INTEGER)
      r.consecutiveFailures = 0
    } else {
      if (result === 'fail') r.failed = Math.min(r.failed + 1, Number.MAX_SAFE_INTEGER)
      else r.timedOut = Math.min(r.timedOut + 1, Number.MAX_SAFE_INTEGER)
      r.consecutiveFailures = Math.min(r.consecutiveFailures + 1, Number.MAX_SAFE_INTEGER)
    }
    r.lastAt = now
    r.lastResult = result
    this.#peers.set(peer, r)
    return { ...r }
  }

  /** A snapshot of `peer`'s record, or undefined when it was never audited (or was evicted). */
  get(peer: string): AuditRecord | undefined {
    const r = this.#peers.get(peer)
    return r === undefined ? undefined : { ...r }
  }

  /** Forget `peer`. @returns whether it was tracked */
  delete(peer: string): boolean {
    return this.#peers.delete(peer)
  }

  /** Snapshots of every record, least recently updated first. What trust and repair read. */
  *records(): IterableIterator<AuditRecord> {
    for (const r of this.#peers.values()) yield { ...r }
  }

  /** The persisted form (plain JSON), least recently updated first. */
  toJSON(): AuditRecordsJSON {
    return { v: 1, peers: [...this.records()] }
  }

  /**
   * Rebuild records from {@link AuditRecords.toJSON} output (for instance after `JSON.parse` of a file),
   * keeping the order. When there are more than `maxPeers` peers, the most recently updated are kept.
   *
   * @throws NodusError `INVALID_ARGUMENT` when `json` is not a valid version-1 form (wrong version,
   *   a malformed or inconsistent record, a peer listed twice)
   */
  static fromJSON(
    json: unknown,
    deps: AuditRecordsDeps,
    options: Partial<AuditRecordsOptions> = {},
  ): AuditRecords {
    const records = new AuditRecords(deps, options)
    if (typeof json !== 'object' || json === null || Array.isArray(json))
      throw invalid('audit records: not an object')
    const { v, peers } = json as Record<string, unknown>
    if (v !== 1) throw invalid('audit records: unsupported version', { v: String(v) })
    if (!Array.isArray(peers)) throw invalid('audit records: peers must be an array')
    const seen = new Set<string>()
    const checked = peers.map((p, i) => {
      const r = checkRecord(p, i)
      if (seen.has(r.peer)) throw invalid('audit records: peer listed twice', { index: i, peer: r.peer })
      seen.add(r.peer)
      return r
    })
    for (const r of checked.slice(Math.max(0, checked.length - records.#maxPeers)))
      records.#peers.set(r.peer, r)
    return records
  }
}

/** Options of {@link BadCopies}. */
export interface BadCopiesOptions {
  /** Most marks kept; beyond it the oldest mark is forgotten. Default 100,000 (about 20 MB at most). */
  maxEntries: number
}

/** Default {@link BadCopiesOptions}. */
export const DEFAULT_BAD_COPIES_OPTIONS: Readonly<BadCopiesOptions> = Object.freeze({ maxEntries: 100_000 })

/** Why a copy is marked bad: it failed an audit, or its holder reported it lost. */
export type BadCopyReason = 'audit-failed' | 'reported'

/** One copy known to be bad. */
export interface BadCopy {
  /** The holder's PeerId string. */
  holder: string
  /** The shard's CID string. */
  cid: string
  reason: BadCopyReason
  /** When it was marked, ms (the clock's time). */
  at: number
}

/**
 * Shard copies a keeper knows to be bad, per (holder, shard CID): a failed audit (an honest holder never
 * fails one) or the holder's own report that it lost the copy. Repair counts a marked copy as lost in
 * every round, whatever the holder answers to `has`, with no grace period (grace is for holders that are
 * merely unreachable), and never audits it again, until the mark goes: when a repair places a fresh copy
 * on that holder ({@link clear}), when the copy is no longer listed in any watched manifest (a later
 * holder update dropped a holder an earlier one had added: {@link retain}), or when the cap evicts it
 * (oldest first). Holders listed by the signed manifest itself stay listed (holder updates add to them),
 * so their marks stay: a hostile holder that keeps claiming the shard is not counted live again. So the
 * marks are at most the copies listed in watched manifests, and at most `maxEntries`.
 * O(1) per mark and look-up; {@link retain} is one pass.
 */
export class BadCopies {
  readonly #clock: { now(): number }
  readonly #maxEntries: number
  readonly #marks = new Map<string, BadCopy>()

  /** @throws NodusError `INVALID_ARGUMENT` when `maxEntries` is not an integer ≥ 1 */
  constructor(deps: AuditRecordsDeps, options: Partial<BadCopiesOptions> = {}) {
    this.#clock = deps.clock
    this.#maxEntries = options.maxEntries ?? DEFAULT_BAD_COPIES_OPTIONS.maxEntries
    if (!Number.isSafeInteger(this.#maxEntries) || this.#maxEntries < 1) {
      throw invalid('maxEntries must be an integer ≥ 1', { maxEntries: this.#maxEntries })
    }
  }

  /** Copies marked. */
  get size(): number {
    return this.#marks.size
  }

  /**
   * Mark the copy of shard `cid` on `holder` bad. A copy already marked keeps its first mark.
   * @returns true when the mark is new
   */
  mark(holder: string, cid: string, reason: BadCopyReason): boolean {
    const key = `${holder}/${cid}`
    if (this.#marks.has(key)) return false
    if (this.#marks.size >= this.#maxEntries) {
      const oldest = this.#marks.keys().next()
      if (oldest.done !== true) this.#marks.delete(oldest.value)
    }
    this.#marks.set(key, { holder, cid, reason, at: this.#clock.now() })
    return true
  }

  /** Whether the copy of `cid` on `holder` is marked bad. */
  has(holder: string, cid: string): boolean {
    return this.#marks.has(`${holder}/${cid}`)
  }

  /** The mark of that copy (a snapshot), or undefined. */
  get(holder: string, cid: string): BadCopy | undefined {
    const m = this.#marks.get(`${holder}/${cid}`)
    return m === undefined ? undefined : { ...m }
  }

  /** Forget the mark of one copy. @returns whether it was marked */
  clear(holder: string, cid: string): boolean {
    return this.#marks.delete(`${holder}/${cid}`)
  }

  /** Keep only the marks for which `keep(holder, cid)` is true. @returns marks dropped */
  retain(keep: (holder: string, cid: string) => boolean): number {
    let dropped = 0
    for (const [key, m] of this.#marks) {
      if (!keep(m.holder, m.cid)) {
        this.#marks.delete(key)
        dropped++
      }
    }
    return dropped
  }

  /** Snapshots of every mark, oldest first. */
  *entries(): IterableIterator<BadCopy> {
    for (const m of this.#marks.values()) yield { ...m }
  }
}
