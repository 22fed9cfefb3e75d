/**
 * A bounded pool of worker threads (piscina) that verifies signatures off the event loop, many per
 * task: Ed25519 verification costs about 120 µs (hybrid about 400 µs) of CPU, so a node applying
 * thousands of signed operations a second would otherwise spend its event loop on it.
 *
 * Batching: checks submitted one by one ({@link VerifyPool.verify}) join the open batch, which leaves
 * at the end of the event-loop turn (setImmediate) or when it holds `maxBatch` checks; a batch of at
 * most `inlineMaxBatch` checks leaving at the end of a turn while no task is in flight is verified
 * inline instead. At most two
 * tasks per worker are in flight; beyond that checks wait and batches fill up, so under load each
 * message between threads carries a full batch and its cost is spread over many checks.
 *
 * Bounds: at most `maxQueued` checks wait or are in flight; beyond that a check fails at once with
 * `QUEUE_FULL`. With `threads: 0` checks are verified inline, on the calling thread, with the same
 * interface (for a one-core machine, or where the pool does not pay: bench/verify-pool.bench.ts).
 *
 * Workers start when there is work and exit after a minute without (an idle node keeps none).
 * A wrong signature is an answer (`false`), never an error.
 */
import { Piscina } from 'piscina'
import { type AbortOptions, throwIfAborted } from '../common/abort.ts'
import { NodusError } from '../common/errors.ts'
import { type SignatureCheck, SignatureVerifier } from './signature-check.ts'
import { packChecks } from './verify-batch.ts'

export interface VerifyPoolOptions {
  /** Worker threads (`kv.verifyThreads`); 0 verifies inline on the calling thread. */
  threads: number
  /** Most checks in one task (`kv.verifyBatchSize`), ≥ 1. */
  maxBatch: number
  /** Most checks waiting or in flight at once (`kv.verifyQueueMax`); beyond it QUEUE_FULL. */
  maxQueued: number
  /**
   * A batch leaving at the end of a turn with at most this many checks, while no worker task is in
   * flight, is verified inline instead (default 0: never): a worker round trip costs about as much
   * CPU as two Ed25519 checks and adds its latency (docs/BENCHMARKS.md, issue 21).
   */
  inlineMaxBatch?: number
}

interface Pending {
  check: SignatureCheck
  resolve(valid: boolean): void
  reject(err: unknown): void
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
  settled: boolean
}

/**
 * A worker with nothing to verify for this long exits (each holds about 15 MB of RSS); the next
 * check starts one again (about 50 ms).
 */
const IDLE_WORKER_MS = 60_000

/** Tasks in flight per worker: one running, one ready to start as soon as it ends. */
const TASKS_PER_WORKER = 2

// The worker module next to this one: .ts when run from source, .js when compiled (dist/).
const WORKER = new URL(`./verify-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url)

function closedError(): NodusError {
  return new NodusError('ABORTED', 'the signature verification pool is closed')
}

/** Verifies {@link SignatureCheck}s in worker threads, batched and bounded (see the module doc). */
export class VerifyPool {
  readonly #options: VerifyPoolOptions
  readonly #pool: Piscina | undefined
  readonly #inline = new SignatureVerifier()
  /** Checks not yet sent to a worker, oldest first. */
  #waiting: Pending[] = []
  /** Checks sent to a worker whose task has not ended. */
  #sent = 0
  #tasks = 0
  #flushScheduled = false
  #inlineVerified = 0
  #closed = false
  #drained: Promise<void>[] = []

  /** @throws NodusError `INVALID_ARGUMENT` on options out of range */
  constructor(options: VerifyPoolOptions) {
    const { threads, maxBatch, maxQueued } = options
    if (!Number.isSafeInteger(threads) || threads < 0 || !Number.isSafeInteger(maxBatch) || maxBatch < 1)
      throw new NodusError('INVALID_ARGUMENT', 'verify pool: threads must be ≥ 0 and maxBatch ≥ 1')
    if (!Number.isSafeInteger(maxQueued) || maxQueued < 1)
      throw new NodusError('INVALID_ARGUMENT', 'verify pool: maxQueued must be ≥ 1')
    this.#options = { ...options }
    this.#pool =
      threads === 0
        ? undefined
        : new Piscina({
            filename: WORKER.href,
            minThreads: 0,
            maxThreads: threads,
            idleTimeout: IDLE_WORKER_MS,
          })
  }

  /** Checks waiting or in flight (the queue depth, for a gauge). */
  get queued(): number {
    return this.#waiting.length + this.#sent
  }

  /** Checks verified inline by `inlineMaxBatch` so far (a pool of 0 threads not counted). */
  get inlineVerified(): number {
    return this.#inlineVerified
  }

  /** Worker threads (0: inline). */
  get threads(): number {
    return this.#options.threads
  }

  /**
   * Verify one signature; it joins the batch of this event-loop turn.
   *
   * @returns true when it verifies, false when it does not (or is malformed)
   * @throws NodusError `QUEUE_FULL` when `maxQueued` checks wait or are in flight; `ABORTED` (or the
   *   signal's NodusError reason) when `options.signal` aborts before the answer, or the pool closes
   */
  verify(check: SignatureCheck, options: AbortOptions = {}): Promise<boolean> {
    try {
      throwIfAborted(options.signal)
      if (this.#closed) throw closedError()
      if (this.#pool === undefined) return Promise.resolve(this.#inline.verify(check))
      if (this.queued >= this.#options.maxQueued) {
        throw new NodusError('QUEUE_FULL', 'the signature verification queue is full', {
          details: { maxQueued: this.#options.maxQueued },
        })
      }
    } catch (err) {
      return Promise.reject(err)
    }
    return new Promise<boolean>((resolve, reject) => {
      const p: Pending = {
        check,
        resolve,
        reject,
        signal: options.signal,
        onAbort: undefined,
        settled: false,
      }
      if (p.signal !== undefined) {
        const signal = p.signal
        p.onAbort = () => {
          try {
            throwIfAborted(signal)
          } catch (err) {
            this.#settle(p, err)
          }
        }
        signal.addEventListener('abort', p.onAbort, { once: true })
      }
      this.#waiting.push(p)
      if (this.#waiting.length >= this.#options.maxBatch) this.#dispatch()
      else this.#scheduleFlush()
    })
  }

  /**
   * Verify many signatures; answers in the order of `checks`. All or nothing against the bound: when
   * fewer than `checks.length` places are free, none is queued.
   *
   * @throws as {@link verify}
   */
  verifyMany(checks: readonly SignatureCheck[], options: AbortOptions = {}): Promise<boolean[]> {
    if (this.#pool !== undefined && this.queued + checks.length > this.#options.maxQueued) {
      return Promise.reject(
        new NodusError('QUEUE_FULL', 'the signature verification queue is full', {
          details: { maxQueued: this.#options.maxQueued, asked: checks.length },
        }),
      )
    }
    return Promise.all(checks.map((c) => this.verify(c, options)))
  }

  /**
   * Stop: checks not yet sent fail with `ABORTED`, tasks in flight finish (their answers delivered),
   * then the workers exit. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      for (const p of this.#waiting.splice(0)) this.#settle(p, closedError())
    }
    await Promise.all(this.#drained)
    await this.#pool?.destroy()
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    setImmediate(() => {
      this.#flushScheduled = false
      if (this.#tasks === 0 && this.#waiting.length <= (this.#options.inlineMaxBatch ?? 0)) {
        for (const p of this.#waiting.splice(0)) {
          if (p.settled) continue
          this.#inlineVerified++
          this.#settle(p, undefined, this.#inline.verify(p.check))
        }
        return
      }
      this.#dispatch()
    })
  }

  /** Send batches while workers have room. */
  #dispatch(): void {
    const pool = this.#pool
    if (pool === undefined) return
    while (this.#tasks < this.#options.threads * TASKS_PER_WORKER) {
      const batch: Pending[] = []
      while (batch.length < this.#options.maxBatch && this.#waiting.length > 0) {
        const p = this.#waiting.shift() as Pending
        if (!p.settled) batch.push(p)
      }
      if (batch.length === 0) return
      this.#send(pool, batch)
    }
  }

  #send(pool: Piscina, batch: Pending[]): void {
    const { packed, malformed } = packChecks(batch.map((p) => p.check))
    const skip = new Set(malformed)
    this.#tasks++
    this.#sent += batch.length
    const done = pool
      .run(packed, { transferList: [packed.buffer as ArrayBuffer] })
      .then(
        (answers: Uint8Array) => {
          let k = 0
          for (const [i, p] of batch.entries()) {
            if (skip.has(i)) this.#settle(p, undefined, false)
            else this.#settle(p, undefined, answers[k++] === 1)
          }
        },
        (err: unknown) => {
          const why = new NodusError('ABORTED', 'a signature verification worker failed', { cause: err })
          for (const p of batch) this.#settle(p, this.#closed ? closedError() : why)
        },
      )
      .finally(() => {
        this.#tasks--
        this.#sent -= batch.length
        this.#drained = this.#drained.filter((d) => d !== done)
        if (!this.#closed) this.#dispatch()
      })
    this.#drained.push(done)
  }

  #settle(p: Pending, err: unknown, valid = false): void {
    if (p.settled) return
    p.settled = true
    if (p.onAbort !== undefined) p.signal?.removeEventListener('abort', p.onAbort)
    if (err === undefined) p.resolve(valid)
    else p.reject(err)
  }
}
