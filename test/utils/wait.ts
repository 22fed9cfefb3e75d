/**
 * The one place tests poll. Prefer the event itself (a promise, an `'event'`, a callback in deps) or a
 * fake clock (fake-clock.ts, or node:test's `mock.timers` for code on the global timers); poll only
 * for a state nothing announces (a libp2p internal, another node's map), and then through
 * {@link waitFor}, never a fixed sleep (test/architecture/sleeps.test.ts enforces that).
 */

export interface WaitForOptions {
  /** Give up after this long, ms. Generous: it bounds a failing test, it does not time a passing one. */
  timeoutMs: number
  /** What is awaited, for the error: "timed out after 5000 ms waiting for <what>". */
  what: string
  /** Between checks, ms. Default 20. */
  intervalMs?: number
}

/**
 * Resolves as soon as `check()` returns true (checked at once, then every `intervalMs`).
 *
 * @throws Error "timed out after `timeoutMs` ms waiting for `what`" when it still returns false then;
 *   whatever `check` throws
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  { timeoutMs, what, intervalMs = 20 }: WaitForOptions,
): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!(await check())) {
    if (performance.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
