/**
 * A real MQTT broker for tests: Debian's mosquitto (`apt-get install mosquitto`; .ci/run installs it)
 * on 127.0.0.1, a free port and a temporary directory (config, persistence). It can be stopped and
 * started again on the same port with the same persisted sessions, to test a broker that goes away.
 * Without mosquitto, {@link mosquittoSkip} says why the tests skip (outside CI; in CI they must run).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { delimiter, dirname, join } from 'node:path'

/** The mosquitto binary: $MOSQUITTO, /usr/sbin/mosquitto (Debian's, not on a user's PATH), or on PATH. */
export const MOSQUITTO: string | undefined = [
  process.env.MOSQUITTO,
  '/usr/sbin/mosquitto',
  ...(process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'mosquitto')),
].find((p): p is string => p !== undefined && p !== '' && existsSync(p))

/** For node:test's `skip`: why the MQTT tests cannot run here, or false. */
export const mosquittoSkip: string | false =
  MOSQUITTO === undefined && process.env.CI === undefined
    ? 'mosquitto not installed (apt-get install mosquitto)'
    : false

/** A TCP port free on 127.0.0.1 now. */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** One mosquitto broker (see the module comment). */
export class Mosquitto {
  readonly port: number
  readonly dir: string
  #proc: ChildProcess | undefined

  private constructor(port: number, dir: string) {
    this.port = port
    this.dir = dir
  }

  /**
   * A broker's port and config, not started (so a client can first find nothing there). With `users`
   * (name → password) only they may connect (a password file made by mosquitto_passwd); else anyone.
   */
  static async create(users?: Record<string, string>): Promise<Mosquitto> {
    const dir = await mkdtemp(join(tmpdir(), 'nodus-mosquitto-'))
    const port = await freePort()
    const auth = ['allow_anonymous true']
    if (users !== undefined) {
      const passwd = join(dirname(MOSQUITTO ?? '/usr/sbin/mosquitto'), '..', 'bin', 'mosquitto_passwd')
      const file = join(dir, 'passwd')
      await writeFile(file, '', { mode: 0o600 })
      for (const [name, password] of Object.entries(users)) {
        const r = spawnSync(passwd, ['-b', file, name, password], { encoding: 'utf8' })
        if (r.status !== 0) throw new Error(`mosquitto_passwd: ${r.error?.message ?? r.stderr}`)
      }
      auth.splice(0, 1, 'allow_anonymous false', `password_file ${file}`)
    }
    await writeFile(
      join(dir, 'mosquitto.conf'),
      [
        `listener ${port} 127.0.0.1`,
        ...auth,
        'persistence true',
        `persistence_location ${dir}/`,
        // Run as root (CI containers), mosquitto would drop to user "mosquitto", which cannot write dir.
        `user ${userInfo().username}`,
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        'log_type notice',
        'log_type information', // "mosquitto version … running", which start() waits for
        '',
      ].join('\n'),
    )
    return new Mosquitto(port, dir)
  }

  /** A started broker (`users` as for {@link create}). */
  static async start(users?: Record<string, string>): Promise<Mosquitto> {
    const m = await Mosquitto.create(users)
    await m.start()
    return m
  }

  /** `mqtt://127.0.0.1:<port>`. */
  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`
  }

  /**
   * Start mosquitto; resolves once it says it is running, rejects with its output if it exits first
   * or is not running within 10 s. It is killed when this process exits, however that happens.
   */
  async start(): Promise<void> {
    if (this.#proc !== undefined) return
    if (MOSQUITTO === undefined) throw new Error('mosquitto is not installed')
    const proc = spawn(MOSQUITTO, ['-c', join(this.dir, 'mosquitto.conf')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    this.#proc = proc
    const kill = (): void => {
      proc.kill('SIGKILL')
    }
    process.once('exit', kill)
    proc.once('exit', () => process.off('exit', kill))
    let output = ''
    const deadline = AbortSignal.timeout(10_000)
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        proc.stderr?.off('data', onData)
        proc.off('exit', onExit)
        deadline.removeEventListener('abort', onTimeout)
        proc.stderr?.resume() // keep draining what it logs
        if (err === undefined) resolve()
        else reject(err)
      }
      const onData = (chunk: Buffer): void => {
        output += chunk.toString()
        if (/mosquitto version \S+ running/.test(output)) done()
      }
      const onExit = (code: number | null): void => {
        this.#proc = undefined
        done(new Error(`mosquitto exited (${code}) before running:\n${output}`))
      }
      const onTimeout = (): void => {
        kill()
        done(new Error(`mosquitto not running after 10 s:\n${output}`))
      }
      proc.stderr?.on('data', onData)
      proc.once('exit', onExit)
      deadline.addEventListener('abort', onTimeout, { once: true })
    })
  }

  /** Stop mosquitto (SIGTERM: it saves its sessions) and wait for it to exit. */
  async stop(): Promise<void> {
    const proc = this.#proc
    if (proc === undefined) return
    this.#proc = undefined
    if (proc.exitCode !== null || proc.signalCode !== null) return
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve())
      proc.kill('SIGTERM')
    })
  }

  /** Stop and remove the directory. */
  async close(): Promise<void> {
    await this.stop()
    await rm(this.dir, { recursive: true, force: true })
  }
}
