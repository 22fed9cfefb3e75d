/**
 * A local subscription to a topic: a bounded queue of delivered messages, read as an async iterable.
 * When the reader falls `capacity` messages behind, the subscription is closed (policy `close`: a slow
 * SSE client is dropped) or its oldest message is dropped (policy `drop-oldest`); either way counted.
 */
import type { DropReason } from './metrics.ts'

/** A message as a subscriber receives it. */
export interface PubsubMessage {
  /** The topic (as published, without the gossip prefix). */
  topic: string
  /** The publisher's PeerId string: with `seq`, the message's id. */
  publisher: string
  /** The publisher's sequence number for this topic (increasing by 1 per message within a session). */
  seq: number
  /** The message's bytes (a view: copy it to keep it past the next await if you mutate buffers). */
  data: Uint8Array
  /** When the publisher published it, ms since the Unix epoch (its clock). */
  publishedAtMs: number
  /** When this node delivered it, ms since the Unix epoch (this node's clock). */
  receivedAtMs: number
  /** The MQTT topic name it came from or is for, when it carries one (docs/PROTOCOLS.md, "MQTT bridge"). */
  mqttTopic?: string
  /** True when an MQTT bridge imported it. */
  fromMqtt?: boolean
}

/** What a subscriber does when it falls behind. */
export type SlowPolicy = 'close' | 'drop-oldest'

/** Why a subscription ended. */
export type CloseReason = 'closed' | 'slow' | 'stopped'

/** What a subscription reports to its owner. */
export interface SubscriptionHooks {
  /** Messages dropped from this subscription's queue. */
  dropped(reason: DropReason, count: number): void
  /** The subscription ended (called once). */
  closed(sub: Subscription, reason: CloseReason): void
}

/** One local subscription (see the module comment). Iterate it once. */
export class Subscription implements AsyncIterable<PubsubMessage> {
  readonly topic: string
  readonly #capacity: number
  readonly #policy: SlowPolicy
  readonly #hooks: SubscriptionHooks
  /** Queue: `#items[#head …]`. */
  #items: PubsubMessage[] = []
  #head = 0
  #waiter: ((r: IteratorResult<PubsubMessage>) => void) | undefined
  #closed: CloseReason | undefined

  constructor(topic: string, capacity: number, policy: SlowPolicy, hooks: SubscriptionHooks) {
    this.topic = topic
    this.#capacity = capacity
    this.#policy = policy
    this.#hooks = hooks
  }

  /** Messages waiting to be read. */
  get size(): number {
    return this.#items.length - this.#head
  }

  /** Why it ended, or undefined while open. */
  get closedBecause(): CloseReason | undefined {
    return this.#closed
  }

  /** Deliver `m` (called by the area). Ignored once closed. */
  push(m: PubsubMessage): void {
    if (this.#closed !== undefined) return
    const waiter = this.#waiter
    if (waiter !== undefined) {
      this.#waiter = undefined
      waiter({ value: m, done: false })
      return
    }
    if (this.size >= this.#capacity) {
      if (this.#policy === 'close') {
        this.#hooks.dropped('slow_subscriber', this.size + 1)
        this.close('slow')
        return
      }
      this.#items[this.#head++] = undefined as unknown as PubsubMessage
      this.#compact()
      this.#hooks.dropped('subscriber_full', 1)
    }
    this.#items.push(m)
  }

  /** Drop the read slots once they are most of the array (so it stays within about 2 × capacity). */
  #compact(): void {
    if (this.#head > 64 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
  }

  /** End the subscription: waiting messages are dropped, a pending read ends. Idempotent. */
  close(reason: CloseReason = 'closed'): void {
    if (this.#closed !== undefined) return
    this.#closed = reason
    this.#items = []
    this.#head = 0
    const waiter = this.#waiter
    this.#waiter = undefined
    waiter?.({ value: undefined, done: true })
    this.#hooks.closed(this, reason)
  }

  /** The next message; waits for one; `done` once closed. */
  next(): Promise<IteratorResult<PubsubMessage>> {
    if (this.size > 0) {
      const value = this.#items[this.#head] as PubsubMessage
      this.#items[this.#head++] = undefined as unknown as PubsubMessage
      this.#compact()
      return Promise.resolve({ value, done: false })
    }
    if (this.#closed !== undefined) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve) => {
      this.#waiter = resolve
    })
  }

  [Symbol.asyncIterator](): AsyncIterator<PubsubMessage> {
    return {
      next: () => this.next(),
      return: async () => {
        this.close()
        return { value: undefined, done: true }
      },
    }
  }
}
