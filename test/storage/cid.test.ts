import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { base32 } from 'multiformats/bases/base32'
import { base36 } from 'multiformats/bases/base36'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { isNodusError } from '../../src/common/errors.ts'
import {
  BLAKE3_MULTIHASH,
  CID_FILE_READ_BYTES,
  cidDigest,
  cidForBytes,
  cidForFile,
  cidFromDigest,
  cidToString,
  DAG_CBOR_CODEC,
  parseCid,
  RAW_CODEC,
  verifyCid,
} from '../../src/storage/codec/cid.ts'
import { assertProperty } from '../utils/property.ts'

const isCidInvalid = (e: unknown): boolean => isNodusError(e, 'CID_INVALID')
const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'))
const text = (s: string): Uint8Array => new TextEncoder().encode(s)

// BLAKE3 of the empty input, from the official vectors (first 32 bytes of the extended output).
const blake3Vectors = JSON.parse(
  readFileSync(new URL('../../../shared/vectors/blake3/test_vectors.json', import.meta.url), 'utf8'),
) as { cases: { input_len: number; hash: string }[] }
/** A sha2-256 multihash (code 0x12), for CIDs that are not ours. */
const sha256 = (bytes: Uint8Array) => createDigest(0x12, createHash('sha256').update(bytes).digest())

const EMPTY_BLAKE3 = (blake3Vectors.cases.find((c) => c.input_len === 0)?.hash ?? '').slice(0, 64)

describe('CID construction', () => {
  it('is CIDv1 raw with a BLAKE3-256 multihash, byte for byte', () => {
    const cid = cidForBytes(new Uint8Array(0))
    assert.equal(cid.version, 1)
    assert.equal(cid.code, RAW_CODEC)
    assert.equal(cid.multihash.code, BLAKE3_MULTIHASH)
    // <version 1><codec 0x55><multihash code 0x1e><length 32><digest>
    assert.deepEqual(cid.bytes, fromHex(`01551e20${EMPTY_BLAKE3}`))
    assert.deepEqual(cidDigest(cid), fromHex(EMPTY_BLAKE3))
    assert.equal(cidToString(cid), base32.encode(cid.bytes))
    assert.match(cidToString(cid), /^bafkr4i[a-z2-7]{52}$/)
  })

  it('takes a codec (dag-cbor)', () => {
    const cid = cidForBytes(text('x'), DAG_CBOR_CODEC)
    assert.equal(cid.code, DAG_CBOR_CODEC)
    assert.match(cidToString(cid), /^bafyr4i/)
  })

  it('cidFromDigest rejects digests that are not 32 bytes', () => {
    for (const n of [0, 31, 33, 64]) assert.throws(() => cidFromDigest(new Uint8Array(n)), isCidInvalid)
  })

  it('cidFromDigest equals multiformats CID.createV1 for any digest and codec (property, seeded)', () => {
    assertProperty(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.oneof(fc.constantFrom(RAW_CODEC, DAG_CBOR_CODEC), fc.integer({ min: 0, max: 0x3fff })),
        (digest, codec) => {
          const ours = cidFromDigest(digest, codec)
          const ref = CID.createV1(codec, createDigest(BLAKE3_MULTIHASH, digest))
          assert.deepEqual(ours.bytes, ref.bytes)
          assert.ok(ours.equals(ref))
          assert.equal(ours.code, codec)
          assert.deepEqual(ours.multihash.digest, digest)
          assert.equal(ours.toString(), ref.toString())
        },
      ),
      { numRuns: 500 },
    )
  })

  it('round trips through its string and its bytes', () => {
    const cid = cidForBytes(text('hello shard'))
    assert.ok(parseCid(cidToString(cid)).equals(cid))
    assert.ok(parseCid(cid.bytes).equals(cid))
    assert.ok(parseCid(cid.toString(base58btc)).equals(cid), 'base58btc is accepted')
    assert.ok(parseCid(cid.toString(base36)).equals(cid), 'base36 is accepted')
  })
})

describe('parseCid rejects hostile input with CID_INVALID', () => {
  const good = cidForBytes(text('good'))
  const goodString = cidToString(good)
  const sha2Cid = CID.createV1(RAW_CODEC, sha256(text('good')))
  const v0 = 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'
  const shortDigest = CID.createV1(RAW_CODEC, createDigest(BLAKE3_MULTIHASH, new Uint8Array(16)))
  const longDigest = CID.createV1(RAW_CODEC, createDigest(BLAKE3_MULTIHASH, new Uint8Array(64)))
  const nonMinimalCodec = Uint8Array.from([0x01, 0xd5, 0x00, ...good.multihash.bytes]) // 0x55 as a 2-byte varint

  const strings: [string, unknown][] = [
    ['empty string', ''],
    ['garbage', 'hello world'],
    ['multibase prefix only', 'b'],
    ['invalid base32 characters', 'bafkr4i!!!!'],
    ['leading whitespace', ` ${goodString}`],
    ['trailing whitespace', `${goodString}\n`],
    ['upper-case base32 (B)', goodString.toUpperCase()],
    ['hex multibase (f)', `f${Buffer.from(good.bytes).toString('hex')}`],
    ['truncated', goodString.slice(0, -1)],
    ['one character more', `${goodString}a`],
    ['huge string', `b${'a'.repeat(100_000)}`],
    ['CIDv0', v0],
    ['CIDv1 sha2-256', sha2Cid.toString()],
    ['16-byte BLAKE3 digest', shortDigest.toString()],
    ['64-byte BLAKE3 digest', longDigest.toString()],
    ['non-minimal varint', base32.encode(nonMinimalCodec)],
    ['a number', 42],
    ['null', null],
    ['an object', { toString: () => goodString }],
  ]
  for (const [name, input] of strings) {
    it(name, () => assert.throws(() => parseCid(input as string), isCidInvalid))
  }

  const binaries: [string, Uint8Array][] = [
    ['empty bytes', new Uint8Array(0)],
    ['trailing byte', Uint8Array.from([...good.bytes, 0])],
    ['truncated bytes', good.bytes.subarray(0, good.bytes.length - 1)],
    ['CIDv0 bytes', CID.parse(v0).bytes],
    ['sha2-256 bytes', sha2Cid.bytes],
    ['short digest bytes', shortDigest.bytes],
    ['non-minimal varint bytes', nonMinimalCodec],
    ['a huge varint', Uint8Array.from([0x01, ...new Array<number>(20).fill(0xff), 0x01])],
    ['oversized input', new Uint8Array(4096).fill(1)],
  ]
  for (const [name, input] of binaries) {
    it(name, () => assert.throws(() => parseCid(input), isCidInvalid))
  }

  it('codec option: accepts the expected codec, rejects another', () => {
    assert.ok(parseCid(goodString, { codec: RAW_CODEC }).equals(good))
    assert.throws(() => parseCid(goodString, { codec: DAG_CBOR_CODEC }), isCidInvalid)
  })

  it('property (seeded): arbitrary strings and bytes give a CID or CID_INVALID, never another error', () => {
    const attempt = (input: string | Uint8Array): void => {
      try {
        parseCid(input)
      } catch (e) {
        assert.ok(isCidInvalid(e), `unexpected ${String(e)}`)
      }
    }
    assertProperty(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 80 }),
          fc.uint8Array({ maxLength: 80 }),
          // near-misses: a valid CID with one byte changed
          fc.tuple(fc.nat(good.bytes.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
            const b = Uint8Array.from(good.bytes)
            b[i] = (b[i] ?? 0) ^ x
            return b
          }),
        ),
        attempt,
      ),
      { numRuns: 2000 },
    )
  })
})

describe('parse(toString(cid)) equals cid (property, seeded)', () => {
  it('for random digests and codecs', () => {
    assertProperty(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.oneof(fc.constantFrom(RAW_CODEC, DAG_CBOR_CODEC), fc.integer({ min: 0, max: 0x7fffffff })),
        (digest, codec) => {
          const cid = cidFromDigest(digest, codec)
          const parsed = parseCid(cidToString(cid))
          assert.ok(parsed.equals(cid))
          assert.equal(parsed.code, codec)
          assert.deepEqual(cidDigest(parsed), digest)
          assert.ok(parseCid(cid.bytes).equals(cid))
        },
      ),
      { numRuns: 500 },
    )
  })
})

describe('verifyCid', () => {
  const bytes = text('shard payload')
  const cid = cidForBytes(bytes)

  it('accepts the content', () => {
    verifyCid(cid, bytes)
  })

  it('throws CID_MISMATCH on other content', () => {
    assert.throws(
      () => verifyCid(cid, text('shard payloaD')),
      (e) => isNodusError(e, 'CID_MISMATCH') && e.details.cid === cidToString(cid),
    )
    assert.throws(
      () => verifyCid(cid, new Uint8Array(0)),
      (e) => isNodusError(e, 'CID_MISMATCH'),
    )
  })

  it('throws CID_INVALID for a CID that is not BLAKE3', () => {
    const sha2Cid = CID.createV1(RAW_CODEC, sha256(bytes))
    assert.throws(() => verifyCid(sha2Cid, bytes), isCidInvalid)
  })
})

describe('cidForFile', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nodus-cid-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const sizes = [
    0,
    1,
    1000,
    CID_FILE_READ_BYTES - 1,
    CID_FILE_READ_BYTES,
    CID_FILE_READ_BYTES + 1,
    3.5 * CID_FILE_READ_BYTES,
  ]
  for (const size of sizes) {
    it(`equals cidForBytes for ${size} bytes`, async () => {
      const content = new Uint8Array(size)
      for (let i = 0; i < size; i++) content[i] = (i * 31 + 7) % 256
      const path = join(dir, `f-${size}`)
      await writeFile(path, content)
      assert.ok((await cidForFile(path)).equals(cidForBytes(content)))
    })
  }

  it('throws FILE_NOT_FOUND for a missing file', async () => {
    await assert.rejects(cidForFile(join(dir, 'missing')), (e) => isNodusError(e, 'FILE_NOT_FOUND'))
  })

  it('honours an aborted signal', async () => {
    const path = join(dir, 'abort')
    await writeFile(path, new Uint8Array(3 * CID_FILE_READ_BYTES))
    const controller = new AbortController()
    controller.abort()
    await assert.rejects(cidForFile(path, { signal: controller.signal }), (e) => isNodusError(e, 'ABORTED'))
  })
})
