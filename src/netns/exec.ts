/**
 * Running the commands that build a namespace topology: `ip`, `iptables`, `ethtool`, `sysctl`, each
 * through execFile (no shell), logged at debug, a non-zero exit a NETNS_COMMAND_FAILED with the
 * command and its stderr.
 */
import { execFile } from 'node:child_process'
import type { AbortOptions } from '../common/abort.ts'
import { NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'

/** What a command printed. */
export interface CommandOutput {
  stdout: string
  stderr: string
}

/** Runs one command: `argv[0]` with the rest as its arguments. The seam tests replace with a recorder. */
export interface CommandRunner {
  /**
   * Runs `argv` and resolves with its output once it exits 0.
   * @throws NodusError NETNS_COMMAND_FAILED (non-zero exit, or not found), ABORTED
   */
  run(argv: readonly string[], options?: AbortOptions): Promise<CommandOutput>
}

/** Time one topology command may take, ms (an `ip` or `iptables` call takes a few ms). */
export const COMMAND_TIMEOUT_MS = 30_000

/** `env` with /usr/sbin and /sbin on PATH (where Debian puts ip, iptables, ethtool for root). */
export function withSbin(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const path = env.PATH ?? ''
  const extra = ['/usr/sbin', '/sbin'].filter((d) => !path.split(':').includes(d))
  return extra.length === 0 ? env : { ...env, PATH: [path, ...extra].filter((p) => p !== '').join(':') }
}

/** A {@link CommandRunner} over node:child_process execFile; every command logged at debug. */
export class ExecFileRunner implements CommandRunner {
  readonly #log: Logger

  constructor(deps: { logger: Logger }) {
    this.#log = deps.logger
  }

  async run(argv: readonly string[], options: AbortOptions = {}): Promise<CommandOutput> {
    const [cmd, ...args] = argv
    if (cmd === undefined) throw new NodusError('INVALID_ARGUMENT', 'empty command')
    options.signal?.throwIfAborted()
    this.#log.debug({ cmd: argv.join(' ') }, 'netns command')
    return await new Promise<CommandOutput>((resolve, reject) => {
      execFile(
        cmd,
        args,
        {
          encoding: 'utf8',
          timeout: COMMAND_TIMEOUT_MS,
          maxBuffer: 16 * 1024 * 1024,
          env: withSbin(process.env),
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        },
        (err, stdout, stderr) => {
          if (err === null) {
            resolve({ stdout, stderr })
            return
          }
          if (options.signal?.aborted === true) {
            reject(new NodusError('ABORTED', `${argv.join(' ')}: aborted`, { cause: err }))
            return
          }
          const e = err as NodeJS.ErrnoException & { code?: number | string }
          const detail = stderr.trim() || e.message
          this.#log.debug(
            { cmd: argv.join(' '), exit: e.code, stderr: stderr.trim() },
            'netns command failed',
          )
          reject(
            new NodusError('NETNS_COMMAND_FAILED', `${argv.join(' ')}: ${detail}`, {
              details: { command: [...argv], exit: e.code ?? null, stderr: stderr.trim() },
              cause: err,
            }),
          )
        },
      )
    })
  }
}
