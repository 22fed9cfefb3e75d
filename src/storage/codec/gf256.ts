/**
 * Arithmetic in GF(2^8) with the primitive polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d) and generator 2,
 * the field used by klauspost/reedsolomon, Backblaze JavaReedSolomon and the Rust reed-solomon-erasure
 * crate; small dense matrices over it; and the bulk kernel that multiplies a coefficient matrix by rows
 * of bytes (the inner loop of Reed-Solomon encoding and decoding).
 *
 * Addition is XOR. Multiplication uses log/exp tables for scalars and a 64 KiB table of all products
 * ({@link MUL_TABLE}) for bulk work.
 */

import { NodusError } from '../../common/errors.ts'

/** The field's primitive polynomial, x^8 + x^4 + x^3 + x^2 + 1. */
export const GF_POLYNOMIAL = 0x11d

/** EXP[i] = 2^i for i in [0, 510), so EXP[LOG[a] + LOG[b]] needs no modulo. */
const EXP = new Uint8Array(510)
/** LOG[a] = i with 2^i = a, for a in [1, 255]; LOG[0] is unused. */
const LOG = new Uint8Array(256)

{
  let x = 1
  for (let i = 0; i < 255; i++) {
    EXP[i] = x
    LOG[x] = i
    x <<= 1
    if (x & 0x100) x ^= GF_POLYNOMIAL
  }
  for (let i = 255; i < 510; i++) EXP[i] = EXP[i - 255] as number
}

/**
 * All 65,536 products: `MUL_TABLE[(a << 8) | b] = a·b`. Row `a` (256 bytes starting at `a << 8`) is the
 * multiply-by-`a` table used by the bulk kernels.
 */
export const MUL_TABLE: Uint8Array = new Uint8Array(65536)

for (let a = 1; a < 256; a++) {
  const la = LOG[a] as number
  for (let b = 1; b < 256; b++) MUL_TABLE[(a << 8) | b] = EXP[la + (LOG[b] as number)] as number
}

/** a·b in GF(2^8). Arguments are bytes (0..255). */
export function gfMul(a: number, b: number): number {
  return MUL_TABLE[(a << 8) | b] as number
}

/** a/b in GF(2^8). Throws ERASURE_INVALID when `b` is 0. */
export function gfDiv(a: number, b: number): number {
  if (b === 0) throw new NodusError('ERASURE_INVALID', 'division by zero in GF(2^8)')
  if (a === 0) return 0
  return EXP[(LOG[a] as number) + 255 - (LOG[b] as number)] as number
}

/** a^n in GF(2^8) for an integer n ≥ 0, with 0^0 = 1 (as in klauspost's galExp). */
export function gfExp(a: number, n: number): number {
  if (n === 0) return 1
  if (a === 0) return 0
  return EXP[((LOG[a] as number) * n) % 255] as number
}

/** A dense matrix over GF(2^8): an array of rows, each a `Uint8Array` of the column count. */
export type GfMatrix = Uint8Array[]

/**
 * The rows×cols Vandermonde matrix V[r][c] = r^c (0^0 = 1). With rows ≤ 256 its evaluation points are
 * distinct, so any `cols` of its rows are linearly independent.
 */
export function vandermonde(rows: number, cols: number): GfMatrix {
  const m: GfMatrix = []
  for (let r = 0; r < rows; r++) {
    const row = new Uint8Array(cols)
    for (let c = 0; c < cols; c++) row[c] = gfExp(r, c)
    m.push(row)
  }
  return m
}

/** The product a×b; a's column count must equal b's row count. */
export function matMul(a: GfMatrix, b: GfMatrix): GfMatrix {
  const inner = b.length
  const cols = b[0]?.length ?? 0
  return a.map((ar) => {
    const out = new Uint8Array(cols)
    for (let i = 0; i < inner; i++) {
      const base = (ar[i] as number) << 8
      if (base === 0) continue
      const br = b[i] as Uint8Array
      for (let c = 0; c < cols; c++)
        out[c] = (out[c] as number) ^ (MUL_TABLE[base | (br[c] as number)] as number)
    }
    return out
  })
}

/**
 * The inverse of a square matrix, by Gauss-Jordan elimination. Throws ERASURE_INVALID when the matrix
 * is singular (which cannot happen for k rows of a Reed-Solomon encoding matrix).
 */
export function matInvert(m: GfMatrix): GfMatrix {
  const n = m.length
  const a: GfMatrix = m.map((row) => row.slice())
  const inv: GfMatrix = []
  for (let r = 0; r < n; r++) {
    const row = new Uint8Array(n)
    row[r] = 1
    inv.push(row)
  }
  for (let col = 0; col < n; col++) {
    let pivot = col
    while (pivot < n && (a[pivot] as Uint8Array)[col] === 0) pivot++
    if (pivot === n) throw new NodusError('ERASURE_INVALID', 'matrix is singular', { details: { size: n } })
    if (pivot !== col) {
      ;[a[col], a[pivot]] = [a[pivot] as Uint8Array, a[col] as Uint8Array]
      ;[inv[col], inv[pivot]] = [inv[pivot] as Uint8Array, inv[col] as Uint8Array]
    }
    const ar = a[col] as Uint8Array
    const ir = inv[col] as Uint8Array
    const scale = gfDiv(1, ar[col] as number) << 8
    for (let c = 0; c < n; c++) {
      ar[c] = MUL_TABLE[scale | (ar[c] as number)] as number
      ir[c] = MUL_TABLE[scale | (ir[c] as number)] as number
    }
    for (let r = 0; r < n; r++) {
      if (r === col) continue
      const other = a[r] as Uint8Array
      const f = (other[col] as number) << 8
      if (f === 0) continue
      const otherInv = inv[r] as Uint8Array
      for (let c = 0; c < n; c++) {
        other[c] = (other[c] as number) ^ (MUL_TABLE[f | (ar[c] as number)] as number)
        otherInv[c] = (otherInv[c] as number) ^ (MUL_TABLE[f | (ir[c] as number)] as number)
      }
    }
  }
  return inv
}

// ---------------------------------------------------------------------------------------------------
// Bulk kernel: outputs[r] = Σ_i matrix[r][i] · inputs[i], byte by byte.
// ---------------------------------------------------------------------------------------------------

/** Words (4 bytes) per chunk: 16 KiB per shard, so a chunk of every shard stays in L2 cache. */
const CHUNK_WORDS = 4096

/**
 * Computes `outputs[r][j] = XOR_i matrix[r][i]·inputs[i][j]` for j < byteLength, overwriting the outputs.
 * `matrix` has `outputs.length` rows of `inputs.length` coefficients; every shard has at least
 * `byteLength` bytes; outputs must not overlap inputs. Portable TypeScript: 4 bytes per step through
 * 32-bit views, two inputs per pass, in cache-sized chunks; shards not 4-byte aligned are staged
 * through aligned scratch buffers.
 */
export function mulRowsJs(
  matrix: GfMatrix,
  inputs: Uint8Array[],
  outputs: Uint8Array[],
  byteLength: number,
): void {
  const nOut = outputs.length
  const nIn = inputs.length
  if (nOut === 0 || byteLength === 0) return
  const tables = matrix.map((row) => {
    const t: Uint8Array[] = []
    for (let i = 0; i < nIn; i++) {
      const base = (row[i] as number) << 8
      t.push(MUL_TABLE.subarray(base, base + 256))
    }
    return t
  })
  const words = byteLength >>> 2
  if (words > 0) {
    const aligned =
      inputs.every((s) => (s.byteOffset & 3) === 0) && outputs.every((s) => (s.byteOffset & 3) === 0)
    if (aligned) {
      const in32 = inputs.map((s) => new Int32Array(s.buffer, s.byteOffset, words))
      const out32 = outputs.map((s) => new Int32Array(s.buffer, s.byteOffset, words))
      for (let start = 0; start < words; start += CHUNK_WORDS) {
        mulChunk(tables, in32, out32, start, Math.min(words, start + CHUNK_WORDS))
      }
    } else {
      const chunk = Math.min(words, CHUNK_WORDS)
      const in32 = inputs.map(() => new Int32Array(chunk))
      const out32 = outputs.map(() => new Int32Array(chunk))
      for (let start = 0; start < words; start += chunk) {
        const len = Math.min(chunk, words - start)
        const from = start << 2
        const to = from + (len << 2)
        for (let i = 0; i < nIn; i++) {
          const s = in32[i] as Int32Array
          new Uint8Array(s.buffer, 0, len << 2).set((inputs[i] as Uint8Array).subarray(from, to))
        }
        mulChunk(tables, in32, out32, 0, len)
        for (let r = 0; r < nOut; r++) {
          const s = out32[r] as Int32Array
          ;(outputs[r] as Uint8Array).set(new Uint8Array(s.buffer, 0, len << 2), from)
        }
      }
    }
  }
  for (let j = words << 2; j < byteLength; j++) {
    for (let r = 0; r < nOut; r++) {
      const row = matrix[r] as Uint8Array
      let acc = 0
      for (let i = 0; i < nIn; i++)
        acc ^= MUL_TABLE[((row[i] as number) << 8) | ((inputs[i] as Uint8Array)[j] as number)] as number
      ;(outputs[r] as Uint8Array)[j] = acc
    }
  }
}

/** One chunk [start, end) of 32-bit words: each output is set by the first input pair, then XORed. */
function mulChunk(
  tables: Uint8Array[][],
  in32: Int32Array[],
  out32: Int32Array[],
  start: number,
  end: number,
): void {
  const nIn = in32.length
  for (let r = 0; r < out32.length; r++) {
    const t = tables[r] as Uint8Array[]
    const out = out32[r] as Int32Array
    let i: number
    if (nIn >= 2) {
      set2(
        t[0] as Uint8Array,
        t[1] as Uint8Array,
        in32[0] as Int32Array,
        in32[1] as Int32Array,
        out,
        start,
        end,
      )
      i = 2
    } else {
      set1(t[0] as Uint8Array, in32[0] as Int32Array, out, start, end)
      i = 1
    }
    for (; i + 1 < nIn; i += 2) {
      xor2(
        t[i] as Uint8Array,
        t[i + 1] as Uint8Array,
        in32[i] as Int32Array,
        in32[i + 1] as Int32Array,
        out,
        start,
        end,
      )
    }
    if (i < nIn) xor1(t[i] as Uint8Array, in32[i] as Int32Array, out, start, end)
  }
}

// The four loops below are the hot path. Each 32-bit word holds 4 independent bytes; multiplying
// bytewise keeps each byte in its lane, so the result is the same on any endianness. Small-integer
// arithmetic and monomorphic typed-array arguments keep V8 on its fast path. Measured alternatives that
// were slower here: one input per pass, two outputs per pass, four shifted Int32 tables per
// coefficient, 64K-entry 16-bit tables.

function set1(ta: Uint8Array, a: Int32Array, out: Int32Array, start: number, end: number): void {
  for (let j = start; j < end; j++) {
    const w = a[j] as number
    out[j] =
      (ta[w & 255] as number) |
      ((ta[(w >>> 8) & 255] as number) << 8) |
      ((ta[(w >>> 16) & 255] as number) << 16) |
      ((ta[w >>> 24] as number) << 24)
  }
}

function xor1(ta: Uint8Array, a: Int32Array, out: Int32Array, start: number, end: number): void {
  for (let j = start; j < end; j++) {
    const w = a[j] as number
    out[j] =
      (out[j] as number) ^
      ((ta[w & 255] as number) |
        ((ta[(w >>> 8) & 255] as number) << 8) |
        ((ta[(w >>> 16) & 255] as number) << 16) |
        ((ta[w >>> 24] as number) << 24))
  }
}

function set2(
  ta: Uint8Array,
  tb: Uint8Array,
  a: Int32Array,
  b: Int32Array,
  out: Int32Array,
  start: number,
  end: number,
): void {
  for (let j = start; j < end; j++) {
    const w = a[j] as number
    const v = b[j] as number
    out[j] =
      ((ta[w & 255] as number) ^ (tb[v & 255] as number)) |
      (((ta[(w >>> 8) & 255] as number) ^ (tb[(v >>> 8) & 255] as number)) << 8) |
      (((ta[(w >>> 16) & 255] as number) ^ (tb[(v >>> 16) & 255] as number)) << 16) |
      (((ta[w >>> 24] as number) ^ (tb[v >>> 24] as number)) << 24)
  }
}

function xor2(
  ta: Uint8Array,
  tb: Uint8Array,
  a: Int32Array,
  b: Int32Array,
  out: Int32Array,
  start: number,
  end: number,
): void {
  for (let j = start; j < end; j++) {
    const w = a[j] as number
    const v = b[j] as number
    out[j] =
      (out[j] as number) ^
      (((ta[w & 255] as number) ^ (tb[v & 255] as number)) |
        (((ta[(w >>> 8) & 255] as number) ^ (tb[(v >>> 8) & 255] as number)) << 8) |
        (((ta[(w >>> 16) & 255] as number) ^ (tb[(v >>> 16) & 255] as number)) << 16) |
        (((ta[w >>> 24] as number) ^ (tb[v >>> 24] as number)) << 24))
  }
}
