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
 * A signal that aborts when `signal` aborts (with its reason) or after `timeoutMs` milliseconds, with a
 * NodusError TIMEOUT as the reason. Disposing of it cancels the timer and unhooks it from `signal`.
 *
 * It links to the parent with a plain abort listener rather than `AbortSignal.any`: Node ties each
 * `AbortSignal.any` signal to its sources with WeakRefs and a FinalizationRegistry entry that go only
 * at the next full collection, so a request per shard promoted about 2 KB of them to the old
 * generation per request (docs/benchmarks-history.md, "Session 7").
 */
export function withDeadline(
  signal: AbortSignal | undefined,
  timeoutMs: number,
  what = 'operation',
): Deadline {
  const controller = new AbortController()
  const onAbort = (): void => controller.abort(signal?.reason)
  if (signal !== undefined) {
    if (signal.aborted) controller.abort(signal.reason)
    else signal.addEventListener('abort', onAbort, { once: true })
  }
  const t = setTimeout(
    () =>
      controller.abort(
        new NodusError('TIMEOUT', `${what} timed out after ${timeoutMs} ms`, { details: { timeoutMs } }),
      ),
    timeoutMs,
  )
  t.unref()
  return {
    signal: controller.signal,
    [Symbol.dispose]: () => {
      clearTimeout(t)
      signal?.removeEventListener('abort', onAbort)
    },
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
