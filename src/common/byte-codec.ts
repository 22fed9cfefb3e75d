/**
 * Compact binary framing shared by the hand-written wire formats (the pub/sub batch, kv
 * reconciliation): unsigned LEB128 varints (the multiformats unsigned-varint), canonical, at most
 * 8 bytes and 2^53 − 1, a reader that turns every violation into the caller's own error, and a
 * growable writer.
 */

/** Longest varint accepted, bytes (8 × 7 = 56 bits ≥ 53). */
export const MAX_VARINT_BYTES = 8

/** Bytes of the varint of `v` (0 ≤ v ≤ 2^53 − 1). */
export function varintLength(v: number): number {
  let n = 1
  while (v >= 0x80) {
    v = Math.floor(v / 128)
    n++
  }
  return n
}

/** Writes the varint of `v` at `buf[pos]` (room must be there); returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v % 128) | 0x80
    v = Math.floor(v / 128)
  }
  buf[pos++] = v
  return pos
}

/**
 * Reads `bytes` from `pos` on. Every method throws `fail(reason)` (the caller's typed error, e.g. a
 * NodusError with peerAction `reject`) on truncation, a non-canonical or over-long varint, or a
 * varint above 2^53 − 1.
 */
export class ByteReader {
  pos: number
  readonly #bytes: Uint8Array
  readonly #fail: (reason: string) => Error

  constructor(bytes: Uint8Array, pos: number, fail: (reason: string) => Error) {
    this.#bytes = bytes
    this.pos = pos
    this.#fail = fail
  }

  /** Bytes left to read. */
  get remaining(): number {
    return this.#bytes.byteLength - this.pos
  }

  u8(): number {
    if (this.pos >= this.#bytes.byteLength) throw this.#fail('truncated')
    return this.#bytes[this.pos++] as number
  }

  varint(): number {
    let v = 0
    let mul = 1
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const b = this.u8()
      v += (b & 0x7f) * mul
      if (b < 0x80) {
        if (b === 0 && i > 0) throw this.#fail('non-canonical varint')
        if (v > Number.MAX_SAFE_INTEGER) throw this.#fail('varint over 2^53 - 1')
        return v
      }
      mul *= 128
    }
    throw this.#fail('varint too long')
  }

  /** The next `n` bytes, a view (no copy). */
  bytes(n: number): Uint8Array {
    if (n > this.remaining) throw this.#fail('truncated')
    const out = this.#bytes.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }
}

/** Appends bytes and varints to a buffer that doubles as it fills. */
export class ByteWriter {
  #buf: Uint8Array
  #len = 0

  constructor(initialBytes = 256) {
    this.#buf = new Uint8Array(Math.max(16, initialBytes))
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#len
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return
    let size = this.#buf.length * 2
    while (size < this.#len + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.#buf.subarray(0, this.#len))
    this.#buf = next
  }

  u8(v: number): this {
    this.#room(1)
    this.#buf[this.#len++] = v
    return this
  }

  varint(v: number): this {
    this.#room(MAX_VARINT_BYTES)
    this.#len = writeVarint(this.#buf, this.#len, v)
    return this
  }

  bytes(b: Uint8Array): this {
    this.#room(b.length)
    this.#buf.set(b, this.#len)
    this.#len += b.length
    return this
  }

  /** The bytes written, a copy of exactly {@link length} bytes. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len)
  }
}
