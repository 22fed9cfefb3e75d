/**
 * Whether two byte arrays hold the same bytes (lengths first, then memcmp through Buffer views; no
 * copies). Works on views at any offset. Not constant-time: for secrets use
 * `crypto.timingSafeEqual`.
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  )
}

/** The bytes of `parts` one after another, in a new `Uint8Array` (never a pooled Buffer). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0
  for (const p of parts) n += p.byteLength
  const out = new Uint8Array(n)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

/**
 * Free a view's memory now, when the view spans the whole of a plain ArrayBuffer: detaches it
 * (`ArrayBuffer.prototype.transfer(0)`), after which every view of that buffer reads zero bytes.
 * Only for memory the caller owns alone, such as the body chunks Node gives an HTTP request or a
 * shard received from a peer. Node's Buffers live outside V8's heap and V8 collects them only about
 * every 64 MB of external allocation; until then glibc's arena holds them, so a long transfer's RSS
 * grows by that much. Views that share their ArrayBuffer (pooled small Buffers, subarrays) are left
 * alone.
 *
 * @returns whether the memory was freed
 */
export function freeIfWhole(view: Uint8Array): boolean {
  const ab = view.buffer
  if (!(ab instanceof ArrayBuffer) || ab.resizable) return false
  if (view.byteOffset !== 0 || ab.byteLength !== view.byteLength || ab.byteLength === 0) return false
  ab.transfer(0)
  return true
}
