/**
 * Delivery order and de-duplication per (publisher, topic) on the receiving side.
 *
 * Every message has an id, (publisher, topic, seq); a publisher numbers its messages to a topic
 * 1 by 1 within a session, and a new session starts above every seq it used before (the batcher starts
 * each session at its clock's ms × 1000), naming its first seq (`sessionStart`) in every batch.
 * This inbox delivers each message at most once and in seq order per publisher and topic:
 *
 * - the first batch heard from a publisher on a topic is delivered at once (this node joined then);
 * - a batch that continues the last delivered seq (or starts a newer session) is delivered, then any
 *   held batch it makes contiguous;
 * - a batch ahead of a missing one is held, up to `maxHeldBatches` per publisher and `reorderWindowMs`;
 *   then the gap is skipped and its messages counted lost (`gap`);
 * - messages at or below the last delivered seq are dropped (`duplicate`).
 *
 * Bounded: `maxPublishers` (publisher, topic) states, least recently heard forgotten with what they
 * held. Pure: the clock is injected and nothing runs on timers here; the area calls {@link tick}.
 */
import type { Clock } from '../common/clock.ts'
import type { Batch } from './batch.ts'
import type { DropReason } from './metrics.ts'

/** What {@link OrderedInbox} needs. */
export interface OrderedInboxDeps {
  clock: Clock
  /** Deliver `batch.entries[from…]` of `publisher` on `topic` (seq of entry i: batch.firstSeq + i). */
  deliver(topic: string, publisher: string, batch: Batch, from: number): void
  /** `count` messages dropped for `reason`. */
  dropped(reason: DropReason, count: number): void
}

/** Bounds of {@link OrderedInbox}; the `messaging.*` keys of the same names. */
export interface OrderedInboxOptions {
  reorderWindowMs: number
  maxHeldBatches: number
  maxPublishers: number
}

interface Held {
  batch: Batch
  atMs: number
}

interface PublisherState {
  topic: string
  publisher: string
  /** Last seq delivered. */
  last: number
  /** Batches waiting for a gap to fill, by firstSeq. */
  held: Map<number, Held>
}

/** See the module comment. */
export class OrderedInbox {
  readonly #deps: OrderedInboxDeps
  readonly #o: OrderedInboxOptions
  /** key (topic, publisher) → state; insertion order = least recently heard first. */
  readonly #states = new Map<string, PublisherState>()
  /** States holding batches now. */
  readonly #holding = new Set<PublisherState>()

  constructor(deps: OrderedInboxDeps, options: OrderedInboxOptions) {
    this.#deps = deps
    this.#o = options
  }

  /** (publisher, topic) states kept. */
  get publishers(): number {
    return this.#states.size
  }

  /** Batches held, all publishers together. */
  get heldBatches(): number {
    let n = 0
    for (const s of this.#holding) n += s.held.size
    return n
  }

  /** Take a verified, decoded batch of `publisher` on `topic`; delivers what is in order. */
  receive(topic: string, publisher: string, batch: Batch): void {
    const key = `${topic}\n${publisher}`
    const count = batch.entries.length
    const end = batch.firstSeq + count - 1
    let st = this.#states.get(key)
    if (st === undefined) {
      st = { topic, publisher, last: end, held: new Map() }
      this.#remember(key, st)
      this.#deps.deliver(topic, publisher, batch, 0)
      return
    }
    this.#states.delete(key)
    this.#states.set(key, st)
    if (batch.sessionStart > st.last + 1) {
      // A newer session: what is held belongs to the old one and goes first (its gaps are lost).
      this.#flushHeld(st)
      if (batch.sessionStart > st.last) st.last = batch.sessionStart - 1
    }
    if (end <= st.last) {
      this.#deps.dropped('duplicate', count)
      return
    }
    if (batch.firstSeq > st.last + 1) {
      if (st.held.has(batch.firstSeq)) {
        this.#deps.dropped('duplicate', count)
        return
      }
      st.held.set(batch.firstSeq, { batch, atMs: this.#deps.clock.now() })
      this.#holding.add(st)
      if (st.held.size > this.#o.maxHeldBatches) this.#skipGap(st)
      return
    }
    this.#deliverFrom(st, batch)
    this.#drain(st)
  }

  /** Skip the gaps of publishers whose oldest held batch has waited `reorderWindowMs`. */
  tick(): void {
    const now = this.#deps.clock.now()
    for (const st of [...this.#holding]) {
      let oldest = Number.POSITIVE_INFINITY
      for (const h of st.held.values()) oldest = Math.min(oldest, h.atMs)
      if (now - oldest >= this.#o.reorderWindowMs) this.#skipGap(st)
    }
  }

  /** Forget every state (stop). */
  clear(): void {
    this.#states.clear()
    this.#holding.clear()
  }

  #remember(key: string, st: PublisherState): void {
    this.#states.set(key, st)
    if (this.#states.size <= this.#o.maxPublishers) return
    const [oldKey, old] = this.#states.entries().next().value as [string, PublisherState]
    this.#states.delete(oldKey)
    this.#holding.delete(old)
  }

  /** Deliver the part of `batch` after `st.last` (which `batch` reaches). */
  #deliverFrom(st: PublisherState, batch: Batch): void {
    const from = Math.max(0, st.last + 1 - batch.firstSeq)
    if (from > 0) this.#deps.dropped('duplicate', from)
    st.last = batch.firstSeq + batch.entries.length - 1
    this.#deps.deliver(st.topic, st.publisher, batch, from)
  }

  /** Deliver held batches while the lowest one continues `st.last`. */
  #drain(st: PublisherState): void {
    while (st.held.size > 0) {
      const lowest = this.#lowest(st)
      if (lowest.batch.firstSeq > st.last + 1) break
      st.held.delete(lowest.batch.firstSeq)
      const end = lowest.batch.firstSeq + lowest.batch.entries.length - 1
      if (end <= st.last) this.#deps.dropped('duplicate', lowest.batch.entries.length)
      else this.#deliverFrom(st, lowest.batch)
    }
    if (st.held.size === 0) this.#holding.delete(st)
  }

  /** Give up on the gap before the lowest held batch: count it lost, deliver on from there. */
  #skipGap(st: PublisherState): void {
    if (st.held.size === 0) return
    const lowest = this.#lowest(st)
    const missing = lowest.batch.firstSeq - (st.last + 1)
    if (missing > 0) {
      this.#deps.dropped('gap', missing)
      st.last = lowest.batch.firstSeq - 1
    }
    this.#drain(st)
  }

  /** Deliver everything held, in seq order, counting the gaps between as lost. */
  #flushHeld(st: PublisherState): void {
    while (st.held.size > 0) this.#skipGap(st)
  }

  #lowest(st: PublisherState): Held {
    let lowest: Held | undefined
    for (const h of st.held.values()) {
      if (lowest === undefined || h.batch.firstSeq < lowest.batch.firstSeq) lowest = h
    }
    return lowest as Held
  }
}
