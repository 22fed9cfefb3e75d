/**
 * A bounded replay window: the ids of messages accepted recently, each kept until it expires (for a
 * sealed message, `sentAt + maxAgeMs`: after that the freshness check alone refuses a copy).
 *
 * Bound: at most `maxIds` ids. When full, the id that expires first is forgotten early and the
 * window's floor rises to its expiry: from then on any message expiring at or before the floor is
 * refused as `below-floor` (it may be a copy of a forgotten id). So a flood can make the window refuse
 * older messages early, but never makes it accept a replay. Memory: about 150 bytes per id.
 * Expired ids are dropped as time passes (a min-heap by expiry, O(log n) per id).
 *
 * A holder that keeps the window on disk (src/messaging/direct-store.ts) rebuilds it with {@link add}
 * and {@link raiseFloor}, is told of every id that leaves it (`onForget`) and takes back an id whose
 * write failed ({@link forget}).
 */
import { NodusError } from '../common/errors.ts'

/** Default bound of a {@link ReplayWindow}. */
export const DEFAULT_REPLAY_WINDOW_MAX_IDS = 65_536

/** `fresh`: not seen. `seen`: accepted before and not expired. `below-floor`: may be a forgotten id. */
export type ReplayVerdict = 'fresh' | 'seen' | 'below-floor'

interface Entry {
  key: string
  expiresAtMs: number
}

export interface ReplayWindowOptions {
  /** Most ids kept, ≥ 1. */
  maxIds: number
  /**
   * Called with the key (lower-case hex) of every id that leaves the window because it expired or was
   * evicted (the floor then rises first), not for {@link ReplayWindow.forget}. Default: nothing.
   */
  onForget?: (key: string) => void
}

export class ReplayWindow {
  readonly maxIds: number
  readonly #onForget: ((key: string) => void) | undefined
  /** Key → expiry. The heap may also hold stale entries (forgotten ids): an entry counts only while it matches. */
  readonly #ids = new Map<string, number>()
  /** Min-heap of entries by expiry. */
  readonly #heap: Entry[] = []
  #floorMs = Number.NEGATIVE_INFINITY

  /** @throws NodusError `INVALID_ARGUMENT` when `maxIds` is not a positive safe integer */
  constructor(options: ReplayWindowOptions) {
    if (!Number.isSafeInteger(options.maxIds) || options.maxIds < 1)
      throw new NodusError('INVALID_ARGUMENT', 'replay window: maxIds must be a positive integer')
    this.maxIds = options.maxIds
    this.#onForget = options.onForget
  }

  /** Ids held now. */
  get size(): number {
    return this.#ids.size
  }

  /** Expiry (ms) at or below which messages are refused as `below-floor`; −∞ until the window overflowed. */
  get floorMs(): number {
    return this.#floorMs
  }

  /**
   * Whether a message with `id` expiring at `expiresAtMs` may be accepted, at `nowMs`. Does not
   * remember it: call {@link add} once the message passed every other check.
   */
  check(id: Uint8Array | string, expiresAtMs: number, nowMs: number): ReplayVerdict {
    this.#prune(nowMs)
    if (this.#ids.has(keyOf(id))) return 'seen'
    if (expiresAtMs <= this.#floorMs) return 'below-floor'
    return 'fresh'
  }

  /**
   * Remember `id` until `expiresAtMs` (nothing when that is not after `nowMs`, or it is already
   * held). When the window is full, the id that expires first is forgotten and the floor rises.
   */
  add(id: Uint8Array | string, expiresAtMs: number, nowMs: number): void {
    this.#prune(nowMs)
    if (expiresAtMs <= nowMs) return
    const key = keyOf(id)
    if (this.#ids.has(key)) return
    while (this.#ids.size >= this.maxIds) {
      const evicted = this.#pop()
      if (evicted === undefined) break
      if (!this.#live(evicted)) continue
      this.#ids.delete(evicted.key)
      this.#floorMs = Math.max(this.#floorMs, evicted.expiresAtMs)
      this.#onForget?.(evicted.key)
    }
    this.#ids.set(key, expiresAtMs)
    this.#push({ key, expiresAtMs })
  }

  /**
   * Take back an id {@link add}ed (its message was not kept after all): it is `fresh` again. The floor
   * stays where it is (ids evicted to make room for it stay forgotten: that only refuses more).
   * @returns whether it was held
   */
  forget(id: Uint8Array | string): boolean {
    return this.#ids.delete(keyOf(id))
  }

  /** Raise the floor to `floorMs` (a floor kept on disk, when the window is rebuilt); never lowers it. */
  raiseFloor(floorMs: number): void {
    if (floorMs > this.#floorMs) this.#floorMs = floorMs
  }

  /** Drop the ids that expired by `nowMs` (also done by {@link check} and {@link add}). */
  prune(nowMs: number): void {
    this.#prune(nowMs)
  }

  /** Is the heap entry the id's current one (not left behind by {@link forget})? */
  #live(e: Entry): boolean {
    return this.#ids.get(e.key) === e.expiresAtMs
  }

  #prune(nowMs: number): void {
    for (let top = this.#heap[0]; top !== undefined && top.expiresAtMs <= nowMs; top = this.#heap[0]) {
      this.#pop()
      if (!this.#live(top)) continue
      this.#ids.delete(top.key)
      this.#onForget?.(top.key)
    }
  }

  #push(entry: Entry): void {
    const h = this.#heap
    h.push(entry)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = h[parent] as Entry
      if (p.expiresAtMs <= entry.expiresAtMs) break
      h[i] = p
      i = parent
    }
    h[i] = entry
  }

  #pop(): Entry | undefined {
    const h = this.#heap
    const top = h[0]
    const last = h.pop()
    if (top === undefined || last === undefined || h.length === 0) return top
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= h.length) break
      const r = l + 1
      const child = r < h.length && (h[r] as Entry).expiresAtMs < (h[l] as Entry).expiresAtMs ? r : l
      const c = h[child] as Entry
      if (c.expiresAtMs >= last.expiresAtMs) break
      h[i] = c
      i = child
    }
    h[i] = last
    return top
  }
}

/** An id's key: its bytes in lower-case hex (a string id is taken as that already). */
function keyOf(id: Uint8Array | string): string {
  return typeof id === 'string' ? id : Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex')
}
