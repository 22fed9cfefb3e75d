/**
 * The pub/sub batch: many application messages of one topic in one gossip message (docs/PROTOCOLS.md,
 * "Pub/sub"). Gossipsub signs the whole batch once (StrictSign: the publisher's Ed25519 key, its
 * PeerId in the gossip message's `from`); inside, each message keeps its own id, (publisher, seq), for
 * de-duplication and delivery order per publisher, and its own publish timestamp.
 *
 * Wire format (all integers unsigned LEB128 varints, at most 8 bytes, ≤ 2^53 − 1):
 *
 * ```
 * u8      version = 1 or 2
 * varint  sessionStart  seq of the publisher's first message since it started (a seq jump up to it is no loss)
 * varint  firstSeq      seq of the first message here; message i has seq firstSeq + i
 * varint  timeMs        publish time of the first message, ms since the Unix epoch
 * varint  count         messages here, 1 … maxMessagesPerBatch
 * count × {
 *   varint  flags        version 2 only: bit 0 came from MQTT, bit 1 an MQTT topic follows; other bits 0
 *   varint  topicLength  version 2 with flags bit 1 only: 1 … 65,535, then that many bytes of UTF-8,
 *                        the MQTT topic name (no `+`, `#` or U+0000)
 *   varint  dtMs         its publish time − timeMs
 *   varint  length, length bytes
 * }
 * ```
 *
 * Version 2 exists for the MQTT bridge (mqtt-bridge.ts): the mark "came from MQTT" must travel with
 * the message so no bridge exports it back. A batch in which no message carries a flag is written as
 * version 1, byte for byte as before, so nodes that read only version 1 still read every batch of a
 * node that bridges nothing. Nothing may follow the last message. A compact framing rather than dag-cbor: encoding and decoding a
 * 256-message batch costs a fraction of dag-cbor's (bench/pubsub.bench.ts, "batch codec").
 */
import { ByteReader, varintLength, writeVarint } from '../common/byte-codec.ts'
import { NodusError } from '../common/errors.ts'
import { mqttTopicProblem } from '../common/mqtt-topic.ts'

/** The batch format's version byte when no message carries flags (version 2 when one does). */
export const BATCH_VERSION = 1
/** The version byte of a batch whose messages carry flags (and MQTT topics). */
export const BATCH_VERSION_FLAGS = 2

/** Flag bit: the message came from MQTT (a bridge imported it); no bridge exports it to MQTT. */
const FLAG_FROM_MQTT = 1
/** Flag bit: an MQTT topic name follows the flags. */
const FLAG_MQTT_TOPIC = 2
/** Longest MQTT topic name carried, UTF-8 bytes (MQTT 5 §1.5.4: a UTF-8 string is at most 65,535 bytes). */
export const MAX_MQTT_TOPIC_BYTES = 65_535

/** One message in a batch, as the publisher put it. */
export interface BatchEntry {
  /** The message's bytes. */
  data: Uint8Array
  /** When it was published, ms since the Unix epoch (≥ the batch's `timeMs`). */
  publishedAtMs: number
  /** The MQTT topic name it came from or is meant for (the MQTT bridge, docs/PROTOCOLS.md). */
  mqttTopic?: string | undefined
  /** True when an MQTT bridge imported it: no bridge exports it to MQTT again. */
  fromMqtt?: boolean | undefined
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

/** Does `e` carry flags (so its batch is written as version 2)? */
export function hasFlags(e: Pick<BatchEntry, 'mqttTopic' | 'fromMqtt'>): boolean {
  return e.fromMqtt === true || e.mqttTopic !== undefined
}

/**
 * Bytes a version-2 entry takes besides {@link entryBytes}: its flags and its MQTT topic (of
 * `topicBytes` UTF-8 bytes, none when undefined). Every entry of a version-2 batch has the flags byte.
 */
export function flagBytes(topicBytes: number | undefined): number {
  return 1 + (topicBytes === undefined ? 0 : varintLength(topicBytes) + topicBytes)
}

/** Bytes of a batch header with these fields. */
export function headerBytes(sessionStart: number, firstSeq: number, timeMs: number, count: number): number {
  return 1 + varintLength(sessionStart) + varintLength(firstSeq) + varintLength(timeMs) + varintLength(count)
}

/**
 * Encode a batch: version 1 when no entry carries flags, else version 2. `entries` must be non-empty,
 * each `publishedAtMs` ≥ the first's.
 * @returns the batch bytes, exactly sized
 * @throws NodusError `INVALID_ARGUMENT` when `entries` is empty, a timestamp goes backwards or an MQTT
 *   topic is empty or over {@link MAX_MQTT_TOPIC_BYTES}
 */
export function encodeBatch(batch: Batch): Uint8Array {
  const { sessionStart, firstSeq, timeMs, entries } = batch
  if (entries.length === 0) throw new NodusError('INVALID_ARGUMENT', 'a batch needs at least one message')
  const flagged = entries.some(hasFlags)
  const topics: (Buffer | undefined)[] = flagged ? new Array(entries.length) : []
  let size = headerBytes(sessionStart, firstSeq, timeMs, entries.length)
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as BatchEntry
    const dt = e.publishedAtMs - timeMs
    if (dt < 0) throw new NodusError('INVALID_ARGUMENT', 'message timestamps go backwards in a batch')
    size += entryBytes(e.data.byteLength, dt)
    if (!flagged) continue
    const topic = e.mqttTopic === undefined ? undefined : Buffer.from(e.mqttTopic, 'utf8')
    if (topic !== undefined && (topic.byteLength === 0 || topic.byteLength > MAX_MQTT_TOPIC_BYTES))
      throw new NodusError('INVALID_ARGUMENT', `an MQTT topic is 1 … ${MAX_MQTT_TOPIC_BYTES} bytes`)
    topics[i] = topic
    size += flagBytes(topic?.byteLength)
  }
  const out = new Uint8Array(size)
  out[0] = flagged ? BATCH_VERSION_FLAGS : BATCH_VERSION
  let pos = writeVarint(out, 1, sessionStart)
  pos = writeVarint(out, pos, firstSeq)
  pos = writeVarint(out, pos, timeMs)
  pos = writeVarint(out, pos, entries.length)
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as BatchEntry
    if (flagged) {
      const topic = topics[i]
      out[pos++] = (e.fromMqtt === true ? FLAG_FROM_MQTT : 0) | (topic === undefined ? 0 : FLAG_MQTT_TOPIC)
      if (topic !== undefined) {
        pos = writeVarint(out, pos, topic.byteLength)
        out.set(topic, pos)
        pos += topic.byteLength
      }
    }
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

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Decode and check a batch: version (1 or 2), canonical varints within 2^53 − 1, 1 …
 * `maxMessagesPerBatch` messages of at most `maxMessageBytes` each, `firstSeq` ≥ `sessionStart`, seqs
 * and times that do not overflow, and nothing after the last message; in version 2, known flag bits
 * only and MQTT topics of 1 … 65,535 bytes of valid UTF-8 without `+`, `#` or U+0000. Messages are
 * views into `bytes`.
 * @throws NodusError `BATCH_INVALID` (peerAction `reject`) for any violation
 */
export function decodeBatch(bytes: Uint8Array, limits: BatchLimits): Batch {
  if (bytes.byteLength > limits.maxBatchBytes)
    throw invalid(`batch of ${bytes.byteLength} bytes is over ${limits.maxBatchBytes}`)
  if (bytes.byteLength === 0) throw invalid('empty batch')
  const version = bytes[0]
  if (version !== BATCH_VERSION && version !== BATCH_VERSION_FLAGS)
    throw invalid(`unknown batch version ${version}`)
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
    let flags = 0
    let mqttTopic: string | undefined
    if (version === BATCH_VERSION_FLAGS) {
      flags = read()
      if ((flags & ~(FLAG_FROM_MQTT | FLAG_MQTT_TOPIC)) !== 0) throw invalid(`unknown message flags ${flags}`)
      if ((flags & FLAG_MQTT_TOPIC) !== 0) {
        const tlen = read()
        if (tlen === 0 || tlen > MAX_MQTT_TOPIC_BYTES) throw invalid(`MQTT topic of ${tlen} bytes`)
        const topic = reader.bytes(tlen)
        try {
          mqttTopic = utf8.decode(topic)
        } catch {
          throw invalid('MQTT topic is not UTF-8')
        }
        const problem = mqttTopicProblem(mqttTopic)
        if (problem !== undefined) throw invalid(`MQTT topic ${problem}`)
      }
    }
    const dt = read()
    const len = read()
    if (len > limits.maxMessageBytes)
      throw invalid(`message of ${len} bytes is over ${limits.maxMessageBytes}`)
    const data = reader.bytes(len)
    const publishedAtMs = timeMs + dt
    if (publishedAtMs > Number.MAX_SAFE_INTEGER) throw invalid('timestamp overflow')
    const e: BatchEntry = { data, publishedAtMs }
    if (mqttTopic !== undefined) e.mqttTopic = mqttTopic
    if ((flags & FLAG_FROM_MQTT) !== 0) e.fromMqtt = true
    entries[i] = e
  }
  if (reader.remaining !== 0) throw invalid(`${reader.remaining} bytes after the last message`)
  return { sessionStart, firstSeq, timeMs, entries }
}
