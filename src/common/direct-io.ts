/**
 * Direct I/O (O_DIRECT) for shard files: writes and reads that move bytes between a 4 KiB-aligned buffer
 * and the disk without the page cache. Here in common/ because the CLI client (files it downloads) and
 * the bulk channel's request bodies use it too, without loading the storage area.
 *
 * Why: in this VM a buffered write of a fresh shard cost its holder about 2.3 ms of system time per MiB,
 * mostly the kernel's copy into newly allocated page-cache pages (`copy_folio_from_iter_atomic`), and
 * that copy was 18 % of a 16-node put's CPU (docs/benchmarks-history.md, "Session 8"). With O_DIRECT the device
 * reads the bytes from our buffer; the page cache is not filled with shards that are written once and
 * seldom read (hot shards have the store's own cache, storage/store/shard-cache.ts).
 *
 * Constraints (Linux open(2), "O_DIRECT"): the buffer address, the file offset and the length must be
 * multiples of the device's logical block size (512 or 4096 bytes). We use 4096 for all three, round
 * lengths up, and cut files back to their size with ftruncate. Buffer addresses are not visible to
 * JavaScript, so alignment needs the native addon (native/memory.c `alignOffset`). The shard store probes
 * its directory at open ({@link probeDirectIo}); without the addon, with `NODUS_DIRECT_IO=0`, or on a file
 * system that refuses O_DIRECT or 4 KiB alignment (EINVAL), it uses buffered I/O.
 * Durability is unchanged: the file is still fsynced (its size and block map), then renamed, then its
 * directory fsynced.
 */
import { randomFillSync, randomUUID } from 'node:crypto'
import { constants } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { nativeAddon } from './native.ts'

/** Alignment of buffer addresses, file offsets and lengths for direct I/O, bytes. */
export const DIRECT_IO_ALIGN = 4096

/** open(2) flags for a new shard temp file written with direct I/O. */
export const DIRECT_WRITE_FLAGS =
  constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT

/** open(2) flags for reading a shard file with direct I/O. */
export const DIRECT_READ_FLAGS = constants.O_RDONLY | constants.O_DIRECT

/** `n` rounded up to a multiple of {@link DIRECT_IO_ALIGN}. */
export function alignUp(n: number): number {
  return Math.ceil(n / DIRECT_IO_ALIGN) * DIRECT_IO_ALIGN
}

/**
 * Whether direct I/O can be used in this process: the native addon is loaded and `NODUS_DIRECT_IO` is not
 * `0`. (Whether a given file system accepts it is found at the first open.)
 */
export function directIoAvailable(): boolean {
  return process.env.NODUS_DIRECT_IO !== '0' && typeof nativeAddon()?.alignOffset === 'function'
}

/**
 * A buffer of `size` bytes whose first byte is 4 KiB-aligned and whose ArrayBuffer extends at least to
 * `alignUp(size)` past it, so `alignedSpan(buf)` is a valid direct-I/O buffer. Fresh memory (contents
 * arbitrary). Requires {@link directIoAvailable}.
 */
export function allocAligned(size: number): Buffer {
  const raw = Buffer.allocUnsafeSlow(alignUp(size) + DIRECT_IO_ALIGN)
  const offset = (nativeAddon() as NonNullable<ReturnType<typeof nativeAddon>>).alignOffset(
    raw,
    DIRECT_IO_ALIGN,
  )
  return raw.subarray(offset, offset + size)
}

/**
 * The view to pass to a direct write or read for `buf`: the same start, length rounded up to 4 KiB, or
 * undefined when `buf` is not aligned or its ArrayBuffer has no room for the rounded length.
 */
export function alignedSpan(buf: Uint8Array): Uint8Array | undefined {
  const addon = nativeAddon()
  if (addon === null || buf.byteLength === 0) return undefined
  const span = alignUp(buf.byteLength)
  if (buf.byteOffset + span > buf.buffer.byteLength) return undefined
  if (addon.alignOffset(buf, DIRECT_IO_ALIGN) !== 0) return undefined
  return new Uint8Array(buf.buffer, buf.byteOffset, span)
}

/**
 * Whether direct I/O works in `dir`: write one 4 KiB block to a new file there with O_DIRECT, fsync it, read
 * it back with O_DIRECT and compare, then remove the file. False when {@link directIoAvailable} is false or
 * the file system refuses O_DIRECT or 4 KiB alignment (EINVAL); other errors (EACCES, ENOSPC...) are thrown.
 */
export async function probeDirectIo(dir: string): Promise<boolean> {
  if (!directIoAvailable()) return false
  const path = join(dir, `direct-io-probe-${randomUUID()}`)
  const block = allocAligned(DIRECT_IO_ALIGN)
  randomFillSync(block)
  const back = allocAligned(DIRECT_IO_ALIGN)
  try {
    const w = await open(path, DIRECT_WRITE_FLAGS, 0o600)
    try {
      await w.write(block, 0, DIRECT_IO_ALIGN, 0)
      await w.sync()
    } finally {
      await w.close()
    }
    const r = await open(path, DIRECT_READ_FLAGS)
    try {
      const { bytesRead } = await r.read(back, 0, DIRECT_IO_ALIGN, 0)
      return bytesRead === DIRECT_IO_ALIGN && back.equals(block)
    } finally {
      await r.close()
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return false
    throw err
  } finally {
    await rm(path, { force: true })
  }
}
