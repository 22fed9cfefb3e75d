/**
 * Helpers shared by the benchmarks (bench/*.bench.ts) and the harness (bench/run.ts): the row shape,
 * timing, temp files, peer-tool detection and machine facts. Nothing here asserts a timing.
 */
import { type ChildProcess, spawnSync } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { accessSync, closeSync, constants, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import { delimiter, join } from 'node:path'
import { createInterface } from 'node:readline'

/**
 * One benchmark result: our figure and the peer's, measured in the same run. A module's own row type
 * (e.g. bench/erasure.bench.ts `Row`) only has to be assignable to this.
 */
export interface Row {
  name: string
  /** Our throughput, 10^6 bytes per second (which bytes: see the module or `note`). */
  ours_MBps: number
  /** The peer implementation, `'-'` when there is none, or why it did not run. */
  peer: string
  /** The peer's throughput on the same input, or null when it did not run. */
  peer_MBps: number | null
  /** ours_MBps / peer_MBps, or null when there is no peer figure. */
  ratio: number | null
  /** Our CPU seconds (user + system, all threads of the measuring process) per 10^9 bytes. */
  ours_cpuSecPerGB?: number
  /** The peer's CPU seconds per 10^9 bytes, when measured. */
  peer_cpuSecPerGB?: number
  /** What the figures mean, or why a peer is missing. */
  note?: string
}

/** What the harness passes to every module's `run`. */
export interface BenchOptions {
  /** Smaller inputs and fewer runs: the whole `--quick` suite stays under a minute. */
  quick: boolean
}

/** The shape every bench/*.bench.ts module exports. */
export interface BenchModule {
  run(options: BenchOptions): Promise<Row[]>
  /** One paragraph for docs/BENCHMARKS.md (optional). */
  description?: string
}

export const MiB = 1024 * 1024

/** Median of `xs` (the upper one for an even count); NaN for an empty list. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1] as number
}

/** `x` rounded to `digits` significant digits (at least integer precision above 10^digits). */
export function sig(x: number, digits = 3): number {
  if (!Number.isFinite(x) || x === 0) return x
  const p = digits - 1 - Math.floor(Math.log10(Math.abs(x)))
  if (p <= 0) return Math.round(x)
  const f = 10 ** p
  return Math.round(x * f) / f
}

/** 10^6 bytes per second for `bytes` processed in `ms` milliseconds. */
export function mbps(bytes: number, ms: number): number {
  return sig(bytes / 1e6 / (ms / 1000))
}

/** CPU seconds per 10^9 bytes for `bytes` processed with `cpuMs` CPU milliseconds. */
export function cpuSecPerGB(bytes: number, cpuMs: number): number {
  return sig(cpuMs / 1000 / (bytes / 1e9))
}

/** ours / peer to two decimals, or null without a peer figure. */
export function ratioOf(ours: number, peer: number | null): number | null {
  if (peer === null || peer === 0 || !Number.isFinite(peer)) return null
  return Math.round((ours / peer) * 100) / 100
}

/** This process's CPU time so far (user + system, all threads), ms. */
export function cpuMs(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/** One timed pass: wall and CPU milliseconds of this process. */
export interface Timing {
  wallMs: number
  cpuMs: number
}

/** A contender: `fn` is timed (wall and CPU); `setup`, when given, runs untimed before each call. */
export interface Contender {
  fn: () => unknown
  setup?: () => unknown
}

/**
 * Median wall and CPU milliseconds of each contender over `runs` timed runs after `warmup` untimed
 * ones. Runs alternate between contenders so that noise from other processes hits all of them alike.
 * `fn` may return a promise; it is awaited inside the timed region.
 */
export async function measure(
  contenders: readonly Contender[],
  opts: { runs: number; warmup: number },
): Promise<Timing[]> {
  for (let i = 0; i < opts.warmup; i++) {
    for (const c of contenders) {
      await c.setup?.()
      await c.fn()
    }
  }
  const walls: number[][] = contenders.map(() => [])
  const cpu: number[][] = contenders.map(() => [])
  for (let n = 0; n < opts.runs; n++) {
    for (const [i, c] of contenders.entries()) {
      await c.setup?.()
      const c0 = cpuMs()
      const t0 = performance.now()
      await c.fn()
      walls[i]?.push(performance.now() - t0)
      cpu[i]?.push(cpuMs() - c0)
    }
  }
  return contenders.map((_, i) => ({ wallMs: median(walls[i] ?? []), cpuMs: median(cpu[i] ?? []) }))
}

/** Run `fn` with a fresh temporary directory that is removed afterwards, whatever happens. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `nodus-bench-${prefix}-`))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Deterministic pseudo-random bytes (xorshift32), for inputs that must not compress or repeat. */
export function fillPseudoRandom(buf: Uint8Array, seed: number): void {
  let x = seed | 0 || 1
  for (let i = 0; i < buf.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    buf[i] = x
  }
}

/** Write `bytes` random bytes to `path` in 1 MiB writes (node:crypto randomFillSync). */
export function writeRandomFile(path: string, bytes: number): void {
  const fd = openSync(path, 'w')
  try {
    const buf = new Uint8Array(MiB)
    for (let done = 0; done < bytes; ) {
      const n = Math.min(MiB, bytes - done)
      randomFillSync(buf, 0, n)
      let off = 0
      while (off < n) off += writeSync(fd, buf, off, n - off)
      done += n
    }
  } finally {
    closeSync(fd)
  }
}

/** Absolute path of `cmd` on PATH, or undefined when it is not installed. */
export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    const p = join(dir, cmd)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      // not here
    }
  }
  return undefined
}

/** The row text for a peer tool that is missing: how to install it (Debian package). */
export function peerNotInstalled(debianPackage: string): string {
  return `peer not installed: apt-get install ${debianPackage}`
}

/** Result of {@link runTimed}. */
export interface CommandResult {
  /** Wall-clock time of the whole child process (fork to exit), ms. */
  wallMs: number
  status: number | null
  stdout: string
  stderr: string
}

/**
 * Run a command synchronously and time it (wall clock, including process start-up of about 1 ms).
 * Bounded by `timeoutMs` (default 120 s): the child is killed then and `status` is null.
 */
export function runTimed(cmd: string, args: readonly string[], timeoutMs = 120_000): CommandResult {
  const t0 = performance.now()
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 * MiB })
  const wallMs = performance.now() - t0
  return { wallMs, status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') }
}

export { procCpuSeconds, procCpuSplit } from '../src/common/proc.ts'

/** Command line of process `pid` (arguments joined by spaces), or undefined once it is gone. */
export function procCmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ')
  } catch {
    return undefined
  }
}

/** The machine a run was made on, for the report header. */
export interface MachineInfo {
  cpu: string
  cores: number
  ramGiB: number
  node: string
  os: string
}

export function machineInfo(): MachineInfo {
  let cpu = cpus()[0]?.model ?? 'unknown'
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'))
    if (line !== undefined) cpu = line.slice(line.indexOf(':') + 1).trim()
  } catch {
    // not Linux: keep os.cpus()
  }
  let osName = `${process.platform} ${process.arch}`
  try {
    const pretty = readFileSync('/etc/os-release', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('PRETTY_NAME='))
    if (pretty !== undefined) osName = `${pretty.slice(13).replaceAll('"', '')}, ${process.arch}`
  } catch {
    // keep the platform name
  }
  return {
    cpu,
    cores: cpus().length,
    ramGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    os: osName,
  }
}

/** Whether `pkg` is installed in `dir`/node_modules at exactly `version`. */
export function pinnedInstalled(dir: string, pkg: string, version: string): boolean {
  try {
    const json = JSON.parse(readFileSync(join(dir, 'node_modules', pkg, 'package.json'), 'utf8')) as {
      version?: string
    }
    return json.version === version
  } catch {
    return false
  }
}

/**
 * Install a peer implementation that is not a project dependency: `deps` (exact versions; transitive
 * dependencies follow their ranges) with `npm install --prefix dir` (once; bounded by 10 minutes).
 * @returns an error text, or undefined once `check` is installed at its pinned version
 */
export async function installPinned(
  dir: string,
  name: string,
  deps: Readonly<Record<string, string>>,
  check: string,
): Promise<string | undefined> {
  const npm = which('npm')
  if (npm === undefined) return 'npm not found on PATH'
  await mkdir(dir, { recursive: true })
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name, private: true, type: 'module', dependencies: deps }, null, 2)}\n`,
  )
  process.stderr.write(`[bench] installing ${check} ${deps[check]} into ${dir} (once)\n`)
  const r = runTimed(
    npm,
    ['install', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error'],
    600_000,
  )
  if (r.status !== 0)
    return `npm install failed (${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`
  return pinnedInstalled(dir, check, deps[check] ?? '')
    ? undefined
    : `npm install finished but ${check} is missing`
}

/**
 * Read JSON lines from a child's stdout until one has `event` (resolves with it); bounded by
 * `timeoutMs` (then the child is killed). `label` names the child in errors.
 */
export function waitJsonEvent(
  proc: ChildProcess,
  event: string,
  timeoutMs: number,
  label: string,
): Promise<Record<string, unknown>> {
  return new Promise((res, rej) => {
    let stderr = ''
    proc.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000)
    })
    const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream })
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      rej(new Error(`${label} ${event}: no answer within ${timeoutMs} ms`))
    }, timeoutMs)
    const onExit = (code: number | null): void => {
      clearTimeout(timer)
      rej(
        new Error(`${label} exited with ${code} before '${event}': ${stderr.trim().split('\n').pop() ?? ''}`),
      )
    }
    proc.once('exit', onExit)
    lines.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as Record<string, unknown>
        if (msg.event === event) {
          clearTimeout(timer)
          proc.removeListener('exit', onExit)
          lines.close()
          res(msg)
        }
      } catch {
        // not JSON
      }
    })
  })
}
