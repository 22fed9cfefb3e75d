/**
 * `nodus sim consensus`: Mysticeti-C (the real core and ledger) and Snowball side by side over one
 * simulated network (src/sim/consensus-sim.ts, snowball-sim.ts; docs/SIMULATOR.md "consensus").
 * Prints a table, then (with `--json`) one JSON line: `{ command, seed, options, protocols: [...] }`.
 */
import { writeFileSync } from 'node:fs'
import { NodusError } from '../common/errors.ts'
import {
  AVALANCHEGO_SNOWBALL,
  type ConsensusSimOptions,
  DEFAULT_CONSENSUS_SIM_OPTIONS,
  type OutageSpec,
  type PartitionSpec,
  type ProtocolReport,
  parseDurationMs,
  parseLatency,
  parseOutage,
  parsePartition,
  runMysticetiSim,
  runSnowballSim,
} from '../sim/index.ts'

type Values = Record<string, string | boolean | undefined>
type Num = (name: string, def: number, min: number, max: number, integer: boolean) => number

/** Flags of `sim consensus` (besides --seed, --json). */
export const CONSENSUS_FLAGS = [
  'validators',
  'rounds',
  'duration',
  'latency',
  'loss',
  'reorder',
  'byzantine',
  'equivocators',
  'partition',
  'crash',
  'late',
  'protocol',
  'tx-rate',
  'no-signatures',
  'round-timeout',
  'poll-timeout',
  'log',
] as const

export const CONSENSUS_USAGE = `  consensus   --validators 10 --duration 30s | --rounds N  --latency lognormal:20,0.5|fixed:MS|uniform:A-B|regions
              --loss 0.01 --reorder 0.05 --byzantine 3 --equivocators 1 --partition 6/4@5s-15s (repeat: a,b)
              --crash 2@3s-8s --late 1@10s --tx-rate 200 --protocol mysticeti|snowball|both (both)
              --no-signatures --round-timeout 500ms --poll-timeout 1s --log FILE (the commit log)`

function argError(flag: string, err: unknown): NodusError {
  return new NodusError('INVALID_ARGUMENT', `--${flag}: ${(err as Error).message}`, { cause: err })
}

function specs<T>(v: Values, flag: string, parse: (s: string) => T): T[] {
  const raw = v[flag]
  if (typeof raw !== 'string') return []
  try {
    return raw.split(',').map((s) => parse(s))
  } catch (err) {
    throw argError(flag, err)
  }
}

function duration(v: Values, flag: string, def: number): number {
  const raw = v[flag]
  if (typeof raw !== 'string') return def
  try {
    return parseDurationMs(raw)
  } catch (err) {
    throw argError(flag, err)
  }
}

/** Run `sim consensus`. @throws NodusError `INVALID_ARGUMENT` for a bad flag */
export async function simConsensus(
  v: Values,
  seed: number,
  json: boolean,
  print: (line: string) => void,
  num: Num,
): Promise<number> {
  const d = DEFAULT_CONSENSUS_SIM_OPTIONS
  const validators = num('validators', d.validators, 1, 200, true)
  const equivocators = num('equivocators', 0, 0, validators, true)
  const byzantine = Math.max(equivocators, num('byzantine', 0, 0, validators, true))
  let latency = d.latency
  if (typeof v.latency === 'string')
    try {
      latency = parseLatency(v.latency)
    } catch (err) {
      throw argError('latency', err)
    }
  const partitions: PartitionSpec[] = specs(v, 'partition', (s) => parsePartition(s, validators))
  const crashes: OutageSpec[] = specs(v, 'crash', parseOutage)
  const late: OutageSpec[] = specs(v, 'late', parseOutage)
  const outages = [...crashes, ...late].reduce((a, s) => a + s.count, 0)
  if (byzantine + outages > validators)
    throw new NodusError('INVALID_ARGUMENT', 'more Byzantine, crashed and late validators than validators')
  const rounds = v.rounds === undefined ? undefined : num('rounds', 0, 1, 1_000_000, true)
  const options: ConsensusSimOptions = {
    ...d,
    validators,
    seed,
    durationMs: duration(v, 'duration', rounds === undefined ? d.durationMs : 120_000),
    ...(rounds === undefined ? {} : { rounds }),
    latency,
    loss: num('loss', 0, 0, 0.99, false),
    reorder: num('reorder', 0, 0, 1, false),
    byzantine,
    equivocators,
    partitions,
    crashes,
    late,
    txPerSecond: num('tx-rate', d.txPerSecond, 0, 100_000, false),
    signatures: v['no-signatures'] !== true,
    roundTimeoutMs: duration(v, 'round-timeout', d.roundTimeoutMs),
  }
  const protocol = typeof v.protocol === 'string' ? v.protocol : 'both'
  if (!['mysticeti', 'snowball', 'both'].includes(protocol))
    throw new NodusError(
      'INVALID_ARGUMENT',
      `--protocol must be mysticeti, snowball or both, got ${protocol}`,
    )
  print(
    `sim consensus: ${validators} validators (${byzantine} Byzantine, ${equivocators} equivocating), ` +
      `${rounds === undefined ? `${options.durationMs} ms` : `${rounds} rounds`}, latency ${v.latency ?? 'lognormal:20,0.5'}, ` +
      `loss ${options.loss}, reorder ${options.reorder}, ${options.txPerSecond} tx/s, signatures ${options.signatures ? 'ed25519' : 'none'}, seed ${seed}`,
  )
  const reports: ProtocolReport[] = []
  const started = performance.now()
  if (protocol !== 'snowball') {
    const { log, ...r } = await runMysticetiSim(options)
    reports.push(r)
    if (typeof v.log === 'string') writeFileSync(v.log, `${log.join('\n')}\n`)
    print(`mysticeti commit log: ${r.commits} heights, BLAKE3 ${String(r.details.commitLogHash)}`)
  }
  if (protocol !== 'mysticeti')
    reports.push(
      runSnowballSim({
        ...options,
        ...AVALANCHEGO_SNOWBALL,
        pollTimeoutMs: duration(v, 'poll-timeout', 1_000),
      }),
    )
  const cell = (x: unknown) => (x === null ? '-' : String(x))
  print(
    '| protocol | finality p50 ms | p99 ms | commits | txs final | txs/s | safety violations | halted | roots equal |',
  )
  print('|---|--:|--:|--:|--:|--:|--:|---|---|')
  for (const r of reports)
    print(
      `| ${r.protocol} | ${cell(r.p50FinalityMs)} | ${cell(r.p99FinalityMs)} | ${r.commits} | ` +
        `${r.committedTxs}/${r.submittedTxs} | ${r.committedTxsPerSecond} | ${r.safetyViolations} | ` +
        `${r.halted ? 'yes' : 'no'} | ${cell(r.stateRootsEqual)} |`,
    )
  print(`wall time ${((performance.now() - started) / 1000).toFixed(1)} s`)
  const { partitions: _p, crashes: _c, late: _l, latency: _lat, ...rest } = options
  if (json)
    print(
      JSON.stringify({
        command: 'consensus',
        seed,
        options: {
          ...rest,
          latency: v.latency ?? 'lognormal:20,0.5',
          partition: v.partition ?? null,
          crash: v.crash ?? null,
          late: v.late ?? null,
        },
        protocols: reports,
      }),
    )
  return 0
}
