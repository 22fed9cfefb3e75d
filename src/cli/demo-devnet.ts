/**
 * What every `nodus demo --scenario NAME` shares: a devnet of node processes in a temporary
 * directory, stopped and removed whatever happens (an error, Ctrl-C), and small polling helpers.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodusError } from '../common/errors.ts'
import type { ApiTarget } from './client.ts'
import { Devnet, type DevnetOptions } from './devnet.ts'

/** Options every scenario takes. */
export interface ScenarioDevnetOptions {
  nodes: number
  basePort: number
  logLevel: string
  /** Parent of the devnet's temporary directory. Default the OS temp dir. */
  baseDir?: string
  /** Keep the devnet directory (logs, data) instead of removing it. */
  keep: boolean
  /** Node config applied to every node. */
  config?: Record<string, unknown>
  /** A federation: builds the genesis every node starts with (see {@link DevnetOptions.genesis}). */
  genesis?: DevnetOptions['genesis']
  log: (msg: string) => void
}

/** Check that flag `--name` is a whole number ≥ `min`. @throws NodusError `INVALID_ARGUMENT` */
export function checkWhole(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min)
    throw new NodusError('INVALID_ARGUMENT', `--${name} must be a whole number ≥ ${min}, got ${v}`)
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A node's API as a client target. */
export function apiOf(n: { api: string; token: string }): ApiTarget {
  return { url: n.api, token: n.token }
}

/** The q-quantile (0…1) of ascending `sorted`; 0 when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
}

/** Wait until `check` holds, polling every `everyMs`, for at most `timeoutMs`. @returns whether it held */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 100,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (Date.now() > deadline) return false
    await sleep(everyMs)
  }
}

/**
 * Start a devnet of `o.nodes` processes in a new temporary directory named `prefix…`, wait until it
 * settles, run `scenario` (given the devnet, an abort signal and the directory), then stop every process and remove the directory (unless `o.keep`),
 * whatever happens. Ctrl-C aborts `signal`, stops the devnet and exits 130.
 */
export async function withDevnet<T>(
  o: ScenarioDevnetOptions,
  prefix: string,
  scenario: (net: Devnet, signal: AbortSignal, dir: string) => Promise<T>,
): Promise<T> {
  await mkdir(o.baseDir ?? tmpdir(), { recursive: true })
  const baseDir = await mkdtemp(join(o.baseDir ?? tmpdir(), prefix))
  let devnet: Devnet | undefined
  const stop = new AbortController()
  const onSignal = (): void => {
    o.log('interrupted: stopping the devnet')
    stop.abort()
    void devnet?.stop(2_000).finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    o.log(`starting ${o.nodes} node processes in ${baseDir}`)
    devnet = await Devnet.start({
      nodes: o.nodes,
      baseDir,
      basePort: o.basePort,
      logLevel: o.logLevel,
      ...(o.config === undefined ? {} : { config: o.config }),
      ...(o.genesis === undefined ? {} : { genesis: o.genesis }),
      onEvent: (msg) => o.log(msg),
    })
    // Nodes keep joining the DHT and compiling their hot code for a few seconds after they report
    // ready; scenarios measure once that has settled (as Helia's add is, on a started node).
    const settledMs = await devnet.settle()
    o.log(`devnet settled after ${(settledMs / 1000).toFixed(1)} s`)
    return await scenario(devnet, stop.signal, baseDir)
  } finally {
    stop.abort()
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    await devnet?.stop()
    if (o.keep) o.log(`kept ${baseDir}`)
    else await rm(baseDir, { recursive: true, force: true })
  }
}
