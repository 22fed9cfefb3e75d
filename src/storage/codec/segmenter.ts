import { freeIfWhole } from '../../common/bytes.ts'
import { NodusError } from '../../common/errors.ts'

/**
 * Cut a byte stream into segments of exactly `segmentSize` bytes (the last one may be shorter).
 *
 * Each yielded segment is a buffer whose capacity is `segmentSize` rounded up to a multiple of
 * `alignTo`, zero-filled past the data, so it can be split into `alignTo` equal shards without a copy.
 * At most one segment is buffered; memory stays bounded whatever the stream's length.
 *
 * @param alloc memory for each segment (`capacity` bytes, any contents: the padding is zeroed here);
 *   default a new zeroed Uint8Array. Lets the caller reuse the buffers of segments it is done with.
 * @param releaseChunks default false. When true the caller hands over each chunk of `source`: once
 *   copied, a chunk that spans its whole ArrayBuffer is detached (`ArrayBuffer.prototype.transfer(0)`),
 *   which frees its memory at once instead of at V8's next collection. Only for sources whose chunks
 *   nothing else holds, such as an HTTP request body: the chunks read zero-length afterwards.
 * @yields `{ data, size }`: `data.byteLength` is the padded capacity, `size` the real bytes in it
 */
export async function* segment(
  source: AsyncIterable<Uint8Array>,
  segmentSize: number,
  alignTo: number,
  signal?: AbortSignal,
  alloc: (capacity: number) => Uint8Array = (n) => new Uint8Array(n),
  releaseChunks = false,
): AsyncGenerator<{ data: Uint8Array; size: number }> {
  if (!Number.isSafeInteger(segmentSize) || segmentSize < 1) {
    throw new NodusError('INVALID_ARGUMENT', `segmentSize must be a positive integer, got ${segmentSize}`)
  }
  const capacity = Math.ceil(segmentSize / alignTo) * alignTo
  let buf = alloc(capacity)
  let filled = 0
  for await (const chunk of source) {
    signal?.throwIfAborted()
    let off = 0
    while (off < chunk.byteLength) {
      const take = Math.min(segmentSize - filled, chunk.byteLength - off)
      buf.set(chunk.subarray(off, off + take), filled)
      filled += take
      off += take
      if (filled === segmentSize) {
        buf.fill(0, filled, capacity)
        yield { data: buf, size: filled }
        buf = alloc(capacity)
        filled = 0
      }
    }
    if (releaseChunks) freeIfWhole(chunk)
  }
  if (filled > 0) {
    const padded = Math.ceil(filled / alignTo) * alignTo
    buf.fill(0, filled, padded)
    yield { data: buf.subarray(0, padded), size: filled }
  }
}
