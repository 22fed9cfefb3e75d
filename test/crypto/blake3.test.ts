import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { Blake3Stream, blake3, blake3DeriveKey, blake3Keyed } from '../../src/crypto/index.ts'

// BLAKE3-team/BLAKE3 test_vectors/test_vectors.json, read in place from ../shared/vectors.
const VECTORS = new URL('../../../shared/vectors/blake3/test_vectors.json', import.meta.url)

interface Blake3Vectors {
  key: string
  context_string: string
  cases: { input_len: number; hash: string; keyed_hash: string; derive_key: string }[]
}

const vectors = JSON.parse(readFileSync(VECTORS, 'utf8')) as Blake3Vectors

/** The vectors' input: byte i is i mod 251. */
function input(length: number): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = i % 251
  return out
}

/** The default 32-byte output is the first 32 bytes of the extended output in the file. */
const first32 = (hex: string): string => hex.slice(0, 64)
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

describe('BLAKE3 official vectors', () => {
  const key = new TextEncoder().encode(vectors.key)

  it('has 35 cases', () => {
    assert.equal(vectors.cases.length, 35)
  })

  for (const c of vectors.cases) {
    it(`input_len ${c.input_len}: hash, keyed_hash, derive_key`, () => {
      const data = input(c.input_len)
      assert.equal(hex(blake3(data)), first32(c.hash))
      assert.equal(hex(blake3Keyed(key, data)), first32(c.keyed_hash))
      assert.equal(hex(blake3DeriveKey(vectors.context_string, data)), first32(c.derive_key))
    })

    it(`input_len ${c.input_len}: streaming in uneven chunks`, () => {
      const data = input(c.input_len)
      const stream = new Blake3Stream()
      const keyed = new Blake3Stream(key)
      // chunk sizes 1, 2, 3, ... crossing the 64-byte block and 1024-byte chunk boundaries unevenly
      let offset = 0
      for (let size = 1; offset < data.length; size = (size * 7 + 3) % 1500) {
        const piece = data.subarray(offset, offset + Math.max(size, 1))
        stream.update(piece)
        keyed.update(piece)
        offset += piece.length
      }
      stream.update(new Uint8Array(0))
      assert.equal(hex(stream.digest()), first32(c.hash))
      assert.equal(hex(keyed.digest()), first32(c.keyed_hash))
    })
  }
})

describe('Blake3Stream', () => {
  it('digest() does not finalize: update may continue', () => {
    const s = new Blake3Stream()
    s.update(new TextEncoder().encode('ab'))
    assert.deepEqual(s.digest(), s.digest())
    s.update(new TextEncoder().encode('c'))
    assert.deepEqual(s.digest(), blake3(new TextEncoder().encode('abc')))
  })

  it('returns plain 32-byte Uint8Arrays', () => {
    const d = blake3(new Uint8Array(3))
    assert.equal(d.length, 32)
    assert.equal(Object.getPrototypeOf(d), Uint8Array.prototype)
  })
})

describe('blake3Keyed key length', () => {
  for (const length of [0, 31, 33]) {
    it(`rejects a ${length}-byte key with KEY_INVALID instead of aborting the process`, () => {
      assert.throws(
        () => blake3Keyed(new Uint8Array(length), new Uint8Array(1)),
        (e) => isNodusError(e, 'KEY_INVALID'),
      )
      assert.throws(
        () => new Blake3Stream(new Uint8Array(length)),
        (e) => isNodusError(e, 'KEY_INVALID'),
      )
    })
  }
})
