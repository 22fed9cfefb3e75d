/**
 * Signed capacity and locality reports, and their check against what a peer is seen to do.
 *
 * Each node gossips (rate-limited) a report of its free capacity and its region and network tags (from
 * config). Body (dag-cbor map, exactly these keys):
 *
 * | key | type | meaning |
 * |---|---|---|
 * | `v` | uint | format version, 1 |
 * | `peer` | text | the reporting node's PeerId (Ed25519) |
 * | `seq` | uint | sequence number, strictly increasing per peer |
 * | `ts` | uint | issue time, ms since the Unix epoch |
 * | `free` | uint | free bytes for shards now (≤ `cap`) |
 * | `cap` | uint | configured capacity for shards, bytes (`storage.capacityBytes`) |
 * | `region` | text | region tag, e.g. `eu-west`; `[a-z0-9][a-z0-9._:-]*`, ≤ 64 chars |
 * | `nets` | list of text | network tags, 1 to 8, distinct, each `[A-Za-z0-9._:/-]`, ≤ 64 chars; the first is the primary one placement diversifies on (e.g. `as13335`) |
 *
 * A signed record of src/crypto/signed-record.ts, like trust vectors (Ed25519 by the reporting node),
 * with the domain `"nodus/capacity-report/v1"`. At most 2 KiB encoded.
 */
import {
  checkFreshness,
  type Ed25519Signer,
  type Fail,
  type FreshnessOptions,
  readInt,
  readList,
  readMap,
  readPeerId,
  readString,
  SignedRecordCodec,
  SignedRecordInbox,
  sequencedInboxOptions,
} from '../crypto/index.ts'

/** Domain separation string signed with every capacity report. */
export const CAPACITY_REPORT_DOMAIN = 'nodus/capacity-report/v1'
/** Largest encoded report accepted, bytes. */
export const MAX_CAPACITY_REPORT_BYTES = 2048
/** Most network tags in a report. */
export const MAX_NETWORK_TAGS = 8
/** Longest region or network tag, characters. */
export const MAX_TAG_CHARS = 64

/** Most distinct tags interned (see {@link intern}). */
const MAX_INTERNED_TAGS = 4096
const interned = new Map<string, string>()

/**
 * The canonical string object for a region or network tag, so that the tags of thousands of decoded
 * reports are the same few objects: Map lookups on them (placement counts regions on every decision)
 * then compare pointers instead of characters. Bounded: past 4,096 distinct tags, tags are returned
 * as they are.
 */
function intern(tag: string): string {
  const known = interned.get(tag)
  if (known !== undefined) return known
  if (interned.size < MAX_INTERNED_TAGS) interned.set(tag, tag)
  return tag
}

const REGION_PATTERN = /^[a-z0-9][a-z0-9._:-]*$/
const NETWORK_PATTERN = /^[A-Za-z0-9._:/-]+$/

/** A capacity and locality report (the body of the signed message). */
export interface CapacityReport {
  /** The reporting node's PeerId string (Ed25519). */
  peer: string
  /** Sequence number, strictly increasing per peer. */
  seq: number
  /** Issue time, ms since the Unix epoch. */
  timestampMs: number
  /** Free bytes for shards now, ≤ capacityBytes. */
  freeBytes: number
  /** Configured shard capacity, bytes. */
  capacityBytes: number
  /** Region tag, e.g. `eu-west`. */
  region: string
  /** Network tags, 1 to 8, distinct; the first is the primary network (e.g. an AS number `as13335`). */
  networks: string[]
}

/** A decoded (and, from {@link openCapacityReport}, verified) report with its wire bytes. */
export interface SignedCapacityReport {
  report: CapacityReport
  /** Ed25519 signature, 64 bytes. */
  signature: Uint8Array
  bytes: Uint8Array
}

function bodyOf(r: CapacityReport): Record<string, unknown> {
  return {
    v: 1,
    peer: r.peer,
    seq: r.seq,
    ts: r.timestampMs,
    free: r.freeBytes,
    cap: r.capacityBytes,
    region: r.region,
    nets: r.networks,
  }
}

function validateBody(body: Record<string, unknown>, fail: Fail): CapacityReport {
  const b = readMap(body, 'body', ['cap', 'free', 'nets', 'peer', 'region', 'seq', 'ts', 'v'], fail)
  readInt(b.v, 'v', 1, 1, fail)
  const peer = readPeerId(b.peer, 'peer', fail)
  const seq = readInt(b.seq, 'seq', 0, Number.MAX_SAFE_INTEGER, fail)
  const timestampMs = readInt(b.ts, 'ts', 0, Number.MAX_SAFE_INTEGER, fail)
  const capacityBytes = readInt(b.cap, 'cap', 0, Number.MAX_SAFE_INTEGER, fail)
  const freeBytes = readInt(b.free, 'free', 0, capacityBytes, fail)
  const region = readString(b.region, 'region', MAX_TAG_CHARS, fail, REGION_PATTERN)
  const nets = readList(b.nets, 'nets', MAX_NETWORK_TAGS, fail)
  if (nets.length === 0) throw fail('nets must name at least one network')
  const networks = nets.map((t) => readString(t, 'network tag', MAX_TAG_CHARS, fail, NETWORK_PATTERN))
  if (new Set(networks).size !== networks.length) throw fail('network tags must be distinct')
  return {
    peer,
    seq,
    timestampMs,
    freeBytes,
    capacityBytes,
    region: intern(region),
    networks: networks.map(intern),
  }
}

/** Capacity reports as signed records (src/crypto/signed-record.ts). */
export const CAPACITY_REPORT_RECORD = new SignedRecordCodec<CapacityReport>({
  kind: 'capacity report',
  code: 'CAPACITY_REPORT_INVALID',
  domain: CAPACITY_REPORT_DOMAIN,
  scheme: 'ed25519',
  maxBytes: MAX_CAPACITY_REPORT_BYTES,
  encodeBody: bodyOf,
  decodeBody: validateBody,
  signer: (r) => r.peer,
})

/**
 * Sign a capacity report with the reporting node's Ed25519 key.
 *
 * @throws NodusError `INVALID_ARGUMENT` when `signer` is not `report.peer` or the report is malformed
 */
export async function signCapacityReport(
  report: CapacityReport,
  signer: Ed25519Signer,
): Promise<SignedCapacityReport> {
  const { signature, bytes } = await CAPACITY_REPORT_RECORD.signAs(report, signer.peerId, (m) =>
    signer.ed25519.sign(m),
  )
  return { report, signature, bytes }
}

/**
 * Decode a report from untrusted bytes and check its structure (not signature or age).
 *
 * @throws NodusError `CAPACITY_REPORT_INVALID` (peerAction `reject`) on anything malformed
 */
export function decodeCapacityReport(bytes: Uint8Array): SignedCapacityReport {
  const { value, signature } = CAPACITY_REPORT_RECORD.decode(bytes)
  return { report: value, signature, bytes }
}

/**
 * Check a decoded report's age and signature.
 *
 * @throws NodusError `CAPACITY_REPORT_INVALID` (peerAction `ignore`) when stale or from the future,
 *   (`reject`) when the peer is not an Ed25519 PeerId
 * @throws NodusError `SIGNATURE_INVALID` (peerAction `ban`)
 */
export async function verifyCapacityReport(
  signed: SignedCapacityReport,
  freshness: FreshnessOptions,
): Promise<void> {
  checkFreshness(signed.report.timestampMs, freshness, CAPACITY_REPORT_RECORD.fail)
  CAPACITY_REPORT_RECORD.verify({ value: signed.report, signature: signed.signature })
}

/**
 * Decode, validate and verify a report from untrusted bytes.
 *
 * @throws NodusError `CAPACITY_REPORT_INVALID` or `SIGNATURE_INVALID`
 */
export async function openCapacityReport(
  bytes: Uint8Array,
  freshness: FreshnessOptions,
): Promise<SignedCapacityReport> {
  const signed = decodeCapacityReport(bytes)
  await verifyCapacityReport(signed, freshness)
  return signed
}

/** Limits of {@link CapacityReportInbox}; defaults in {@link DEFAULT_CAPACITY_REPORT_INBOX_OPTIONS}. */
export interface CapacityReportInboxOptions {
  /** One report per peer per `intervalMs` on average. Default 60,000 (1 min). */
  intervalMs: number
  /** Reports a peer may send back to back. Default 3. */
  burst: number
  /** Peers tracked. Default 10,000. */
  maxIssuers: number
  /** Oldest report accepted, ms. Default 1,800,000 (30 min). */
  maxAgeMs: number
  /** Clock skew tolerated, ms. Default 60,000. */
  maxFutureSkewMs: number
}

/** Defaults of {@link CapacityReportInboxOptions} (docs/TRUST.md). */
export const DEFAULT_CAPACITY_REPORT_INBOX_OPTIONS: Readonly<CapacityReportInboxOptions> = Object.freeze({
  intervalMs: 60_000,
  burst: 3,
  maxIssuers: 10_000,
  maxAgeMs: 1_800_000,
  maxFutureSkewMs: 60_000,
})

/**
 * The receiving side for reports, a {@link SignedRecordInbox}: decode → replay and rate check →
 * freshness and signature → admit.
 */
export class CapacityReportInbox {
  readonly #inbox: SignedRecordInbox<CapacityReport>

  /** @throws NodusError `INVALID_ARGUMENT` on bad limits */
  constructor(deps: { clock: { now(): number } }, options: Partial<CapacityReportInboxOptions> = {}) {
    const o = { ...DEFAULT_CAPACITY_REPORT_INBOX_OPTIONS, ...options }
    this.#inbox = new SignedRecordInbox(deps, CAPACITY_REPORT_RECORD, sequencedInboxOptions(o))
  }

  /**
   * Accept a report from untrusted bytes.
   *
   * @throws NodusError `CAPACITY_REPORT_INVALID` (malformed: `reject`; replayed, stale, future: `ignore`)
   * @throws NodusError `RATE_LIMITED` (peerAction `ignore`)
   * @throws NodusError `SIGNATURE_INVALID` (peerAction `ban`)
   */
  async receive(bytes: Uint8Array): Promise<SignedCapacityReport> {
    const { value, signature } = await this.#inbox.receive(bytes)
    return { report: value, signature, bytes }
  }
}

/** One transfer seen with the reporting peer. */
export interface SizedEvent {
  /** When, ms since the Unix epoch. */
  atMs: number
  /** Shard size, bytes. */
  bytes: number
}

/** What this node saw the reporting peer do (all optional). */
export interface ReportObservations {
  /** Stores the peer refused with `STORE_FULL`. */
  refusals?: readonly SizedEvent[]
  /** Stores the peer accepted from us (signed receipts). */
  accepted?: readonly SizedEvent[]
  /** Bytes of our shards the peer holds now (receipts minus deletions). */
  heldBytes?: number
  /** Lowest round-trip time measured to the peer, ms. */
  minRttMs?: number
}

/** Options of {@link checkReport}. */
export interface CheckReportOptions {
  /** Now, ms since the Unix epoch. */
  nowMs: number
  /** A report older than this is `stale` (not an inconsistency). Default 1,800,000 (30 min). */
  maxAgeMs?: number
  /** A STORE_FULL refusal counts against a report only this long after it, ms. Default 600,000. */
  refusalWindowMs?: number
  /**
   * Free space the peer may have lost to other uploaders since its report, as a fraction of its
   * capacity. Default 0.05.
   */
  slackFraction?: number
  /** Our region tag (for the round-trip plausibility check). */
  ourRegion?: string
  /**
   * Physical lower bound of the round-trip time between two regions, ms (e.g. 2 × great-circle
   * distance ÷ 200 km/ms, light in fibre), or undefined when unknown. Without it no region check is made.
   */
  minRegionRttMs?: (a: string, b: string) => number | undefined
}

/** A contradiction between a report and behaviour. */
export type ReportIssue =
  | {
      /** The peer refused a shard as full while it should have had room for it. */
      kind: 'refused-with-free-space'
      atMs: number
      bytes: number
      /** The report's free bytes minus what we stored there since. */
      expectedFreeBytes: number
    }
  | {
      /** Our shards alone take more space than the report says is used (capacity − free). */
      kind: 'held-exceeds-used'
      heldBytes: number
      usedBytes: number
    }
  | {
      /** The measured round-trip time is below the physical minimum to the claimed region. */
      kind: 'region-implausible'
      rttMs: number
      minRttMs: number
      region: string
    }

/** What {@link checkReport} returns. */
export interface ReportCheck {
  /** No issue found. */
  consistent: boolean
  /** The report is older than `maxAgeMs` (ask for a fresh one; not held against the peer). */
  stale: boolean
  issues: ReportIssue[]
}

/**
 * Check a peer's report against what this node saw it do. Each issue found is a reason to record a
 * `report-inconsistent` interaction (src/trust/records.ts) and to distrust the report in placement.
 *
 * Checks: (1) a `STORE_FULL` refusal within `refusalWindowMs` after the report, of a shard that fits
 * in the report's free bytes minus what we stored there since and minus `slackFraction` of capacity;
 * (2) our shards held there (at the report's time) exceeding its used bytes; (3) a measured round
 * trip faster than light allows between our region and the claimed one.
 */
export function checkReport(
  report: CapacityReport,
  observations: ReportObservations,
  options: CheckReportOptions,
): ReportCheck {
  const maxAgeMs = options.maxAgeMs ?? 1_800_000
  const windowMs = options.refusalWindowMs ?? 600_000
  const slack = (options.slackFraction ?? 0.05) * report.capacityBytes
  const ts = report.timestampMs
  const accepted = observations.accepted ?? []
  const issues: ReportIssue[] = []

  const storedBetween = (from: number, to: number): number => {
    let sum = 0
    for (const a of accepted) if (a.atMs >= from && a.atMs <= to) sum += a.bytes
    return sum
  }

  for (const r of observations.refusals ?? []) {
    if (r.atMs < ts || r.atMs > ts + windowMs) continue
    const expectedFreeBytes = report.freeBytes - storedBetween(ts, r.atMs)
    if (expectedFreeBytes - slack >= r.bytes) {
      issues.push({ kind: 'refused-with-free-space', atMs: r.atMs, bytes: r.bytes, expectedFreeBytes })
    }
  }

  if (observations.heldBytes !== undefined) {
    const heldAtReport = observations.heldBytes - storedBetween(ts, Number.POSITIVE_INFINITY)
    const usedBytes = report.capacityBytes - report.freeBytes
    if (heldAtReport > usedBytes + slack) {
      issues.push({ kind: 'held-exceeds-used', heldBytes: heldAtReport, usedBytes })
    }
  }

  if (
    observations.minRttMs !== undefined &&
    options.ourRegion !== undefined &&
    options.minRegionRttMs !== undefined
  ) {
    const minRttMs = options.minRegionRttMs(options.ourRegion, report.region)
    if (minRttMs !== undefined && observations.minRttMs < minRttMs) {
      issues.push({
        kind: 'region-implausible',
        rttMs: observations.minRttMs,
        minRttMs,
        region: report.region,
      })
    }
  }

  return { consistent: issues.length === 0, stale: options.nowMs - ts > maxAgeMs, issues }
}
