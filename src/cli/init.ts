import { mkdir, open } from 'node:fs/promises'
import { join } from 'node:path'
import { createApiToken } from '../common/data-dir.ts'
import { NodusError } from '../common/errors.ts'
import { CONFIG_FILE, parseConfig } from '../config/index.ts'
import { didKeyFromEd25519, generateIdentity, identityExists, saveIdentity } from '../crypto/index.ts'

/**
 * `nodus init`: create the data directory (mode 0700), the node's Ed25519 and ML-DSA-65 keys (0600),
 * the API token (0600) and config.json with `config` (validated first).
 * Throws KEYS_EXIST (nothing is overwritten) or CONFIG_INVALID.
 */
export async function initNode(
  dataDir: string,
  config: Record<string, unknown> = {},
): Promise<{ peerId: string; did: string; token: string; dataDir: string }> {
  parseConfig({ ...config, dataDir })
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  if (await identityExists(dataDir)) {
    throw new NodusError('KEYS_EXIST', `keys already exist in ${dataDir}; refusing to overwrite them`, {
      details: { dataDir },
    })
  }
  const id = await generateIdentity()
  await saveIdentity(dataDir, id)
  const token = await createApiToken(dataDir)
  const fh = await open(join(dataDir, CONFIG_FILE), 'w', 0o600)
  try {
    await fh.writeFile(`${JSON.stringify(config, null, 2)}\n`)
    await fh.sync()
  } finally {
    await fh.close()
  }
  return { peerId: id.peerId.toString(), did: didKeyFromEd25519(id.ed25519.publicKey.raw), token, dataDir }
}
