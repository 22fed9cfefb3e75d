/**
 * Resolving a manifest from the first holders to answer (issue 22): the closest connected peers to
 * the manifest CID (its keepers, put.ts) are asked for it at once, the other connected peers whether
 * they hold it, and DHT providers once the connected peers had their chance; fetches go to holders as
 * they become known, a few at a time, and the first manifest that verifies wins. Nothing waits for
 * every asked peer: a holder that never answers, or sends bytes that do not verify against the CID,
 * costs one slot of `parallel` until its request fails or the race ends, not the get.
 *
 * Pure of the network: the peers, the fetch and the provider look-up are injected, so the racing is
 * unit-tested with a fake clock (test/storage/manifest-race.test.ts).
 */
import type { PeerId } from '@libp2p/interface'
import { NodusError } from '../../common/errors.ts'

/** What a race needs. `fetch` must verify what it returns (decodeManifest against the CID). */
export interface ManifestRaceDeps<T> {
  /** Connected peers to try, closest to the manifest CID first (XOR, responsibility.ts `closestTo`). */
  candidates: readonly PeerId[]
  /** Does `peer` say it holds the manifest? Rejects when it cannot say. */
  has(peer: PeerId, signal: AbortSignal): Promise<boolean>
  /** The manifest from `peer`, verified; rejects when `peer` has none, fails or sends bad bytes. */
  fetch(peer: PeerId, signal: AbortSignal): Promise<T>
  /** DHT providers of the manifest, as they are found (bounded by the caller's signal and deadline). */
  providers(signal: AbortSignal): AsyncIterable<PeerId>
  /** This node's PeerId string: never asked. */
  self: string
  /** Timers; default the global ones (tests pass `t.mock.timers` or their own). */
  setTimeout?: (f: () => void, ms: number) => unknown
  clearTimeout?: (handle: unknown) => void
}

/** How a race runs. */
export interface ManifestRaceOptions {
  /** The closest candidates asked for the manifest at once, without asking `has` first. Default 3. */
  direct: number
  /** Candidates asked `has` (after the direct ones), at most. Default 32. */
  maxAsked: number
  /** Manifest fetches in flight at once, at most. Default 3. */
  parallel: number
  /**
   * The DHT provider look-up starts this long after the race, ms, or sooner once every connected peer
   * asked has answered and no fetch is left. Default 1 000.
   */
  providerDelayMs: number
}

export const DEFAULT_MANIFEST_RACE_OPTIONS: Readonly<ManifestRaceOptions> = Object.freeze({
  direct: 3,
  maxAsked: 32,
  parallel: 3,
  providerDelayMs: 1_000,
})

/** A race's outcome: the manifest, the peer it came from, and the holders known by then. */
export interface ManifestRaceResult<T> {
  value: T
  from: PeerId
  /** Peers that said they hold it (`has`) or sent it, by the time it arrived; `from` is among them. */
  holders: PeerId[]
  /** Peers a fetch was started from. */
  tried: number
}

/**
 * Race for a manifest (see the file comment). Resolves with the first value `fetch` returns.
 *
 * @throws NodusError MANIFEST_NOT_FOUND when every candidate and provider was asked and none sent it
 * @throws the signal's reason when `signal` aborts first
 */
export function raceManifest<T>(
  deps: ManifestRaceDeps<T>,
  options: ManifestRaceOptions,
  signal: AbortSignal,
): Promise<ManifestRaceResult<T>> {
  const setTimer = deps.setTimeout ?? ((f: () => void, ms: number) => setTimeout(f, ms))
  const clearTimer = deps.clearTimeout ?? ((h: unknown) => clearTimeout(h as NodeJS.Timeout))
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    const ac = new AbortController()
    const inner = AbortSignal.any([signal, ac.signal])
    const queue: PeerId[] = []
    const queued = new Set<string>()
    const holders: PeerId[] = []
    let asking = 0
    let fetching = 0
    let tried = 0
    /** 'waiting': not started; 'running'; 'done': drained or failed. */
    let providers: 'waiting' | 'running' | 'done' = 'waiting'
    let done = false
    const end = (): void => {
      done = true
      ac.abort(new NodusError('ABORTED', 'manifest race over'))
      clearTimer(timer)
      signal.removeEventListener('abort', onAbort)
    }
    const onAbort = (): void => {
      if (done) return
      end()
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    const enqueue = (p: PeerId): void => {
      const key = p.toString()
      if (key === deps.self || queued.has(key)) return
      queued.add(key)
      queue.push(p)
    }
    const holder = (p: PeerId): void => {
      if (!holders.some((h) => h.equals(p))) holders.push(p)
    }
    const startProviders = (): void => {
      if (providers !== 'waiting' || done) return
      providers = 'running'
      void (async () => {
        try {
          for await (const p of deps.providers(inner)) {
            if (done) return
            enqueue(p)
            pump()
          }
        } catch {
          // A failed or timed-out look-up is one source fewer.
        }
        providers = 'done'
        pump()
      })()
    }
    const pump = (): void => {
      if (done) return
      while (fetching < options.parallel && queue.length > 0) {
        const p = queue.shift() as PeerId
        fetching++
        tried++
        deps.fetch(p, inner).then(
          (value) => {
            fetching--
            if (done) return
            holder(p)
            end()
            resolve({ value, from: p, holders: [...holders], tried })
          },
          () => {
            fetching--
            pump()
          },
        )
      }
      if (asking === 0 && fetching === 0 && queue.length === 0) {
        // The connected peers had their chance: the DHT now, or nothing is left.
        if (providers === 'waiting') startProviders()
        else if (providers === 'done') {
          end()
          reject(
            new NodusError('MANIFEST_NOT_FOUND', 'no peer could supply the manifest', {
              details: { tried, asked: Math.min(deps.candidates.length, options.maxAsked + options.direct) },
            }),
          )
        }
      }
    }
    const timer = setTimer(startProviders, options.providerDelayMs)
    const others = deps.candidates.filter((p) => p.toString() !== deps.self)
    for (const p of others.slice(0, options.direct)) enqueue(p)
    for (const p of others.slice(options.direct, options.direct + options.maxAsked)) {
      asking++
      deps.has(p, inner).then(
        (yes) => {
          asking--
          if (done) return
          if (yes) {
            holder(p)
            enqueue(p)
          }
          pump()
        },
        () => {
          asking--
          pump()
        },
      )
    }
    pump()
  })
}
