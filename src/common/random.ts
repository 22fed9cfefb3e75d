/**
 * Randomness, injected: areas draw random numbers and bytes through a `Random` in their deps, so
 * tests can pass a seeded one ({@link seededRandom}). {@link systemRandom} is the production source.
 */
import { randomBytes } from 'node:crypto'
import { mulberry32 } from './prng.ts'

export interface Random {
  /** `n` random bytes (cryptographically strong in {@link systemRandom}). */
  bytes(n: number): Uint8Array
  /** A uniform number in [0, 1) (as `Math.random()`); not for keys or nonces. */
  next(): number
}

/** node:crypto bytes and `Math.random()`. */
export const systemRandom: Random = {
  bytes: (n) => randomBytes(n),
  next: () => Math.random(),
}

/**
 * A reproducible source (mulberry32) for tests and simulations. Its bytes are NOT cryptographically
 * strong: never use it for keys or nonces outside tests.
 */
export function seededRandom(seed: number): Random {
  const next = mulberry32(seed)
  return {
    next,
    bytes: (n) => {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256)
      return out
    },
  }
}
