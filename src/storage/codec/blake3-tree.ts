/**
 * BLAKE3 as a tree, in portable TypeScript: the compression function, chunk and parent chaining values
 * (CVs), and Bao-style slices (the chunks covering a byte range plus the CVs of the sibling subtrees on
 * the paths to the root) that a verifier holding only the 32-byte root digest and the content size can
 * check. The native binding (@napi-rs/blake-hash, src/crypto) only returns whole hashes; audits need the
 * tree's inner nodes, hence this module. Correctness first: it runs at a few hundred MB/s at most, so use
 * the native `blake3` for plain hashing.
 *
 * Sources: the BLAKE3 specification (O'Connor, Aumasson, Neves, Wilcox-O'Hearn, 2020), §2.1–2.6
 * (compression function, chunks, tree, flags, root output), https://github.com/BLAKE3-team/BLAKE3-specs;
 * the reference implementation reference_impl.rs (`left_len` rule); Bao (verified streaming, "slices"),
 * https://github.com/oconnor663/bao/blob/master/docs/spec.md.
 */

/** Bytes per BLAKE3 chunk (a leaf of the tree). */
export const BLAKE3_CHUNK_BYTES = 1024
/** Bytes per BLAKE3 block (one compression). */
export const BLAKE3_BLOCK_BYTES = 64
/** Bytes per chaining value (CV) and per default-length digest. */
export const BLAKE3_CV_BYTES = 32

const CHUNK_START = 1
const CHUNK_END = 2
const PARENT = 4
const ROOT = 8

const IV = Uint32Array.of(
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
)

/** Scratch message words of one block (module-level: every function here is synchronous). */
const M = new Uint32Array(16)

/**
 * The BLAKE3 compression function (spec §2.2), truncated to its first 8 output words, which is all a
 * CV or a 32-byte root digest needs. Reads `cv[cvOff..+8]` and `m[mOff..+16]` before writing
 * `out[outOff..+8]`, so `out` may alias `cv`.
 *
 * @param counter - the 64-bit counter t (chunk index; 0 for parents), an integer < 2^53
 * @param blockLen - bytes in the block, 0–64
 * @param flags - CHUNK_START | CHUNK_END | PARENT | ROOT (spec Table 3)
 */
function compress(
  cv: Uint32Array,
  cvOff: number,
  m: Uint32Array,
  mOff: number,
  counter: number,
  blockLen: number,
  flags: number,
  out: Uint32Array,
  outOff: number,
): void {
  let m0 = (m[mOff] as number) | 0
  let m1 = (m[mOff + 1] as number) | 0
  let m2 = (m[mOff + 2] as number) | 0
  let m3 = (m[mOff + 3] as number) | 0
  let m4 = (m[mOff + 4] as number) | 0
  let m5 = (m[mOff + 5] as number) | 0
  let m6 = (m[mOff + 6] as number) | 0
  let m7 = (m[mOff + 7] as number) | 0
  let m8 = (m[mOff + 8] as number) | 0
  let m9 = (m[mOff + 9] as number) | 0
  let m10 = (m[mOff + 10] as number) | 0
  let m11 = (m[mOff + 11] as number) | 0
  let m12 = (m[mOff + 12] as number) | 0
  let m13 = (m[mOff + 13] as number) | 0
  let m14 = (m[mOff + 14] as number) | 0
  let m15 = (m[mOff + 15] as number) | 0
  let v0 = (cv[cvOff] as number) | 0
  let v1 = (cv[cvOff + 1] as number) | 0
  let v2 = (cv[cvOff + 2] as number) | 0
  let v3 = (cv[cvOff + 3] as number) | 0
  let v4 = (cv[cvOff + 4] as number) | 0
  let v5 = (cv[cvOff + 5] as number) | 0
  let v6 = (cv[cvOff + 6] as number) | 0
  let v7 = (cv[cvOff + 7] as number) | 0
  let v8 = 0x6a09e667
  let v9 = 0xbb67ae85 | 0
  let v10 = 0x3c6ef372
  let v11 = 0xa54ff53a | 0
  let v12 = counter | 0
  let v13 = Math.floor(counter / 0x1_0000_0000) | 0
  let v14 = blockLen
  let v15 = flags
  for (let round = 0; ; round++) {
    v0 = (v0 + v4 + m0) | 0
    v12 ^= v0
    v12 = (v12 >>> 16) | (v12 << 16)
    v8 = (v8 + v12) | 0
    v4 ^= v8
    v4 = (v4 >>> 12) | (v4 << 20)
    v0 = (v0 + v4 + m1) | 0
    v12 ^= v0
    v12 = (v12 >>> 8) | (v12 << 24)
    v8 = (v8 + v12) | 0
    v4 ^= v8
    v4 = (v4 >>> 7) | (v4 << 25)
    v1 = (v1 + v5 + m2) | 0
    v13 ^= v1
    v13 = (v13 >>> 16) | (v13 << 16)
    v9 = (v9 + v13) | 0
    v5 ^= v9
    v5 = (v5 >>> 12) | (v5 << 20)
    v1 = (v1 + v5 + m3) | 0
    v13 ^= v1
    v13 = (v13 >>> 8) | (v13 << 24)
    v9 = (v9 + v13) | 0
    v5 ^= v9
    v5 = (v5 >>> 7) | (v5 << 25)
    v2 = (v2 + v6 + m4) | 0
    v14 ^= v2
    v14 = (v14 >>> 16) | (v14 << 16)
    v10 = (v10 + v14) | 0
    v6 ^= v10
    v6 = (v6 >>> 12) | (v6 << 20)
    v2 = (v2 + v6 + m5) | 0
    v14 ^= v2
    v14 = (v14 >>> 8) | (v14 << 24)
    v10 = (v10 + v14) | 0
    v6 ^= v10
    v6 = (v6 >>> 7) | (v6 << 25)
    v3 = (v3 + v7 + m6) | 0
    v15 ^= v3
    v15 = (v15 >>> 16) | (v15 << 16)
    v11 = (v11 + v15) | 0
    v7 ^= v11
    v7 = (v7 >>> 12) | (v7 << 20)
    v3 = (v3 + v7 + m7) | 0
    v15 ^= v3
    v15 = (v15 >>> 8) | (v15 << 24)
    v11 = (v11 + v15) | 0
    v7 ^= v11
    v7 = (v7 >>> 7) | (v7 << 25)
    v0 = (v0 + v5 + m8) | 0
    v15 ^= v0
    v15 = (v15 >>> 16) | (v15 << 16)
    v10 = (v10 + v15) | 0
    v5 ^= v10
    v5 = (v5 >>> 12) | (v5 << 20)
    v0 = (v0 + v5 + m9) | 0
    v15 ^= v0
    v15 = (v15 >>> 8) | (v15 << 24)
    v10 = (v10 + v15) | 0
    v5 ^= v10
    v5 = (v5 >>> 7) | (v5 << 25)
    v1 = (v1 + v6 + m10) | 0
    v12 ^= v1
    v12 = (v12 >>> 16) | (v12 << 16)
    v11 = (v11 + v12) | 0
    v6 ^= v11
    v6 = (v6 >>> 12) | (v6 << 20)
    v1 = (v1 + v6 + m11) | 0
    v12 ^= v1
    v12 = (v12 >>> 8) | (v12 << 24)
    v11 = (v11 + v12) | 0
    v6 ^= v11
    v6 = (v6 >>> 7) | (v6 << 25)
    v2 = (v2 + v7 + m12) | 0
    v13 ^= v2
    v13 = (v13 >>> 16) | (v13 << 16)
    v8 = (v8 + v13) | 0
    v7 ^= v8
    v7 = (v7 >>> 12) | (v7 << 20)
    v2 = (v2 + v7 + m13) | 0
    v13 ^= v2
    v13 = (v13 >>> 8) | (v13 << 24)
    v8 = (v8 + v13) | 0
    v7 ^= v8
    v7 = (v7 >>> 7) | (v7 << 25)
    v3 = (v3 + v4 + m14) | 0
    v14 ^= v3
    v14 = (v14 >>> 16) | (v14 << 16)
    v9 = (v9 + v14) | 0
    v4 ^= v9
    v4 = (v4 >>> 12) | (v4 << 20)
    v3 = (v3 + v4 + m15) | 0
    v14 ^= v3
    v14 = (v14 >>> 8) | (v14 << 24)
    v9 = (v9 + v14) | 0
    v4 ^= v9
    v4 = (v4 >>> 7) | (v4 << 25)
    if (round === 6) break
    // Message permutation (spec Table 2: 2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8),
    // written as its two 8-cycles.
    let t = m0
    m0 = m2
    m2 = m3
    m3 = m10
    m10 = m12
    m12 = m9
    m9 = m11
    m11 = m5
    m5 = t
    t = m1
    m1 = m6
    m6 = m4
    m4 = m7
    m7 = m13
    m13 = m14
    m14 = m15
    m15 = m8
    m8 = t
  }
  out[outOff] = v0 ^ v8
  out[outOff + 1] = v1 ^ v9
  out[outOff + 2] = v2 ^ v10
  out[outOff + 3] = v3 ^ v11
  out[outOff + 4] = v4 ^ v12
  out[outOff + 5] = v5 ^ v13
  out[outOff + 6] = v6 ^ v14
  out[outOff + 7] = v7 ^ v15
}

/**
 * Load `n` bytes (0–64) at `bytes[off]` into {@link M} as little-endian words, zero-padded
 * (spec §2.3: a short final block is padded with zeros and its length passed as `blockLen`).
 */
function loadBlock(dv: DataView, off: number, n: number): void {
  if (n === BLAKE3_BLOCK_BYTES) {
    for (let i = 0; i < 16; i++) M[i] = dv.getUint32(off + 4 * i, true)
    return
  }
  M.fill(0)
  for (let i = 0; i < n; i++) M[i >> 2] = (M[i >> 2] as number) | (dv.getUint8(off + i) << ((i & 3) << 3))
}

/** True on little-endian platforms, where BLAKE3's message words can be read in place. */
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1

/** Bytes to hash: a DataView, plus a word view when the bytes can be read as words in place. */
interface Source {
  dv: DataView
  /** Little-endian words of the bytes, when the platform is little-endian and the view 4-aligned. */
  words: Uint32Array | undefined
}

function sourceOf(bytes: Uint8Array): Source {
  const aligned = LITTLE_ENDIAN && bytes.byteOffset % 4 === 0
  return {
    dv: viewOf(bytes),
    words: aligned ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2) : undefined,
  }
}

/**
 * The CV of one chunk (spec §2.4): `len` bytes (0–1024; 0 only for empty input) at offset `off` of
 * `src` (a multiple of 4), chunk index `chunkIndex`, written to `out[outOff..+8]`. With `root`, its last
 * block carries ROOT and the result is the first 8 words of the root output (spec §2.6).
 */
function chunkCv(
  src: Source,
  off: number,
  len: number,
  chunkIndex: number,
  root: boolean,
  out: Uint32Array,
  outOff: number,
): void {
  out.set(IV, outOff)
  const blocks = len === 0 ? 1 : Math.ceil(len / BLAKE3_BLOCK_BYTES)
  const words = src.words
  for (let b = 0; b < blocks; b++) {
    const n = Math.min(BLAKE3_BLOCK_BYTES, len - b * BLAKE3_BLOCK_BYTES)
    let flags = b === 0 ? CHUNK_START : 0
    if (b === blocks - 1) flags |= root ? CHUNK_END | ROOT : CHUNK_END
    const at = off + b * BLAKE3_BLOCK_BYTES
    if (n === BLAKE3_BLOCK_BYTES && words !== undefined) {
      compress(out, outOff, words, at >>> 2, chunkIndex, n, flags, out, outOff)
    } else {
      loadBlock(src.dv, at, n)
      compress(out, outOff, M, 0, chunkIndex, n, flags, out, outOff)
    }
  }
}

/** Parent node (spec §2.5): block = the 16 words `children[off..+16]` (left CV, right CV). */
function parentCv(children: Uint32Array, off: number, root: boolean, out: Uint32Array, outOff: number): void {
  compress(IV, 0, children, off, 0, BLAKE3_BLOCK_BYTES, root ? PARENT | ROOT : PARENT, out, outOff)
}

/**
 * Bytes in the left subtree of a node covering `len` bytes (`len` > 1024): the largest power-of-two
 * number of chunks that leaves at least one byte for the right subtree (reference_impl.rs `left_len`).
 */
export function treeLeftLen(len: number): number {
  const fullChunks = Math.floor((len - 1) / BLAKE3_CHUNK_BYTES)
  let p = 1
  while (p * 2 <= fullChunks) p *= 2
  return p * BLAKE3_CHUNK_BYTES
}

/** Most tree levels for sizes below 2^53 bytes (2^43 chunks), with room to spare. */
const MAX_DEPTH = 64
/** Most sibling CVs a slice can need: at most two per level. */
export const MAX_SLICE_CVS = 2 * MAX_DEPTH

/**
 * Words of CV scratch for a tree walk: the children of the node at depth d go to `[16d, 16d + 16)`, so
 * that a parent's block is 16 contiguous words.
 */
function newStack(): Uint32Array {
  return new Uint32Array(16 * (MAX_DEPTH + 1))
}

/**
 * CV of the subtree of `input` covering bytes `[start, start + len)` (a node of the BLAKE3 tree: start is
 * a multiple of its size's left_len chain), written to `out[outOff..+8]`.
 */
function subtreeCv(
  src: Source,
  stack: Uint32Array,
  start: number,
  len: number,
  root: boolean,
  depth: number,
  out: Uint32Array,
  outOff: number,
): void {
  if (len <= BLAKE3_CHUNK_BYTES) {
    chunkCv(src, start, len, start / BLAKE3_CHUNK_BYTES, root, out, outOff)
    return
  }
  const left = treeLeftLen(len)
  const s = depth * 16
  subtreeCv(src, stack, start, left, false, depth + 1, stack, s)
  subtreeCv(src, stack, start + left, len - left, false, depth + 1, stack, s + 8)
  parentCv(stack, s, root, out, outOff)
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function wordsToBytes(words: Uint32Array, count: number): Uint8Array {
  const bytes = new Uint8Array(count * 4)
  const dv = viewOf(bytes)
  for (let i = 0; i < count; i++) dv.setUint32(4 * i, words[i] as number, true)
  return bytes
}

/**
 * BLAKE3-256 (mode `hash`, default 32-byte output) of `input`, computed by walking the tree in pure
 * TypeScript. Equal to the native `blake3` from src/crypto; slower. For tests and cross-checks.
 *
 * @param input - any length
 * @returns `Uint8Array` of 32 bytes
 */
export function blake3Tree(input: Uint8Array): Uint8Array {
  const out = new Uint32Array(8)
  subtreeCv(sourceOf(input), newStack(), 0, input.byteLength, true, 0, out, 0)
  return wordsToBytes(out, 8)
}

/** Bytes `[lo, hi)` of content of `size` bytes covered by chunks `[firstChunk, endChunk)`. */
function sliceBounds(size: number, firstChunk: number, endChunk: number): { lo: number; hi: number } {
  return { lo: firstChunk * BLAKE3_CHUNK_BYTES, hi: Math.min(size, endChunk * BLAKE3_CHUNK_BYTES) }
}

/** True when `size` bytes and chunks `[firstChunk, endChunk)` make a valid non-empty slice. */
function validSlice(size: number, firstChunk: number, endChunk: number): boolean {
  return (
    Number.isSafeInteger(size) &&
    size >= 1 &&
    Number.isSafeInteger(firstChunk) &&
    Number.isSafeInteger(endChunk) &&
    firstChunk >= 0 &&
    firstChunk < endChunk &&
    (endChunk - 1) * BLAKE3_CHUNK_BYTES < size
  )
}

/**
 * The sibling CVs of a Bao-style slice: for content `input`, the CVs of the maximal subtrees that do not
 * overlap chunks `[firstChunk, endChunk)`, in left-to-right order (a pre-order walk from the root that
 * descends only into subtrees overlapping the range). Together with the bytes of those chunks they let
 * {@link verifySlice} recompute the root. Hashes all of `input` outside the range.
 *
 * @param input - the whole content, at least 1 byte
 * @param firstChunk - index of the first chunk of the range
 * @param endChunk - one past the last chunk of the range (> firstChunk, ≤ the chunk count)
 * @returns `Uint8Array` of 32·n bytes, n ≤ {@link MAX_SLICE_CVS} (n = 0 for a 1-chunk content)
 * @throws RangeError when the chunk range is empty or outside the content (a caller bug)
 */
export function sliceCvs(input: Uint8Array, firstChunk: number, endChunk: number): Uint8Array {
  if (!validSlice(input.byteLength, firstChunk, endChunk)) throw new RangeError('invalid slice range')
  const { lo, hi } = sliceBounds(input.byteLength, firstChunk, endChunk)
  const src = sourceOf(input)
  const stack = newStack()
  const out = new Uint32Array(8 * MAX_SLICE_CVS)
  let n = 0
  const walk = (start: number, len: number): void => {
    if (start >= hi || start + len <= lo) {
      subtreeCv(src, stack, start, len, false, 0, out, 8 * n)
      n++
    } else if (len > BLAKE3_CHUNK_BYTES) {
      const left = treeLeftLen(len)
      walk(start, left)
      walk(start + left, len - left)
    }
  }
  walk(0, input.byteLength)
  return wordsToBytes(out, 8 * n)
}

/**
 * Number of sibling CVs a slice of chunks `[firstChunk, endChunk)` of `size`-byte content carries
 * (what {@link sliceCvs} returns, divided by 32). Depends only on the shape of the tree.
 *
 * @returns the count, or -1 when the range is invalid for `size`
 */
export function sliceCvCount(size: number, firstChunk: number, endChunk: number): number {
  if (!validSlice(size, firstChunk, endChunk)) return -1
  const { lo, hi } = sliceBounds(size, firstChunk, endChunk)
  const walk = (start: number, len: number): number => {
    if (start >= hi || start + len <= lo) return 1
    if (len <= BLAKE3_CHUNK_BYTES) return 0
    const left = treeLeftLen(len)
    return walk(start, left) + walk(start + left, len - left)
  }
  return walk(0, size)
}

/**
 * Check a Bao-style slice against a BLAKE3-256 root digest, knowing only the digest and the content
 * size: recompute the CVs of chunks `[firstChunk, endChunk)` from `data`, combine them with `cvs` up
 * the tree with the parent compression, and compare the root output (compressed with ROOT) to `digest`.
 * Sound because every chunk CV commits to the chunk's index and every node to its position (spec §2.4–2.6,
 * §7: collision resistance of the tree mode), so other bytes or CVs would be a BLAKE3 collision.
 *
 * Never throws: any malformed input (wrong lengths, too few or too many CVs, bad range) gives false.
 * Work is bounded by the slice: O(data bytes + tree depth) compressions.
 *
 * @param digest - `Uint8Array` of 32 bytes, the root digest (a shard CID's multihash digest)
 * @param size - content size in bytes (≥ 1), from a trusted source (the manifest)
 * @param data - the bytes of chunks `[firstChunk, endChunk)`: exactly `min(size, 1024·endChunk) − 1024·firstChunk`
 * @param cvs - sibling CVs, 32 bytes each, in the order {@link sliceCvs} produces
 */
export function verifySlice(
  digest: Uint8Array,
  size: number,
  firstChunk: number,
  endChunk: number,
  data: Uint8Array,
  cvs: Uint8Array,
): boolean {
  if (!(digest instanceof Uint8Array) || digest.byteLength !== BLAKE3_CV_BYTES) return false
  if (!(data instanceof Uint8Array) || !(cvs instanceof Uint8Array)) return false
  if (!validSlice(size, firstChunk, endChunk)) return false
  const { lo, hi } = sliceBounds(size, firstChunk, endChunk)
  if (data.byteLength !== hi - lo || cvs.byteLength % BLAKE3_CV_BYTES !== 0) return false
  if (cvs.byteLength > MAX_SLICE_CVS * BLAKE3_CV_BYTES) return false
  const dataSrc = sourceOf(data)
  const cvView = viewOf(cvs)
  const stack = newStack()
  let cursor = 0
  const node = (
    start: number,
    len: number,
    root: boolean,
    depth: number,
    out: Uint32Array,
    outOff: number,
  ): boolean => {
    if (start >= hi || start + len <= lo) {
      if (cursor + BLAKE3_CV_BYTES > cvs.byteLength) return false
      for (let i = 0; i < 8; i++) out[outOff + i] = cvView.getUint32(cursor + 4 * i, true)
      cursor += BLAKE3_CV_BYTES
      return true
    }
    if (len <= BLAKE3_CHUNK_BYTES) {
      chunkCv(dataSrc, start - lo, len, start / BLAKE3_CHUNK_BYTES, root, out, outOff)
      return true
    }
    const left = treeLeftLen(len)
    const s = depth * 16
    if (!node(start, left, false, depth + 1, stack, s)) return false
    if (!node(start + left, len - left, false, depth + 1, stack, s + 8)) return false
    parentCv(stack, s, root, out, outOff)
    return true
  }
  const root = new Uint32Array(8)
  if (!node(0, size, true, 0, root, 0) || cursor !== cvs.byteLength) return false
  const digestView = viewOf(digest)
  let diff = 0
  for (let i = 0; i < 8; i++) diff |= (root[i] as number) ^ digestView.getUint32(4 * i, true)
  return diff === 0
}
