/**
 * X-Wing key files (src/crypto/xwing-keys.ts): the draft's PKCS#8 encoding (Appendix D of
 * draft-connolly-cfrg-xwing-kem-10 encodes the seed 00 01 … 1f as below), save/load/list/delete on a
 * real directory, mode 0600, no overwrite, corrupt files refused.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { xwingKeyPairFromSeed } from '../../src/crypto/xwing.ts'
import {
  decodeXWingKeyFile,
  deleteXWingKey,
  encodeXWingKeyFile,
  listXWingKeys,
  loadXWingKey,
  saveXWingKey,
} from '../../src/crypto/xwing-keys.ts'

// draft-connolly-cfrg-xwing-kem-10, Appendix D: the private key 00 01 … 1f as PKCS#8, PEM body.
const DRAFT_PRIVATE_KEY_PEM_BODY = 'MDQCAQAwDQYLKwYBBAGD5i2ByHoEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'nodus-xwing-keys-'))
  dirs.push(d)
  return d
}

describe('X-Wing key files', () => {
  it('encode the seed as the draft Appendix D PKCS#8 example does', () => {
    const kp = xwingKeyPairFromSeed(Uint8Array.from({ length: 32 }, (_, i) => i))
    assert.equal(Buffer.from(encodeXWingKeyFile(kp)).toString('base64'), DRAFT_PRIVATE_KEY_PEM_BODY)
    const back = decodeXWingKeyFile(new Uint8Array(Buffer.from(DRAFT_PRIVATE_KEY_PEM_BODY, 'base64')))
    assert.deepEqual(back.publicKey, kp.publicKey)
  })

  it('save, list, load and delete keys by epoch; files are 0600 and never overwritten', async () => {
    const dir = await tempDir()
    assert.deepEqual(await listXWingKeys(dir), [])
    const a = xwingKeyPairFromSeed(new Uint8Array(32).fill(1))
    const b = xwingKeyPairFromSeed(new Uint8Array(32).fill(2))
    await saveXWingKey(dir, 10, b)
    await saveXWingKey(dir, 9, a)
    assert.deepEqual(await listXWingKeys(dir), [9, 10])
    assert.deepEqual((await loadXWingKey(dir, 9)).publicKey, a.publicKey)
    assert.deepEqual((await loadXWingKey(dir, 10)).seed, b.seed)
    const st = await stat(join(dir, 'keys', 'xwing-9.key'))
    assert.equal(st.mode & 0o777, 0o600)
    assert.equal((await readFile(join(dir, 'keys', 'xwing-9.key'))).byteLength, 54)
    await assert.rejects(saveXWingKey(dir, 9, b), (e) => isNodusError(e, 'KEYS_EXIST'))
    assert.deepEqual((await loadXWingKey(dir, 9)).publicKey, a.publicKey, 'the first key is kept')
    await deleteXWingKey(dir, 9)
    assert.deepEqual(await listXWingKeys(dir), [10])
    await assert.rejects(loadXWingKey(dir, 9), (e) => isNodusError(e, 'KEYS_MISSING'))
  })

  it('refuses corrupt files and bad epochs', async () => {
    const dir = await tempDir()
    const kp = xwingKeyPairFromSeed(new Uint8Array(32).fill(3))
    await saveXWingKey(dir, 1, kp)
    const path = join(dir, 'keys', 'xwing-1.key')
    const bytes = await readFile(path)
    await rm(path)
    await writeFile(path, bytes.subarray(0, 53))
    await assert.rejects(loadXWingKey(dir, 1), (e) => isNodusError(e, 'KEY_INVALID'))
    const wrongOid = new Uint8Array(bytes)
    wrongOid[10] = 0
    await rm(path)
    await writeFile(path, wrongOid)
    await assert.rejects(loadXWingKey(dir, 1), (e) => isNodusError(e, 'KEY_INVALID'))
    await assert.rejects(saveXWingKey(dir, -1, kp), (e) => isNodusError(e, 'INVALID_ARGUMENT'))
    await assert.rejects(saveXWingKey(dir, 2 ** 32, kp), (e) => isNodusError(e, 'INVALID_ARGUMENT'))
  })
})
