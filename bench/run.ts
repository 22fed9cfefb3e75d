/**
 * The benchmark harness: `npm run bench` = `node bench/run.ts [--quick] [--only NAME[,NAME]]`.
 *
 * Imports every bench/*.bench.ts module, calls its exported `run({ quick })` (one module at a time, so
 * they do not compete for the two cores), prints each row as JSON on stdout, and rewrites
 * docs/BENCHMARKS.md: a header with the machine and the command, then one section per module with its
 * rows (our figure, the peer's from the same run, the ratio). `--only` re-measures the named modules
 * and keeps the other sections as they were (each section says which command and date produced it).
 * The hand-written Profile section between `<!-- profile:start -->` and `<!-- profile:end -->` is kept
 * verbatim. A module that throws gets a "failed" section and the harness exits 1 after writing.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { basename, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { type BenchModule, machineInfo, type Row } from './lib.ts'

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url))
const DOC = fileURLToPath(new URL('../docs/BENCHMARKS.md', import.meta.url))
const PROFILE_START = '<!-- profile:start -->'
const PROFILE_END = '<!-- profile:end -->'
const loadAtStart = loadavg()[0] ?? 0
const sectionStart = (name: string): string => `<!-- bench:${name}:start -->`
const sectionEnd = (name: string): string => `<!-- bench:${name}:end -->`

const DEFAULT_PROFILE = `${PROFILE_START}
## Profile: where the time goes in the demo

(Hand-written; \`npm run bench\` keeps this section as it is.)
${PROFILE_END}`

/** The command as the user typed it, for the report. */
function commandLine(args: string[]): string {
  const direct = `node bench/run.ts${args.length > 0 ? ` ${args.join(' ')}` : ''}`
  if (process.env.npm_lifecycle_event === 'bench') {
    return `\`npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}\` (${direct})`
  }
  return `\`${direct}\``
}

function cell(v: string | number | null | undefined): string {
  if (v === null || v === undefined || v === '' || (typeof v === 'number' && Number.isNaN(v))) return '-'
  return String(v).replaceAll('|', '\\|').replaceAll('\n', ' ')
}

function table(rows: readonly Row[]): string {
  const head =
    '| benchmark | ours MB/s | peer | peer MB/s | ours/peer | ours CPU s/GB | peer CPU s/GB | note |\n' +
    '|---|--:|---|--:|--:|--:|--:|---|\n'
  return (
    head +
    rows
      .map(
        (r) =>
          `| ${cell(r.name)} | ${cell(r.ours_MBps)} | ${cell(r.peer)} | ${cell(r.peer_MBps)} | ${cell(
            r.ratio === null ? null : r.ratio.toFixed(2),
          )} | ${cell(r.ours_cpuSecPerGB)} | ${cell(r.peer_cpuSecPerGB)} | ${cell(r.note)} |`,
      )
      .join('\n')
  )
}

/** The text between (and including) `start` and `end` in `doc`, or undefined. */
function between(doc: string, start: string, end: string): string | undefined {
  const a = doc.indexOf(start)
  const b = doc.indexOf(end, a + start.length)
  if (a < 0 || b < 0) return undefined
  return doc.slice(a, b + end.length)
}

interface Outcome {
  name: string
  rows: Row[]
  error?: string
  seconds: number
  description?: string
}

function section(o: Outcome, command: string, date: string, source: string): string {
  const lines = [sectionStart(o.name), `## ${o.name} — bench/${o.name}.bench.ts`, '']
  if (o.description !== undefined) lines.push(o.description, '')
  lines.push(`_Measured by ${command} on ${date} in ${o.seconds.toFixed(1)} s, source ${source}._`, '')
  if (o.error !== undefined) lines.push(`**Failed:** ${o.error.replaceAll('\n', ' ')}`)
  else lines.push(table(o.rows))
  lines.push(sectionEnd(o.name))
  return lines.join('\n')
}

/** The commit measured, and whether the working tree differed from it (read-only git calls). */
function revision(): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: BENCH_DIR })
  if (head.status !== 0) return 'unknown (not a git checkout)'
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], {
    encoding: 'utf8',
    cwd: BENCH_DIR,
  })
  const changed = (dirty.stdout ?? '').split('\n').filter((l) => l.trim() !== '').length
  return `${head.stdout.trim()}${changed > 0 ? ` + ${changed} uncommitted changed files` : ''}`
}

function header(command: string, date: string, source: string): string {
  const m = machineInfo()
  return [
    '# Benchmarks',
    '',
    '<!-- Written by bench/run.ts (`npm run bench`). Everything but the Profile section is rewritten on',
    '     every run; edit the Profile section only between its markers. -->',
    '',
    `Last run: ${command} on ${date}. Each section below names the command, date and source that produced it.`,
    '',
    '| machine | |',
    '|---|---|',
    `| CPU | ${m.cpu}, ${m.cores} cores |`,
    `| RAM | ${m.ramGiB} GiB |`,
    `| Node.js | ${m.node} |`,
    `| OS | ${m.os} |`,
    `| source | ${source} |`,
    `| load average (1 min) at start / end | ${loadAtStart.toFixed(2)} / ${loadavg()[0]?.toFixed(2)} (other work on the machine skews figures) |`,
    '',
    'MB/s is 10^6 bytes per second (which bytes: see each section). Every peer figure was measured in the',
    'same run on the same input; ours/peer above 1 means ours is faster. CPU s/GB is CPU seconds (user +',
    'system) per 10^9 bytes. `-`: no such peer, or it did not run (the note says why).',
    '',
    'Reproduce: `npm run bench` (full; installs the Helia peer once into node_modules/.cache), or',
    '`npm run bench -- --quick` (under a minute), or `npm run bench -- --only blake3,pipeline`.',
    '',
  ].join('\n')
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2)
  const { values } = parseArgs({
    args: argv,
    options: { quick: { type: 'boolean' }, only: { type: 'string' }, help: { type: 'boolean' } },
  })
  const available = readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith('.bench.ts'))
    .map((f) => basename(f, '.bench.ts'))
    .sort()
  if (values.help === true) {
    process.stdout.write(
      `usage: node bench/run.ts [--quick] [--only NAME[,NAME]]\nmodules: ${available.join(', ')}\n`,
    )
    return 0
  }
  const only = values.only?.split(',').map((s) => s.trim()) ?? []
  const unknown = only.filter((n) => !available.includes(n))
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark ${unknown.join(', ')}; available: ${available.join(', ')}\n`)
    return 2
  }
  const selected = only.length > 0 ? only : available
  const quick = values.quick === true
  const command = commandLine(argv)
  const date = `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`

  const outcomes: Outcome[] = []
  for (const name of selected) {
    process.stderr.write(`[bench] ${name}${quick ? ' (quick)' : ''}\n`)
    const t0 = performance.now()
    try {
      const mod = (await import(pathToFileURL(join(BENCH_DIR, `${name}.bench.ts`)).href)) as BenchModule
      if (typeof mod.run !== 'function') throw new Error('module exports no run({ quick })')
      const rows = await mod.run({ quick })
      for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`)
      process.stderr.write(
        `[bench] ${name}: ${rows.length} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
      )
      outcomes.push({
        name,
        rows,
        seconds: (performance.now() - t0) / 1000,
        ...(typeof mod.description === 'string' ? { description: mod.description } : {}),
      })
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err)
      process.stderr.write(`[bench] ${name} failed: ${err instanceof Error ? err.stack : error}\n`)
      outcomes.push({ name, rows: [], error, seconds: (performance.now() - t0) / 1000 })
    }
  }

  let old = ''
  try {
    old = readFileSync(DOC, 'utf8')
  } catch {
    // first run
  }
  const source = revision()
  const parts = [header(command, date, source)]
  for (const name of available) {
    const fresh = outcomes.find((o) => o.name === name)
    const kept = between(old, sectionStart(name), sectionEnd(name))
    if (fresh !== undefined) parts.push(section(fresh, command, date, source), '')
    else if (kept !== undefined) parts.push(kept, '')
  }
  parts.push(between(old, PROFILE_START, PROFILE_END) ?? DEFAULT_PROFILE, '')
  const tmp = `${DOC}.${process.pid}.tmp`
  writeFileSync(tmp, parts.join('\n'))
  renameSync(tmp, DOC)
  process.stderr.write(`[bench] wrote ${DOC}\n`)
  return outcomes.some((o) => o.error !== undefined) ? 1 : 0
}

process.exitCode = await main()
