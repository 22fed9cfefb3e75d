/**
 * File steps shared by the key stores (keys.ts: the node identity; xwing-keys.ts: X-Wing keys): a key
 * file is written to a temp file (mode 0600) and fsynced, then hard-linked to its name, which fails
 * with EEXIST instead of replacing (so a race can never overwrite a key), and the directory fsynced.
 */
import { randomBytes } from 'node:crypto'
import { open, readFile, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'

/** The errno code of a Node system error (`ENOENT`, `EEXIST`, …), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string')
    return err.code
  return undefined
}

/** Whether `path` exists (any other stat error is thrown). */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false
    throw err
  }
}

/** Write `bytes` to a fresh temp file in `dir` (mode 0600), fsync it, and return its path. */
export async function writeTemp(dir: string, name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, `.${name}.${randomBytes(8).toString('hex')}.tmp`)
  const fh = await open(path, 'wx', 0o600)
  try {
    await fh.chmod(0o600) // in case the umask removed owner bits
    await fh.writeFile(bytes)
    await fh.sync()
  } finally {
    await fh.close()
  }
  return path
}

/** fsync a directory, so the names linked or removed in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Remove `path`; nothing when it is already gone. */
export async function unlinkQuietly(path: string): Promise<void> {
  try {
    await unlink(path)
  } catch {
    // already gone
  }
}

/** The file's bytes, or null when it does not exist. */
export async function readOrNull(path: string): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await readFile(path))
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null
    throw err
  }
}
