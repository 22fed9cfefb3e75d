/**
 * The binary encoding of reconciliation messages (docs/PROTOCOLS.md, "KV reconciliation"). All
 * integers are unsigned LEB128 varints (canonical, ≤ 2^53 − 1) unless said otherwise.
 *
 * ```
 * message = u8 version (1) ‖ varint maxBytes ‖ range*
 * range   = bound ‖ u8 mode ‖ payload            the range is [previous range's bound, bound)
 * bound   = varint 0                              +∞ (the last range only)
 *         | varint (msDelta + 1) ‖ varint c ‖ u8 n ‖ n bytes
 *             HLC (ms, c) with ms = previous bound's ms + msDelta (first: 0 + msDelta), c < 2^16,
 *             then the first n ≤ 32 bytes of an op id: the bound is hlcToBytes(ms, c) ‖ prefix
 * mode 0  skip         nothing left to do in the range
 * mode 1  fingerprint  varint count ‖ (count > 0: 16 bytes fingerprint)
 * mode 2  idlist       varint n ‖ n × key                    the sender's ops in the range
 * mode 3  iddiff       varint listed ‖ ⌈listed/8⌉ bytes bitmap ‖ varint n ‖ n × key
 *             the answer to an idlist of `listed` keys this node sent for a range starting at the
 *             same lower bound: bit i (byte i >> 3, bit i & 7, least significant first) set when
 *             the sender lacks listed key i; then the sender's ops in the range the list lacked
 * key     = varint msDelta ‖ varint c ‖ 32 bytes op id
 *             ms = previous key's ms + msDelta (first: the range's lower bound's ms)
 * ```
 *
 * Bounds increase strictly; keys increase strictly and lie in their range; the ranges cover the key
 * space from the empty key up to the last bound (what follows it is skipped). Decoding checks all of
 * it and throws `RECON_MESSAGE_INVALID` (peerAction `reject`), or `RECON_VERSION_UNSUPPORTED`.
 */
import { ByteReader, ByteWriter, varintLength } from '../../common/byte-codec.ts'
import { NodusError } from '../../common/errors.ts'
import { HLC_COUNTER_LIMIT, hlcFromBytes, hlcToBytes } from '../op-types.ts'
import { compareKeys } from '../store/ordered.ts'
import { FINGERPRINT_BYTES, HLC_BYTES, ID_BYTES, ITEM_KEY_BYTES } from './fingerprint.ts'

/** The protocol version byte of every message. */
export const RECON_VERSION = 1
/** Smallest `maxBytes` a peer may advertise, and the budget of an initiator's first message. */
export const MIN_MESSAGE_BYTES = 4096
/** Largest HLC ms (48 bits). */
const MAX_MS = 2 ** 48 - 1

export type Bound = Uint8Array | undefined

export type WireRange =
  | { end: Bound; mode: 'skip' }
  | { end: Bound; mode: 'fingerprint'; count: number; fingerprint: Uint8Array }
  | { end: Bound; mode: 'idlist'; keys: Uint8Array[] }
  | { end: Bound; mode: 'iddiff'; listed: number; lacks: boolean[]; keys: Uint8Array[] }

export interface WireMessage {
  /** The largest message the sender accepts, bytes. */
  maxBytes: number
  ranges: WireRange[]
}

const MODES = ['skip', 'fingerprint', 'idlist', 'iddiff'] as const

/** The ms of a bound or key (its first 6 bytes); 0 for a bound shorter than 8 bytes (the empty key). */
export function msOf(b: Uint8Array): number {
  return b.length < HLC_BYTES ? 0 : hlcFromBytes(b).ms
}

function counterOf(b: Uint8Array): number {
  return hlcFromBytes(b).c
}

/** Encoded bytes of bound `b` after a bound whose ms is `prevMs`. */
export function boundBytes(b: Bound, prevMs: number): number {
  if (b === undefined) return 1
  return varintLength(msOf(b) - prevMs + 1) + varintLength(counterOf(b)) + 1 + (b.length - HLC_BYTES)
}

/** Encoded bytes of key `k` after a key (or lower bound) whose ms is `prevMs`. */
export function keyBytes(k: Uint8Array, prevMs: number): number {
  return varintLength(msOf(k) - prevMs) + varintLength(counterOf(k)) + ID_BYTES
}

/** Encoded bytes of a fingerprint payload (mode byte included) for `count` items. */
export function fingerprintBytes(count: number): number {
  return 1 + varintLength(count) + (count > 0 ? FINGERPRINT_BYTES : 0)
}

/**
 * Writes one message: ranges in order, each after the previous. Tracks the encoded size as it goes.
 */
export class MessageWriter {
  readonly #w = new ByteWriter(1024)
  #prevMs = 0
  #closed = false

  constructor(maxBytes: number) {
    this.#w.u8(RECON_VERSION).varint(maxBytes)
  }

  /** Bytes so far. */
  get length(): number {
    return this.#w.length
  }

  /** The ms of the last bound written (0 before any): key lists of the next range start from it. */
  get lastMs(): number {
    return this.#prevMs
  }

  #bound(b: Bound): void {
    if (this.#closed) throw new Error('reconciliation message: a range after +∞')
    if (b === undefined) {
      this.#w.u8(0)
      this.#closed = true
      return
    }
    const ms = msOf(b)
    this.#w
      .varint(ms - this.#prevMs + 1)
      .varint(counterOf(b))
      .u8(b.length - HLC_BYTES)
    this.#w.bytes(b.subarray(HLC_BYTES))
    this.#prevMs = ms
  }

  #keys(keys: readonly Uint8Array[], fromMs: number): void {
    let prev = fromMs
    this.#w.varint(keys.length)
    for (const k of keys) {
      const ms = msOf(k)
      this.#w
        .varint(ms - prev)
        .varint(counterOf(k))
        .bytes(k.subarray(HLC_BYTES, ITEM_KEY_BYTES))
      prev = ms
    }
  }

  skip(end: Bound): void {
    this.#bound(end)
    this.#w.u8(0)
  }

  fingerprint(end: Bound, count: number, fp: Uint8Array): void {
    this.#bound(end)
    this.#w.u8(1).varint(count)
    if (count > 0) this.#w.bytes(fp)
  }

  /** An idlist range (its keys are encoded from its lower bound, the previous range's end). */
  idList(end: Bound, keys: readonly Uint8Array[]): void {
    const loMs = this.#prevMs
    this.#bound(end)
    this.#w.u8(2)
    this.#keys(keys, loMs)
  }

  /** An iddiff range: `lacks[i]` for the i-th key of the idlist it answers, then the keys it lacked. */
  idDiff(end: Bound, lacks: readonly boolean[], keys: readonly Uint8Array[]): void {
    const loMs = this.#prevMs
    this.#bound(end)
    this.#w.u8(3).varint(lacks.length)
    const bitmap = new Uint8Array(Math.ceil(lacks.length / 8))
    lacks.forEach((l, i) => {
      if (l) bitmap[i >> 3] = (bitmap[i >> 3] as number) | (1 << (i & 7))
    })
    this.#w.bytes(bitmap)
    this.#keys(keys, loMs)
  }

  finish(): Uint8Array {
    return this.#w.finish()
  }
}

function invalid(reason: string): NodusError {
  return new NodusError('RECON_MESSAGE_INVALID', `reconciliation message: ${reason}`, {
    peerAction: 'reject',
  })
}

/**
 * Decodes and checks a message of at most `maxBytes` bytes.
 * @throws NodusError `RECON_MESSAGE_INVALID` (peerAction `reject`) for any violation of the format
 *   or the limit; `RECON_VERSION_UNSUPPORTED` (peerAction `ignore`) for another version byte
 */
export function decodeMessage(bytes: Uint8Array, maxBytes: number): WireMessage {
  if (bytes.length > maxBytes) throw invalid(`${bytes.length} bytes, over the limit of ${maxBytes}`)
  const r = new ByteReader(bytes, 0, invalid)
  const version = r.u8()
  if (version !== RECON_VERSION)
    throw new NodusError(
      'RECON_VERSION_UNSUPPORTED',
      `reconciliation protocol version ${version}, not ${RECON_VERSION}`,
      {
        peerAction: 'ignore',
      },
    )
  const peerMax = r.varint()
  if (peerMax < MIN_MESSAGE_BYTES) throw invalid(`maxBytes ${peerMax} under ${MIN_MESSAGE_BYTES}`)
  const ranges: WireRange[] = []
  let lo: Uint8Array = new Uint8Array(0)
  let prevMs = 0
  let ended = false
  while (r.remaining > 0) {
    if (ended) throw invalid('a range after +∞')
    const end = readBound(r, prevMs)
    if (end !== undefined) {
      if (compareKeys(end, lo) <= 0) throw invalid('bounds out of order')
      prevMs = msOf(end)
    } else ended = true
    const modeByte = r.u8()
    const mode = MODES[modeByte]
    if (mode === undefined) throw invalid(`unknown mode ${modeByte}`)
    switch (mode) {
      case 'skip':
        ranges.push({ end, mode })
        break
      case 'fingerprint': {
        const count = r.varint()
        const fp = count > 0 ? r.bytes(FINGERPRINT_BYTES) : new Uint8Array(FINGERPRINT_BYTES)
        ranges.push({ end, mode, count, fingerprint: fp })
        break
      }
      case 'idlist':
        ranges.push({ end, mode, keys: readKeys(r, lo, end) })
        break
      case 'iddiff': {
        const listed = r.varint()
        if (listed > r.remaining * 8) throw invalid('truncated')
        const bitmap = r.bytes(Math.ceil(listed / 8))
        const lacks: boolean[] = new Array(listed)
        for (let i = 0; i < listed; i++) lacks[i] = (((bitmap[i >> 3] as number) >> (i & 7)) & 1) === 1
        if (listed % 8 !== 0 && (bitmap[bitmap.length - 1] as number) >> (listed % 8) !== 0)
          throw invalid('bits set past the end of a bitmap')
        ranges.push({ end, mode, listed, lacks, keys: readKeys(r, lo, end) })
        break
      }
    }
    if (end !== undefined) lo = end
  }
  return { maxBytes: peerMax, ranges }
}

function readBound(r: ByteReader, prevMs: number): Bound {
  const d = r.varint()
  if (d === 0) return undefined
  const ms = prevMs + d - 1
  if (ms > MAX_MS) throw invalid('bound past the 48-bit HLC')
  const c = r.varint()
  if (c >= HLC_COUNTER_LIMIT) throw invalid('HLC counter over 2^16')
  const n = r.u8()
  if (n > ID_BYTES) throw invalid(`id prefix of ${n} bytes`)
  const out = new Uint8Array(HLC_BYTES + n)
  hlcToBytes({ ms, c }, out)
  out.set(r.bytes(n), HLC_BYTES)
  return out
}

/** Reads a key list whose keys must increase strictly inside [lo, hi). */
function readKeys(r: ByteReader, lo: Uint8Array, hi: Bound): Uint8Array[] {
  const n = r.varint()
  // Every key takes at least 34 bytes: refuse a count the message cannot hold before allocating.
  if (n * (2 + ID_BYTES) > r.remaining) throw invalid('truncated')
  const keys: Uint8Array[] = new Array(n)
  let ms = msOf(lo)
  let prev: Uint8Array = lo
  for (let i = 0; i < n; i++) {
    ms += r.varint()
    if (ms > MAX_MS) throw invalid('key past the 48-bit HLC')
    const c = r.varint()
    if (c >= HLC_COUNTER_LIMIT) throw invalid('HLC counter over 2^16')
    const k = new Uint8Array(ITEM_KEY_BYTES)
    hlcToBytes({ ms, c }, k)
    k.set(r.bytes(ID_BYTES), HLC_BYTES)
    if (i === 0 ? compareKeys(k, lo) < 0 : compareKeys(k, prev) <= 0) throw invalid('keys out of order')
    if (hi !== undefined && compareKeys(k, hi) >= 0) throw invalid('a key past its range')
    keys[i] = k
    prev = k
  }
  return keys
}
