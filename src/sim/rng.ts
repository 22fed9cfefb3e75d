/**
 * Seeded pseudo-random numbers for the simulator.
 *
 * xoshiro128** (Blackman and Vigna, "Scrambled linear pseudorandom number generators", ACM TOMS 2021),
 * its 128-bit state filled from the seed by splitmix64 (Steele, Lea and Flood, OOPSLA 2014), as the
 * xoshiro authors recommend. 32-bit operations only, so it is fast in JavaScript. Every random choice
 * in src/sim/ comes from an {@link Rng} built from the run's `--seed`, so a seed fixes the output.
 */

/** What placement functions and other pluggable pieces may ask of a random source. */
export interface RandomSource {
  /** Uniform float in [0, 1), 32 bits of randomness. */
  nextFloat(): number
  /** Uniform integer in [0, n) for 1 <= n <= 2^32. */
  nextInt(n: number): number
}

const MASK64 = (1n << 64n) - 1n

/** splitmix64: one step from `state`, returns [nextState, output], both 64-bit. */
function splitmix64(state: bigint): [bigint, bigint] {
  const s = (state + 0x9e3779b97f4a7c15n) & MASK64
  let z = s
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64
  return [s, z ^ (z >> 31n)]
}

/** xoshiro128** generator. `new Rng(seed)`; `rng.fork(n)` gives an independent stream. */
export class Rng implements RandomSource {
  #a: number
  #b: number
  #c: number
  #d: number

  /**
   * @param seed a non-negative safe integer (the CLI's `--seed`)
   * @param stream an extra integer mixed into the seed, so sub-generators are independent
   */
  constructor(seed: number, stream = 0) {
    let s = (BigInt(seed) * 0x100000001b3n + BigInt(stream) * 0x9e3779b97f4a7c15n) & MASK64
    let out: bigint
    ;[s, out] = splitmix64(s)
    this.#a = Number(out & 0xffffffffn)
    this.#b = Number(out >> 32n)
    ;[s, out] = splitmix64(s)
    this.#c = Number(out & 0xffffffffn)
    this.#d = Number(out >> 32n)
    if ((this.#a | this.#b | this.#c | this.#d) === 0) this.#a = 1
  }

  /** Uniform unsigned 32-bit integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0
    const t = this.#b << 9
    this.#c ^= this.#a
    this.#d ^= this.#b
    this.#b ^= this.#c
    this.#a ^= this.#d
    this.#c ^= t
    this.#d = rotl(this.#d, 11)
    return result
  }

  nextFloat(): number {
    return this.nextU32() * 2.3283064365386963e-10
  }

  /** Float in (0, 1): never 0, for logarithms (exponential samples). */
  nextOpenFloat(): number {
    return (this.nextU32() + 0.5) * 2.3283064365386963e-10
  }

  nextInt(n: number): number {
    return Math.floor(this.nextFloat() * n)
  }

  /** Exponentially distributed sample with the given rate (mean 1/rate). */
  nextExp(rate: number): number {
    return -Math.log(this.nextOpenFloat()) / rate
  }

  /** A generator for sub-stream `stream` of this generator's seed material (consumes 2 outputs). */
  fork(stream: number): Rng {
    const hi = this.nextU32()
    const lo = this.nextU32()
    return new Rng(hi * 2 ** 21 + (lo >>> 11), stream)
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}
