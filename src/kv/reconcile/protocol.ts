/**
 * Range-based set reconciliation of two replicas of a database's op set (Meyer, "Range-Based Set
 * Reconciliation", SRDS 2023, arXiv 2212.13567; the method of negentropy and iroh-docs, our own
 * messages: wire.ts, docs/PROTOCOLS.md "KV reconciliation"). Pure: no networking, no timers; the
 * caller carries the messages and then fetches or sends the ops themselves.
 *
 * The initiator sends the fingerprints of B ranges of about equal counts covering its whole set (or
 * its keys, when it holds at most `reconIdListThreshold`). Each side answers every range of the
 * other's message:
 * - fingerprint equal to its own over the same range: nothing (skip);
 * - different, and it holds at most the threshold in the range, or the peer holds none: its keys
 *   (idlist);
 * - different otherwise: the fingerprints of the range split in B parts (so O(log_B n) rounds);
 * - an idlist: which of the listed keys it lacks (a bitmap) and its keys the list lacks (iddiff), and
 *   it records both; the idlist's sender records them when the iddiff arrives.
 * A message never exceeds the smaller of the two sides' `reconMaxMessageBytes`: what does not fit is
 * answered by one fingerprint of the rest of the key space, which the next rounds take up again.
 * A message that holds only skips and iddiffs asks for no answer: its sender is done once it has
 * sent it, its receiver once it has read it. In sync, the exchange is one round trip.
 *
 * Each round yields the keys learned in it: `need` (this node lacks the op) and `have` (the peer
 * lacks it). After a truncated message a key may be reported again in a later round.
 */
import { NodusError } from '../../common/errors.ts'
import type { KvReconMetrics } from '../metrics.ts'
import type { KvReconOptions } from '../options.ts'
import type { OrderedReader } from '../store/ordered.ts'
import { cloneSummary, fingerprint, type Summary, separator, subSummary } from './fingerprint.ts'
import type { FingerprintIndex, Part } from './fingerprint-index.ts'
import {
  type Bound,
  boundBytes,
  decodeMessage,
  fingerprintBytes,
  keyBytes,
  MessageWriter,
  MIN_MESSAGE_BYTES,
  msOf,
  type WireRange,
} from './wire.ts'

/** The set one side reconciles: its items (40-byte keys) and their range summaries. */
export interface ReconcileSet {
  /** Summary of the items below `x` (undefined: all of them). */
  prefix(x: Bound): Summary
  /** [lo, hi) in at most `parts` parts of about equal counts (see FingerprintIndex.split). */
  split(lo: Uint8Array, hi: Bound, parts: number): Part[]
  /** The item keys in [lo, hi) in order, at most `limit`. */
  items(lo: Uint8Array, hi: Bound, limit?: number): Uint8Array[]
  has(key: Uint8Array): boolean
}

/** A {@link FingerprintIndex} read through `reader` (the store, or a write in progress). */
export function indexSet(index: FingerprintIndex, reader: OrderedReader): ReconcileSet {
  return {
    prefix: (x) => index.prefix(reader, x),
    split: (lo, hi, parts) => index.split(reader, lo, hi, parts),
    items: (lo, hi, limit) => index.items(reader, lo, hi, limit),
    has: (key) => index.has(reader, key),
  }
}

export type ReconcileRole = 'initiator' | 'responder'

export interface ReconcilerDeps {
  set: ReconcileSet
  metrics?: KvReconMetrics
}

/** What one received message taught this side, and what to send back. */
export interface RoundResult {
  /** The answer to send, or undefined when the peer expects none. */
  message: Uint8Array | undefined
  /** True when the session is over for this side: after sending `message` (if any), expect nothing. */
  done: boolean
  /** Keys (40 bytes) of ops this node lacks, learned this round, in key order. */
  need: Uint8Array[]
  /** Keys of ops the peer lacks, learned this round, in key order. */
  have: Uint8Array[]
}

/** Room kept in every message for closing it: a skip bound (≤ 44 bytes) and the rest fingerprint (≤ 26). */
const RESERVE_BYTES = 72
/** Fewest bytes a key takes on the wire. */
const MIN_KEY_BYTES = 34
/** Most bytes a bound takes on the wire (ms delta 7, counter 3, prefix length 1, prefix 32). */
const MAX_BOUND_BYTES = 43
/** Most bytes of a list's mode byte and count varint. */
const LIST_HEADER_BYTES = 9
const EMPTY = new Uint8Array(0)

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

function sameBound(a: Bound, b: Bound): boolean {
  return a === undefined || b === undefined ? a === b : Buffer.compare(a, b) === 0
}

/** An idlist this side sent, waiting for the peer's iddiff. */
interface Pending {
  hi: Bound
  keys: Uint8Array[]
}

/** One answer being built: the writer, where its ranges end, what was learned. */
class Answer {
  readonly writer: MessageWriter
  /** The upper bound of the last range written (the empty key before any). */
  end: Uint8Array = EMPTY
  content = false
  /** Whether a fingerprint or idlist was written, so the peer must answer. */
  expectsReply = false
  /** Set once the rest of the key space went into one fingerprint. */
  truncated = false
  readonly need = new Map<string, Uint8Array>()
  readonly have = new Map<string, Uint8Array>()
  readonly pending = new Map<string, Pending>()
  /** Prefix summaries by bound (hex; '' the empty key, '∞' all): adjacent ranges share their bounds. */
  readonly prefixes = new Map<string, Summary>()
  readonly budget: number

  constructor(advertised: number, budget: number) {
    this.writer = new MessageWriter(advertised)
    this.budget = budget
  }

  /** Bytes a range starting at `lo` may still take (after a skip up to `lo` if one is needed). */
  room(lo: Uint8Array): number {
    const skip = sameBound(this.end, lo) ? 0 : boundBytes(lo, this.writer.lastMs) + 1
    return this.budget - RESERVE_BYTES - this.writer.length - skip
  }

  /** Skips up to `lo` if the last range ended before it. */
  open(lo: Uint8Array): void {
    if (!sameBound(this.end, lo)) this.writer.skip(lo)
    this.end = lo
    this.content = true
  }

  close(end: Bound): void {
    this.end = end ?? EMPTY
  }
}

/**
 * One side of a reconciliation session. `new Reconciler(deps, options, 'initiator')` then
 * {@link initiate}; a responder starts with {@link receive}. Not reusable across sessions.
 */
export class Reconciler {
  readonly role: ReconcileRole
  readonly #set: ReconcileSet
  readonly #metrics: KvReconMetrics | undefined
  readonly #options: KvReconOptions
  #pending = new Map<string, Pending>()
  #rounds = 0
  #done = false

  /**
   * @param options - the `kv.recon*` keys (src/kv/options.ts)
   */
  constructor(deps: ReconcilerDeps, options: KvReconOptions, role: ReconcileRole) {
    this.#set = deps.set
    this.#metrics = deps.metrics
    this.#options = options
    this.role = role
  }

  /** Messages this side has sent. */
  get rounds(): number {
    return this.#rounds
  }

  /** Whether the session is over for this side (finished, ended or failed). */
  get done(): boolean {
    return this.#done
  }

  /**
   * The initiator's first message: fingerprints of its whole set in B parts (or its keys), at most
   * {@link MIN_MESSAGE_BYTES} bytes since the responder's limit is not known yet.
   * @throws NodusError `INVALID_ARGUMENT` on a responder or a second call
   */
  initiate(): Uint8Array {
    if (this.role !== 'initiator' || this.#rounds > 0 || this.#done)
      throw new NodusError('INVALID_ARGUMENT', 'initiate() starts an initiator once')
    const answer = new Answer(
      this.#options.reconMaxMessageBytes,
      Math.min(this.#options.reconMaxMessageBytes, MIN_MESSAGE_BYTES),
    )
    this.#differs(answer, EMPTY, undefined, this.#summarize(answer, EMPTY, undefined), -1)
    this.#pending = answer.pending
    return this.#send(answer)
  }

  /**
   * Processes the peer's message and builds the answer.
   * @throws NodusError `RECON_MESSAGE_INVALID` (peerAction `reject`) for a malformed or oversized
   *   message; `RECON_VERSION_UNSUPPORTED` (peerAction `ignore`); `RECON_ROUNDS_EXCEEDED`
   *   (peerAction `ignore`) when the answer would be message number `reconMaxRounds` + 1;
   *   `INVALID_ARGUMENT` after the session ended. Any of these ends the session.
   */
  receive(bytes: Uint8Array): RoundResult {
    if (this.#done) throw new NodusError('INVALID_ARGUMENT', 'the reconciliation session is over')
    if (this.role === 'initiator' && this.#rounds === 0)
      throw new NodusError('INVALID_ARGUMENT', 'an initiator starts with initiate()')
    try {
      return this.#receive(bytes)
    } catch (err) {
      this.#done = true
      this.#metrics?.kvReconSessions.inc({ role: this.role, result: 'failed' })
      throw err
    }
  }

  /** Ends the session from outside (the peer closed the exchange after its last message). */
  end(): void {
    if (this.#done) return
    this.#finish()
  }

  #finish(): void {
    this.#done = true
    this.#metrics?.kvReconSessions.inc({ role: this.role, result: 'done' })
    this.#metrics?.kvReconSessionRounds.observe(this.#rounds)
  }

  #receive(bytes: Uint8Array): RoundResult {
    const max = this.#options.reconMaxMessageBytes
    const msg = decodeMessage(bytes, max)
    this.#metrics?.kvReconMessages.inc({ direction: 'received' })
    this.#metrics?.kvReconBytes.inc({ direction: 'received' }, bytes.length)
    const answer = new Answer(max, Math.min(max, msg.maxBytes))
    let lo: Uint8Array = EMPTY
    for (const range of msg.ranges) {
      this.#answer(answer, lo, range)
      if (range.end !== undefined) lo = range.end
    }
    this.#pending = answer.pending
    const need = [...answer.need.values()].sort(Buffer.compare)
    const have = [...answer.have.values()].sort(Buffer.compare)
    this.#metrics?.kvReconDifferences.inc({ side: 'need' }, need.length)
    this.#metrics?.kvReconDifferences.inc({ side: 'have' }, have.length)
    // The peer waits for an answer only when it sent fingerprints or keys; iddiffs end their ranges.
    const awaited = msg.ranges.some((r) => r.mode === 'fingerprint' || r.mode === 'idlist')
    if (!awaited) {
      this.#finish()
      return { message: undefined, done: true, need, have }
    }
    const message = this.#send(answer)
    if (!answer.expectsReply) this.#finish()
    return { message, done: this.#done, need, have }
  }

  #send(answer: Answer): Uint8Array {
    if (this.#rounds >= this.#options.reconMaxRounds)
      throw new NodusError(
        'RECON_ROUNDS_EXCEEDED',
        `reconciliation needs more than ${this.#options.reconMaxRounds} messages`,
        {
          peerAction: 'ignore',
          details: { rounds: this.#rounds },
        },
      )
    const message = answer.writer.finish()
    this.#rounds++
    this.#metrics?.kvReconMessages.inc({ direction: 'sent' })
    this.#metrics?.kvReconBytes.inc({ direction: 'sent' }, message.length)
    return message
  }

  /** Summary of [lo, hi) as the difference of two prefix summaries, each read once per answer. */
  #summarize(answer: Answer, lo: Uint8Array, hi: Bound): Summary {
    const prefix = (x: Bound): Summary => {
      const key = x === undefined ? '∞' : hex(x)
      let s = answer.prefixes.get(key)
      if (s === undefined) {
        s = this.#set.prefix(x)
        answer.prefixes.set(key, s)
      }
      return s
    }
    return subSummary(cloneSummary(prefix(hi)), prefix(lo))
  }

  /** Answers one range [lo, range.end) of the peer's message. */
  #answer(answer: Answer, lo: Uint8Array, range: WireRange): void {
    const hi = range.end
    switch (range.mode) {
      case 'skip':
        return
      case 'iddiff':
        this.#takeDiff(answer, lo, hi, range.listed, range.lacks, range.keys)
        return
      case 'fingerprint': {
        if (answer.truncated) return
        const mine = this.#summarize(answer, lo, hi)
        if (mine.count === range.count && Buffer.compare(fingerprint(mine), range.fingerprint) === 0) return
        this.#differs(answer, lo, hi, mine, range.count)
        return
      }
      case 'idlist':
        if (!answer.truncated) this.#diffList(answer, lo, hi, range.keys)
    }
  }

  /** [lo, hi) differs from the peer's (whose count is `theirs`, −1 unknown): keys or a split. */
  #differs(answer: Answer, lo: Uint8Array, hi: Bound, mine: Summary, theirs: number): void {
    if (mine.count <= this.#options.reconIdListThreshold || theirs === 0) {
      this.#sendKeys(answer, lo, hi)
      return
    }
    let start = lo
    for (const part of this.#set.split(lo, hi, this.#options.reconSplitFactor)) {
      const bytes =
        boundBytes(part.end, this.#boundMsAfter(answer, start)) + fingerprintBytes(part.summary.count)
      if (bytes > answer.room(start)) {
        this.#truncate(answer, start)
        return
      }
      answer.open(start)
      answer.writer.fingerprint(part.end, part.summary.count, fingerprint(part.summary))
      answer.close(part.end)
      answer.expectsReply = true
      if (part.end !== undefined) start = part.end
    }
  }

  /** The ms the next bound is encoded against, once a range starting at `lo` is opened. */
  #boundMsAfter(answer: Answer, lo: Uint8Array): number {
    return sameBound(answer.end, lo) ? answer.writer.lastMs : msOf(lo)
  }

  /** An idlist of this side's keys in [lo, hi), cut short (and the rest truncated) when over budget. */
  #sendKeys(answer: Answer, lo: Uint8Array, hi: Bound): void {
    const room = answer.room(lo) - LIST_HEADER_BYTES - MAX_BOUND_BYTES
    if (room < 0) {
      this.#truncate(answer, lo)
      return
    }
    // More keys than fit in `room` when there are more: each takes at least MIN_KEY_BYTES.
    const keys = this.#set.items(lo, hi, Math.floor(room / MIN_KEY_BYTES) + 1)
    let size = 0
    let prevMs = msOf(lo)
    let n = 0
    for (; n < keys.length; n++) {
      const k = keys[n] as Uint8Array
      size += keyBytes(k, prevMs)
      if (size > room) break
      prevMs = msOf(k)
    }
    if (n === keys.length) {
      this.#emitList(answer, lo, hi, keys)
      return
    }
    if (n === 0) {
      this.#truncate(answer, lo)
      return
    }
    const end = separator(keys[n - 1] as Uint8Array, keys[n] as Uint8Array)
    this.#emitList(answer, lo, end, keys.slice(0, n))
    this.#truncate(answer, end)
  }

  #emitList(answer: Answer, lo: Uint8Array, hi: Bound, keys: Uint8Array[]): void {
    answer.open(lo)
    answer.writer.idList(hi, keys)
    answer.close(hi)
    answer.expectsReply = true
    answer.pending.set(hex(lo), { hi, keys })
  }

  /** Answers the peer's idlist for [lo, hi) with an iddiff, recording both differences. */
  #diffList(answer: Answer, lo: Uint8Array, hi: Bound, theirs: Uint8Array[]): void {
    const room = answer.room(lo) - 2 * LIST_HEADER_BYTES - Math.ceil(theirs.length / 8) - MAX_BOUND_BYTES
    if (room < 0) {
      this.#truncate(answer, lo)
      return
    }
    const listed = new Set(theirs.map(hex))
    const mine = this.#set.items(lo, hi, theirs.length + Math.floor(room / MIN_KEY_BYTES) + 1)
    const haves: Uint8Array[] = []
    let size = 0
    let prevMs = msOf(lo)
    let end: Bound = hi
    for (let i = 0; i < mine.length; i++) {
      const k = mine[i] as Uint8Array
      if (listed.has(hex(k))) continue
      size += keyBytes(k, prevMs)
      if (size > room) {
        if (i === 0) {
          this.#truncate(answer, lo)
          return
        }
        // The haves before k go now; the rest of the range follows in later rounds.
        end = separator(mine[i - 1] as Uint8Array, k)
        break
      }
      haves.push(k)
      prevMs = msOf(k)
    }
    const lacks = theirs.map((k) => !this.#set.has(k))
    theirs.forEach((k, i) => {
      if (lacks[i]) answer.need.set(hex(k), k)
    })
    for (const k of haves) answer.have.set(hex(k), k)
    answer.open(lo)
    answer.writer.idDiff(end, lacks, haves)
    answer.close(end)
    if (end !== hi && end !== undefined) this.#truncate(answer, end)
  }

  /** Takes the peer's iddiff answering the idlist this side sent for the range starting at `lo`. */
  #takeDiff(
    answer: Answer,
    lo: Uint8Array,
    hi: Bound,
    listed: number,
    lacks: boolean[],
    keys: Uint8Array[],
  ): void {
    const sent = this.#pending.get(hex(lo))
    if (sent === undefined) throw invalid('an iddiff for a range this node sent no idlist for')
    if (sent.keys.length !== listed)
      throw invalid(`an iddiff of ${listed} bits for an idlist of ${sent.keys.length}`)
    if (hi === undefined ? sent.hi !== undefined : sent.hi !== undefined && Buffer.compare(hi, sent.hi) > 0)
      throw invalid('an iddiff past the range of its idlist')
    this.#pending.delete(hex(lo))
    sent.keys.forEach((k, i) => {
      if (lacks[i]) answer.have.set(hex(k), k)
    })
    for (const k of keys) if (!this.#set.has(k)) answer.need.set(hex(k), k)
  }

  /** Closes the answer with one fingerprint of [lo, +∞): the next rounds take the rest up again. */
  #truncate(answer: Answer, lo: Uint8Array): void {
    const rest = this.#summarize(answer, lo, undefined)
    answer.open(lo)
    answer.writer.fingerprint(undefined, rest.count, fingerprint(rest))
    answer.close(undefined)
    answer.truncated = true
    answer.expectsReply = true
  }
}

function invalid(reason: string): NodusError {
  return new NodusError('RECON_MESSAGE_INVALID', `reconciliation message: ${reason}`, {
    peerAction: 'reject',
  })
}
