/**
 * The publishing side of pub/sub batching: messages published to one topic within `lingerMs` of the
 * first, up to `maxBatchBytes` or `maxMessagesPerBatch`, leave as one batch (batch.ts), so one gossip
 * message and one signature carry them all.
 *
 * Each message gets the next seq of its topic; a topic's first seq in this session is the clock's ms ×
 * 1000 (so a restarted publisher numbers above its last session, unless it published more than
 * 1,000 messages per ms on average), named `sessionStart` in every batch (ordering.ts).
 *
 * Bounded: message bytes waiting (cut into batches or not, until handed to the sender) at most
 * `publishQueueBytes` (beyond it QUEUE_FULL); at most `maxBatchesInFlight` batches being sent; seq
 * counters for `maxPublishTopics` topics (the least recently published forgotten: its next publish
 * starts a new session). Timers come from `deps.setTimer`.
 */
import type { Clock } from '../common/clock.ts'
import { NodusError } from '../common/errors.ts'
import {
  type Batch,
  type BatchEntry,
  encodeBatch,
  entryBytes,
  flagBytes,
  hasFlags,
  headerBytes,
} from './batch.ts'
import { BATCH_HEADER_BYTES } from './options.ts'

/** What a message may carry besides its data (batch version 2): its MQTT topic and origin. */
export type MessageMarks = Pick<BatchEntry, 'mqttTopic' | 'fromMqtt'>

/** What {@link Batcher} needs. */
export interface BatcherDeps {
  clock: Clock
  /** Send one encoded batch of `topic`; resolves once handed to the network. */
  send(topic: string, bytes: Uint8Array, batch: Batch): Promise<void>
  /** A send failed (logged by the owner; its messages are lost). */
  onSendError(topic: string, err: unknown, batch: Batch): void
  /** Run `fn` after `ms` ms; returns a cancel function. Default: the global timers. */
  setTimer?: ((fn: () => void, ms: number) => () => void) | undefined
}

/** Bounds of {@link Batcher}; the `messaging.*` keys of the same names. */
export interface BatcherOptions {
  lingerMs: number
  maxBatchBytes: number
  maxMessageBytes: number
  maxMessagesPerBatch: number
  publishQueueBytes: number
  maxBatchesInFlight: number
  maxPublishTopics: number
}

interface Pending {
  entries: BatchEntry[]
  /** Encoded bytes of the entries (without the header), flags and MQTT topics included. */
  bytes: number
  /** Does an entry carry flags (the batch is version 2: every entry has a flags byte)? */
  flagged: boolean
  firstSeq: number
  timeMs: number
  cancelTimer: (() => void) | undefined
}

interface TopicState {
  sessionStart: number
  nextSeq: number
  pending: Pending | undefined
}

interface Ready {
  topic: string
  batch: Batch
  /** Message bytes in it. */
  bytes: number
}

/** The global timers; 0 ms is the next turn of the event loop (setImmediate). */
const defaultTimer = (fn: () => void, ms: number): (() => void) => {
  if (ms <= 0) {
    const i = setImmediate(fn)
    return () => clearImmediate(i)
  }
  const t = setTimeout(fn, ms)
  return () => clearTimeout(t)
}

/** See the module comment. */
export class Batcher {
  readonly #deps: BatcherDeps
  readonly #o: BatcherOptions
  readonly #setTimer: (fn: () => void, ms: number) => () => void
  readonly #topics = new Map<string, TopicState>()
  /** Batches cut and waiting for a send slot, in cut order. */
  readonly #ready: Ready[] = []
  #readyHead = 0
  #inFlight = 0
  /** Message bytes accepted and not yet handed to the sender. */
  #queuedBytes = 0
  #queuedMessages = 0
  #stopped = false
  readonly #idle: (() => void)[] = []

  constructor(deps: BatcherDeps, options: BatcherOptions) {
    this.#deps = deps
    this.#o = options
    this.#setTimer = deps.setTimer ?? defaultTimer
  }

  /** Message bytes waiting to be sent. */
  get queuedBytes(): number {
    return this.#queuedBytes
  }

  /** Messages waiting to be sent. */
  get queuedMessages(): number {
    return this.#queuedMessages
  }

  /** Batches being sent now. */
  get inFlight(): number {
    return this.#inFlight
  }

  /**
   * Queue `data` for `topic` (not copied: do not change it afterwards), with its `marks` (an MQTT
   * topic, checked by the caller, and the from-MQTT mark). Its batch leaves within `lingerMs`, or at
   * once when full; a failed send is reported to `deps.onSendError` ({@link onIdle} waits for every send).
   * @returns the message's seq on `topic`
   * @throws NodusError `MESSAGE_TOO_LARGE` over `maxMessageBytes` (or when with its MQTT topic it would
   *   not fit a batch); `QUEUE_FULL` when the publish queue holds `publishQueueBytes`; `NOT_STARTED`
   *   after stop
   */
  publish(topic: string, data: Uint8Array, marks?: MessageMarks): number {
    if (this.#stopped) throw new NodusError('NOT_STARTED', 'pub/sub is stopped')
    const flagged = marks !== undefined && hasFlags(marks)
    const marksSize = flagged
      ? flagBytes(marks.mqttTopic === undefined ? undefined : Buffer.byteLength(marks.mqttTopic, 'utf8'))
      : 0
    if (
      data.byteLength > this.#o.maxMessageBytes ||
      data.byteLength + marksSize > this.#o.maxBatchBytes - BATCH_HEADER_BYTES
    )
      throw new NodusError(
        'MESSAGE_TOO_LARGE',
        `message of ${data.byteLength} bytes is over ${this.#o.maxMessageBytes} (or with its MQTT topic over a batch)`,
        { details: { bytes: data.byteLength, maxMessageBytes: this.#o.maxMessageBytes } },
      )
    if (this.#queuedBytes + data.byteLength > this.#o.publishQueueBytes)
      throw new NodusError('QUEUE_FULL', 'the publish queue is full', {
        details: { publishQueueBytes: this.#o.publishQueueBytes },
      })
    const now = this.#deps.clock.now()
    const st = this.#topic(topic, now)
    let p = st.pending
    const dt = p === undefined ? 0 : Math.max(0, now - p.timeMs)
    const size = entryBytes(data.byteLength, dt) + marksSize
    // A version-2 batch gives every entry a flags byte: the ones already in it gain one when this is
    // the first flagged entry, and this one needs one when the batch is already flagged.
    const extra =
      p === undefined ? 0 : flagged && !p.flagged ? p.entries.length : !flagged && p.flagged ? 1 : 0
    if (
      p !== undefined &&
      (p.entries.length >= this.#o.maxMessagesPerBatch ||
        headerBytes(st.sessionStart, p.firstSeq, p.timeMs, p.entries.length + 1) + p.bytes + size + extra >
          this.#o.maxBatchBytes)
    ) {
      this.#cut(topic, st)
      p = undefined
    }
    if (p === undefined) {
      p = {
        entries: [],
        bytes: 0,
        flagged: false,
        firstSeq: st.nextSeq,
        timeMs: now,
        cancelTimer: undefined,
      }
      st.pending = p
      const pending = p
      p.cancelTimer = this.#setTimer(() => {
        if (st.pending === pending) this.#cut(topic, st)
      }, this.#o.lingerMs)
    }
    const seq = st.nextSeq++
    const entry: BatchEntry = { data, publishedAtMs: Math.max(now, p.timeMs) }
    if (flagged) {
      if (marks.mqttTopic !== undefined) entry.mqttTopic = marks.mqttTopic
      if (marks.fromMqtt === true) entry.fromMqtt = true
      if (!p.flagged) p.bytes += p.entries.length
      p.flagged = true
    }
    p.bytes +=
      entryBytes(data.byteLength, Math.max(0, now - p.timeMs)) + (p.flagged && !flagged ? 1 : marksSize)
    p.entries.push(entry)
    this.#queuedBytes += data.byteLength
    this.#queuedMessages++
    if (p.entries.length >= this.#o.maxMessagesPerBatch) this.#cut(topic, st)
    return seq
  }

  /** Cut every topic's pending messages into batches now. */
  flush(): void {
    for (const [topic, st] of this.#topics) if (st.pending !== undefined) this.#cut(topic, st)
  }

  /** Resolves once nothing waits or is being sent. */
  onIdle(): Promise<void> {
    if (this.#queuedMessages === 0 && this.#inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  /** Send what is pending, refuse new messages, and resolve once all is sent. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.flush()
    await this.onIdle()
  }

  #topic(topic: string, now: number): TopicState {
    let st = this.#topics.get(topic)
    if (st !== undefined) {
      this.#topics.delete(topic)
      this.#topics.set(topic, st)
      return st
    }
    const start = now * 1000
    st = { sessionStart: start, nextSeq: start, pending: undefined }
    this.#topics.set(topic, st)
    if (this.#topics.size > this.#o.maxPublishTopics) {
      for (const [t, s] of this.#topics) {
        if (this.#topics.size <= this.#o.maxPublishTopics) break
        if (s.pending === undefined) this.#topics.delete(t)
      }
    }
    return st
  }

  #cut(topic: string, st: TopicState): void {
    const p = st.pending
    if (p === undefined) return
    st.pending = undefined
    p.cancelTimer?.()
    const batch: Batch = {
      sessionStart: st.sessionStart,
      firstSeq: p.firstSeq,
      timeMs: p.timeMs,
      entries: p.entries,
    }
    let bytes = 0
    for (const e of p.entries) bytes += e.data.byteLength
    this.#ready.push({ topic, batch, bytes })
    this.#pump()
  }

  #pump(): void {
    while (this.#inFlight < this.#o.maxBatchesInFlight && this.#readyHead < this.#ready.length) {
      const r = this.#ready[this.#readyHead] as Ready
      this.#ready[this.#readyHead++] = undefined as unknown as Ready
      if (this.#readyHead === this.#ready.length) {
        this.#ready.length = 0
        this.#readyHead = 0
      }
      this.#inFlight++
      void this.#send(r)
    }
  }

  async #send(r: Ready): Promise<void> {
    try {
      await this.#deps.send(r.topic, encodeBatch(r.batch), r.batch)
    } catch (err) {
      this.#deps.onSendError(r.topic, err, r.batch)
    } finally {
      this.#inFlight--
      this.#queuedBytes -= r.bytes
      this.#queuedMessages -= r.batch.entries.length
      this.#pump()
      if (this.#queuedMessages === 0 && this.#inFlight === 0) for (const f of this.#idle.splice(0)) f()
    }
  }
}
