/**
 * The shard store's files: paths (the fan-out), fsync helpers, the clean-shutdown marker and the recovery
 * pass that reconciles the index with the files after a crash. See src/storage/README.md ("Shard store").
 */

import {
  type FileHandle,
  lstat,
  mkdir,
  open as openFile,
  readdir,
  rename,
  rm,
  unlink,
} from 'node:fs/promises'
import { join } from 'node:path'
import { throwIfAborted } from '../../common/abort.ts'
import { alignUp, allocAligned, DIRECT_IO_ALIGN } from '../../common/direct-io.ts'
import { NodusError } from '../../common/errors.ts'
import type { ShardIndex, ShardIndexUsage } from './shard-store-index.ts'

/** Name of the clean-shutdown marker file in the store directory. */
export const CLEAN_MARKER = 'clean-shutdown'
/** At most this many lost CIDs are listed in a recovery report (all are counted and logged). */
export const MAX_LOST_LISTED = 10_000
/** Files checked at once during the recovery pass. */
const RECOVERY_CONCURRENCY = 64
/** Size of the chunks read() yields, at most, in bytes. */
export const READ_CHUNK_BYTES = 64 * 1024
/** Bytes read from disk per read(2) call by {@link readRange}: the most a range read holds in memory. */
export const READ_BLOCK_BYTES = 256 * 1024
/** Fan-out directory names: two base32 (RFC 4648, lower case) characters. */
const FANOUT_RE = /^[a-z2-7]{2}$/
/** Shard file names: a base32 CIDv1 string (multibase prefix `b`). */
const SHARD_NAME_RE = /^b[a-z2-7]+$/

/**
 * Why a record left the index: its expiry passed (cleanupExpired), it was deleted, its file was missing
 * (`lost`), or its file was there but of the wrong size or its bytes did not hash to the CID (`corrupt`).
 */
export type RemovalReason = 'expired' | 'deleted' | 'lost' | 'corrupt'

/** A record the recovery pass removed, with its indexed size in bytes. */
export interface RemovedRecord {
  cid: string
  size: number
  reason: 'lost' | 'corrupt'
}

/** What open() found and did; see {@link ShardStore.lastRecovery}. */
export interface ShardStoreRecovery {
  /** True when the full reconciliation pass ran (the clean-shutdown marker was absent). */
  fullPass: boolean
  /** Temp files of unfinished puts removed from `tmp/`. */
  tempFilesRemoved: number
  /** Shard files without an index record (a crash between rename and commit, or delete and unlink), removed. */
  orphansRemoved: number
  /**
   * CIDs whose index record had no file or a file of the wrong size: removed from the index and the usage
   * counters (their files, if any, deleted). At most {@link MAX_LOST_LISTED}; `lostCount` counts all.
   */
  lost: string[]
  lostCount: number
  /** Usage after open(); on a full pass, recomputed from the index. */
  usage: ShardIndexUsage
  /** Full pass only: true when the stored counters (less the lost records) differed from the recomputed usage. */
  usageCorrected: boolean
}

export interface DiskLogger {
  debug(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
}

/** SHARD_MISSING for `key`, with an optional reason for logs. */
export function missing(key: string, reason?: string): NodusError {
  return new NodusError('SHARD_MISSING', `no shard ${key}`, {
    details: reason === undefined ? { cid: key } : { cid: key, reason },
  })
}

/**
 * Stream bytes `[start, end)` of an open shard file as chunks of at most 64 KiB. The file is read in blocks
 * of up to 256 KiB (fewer thread-pool round trips than one read per chunk), each into a new buffer the
 * chunks are views of: a range read holds at most one block, never the whole shard. With `into` (a buffer
 * of the whole shard, filled for the cache) blocks are read into it at their file positions instead, and the
 * chunks are views of it. With `direct` the file was opened with O_DIRECT (direct-io.ts): reads start at
 * the 4 KiB boundary at or before `start`, go into 4 KiB-aligned buffers and are rounded up to 4 KiB, and
 * `into` must then come from allocAligned with `start` 0. Throws SHARD_MISSING (logged) when the file is
 * shorter than `indexedSize` says, ABORTED/TIMEOUT.
 */
export async function* readRange(
  fh: FileHandle,
  range: { cid: string; start: number; end: number; indexedSize: number; into: Uint8Array | undefined },
  signal: AbortSignal | undefined,
  log: DiskLogger,
  direct = false,
): AsyncGenerator<Uint8Array, void, undefined> {
  const { cid, end, into } = range
  const short = (at: number): NodusError => {
    log.warn({ cid, at, indexed: range.indexedSize }, 'shard file shorter than index')
    return missing(cid, 'file shorter than index')
  }
  let position = direct ? range.start - (range.start % DIRECT_IO_ALIGN) : range.start
  while (position < end) {
    throwIfAborted(signal)
    // Direct: the block is rounded up to 4 KiB (READ_BLOCK_BYTES is a multiple), and its view starts at
    // `from` when the range does not start on a boundary.
    const want = direct
      ? Math.min(READ_BLOCK_BYTES, alignUp(end) - position)
      : Math.min(READ_BLOCK_BYTES, end - position)
    let block: Uint8Array
    if (into === undefined) block = direct ? allocAligned(want) : new Uint8Array(want)
    else block = new Uint8Array(into.buffer, into.byteOffset + position, want)
    const needed = Math.min(end, position + want) - position
    let filled = 0
    while (filled < want) {
      const { bytesRead } = await fh.read(block, filled, want - filled, position + filled)
      filled += bytesRead
      // O_DIRECT reads stop short at the end of the file (then the next offset would be unaligned).
      if (bytesRead === 0 || (direct && filled % DIRECT_IO_ALIGN !== 0)) break
    }
    if (filled < needed) throw short(position + filled)
    const from = Math.max(range.start, position) - position
    for (let at = from; at < needed; at += READ_CHUNK_BYTES) {
      if (at > from) throwIfAborted(signal)
      yield block.subarray(at, Math.min(needed, at + READ_CHUNK_BYTES))
    }
    position += want
  }
}

export function isErrnoCode(err: unknown, ...codes: string[]): boolean {
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined
  return code !== undefined && codes.includes(code)
}

/** STORE_FULL for a file-system "no space" error (ENOSPC, EDQUOT); other errors are returned unchanged. */
export function noSpaceAsStoreFull(err: unknown, key: string): unknown {
  if (!isErrnoCode(err, 'ENOSPC', 'EDQUOT')) return err
  return new NodusError('STORE_FULL', 'no space left on the file system', {
    details: { cid: key, reason: (err as NodeJS.ErrnoException).code },
    cause: err,
  })
}

/** The fan-out directory of a shard: the two base32 chars before the last char of its CID string. */
export function fanoutOf(key: string): string {
  return key.slice(-3, -1)
}

/** `<dir>/<fan-out>/<cid>` (go-ipfs flatfs "next-to-last/2"). */
export function shardPath(dir: string, key: string): string {
  return join(dir, fanoutOf(key), key)
}

/** fsync a directory, making renames and unlinks in it durable. */
export async function fsyncDir(path: string): Promise<void> {
  const fh = await openFile(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Remove everything in `tmpDir` (creating it if needed); resolves to the number of entries removed. */
export async function clearTmp(tmpDir: string): Promise<number> {
  await mkdir(tmpDir, { recursive: true })
  const names = await readdir(tmpDir)
  for (const name of names) await rm(join(tmpDir, name), { force: true, recursive: true })
  return names.length
}

/**
 * Write the clean-shutdown marker durably: temp file, fsync, rename to `<dir>/clean-shutdown`, fsync `<dir>`.
 * Call only after the index is closed (flushed) and no operation is in flight.
 */
export async function writeCleanMarker(dir: string, tmpDir: string, closedAt: number): Promise<void> {
  const tmp = join(tmpDir, CLEAN_MARKER)
  const fh = await openFile(tmp, 'w', 0o600)
  try {
    await fh.writeFile(`${JSON.stringify({ closedAt })}\n`)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, join(dir, CLEAN_MARKER))
  await fsyncDir(dir)
}

/**
 * Remove the clean-shutdown marker durably (unlink, fsync `<dir>`), so that a crash from now on leads to a
 * full recovery pass. Resolves true when the marker was there (the last close was clean).
 */
export async function takeCleanMarker(dir: string): Promise<boolean> {
  try {
    await unlink(join(dir, CLEAN_MARKER))
  } catch (err) {
    if (isErrnoCode(err, 'ENOENT')) return false
    throw err
  }
  await fsyncDir(dir)
  return true
}

/** Run `fn` over `items`, `RECOVERY_CONCURRENCY` at a time. */
async function forEachBatch<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += RECOVERY_CONCURRENCY) {
    await Promise.all(items.slice(i, i + RECOVERY_CONCURRENCY).map(fn))
  }
}

async function sizeOf(path: string): Promise<number | undefined> {
  return (await fileState(path))?.size
}

/** A file's size and identity (device, inode, change time), as {@link fileState} and {@link fileIdOf} give. */
export interface FileState {
  size: number
  /** `dev:ino:ctimeMs`: changes when the file is replaced, written or truncated. */
  id: string
}

/** The identity of a file from its stats (see {@link FileState.id}). */
export function fileIdOf(st: { dev: number; ino: number; ctimeMs: number }): string {
  return `${st.dev}:${st.ino}:${st.ctimeMs}`
}

/** lstat `path`: its size and identity, or undefined when there is no regular file there. */
export async function fileState(path: string): Promise<FileState | undefined> {
  try {
    const st = await lstat(path)
    return st.isFile() ? { size: st.size, id: fileIdOf(st) } : undefined
  } catch (err) {
    if (isErrnoCode(err, 'ENOENT')) return undefined
    throw err
  }
}

/**
 * Stat the file of every indexed shard (page by page, {@link RECOVERY_CONCURRENCY} at a time) and call
 * `onBad` for each whose file is missing (`lost`, `seen` undefined) or not its record's size (`corrupt`,
 * `seen` the file's identity). The check a clean start runs in the background (a full recovery pass does
 * the same and more); one lstat per shard, no reads.
 * @returns records checked and how many were bad
 * @throws ABORTED/TIMEOUT (signal), STORE_CLOSED/NOT_STARTED from `index()`, file-system errors
 */
export async function checkFileSizes(
  dir: string,
  index: () => ShardIndex,
  onBad: (
    cid: string,
    reason: 'lost' | 'corrupt',
    seen: string | undefined,
    size: number | undefined,
  ) => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<{ checked: number; bad: number }> {
  let checked = 0
  let bad = 0
  let after: string | undefined
  for (;;) {
    throwIfAborted(signal)
    const page = index().list(1000, after)
    if (page.length === 0) break
    after = page.at(-1)?.cid
    await forEachBatch(page, async ({ cid, record }) => {
      throwIfAborted(signal)
      const st = await fileState(shardPath(dir, cid))
      checked++
      if (st !== undefined && st.size === record.size) return
      bad++
      await onBad(cid, st === undefined ? 'lost' : 'corrupt', st?.id, st?.size)
    })
  }
  return { checked, bad }
}

/**
 * The full recovery pass: reconcile the index with the shard files.
 *
 * 1. Walk every fan-out directory: a shard file with no index record is an orphan (a crash between the
 *    rename and the index commit of a put, or between the index commit and the unlink of a delete) and is
 *    removed; a file whose size differs from its record is corrupt: removed, and its CID counted as lost.
 * 2. Count the index records. If every one was matched by a file in step 1, no file is missing; otherwise
 *    scan the index and stat each record's file to find the records without one (lost).
 * 3. One transaction removes the lost records and recomputes the usage counters from the index
 *    ({@link ShardIndex.reconcile}).
 *
 * Cost: one readdir per fan-out directory and one lstat per shard file, plus the index scans of steps 2–3.
 * Files the store did not write (names that are not CIDs) are left alone and logged.
 */
export async function recoverShards(
  dir: string,
  index: ShardIndex,
  log: DiskLogger,
): Promise<{
  orphansRemoved: number
  lost: RemovedRecord[]
  usage: ShardIndexUsage
  usageCorrected: boolean
}> {
  let orphansRemoved = 0
  let matched = 0
  const lost = new Map<string, RemovedRecord>()
  const removeFile = async (path: string): Promise<void> => {
    await rm(path, { force: true })
  }
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    if (!ent.isDirectory() || !FANOUT_RE.test(ent.name)) continue
    const fanoutDir = join(dir, ent.name)
    await forEachBatch(await readdir(fanoutDir), async (name) => {
      const path = join(fanoutDir, name)
      if (!SHARD_NAME_RE.test(name)) {
        log.warn({ path }, 'unknown file in shard directory left alone')
        return
      }
      const record = fanoutOf(name) === ent.name ? index.get(name) : undefined
      if (record === undefined) {
        await removeFile(path)
        orphansRemoved++
        return
      }
      const size = await sizeOf(path)
      if (size === record.size) {
        matched++
        return
      }
      log.warn({ cid: name, size, indexed: record.size }, 'shard file size differs from index: lost')
      if (size !== undefined) await removeFile(path)
      lost.set(name, { cid: name, size: record.size, reason: size === undefined ? 'lost' : 'corrupt' })
    })
  }
  if (matched + lost.size < index.countRecords()) {
    // Some records have no file: find them (page by page, so no read snapshot is held across awaits).
    let after: string | undefined
    for (;;) {
      const page = index.list(1000, after)
      if (page.length === 0) break
      after = page.at(-1)?.cid
      await forEachBatch(page, async ({ cid, record }) => {
        if (lost.has(cid) || (await sizeOf(shardPath(dir, cid))) !== undefined) return
        log.warn({ cid }, 'indexed shard has no file: lost')
        lost.set(cid, { cid, size: record.size, reason: 'lost' })
      })
    }
  }
  const result = await index.reconcile([...lost.keys()])
  if (result.expiryRebuilt) log.warn({}, 'expiry index disagreed with the records: rebuilt')
  return {
    orphansRemoved,
    lost: [...lost.values()],
    usage: result.usage,
    usageCorrected: result.countersCorrected,
  }
}

/**
 * open()'s reconciliation step, after the marker check and the tmp/ clean-up: on a clean start (`clean`)
 * just report; otherwise run {@link recoverShards} and log its summary (at warn when shards were lost or the
 * counters were wrong). `removed` lists every record the pass removed (all of them, with sizes), for the
 * store's removal callback.
 */
export async function recoverOnOpen(
  dir: string,
  index: ShardIndex,
  start: { clean: boolean; tempFilesRemoved: number },
  log: DiskLogger,
): Promise<ShardStoreRecovery & { removed: RemovedRecord[] }> {
  const { clean, tempFilesRemoved } = start
  if (clean) {
    return {
      fullPass: false,
      tempFilesRemoved,
      orphansRemoved: 0,
      lost: [],
      lostCount: 0,
      usage: index.usage(),
      usageCorrected: false,
      removed: [],
    }
  }
  const r = await recoverShards(dir, index, log)
  const summary = {
    fullPass: true,
    tempFilesRemoved,
    orphansRemoved: r.orphansRemoved,
    lostCount: r.lost.length,
    usage: r.usage,
    usageCorrected: r.usageCorrected,
  }
  if (r.lost.length > 0 || r.usageCorrected) log.warn(summary, 'shard store recovery pass found damage')
  else log.debug(summary, 'shard store recovery pass done')
  return { ...summary, lost: r.lost.slice(0, MAX_LOST_LISTED).map((l) => l.cid), removed: r.lost }
}
