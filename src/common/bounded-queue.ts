import { NodusError } from './errors.ts'

/**
 * A job queue with a fixed concurrency and a fixed maximum of waiting jobs. `push` refuses with
 * QUEUE_FULL instead of growing without bound; `onIdle` resolves once nothing runs or waits.
 */
export class BoundedQueue<T> {
  readonly #run: (item: T) => Promise<void>
  readonly #concurrency: number
  readonly #maxPending: number
  readonly #pending: T[] = []
  #active = 0
  #idle: (() => void)[] = []
  #stopped = false

  /**
   * @param run the job; its rejection is reported to `onError` and never stops the queue
   * @param concurrency jobs running at once (≥ 1)
   * @param maxPending jobs waiting at most; more throw QUEUE_FULL
   */
  constructor(
    run: (item: T) => Promise<void>,
    concurrency: number,
    maxPending: number,
    onError?: (err: unknown, item: T) => void,
  ) {
    this.#run = async (item: T) => {
      try {
        await run(item)
      } catch (err) {
        onError?.(err, item)
      }
    }
    this.#concurrency = concurrency
    this.#maxPending = maxPending
  }

  /** Jobs waiting (not running). */
  get size(): number {
    return this.#pending.length
  }

  /** Jobs running. */
  get active(): number {
    return this.#active
  }

  /** Add a job. Throws QUEUE_FULL when `maxPending` jobs already wait. Ignored after `stop()`. */
  push(item: T): void {
    if (this.#stopped) return
    if (this.#pending.length >= this.#maxPending) {
      throw new NodusError('QUEUE_FULL', 'queue is full', { details: { maxPending: this.#maxPending } })
    }
    this.#pending.push(item)
    this.#next()
  }

  #next(): void {
    while (this.#active < this.#concurrency && this.#pending.length > 0) {
      const item = this.#pending.shift() as T
      this.#active++
      void this.#run(item).finally(() => {
        this.#active--
        this.#next()
        if (this.#active === 0 && this.#pending.length === 0) {
          for (const r of this.#idle.splice(0)) r()
        }
      })
    }
  }

  /** Resolves when no job runs or waits. */
  onIdle(): Promise<void> {
    if (this.#active === 0 && this.#pending.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  /** Drop waiting jobs and refuse new ones; resolves when running jobs finish. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#pending.length = 0
    await this.onIdle()
  }
}
