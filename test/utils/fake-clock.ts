/**
 * The one fake clock tests share: time moves only when a test sets or advances it, so nothing waits
 * on the wall clock. Fits every `clock` dependency in src/ (`Clock` from src/common/clock.ts).
 */
import type { Clock } from '../../src/common/clock.ts'

export class FakeClock implements Clock {
  /** Now, ms since the Unix epoch (any value a test likes). */
  ms: number

  constructor(startMs = 0) {
    this.ms = startMs
  }

  now(): number {
    return this.ms
  }

  /** Move time forward by `ms`; resolves nothing, returns the new now. */
  advance(ms: number): number {
    this.ms += ms
    return this.ms
  }
}
