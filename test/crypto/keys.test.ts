import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { isNodusError } from '../../src/common/errors.ts'
import {
  ED25519_KEY_FILE,
  generateIdentity,
  hybridPublicKey,
  identityExists,
  identityFromSeeds,
  KEYS_DIR,
  loadIdentity,
  MLDSA65_KEY_FILE,
  type NodeIdentity,
  saveIdentity,
  signHybrid,
  verifyHybrid,
} from '../../src/crypto/index.ts'

let root: string
let counter = 0
/** A fresh empty data directory per test. */
const freshDir = (): string => join(root, `node-${counter++}`)

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'nodus-keys-'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

function sameIdentity(a: NodeIdentity, b: NodeIdentity): void {
  assert.equal(a.peerId.toString(), b.peerId.toString())
  assert.deepEqual(a.ed25519.raw, b.ed25519.raw)
  assert.deepEqual(a.mldsa.publicKey, b.mldsa.publicKey)
  assert.deepEqual(
    a.mldsa.privateKey.export({ format: 'raw-seed' }),
    b.mldsa.privateKey.export({ format: 'raw-seed' }),
  )
}

describe('node identity', () => {
  it('generates an Ed25519 PeerId and a 1952-byte ML-DSA-65 public key', async () => {
    const id = await generateIdentity()
    assert.equal(id.ed25519.type, 'Ed25519')
    assert.equal(id.peerId.type, 'Ed25519')
    assert.match(id.peerId.toString(), /^12D3KooW/)
    assert.equal(id.mldsa.publicKey.length, 1952)
    assert.equal(id.mldsa.privateKey.asymmetricKeyType, 'ml-dsa-65')
  })

  it('save/load round trip; files and keys directory have the right modes and formats', async () => {
    const dir = freshDir()
    const id = await generateIdentity()
    assert.equal(await identityExists(dir), false)
    await saveIdentity(dir, id)
    assert.equal(await identityExists(dir), true)
    const loaded = await loadIdentity(dir)
    sameIdentity(id, loaded)

    for (const file of [ED25519_KEY_FILE, MLDSA65_KEY_FILE]) {
      assert.equal((await stat(join(dir, KEYS_DIR, file))).mode & 0o777, 0o600, file)
    }
    assert.equal((await stat(join(dir, KEYS_DIR))).mode & 0o777, 0o700)
    assert.deepEqual(
      new Uint8Array(await readFile(join(dir, KEYS_DIR, ED25519_KEY_FILE))),
      privateKeyToProtobuf(id.ed25519),
    )
    const mldsa = await readFile(join(dir, KEYS_DIR, MLDSA65_KEY_FILE))
    assert.equal(mldsa.length, 54)
    assert.deepEqual(mldsa.subarray(22), id.mldsa.privateKey.export({ format: 'raw-seed' }))

    // the loaded identity signs, and its signatures verify under the original public keys
    const msg = new Uint8Array([1, 2, 3])
    assert.equal(verifyHybrid(hybridPublicKey(id), msg, await signHybrid(loaded, msg)), true)
  })

  it('leaves no temp files behind', async () => {
    const dir = freshDir()
    await saveIdentity(dir, await generateIdentity())
    const { readdir } = await import('node:fs/promises')
    assert.deepEqual((await readdir(join(dir, KEYS_DIR))).sort(), [ED25519_KEY_FILE, MLDSA65_KEY_FILE].sort())
  })

  it('a deterministic identity is stable (on-disk format fixture)', async () => {
    const dir = freshDir()
    const id = await identityFromSeeds(new Uint8Array(32), new Uint8Array(32).fill(0x2a))
    await saveIdentity(dir, id)
    const ed = await readFile(join(dir, KEYS_DIR, ED25519_KEY_FILE))
    // Type=Ed25519(1), Data = RFC 8032 seed 0...0 || its public key
    assert.equal(
      ed.toString('hex'),
      `08011240${'00'.repeat(32)}3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29`,
    )
    const mldsa = await readFile(join(dir, KEYS_DIR, MLDSA65_KEY_FILE))
    assert.equal(mldsa.toString('hex'), `3034020100300b060960864801650304031204228020${'2a'.repeat(32)}`)
    sameIdentity(id, await loadIdentity(dir))
  })

  it('a second save throws KEYS_EXIST and leaves the first identity intact', async () => {
    const dir = freshDir()
    const first = await generateIdentity()
    await saveIdentity(dir, first)
    await assert.rejects(saveIdentity(dir, await generateIdentity()), (e) => isNodusError(e, 'KEYS_EXIST'))
    sameIdentity(first, await loadIdentity(dir))
  })

  it('refuses when only one key file exists (KEYS_EXIST), and load says which is missing', async () => {
    const dir = freshDir()
    await saveIdentity(dir, await generateIdentity())
    await unlink(join(dir, KEYS_DIR, MLDSA65_KEY_FILE))
    assert.equal(await identityExists(dir), true)
    await assert.rejects(saveIdentity(dir, await generateIdentity()), (e) => isNodusError(e, 'KEYS_EXIST'))
    await assert.rejects(
      loadIdentity(dir),
      (e) =>
        isNodusError(e, 'KEYS_MISSING') &&
        JSON.stringify(e.details.missing) === JSON.stringify([MLDSA65_KEY_FILE]),
    )
  })

  it('concurrent saves: exactly one wins, the other gets KEYS_EXIST, and the files are one identity', async () => {
    const dir = freshDir()
    const ids = await Promise.all([generateIdentity(), generateIdentity(), generateIdentity()])
    const results = await Promise.allSettled(ids.map((id) => saveIdentity(dir, id)))
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []))
    for (const r of results) if (r.status === 'rejected') assert.ok(isNodusError(r.reason, 'KEYS_EXIST'))
    const loaded = await loadIdentity(dir)
    // Only one saver can link ed25519.key, and only that saver goes on to link mldsa65.key.
    assert.equal(won.length, 1)
    const winner = ids[won[0] ?? -1]
    assert.ok(winner !== undefined)
    sameIdentity(winner, loaded)
  })

  it('load of an empty directory throws KEYS_MISSING', async () => {
    await assert.rejects(loadIdentity(freshDir()), (e) => isNodusError(e, 'KEYS_MISSING'))
  })

  describe('corrupt key files give KEY_INVALID', () => {
    const corruptions: [string, string, (b: Buffer) => Uint8Array][] = [
      ['ed25519 truncated', ED25519_KEY_FILE, (b) => b.subarray(0, b.length - 1)],
      ['ed25519 empty', ED25519_KEY_FILE, () => new Uint8Array(0)],
      ['ed25519 garbage', ED25519_KEY_FILE, () => new Uint8Array(68).fill(0xff)],
      ['ed25519 public half flipped', ED25519_KEY_FILE, (b) => flipByte(b, b.length - 1)],
      ['ed25519 trailing byte', ED25519_KEY_FILE, (b) => Buffer.concat([b, Buffer.of(0)])],
      [
        'ed25519 wrong key type (secp256k1 tag)',
        ED25519_KEY_FILE,
        (b) => Buffer.concat([Buffer.of(0x08, 0x02), b.subarray(2)]),
      ],
      ['mldsa truncated', MLDSA65_KEY_FILE, (b) => b.subarray(0, b.length - 1)],
      ['mldsa long', MLDSA65_KEY_FILE, (b) => Buffer.concat([b, Buffer.of(0)])],
      ['mldsa wrong OID', MLDSA65_KEY_FILE, (b) => flipByte(b, 17)],
      ['mldsa empty', MLDSA65_KEY_FILE, () => new Uint8Array(0)],
    ]
    let id: NodeIdentity
    before(async () => {
      id = await generateIdentity()
    })
    for (const [name, file, corrupt] of corruptions) {
      it(name, async () => {
        const dir = freshDir()
        await saveIdentity(dir, id)
        const path = join(dir, KEYS_DIR, file)
        await writeFile(path, corrupt(await readFile(path)))
        await assert.rejects(loadIdentity(dir), (e) => isNodusError(e, 'KEY_INVALID'))
      })
    }
  })
})

function flipByte(b: Buffer, index: number): Uint8Array {
  const out = Uint8Array.from(b)
  out[index] = (out[index] ?? 0) ^ 0x01
  return out
}
