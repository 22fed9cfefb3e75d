import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { NodusError } from '../common/errors.ts'

/** Encode `n` (0 ≤ n < 2^53) as an unsigned LEB128 varint (the multiformats unsigned-varint). */
export function encodeVarint(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new NodusError('INVALID_ARGUMENT', `bad varint ${n}`)
  const out: number[] = []
  let v = n
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
  return Uint8Array.from(out)
}

/** Prefix `payload` with its unsigned-varint length. */
export function lengthPrefixed(payload: Uint8Array): Uint8Array {
  const len = encodeVarint(payload.byteLength)
  const out = new Uint8Array(len.byteLength + payload.byteLength)
  out.set(len, 0)
  out.set(payload, len.byteLength)
  return out
}

export interface StreamReaderOptions {
  /** Pause the remote once this many bytes wait unread. Default 1 MiB. */
  highWaterBytes?: number
  signal?: AbortSignal
}

/**
 * Reads a libp2p stream with receive-side backpressure.
 *
 * Incoming messages queue here; above `highWaterBytes` the stream is paused (yamux stops granting
 * window), below half of it the stream resumes. The pause is deferred to a microtask so that a
 * `resume()` in progress cannot undo it (NOTES-libp2p.md, trap 2). Errors: STREAM_CLOSED when the
 * stream ends early, MESSAGE_TOO_LARGE for an oversized frame, PROTOCOL_ERROR for a bad varint.
 */
export class StreamReader {
  readonly #stream: Stream
  readonly #queue = new Uint8ArrayList()
  readonly #high: number
  #ended = false
  #error: Error | undefined
  #wake: (() => void) | undefined
  #pausePending = false
  #wanted = 0
  readonly #signal: AbortSignal | undefined

  constructor(stream: Stream, options: StreamReaderOptions = {}) {
    this.#stream = stream
    this.#high = options.highWaterBytes ?? 1024 * 1024
    this.#signal = options.signal
    stream.addEventListener('message', (evt) => {
      this.#queue.append(evt.data)
      if (this.#shouldPause() && !this.#pausePending) {
        this.#pausePending = true
        queueMicrotask(() => {
          this.#pausePending = false
          if (this.#shouldPause() && this.#stream.readStatus === 'readable') this.#stream.pause()
        })
      }
      this.#notify()
    })
    stream.addEventListener('remoteCloseWrite', () => {
      this.#ended = true
      this.#notify()
    })
    stream.addEventListener('close', (evt) => {
      this.#ended = true
      if (evt.error !== undefined) this.#error = evt.error
      this.#notify()
    })
    if (this.#signal !== undefined) {
      this.#signal.addEventListener('abort', () => this.#notify(), { once: true })
    }
  }

  /** Bytes received and not yet read. */
  get bufferedBytes(): number {
    return this.#queue.byteLength
  }

  #notify(): void {
    const w = this.#wake
    this.#wake = undefined
    w?.()
  }

  /** Pause only when the consumer is not already waiting for more than is queued. */
  #shouldPause(): boolean {
    return this.#queue.byteLength > this.#high && this.#wanted <= this.#queue.byteLength
  }

  #maybeResume(): void {
    if (this.#stream.readStatus === 'paused' && this.#queue.byteLength < this.#high / 2) this.#stream.resume()
  }

  async #waitFor(n: number): Promise<void> {
    try {
      while (this.#queue.byteLength < n) {
        this.#wanted = n
        if (this.#signal?.aborted === true) {
          const reason: unknown = this.#signal.reason
          throw reason instanceof Error ? reason : new NodusError('ABORTED', 'read aborted')
        }
        // The consumer is blocked on more data: let it flow (this also delivers what the stream
        // buffered while paused, which may be all that is left after the remote closed).
        if (this.#stream.readStatus === 'paused') this.#stream.resume()
        if (this.#queue.byteLength >= n) break
        // Events may have fired before this reader existed: read the stream's state too.
        const remoteDone =
          this.#ended || this.#stream.remoteWriteStatus === 'closed' || this.#stream.status !== 'open'
        if (remoteDone && this.#stream.readBufferLength === 0) {
          throw new NodusError('STREAM_CLOSED', 'stream ended before the expected bytes arrived', {
            details: { wanted: n, have: this.#queue.byteLength },
            cause: this.#error,
            peerAction: 'ignore',
          })
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve
        })
      }
    } finally {
      this.#wanted = 0
    }
  }

  /** Read exactly `n` bytes as one contiguous (copied) array. */
  async readExactly(n: number): Promise<Uint8Array> {
    await this.#waitFor(n)
    const out = this.#queue.subarray(0, n)
    this.#queue.consume(n)
    this.#maybeResume()
    return out
  }

  /** Yield exactly `total` bytes as they arrive, in chunks of at most `maxChunk` bytes. */
  async *readChunks(total: number, maxChunk = 256 * 1024): AsyncGenerator<Uint8Array> {
    let left = total
    while (left > 0) {
      await this.#waitFor(1)
      const take = Math.min(left, maxChunk, this.#queue.byteLength)
      const out = this.#queue.subarray(0, take)
      this.#queue.consume(take)
      left -= take
      this.#maybeResume()
      yield out
    }
  }

  /** Read one unsigned-varint length-prefixed frame of at most `maxBytes` bytes. */
  async readFrame(maxBytes: number): Promise<Uint8Array> {
    let len = 0
    let mul = 1
    for (let i = 0; ; i++) {
      if (i >= 8) throw new NodusError('PROTOCOL_ERROR', 'varint too long', { peerAction: 'reject' })
      const b = (await this.readExactly(1))[0] ?? 0
      len += (b & 0x7f) * mul
      mul *= 0x80
      if ((b & 0x80) === 0) break
    }
    if (len > maxBytes) {
      throw new NodusError('MESSAGE_TOO_LARGE', `frame of ${len} bytes exceeds ${maxBytes}`, {
        details: { len, maxBytes },
        peerAction: 'reject',
      })
    }
    return this.readExactly(len)
  }
}

/**
 * Send `data` on `stream`, waiting for 'drain' (or 'close') when the stream's buffer is full.
 * Waits on the events, never on `onDrain()`, which stays resolved after the first drain
 * (NOTES-libp2p.md, trap 1). Throws STREAM_CLOSED if the stream closes while waiting.
 */
export async function sendWithBackpressure(
  stream: Stream,
  data: Uint8Array,
  signal?: AbortSignal,
): Promise<void> {
  if (stream.writeStatus !== 'writable') {
    throw new NodusError('STREAM_CLOSED', `stream is ${stream.writeStatus}`, { peerAction: 'ignore' })
  }
  if (stream.send(data)) return
  await new Promise<void>((resolve, reject) => {
    const done = (err?: unknown): void => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onDrain = (): void => done()
    const onClose = (): void =>
      done(new NodusError('STREAM_CLOSED', 'stream closed while sending', { peerAction: 'ignore' }))
    const onAbort = (): void => done(signal?.reason ?? new NodusError('ABORTED', 'send aborted'))
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
}

/** Send a large buffer in slices of `chunkBytes`, honouring backpressure between slices. */
export async function sendAll(
  stream: Stream,
  data: Uint8Array,
  signal?: AbortSignal,
  chunkBytes = 256 * 1024,
): Promise<void> {
  for (let off = 0; off < data.byteLength; off += chunkBytes) {
    signal?.throwIfAborted()
    await sendWithBackpressure(
      stream,
      data.subarray(off, Math.min(off + chunkBytes, data.byteLength)),
      signal,
    )
  }
}
