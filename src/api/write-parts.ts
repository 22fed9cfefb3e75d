/**
 * Streaming a download's parts into an HTTP response, freeing each part's memory as soon as the socket
 * has taken it.
 *
 * Why not `reply.send(Readable.from(parts))`: the parts (verified data shards, 1 MiB each by default)
 * are Buffers outside V8's heap, and V8 collects those only about every 64 MB of external allocation.
 * A node serving a get then held 50–90 MB of written-out shards at any time (docs/BENCHMARKS.md,
 * "memory"). A write callback tells when the socket is done with a part, so it can be freed at once.
 *
 * This holds for the API's plain TCP socket, whose write callback runs once libuv has written the bytes.
 * It does not hold for a TLS socket: freeing bulk-channel reply chunks in their write callbacks
 * corrupted the bytes sent (tried in session 7), as TLS may still encrypt from them after the
 * callback. Do not reuse this for TLS.
 */
import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import { freeIfWhole } from '../common/bytes.ts'

/**
 * Write `first` and then the rest of `parts` to `res`, whose status and headers must be set; end it.
 * Each part must be the caller's alone (as FileService.get's parts are): once the socket reports it
 * written, a part that spans its whole ArrayBuffer is freed (`freeIfWhole`). Waits for `drain`
 * whenever `res.write` returns false, so at most one socket buffer's worth plus one part is queued.
 *
 * @param first the first part, already taken from `parts` (or undefined when there is none)
 * @param signal aborts the wait for `drain` (the caller aborts it when the client goes away)
 * @returns when the last part is queued and the response ended (not necessarily flushed)
 * @throws whatever `parts` throws, or the abort reason; the caller destroys `res` then (the client sees
 *   a truncated body, as the Content-Length was promised)
 */
export async function writeParts(
  res: ServerResponse,
  first: Uint8Array | undefined,
  parts: AsyncIterator<Uint8Array>,
  signal: AbortSignal,
): Promise<void> {
  let part = first
  while (part !== undefined) {
    const written = part
    // A failed write (socket destroyed) leaves the part to the garbage collector: libuv may still
    // have been writing it.
    const ok = res.write(written, (err) => {
      if (err == null) freeIfWhole(written)
    })
    if (!ok) await once(res, 'drain', { signal })
    signal.throwIfAborted()
    const next = await parts.next()
    part = next.done === true ? undefined : next.value
  }
  res.end()
}
