/**
 * Seeded property tests (STYLE.md: "seeded and the seed printed on failure"). Every fast-check run in
 * test/ goes through {@link assertProperty}: it runs with the seed of {@link propertySeed}, the same on
 * every run unless `NODUS_SEED` says otherwise, and a failure names that seed (fast-check's own message
 * adds the path of the counterexample), so `NODUS_SEED=<seed> node --test <file>` replays it.
 */
import fc from 'fast-check'

/** The seed property tests use when `NODUS_SEED` is not set. */
export const DEFAULT_SEED = 0x5eed

/**
 * `NODUS_SEED` (a safe integer, decimal or `0x` hex) when set and not empty, else {@link DEFAULT_SEED}.
 *
 * @throws Error when `NODUS_SEED` is set to something else
 */
export function propertySeed(): number {
  const raw = process.env.NODUS_SEED
  if (raw === undefined || raw.trim() === '') return DEFAULT_SEED
  const seed = Number(raw)
  if (!Number.isSafeInteger(seed))
    throw new Error(`NODUS_SEED must be an integer, not ${JSON.stringify(raw)}`)
  return seed
}

/** fast-check's run parameters (`numRuns`, `endOnFailure`, ...), all but the seed, which is ours. */
export type PropertyOptions<Ts> = Omit<fc.Parameters<Ts>, 'seed'>

/** `options` with the seed of {@link propertySeed}, for `fc.assert`, `fc.check` or `fc.sample`. */
export function propertyOptions<Ts>(options: PropertyOptions<Ts> = {}): fc.Parameters<Ts> {
  return { ...options, seed: propertySeed() }
}

/** The failure, its message ending with the seed to replay it with (the original as `cause`). */
function withSeed(err: unknown, seed: number): Error {
  const message = err instanceof Error ? err.message : String(err)
  return new Error(`${message}\n\nfast-check seed ${seed}: replay with NODUS_SEED=${seed}`, { cause: err })
}

/**
 * `fc.assert(property, options)` with the seed of {@link propertySeed}; resolves (or returns) when the
 * property holds for every run.
 *
 * @throws Error whose message is fast-check's report (counterexample, seed and path) followed by the
 *   `NODUS_SEED` that replays it; fast-check's error is its `cause`
 */
export function assertProperty<Ts>(
  property: fc.IAsyncProperty<Ts>,
  options?: PropertyOptions<Ts>,
): Promise<void>
export function assertProperty<Ts>(property: fc.IProperty<Ts>, options?: PropertyOptions<Ts>): void
export function assertProperty<Ts>(
  property: fc.IRawProperty<Ts>,
  options: PropertyOptions<Ts> = {},
): Promise<void> | void {
  const params = propertyOptions(options)
  const seed = params.seed as number
  let result: Promise<void> | void
  try {
    result = fc.assert(property, params)
  } catch (err) {
    throw withSeed(err, seed)
  }
  if (result === undefined) return
  return result.catch((err: unknown) => {
    throw withSeed(err, seed)
  })
}
