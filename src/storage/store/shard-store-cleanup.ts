/**
 * The periodic task that deletes expired shards: calls {@link ShardStore.cleanupExpired} on a timer.
 * The node starts it after opening the store and stops it before closing the store.
 */

import { NodusError } from '../../common/errors.ts'

/** Default shards deleted per run (as ShardStore.cleanupExpired). */
const DEFAULT_RUN_LIMIT = 10_000

/**
 * What the task needs of the store: ShardStore.cleanupExpired. Declared here rather than taken from
 * shard-store.ts, which re-exports this module: no import cycle.
 */
export interface ExpiryCleanupStore {
  cleanupExpired(
    now: number,
    options?: { limit?: number; signal?: AbortSignal },
  ): Promise<{ deleted: number; bytes: number }>
}

export interface ExpiryCleanupOptions {
  /** Pause between runs, in ms (positive integer). The first run comes after one interval. */
  intervalMs: number
  /** Source of `now` (ms since the Unix epoch) for each run; defaults to `Date`. */
  clock?: { now(): number }
  /** Shards deleted per run, default 10,000. A run that reaches it is followed at once by another. */
  limit?: number
  /** Stops the task when it aborts (as stop() does, without waiting). */
  signal?: AbortSignal
  logger?: { warn(obj: object, msg?: string): void }
  /** Called after each run with its result or error: for metrics and tests. */
  onRun?: (result: { deleted: number; bytes: number } | { error: unknown }) => void
}

/**
 * Run `store.cleanupExpired(clock.now(), { limit })` every `intervalMs` until stop() or `signal`. Runs never
 * overlap. Errors are logged (STORE_CLOSED, NOT_STARTED and ABORTED quietly) and the next run goes ahead.
 * The timer is unref'd: it does not keep the process alive.
 * @returns stop(): cancels the timer, aborts a run in progress and resolves once it has settled (idempotent)
 * @throws NodusError INVALID_ARGUMENT when intervalMs is not a positive integer
 */
export function startExpiryCleanup(
  store: ExpiryCleanupStore,
  options: ExpiryCleanupOptions,
): { stop(): Promise<void> } {
  const { intervalMs, clock = Date, limit = DEFAULT_RUN_LIMIT } = options
  if (!Number.isSafeInteger(intervalMs) || intervalMs < 1) {
    throw new NodusError('INVALID_ARGUMENT', 'intervalMs must be a positive integer', {
      details: { intervalMs },
    })
  }
  const stopper = new AbortController()
  const signal =
    options.signal === undefined ? stopper.signal : AbortSignal.any([options.signal, stopper.signal])
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined

  const run = async (): Promise<void> => {
    let next = intervalMs
    try {
      const result = await store.cleanupExpired(Math.max(0, Math.floor(clock.now())), { limit, signal })
      if (limit > 0 && result.deleted >= limit) next = 0
      options.onRun?.(result)
    } catch (error) {
      const quiet =
        error instanceof NodusError && ['STORE_CLOSED', 'NOT_STARTED', 'ABORTED'].includes(error.code)
      if (!quiet) options.logger?.warn({ err: error }, 'expired-shard cleanup failed')
      options.onRun?.({ error })
    }
    running = undefined
    schedule(next)
  }
  const schedule = (delayMs: number): void => {
    if (signal.aborted) return
    timer = setTimeout(() => {
      running = run()
    }, delayMs)
    timer.unref()
  }

  signal.addEventListener('abort', () => clearTimeout(timer), { once: true })
  schedule(intervalMs)
  return {
    async stop() {
      stopper.abort()
      clearTimeout(timer)
      await running
    },
  }
}
