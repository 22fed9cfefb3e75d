import { randomBytes, timingSafeEqual } from 'node:crypto'
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

/** Constant-time check of an `Authorization: Bearer <token>` header. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false
  const given = Buffer.from(header.slice(7).trim())
  const want = Buffer.from(token)
  return given.byteLength === want.byteLength && timingSafeEqual(given, want)
}
