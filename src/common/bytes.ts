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
