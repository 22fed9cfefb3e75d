/**
 * Golden bytes of holder updates, which keepers store on disk: a fixture written by the holder-update
 * code before issue #18 (test/storage/fixtures/holder-update-v1.json: a signed manifest and two updates
 * of it, one with extra parity) must still decode and verify, and re-encoding the decoded update with
 * the same signature must give the stored bytes back, byte for byte. ML-DSA-65 signing is hedged, so
 * the signature cannot be recomputed; what is pinned is the encoding and the signed message.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { type HybridSignature, identityFromSeeds, verifyHybrid } from '../../src/crypto/index.ts'
import { cidForBytes } from '../../src/storage/codec/cid.ts'
import {
  decodeHolderUpdate,
  openHolderUpdate,
  parseHolderUpdate,
  signHolderUpdate,
} from '../../src/storage/files/holder-update.ts'
import { decodeManifest } from '../../src/storage/files/manifest.ts'

const fixture = JSON.parse(
  readFileSync(new URL('./fixtures/holder-update-v1.json', import.meta.url), 'utf8'),
) as { manifest: string; updates: string[] }
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)

const uploader = (await identityFromSeeds(seed(7), seed(8))).peerId.toString()
const keeper = (await identityFromSeeds(seed(9), seed(10))).peerId.toString()
const [a, b, c] = (await Promise.all([20, 21, 22].map((x) => identityFromSeeds(seed(x), seed(x + 50))))).map(
  (id) => id.peerId.toString(),
) as [string, string, string]

const manifest = decodeManifest(unhex(fixture.manifest))
const updates = fixture.updates.map(unhex)

describe('golden bytes: holder updates kept on disk', () => {
  it('the stored manifest and updates decode and verify', () => {
    assert.equal(manifest.cid.toString(), 'bafyr4if2e5rsrskp7rkqsrq36453r44tqnk4rgvsuduz5h4irbv2dindiu')
    assert.equal(manifest.manifest.uploader.peerId, uploader)
    const [plain, parity] = updates.map((u) => decodeHolderUpdate(u, manifest).update)
    assert.ok(plain !== undefined && parity !== undefined)
    assert.equal(plain.revision, 2)
    assert.deepEqual(plain.holders, [[[b], [c, a], [a]]])
    assert.equal(plain.parity, undefined)
    assert.equal(plain.signer.peerId, keeper)
    assert.equal(plain.createdAt, 1_750_000_001_000)
    assert.equal(parity.revision, 3)
    assert.deepEqual(parity.holders, [[[b], [c], [a], [b, c]]])
    assert.deepEqual(
      parity.parity?.map((row) => row.map(String)),
      [[cidForBytes(new Uint8Array([9, 1, 2, 3])).toString()]],
    )
    // Through the authority check, as a keeper's inbox runs it.
    const rules = { authority: new Set([keeper]), sequence: { last: 1, maxStep: 16 } }
    assert.equal(openHolderUpdate(updates[1] as Uint8Array, manifest, rules).update.revision, 3)
  })

  it('re-encoding a decoded update with its signature gives the stored bytes and signed message', async () => {
    for (const bytes of updates) {
      const parsed = parseHolderUpdate(bytes)
      const env = dagCbor.decode(bytes) as { sig: HybridSignature }
      let signed: Uint8Array | undefined
      const again = await signHolderUpdate(parsed.update, async (message) => {
        signed = message
        return env.sig
      })
      assert.deepEqual(again.bytes, bytes)
      assert.ok(again.cid.equals(parsed.cid))
      assert.ok(signed !== undefined)
      assert.ok(
        verifyHybrid(parsed.update.signer.publicKey, signed, env.sig),
        'the stored signature signs that message',
      )
    }
  })
})
