import { NodusError } from './errors.ts'

/** Options every async public method accepts. */
export interface AbortOptions {
  signal?: AbortSignal
}

/** A signal with a deadline; dispose of it when the operation ends (`using d = withDeadline(...)`). */
export interface Deadline extends Disposable {
  /** Aborts when the parent signal aborts, or with a NodusError TIMEOUT at the deadline. */
  readonly signal: AbortSignal
}

/**
 * A signal that aborts when `signal` aborts or after `timeoutMs` milliseconds, with a NodusError
 * TIMEOUT as the reason. Disposing of it cancels the timer: until then the timer holds the signal, its
 * controller and (through `AbortSignal.any`) its link to the parent, which per request adds up to
 * megabytes of heap under load when operations take far less than their timeout.
 */
export function withDeadline(
  signal: AbortSignal | undefined,
  timeoutMs: number,
  what = 'operation',
): Deadline {
  const timer = new AbortController()
  const t = setTimeout(
    () =>
      timer.abort(
        new NodusError('TIMEOUT', `${what} timed out after ${timeoutMs} ms`, { details: { timeoutMs } }),
      ),
    timeoutMs,
  )
  t.unref()
  return {
    signal: signal === undefined ? timer.signal : AbortSignal.any([signal, timer.signal]),
    [Symbol.dispose]: () => clearTimeout(t),
  }
}

/** Throw the signal's reason (as a NodusError ABORTED when it is not one already). */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    const reason: unknown = signal.reason
    if (reason instanceof NodusError) throw reason
    throw new NodusError('ABORTED', 'operation aborted', { cause: reason })
  }
}
