import { NodusError } from './errors.ts'

/**
 * A queue whose items are processed in batches, one batch at a time, with a fixed maximum of waiting
 * items: `push` refuses with QUEUE_FULL instead of growing without bound. Before each batch is cut,
 * `gate(oldest)` is awaited, so items that arrive while it waits join that batch.
 */
export class BatchQueue<T> {
  readonly #run: (items: T[]) => Promise<void>
  readonly #gate: (oldest: T, signal: AbortSignal) => Promise<void>
  readonly #batchSize: number
  readonly #maxPending: number
  readonly #onError: ((err: unknown, items: T[]) => void) | undefined
  readonly #pending: T[] = []
  readonly #stopping = new AbortController()
  #running: Promise<void> | undefined

  /**
   * @param run processes one batch; a rejection goes to `onError` and never stops the queue
   * @param options.batchSize items per batch at most (≥ 1)
   * @param options.maxPending items waiting at most; more throw QUEUE_FULL
   * @param options.gate awaited before each batch is cut (default: none); its signal aborts on stop()
   */
  constructor(
    run: (items: T[]) => Promise<void>,
    options: {
      batchSize: number
      maxPending: number
      gate?: (oldest: T, signal: AbortSignal) => Promise<void>
      onError?: (err: unknown, items: T[]) => void
    },
  ) {
    this.#run = run
    this.#gate = options.gate ?? (async () => {})
    this.#batchSize = Math.max(1, options.batchSize)
    this.#maxPending = options.maxPending
    this.#onError = options.onError
  }

  /** Items waiting (not in the batch being processed). */
  get size(): number {
    return this.#pending.length
  }

  /** Add an item. Throws QUEUE_FULL when `maxPending` items already wait. Ignored after `stop()`. */
  push(item: T): void {
    if (this.#stopping.signal.aborted) return
    if (this.#pending.length >= this.#maxPending) {
      throw new NodusError('QUEUE_FULL', 'queue is full', { details: { maxPending: this.#maxPending } })
    }
    this.#pending.push(item)
    this.#kick()
  }

  /** Start the loop unless it runs; restart it if items arrived as it was finishing. */
  #kick(): void {
    if (this.#running !== undefined) return
    this.#running = this.#loop().finally(() => {
      this.#running = undefined
      if (this.#pending.length > 0 && !this.#stopping.signal.aborted) this.#kick()
    })
  }

  async #loop(): Promise<void> {
    const signal = this.#stopping.signal
    while (this.#pending.length > 0 && !signal.aborted) {
      try {
        await this.#gate(this.#pending[0] as T, signal)
      } catch {
        if (signal.aborted) return
      }
      if (signal.aborted) return
      const batch = this.#pending.splice(0, this.#batchSize)
      try {
        await this.#run(batch)
      } catch (err) {
        this.#onError?.(err, batch)
      }
    }
  }

  /** Resolves once no batch is being processed. */
  async onIdle(): Promise<void> {
    while (this.#running !== undefined) await this.#running
  }

  /** Drop waiting items and refuse new ones; aborts the gate; resolves when the running batch ends. */
  async stop(): Promise<void> {
    this.#stopping.abort(new NodusError('ABORTED', 'queue stopped'))
    this.#pending.length = 0
    await this.onIdle()
  }
}
