import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { placeShards, segment } from '../../src/storage/index.ts'
import { assertProperty } from '../utils/property.ts'

/** Chunks of a stream, a segment size and an alignment (k). */
const INPUTS = [
  fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 12 }),
  fc.integer({ min: 1, max: 5000 }),
  fc.integer({ min: 1, max: 16 }),
] as const

async function* from(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* chunks
}

test('segments reassemble to the input, every segment but the last is full, padding is zero', async () => {
  await assertProperty(
    fc.asyncProperty(...INPUTS, async (chunks, segmentSize, align) => {
      const input = Buffer.concat(chunks)
      const segs: { data: Uint8Array; size: number }[] = []
      for await (const s of segment(from(chunks), segmentSize, align))
        segs.push({ data: Uint8Array.from(s.data), size: s.size })
      assert.deepEqual(Buffer.concat(segs.map((s) => s.data.subarray(0, s.size))), input)
      segs.forEach((s, i) => {
        if (i < segs.length - 1) assert.equal(s.size, segmentSize)
        assert.equal(s.data.byteLength % align, 0)
        assert.ok(s.data.subarray(s.size).every((b) => b === 0))
      })
      assert.equal(segs.length, Math.ceil(input.byteLength / segmentSize))
    }),
    { numRuns: 200 },
  )
})

test('segments in reused memory (arbitrary old bytes) are the same, padding zeroed', async () => {
  await assertProperty(
    fc.asyncProperty(...INPUTS, async (chunks, segmentSize, align) => {
      const fresh: Uint8Array[] = []
      for await (const s of segment(from(chunks), segmentSize, align)) fresh.push(Uint8Array.from(s.data))
      const dirty = (n: number): Uint8Array => new Uint8Array(n).fill(0xa5)
      const reused: Uint8Array[] = []
      for await (const s of segment(from(chunks), segmentSize, align, undefined, dirty))
        reused.push(Uint8Array.from(s.data))
      assert.deepEqual(reused, fresh)
    }),
    { numRuns: 200 },
  )
})

test('releaseChunks: the same segments; whole-buffer chunks are freed once copied, shared ones untouched', async () => {
  await assertProperty(
    fc.asyncProperty(...INPUTS, fc.boolean(), async (chunks, segmentSize, align, shareFirst) => {
      const expected: Uint8Array[] = []
      for await (const s of segment(from(chunks), segmentSize, align)) expected.push(Uint8Array.from(s.data))
      // Own copies: each chunk a whole ArrayBuffer, except (optionally) the first, a view into a larger one.
      const owned: Uint8Array[] = chunks.map((c) => Uint8Array.from(c))
      let shared: Uint8Array | undefined
      const first = owned[0]
      if (shareFirst && first !== undefined) {
        const big = new Uint8Array(first.byteLength + 2)
        big.set(first, 1)
        shared = big.subarray(1, 1 + first.byteLength)
        owned[0] = shared
      }
      const got: Uint8Array[] = []
      for await (const s of segment(from(owned), segmentSize, align, undefined, undefined, true))
        got.push(Uint8Array.from(s.data))
      assert.deepEqual(got, expected)
      owned.forEach((c, i) => {
        if (c === shared) assert.deepEqual(c, chunks[i])
        else assert.equal(c.buffer.byteLength, 0, `chunk ${i} was not freed`)
      })
    }),
    { numRuns: 200 },
  )
})

test('placement puts the n shards of a segment on distinct peers when there are enough, and spreads load', () => {
  assertProperty(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 1, max: 30 }),
      fc.nat(1000),
      (c, n, seg) => {
        const peers = Array.from({ length: c }, (_, i) => `p${i}`)
        const chosen = placeShards(peers, n, seg)
        assert.equal(chosen.length, n)
        if (c >= n) assert.equal(new Set(chosen).size, n)
        else {
          const counts = new Map<string, number>()
          for (const p of chosen) counts.set(p, (counts.get(p) ?? 0) + 1)
          assert.ok(Math.max(...counts.values()) - Math.min(...counts.values()) <= 1)
        }
      },
    ),
    { numRuns: 300 },
  )
  // Over many segments every peer gets the same load.
  const peers = Array.from({ length: 15 }, (_, i) => `p${i}`)
  const load = new Map<string, number>()
  for (let s = 0; s < 15; s++) for (const p of placeShards(peers, 14, s)) load.set(p, (load.get(p) ?? 0) + 1)
  assert.deepEqual(new Set(load.values()), new Set([14]))
  assert.throws(() => placeShards([], 3, 0), RangeError)
})
