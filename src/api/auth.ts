import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { NodusError } from '../common/errors.ts'

/** File, in the data directory, holding the API bearer token (mode 0600). */
export const TOKEN_FILE = 'api-token'

/** Create a fresh 32-byte random token (hex) in `<dataDir>/api-token`, mode 0600, fsynced. Throws KEYS_EXIST if present. */
export async function createApiToken(dataDir: string): Promise<string> {
  const token = randomBytes(32).toString('hex')
  let fh: Awaited<ReturnType<typeof open>> | undefined
  try {
    fh = await open(join(dataDir, TOKEN_FILE), 'wx', 0o600)
    await fh.writeFile(`${token}\n`)
    await fh.sync()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new NodusError('KEYS_EXIST', 'an API token already exists')
    throw err
  } finally {
    await fh?.close()
  }
  return token
}

/** Read the API token. Throws KEYS_MISSING when absent. */
export async function readApiToken(dataDir: string): Promise<string> {
  try {
    return (await readFile(join(dataDir, TOKEN_FILE), 'utf8')).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NodusError(
        'KEYS_MISSING',
        `no API token in ${dataDir}; run \`nodus init --data-dir ${dataDir}\``,
      )
    }
    throw err
  }
}

/**
 * Constant-time check of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 7235).
 * Both tokens are hashed (SHA-256) first, so the comparison takes the same time whatever the given
 * token's length or content. An empty `token` matches nothing.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (token === '' || header === undefined || header.slice(0, 7).toLowerCase() !== 'bearer ') return false
  const given = createHash('sha256').update(header.slice(7).trim()).digest()
  const want = createHash('sha256').update(token).digest()
  return timingSafeEqual(given, want)
}
