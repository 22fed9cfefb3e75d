/**
 * Simulator area: Kademlia routing at 10^4..10^6 nodes, placement quality, durability, and consensus
 * (Mysticeti-C on the real core and ledger, and Snowball, over one simulated network).
 * See README.md and docs/SIMULATOR.md.
 */

export {
  DEFAULT_EPOCH_SIM_OPTIONS,
  type EpochSimOptions,
  type EpochSimReport,
  runEpochSim,
} from './consensus-epoch.ts'
export {
  type LatencySpec,
  type NetEvent,
  type NetOptions,
  type NetStats,
  type OutageSpec,
  type PartitionSpec,
  parseDurationMs,
  parseLatency,
  parseOutage,
  parsePartition,
  SimNet,
} from './consensus-net.ts'
export { type ConsensusSimOptions, DEFAULT_CONSENSUS_SIM_OPTIONS } from './consensus-options.ts'
export { commitLine, runMysticetiSim } from './consensus-sim.ts'
export {
  cachedVerify,
  FinalityTracker,
  type ProtocolReport,
  SIM_EPOCH_MS,
  seededKeys,
  TransferWorkload,
} from './consensus-workload.ts'
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
export { AVALANCHEGO_SNOWBALL, runSnowballSim, type SnowballSimOptions } from './snowball-sim.ts'
export { histogram, mean, percentile } from './stats.ts'
