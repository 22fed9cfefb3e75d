/**
 * `nodus sim placement`: place many segments of k + m shards on a simulated population of nodes
 * with region and network tags and capacities, and measure spread and load.
 *
 * The placement function is pluggable, `(candidates, n, rng) => chosen candidate indexes`. `scored`
 * is the placement the node runs (src/storage/placement/placement-scored.ts `placeScored`, same code, default
 * options); the baselines are uniform random distinct peers, region round-robin, and
 * free-capacity-weighted sampling.
 */
import { type Candidate, placeScored } from '../storage/placement/placement-scored.ts'
import { pickRegion, REGIONS } from './latency.ts'
import { type RandomSource, Rng } from './rng.ts'
import { coefficientOfVariation, mean, percentile, round } from './stats.ts'

/** What a placement function sees of one candidate node. */
export interface PlacementCandidate {
  /** Node number in the simulation. */
  readonly index: number
  /** Region index (see REGIONS in latency.ts). */
  readonly region: number
  /** Network (autonomous system / provider) index; unique across regions. */
  readonly network: number
  readonly capacityBytes: number
  readonly usedBytes: number
}

/**
 * Chooses `n` distinct candidates (indexes into `candidates`) for the shards of one segment, in shard
 * order. Must be a pure function of its arguments (and the random source).
 */
export type PlacementFn = (
  candidates: readonly PlacementCandidate[],
  n: number,
  rng: RandomSource,
) => number[]

/** Uniform random distinct candidates (rejection sampling; O(n) for n much smaller than candidates). */
export const randomPlacement: PlacementFn = (candidates, n, rng) => {
  const c = candidates.length
  if (n > c) throw new RangeError(`need ${n} candidates, have ${c}`)
  const chosen: number[] = []
  const used = new Set<number>()
  while (chosen.length < n) {
    const i = rng.nextInt(c)
    if (used.has(i)) continue
    used.add(i)
    chosen.push(i)
  }
  return chosen
}

/**
 * Region round-robin: regions in a random rotation, one random unused candidate from each in turn,
 * so shards spread over as many regions as exist and no region holds more than ceil(n / regions)
 * while every region has candidates left.
 */
export const regionRoundRobinPlacement: PlacementFn = (candidates, n, rng) => {
  if (n > candidates.length) throw new RangeError(`need ${n} candidates, have ${candidates.length}`)
  const byRegion = new Map<number, number[]>()
  for (let i = 0; i < candidates.length; i++) {
    const r = (candidates[i] as PlacementCandidate).region
    let list = byRegion.get(r)
    if (list === undefined) {
      list = []
      byRegion.set(r, list)
    }
    list.push(i)
  }
  const regions = [...byRegion.keys()].sort((a, b) => a - b)
  const offset = rng.nextInt(regions.length)
  const chosen: number[] = []
  const used = new Set<number>()
  for (let turn = 0; chosen.length < n; turn++) {
    const list = byRegion.get(regions[(offset + turn) % regions.length] as number) as number[]
    // a few random tries, then a scan, for an unused candidate in this region
    let pick = -1
    for (let t = 0; t < 8 && pick < 0; t++) {
      const i = list[rng.nextInt(list.length)] as number
      if (!used.has(i)) pick = i
    }
    if (pick < 0) pick = list.find((i) => !used.has(i)) ?? -1
    if (pick < 0) continue
    used.add(pick)
    chosen.push(pick)
  }
  return chosen
}

/**
 * Weighted by free capacity, without replacement (Efraimidis and Spirakis, "Weighted random sampling
 * with a reservoir", IPL 2006: keep the n largest u^(1/w)).
 */
export const freeCapacityPlacement: PlacementFn = (candidates, n, rng) => {
  if (n > candidates.length) throw new RangeError(`need ${n} candidates, have ${candidates.length}`)
  const keys: { i: number; key: number }[] = []
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i] as PlacementCandidate
    const w = Math.max(1, c.capacityBytes - c.usedBytes)
    const key = Math.log(rng.nextFloat() + 1e-300) / w
    if (keys.length < n) {
      keys.push({ i, key })
      keys.sort((a, b) => a.key - b.key)
    } else if (key > (keys[0] as { key: number }).key) {
      keys[0] = { i, key }
      keys.sort((a, b) => a.key - b.key)
    }
  }
  return keys.map((k) => k.i)
}

const scoredViews = new WeakMap<readonly PlacementCandidate[], Candidate[]>()

/**
 * The node's scored placement (`placeScored`, default exponents and penalties) on simulated nodes:
 * equal trust and performance (an honest, uniform population), free bytes = capacity − used, region
 * and network tags from the simulation. The candidate view is cached per candidate array and its free
 * bytes refreshed on every call.
 */
export const scoredPlacement: PlacementFn = (candidates, n, rng) => {
  let view = scoredViews.get(candidates)
  if (view === undefined) {
    view = candidates.map((c) => ({
      id: String(c.index),
      trust: 1,
      performance: 1,
      freeBytes: 0,
      region: `r${c.region}`,
      network: `n${c.network}`,
    }))
    scoredViews.set(candidates, view)
  }
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i] as PlacementCandidate
    ;(view[i] as Candidate).freeBytes = c.capacityBytes - c.usedBytes
  }
  return placeScored(view, n, {}, () => rng.nextFloat())
}

/** Built-in placement functions by name. */
export const PLACEMENTS: Readonly<Record<string, PlacementFn>> = Object.freeze({
  random: randomPlacement,
  'region-rr': regionRoundRobinPlacement,
  'free-capacity': freeCapacityPlacement,
  scored: scoredPlacement,
})

/** Options of {@link runPlacementSim}. */
export interface PlacementSimOptions {
  /** Nodes, default 10,000. */
  nodes: number
  /** Segments to place, default 20,000. */
  segments: number
  /** Data and parity shards per segment; default 10 and 4. */
  k: number
  m: number
  /** Candidates offered per segment (a random subset); default all nodes. */
  candidates: number
  /** Networks (providers) per region; default 20. */
  networksPerRegion: number
  /** Shard size in bytes; default 1 MiB (10 MiB segments, k = 10). */
  shardBytes: number
  seed: number
}

export const DEFAULT_PLACEMENT_SIM_OPTIONS: Readonly<PlacementSimOptions> = Object.freeze({
  nodes: 10_000,
  segments: 20_000,
  k: 10,
  m: 4,
  candidates: 0,
  networksPerRegion: 20,
  shardBytes: 1024 * 1024,
  seed: 1,
})

/** Node capacities: 2^c TB, c uniform in 0..4 (1 to 16 TB; an assumption). */
export const CAPACITY_CLASSES_TB: readonly number[] = Object.freeze([1, 2, 4, 8, 16])

/** Placement quality report. */
export interface PlacementSimResult {
  placement: string
  nodes: number
  segments: number
  k: number
  m: number
  candidates: number
  regions: number
  p50DistinctRegions: number
  minDistinctRegions: number
  meanDistinctRegions: number
  /** Largest number of a segment's shards in one region: p50 and max over segments. */
  p50MaxShardsPerRegion: number
  maxMaxShardsPerRegion: number
  /** Segments that survive losing any one whole region (at most m shards in every region). */
  regionLossSurvivableFraction: number
  p50DistinctNetworks: number
  minDistinctNetworks: number
  /** Segments with two shards in one network. */
  sharedNetworkFraction: number
  /** Segments with two shards on one node (must be 0). */
  samePeerViolations: number
  meanShardsPerNode: number
  maxShardsPerNode: number
  /** max / mean shards per node. */
  maxOverMeanShards: number
  shardsCoefficientOfVariation: number
  /** used / capacity: mean, max, coefficient of variation. */
  meanUtilization: number
  maxUtilization: number
  utilizationCoefficientOfVariation: number
  p50DecisionUs: number
  p99DecisionUs: number
  seed: number
  seconds: number
}

interface MutableCandidate {
  index: number
  region: number
  network: number
  capacityBytes: number
  usedBytes: number
}

/**
 * Run the placement simulation with one placement function.
 *
 * @param name label for the report
 * @param place the placement function under test
 */
export function runPlacementSim(
  name: string,
  place: PlacementFn,
  options: PlacementSimOptions,
): PlacementSimResult {
  const t0 = performance.now()
  const root = new Rng(options.seed)
  const setup = root.fork(1)
  const { nodes, segments, k, m } = options
  const n = k + m
  const nodesArr: MutableCandidate[] = []
  for (let i = 0; i < nodes; i++) {
    const region = pickRegion(setup)
    const network = region * options.networksPerRegion + setup.nextInt(options.networksPerRegion)
    const tb = CAPACITY_CLASSES_TB[setup.nextInt(CAPACITY_CLASSES_TB.length)] as number
    nodesArr.push({ index: i, region, network, capacityBytes: tb * 1e12, usedBytes: 0 })
  }
  const offered = options.candidates > 0 ? Math.min(options.candidates, nodes) : nodes
  const shards = new Float64Array(nodes)
  const distinctRegions = new Float64Array(segments)
  const maxPerRegion = new Float64Array(segments)
  const distinctNetworks = new Float64Array(segments)
  const decisionUs = new Float64Array(segments)
  let survivable = 0
  let sharedNetwork = 0
  let samePeer = 0
  const pick = root.fork(2)
  const sampler = root.fork(3)
  const regionCount = new Int32Array(REGIONS.length)
  for (let s = 0; s < segments; s++) {
    let cands: MutableCandidate[] = nodesArr
    if (offered < nodes) {
      const idx = randomPlacement(nodesArr, offered, sampler)
      cands = idx.map((i) => nodesArr[i] as MutableCandidate)
    }
    const t = performance.now()
    const chosen = place(cands, n, pick)
    decisionUs[s] = (performance.now() - t) * 1000
    regionCount.fill(0)
    const nets = new Set<number>()
    const peers = new Set<number>()
    for (const c of chosen) {
      const node = cands[c]
      if (node === undefined) throw new RangeError(`placement ${name} returned index ${c} out of range`)
      regionCount[node.region] = (regionCount[node.region] as number) + 1
      nets.add(node.network)
      peers.add(node.index)
      node.usedBytes += options.shardBytes
      shards[node.index] = (shards[node.index] as number) + 1
    }
    if (peers.size < chosen.length) samePeer++
    let distinct = 0
    let maxR = 0
    for (const c of regionCount) {
      if (c > 0) distinct++
      maxR = Math.max(maxR, c)
    }
    distinctRegions[s] = distinct
    maxPerRegion[s] = maxR
    distinctNetworks[s] = nets.size
    if (maxR <= m) survivable++
    if (nets.size < chosen.length) sharedNetwork++
  }
  const util = Float64Array.from(nodesArr, (x) => x.usedBytes / x.capacityBytes)
  const meanShards = mean(shards)
  const maxShards = percentile(shards, 100)
  return {
    placement: name,
    nodes,
    segments,
    k,
    m,
    candidates: offered,
    regions: REGIONS.length,
    p50DistinctRegions: percentile(distinctRegions, 50),
    minDistinctRegions: percentile(distinctRegions, 0),
    meanDistinctRegions: round(mean(distinctRegions), 3),
    p50MaxShardsPerRegion: percentile(maxPerRegion, 50),
    maxMaxShardsPerRegion: percentile(maxPerRegion, 100),
    regionLossSurvivableFraction: round(survivable / segments, 4),
    p50DistinctNetworks: percentile(distinctNetworks, 50),
    minDistinctNetworks: percentile(distinctNetworks, 0),
    sharedNetworkFraction: round(sharedNetwork / segments, 4),
    samePeerViolations: samePeer,
    meanShardsPerNode: round(meanShards, 2),
    maxShardsPerNode: maxShards,
    maxOverMeanShards: round(maxShards / meanShards, 3),
    shardsCoefficientOfVariation: round(coefficientOfVariation(shards), 4),
    meanUtilization: round(mean(util), 8),
    maxUtilization: round(percentile(util, 100), 8),
    utilizationCoefficientOfVariation: round(coefficientOfVariation(util), 4),
    p50DecisionUs: round(percentile(decisionUs, 50), 1),
    p99DecisionUs: round(percentile(decisionUs, 99), 1),
    seed: options.seed,
    seconds: round((performance.now() - t0) / 1000, 2),
  }
}
