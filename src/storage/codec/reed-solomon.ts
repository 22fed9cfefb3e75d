/**
 * Systematic Reed-Solomon erasure coding over GF(2^8) (polynomial 0x11d), byte-for-byte compatible with
 * klauspost/reedsolomon (Go, default options), Backblaze JavaReedSolomon and the Rust
 * reed-solomon-erasure crate.
 *
 * Algorithm: J. S. Plank, "A Tutorial on Reed-Solomon Coding for Fault-Tolerance in RAID-like Systems",
 * Software—Practice & Experience 27(9), 1997, with the correction in J. S. Plank and Y. Ding, "Note:
 * Correction to the 1997 Tutorial on Reed-Solomon Coding", Software—Practice & Experience 35(2), 2005
 * (technical report UT-CS-03-504, 2003): the encoding matrix is the (k+m)×k Vandermonde matrix
 * V[r][c] = r^c multiplied on the right by the inverse of its top k×k square, so its top k rows are the
 * identity (data shards are stored as they are) and any k of its rows are invertible (any k shards
 * decode). This is the construction of Backblaze JavaReedSolomon and klauspost/reedsolomon.
 */
import { bytesEqual } from '../../common/bytes.ts'
import { NodusError } from '../../common/errors.ts'
import { type GfMatrix, matInvert, matMul, mulRowsJs, vandermonde } from './gf256.ts'
import {
  autoKernel,
  type ErasureKernel,
  type NativeKernel,
  nativeKernel,
  type SimdKernel,
  simdKernel,
} from './rs-kernels.ts'

export { type ErasureKernel, kernelMulRows, nativeKernelPath } from './rs-kernels.ts'

/** Options for {@link ReedSolomon}. */
export interface ReedSolomonOptions {
  /**
   * Bulk kernel: `auto` (default) uses the first of `native`, `simd`, `js` that loads and passes its
   * self-check (the environment variable NODUS_ERASURE_KERNEL, one of those names, caps the choice).
   * Asking for `native` or `simd` when it is unavailable throws ERASURE_INVALID.
   */
  kernel?: 'auto' | ErasureKernel
  /** Decoding matrices cached per erasure pattern (LRU). Default 256. */
  maxCachedMatrices?: number
}

/** Options for {@link ReedSolomon.reconstruct} and {@link ReedSolomon.reconstructData}. */
export interface ReconstructOptions {
  /** Memory for the rebuilt shards, in order of missing index; see {@link ReedSolomon.reconstruct}. */
  buffers?: readonly Uint8Array[]
}

/** Largest k + m: GF(2^8) has 256 distinct evaluation points. */
export const MAX_TOTAL_SHARDS = 256

const DEFAULT_MAX_CACHED_MATRICES = 256

/**
 * A Reed-Solomon codec for k data shards and m parity shards (RS(k, m)). Create one per (k, m) and reuse
 * it: construction inverts a k×k matrix, and decoding matrices are cached per erasure pattern.
 *
 * Shards are `Uint8Array`s of one common byte length (any length, including 0 and odd lengths); shard
 * i < k is data, shard i ≥ k is parity. Any k of the k+m shards rebuild all of them.
 *
 * Methods are synchronous and CPU-bound: about (k·m) table lookups per byte of a shard.
 */
export class ReedSolomon {
  /** k: data shards, 1 ≤ k. */
  readonly dataShards: number
  /** m: parity shards, 0 ≤ m. */
  readonly parityShards: number
  /** k + m, at most {@link MAX_TOTAL_SHARDS}. */
  readonly totalShards: number
  /** The bulk kernel in use. */
  readonly kernel: ErasureKernel

  /** The (k+m)×k encoding matrix; its top k rows are the identity. */
  readonly #matrix: GfMatrix
  /** Rows k..k+m-1 of the encoding matrix. */
  readonly #parityRows: GfMatrix
  /** Inverse of the sub-matrix of the rows used to decode, keyed by those row indices. LRU order. */
  readonly #decodeCache = new Map<string, GfMatrix>()
  readonly #maxCached: number

  /**
   * @param dataShards k, an integer ≥ 1
   * @param parityShards m, an integer ≥ 0
   * @throws NodusError ERASURE_INVALID when k or m is not such an integer or k + m > 256
   */
  constructor(dataShards: number, parityShards: number, options: ReedSolomonOptions = {}) {
    if (!Number.isSafeInteger(dataShards) || dataShards < 1) {
      throw invalid('data shard count must be an integer ≥ 1', { dataShards, parityShards })
    }
    if (!Number.isSafeInteger(parityShards) || parityShards < 0) {
      throw invalid('parity shard count must be an integer ≥ 0', { dataShards, parityShards })
    }
    if (dataShards + parityShards > MAX_TOTAL_SHARDS) {
      throw invalid(`k + m must be at most ${MAX_TOTAL_SHARDS}`, { dataShards, parityShards })
    }
    const maxCached = options.maxCachedMatrices ?? DEFAULT_MAX_CACHED_MATRICES
    if (!Number.isSafeInteger(maxCached) || maxCached < 0) {
      throw invalid('maxCachedMatrices must be an integer ≥ 0', { maxCachedMatrices: maxCached })
    }
    this.dataShards = dataShards
    this.parityShards = parityShards
    this.totalShards = dataShards + parityShards
    const kernel = options.kernel ?? 'auto'
    if (kernel === 'simd' && simdKernel() === null) {
      throw invalid('the WebAssembly SIMD kernel is not available here', { kernel })
    }
    if (kernel === 'native' && nativeKernel() === null) {
      throw invalid('the native kernel is not built or not usable here', { kernel })
    }
    this.kernel = kernel === 'auto' ? autoKernel() : kernel
    this.#maxCached = maxCached
    const v = vandermonde(this.totalShards, dataShards)
    this.#matrix = matMul(v, matInvert(v.slice(0, dataShards)))
    this.#parityRows = this.#matrix.slice(dataShards)
  }

  /**
   * Computes the parity shards k..k+m-1 in place from the data shards 0..k-1.
   *
   * @param shards k+m `Uint8Array`s of one byte length; parity shards are overwritten and must not
   *   overlap data shards
   * @throws NodusError ERASURE_INVALID on a wrong shard count, a missing shard or mismatched lengths
   */
  encode(shards: Uint8Array[]): void {
    const size = this.#checkComplete(shards)
    this.#mulRows(this.#parityRows, shards.slice(0, this.dataShards), shards.slice(this.dataShards), size)
  }

  /**
   * Rebuilds every missing shard, data and parity. Missing entries are `null` (or `undefined`); each is
   * replaced by a newly allocated `Uint8Array`. Present shards are read, never written. When more than k
   * shards are present, the first k (by index) are used.
   *
   * @param shards k+m entries, present ones of one byte length
   * @param options.buffers storage for the rebuilt shards, used in order of missing index (each
   *   rebuilt shard is the first `size` bytes of the next buffer); missing shards beyond the list get
   *   new memory. Lets a caller reuse memory across segments instead of allocating per call.
   * @returns the same array, now without missing entries
   * @throws NodusError ERASURE_INVALID on a wrong shard count, mismatched lengths or a buffer shorter
   *   than a shard
   * @throws NodusError DECODE_FAILED (details `{ have, need }`) when fewer than k shards are present
   */
  reconstruct(shards: (Uint8Array | null)[], options: ReconstructOptions = {}): Uint8Array[] {
    this.#rebuild(shards, false, options.buffers)
    return shards as Uint8Array[]
  }

  /**
   * Like {@link ReedSolomon.reconstruct} but rebuilds only missing data shards; missing parity shards
   * stay `null`. The fast path for reads.
   *
   * @param options.buffers as for {@link ReedSolomon.reconstruct}
   * @returns the same array, with data shards 0..k-1 present
   * @throws NodusError ERASURE_INVALID on a wrong shard count, mismatched lengths or a short buffer
   * @throws NodusError DECODE_FAILED (details `{ have, need }`) when fewer than k shards are present
   */
  reconstructData(shards: (Uint8Array | null)[], options: ReconstructOptions = {}): (Uint8Array | null)[] {
    this.#rebuild(shards, true, options.buffers)
    return shards
  }

  /**
   * True when the parity shards equal the parity computed from the data shards. Works in slices of at
   * most 64 KiB, so it allocates at most m·64 KiB.
   *
   * @param shards k+m `Uint8Array`s of one byte length
   * @throws NodusError ERASURE_INVALID on a wrong shard count, a missing shard or mismatched lengths
   */
  verify(shards: Uint8Array[]): boolean {
    const size = this.#checkComplete(shards)
    const k = this.dataShards
    const slice = Math.min(size, VERIFY_SLICE_BYTES)
    const scratch: Uint8Array[] = []
    for (let r = 0; r < this.parityShards; r++) scratch.push(new Uint8Array(slice))
    for (let from = 0; from < size; from += slice) {
      const len = Math.min(slice, size - from)
      const data = shards.slice(0, k).map((s) => s.subarray(from, from + len))
      this.#mulRows(this.#parityRows, data, scratch, len)
      for (let r = 0; r < this.parityShards; r++) {
        const want = (shards[k + r] as Uint8Array).subarray(from, from + len)
        if (!bytesEqual(want, (scratch[r] as Uint8Array).subarray(0, len))) return false
      }
    }
    return true
  }

  #mulRows(matrix: GfMatrix, inputs: Uint8Array[], outputs: Uint8Array[], byteLength: number): void {
    if (this.kernel === 'native')
      (nativeKernel() as NativeKernel).mulRows(matrix, inputs, outputs, byteLength)
    else if (this.kernel === 'simd') (simdKernel() as SimdKernel).mulRows(matrix, inputs, outputs, byteLength)
    else mulRowsJs(matrix, inputs, outputs, byteLength)
  }

  /** Checks that all k+m shards are present and of one length; returns that length. */
  #checkComplete(shards: readonly (Uint8Array | null | undefined)[]): number {
    this.#checkCount(shards)
    const first = shards[0]
    if (!(first instanceof Uint8Array)) throw invalid('shard 0 is missing', { index: 0 })
    const size = first.byteLength
    for (let i = 1; i < shards.length; i++) {
      const s = shards[i]
      if (!(s instanceof Uint8Array)) throw invalid(`shard ${i} is missing`, { index: i })
      if (s.byteLength !== size) throw sizeMismatch(i, s.byteLength, size)
    }
    return size
  }

  #checkCount(shards: readonly unknown[]): void {
    if (!Array.isArray(shards) || shards.length !== this.totalShards) {
      throw invalid(`expected ${this.totalShards} shards`, {
        expected: this.totalShards,
        got: Array.isArray(shards) ? shards.length : null,
      })
    }
  }

  #rebuild(shards: (Uint8Array | null)[], dataOnly: boolean, buffers: readonly Uint8Array[] = []): void {
    this.#checkCount(shards)
    const k = this.dataShards
    const present: number[] = []
    let size = -1
    for (let i = 0; i < shards.length; i++) {
      const s = shards[i]
      if (s === null || s === undefined) continue
      if (!(s instanceof Uint8Array)) throw invalid(`shard ${i} is not a Uint8Array`, { index: i })
      if (size === -1) size = s.byteLength
      else if (s.byteLength !== size) throw sizeMismatch(i, s.byteLength, size)
      present.push(i)
    }
    if (present.length < k) {
      throw new NodusError('DECODE_FAILED', `only ${present.length} of ${k} needed shards are present`, {
        details: { have: present.length, need: k },
      })
    }
    const limit = dataOnly ? k : this.totalShards
    const missing: number[] = []
    for (let i = 0; i < limit; i++) if (shards[i] === null || shards[i] === undefined) missing.push(i)
    if (missing.length === 0) return

    const used = present.slice(0, k)
    const decode = this.#decodeMatrix(used)
    // Row t of the encoding matrix times decode maps the k used shards to shard t: for a data shard it is
    // row t of decode; for a parity shard it composes decoding with re-encoding in one pass.
    const rows = missing.map((t) =>
      t < k ? (decode[t] as Uint8Array) : (matMul([this.#matrix[t] as Uint8Array], decode)[0] as Uint8Array),
    )
    // Every byte of an output is written by the kernel, so new memory need not be zeroed first.
    const outputs = missing.map((t, n) => {
      const buffer = buffers[n]
      if (buffer === undefined) return new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size)
      if (!(buffer instanceof Uint8Array) || buffer.byteLength < size) {
        throw invalid(`buffer ${n} (for shard ${t}) is shorter than a shard`, {
          index: t,
          byteLength: buffer instanceof Uint8Array ? buffer.byteLength : null,
          expected: size,
        })
      }
      return buffer.subarray(0, size)
    })
    this.#mulRows(
      rows,
      used.map((i) => shards[i] as Uint8Array),
      outputs,
      size,
    )
    for (let n = 0; n < missing.length; n++) shards[missing[n] as number] = outputs[n] as Uint8Array
  }

  /** The inverse of the encoding-matrix rows `used` (k ascending indices), from the LRU cache. */
  #decodeMatrix(used: number[]): GfMatrix {
    const key = String.fromCharCode(...used)
    const cached = this.#decodeCache.get(key)
    if (cached !== undefined) {
      this.#decodeCache.delete(key)
      this.#decodeCache.set(key, cached)
      return cached
    }
    const inverse = matInvert(used.map((i) => this.#matrix[i] as Uint8Array))
    if (this.#maxCached > 0) {
      if (this.#decodeCache.size >= this.#maxCached) {
        const oldest = this.#decodeCache.keys().next()
        if (oldest.done !== true) this.#decodeCache.delete(oldest.value)
      }
      this.#decodeCache.set(key, inverse)
    }
    return inverse
  }

  /** Decoding matrices currently cached (for tests and metrics). */
  get cachedMatrices(): number {
    return this.#decodeCache.size
  }
}

/** verify() compares parity in slices of this many bytes. */
const VERIFY_SLICE_BYTES = 64 * 1024

function invalid(message: string, details: Record<string, unknown>): NodusError {
  return new NodusError('ERASURE_INVALID', message, { details })
}

function sizeMismatch(index: number, byteLength: number, expected: number): NodusError {
  return invalid(`shard ${index} has ${byteLength} bytes, expected ${expected}`, {
    index,
    byteLength,
    expected,
  })
}
