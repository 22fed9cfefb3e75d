/** Read an async iterable of byte chunks into one Buffer. */
export async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const p of it) parts.push(p)
  return Buffer.concat(parts)
}

/** Yield `buf` in chunks of `size` bytes (default 50,000; the last may be short). */
export async function* chunks(buf: Uint8Array, size = 50_000): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.byteLength; i += size) yield buf.subarray(i, i + size)
}
