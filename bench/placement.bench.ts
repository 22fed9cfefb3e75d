/**
 * Scored placement decision time: `placeScored` (src/storage/placement/placement-scored.ts) choosing the peers for
 * one segment, against a naive implementation of the same distribution in the same run.
 *
 *   node bench/placement.bench.ts [--quick]
 *
 * Candidates: 10,000 (and 1,000) synthetic peers over 7 regions and 40 networks with random trust,
 * performance and free space, fixed seed. Each decision is timed on its own (performance.now()) with a
 * fresh seeded rng; the figures are the p50 and p99 of those times, ms.
 *
 * The peer ("naive"): computes every candidate's weight with its diversity factor, gives each an
 * Efraimidis-Spirakis key ln(u) / w and fully sorts all candidates by key, once per pick (n full sorts
 * of N). It draws from the same distribution as ours; ours draws from prefix sums by binary search with
 * rejection, O(N + n log N) per decision. Both outputs are checked (n distinct eligible peers, region cap)
 * before any figure is reported.
 *
 * Rows: `{ name, peer, peer_MBps: null, ratio, note, ours_p50Ms, ours_p99Ms, peer_p50Ms, peer_p99Ms }`;
 * there is no MB/s figure (`ours_MBps` is absent), and ratio = peer p99 ÷ ours p99 (above 1: ours faster,
 * as for throughput ratios).
 */
import { fileURLToPath } from 'node:url'
import { mulberry32 } from '../src/common/prng.ts'
import { type Candidate, placeScored } from '../src/storage/placement/placement-scored.ts'
import type { BenchOptions } from './lib.ts'

export const description =
  'Scored placement (trust, performance, capacity, region and network diversity): p50/p99 time of one ' +
  'decision, ours against a naive implementation of the same distribution (n full sorts). No MB/s: ' +
  'the note gives the times; ratio = naive p99 ÷ ours p99.'

/** One benchmark result. */
export interface PlacementRow {
  name: string
  peer: string
  peer_MBps: null
  /** peer_p99Ms / ours_p99Ms: above 1, ours is faster. */
  ratio: number
  note: string
  ours_p50Ms: number
  ours_p99Ms: number
  peer_p50Ms: number
  peer_p99Ms: number
}

const REGIONS = ['eu-west', 'eu-central', 'us-east', 'us-west', 'ap-south', 'ap-northeast', 'sa-east']
const NETWORKS = 40
const PEER = 'naive: per pick, ES keys + full sort of all candidates'

function population(n: number, seed: number): Candidate[] {
  const r = mulberry32(seed)
  return Array.from({ length: n }, (_, i) => ({
    id: `12D3KooWpeer${String(i).padStart(8, '0')}`,
    trust: r() / n,
    performance: 0.1 + 0.9 * r(),
    freeBytes: r() < 0.02 ? 0 : Math.floor(r() * 4e12),
    region: REGIONS[Math.floor(r() * REGIONS.length)] as string,
    network: `as${Math.floor(r() * NETWORKS)}`,
  }))
}

/**
 * The naive contender: same weights, same rules (region cap ceil(n / R), penalties 0.5 and 0.25,
 * trust floor 0.01, capacity^0.5), but every pick recomputes all weights and fully sorts by
 * Efraimidis-Spirakis key.
 */
function naivePlace(cs: readonly Candidate[], n: number, rng: () => number): number[] {
  let maxTrust = 0
  let maxFree = 0
  for (const c of cs) {
    maxTrust = Math.max(maxTrust, c.trust)
    maxFree = Math.max(maxFree, c.freeBytes)
  }
  const base = cs.map((c) =>
    c.freeBytes >= 1 && c.performance > 0
      ? Math.max(c.trust / maxTrust, 0.01) * Math.min(c.performance, 1) * Math.sqrt(c.freeBytes / maxFree)
      : 0,
  )
  const regionsEligible = new Map<string, number>()
  cs.forEach((c, i) => {
    if ((base[i] as number) > 0) regionsEligible.set(c.region, (regionsEligible.get(c.region) ?? 0) + 1)
  })
  const eligible = base.filter((w) => w > 0).length
  const target = Math.min(n, eligible)
  let cap = Math.ceil(target / regionsEligible.size)
  const regionChosen = new Map<string, number>()
  const netChosen = new Map<string, number>()
  const chosen = new Set<number>()
  const picks: number[] = []
  while (picks.length < target) {
    const keyed: Array<[number, number]> = []
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i] as Candidate
      const b = base[i] as number
      const rc = regionChosen.get(c.region) ?? 0
      if (b === 0 || chosen.has(i) || rc >= cap) continue
      const w = b * 0.5 ** rc * 0.25 ** (netChosen.get(c.network) ?? 0)
      keyed.push([Math.log(rng()) / w, i])
    }
    if (keyed.length === 0) {
      cap++
      continue
    }
    keyed.sort((x, y) => y[0] - x[0])
    const pick = (keyed[0] as [number, number])[1]
    const c = cs[pick] as Candidate
    chosen.add(pick)
    picks.push(pick)
    regionChosen.set(c.region, (regionChosen.get(c.region) ?? 0) + 1)
    netChosen.set(c.network, (netChosen.get(c.network) ?? 0) + 1)
  }
  return Array.from({ length: n }, (_, i) => picks[i % picks.length] as number)
}

/** Throws unless `picks` are n distinct eligible peers with no region above ceil(n / R). */
function validate(cs: readonly Candidate[], picks: readonly number[], n: number, who: string): void {
  if (picks.length !== n || new Set(picks).size !== n) throw new Error(`${who}: not ${n} distinct peers`)
  const regions = new Set(cs.filter((c) => c.freeBytes > 0).map((c) => c.region))
  const cap = Math.ceil(n / regions.size)
  const per = new Map<string, number>()
  for (const i of picks) {
    const c = cs[i]
    if (c === undefined || c.freeBytes <= 0) throw new Error(`${who}: ineligible peer ${i}`)
    per.set(c.region, (per.get(c.region) ?? 0) + 1)
  }
  for (const [r, k] of per) if (k > cap) throw new Error(`${who}: region ${r} got ${k} > ${cap}`)
}

function percentile(sorted: readonly number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)
  return sorted[Math.max(0, i)] as number
}

const round = (x: number): number => (x >= 1 ? Math.round(x * 100) / 100 : Math.round(x * 10_000) / 10_000)

async function measureCase(
  candidates: number,
  n: number,
  opts: { naiveRuns: number; oursPerNaive: number; warmup: number },
): Promise<PlacementRow> {
  const cs = population(candidates, candidates * 31 + n)
  for (let i = 0; i < opts.warmup; i++) {
    validate(cs, placeScored(cs, n, {}, mulberry32(i)), n, 'ours')
    if (i < 5) validate(cs, naivePlace(cs, n, mulberry32(i)), n, 'naive')
  }
  const ours: number[] = []
  const naive: number[] = []
  let seed = 1_000
  // Interleave: one naive decision, then a block of ours, so background noise hits both alike.
  for (let r = 0; r < opts.naiveRuns; r++) {
    let rng = mulberry32(seed++)
    let t0 = performance.now()
    const np = naivePlace(cs, n, rng)
    naive.push(performance.now() - t0)
    validate(cs, np, n, 'naive')
    for (let k = 0; k < opts.oursPerNaive; k++) {
      rng = mulberry32(seed++)
      t0 = performance.now()
      const op = placeScored(cs, n, {}, rng)
      ours.push(performance.now() - t0)
      if (k === 0) validate(cs, op, n, 'ours')
    }
    // Yield now and then so a long run does not starve the event loop of the harness.
    if (r % 50 === 49) await new Promise((resolve) => setImmediate(resolve))
  }
  ours.sort((a, b) => a - b)
  naive.sort((a, b) => a - b)
  const o50 = percentile(ours, 50)
  const o99 = percentile(ours, 99)
  const p50 = percentile(naive, 50)
  const p99 = percentile(naive, 99)
  return {
    name: `place ${n} of ${candidates.toLocaleString('en-US')} candidates (decision time)`,
    peer: PEER,
    peer_MBps: null,
    ratio: Math.round((p99 / o99) * 100) / 100,
    note:
      `ours p50 ${round(o50)} ms, p99 ${round(o99)} ms, max ${round(ours[ours.length - 1] as number)} ms ` +
      `(${ours.length} decisions); naive p50 ${round(p50)} ms, p99 ${round(p99)} ms (${naive.length}); ` +
      'ratio = naive p99 / ours p99',
    ours_p50Ms: round(o50),
    ours_p99Ms: round(o99),
    peer_p50Ms: round(p50),
    peer_p99Ms: round(p99),
  }
}

/** Runs the benchmark and returns its rows (does not print). Throws when an output breaks the rules. */
export async function run(options: BenchOptions): Promise<PlacementRow[]> {
  const opts = options.quick
    ? { naiveRuns: 50, oursPerNaive: 20, warmup: 100 }
    : { naiveRuns: 500, oursPerNaive: 40, warmup: 1000 }
  return [await measureCase(10_000, 14, opts), await measureCase(1_000, 8, opts)]
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rows = await run({ quick: process.argv.includes('--quick') })
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`)
}
