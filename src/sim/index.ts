/**
 * Simulator area: Kademlia routing at 10^4..10^6 nodes, placement quality and durability.
 * See README.md and docs/SIMULATOR.md.
 */
export {
  DEFAULT_DHT_SIM_OPTIONS,
  type DhtSimOptions,
  type DhtSimProgress,
  type DhtSimResult,
  P99_HOPS_TARGET,
  runDhtSim,
} from './dht-sim.ts'
export {
  type DurabilityRow,
  defaultSchemes,
  durabilityTable,
  failureRatePerYear,
  HOURS_PER_YEAR,
  lossMonteCarlo,
  lossProbability,
  lossProbabilityNoRepair,
  type MonteCarloResult,
  mttdlYears,
  type Scheme,
} from './durability.ts'
export { commonPrefixLength, type IdSpace, idSpaceFromSorted, prefixRange, randomIds } from './ids.ts'
export { buildLatencyModel, type LatencyModel, REGION_RTT_MS, REGIONS, rttMs } from './latency.ts'
export {
  DEFAULT_LOOKUP_OPTIONS,
  LookupEngine,
  type LookupOptions,
  type LookupResult,
  type LookupStrategy,
  type SimNetwork,
  trueClosest,
} from './lookup.ts'
export {
  DEFAULT_PLACEMENT_SIM_OPTIONS,
  freeCapacityPlacement,
  PLACEMENTS,
  type PlacementCandidate,
  type PlacementFn,
  type PlacementSimOptions,
  type PlacementSimResult,
  randomPlacement,
  regionRoundRobinPlacement,
  runPlacementSim,
} from './placement-sim.ts'
export { type RandomSource, Rng } from './rng.ts'
export {
  buildRoutingTables,
  DEFAULT_TABLE_OPTIONS,
  type RoutingTables,
  type TableHealth,
  type TableModel,
  type TableOptions,
  tableHealth,
  tablesFromLists,
} from './routing-table.ts'
export { histogram, mean, percentile } from './stats.ts'
