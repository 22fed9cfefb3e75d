import { pino } from 'pino'

/** The logger shape every area takes in its deps (pino-compatible). */
export interface Logger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
  child(bindings: Record<string, unknown>): Logger
}

/**
 * A pino logger writing JSON lines to `destination` (a file path, or 2 for stderr).
 * @param level pino level name, default 'info'
 */
export function createLogger(level = 'info', destination: string | number = 2): Logger {
  return pino({ level, base: null }, pino.destination({ dest: destination, sync: false, mkdir: true }))
}

/** A logger that drops everything (tests, quiet CLI commands). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
