/**
 * `nodus sim dht|placement|durability|consensus`: the simulator (src/sim/, docs/SIMULATOR.md).
 *
 * Human-readable output on stdout; with `--json` the last line printed is one JSON object. Progress
 * goes to stderr.
 */
import { parseArgs } from 'node:util'
import { NodusError } from '../common/errors.ts'
import {
  DEFAULT_DHT_SIM_OPTIONS,
  DEFAULT_PLACEMENT_SIM_OPTIONS,
  type DhtSimOptions,
  defaultSchemes,
  durabilityTable,
  failureRatePerYear,
  lossMonteCarlo,
  lossProbability,
  PLACEMENTS,
  type PlacementSimResult,
  runDhtSim,
  runPlacementSim,
} from '../sim/index.ts'
import { CONSENSUS_FLAGS, CONSENSUS_USAGE, simConsensus } from './sim-consensus.ts'

const USAGE = `usage: nodus sim <dht|placement|durability|consensus> [options]

  dht         --nodes N (10000) --lookups L (2000) --churn F (0) --timeout-ms T (1000) --k 20 --alpha 3
              --strategy kad-dht|rounds --table nodus|kademlia|trie --prefix-length 6 --rtts-per-rpc 1
  placement   --nodes N (10000) --segments S (20000) --k 10 --m 4 --candidates C (all)
              --networks-per-region 20 --placement random|region-rr|free-capacity|all (all)
  durability  --k 10 --m 4 --repair-hours H (24) --churn-monthly 0.01,0.02,0.05,0.1,0.25,0.5
              --monte-carlo SEGMENTS (200000; 0 = skip) --mc-churn 0.25
${CONSENSUS_USAGE}

common: --seed N (1), --json (last line: one JSON object), --help`

type Values = Record<string, string | boolean | undefined>

function num(v: Values, name: string, def: number, min: number, max: number, integer: boolean): number {
  const raw = v[name]
  if (raw === undefined) return def
  const x = typeof raw === 'string' && raw.trim() !== '' ? Number(raw.replaceAll('_', '')) : Number.NaN
  if (!Number.isFinite(x) || (integer && !Number.isSafeInteger(x)) || x < min || x > max) {
    throw new NodusError(
      'INVALID_ARGUMENT',
      `--${name} must be ${integer ? 'a whole number' : 'a number'} in [${min}, ${max}], got ${String(raw)}`,
    )
  }
  return x
}

function choice<T extends string>(v: Values, name: string, def: T, allowed: readonly T[]): T {
  const raw = v[name]
  if (raw === undefined) return def
  const found = allowed.find((a) => a === raw)
  if (found === undefined) {
    throw new NodusError(
      'INVALID_ARGUMENT',
      `--${name} must be one of ${allowed.join(', ')}, got ${String(raw)}`,
    )
  }
  return found
}

function list(v: Values, name: string, def: readonly number[]): number[] {
  const raw = v[name]
  if (raw === undefined) return [...def]
  const out = String(raw)
    .split(',')
    .map((s) => Number(s.trim()))
  if (out.length === 0 || out.length > 32 || out.some((x) => !(x > 0 && x < 1))) {
    throw new NodusError(
      'INVALID_ARGUMENT',
      `--${name} must be 1 to 32 fractions in (0, 1), got ${String(raw)}`,
    )
  }
  return out
}

const FLAGS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  seed: { type: 'string' },
  nodes: { type: 'string' },
  lookups: { type: 'string' },
  churn: { type: 'string' },
  'timeout-ms': { type: 'string' },
  k: { type: 'string' },
  m: { type: 'string' },
  alpha: { type: 'string' },
  strategy: { type: 'string' },
  table: { type: 'string' },
  'prefix-length': { type: 'string' },
  'rtts-per-rpc': { type: 'string' },
  segments: { type: 'string' },
  candidates: { type: 'string' },
  'networks-per-region': { type: 'string' },
  placement: { type: 'string' },
  'repair-hours': { type: 'string' },
  'churn-monthly': { type: 'string' },
  'monte-carlo': { type: 'string' },
  'mc-churn': { type: 'string' },
  validators: { type: 'string' },
  rounds: { type: 'string' },
  duration: { type: 'string' },
  latency: { type: 'string' },
  loss: { type: 'string' },
  reorder: { type: 'string' },
  byzantine: { type: 'string' },
  equivocators: { type: 'string' },
  partition: { type: 'string' },
  crash: { type: 'string' },
  late: { type: 'string' },
  protocol: { type: 'string' },
  'tx-rate': { type: 'string' },
  'no-signatures': { type: 'boolean' },
  'round-timeout': { type: 'string' },
  'poll-timeout': { type: 'string' },
  log: { type: 'string' },
} as const

const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  dht: [
    'nodes',
    'lookups',
    'churn',
    'timeout-ms',
    'k',
    'alpha',
    'strategy',
    'table',
    'prefix-length',
    'rtts-per-rpc',
  ],
  placement: ['nodes', 'segments', 'k', 'm', 'candidates', 'networks-per-region', 'placement'],
  durability: ['k', 'm', 'repair-hours', 'churn-monthly', 'monte-carlo', 'mc-churn'],
  consensus: CONSENSUS_FLAGS,
}

type Print = (line: string) => void

/**
 * Run `nodus sim ...`. Returns the exit code (0 ok, 2 bad usage).
 *
 * @param args the arguments after `sim`, e.g. `['dht', '--nodes', '1000000', '--json']`
 * @throws NodusError `INVALID_ARGUMENT` for a bad flag value
 */
export async function simCommand(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof FLAGS; allowPositionals: true; strict: true }>>
  try {
    parsed = parseArgs({ args, options: FLAGS, allowPositionals: true, strict: true })
  } catch (err) {
    throw new NodusError('INVALID_ARGUMENT', (err as Error).message, { cause: err })
  }
  const v: Values = parsed.values
  const print: Print = (line) => process.stdout.write(`${line}\n`)
  const sub = parsed.positionals[0]
  if (v.help === true || sub === undefined) {
    print(USAGE)
    return sub === undefined && v.help !== true ? 2 : 0
  }
  const allowed = ALLOWED[sub]
  if (allowed === undefined || parsed.positionals.length > 1) {
    throw new NodusError('INVALID_ARGUMENT', `unknown sim command: ${parsed.positionals.join(' ')}\n${USAGE}`)
  }
  for (const key of Object.keys(v)) {
    if (key !== 'json' && key !== 'help' && key !== 'seed' && !allowed.includes(key)) {
      throw new NodusError('INVALID_ARGUMENT', `--${key} does not apply to sim ${sub}`)
    }
  }
  const seed = num(v, 'seed', 1, 0, Number.MAX_SAFE_INTEGER, true)
  const json = v.json === true
  if (sub === 'dht') return simDht(v, seed, json, print)
  if (sub === 'placement') return simPlacement(v, seed, json, print)
  if (sub === 'consensus')
    return simConsensus(v, seed, json, print, (name, def, min, max, integer) =>
      num(v, name, def, min, max, integer),
    )
  return simDurability(v, seed, json, print)
}

function simDht(v: Values, seed: number, json: boolean, print: Print): number {
  const d = DEFAULT_DHT_SIM_OPTIONS
  const options: DhtSimOptions = {
    nodes: num(v, 'nodes', d.nodes, 2, 2_000_000, true),
    lookups: num(v, 'lookups', d.lookups, 1, 100_000, true),
    seed,
    churn: num(v, 'churn', d.churn, 0, 0.95, false),
    timeoutMs: num(v, 'timeout-ms', d.timeoutMs, 0, 600_000, false),
    k: num(v, 'k', d.k, 1, 64, true),
    alpha: num(v, 'alpha', d.alpha, 1, 64, true),
    strategy: choice(v, 'strategy', d.strategy, ['kad-dht', 'rounds'] as const),
    table: choice(v, 'table', d.table, ['kademlia', 'trie', 'nodus'] as const),
    prefixLength: num(v, 'prefix-length', d.prefixLength, 1, 16, true),
    rttsPerRpc: num(v, 'rtts-per-rpc', d.rttsPerRpc, 0, 100, false),
  }
  print(
    `sim dht: ${options.nodes} nodes, ${options.lookups} lookups, k=${options.k} alpha=${options.alpha}, ` +
      `table ${options.table}, strategy ${options.strategy}, churn ${options.churn}, seed ${seed}`,
  )
  const r = runDhtSim(options, (phase, detail) => process.stderr.write(`  ${phase}: ${detail}\n`))
  const pct = (x: number): string => `${(x * 100).toFixed(2)}%`
  print(
    `hops (path length to the closest node found): p50 ${r.p50Hops}, p99 ${r.p99Hops}, max ${r.maxHops}, mean ${r.meanHops}`,
  )
  print(
    `  histogram: ${r.hopHistogram
      .map((c, h) => `${h}:${c}`)
      .filter((_, h) => h > 0)
      .join('  ')}`,
  )
  print(
    `latency (lookup end): p50 ${r.p50LatencyMs} ms, p99 ${r.p99LatencyMs} ms; closest found: p50 ${r.p50ClosestFoundMs} ms, p99 ${r.p99ClosestFoundMs} ms`,
  )
  print(`requests per lookup: p50 ${r.p50Rpcs}, p99 ${r.p99Rpcs}; timeouts per lookup ${r.meanTimeouts}`)
  print(
    `success: closest found ${pct(r.successRate)}, exact k closest ${pct(r.exactKRate)}, recall of k closest ${pct(r.meanRecall)}`,
  )
  print(
    `routing tables: ${r.meanTableEntries} entries per node; live entries ${pct(r.liveEntryFraction)}, ` +
      `dead buckets ${pct(r.deadBucketFraction)}, nodes with a dead bucket ${pct(r.nodesWithDeadBucketFraction)}`,
  )
  print(
    `time ${r.seconds} s (build ${r.buildSeconds} s, lookups ${r.lookupSeconds} s), peak RSS ${r.peakRssMB} MB`,
  )
  print(`target p99 <= ${r.p99HopsTarget} hops: ${r.targetMet ? 'MET' : 'NOT MET'} (p99 ${r.p99Hops})`)
  if (json) print(JSON.stringify(r))
  return 0
}

function simPlacement(v: Values, seed: number, json: boolean, print: Print): number {
  const d = DEFAULT_PLACEMENT_SIM_OPTIONS
  const nodes = num(v, 'nodes', d.nodes, 2, 1_000_000, true)
  const k = num(v, 'k', d.k, 1, 255, true)
  const m = num(v, 'm', d.m, 0, 255, true)
  const options = {
    ...d,
    nodes,
    segments: num(v, 'segments', d.segments, 1, 10_000_000, true),
    k,
    m,
    candidates: num(v, 'candidates', d.candidates, 0, nodes, true),
    networksPerRegion: num(v, 'networks-per-region', d.networksPerRegion, 1, 100_000, true),
    seed,
  }
  if (k + m > nodes || (options.candidates > 0 && options.candidates < k + m)) {
    throw new NodusError('INVALID_ARGUMENT', `need at least k + m = ${k + m} nodes and candidates`)
  }
  const which = choice(v, 'placement', 'all', ['all', ...Object.keys(PLACEMENTS)])
  const names = which === 'all' ? Object.keys(PLACEMENTS) : [which]
  print(
    `sim placement: ${nodes} nodes, ${options.segments} segments of RS(${k},${m}), ` +
      `${options.candidates || nodes} candidates per segment, seed ${seed}`,
  )
  const results: PlacementSimResult[] = []
  for (const name of names) {
    const fn = PLACEMENTS[name]
    if (fn === undefined) continue
    const r = runPlacementSim(name, fn, options)
    results.push(r)
    print(
      `${name}: regions per segment p50 ${r.p50DistinctRegions} min ${r.minDistinctRegions}; ` +
        `max shards in one region p50 ${r.p50MaxShardsPerRegion} max ${r.maxMaxShardsPerRegion}; ` +
        `survives a region loss ${(r.regionLossSurvivableFraction * 100).toFixed(1)}%; ` +
        `networks per segment p50 ${r.p50DistinctNetworks} min ${r.minDistinctNetworks}; ` +
        `shards per node mean ${r.meanShardsPerNode} max ${r.maxShardsPerNode} (max/mean ${r.maxOverMeanShards}, CV ${r.shardsCoefficientOfVariation}); ` +
        `utilization CV ${r.utilizationCoefficientOfVariation}; decision p99 ${r.p99DecisionUs} us; same-peer ${r.samePeerViolations}`,
    )
  }
  if (json) print(JSON.stringify({ command: 'placement', seed, results }))
  return 0
}

function simDurability(v: Values, seed: number, json: boolean, print: Print): number {
  const k = num(v, 'k', 10, 1, 64, true)
  const m = num(v, 'm', 4, 1, 64, true)
  const repairHours = num(v, 'repair-hours', 24, 0.01, 100_000, false)
  const churn = list(v, 'churn-monthly', [0.01, 0.02, 0.05, 0.1, 0.25, 0.5])
  const mcSegments = num(v, 'monte-carlo', 200_000, 0, 10_000_000, true)
  const mcChurn = num(v, 'mc-churn', 0.25, 0.0001, 0.99, false)
  const schemes = defaultSchemes(k, m)
  const rows = durabilityTable(schemes, churn, repairHours)
  print(
    `sim durability: P(segment lost within a year), repair time ${repairHours} h (exponential), seed ${seed}`,
  )
  print(
    `| monthly churn | ${schemes.map((s) => `${s.name} (${((s.k + s.m) / s.k).toFixed(1)}x)`).join(' | ')} |`,
  )
  print(`|---|${schemes.map(() => '--:').join('|')}|`)
  for (const r of rows) {
    print(
      `| ${(r.monthlyChurn * 100).toFixed(0)}% | ${r.results.map((x) => x.lossPerYear.toExponential(2)).join(' | ')} |`,
    )
  }
  let monteCarlo: Record<string, unknown> | undefined
  if (mcSegments > 0) {
    const scheme = schemes[0]
    if (scheme !== undefined) {
      const lambda = failureRatePerYear(mcChurn)
      const exact = lossProbability(scheme, lambda, repairHours)
      const mc = lossMonteCarlo(scheme, lambda, repairHours, mcSegments, seed, 'exponential')
      const fixed = lossMonteCarlo(scheme, lambda, repairHours, mcSegments, seed, 'fixed')
      monteCarlo = {
        scheme: scheme.name,
        monthlyChurn: mcChurn,
        repairHours,
        exact,
        exponentialRepair: mc,
        fixedRepair: fixed,
      }
      const ci = (x: { probability: number; low95: number; high95: number }): string =>
        `${x.probability.toExponential(3)} [${x.low95.toExponential(3)}, ${x.high95.toExponential(3)}]`
      print(
        `Monte Carlo check, ${scheme.name}, churn ${mcChurn * 100}%/month, ${mcSegments} segments: ` +
          `Markov ${exact.toExponential(3)}; simulated ${ci(mc)}; with fixed-length repair ${ci(fixed)}`,
      )
      const inside = exact >= mc.low95 && exact <= mc.high95
      print(`  Markov value ${inside ? 'inside' : 'OUTSIDE'} the 95% interval of the simulation`)
    }
  }
  if (json) {
    print(
      JSON.stringify({
        command: 'durability',
        k,
        m,
        repairHours,
        seed,
        rows,
        ...(monteCarlo === undefined ? {} : { monteCarlo }),
      }),
    )
  }
  return 0
}
