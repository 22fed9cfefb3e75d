/**
 * A counting semaphore with no waiting queue: `tryAcquire` either takes a slot or says no.
 * Used where an overloaded node must answer "busy" instead of queueing without bound.
 */
export class Semaphore {
  readonly limit: number
  #inUse = 0

  constructor(limit: number) {
    this.limit = limit
  }

  get inUse(): number {
    return this.#inUse
  }

  /** Take a slot; returns a release function, or undefined when all `limit` slots are taken. */
  tryAcquire(): (() => void) | undefined {
    if (this.#inUse >= this.limit) return undefined
    this.#inUse++
    let released = false
    return () => {
      if (!released) {
        released = true
        this.#inUse--
      }
    }
  }
}

/**
 * Run `fn` over `items` with at most `concurrency` calls in flight; results keep input order.
 * The first rejection rejects the whole run (other in-flight calls still settle).
 */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i] as T, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return results
}
