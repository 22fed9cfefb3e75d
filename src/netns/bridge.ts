/**
 * The delay bridge process (native/delay-bridge.c, built into build/delay-bridge): started inside a
 * middle namespace with `ip netns exec`, its stdin a pipe it watches (it exits when the pipe closes,
 * so a killed parent leaves no bridge behind), its counters read with SIGUSR1 and at SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { AbortOptions } from '../common/abort.ts'
import { NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import type { LinkParams } from './spec.ts'

/** One direction's counters (a → b is `ab`), frames unless named bytes. */
export interface BridgeDirectionCounters {
  /** Frames read (its own transmissions skipped). */
  rx: number
  /** Frames written to the other side. */
  tx: number
  txBytes: number
  /** Dropped by the loss model. */
  lost: number
  /** Dropped because the queue was full. */
  queueFull: number
  /** Dropped as longer than 2048 bytes (offloads left on). */
  oversize: number
  /** Writes the kernel refused (egress full). */
  txErrors: number
}

/** What the bridge prints on SIGUSR1 and when it exits. */
export interface BridgeCounters {
  a: string
  b: string
  /** Frames waiting now, the most that ever waited, and the bound. */
  queued: number
  maxQueued: number
  capacity: number
  ab: BridgeDirectionCounters
  ba: BridgeDirectionCounters
}

/** A running bridge. */
export interface BridgeHandle {
  readonly netns: string
  /** The process id (of `ip netns exec`, which execs the bridge: the same process). */
  readonly pid: number | undefined
  /** Current counters (SIGUSR1). @throws NodusError NETNS_BRIDGE_FAILED when it has exited, TIMEOUT */
  counters(options?: AbortOptions): Promise<BridgeCounters>
  /** SIGTERM, then its final counters (undefined when it had already exited). Idempotent. */
  stop(): Promise<BridgeCounters | undefined>
}

/** Starts bridges; tests of the topology pass a fake. */
export interface BridgeLauncher {
  /**
   * Starts a bridge between interfaces `a` and `b` of `netns` and resolves once it reports ready.
   * @throws NodusError NETNS_BRIDGE_FAILED (exited, or no ready line within 10 s), NETNS_UNAVAILABLE (not built)
   */
  start(
    netns: string,
    a: string,
    b: string,
    params: LinkParams & { seed: number; queueFrames?: number },
    options?: AbortOptions,
  ): Promise<BridgeHandle>
}

/** build/delay-bridge at the package root (two levels up from src/netns, three from dist/src/netns); undefined when not built. */
export function delayBridgePath(): string | undefined {
  for (const rel of ['../../build/delay-bridge', '../../../build/delay-bridge']) {
    const url = new URL(rel, import.meta.url)
    if (existsSync(url)) return fileURLToPath(url)
  }
  return undefined
}

/** The bridge's command line for `params` (loss as a fraction; 0 means none). */
export function bridgeArgs(
  a: string,
  b: string,
  params: LinkParams & { seed: number; queueFrames?: number },
): string[] {
  return [
    '--a',
    a,
    '--b',
    b,
    '--delay-ms',
    String(params.delayMs),
    '--jitter-ms',
    String(params.jitterMs),
    '--loss',
    // Below 1 the bridge reads a fraction; 1 and above would be per mille.
    String(Math.min(params.loss, 0.999999)),
    '--seed',
    String(params.seed),
    '--queue',
    String(params.queueFrames ?? 4096),
    '--exit-on-stdin-eof',
  ]
}

const READY_TIMEOUT_MS = 10_000

class BridgeProcess implements BridgeHandle {
  readonly netns: string
  readonly #proc: ChildProcess
  readonly #waiting: ((c: BridgeCounters) => void)[] = []
  #exited = false
  #last: BridgeCounters | undefined
  #stopping: Promise<BridgeCounters | undefined> | undefined

  constructor(netns: string, proc: ChildProcess) {
    this.netns = netns
    this.#proc = proc
    proc.once('exit', () => {
      this.#exited = true
    })
  }

  get pid(): number | undefined {
    return this.#proc.pid
  }

  onCounters(c: BridgeCounters): void {
    this.#last = c
    for (const w of this.#waiting.splice(0)) w(c)
  }

  async counters(options: AbortOptions = {}): Promise<BridgeCounters> {
    if (this.#exited)
      throw new NodusError('NETNS_BRIDGE_FAILED', `the delay bridge in ${this.netns} has exited`)
    const got = new Promise<BridgeCounters>((resolve, reject) => {
      const t = setTimeout(() => reject(new NodusError('TIMEOUT', 'delay bridge counters timed out')), 5_000)
      const onAbort = (): void => reject(new NodusError('ABORTED', 'aborted'))
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push((c) => {
        clearTimeout(t)
        options.signal?.removeEventListener('abort', onAbort)
        resolve(c)
      })
    })
    this.#proc.kill('SIGUSR1')
    return await got
  }

  stop(): Promise<BridgeCounters | undefined> {
    this.#stopping ??= (async () => {
      if (this.#exited) return this.#last
      const gone = new Promise<void>((r) => this.#proc.once('exit', () => r()))
      this.#proc.kill('SIGTERM')
      const kill = setTimeout(() => this.#proc.kill('SIGKILL'), 5_000)
      await gone
      clearTimeout(kill)
      return this.#last
    })()
    return this.#stopping
  }
}

/** Starts build/delay-bridge processes with `ip netns exec`; their stderr goes to the logger at warn. */
export class ProcessBridgeLauncher implements BridgeLauncher {
  readonly #log: Logger
  readonly #path: string | undefined

  constructor(deps: { logger: Logger }, options: { path?: string } = {}) {
    this.#log = deps.logger
    this.#path = options.path ?? delayBridgePath()
  }

  async start(
    netns: string,
    a: string,
    b: string,
    params: LinkParams & { seed: number; queueFrames?: number },
    options: AbortOptions = {},
  ): Promise<BridgeHandle> {
    if (this.#path === undefined)
      throw new NodusError(
        'NETNS_UNAVAILABLE',
        'build/delay-bridge is not built: run `node scripts/build-native.ts --strict`',
      )
    options.signal?.throwIfAborted()
    const argv = ['ip', 'netns', 'exec', netns, this.#path, ...bridgeArgs(a, b, params)]
    this.#log.debug({ cmd: argv.join(' ') }, 'netns command')
    const proc = spawn(argv[0] as string, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] })
    const handle = new BridgeProcess(netns, proc)
    let stderr = ''
    proc.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000)
    })
    proc.stderr?.on('end', () => {
      if (stderr.trim() !== '') this.#log.warn({ netns, stderr: stderr.trim() }, 'delay bridge stderr')
    })
    // An error on stdin (EPIPE once the bridge exits) must not crash the parent.
    proc.stdin?.on('error', () => {})
    const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream })
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string): void => {
        clearTimeout(t)
        proc.kill('SIGKILL')
        reject(
          new NodusError('NETNS_BRIDGE_FAILED', `delay bridge in ${netns}: ${why}`, {
            details: { netns, stderr: stderr.trim() },
          }),
        )
      }
      const t = setTimeout(() => fail(`no ready line within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS)
      const onError = (err: Error): void => fail(err.message)
      const onExit = (code: number | null): void => fail(`exited with code ${code}: ${stderr.trim()}`)
      proc.once('error', onError)
      proc.once('exit', onExit)
      lines.on('line', (line) => {
        let msg: { event?: string } & Partial<BridgeCounters>
        try {
          msg = JSON.parse(line) as typeof msg
        } catch {
          return
        }
        if (msg.event === 'ready') {
          clearTimeout(t)
          proc.removeListener('exit', onExit)
          proc.removeListener('error', onError)
          proc.on('error', (err) => this.#log.warn({ netns, err: err.message }, 'delay bridge error'))
          resolve()
        } else if (msg.event === 'counters') handle.onCounters(msg as BridgeCounters)
      })
    })
    return handle
  }
}
