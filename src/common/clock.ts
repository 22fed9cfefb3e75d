/**
 * The wall clock, injected: every area reads the time through a `Clock` in its deps, so tests can pass
 * a fake one. `Date` itself satisfies the interface; {@link systemClock} is the production clock.
 */
export interface Clock {
  /** Now, milliseconds since the Unix epoch (as `Date.now()`). */
  now(): number
}

/** The system's wall clock (`Date.now()`). */
export const systemClock: Clock = { now: () => Date.now() }
