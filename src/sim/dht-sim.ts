/**
 * `nodus sim dht`: build a network of simulated Kademlia nodes, optionally take some offline, run
 * lookups, report hops, latency, routing-table health, memory and time.
 */
import { randomIds } from './ids.ts'
import { buildLatencyModel } from './latency.ts'
import {
  DEFAULT_LOOKUP_OPTIONS,
  LookupEngine,
  type LookupStrategy,
  type SimNetwork,
  trueClosest,
} from './lookup.ts'
import { Rng } from './rng.ts'
import { buildRoutingTables, DEFAULT_TABLE_OPTIONS, type TableModel, tableHealth } from './routing-table.ts'
import { histogram, mean, percentile, RssMeter, round } from './stats.ts'

/** The target: p99 of at most this many hops at 1,000,000 nodes. */
export const P99_HOPS_TARGET = 6

/** Options of {@link runDhtSim}. */
export interface DhtSimOptions {
  /** Simulated nodes, 2..2,000,000. */
  nodes: number
  /** Lookups to run, 1..100,000; default 2,000. */
  lookups: number
  /** PRNG seed. */
  seed: number
  /** Fraction of nodes taken offline after tables are built, [0, 0.95]; default 0. */
  churn: number
  /** Cost of a request to an offline node, ms; default 1,000. */
  timeoutMs: number
  /** k; default 20. */
  k: number
  /** alpha; default 3. */
  alpha: number
  /** Default `kad-dht`. */
  strategy: LookupStrategy
  /**
   * Default `nodus`: the table nodus runs (kad-dht 16's trie plus own-ID splitting, src/net/kad-table.ts).
   * `kademlia` is the paper's table, `trie` kad-dht 16's default.
   */
  table: TableModel
  /** Trie depth for tables `trie` and `nodus`; default 6. */
  prefixLength: number
  /** Round trips per request; default 1. */
  rttsPerRpc: number
}

export const DEFAULT_DHT_SIM_OPTIONS: Readonly<DhtSimOptions> = Object.freeze({
  nodes: 10_000,
  lookups: 2_000,
  seed: 1,
  churn: 0,
  timeoutMs: DEFAULT_LOOKUP_OPTIONS.timeoutMs,
  k: DEFAULT_TABLE_OPTIONS.k,
  alpha: DEFAULT_LOOKUP_OPTIONS.alpha,
  strategy: DEFAULT_LOOKUP_OPTIONS.strategy,
  table: 'nodus',
  prefixLength: DEFAULT_TABLE_OPTIONS.prefixLength,
  rttsPerRpc: DEFAULT_LOOKUP_OPTIONS.rttsPerRpc,
})

/** Report of one run. Times in ms unless named seconds; memory in MB (10^6 bytes). */
export interface DhtSimResult {
  nodes: number
  lookups: number
  seed: number
  k: number
  alpha: number
  strategy: LookupStrategy
  table: TableModel
  churn: number
  timeoutMs: number
  p50Hops: number
  p99Hops: number
  maxHops: number
  meanHops: number
  /** hopHistogram[h] = lookups whose closest result was at hop h. */
  hopHistogram: number[]
  p50DeepestHop: number
  p99DeepestHop: number
  p50LatencyMs: number
  p99LatencyMs: number
  p50ClosestFoundMs: number
  p99ClosestFoundMs: number
  p50Rpcs: number
  p99Rpcs: number
  meanTimeouts: number
  /** Lookups whose closest result is the true closest online node. */
  successRate: number
  /** Lookups that returned exactly the true k closest online nodes. */
  exactKRate: number
  /** Mean fraction of the true k closest online nodes that a lookup returned. */
  meanRecall: number
  liveEntryFraction: number
  deadBucketFraction: number
  nodesWithDeadBucketFraction: number
  meanTableEntries: number
  p99HopsTarget: number
  /** p99Hops <= p99HopsTarget. */
  targetMet: boolean
  buildSeconds: number
  lookupSeconds: number
  seconds: number
  peakRssMB: number
}

/** Progress callback: phase name and a detail (nodes done, ...). */
export type DhtSimProgress = (phase: string, detail: string) => void

/**
 * Run the DHT simulation. Deterministic for a given `options` (except the time and memory fields).
 *
 * @throws RangeError for options outside their bounds (the CLI checks them first)
 */
export function runDhtSim(options: DhtSimOptions, onProgress?: DhtSimProgress): DhtSimResult {
  const t0 = performance.now()
  const meter = new RssMeter()
  meter.sample()
  const { nodes: n, k, alpha } = options
  if (!(n >= 2 && n <= 2_000_000)) throw new RangeError('nodes must be 2..2,000,000')
  if (!(options.churn >= 0 && options.churn <= 0.95)) throw new RangeError('churn must be in [0, 0.95]')
  const root = new Rng(options.seed)
  const ids = randomIds(n, root.fork(1))
  meter.sample()
  onProgress?.('ids', `${n} IDs sorted`)
  const latency = buildLatencyModel(n, root.fork(2))
  const tables = buildRoutingTables(
    ids,
    { model: options.table, k, prefixLength: options.prefixLength },
    root.fork(3),
    (done) => {
      meter.sample()
      if (done > 0 && (done % 262_144 === 0 || done === n)) onProgress?.('tables', `${done}/${n} nodes`)
    },
  )
  meter.sample()
  const alive = new Uint8Array(n).fill(1)
  const offline = Math.floor(options.churn * n)
  const churnRng = root.fork(4)
  for (let c = 0; c < offline; ) {
    const x = churnRng.nextInt(n)
    if (alive[x] === 1) {
      alive[x] = 0
      c++
    }
  }
  const health = tableHealth(ids, tables, alive)
  const t1 = performance.now()
  onProgress?.('health', `live entries ${round(health.liveEntryFraction * 100, 1)}%`)

  const net: SimNetwork = { ids, tables, alive, latency }
  const engine = new LookupEngine(net, {
    alpha,
    k,
    strategy: options.strategy,
    timeoutMs: options.timeoutMs,
    rttsPerRpc: options.rttsPerRpc,
  })
  const L = options.lookups
  const hops = new Float64Array(L)
  const deepest = new Float64Array(L)
  const latencyMs = new Float64Array(L)
  const closestMs = new Float64Array(L)
  const rpcs = new Float64Array(L)
  const timeouts = new Float64Array(L)
  let success = 0
  let exact = 0
  let recallSum = 0
  const lookupRng = root.fork(5)
  for (let i = 0; i < L; i++) {
    let src: number
    do src = lookupRng.nextInt(n)
    while (alive[src] !== 1)
    const kh = lookupRng.nextU32()
    const kl = lookupRng.nextU32()
    const r = engine.lookup(src, kh, kl)
    hops[i] = r.hops
    deepest[i] = r.deepestHop
    latencyMs[i] = r.latencyMs
    closestMs[i] = r.closestFoundMs
    rpcs[i] = r.rpcs
    timeouts[i] = r.timeouts
    const truth = trueClosest(ids, alive, kh, kl, k, src)
    if (r.found[0] === truth[0]) success++
    const want = new Set(truth)
    let hit = 0
    for (const f of r.found) if (want.has(f)) hit++
    recallSum += truth.length === 0 ? 1 : hit / truth.length
    if (hit === truth.length && r.found.length === truth.length) exact++
    if ((i & 1023) === 1023) meter.sample()
  }
  const t2 = performance.now()
  const p99Hops = percentile(hops, 99)
  return {
    nodes: n,
    lookups: L,
    seed: options.seed,
    k,
    alpha,
    strategy: options.strategy,
    table: options.table,
    churn: options.churn,
    timeoutMs: options.timeoutMs,
    p50Hops: percentile(hops, 50),
    p99Hops,
    maxHops: percentile(hops, 100),
    meanHops: round(mean(hops), 3),
    hopHistogram: histogram(hops),
    p50DeepestHop: percentile(deepest, 50),
    p99DeepestHop: percentile(deepest, 99),
    p50LatencyMs: round(percentile(latencyMs, 50), 1),
    p99LatencyMs: round(percentile(latencyMs, 99), 1),
    p50ClosestFoundMs: round(percentile(closestMs, 50), 1),
    p99ClosestFoundMs: round(percentile(closestMs, 99), 1),
    p50Rpcs: percentile(rpcs, 50),
    p99Rpcs: percentile(rpcs, 99),
    meanTimeouts: round(mean(timeouts), 3),
    successRate: round(success / L, 4),
    exactKRate: round(exact / L, 4),
    meanRecall: round(recallSum / L, 4),
    liveEntryFraction: round(health.liveEntryFraction, 4),
    deadBucketFraction: round(health.deadBucketFraction, 4),
    nodesWithDeadBucketFraction: round(health.nodesWithDeadBucketFraction, 4),
    meanTableEntries: round(health.meanEntries, 1),
    p99HopsTarget: P99_HOPS_TARGET,
    targetMet: p99Hops <= P99_HOPS_TARGET,
    buildSeconds: round((t1 - t0) / 1000, 2),
    lookupSeconds: round((t2 - t1) / 1000, 2),
    seconds: round((performance.now() - t0) / 1000, 2),
    peakRssMB: round(meter.peakMB(), 1),
  }
}
