/**
 * kv catch-up by range-based set reconciliation (src/kv/reconcile/), the catch-up rows: a
 * replica missing M of N ops (N = 1,000,000, about 30 s in all; 100,000 with --quick) reconciles with
 * a full one, both FingerprintIndexes on MemoryOrderedStore (built with `load`), messages passed
 * in-process (harness.ts).
 *
 *   node bench/kv-sync.bench.ts [--quick]
 *
 * Rows:
 * - already in sync (goal: 1 round trip, < 1 KB); M = 10,000 most recent ops missing (≤ 4 round trips,
 *   ≤ 0.5 MB); M = 1,000 scattered ops missing (≤ 4 round trips, ≤ 1.5 MB): round trips, bytes of the
 *   exchange (op keys and fingerprints, not the ops) and CPU ms of both sides together. Every run
 *   checks that both sides learned exactly the missing ops before a figure is reported.
 * - a random range's fingerprint: CPU µs per query from the index, against summing the range by a
 *   scan of the same store.
 * - index upkeep: CPU µs per insert and per remove of one op (one op's write), and per op of a bulk
 *   load, on the in-memory store.
 *
 * The peer: the negentropy npm package is not in this environment's package lists, so the peer is the
 * naive exchange of full id lists (each side sends its 32-byte op ids, then diffs locally): one round
 * trip, 32 × (|A| + |B|) bytes; its CPU is measured on the same sets. `ratio` = peer bytes ÷ ours (the
 * range rows: scan CPU ÷ ours). No MB/s: the note gives the figures. CPU, not wall time, because the
 * machine the benchmarks share may be loaded.
 */
import { fileURLToPath } from 'node:url'
import { seededRandom } from '../src/common/random.ts'
import { keyId } from '../src/kv/reconcile/fingerprint.ts'
import type { FingerprintIndex } from '../src/kv/reconcile/fingerprint-index.ts'
import { reconcile } from '../src/kv/reconcile/harness.ts'
import { Reconciler, type ReconcileSet } from '../src/kv/reconcile/protocol.ts'
import type { MemoryOrderedStore } from '../src/kv/store/ordered.ts'
import { indexedSet, keys, RECON_DEFAULTS } from '../test/utils/recon.ts'
import { type BenchOptions, cpuMs, sig } from './lib.ts'

export const description =
  'kv catch-up: a replica missing M of N ops reconciles with a full one (range-based set reconciliation, ' +
  'FingerprintIndex on the in-memory store): round trips, bytes of the exchange (keys and fingerprints, not ' +
  'the ops) and CPU of both sides, against the naive exchange of full id lists (the negentropy package is not ' +
  'available here). Goals from issue 20: in sync 1 round trip < 1 KB; 10,000 recent ≤ 4 round trips ≤ 0.5 MB; ' +
  '1,000 scattered ≤ 4 round trips ≤ 1.5 MB. Also the cost of a range fingerprint and of index upkeep. ' +
  'No MB/s; ratio = peer bytes (or CPU) ÷ ours.'

/** One benchmark result. */
export interface SyncRow {
  name: string
  peer: string
  peer_MBps: null
  /** Peer bytes ÷ ours (catch-up rows) or peer CPU ÷ ours (range and upkeep rows). */
  ratio: number | null
  note: string
  roundTrips?: number
  bytes?: number
  cpuMs?: number
  peer_bytes?: number
  peer_cpuMs?: number
  cpuUs?: number
  peer_cpuUs?: number
}

const PEER = 'naive: full id lists both ways'
const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex')

interface Replica {
  store: MemoryOrderedStore
  index: FingerprintIndex
  set: ReconcileSet
}

/** The naive peer: both id lists sent whole, each side diffs with a hash set. CPU ms and bytes. */
function naive(a: Uint8Array[], b: Uint8Array[]): { bytes: number; cpuMs: number; missing: number } {
  const c0 = cpuMs()
  const ids = (ks: Uint8Array[]): string[] => ks.map((k) => Buffer.from(keyId(k)).toString('latin1'))
  const listA = ids(a)
  const listB = ids(b)
  const setA = new Set(listA)
  const setB = new Set(listB)
  const missing = listA.filter((id) => !setB.has(id)).length + listB.filter((id) => !setA.has(id)).length
  return { bytes: 32 * (a.length + b.length), cpuMs: cpuMs() - c0, missing }
}

/** Reconciles `replica` (initiator) with `full`; checks the replica learned exactly `missing`. */
function catchUp(
  replica: Replica,
  full: Replica,
  missing: Uint8Array[],
): { roundTrips: number; bytes: number; cpuMs: number } {
  const c0 = cpuMs()
  const report = reconcile(
    new Reconciler({ set: replica.set }, RECON_DEFAULTS, 'initiator'),
    new Reconciler({ set: full.set }, RECON_DEFAULTS, 'responder'),
  )
  const cpu = cpuMs() - c0
  const want = missing.map(hex).sort()
  const got = report.initiatorNeed.map(hex)
  if (got.length !== want.length || got.some((h, i) => h !== want[i]) || report.initiatorHave.length > 0)
    throw new Error(`reconciliation found ${got.length} missing, not ${want.length}`)
  if (report.responderHave.length !== want.length)
    throw new Error('the responder did not learn the difference')
  return { roundTrips: report.roundTrips, bytes: report.initiatorBytes + report.responderBytes, cpuMs: cpu }
}

const fmtBytes = (b: number): string => (b < 10_000 ? `${b} B` : `${sig(b / 1e6)} MB`)

async function scenario(
  name: string,
  goal: string,
  replica: Replica,
  full: Replica,
  all: Uint8Array[],
  missing: Uint8Array[],
): Promise<SyncRow> {
  await replica.store.write((w) => {
    for (const k of missing) replica.index.remove(w, k)
  })
  const ours = catchUp(replica, full, missing)
  await replica.store.write((w) => {
    for (const k of missing) replica.index.insert(w, k)
  })
  const gone = new Set(missing.map(hex))
  const peer = naive(
    all.filter((k) => !gone.has(hex(k))),
    all,
  )
  if (peer.missing !== missing.length) throw new Error('naive diff disagrees')
  return {
    name,
    peer: PEER,
    peer_MBps: null,
    ratio: sig(peer.bytes / ours.bytes),
    note:
      `ours ${ours.roundTrips} round trip${ours.roundTrips === 1 ? '' : 's'}, ${fmtBytes(ours.bytes)}, ` +
      `CPU ${sig(ours.cpuMs)} ms (goal ${goal}); naive 1 round trip, ${fmtBytes(peer.bytes)}, CPU ${sig(peer.cpuMs)} ms`,
    roundTrips: ours.roundTrips,
    bytes: ours.bytes,
    cpuMs: sig(ours.cpuMs),
    peer_bytes: peer.bytes,
    peer_cpuMs: sig(peer.cpuMs),
  }
}

/** CPU µs per range fingerprint: the index against a scan of the items table of the same store. */
function rangeRow(full: Replica, all: Uint8Array[], n: number, queries: number): SyncRow {
  const rnd = seededRandom(77)
  const ranges = Array.from({ length: queries }, () => {
    const a = Math.floor(rnd.next() * n)
    const b = Math.floor(rnd.next() * n)
    return [all[Math.min(a, b)] as Uint8Array, all[Math.max(a, b)] as Uint8Array] as const
  })
  let c0 = cpuMs()
  const counts: number[] = []
  for (const [lo, hi] of ranges) counts.push(full.index.summarize(full.store, lo, hi).count)
  const ours = ((cpuMs() - c0) * 1000) / queries
  const scanned = ranges.slice(0, Math.max(3, Math.floor(queries / 50)))
  c0 = cpuMs()
  scanned.forEach(([lo, hi], i) => {
    const c = full.index.items(full.store, lo, hi).length
    if (c !== counts[i]) throw new Error('index and scan disagree')
  })
  const scan = ((cpuMs() - c0) * 1000) / scanned.length
  return {
    name: `fingerprint of a random range, N = ${n.toLocaleString('en-US')}`,
    peer: 'scan of the range',
    peer_MBps: null,
    ratio: sig(scan / ours),
    note: `ours ${sig(ours)} CPU µs per range (${queries} ranges); scan ${sig(scan)} CPU µs (${scanned.length} ranges, mean ${Math.round(
      counts.slice(0, scanned.length).reduce((x, y) => x + y, 0) / scanned.length,
    ).toLocaleString('en-US')} items)`,
    cpuUs: sig(ours),
    peer_cpuUs: sig(scan),
  }
}

/** CPU µs per insert and per remove of one op (each in its own write), and per op of the load. */
async function upkeepRow(full: Replica, n: number, loadUs: number): Promise<SyncRow> {
  const extra = keys(2000, 99, 1_700_000_000_000, 13_000_000)
  let c0 = cpuMs()
  for (const k of extra) await full.store.write((w) => full.index.insert(w, k))
  const insertUs = ((cpuMs() - c0) * 1000) / extra.length
  c0 = cpuMs()
  for (const k of extra) await full.store.write((w) => full.index.remove(w, k))
  const removeUs = ((cpuMs() - c0) * 1000) / extra.length
  return {
    name: `index upkeep per op, N = ${n.toLocaleString('en-US')} (in-memory store)`,
    peer: '-',
    peer_MBps: null,
    ratio: null,
    note: `insert ${sig(insertUs)} CPU µs, remove ${sig(removeUs)} CPU µs (one write each, ${extra.length} ops); bulk load ${sig(loadUs)} CPU µs per op`,
    cpuUs: sig(insertUs),
  }
}

/** Runs the benchmark and returns its rows (does not print). Throws when a result is wrong. */
export async function run(options: BenchOptions): Promise<SyncRow[]> {
  const n = options.quick ? 100_000 : 1_000_000
  // About 30 days of ops (a random gap of up to 5 s each at N = 1M), HLC counters 0-2.
  const all = keys(n, 2026, 1_700_000_000_000, Math.floor(2_600_000_000 / n))
  const c0 = cpuMs()
  const full = await indexedSet(all, 1, 'load')
  const loadUs = ((cpuMs() - c0) * 1000) / n
  const replica = await indexedSet(all, 2, 'load')
  const rnd = seededRandom(5)
  const picked = new Set<number>()
  while (picked.size < 1000) picked.add(Math.floor(rnd.next() * n))
  const scattered = [...picked].sort((x, y) => x - y).map((i) => all[i] as Uint8Array)
  const label = n.toLocaleString('en-US')
  const rows = [
    await scenario(`catch-up, already in sync, N = ${label}`, '1 round trip, < 1 KB', replica, full, all, []),
    await scenario(
      `catch-up, M = 10,000 recent of N = ${label}`,
      '≤ 4 round trips, ≤ 0.5 MB',
      replica,
      full,
      all,
      all.slice(n - 10_000),
    ),
    await scenario(
      `catch-up, M = ${scattered.length.toLocaleString('en-US')} scattered of N = ${label}`,
      '≤ 4 round trips, ≤ 1.5 MB',
      replica,
      full,
      all,
      scattered,
    ),
    rangeRow(full, all, n, options.quick ? 200 : 1000),
    await upkeepRow(full, n, loadUs),
  ]
  return rows
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rows = await run({ quick: process.argv.includes('--quick') })
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`)
}
