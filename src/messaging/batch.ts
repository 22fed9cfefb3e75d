/**
 * The pub/sub batch: many application messages of one topic in one gossip message (docs/PROTOCOLS.md,
 * "Pub/sub"). Gossipsub signs the whole batch once (StrictSign: the publisher's Ed25519 key, its
 * PeerId in the gossip message's `from`); inside, each message keeps its own id, (publisher, seq), for
 * de-duplication and delivery order per publisher, and its own publish timestamp.
 *
 * Wire format, version 1 (all integers unsigned LEB128 varints, at most 8 bytes, ≤ 2^53 − 1):
 *
 * ```
 * u8      version = 1
 * varint  sessionStart  seq of the publisher's first message since it started (a seq jump up to it is no loss)
 * varint  firstSeq      seq of the first message here; message i has seq firstSeq + i
 * varint  timeMs        publish time of the first message, ms since the Unix epoch
 * varint  count         messages here, 1 … maxMessagesPerBatch
 * count × { varint dtMs (its publish time − timeMs), varint length, length bytes }
 * ```
 *
 * Nothing may follow the last message. A compact framing rather than dag-cbor: encoding and decoding a
 * 256-message batch costs a fraction of dag-cbor's (bench/pubsub.bench.ts, "batch codec").
 */
import { ByteReader, varintLength, writeVarint } from '../common/byte-codec.ts'
import { NodusError } from '../common/errors.ts'

/** The batch format's version byte. */
export const BATCH_VERSION = 1

/** One message in a batch, as the publisher put it. */
export interface BatchEntry {
  /** The message's bytes. */
  data: Uint8Array
  /** When it was published, ms since the Unix epoch (≥ the batch's `timeMs`). */
  publishedAtMs: number
}

/** A batch's header and messages (message i has seq `firstSeq + i`). */
export interface Batch {
  sessionStart: number
  firstSeq: number
  /** Publish time of the first message, ms since the Unix epoch. */
  timeMs: number
  /** The messages: `data` are views into the decoded buffer (no copy). */
  entries: BatchEntry[]
}

/** The limits a decoded batch must respect. */
export interface BatchLimits {
  /** Largest encoded batch, bytes. */
  maxBatchBytes: number
  /** Largest message, bytes. */
  maxMessageBytes: number
  /** Most messages in a batch. */
  maxMessagesPerBatch: number
}

/** Bytes `entries` take in a batch besides the fixed header, for the batcher's size accounting. */
export function entryBytes(dataLength: number, dtMs: number): number {
  return varintLength(dtMs) + varintLength(dataLength) + dataLength
}

/** Bytes of a batch header with these fields. */
export function headerBytes(sessionStart: number, firstSeq: number, timeMs: number, count: number): number {
  return 1 + varintLength(sessionStart) + varintLength(firstSeq) + varintLength(timeMs) + varintLength(count)
}

/**
 * Encode a batch (version 1). `entries` must be non-empty, each `publishedAtMs` ≥ the first's.
 * @returns the batch bytes, exactly sized
 * @throws NodusError `INVALID_ARGUMENT` when `entries` is empty or a timestamp goes backwards
 */
export function encodeBatch(batch: Batch): Uint8Array {
  const { sessionStart, firstSeq, timeMs, entries } = batch
  if (entries.length === 0) throw new NodusError('INVALID_ARGUMENT', 'a batch needs at least one message')
  let size = headerBytes(sessionStart, firstSeq, timeMs, entries.length)
  for (const e of entries) {
    const dt = e.publishedAtMs - timeMs
    if (dt < 0) throw new NodusError('INVALID_ARGUMENT', 'message timestamps go backwards in a batch')
    size += entryBytes(e.data.byteLength, dt)
  }
  const out = new Uint8Array(size)
  out[0] = BATCH_VERSION
  let pos = writeVarint(out, 1, sessionStart)
  pos = writeVarint(out, pos, firstSeq)
  pos = writeVarint(out, pos, timeMs)
  pos = writeVarint(out, pos, entries.length)
  for (const e of entries) {
    pos = writeVarint(out, pos, e.publishedAtMs - timeMs)
    pos = writeVarint(out, pos, e.data.byteLength)
    out.set(e.data, pos)
    pos += e.data.byteLength
  }
  return out
}

function invalid(message: string): NodusError {
  return new NodusError('BATCH_INVALID', message, { peerAction: 'reject' })
}

/**
 * Decode and check a batch: version, canonical varints within 2^53 − 1, 1 … `maxMessagesPerBatch`
 * messages of at most `maxMessageBytes` each, `firstSeq` ≥ `sessionStart`, seqs and times that do not
 * overflow, and nothing after the last message. Messages are views into `bytes`.
 * @throws NodusError `BATCH_INVALID` (peerAction `reject`) for any violation
 */
export function decodeBatch(bytes: Uint8Array, limits: BatchLimits): Batch {
  if (bytes.byteLength > limits.maxBatchBytes)
    throw invalid(`batch of ${bytes.byteLength} bytes is over ${limits.maxBatchBytes}`)
  if (bytes.byteLength === 0) throw invalid('empty batch')
  if (bytes[0] !== BATCH_VERSION) throw invalid(`unknown batch version ${bytes[0]}`)
  const reader = new ByteReader(bytes, 1, (reason) =>
    invalid(reason === 'truncated' ? 'batch truncated' : reason),
  )
  const read = (): number => reader.varint()
  const sessionStart = read()
  const firstSeq = read()
  const timeMs = read()
  const count = read()
  if (count < 1 || count > limits.maxMessagesPerBatch)
    throw invalid(`batch of ${count} messages (1 … ${limits.maxMessagesPerBatch} allowed)`)
  if (firstSeq < sessionStart) throw invalid('firstSeq before sessionStart')
  if (firstSeq + count > Number.MAX_SAFE_INTEGER) throw invalid('seq overflow')
  const entries: BatchEntry[] = new Array(count)
  for (let i = 0; i < count; i++) {
    const dt = read()
    const len = read()
    if (len > limits.maxMessageBytes)
      throw invalid(`message of ${len} bytes is over ${limits.maxMessageBytes}`)
    const data = reader.bytes(len)
    const publishedAtMs = timeMs + dt
    if (publishedAtMs > Number.MAX_SAFE_INTEGER) throw invalid('timestamp overflow')
    entries[i] = { data, publishedAtMs }
  }
  if (reader.remaining !== 0) throw invalid(`${reader.remaining} bytes after the last message`)
  return { sessionStart, firstSeq, timeMs, entries }
}
