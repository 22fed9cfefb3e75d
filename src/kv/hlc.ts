/**
 * The hybrid logical clock that timestamps this node's kv operations: Kulkarni, Demirbas, Madappa,
 * Avva, Leone, "Logical Physical Clocks", OPODIS 2014 (Figure 5, the HLC algorithm). A timestamp
 * (`Hlc`, op-types.ts) is `(l, c)`: `l` the largest physical time seen, Unix ms; `c` a counter
 * ordering events within one `l`. Timestamps this clock issues only grow, stay within one operation
 * of every timestamp it has seen, and stay close to physical time.
 *
 * Two bounds the paper leaves to the implementation:
 * - **Future skew.** A remote timestamp more than `maxFutureSkewMs` ahead of the wall clock is refused
 *   (`KV_OP_FROM_FUTURE`) before it can pull `l` forward, so neither a wrong clock nor a hostile peer
 *   can push this node's timestamps (and, through LWW, its writes) far into the future: an event
 *   never moves `l` past `pt + maxFutureSkewMs` (`l` stays where it is when the wall clock `pt` went
 *   back further than that).
 * - **Counter overflow.** `c` has 16 bits (the HLC's 8-byte encoding). When it would reach 65,536 the
 *   clock moves `l` forward by 1 ms and restarts `c` at 0, which keeps every property above, unless
 *   that would break the skew bound: then the event fails with `KV_CLOCK_EXHAUSTED` and nothing
 *   changes (65,536 events in one ms at the bound; retry after a millisecond).
 */
import type { Clock } from '../common/clock.ts'
import { NodusError } from '../common/errors.ts'
import { HLC_COUNTER_LIMIT, type Hlc } from './op-types.ts'

/** One more than the largest `ms` an 8-byte HLC can carry (48 bits). */
export const HLC_MS_LIMIT = 2 ** 48

/** Narrow dependencies of {@link HlcClock}. */
export interface HlcClockDeps {
  /** The wall clock (ms since the Unix epoch). */
  clock: Clock
}

export interface HlcClockOptions {
  /** How far ahead of the wall clock a timestamp may be, ms (`kv.maxFutureSkewMs`, default 60,000). */
  maxFutureSkewMs: number
  /** The last timestamp issued before a restart (from the op log), so the clock never goes back. */
  last?: Hlc
}

/** True for whole Unix ms an HLC can carry: 0 ≤ v < 2^48 (the year 10889). */
export function isHlcMs(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v < HLC_MS_LIMIT
}

/** True when `h` is a well-formed timestamp: integers, 0 ≤ ms < 2^48, 0 ≤ c < 2^16. */
export function isHlc(h: unknown): h is Hlc {
  if (typeof h !== 'object' || h === null) return false
  const { ms, c } = h as Partial<Hlc>
  return isHlcMs(ms) && Number.isSafeInteger(c) && (c as number) >= 0 && (c as number) < HLC_COUNTER_LIMIT
}

/**
 * Refuse a timestamp more than `maxFutureSkewMs` ahead of `nowMs`. Cheap: run it before verifying a
 * signature.
 *
 * @param nowMs - the wall clock, Unix ms
 * @throws NodusError `KV_OP_FROM_FUTURE` (peerAction `ignore`: clock skew is no proof of malice),
 *   `details: { hlcMs, nowMs, maxFutureSkewMs }`
 */
export function checkHlcSkew(hlc: Hlc, nowMs: number, maxFutureSkewMs: number): void {
  if (hlc.ms > nowMs + maxFutureSkewMs) {
    throw new NodusError(
      'KV_OP_FROM_FUTURE',
      `timestamp ${hlc.ms} is ${hlc.ms - nowMs} ms ahead of this node's clock (at most ${maxFutureSkewMs})`,
      { peerAction: 'ignore', details: { hlcMs: hlc.ms, nowMs, maxFutureSkewMs } },
    )
  }
}

/**
 * A hybrid logical clock over an injected wall clock. Not shared between processes: one per node.
 *
 * ```ts
 * const hlc = new HlcClock({ clock }, { maxFutureSkewMs: 60_000 })
 * const ts = hlc.now()          // for an operation this node signs
 * hlc.receive(op.body.hlc)      // for every operation applied from elsewhere
 * ```
 */
export class HlcClock {
  readonly #clock: Clock
  readonly #maxFutureSkewMs: number
  #l: number
  #c: number

  /** @throws NodusError `INVALID_ARGUMENT` when `options.last` is not a well-formed timestamp */
  constructor(deps: HlcClockDeps, options: HlcClockOptions) {
    this.#clock = deps.clock
    this.#maxFutureSkewMs = options.maxFutureSkewMs
    const last = options.last ?? { ms: 0, c: 0 }
    if (!isHlc(last)) throw new NodusError('INVALID_ARGUMENT', 'last is not a valid HLC timestamp')
    this.#l = last.ms
    this.#c = last.c
  }

  /** The last timestamp issued or merged (a copy). */
  get last(): Hlc {
    return { ms: this.#l, c: this.#c }
  }

  /** The wall clock, whole Unix ms. */
  #pt(): number {
    return Math.floor(this.#clock.now())
  }

  /**
   * A timestamp for a local or send event: greater than every timestamp issued or received before.
   * `l = max(l, pt)`; `c` counts up when `l` did not move, else restarts at 0.
   *
   * @throws NodusError `KV_CLOCK_EXHAUSTED` when the counter is used up at the skew bound (see module doc)
   */
  now(): Hlc {
    const pt = this.#pt()
    if (pt > this.#l) return this.#set(pt, 0, pt, 'KV_CLOCK_EXHAUSTED')
    return this.#set(this.#l, this.#c + 1, pt, 'KV_CLOCK_EXHAUSTED')
  }

  /**
   * Refuse `remote` when it is more than `maxFutureSkewMs` ahead of the wall clock; changes nothing.
   *
   * @throws NodusError `KV_OP_FROM_FUTURE` (peerAction `ignore`)
   */
  check(remote: Hlc): void {
    checkHlcSkew(remote, this.#pt(), this.#maxFutureSkewMs)
  }

  /**
   * Merge a timestamp received from elsewhere (an operation applied from a peer): the result is
   * greater than both `remote` and every timestamp before. `l = max(l, l_m, pt)`; `c` is one more than
   * the largest counter among the sources whose `l` equals the new one, or 0 when only `pt` does.
   *
   * @throws NodusError `KV_OP_FROM_FUTURE` (peerAction `ignore`) when `remote` is more than
   *   `maxFutureSkewMs` ahead, or at the bound with its counter used up; `INVALID_ARGUMENT` when it is
   *   not a well-formed timestamp. Nothing changes when it throws.
   */
  receive(remote: Hlc): Hlc {
    if (!isHlc(remote)) throw new NodusError('INVALID_ARGUMENT', 'not a valid HLC timestamp')
    const pt = this.#pt()
    checkHlcSkew(remote, pt, this.#maxFutureSkewMs)
    const l = Math.max(this.#l, remote.ms, pt)
    let c: number
    if (l === this.#l && l === remote.ms) c = Math.max(this.#c, remote.c) + 1
    else if (l === this.#l) c = this.#c + 1
    else if (l === remote.ms) c = remote.c + 1
    else c = 0
    return this.#set(l, c, pt, 'KV_OP_FROM_FUTURE')
  }

  /** Commit `(l, c)`, carrying a counter overflow into `l`, unless that breaks the skew bound. */
  #set(l: number, c: number, pt: number, code: 'KV_CLOCK_EXHAUSTED' | 'KV_OP_FROM_FUTURE'): Hlc {
    let ms = l
    let counter = c
    if (counter >= HLC_COUNTER_LIMIT) {
      ms += 1
      counter = 0
    }
    // The bound is the wall clock plus the skew, or the clock's own `l` when the wall clock went back
    // past it: counting on at its own `l` is fine, moving further ahead is not.
    if (ms > Math.max(pt + this.#maxFutureSkewMs, this.#l) || ms >= HLC_MS_LIMIT) {
      throw new NodusError(
        code,
        `the HLC counter is used up at ${l} ms, the largest timestamp this node may issue (${pt} + ${this.#maxFutureSkewMs} ms)`,
        code === 'KV_OP_FROM_FUTURE'
          ? { peerAction: 'ignore', details: { hlcMs: l, nowMs: pt, maxFutureSkewMs: this.#maxFutureSkewMs } }
          : { details: { hlcMs: l, nowMs: pt, maxFutureSkewMs: this.#maxFutureSkewMs } },
      )
    }
    this.#l = ms
    this.#c = counter
    return { ms, c: counter }
  }
}
