/**
 * Provider records for the blocks this node stores, announced in the background in batches
 * (net/provide-batch.ts), and only once the node is quiet: no shard served for {@link ANNOUNCE_QUIET_MS}
 * and no put or get of its own running (or once a record has waited {@link ANNOUNCE_MAX_DEFER_MS}).
 * Announcing is many small DHT RPCs, and on a busy node they would compete with the transfers they
 * describe. (Measured on a 16-process devnet: announcing during a put cut it from 28 to 6 MB/s.)
 */
import type { CID } from 'multiformats/cid'
import { withDeadline } from '../../common/abort.ts'
import { BatchQueue } from '../../common/batch-queue.ts'
import type { Clock } from '../../common/clock.ts'
import { isNodusError } from '../../common/errors.ts'
import type { Logger } from '../../common/logger.ts'
import { announceBatch, type ProvideBatchDeps } from '../../net/index.ts'
import { cidToString } from '../codec/cid.ts'

/** Announce provider records only after this long without shard traffic, ms. */
export const ANNOUNCE_QUIET_MS = 2_000
/** ...or once a record has waited this long, ms. */
export const ANNOUNCE_MAX_DEFER_MS = 60_000
/** Provider records announced together: lookups and streams are shared. */
const PROVIDE_BATCH = 512
/** Provider records waiting at most; beyond it a record is skipped (logged). */
const MAX_PENDING = 100_000

/** What {@link Provider} needs. */
export interface ProviderDeps {
  /** Batched announcing (net's `provideBatchDepsFor`); undefined: one kad-dht provide per key. */
  batch: ProvideBatchDeps | undefined
  /** kad-dht's own provide, used when `batch` is undefined. */
  provide(cid: CID, options: { signal: AbortSignal }): Promise<void>
  /** Is the node quiet: no own put or get running, no shard request in flight or served lately? */
  activity(): { transfers: number; inFlight: number; lastActivityMs: number }
  clock: Clock
  logger: Logger
  metrics?: { providerRecords: { inc(n: number): void }; providerLookups: { inc(n: number): void } }
}

/** The bounded queue of provider records to announce. `stop()` aborts the batch in flight. */
export class Provider {
  readonly #deps: ProviderDeps
  readonly #queue: BatchQueue<{ cid: CID; at: number }>
  readonly #lifetime = new AbortController()

  constructor(deps: ProviderDeps) {
    this.#deps = deps
    const { clock, logger } = deps
    this.#queue = new BatchQueue(
      async (items) => {
        const signal = this.#lifetime.signal
        if (deps.batch === undefined) {
          // kad-dht's internals differ from 16.x: one provide per key, as kad-dht does it.
          for (const { cid } of items) {
            using deadline = withDeadline(signal, 30_000, 'provide')
            await deps
              .provide(cid, { signal: deadline.signal })
              .catch((err: unknown) =>
                logger.debug({ cid: cidToString(cid), err: (err as Error).message }, 'provide failed'),
              )
          }
          return
        }
        const r = await announceBatch(
          deps.batch,
          items.map((i) => i.cid),
          signal,
        )
        deps.metrics?.providerRecords.inc(r.records)
        deps.metrics?.providerLookups.inc(r.lookups)
        logger.debug(r, 'provider records announced')
      },
      {
        batchSize: PROVIDE_BATCH,
        maxPending: MAX_PENDING,
        gate: async ({ at }, signal) => {
          const quiet = (): boolean => {
            const a = deps.activity()
            return a.transfers === 0 && a.inFlight === 0 && clock.now() - a.lastActivityMs > ANNOUNCE_QUIET_MS
          }
          await waitUntil(quiet, at + ANNOUNCE_MAX_DEFER_MS - clock.now(), clock, signal)
        },
        onError: (err, items) =>
          logger.debug({ keys: items.length, err: (err as Error).message }, 'provide batch failed'),
      },
    )
  }

  /** Provider records waiting to be announced. */
  get size(): number {
    return this.#queue.size
  }

  /** Queue `cid` for announcing (bounded: a full queue skips it, logged). Never throws. */
  announce(cid: CID): void {
    try {
      this.#queue.push({ cid, at: this.#deps.clock.now() })
    } catch (err) {
      this.#deps.logger.warn(
        { cid: cidToString(cid), code: isNodusError(err) ? err.code : 'unknown' },
        'provide queue full; skipped',
      )
    }
  }

  /** Abort the batch in flight and drop what waits. Idempotent. */
  async stop(): Promise<void> {
    this.#lifetime.abort(new Error('node stopping'))
    await this.#queue.stop()
  }
}

/** Resolve once `cond()` holds (checked every 200 ms) or after `maxWaitMs`; reject when `signal` aborts. */
async function waitUntil(
  cond: () => boolean,
  maxWaitMs: number,
  clock: Clock,
  signal: AbortSignal,
): Promise<void> {
  const deadline = clock.now() + maxWaitMs
  while (!cond() && clock.now() < deadline) {
    signal.throwIfAborted()
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 200)
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t)
          resolve()
        },
        { once: true },
      )
    })
  }
  signal.throwIfAborted()
}
