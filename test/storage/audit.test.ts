import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import { blake3 } from '../../src/crypto/index.ts'
import {
  BLAKE3_CHUNK_BYTES,
  blake3Tree,
  sliceCvCount,
  sliceCvs,
  treeLeftLen,
  verifySlice,
} from '../../src/storage/codec/blake3-tree.ts'
import { cidForBytes, cidFromDigest, DAG_CBOR_CODEC } from '../../src/storage/codec/cid.ts'
import {
  type AuditChallenge,
  type AuditProof,
  answerChallenge,
  challengeOffset,
  decodeChallenge,
  decodeProof,
  encodeChallenge,
  encodeProof,
  MAX_AUDIT_PROOF_BYTES,
  MAX_AUDIT_RANGE_BYTES,
  makeChallenge,
  proofShape,
  verifyAnswer,
} from '../../src/storage/keeper/audit.ts'
import { assertProperty, propertySeed } from '../utils/property.ts'

// BLAKE3 team's test_vectors.json, read in place from ../shared/vectors.
const VECTORS = new URL('../../../shared/vectors/blake3/test_vectors.json', import.meta.url)

interface Blake3Vectors {
  cases: { input_len: number; hash: string }[]
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

/** Deterministic pseudo-random bytes (xorshift32). */
function pseudoRandom(n: number, seed: number): Uint8Array {
  const buf = new Uint8Array(n)
  let x = seed | 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    buf[i] = x
  }
  return buf
}

/** A deterministic `rng` for makeChallenge: a counter run through BLAKE3. */
function seededRng(seed: number): (n: number) => Uint8Array {
  let counter = 0
  return (n) => {
    const out = new Uint8Array(n)
    for (let off = 0; off < n; off += 32) {
      const block = blake3(new TextEncoder().encode(`rng ${seed} ${counter++}`))
      out.set(block.subarray(0, Math.min(32, n - off)), off)
    }
    return out
  }
}

/** A valid challenge for `shard` whose range satisfies `want` (searches nonces deterministically). */
function challengeWhere(
  shard: Uint8Array,
  length: number,
  want: (offset: number) => boolean,
  start = 0,
): AuditChallenge {
  const cid = cidForBytes(shard)
  for (let i = start; i < start + 1_000_000; i++) {
    const nonce = blake3(new TextEncoder().encode(`nonce ${i}`))
    const offset = challengeOffset(cid, shard.byteLength, length, nonce)
    if (want(offset)) return { cid, size: shard.byteLength, offset, length, nonce }
  }
  throw new Error('no nonce found')
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice()
  copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7))
  return copy
}

function isRejected(err: unknown): boolean {
  return (
    (isNodusError(err, 'PROTOCOL_ERROR') || isNodusError(err, 'MESSAGE_TOO_LARGE')) &&
    err.peerAction === 'reject'
  )
}

describe('BLAKE3 tree in TypeScript', () => {
  const vectors = JSON.parse(readFileSync(VECTORS, 'utf8')) as Blake3Vectors

  it('matches all 35 official test vectors (first 32 bytes of hash)', () => {
    assert.equal(vectors.cases.length, 35)
    for (const c of vectors.cases) {
      const input = new Uint8Array(c.input_len)
      for (let i = 0; i < input.length; i++) input[i] = i % 251
      assert.equal(hex(blake3Tree(input)), c.hash.slice(0, 64), `input_len ${c.input_len}`)
    }
  })

  it(`property: equals native blake3 for random inputs of 0..100 KiB (seed ${propertySeed()})`, () => {
    assertProperty(
      fc.property(fc.integer({ min: 0, max: 100 * 1024 }), fc.integer(), (size, seed) => {
        const input = pseudoRandom(size, seed)
        assert.equal(hex(blake3Tree(input)), hex(blake3(input)))
      }),
      { numRuns: 150 },
    )
  })

  it('equals native blake3 for multi-MiB inputs and on a subarray with an odd byteOffset', () => {
    for (const size of [2 * 1024 * 1024, 3 * 1024 * 1024 + 1, 5 * 1024 * 1024 - 7]) {
      const input = pseudoRandom(size, size)
      assert.equal(hex(blake3Tree(input)), hex(blake3(input)), `size ${size}`)
    }
    const backing = pseudoRandom(10_000, 7)
    const view = backing.subarray(3, 9_001)
    assert.equal(hex(blake3Tree(view)), hex(blake3(view)))
  })

  it('treeLeftLen follows the reference left_len rule', () => {
    assert.equal(treeLeftLen(1025), 1024)
    assert.equal(treeLeftLen(2048), 1024)
    assert.equal(treeLeftLen(2049), 2048)
    assert.equal(treeLeftLen(4096), 2048)
    assert.equal(treeLeftLen(4097), 4096)
    assert.equal(treeLeftLen(2 ** 40 + 1), 2 ** 40)
  })
})

describe('BLAKE3 slices', () => {
  const sizes = [1, 1000, 1024, 1025, 2048, 3000, 4096, 5 * 1024 + 7, 17 * 1024, 64 * 1024 + 1]

  it('every chunk range of up to 3 chunks verifies, and the CV count is as predicted', () => {
    for (const size of sizes) {
      const input = pseudoRandom(size, size)
      const digest = blake3(input)
      const chunks = Math.ceil(size / BLAKE3_CHUNK_BYTES)
      for (let first = 0; first < chunks; first++) {
        for (let end = first + 1; end <= Math.min(chunks, first + 3); end++) {
          const data = input.subarray(first * 1024, Math.min(size, end * 1024))
          const cvs = sliceCvs(input, first, end)
          assert.equal(cvs.byteLength, 32 * sliceCvCount(size, first, end))
          assert.ok(verifySlice(digest, size, first, end, data, cvs), `size ${size} [${first}, ${end})`)
        }
      }
    }
  })

  it('a whole-content slice has no CVs; a 1-chunk shard needs none', () => {
    const input = pseudoRandom(5000, 1)
    assert.equal(sliceCvs(input, 0, 5).byteLength, 0)
    assert.ok(verifySlice(blake3(input), 5000, 0, 5, input, new Uint8Array(0)))
    assert.equal(sliceCvCount(700, 0, 1), 0)
  })

  it('rejects empty or out-of-range slices and wrong lengths without throwing', () => {
    const input = pseudoRandom(3000, 2)
    const digest = blake3(input)
    const cvs = sliceCvs(input, 1, 2)
    const data = input.subarray(1024, 2048)
    assert.ok(verifySlice(digest, 3000, 1, 2, data, cvs))
    assert.equal(verifySlice(digest, 3000, 1, 1, new Uint8Array(0), cvs), false)
    assert.equal(verifySlice(digest, 3000, 2, 4, data, cvs), false)
    assert.equal(verifySlice(digest, 3000, -1, 2, data, cvs), false)
    assert.equal(verifySlice(digest, 3000, 1.5, 2, data, cvs), false)
    assert.equal(verifySlice(digest, 0, 0, 1, data, cvs), false)
    // The digest commits to the size only through the tree's shape and the last chunk, so the size
    // must come from a trusted source (the manifest): another shape fails, and so does a last chunk.
    assert.equal(verifySlice(digest, 5000, 1, 2, data, cvs), false)
    const last = input.subarray(2048)
    assert.ok(verifySlice(digest, 3000, 2, 3, last, sliceCvs(input, 2, 3)))
    assert.equal(verifySlice(digest, 3001, 2, 3, last, sliceCvs(input, 2, 3)), false)
    assert.equal(verifySlice(digest, 3001, 2, 3, new Uint8Array([...last, 0]), sliceCvs(input, 2, 3)), false)
    assert.equal(verifySlice(digest, 3000, 1, 2, data.subarray(1), cvs), false)
    assert.equal(verifySlice(digest, 3000, 1, 2, data, cvs.subarray(1)), false)
    assert.equal(verifySlice(digest, 3000, 1, 2, data, cvs.subarray(32)), false)
    assert.equal(
      verifySlice(digest, 3000, 1, 2, data, new Uint8Array([...cvs, ...cvs.subarray(0, 32)])),
      false,
    )
    assert.equal(verifySlice(digest.subarray(1), 3000, 1, 2, data, cvs), false)
    assert.throws(() => sliceCvs(input, 2, 2), RangeError)
    assert.throws(() => sliceCvs(input, 0, 4), RangeError)
    assert.equal(sliceCvCount(3000, 3, 4), -1)
  })

  it('swapping two sibling CVs fails', () => {
    const input = pseudoRandom(64 * 1024, 3)
    const cvs = sliceCvs(input, 5, 6)
    const swapped = cvs.slice()
    swapped.set(cvs.subarray(0, 32), 32)
    swapped.set(cvs.subarray(32, 64), 0)
    assert.equal(
      verifySlice(blake3(input), input.byteLength, 5, 6, input.subarray(5120, 6144), swapped),
      false,
    )
  })
})

describe('audits: honest proofs', () => {
  it(`property: honest proofs verify for random shards, ranges and nonces, through the wire (seed ${propertySeed()})`, () => {
    assertProperty(
      fc.property(
        fc.integer({ min: 1, max: 200 * 1024 }),
        fc.integer({ min: 1, max: 8 * 1024 }),
        fc.integer(),
        (size, maxLength, seed) => {
          const shard = pseudoRandom(size, seed)
          const cid = cidForBytes(shard)
          const challenge = makeChallenge(cid, size, seededRng(seed), { maxLength })
          assert.ok(challenge.length >= 1 && challenge.length <= Math.min(size, maxLength))
          assert.ok(challenge.offset >= 0 && challenge.offset + challenge.length <= size)
          const received = decodeChallenge(encodeChallenge(challenge))
          assert.deepEqual(received, challenge)
          const proof = decodeProof(encodeProof(answerChallenge(shard, received)))
          const shape = proofShape(challenge)
          assert.equal(proof.data.byteLength, shape.dataBytes)
          assert.equal(proof.cvs.byteLength, shape.cvBytes)
          assert.ok(verifyAnswer(challenge, proof))
        },
      ),
      { numRuns: 200 },
    )
  })

  const shard = pseudoRandom(10 * 1024 + 300, 11) // 11 chunks, the last one 300 bytes
  const cases: [string, number, (offset: number) => boolean][] = [
    ['the first chunk', 100, (o) => o === 0],
    ['the last, partial chunk', 50, (o) => o >= 10 * 1024],
    ['a range ending at the last byte', 1, (o) => o === shard.byteLength - 1],
    ['a range spanning a chunk boundary', 200, (o) => o % 1024 > 900],
    ['a range spanning three chunks', 2100, (o) => o % 1024 > 1000],
    ['a chunk-aligned 1 KiB range', 1024, (o) => o % 1024 === 0],
  ]
  for (const [name, length, want] of cases) {
    it(`verifies ${name}`, () => {
      const challenge = challengeWhere(shard, length, want)
      assert.ok(verifyAnswer(challenge, answerChallenge(shard, challenge)))
    })
  }

  it('verifies on 1-chunk shards (1 byte, 1000 bytes, exactly 1024 bytes) and a dag-cbor CID', () => {
    for (const size of [1, 1000, 1024]) {
      const s = pseudoRandom(size, size)
      const challenge = makeChallenge(cidForBytes(s), size, seededRng(size))
      const proof = answerChallenge(s, challenge)
      assert.equal(proof.cvs.byteLength, 0)
      assert.equal(proof.data.byteLength, size)
      assert.ok(verifyAnswer(challenge, proof))
    }
    const s = pseudoRandom(5000, 5)
    const c = makeChallenge(cidFromDigest(blake3(s), DAG_CBOR_CODEC), 5000, seededRng(5))
    assert.ok(verifyAnswer(c, answerChallenge(s, c)))
  })

  it('a 1 KiB challenge on a 1 MiB shard: 1,024 data bytes and 10 CVs when chunk-aligned', () => {
    const big = pseudoRandom(1024 * 1024, 99)
    const aligned = challengeWhere(big, 1024, (o) => o % 1024 === 0)
    assert.deepEqual(proofShape(aligned), { dataBytes: 1024, cvBytes: 320 })
    const proof = answerChallenge(big, aligned)
    assert.equal(encodeProof(proof).byteLength, 1403)
    assert.equal(encodeChallenge(aligned).byteLength, 118)
    assert.ok(verifyAnswer(aligned, proof))
    const unaligned = challengeWhere(big, 1024, (o) => o % 1024 !== 0)
    assert.equal(proofShape(unaligned).dataBytes, 2048)
    assert.ok(verifyAnswer(unaligned, answerChallenge(big, unaligned)))
  })

  it('ranges derived from nonces cover every chunk of a shard', () => {
    // A chunk is covered when the range overlaps it: at least (its bytes) / (size − length + 1) per
    // challenge, so the 700-byte last chunk here about 1% of the time.
    const s = pseudoRandom(64 * 1024 + 700, 4)
    const cid = cidForBytes(s)
    const rng = seededRng(4)
    const hit = new Set<number>()
    for (let i = 0; i < 2000; i++) {
      const c = makeChallenge(cid, s.byteLength, rng)
      for (let k = Math.floor(c.offset / 1024); k < Math.ceil((c.offset + c.length) / 1024); k++) hit.add(k)
    }
    assert.equal(hit.size, 65)
  })

  it('pins the wire format and the range derivation (fixture)', () => {
    const s = new Uint8Array(3000)
    for (let i = 0; i < s.length; i++) s[i] = i % 251
    const nonce = Uint8Array.from({ length: 32 }, (_, i) => i)
    const cid = cidForBytes(s)
    const challenge: AuditChallenge = {
      cid,
      size: 3000,
      length: 100,
      nonce,
      offset: challengeOffset(cid, 3000, 100, nonce),
    }
    assert.equal(challenge.offset, 2016)
    assert.equal(
      hex(encodeChallenge(challenge)),
      'a661760163636964582401551e205fade288bf27444bee55ba2babb98c3c922c1e84c2e445e7d1f6da24756f5060' +
        '6473697a65190bb8656e6f6e63655820000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f' +
        '666c656e6774681864666f66667365741907e0',
    )
    const proof = encodeProof(answerChallenge(s, challenge))
    assert.equal(proof.byteLength, 2066) // chunks 1–2 (1,976 bytes), 1 CV (chunk 0)
    assert.equal(hex(blake3(proof)), '231a20669d3dc252112ba165c10b31a921a03be603579b234e6ee8ce4374f8ac')
    assert.ok(verifyAnswer(decodeChallenge(encodeChallenge(challenge)), decodeProof(proof)))
  })
})

describe('audits: dishonest and broken answers', () => {
  const shard = pseudoRandom(64 * 1024 + 100, 21)
  const challenge = challengeWhere(shard, 300, (o) => o % 1024 > 900) // spans two chunks
  const proof = answerChallenge(shard, challenge)

  it('every single-bit flip in the data, the CVs or the nonce fails', () => {
    assert.ok(verifyAnswer(challenge, proof))
    assert.equal(proof.data.byteLength, 2048)
    assert.ok(proof.cvs.byteLength >= 5 * 32)
    for (const field of ['data', 'cvs', 'nonce'] as const) {
      for (let bit = 0; bit < proof[field].byteLength * 8; bit++) {
        const bad: AuditProof = { ...proof, [field]: flipBit(proof[field], bit) }
        if (verifyAnswer(challenge, bad)) assert.fail(`flip of ${field} bit ${bit} verified`)
      }
    }
  })

  it('every single-bit flip fails on a 1 MiB shard with a 1-chunk answer too', () => {
    const big = pseudoRandom(1024 * 1024, 22)
    const c = challengeWhere(big, 10, (o) => o % 1024 < 1000)
    const p = answerChallenge(big, c)
    assert.equal(p.cvs.byteLength, 320)
    for (const field of ['data', 'cvs'] as const) {
      for (let bit = 0; bit < p[field].byteLength * 8; bit++) {
        if (verifyAnswer(c, { ...p, [field]: flipBit(p[field], bit) })) assert.fail(`${field} bit ${bit}`)
      }
    }
  })

  it('a proof made from another shard of the same size fails', () => {
    const other = pseudoRandom(shard.byteLength, 22)
    assert.equal(verifyAnswer(challenge, answerChallenge(other, challenge)), false)
    const otherChallenge = { ...challenge, cid: cidForBytes(other) }
    otherChallenge.offset = challengeOffset(
      otherChallenge.cid,
      other.byteLength,
      challenge.length,
      challenge.nonce,
    )
    assert.equal(verifyAnswer(challenge, answerChallenge(other, otherChallenge)), false)
  })

  it('a proof for another range fails, even with the nonce copied in', () => {
    const first = Math.floor(challenge.offset / 1024)
    const other = challengeWhere(shard, 300, (o) => Math.floor(o / 1024) !== first, 1_000)
    const otherProof = answerChallenge(shard, other)
    assert.ok(verifyAnswer(other, otherProof))
    assert.equal(verifyAnswer(challenge, otherProof), false)
    assert.equal(verifyAnswer(challenge, { ...otherProof, nonce: challenge.nonce }), false)
  })

  it('a replayed proof (stale nonce) fails, even when the new nonce derives the same range', () => {
    const fresh = challengeWhere(shard, challenge.length, (o) => o === challenge.offset, 5_000)
    assert.notDeepEqual(fresh.nonce, challenge.nonce)
    assert.equal(verifyAnswer(fresh, proof), false)
    assert.ok(verifyAnswer(fresh, answerChallenge(shard, fresh)))
  })

  it('a challenge with an offset its nonce does not derive is refused by both sides', () => {
    const forged = { ...challenge, offset: challenge.offset + 1 }
    assert.throws(() => answerChallenge(shard, forged), isRejected)
    assert.throws(
      () => encodeChallenge(forged),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.equal(verifyAnswer(forged, answerChallenge(shard, challenge)), false)
  })

  it('empty, oversized and out-of-shard ranges are refused', () => {
    const cid = cidForBytes(shard)
    assert.throws(
      () => makeChallenge(cid, 0, seededRng(1)),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(
      () => makeChallenge(cid, shard.byteLength, seededRng(1), { maxLength: 0 }),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(
      () => makeChallenge(cid, shard.byteLength, seededRng(1), { maxLength: MAX_AUDIT_RANGE_BYTES + 1 }),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(
      () => makeChallenge(cid, 10, () => new Uint8Array(3)),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(
      () => challengeOffset(cid, 10, 0, challenge.nonce),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    assert.throws(
      () => challengeOffset(cid, 10, 11, challenge.nonce),
      (e) => isNodusError(e, 'INVALID_ARGUMENT'),
    )
    const empty = { ...challenge, length: 0, offset: 0 }
    assert.throws(() => answerChallenge(shard, empty), isRejected)
    assert.equal(verifyAnswer(empty, proof), false)
    const tooLong = { ...challenge, length: MAX_AUDIT_RANGE_BYTES + 1, offset: 0 }
    assert.throws(() => answerChallenge(shard, tooLong), isRejected)
    assert.throws(() => answerChallenge(shard.subarray(1), challenge), isRejected) // another size
    assert.throws(() => answerChallenge(shard, { ...challenge, nonce: new Uint8Array(8) }), isRejected)
  })

  it('verifyAnswer returns false on malformed proof objects, never throws', () => {
    const junk: unknown[] = [
      null,
      undefined,
      42,
      'proof',
      [],
      {},
      { ...proof, data: 'x' },
      { ...proof, cvs: null },
      { ...proof, nonce: [1, 2, 3] },
      { ...proof, data: new Uint8Array(0) },
      { ...proof, cvs: proof.cvs.subarray(0, 31) },
      { ...proof, data: proof.data.subarray(0, 2047) },
    ]
    for (const j of junk) assert.equal(verifyAnswer(challenge, j as AuditProof), false)
    assert.equal(verifyAnswer(null as unknown as AuditChallenge, proof), false)
    assert.equal(verifyAnswer({ ...challenge, cid: {} } as unknown as AuditChallenge, proof), false)
    assert.equal(verifyAnswer({ ...challenge, size: Number.NaN }, proof), false)
  })

  it('decodeProof rejects every truncation with a typed error', () => {
    const bytes = encodeProof(proof)
    for (let n = 0; n < bytes.byteLength; n++) {
      assert.throws(() => decodeProof(bytes.subarray(0, n)), isRejected, `truncated to ${n}`)
    }
    assert.throws(
      () => decodeProof(new Uint8Array(MAX_AUDIT_PROOF_BYTES + 1)),
      (e) => isNodusError(e, 'MESSAGE_TOO_LARGE'),
    )
  })

  it('decodeProof and decodeChallenge reject wrong versions, fields and sizes', async () => {
    const dagCbor = await import('@ipld/dag-cbor')
    const good = { v: 1, nonce: proof.nonce, data: proof.data, cvs: proof.cvs }
    const bad: Record<string, unknown>[] = [
      { ...good, v: 2 },
      { ...good, extra: 1 },
      { ...good, nonce: new Uint8Array(15) },
      { ...good, nonce: new Uint8Array(33) },
      { ...good, data: new Uint8Array(0) },
      { ...good, cvs: new Uint8Array(33) },
      { ...good, cvs: new Uint8Array(129 * 32) },
      { ...good, data: 'bytes' },
      { v: 1 },
    ]
    for (const b of bad) assert.throws(() => decodeProof(dagCbor.encode(b)), isRejected)
    assert.throws(() => decodeProof(dagCbor.encode([1, 2])), isRejected)
    assert.throws(() => decodeProof(null as unknown as Uint8Array), isRejected)

    const wire = {
      v: 1,
      cid: challenge.cid.bytes,
      size: challenge.size,
      offset: challenge.offset,
      length: challenge.length,
      nonce: challenge.nonce,
    }
    assert.deepEqual(decodeChallenge(dagCbor.encode(wire)), challenge)
    const badChallenges: Record<string, unknown>[] = [
      { ...wire, v: 0 },
      { ...wire, cid: new Uint8Array([1, 2, 3]) },
      { ...wire, cid: 'b' },
      { ...wire, size: -1 },
      { ...wire, size: 1.5 },
      { ...wire, size: 2 ** 60 },
      { ...wire, offset: challenge.offset + 1 },
      { ...wire, length: 0 },
      { ...wire, length: MAX_AUDIT_RANGE_BYTES + 1 },
      { ...wire, nonce: new Uint8Array(8) },
      { ...wire, more: true },
    ]
    for (const b of badChallenges) assert.throws(() => decodeChallenge(dagCbor.encode(b)), isRejected)
    assert.throws(() => decodeChallenge(new Uint8Array(513)), isRejected)
  })

  it(`property: garbage and mutated wire bytes give a typed error or a failing proof, never a crash (seed ${propertySeed()})`, () => {
    const bytes = encodeProof(proof)
    assertProperty(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 4096 }),
          fc
            .array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 })
            .map((edits) => {
              const b = bytes.slice()
              for (const [at, v] of edits) b[at % b.byteLength] = v
              return b
            }),
        ),
        (b) => {
          let decoded: AuditProof
          try {
            decoded = decodeProof(b)
          } catch (err) {
            assert.ok(isRejected(err), String(err))
            return
          }
          const same = hex(encodeProof(decoded)) === hex(bytes)
          assert.equal(verifyAnswer(challenge, decoded), same)
        },
      ),
      { numRuns: 500 },
    )
    assertProperty(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
        try {
          decodeChallenge(b)
          assert.fail('garbage decoded as a challenge')
        } catch (err) {
          assert.ok(isRejected(err), String(err))
        }
      }),
      { numRuns: 300 },
    )
  })
})
