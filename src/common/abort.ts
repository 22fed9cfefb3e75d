import { NodusError } from './errors.ts'

/** Options every async public method accepts. */
export interface AbortOptions {
  signal?: AbortSignal
}

/**
 * A signal that aborts when `signal` aborts or after `timeoutMs` milliseconds.
 * The timeout fires a NodusError with code TIMEOUT as the abort reason.
 */
export function withTimeout(
  signal: AbortSignal | undefined,
  timeoutMs: number,
  what = 'operation',
): AbortSignal {
  const timer = new AbortController()
  const t = setTimeout(
    () =>
      timer.abort(
        new NodusError('TIMEOUT', `${what} timed out after ${timeoutMs} ms`, { details: { timeoutMs } }),
      ),
    timeoutMs,
  )
  t.unref()
  return signal === undefined ? timer.signal : AbortSignal.any([signal, timer.signal])
}

/** Throw the signal's reason (as a NodusError ABORTED when it is not one already). */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    const reason: unknown = signal.reason
    if (reason instanceof NodusError) throw reason
    throw new NodusError('ABORTED', 'operation aborted', { cause: reason })
  }
}
