/**
 * The files a node keeps in its data directory that the CLI's client commands read too: the API
 * bearer token and the run file. In common/ so that the CLI client loads neither the API nor the node
 * (test/cli/client-imports.test.ts). docs/ARCHITECTURE.md, "Data directory", lists every file.
 */
import { randomBytes } from 'node:crypto'
import { open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { NodusError } from './errors.ts'

/** File, in the data directory, holding the API bearer token (64 hex characters, mode 0600). */
export const TOKEN_FILE = 'api-token'

/**
 * The run file a started node writes into its data directory (JSON `{ url, pid }` of its HTTP API) so
 * that CLI commands can find it; removed on a clean stop.
 */
export const RUN_FILE = 'api.json'

/**
 * Create a fresh 32-byte random token (hex) in `<dataDir>/api-token`, mode 0600, fsynced.
 * @throws NodusError `KEYS_EXIST` when the file exists
 */
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

/**
 * Read the API token.
 * @throws NodusError `KEYS_MISSING` when absent
 */
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
