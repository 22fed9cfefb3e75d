/**
 * mulberry32 (Tommy Ettinger, 2017): a small, fast seeded PRNG with 32 bits of state. For
 * reproducible choices (placement tie-breaking, chaos schedules, tests), never for keys or nonces.
 * @param seed any integer; only its low 32 bits are used
 * @returns a function giving uniform numbers in [0, 1)
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
