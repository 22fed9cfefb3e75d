/**
 * The replay window of direct messages, kept on disk so that a message's id is refused as long as the
 * message would open: after it was deleted from the inbox and across restarts (docs/PROTOCOLS.md,
 * "The inbox").
 *
 * Two LMDB databases of the direct-message environment (direct-store.ts): `seen`, message id (hex) →
 * `expiresAtMs` (`replayExpiryMs` of src/crypto/sealed-message.ts: the first ms at which the message
 * is refused as stale), and `meta` key `replayFloorMs`. In memory, a {@link ReplayWindow} of at most
 * `maxIds` ids, rebuilt from them on open, decides; `seen` mirrors it. Each commit writes the ids it
 * takes, deletes the ids the window forgot since the last commit (expired, or evicted when full) and
 * writes a raised floor, in one transaction, so at every commit each id taken and not expired is in
 * `seen` or expires at or below the stored floor (refused as `below-floor`). Not `seen` yet on disk:
 * only ids forgotten (expired or evicted) since the last commit, so on disk there are at most `maxIds`
 * ids plus those expired since (deleted by the next commit or {@link StoredReplayWindow.prune}).
 */
import type { Database } from 'lmdb'
import { type ReplayVerdict, ReplayWindow } from '../crypto/index.ts'

/** The `meta` key of the window's floor. */
const FLOOR_KEY = 'replayFloorMs'

/** An id to remember and until when (ms since the Unix epoch). */
export interface SeenId {
  /** Message id, lower-case hex. */
  id: string
  expiresAtMs: number
}

/** The replay window of the inbox, in memory and in LMDB (`seen`, `meta`). */
export class StoredReplayWindow {
  readonly #seen: Database
  readonly #meta: Database
  readonly #window: ReplayWindow
  /** Ids the window forgot (expired, evicted) that `seen` still holds: deleted by the next commit. */
  readonly #drops = new Set<string>()
  /** The floor in `meta` (−∞: none). */
  #floorWritten: number

  /**
   * Rebuild the window from `seen` and `meta` (one scan of `seen`, in expiry order, so a window over a
   * lowered `maxIds` forgets the ids expiring first and raises its floor).
   */
  constructor(seen: Database, meta: Database, maxIds: number) {
    this.#seen = seen
    this.#meta = meta
    this.#window = new ReplayWindow({ maxIds, onForget: (key) => this.#drops.add(key) })
    const held: SeenId[] = []
    for (const { key, value } of seen.getRange())
      held.push({ id: key as string, expiresAtMs: value as number })
    held.sort((x, y) => x.expiresAtMs - y.expiresAtMs)
    for (const h of held) this.#window.add(h.id, h.expiresAtMs, Number.NEGATIVE_INFINITY)
    this.#floorWritten = (meta.get(FLOOR_KEY) as number | undefined) ?? Number.NEGATIVE_INFINITY
    this.#window.raiseFloor(this.#floorWritten)
  }

  /** May a message with `id` (hex) expiring at `expiresAtMs` be taken, at `nowMs`? (`ReplayWindow.check`) */
  check(id: string, expiresAtMs: number, nowMs: number): ReplayVerdict {
    return this.#window.check(id, expiresAtMs, nowMs)
  }

  /** Remember `id` now, before its commit (a copy arriving meanwhile is `seen`); {@link commit} writes it. */
  add(id: string, expiresAtMs: number, nowMs: number): void {
    this.#window.add(id, expiresAtMs, nowMs)
  }

  /**
   * Issue `writes()` (the caller's puts), the puts of `taken` and the window's pending changes in this
   * turn of the event loop (lmdb-js commits them as one transaction), then wait for the commit and for
   * `flushed`. When that fails, `taken` are forgotten again (not remembered) and the pending changes
   * are kept for the next commit; it throws what LMDB threw.
   */
  async commit(
    writes: () => Promise<unknown>[],
    taken: readonly SeenId[],
    flushed: () => Promise<void>,
  ): Promise<void> {
    const floor = this.#window.floorMs
    const drops = [...this.#drops]
    this.#drops.clear()
    try {
      const done = writes()
      for (const t of taken) done.push(this.#seen.put(t.id, t.expiresAtMs))
      // An id forgotten is never taken again (evicted: below the floor; expired: stale), so deleting it is safe.
      for (const k of drops) done.push(this.#seen.remove(k))
      if (floor > this.#floorWritten) done.push(this.#meta.put(FLOOR_KEY, floor))
      await Promise.all(done)
      await flushed()
      if (floor > this.#floorWritten) this.#floorWritten = floor
    } catch (err) {
      for (const t of taken) this.#window.forget(t.id)
      for (const k of drops) this.#drops.add(k)
      throw err
    }
  }

  /** Forget the ids expired by `nowMs`, in memory and on disk (durably). @returns how many were deleted from disk */
  async prune(nowMs: number, flushed: () => Promise<void>): Promise<number> {
    this.#window.prune(nowMs)
    const n = this.#drops.size
    if (n > 0 || this.#window.floorMs > this.#floorWritten) await this.commit(() => [], [], flushed)
    return n
  }

  /** Ids held in memory, ids in `seen`, and the floor (ms; −∞ until the window overflowed). */
  state(): { ids: number; storedIds: number; floorMs: number } {
    return { ids: this.#window.size, storedIds: this.#seen.getKeysCount(), floorMs: this.#window.floorMs }
  }
}
