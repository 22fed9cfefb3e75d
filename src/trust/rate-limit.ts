/**
 * A token bucket per key (issuer PeerId), bounded in the number of keys, with an injected clock.
 *
 * Used to rate-limit signed trust vectors and capacity reports per issuer before their signature is
 * checked (verifying is the expensive part). Pure apart from the clock: tests advance a fake one.
 * Limits per forwarding connection belong to the network layer, not here.
 */
import { NodusError } from '../common/errors.ts'

/** What the limiter needs from its surroundings. */
export interface TokenBucketDeps {
  /** Milliseconds; `Date` in production, a fake clock in tests. */
  clock: { now(): number }
}

/** Bucket shape and bounds. */
export interface TokenBucketOptions {
  /** One token is added every `intervalMs` milliseconds. Must be > 0. */
  intervalMs: number
  /** Bucket size: how many messages may arrive back to back. Integer ≥ 1. */
  burst: number
  /** Most keys tracked; the least recently used key is forgotten beyond it. Default 10,000. */
  maxKeys?: number
}

interface Bucket {
  tokens: number
  updatedMs: number
}

/**
 * Token buckets keyed by issuer. A new key starts with a full bucket (`burst` tokens); each
 * {@link TokenBucketLimiter.tryTake} spends one token; tokens refill at one per `intervalMs` up to
 * `burst`. Memory is bounded by `maxKeys` (least recently used key evicted, which hands that key a
 * fresh bucket if it returns: bound the keys you admit, e.g. to issuers you know, when that matters).
 */
export class TokenBucketLimiter {
  readonly #clock: { now(): number }
  readonly #intervalMs: number
  readonly #burst: number
  readonly #maxKeys: number
  readonly #buckets = new Map<string, Bucket>()

  /** @throws NodusError `INVALID_ARGUMENT` on a non-positive interval, burst or key bound */
  constructor(deps: TokenBucketDeps, options: TokenBucketOptions) {
    const maxKeys = options.maxKeys ?? 10_000
    if (!(options.intervalMs > 0) || !Number.isFinite(options.intervalMs)) {
      throw new NodusError('INVALID_ARGUMENT', 'rate limit intervalMs must be a positive number')
    }
    if (!Number.isSafeInteger(options.burst) || options.burst < 1) {
      throw new NodusError('INVALID_ARGUMENT', 'rate limit burst must be an integer ≥ 1')
    }
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) {
      throw new NodusError('INVALID_ARGUMENT', 'rate limit maxKeys must be an integer ≥ 1')
    }
    this.#clock = deps.clock
    this.#intervalMs = options.intervalMs
    this.#burst = options.burst
    this.#maxKeys = maxKeys
  }

  /** Number of keys tracked now (≤ `maxKeys`). */
  get size(): number {
    return this.#buckets.size
  }

  /** Tokens `key` has now (fractional), without spending any. */
  tokens(key: string): number {
    const b = this.#buckets.get(key)
    if (b === undefined) return this.#burst
    return this.#refilled(b, this.#clock.now())
  }

  /** Spend `cost` tokens (default 1) of `key`'s bucket: true when it had them, false (nothing spent) otherwise. */
  tryTake(key: string, cost = 1): boolean {
    const now = this.#clock.now()
    let b = this.#buckets.get(key)
    if (b === undefined) {
      b = { tokens: this.#burst, updatedMs: now }
      if (this.#buckets.size >= this.#maxKeys) {
        const oldest = this.#buckets.keys().next()
        if (oldest.done !== true) this.#buckets.delete(oldest.value)
      }
    } else {
      b.tokens = this.#refilled(b, now)
      b.updatedMs = Math.max(b.updatedMs, now)
      this.#buckets.delete(key) // re-insert below: Map order is the LRU order
    }
    this.#buckets.set(key, b)
    if (b.tokens < cost) return false
    b.tokens -= cost
    return true
  }

  /**
   * Like {@link tryTake} but throws when the bucket is empty.
   *
   * @throws NodusError `RATE_LIMITED` (peerAction `ignore`, `details.key`)
   */
  take(key: string, cost = 1): void {
    if (!this.tryTake(key, cost)) {
      throw new NodusError('RATE_LIMITED', `rate limit exceeded for ${key}`, {
        details: { key, intervalMs: this.#intervalMs, burst: this.#burst },
        peerAction: 'ignore',
      })
    }
  }

  /** Forget `key` (e.g. when a peer is banned its bucket no longer matters). */
  delete(key: string): void {
    this.#buckets.delete(key)
  }

  #refilled(b: Bucket, now: number): number {
    const elapsed = Math.max(0, now - b.updatedMs) // a clock that steps back refills nothing
    return Math.min(this.#burst, b.tokens + elapsed / this.#intervalMs)
  }
}

/** Options of {@link IssuerGate}. */
export interface IssuerGateOptions {
  /** One message per issuer per `intervalMs` on average. */
  intervalMs: number
  /** Messages an issuer may send back to back. */
  burst: number
  /** Issuers tracked (buckets and last sequence numbers); least recently used forgotten beyond it. */
  maxIssuers: number
}

/**
 * Admission for signed, sequenced messages per issuer (trust vectors, capacity reports): a replay check
 * (seq must grow) and a token bucket. Use it in two steps around signature verification:
 * {@link IssuerGate.check} before (cheap, spends nothing), {@link IssuerGate.commit} after the signature
 * verified. Tokens are spent only for verified messages, so forgeries naming an honest issuer cannot
 * drain its bucket. Forgetting an issuer (beyond `maxIssuers`) forgets its last seq too, which lets an
 * old message of it be replayed once within its freshness window; size `maxIssuers` above the number of
 * peers you expect.
 */
export class IssuerGate {
  readonly #limiter: TokenBucketLimiter
  readonly #lastSeq = new Map<string, number>()
  readonly #maxIssuers: number
  readonly #code: 'TRUST_VECTOR_INVALID' | 'CAPACITY_REPORT_INVALID'
  readonly #what: string

  constructor(
    deps: TokenBucketDeps,
    options: IssuerGateOptions,
    code: 'TRUST_VECTOR_INVALID' | 'CAPACITY_REPORT_INVALID',
    what: string,
  ) {
    this.#limiter = new TokenBucketLimiter(deps, { ...options, maxKeys: options.maxIssuers })
    this.#maxIssuers = options.maxIssuers
    this.#code = code
    this.#what = what
  }

  /** The last committed seq of `issuer`. */
  lastSeq(issuer: string): number | undefined {
    return this.#lastSeq.get(issuer)
  }

  /**
   * Would a message `seq` from `issuer` be admitted? Spends nothing.
   *
   * @throws NodusError `TRUST_VECTOR_INVALID` / `CAPACITY_REPORT_INVALID` (peerAction `ignore`) on a replay
   * @throws NodusError `RATE_LIMITED` (peerAction `ignore`)
   */
  check(issuer: string, seq: number): void {
    const last = this.#lastSeq.get(issuer)
    if (last !== undefined && seq <= last) {
      throw new NodusError(this.#code, `${this.#what}: seq ${seq} is not above ${last} (replay)`, {
        details: { issuer, seq, lastSeq: last, reason: 'replay' },
        peerAction: 'ignore',
      })
    }
    if (this.#limiter.tokens(issuer) < 1) {
      throw new NodusError('RATE_LIMITED', `${this.#what}s from ${issuer} exceed the rate limit`, {
        details: { issuer },
        peerAction: 'ignore',
      })
    }
  }

  /**
   * Admit a verified message: re-checks (another message may have been admitted meanwhile), spends a
   * token and records seq.
   *
   * @throws as {@link IssuerGate.check}
   */
  commit(issuer: string, seq: number): void {
    this.check(issuer, seq)
    this.#limiter.take(issuer)
    this.#lastSeq.delete(issuer)
    this.#lastSeq.set(issuer, seq)
    if (this.#lastSeq.size > this.#maxIssuers) {
      const oldest = this.#lastSeq.keys().next()
      if (oldest.done !== true) this.#lastSeq.delete(oldest.value)
    }
  }
}
