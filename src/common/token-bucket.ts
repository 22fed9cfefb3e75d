/**
 * A token bucket per key, bounded in the number of keys, with an injected clock.
 *
 * Used to rate-limit signed records per signer before their signature is checked (verifying is the
 * expensive part; src/crypto/signed-record-inbox.ts). Pure apart from the clock: tests advance a fake
 * one. Limits per forwarding connection belong to the network layer, not here.
 */
import type { Clock } from './clock.ts'
import { NodusError } from './errors.ts'

/** What the limiter needs from its surroundings. */
export interface TokenBucketDeps {
  /** Milliseconds; the system clock in production, a fake clock in tests. */
  clock: Clock
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
  readonly #clock: Clock
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
