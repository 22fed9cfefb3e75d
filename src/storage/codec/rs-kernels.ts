/**
 * The bulk kernels of the Reed-Solomon codec (reed-solomon.ts): the product `outputs[r] = Σ_i
 * matrix[r][i] · inputs[i]` over GF(2^8), by the native C kernel, the WebAssembly SIMD kernel or the
 * portable one (gf256.ts `mulRowsJs`); each is loaded on first use and self-checked against the
 * portable one, and the best that loads is the default.
 */
import { readFileSync } from 'node:fs'
import { bytesEqual } from '../../common/bytes.ts'
import { NodusError } from '../../common/errors.ts'
import { type NativeAddon, nativeAddon } from '../../common/native.ts'
import { type GfMatrix, MUL_TABLE, mulRowsJs } from './gf256.ts'

/**
 * Which bulk kernel a codec uses; all produce identical bytes. `native`: the C kernel of native/rs.c
 * (GFNI + AVX-512, 64 bytes per step, or AVX2, built by scripts/build-native.ts at install) working on
 * the shards in place. `simd`: WebAssembly SIMD (src/storage/codec/rs-simd.wat, 16 bytes per step, shards
 * staged through its memory). `js`: portable TypeScript, 4 bytes per step.
 */
export type ErasureKernel = 'js' | 'simd' | 'native'

// ---------------------------------------------------------------------------------------------------
// WebAssembly SIMD kernel (src/storage/codec/rs-simd.wat, built by scripts/build-rs-simd.sh)
// ---------------------------------------------------------------------------------------------------

/** Bytes of shard data (inputs + outputs) staged in WebAssembly memory per chunk. */
const SIMD_STAGE_BYTES = 512 * 1024
const WASM_PAGE_BYTES = 65536

/** For each coefficient c, 32 bytes: c·x then c·(x << 4) for x < 16 (split-nibble tables). */
const NIBBLE_TABLES = new Uint8Array(256 * 32)
for (let c = 0; c < 256; c++) {
  for (let x = 0; x < 16; x++) {
    NIBBLE_TABLES[c * 32 + x] = MUL_TABLE[(c << 8) | x] as number
    NIBBLE_TABLES[c * 32 + 16 + x] = MUL_TABLE[(c << 8) | (x << 4)] as number
  }
}

/** The parts of the WebAssembly JS API used here (the project's TypeScript lib has no DOM types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer
  grow(deltaPages: number): number
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (
    module: object,
    imports: Record<string, never>,
  ) => { readonly exports: Record<string, unknown> }
  Memory: abstract new (...args: never[]) => WasmMemory
}

type MulRowsExport = (
  tables: number,
  input: number,
  output: number,
  nIn: number,
  nOut: number,
  len: number,
  stride: number,
) => void

/**
 * The SIMD kernel: stages chunks of the shards in its linear memory (one instance per process; JS is
 * single-threaded, so calls never interleave), multiplies there, and copies the outputs back. Memory
 * layout per call: coefficient tables (nOut·nIn·32 bytes), then nIn input chunks, then nOut output
 * chunks; it grows to fit and never shrinks (about 1 MiB at most, since k + m ≤ 256).
 */
export class SimdKernel {
  readonly #memory: WasmMemory
  readonly #mulRows: MulRowsExport

  constructor(memory: WasmMemory, mulRows: MulRowsExport) {
    this.#memory = memory
    this.#mulRows = mulRows
  }

  /** Same contract as {@link mulRowsJs}. */
  mulRows(matrix: GfMatrix, inputs: Uint8Array[], outputs: Uint8Array[], byteLength: number): void {
    const nIn = inputs.length
    const nOut = outputs.length
    if (nOut === 0 || byteLength === 0) return
    const tablesBytes = nOut * nIn * 32
    // Chunk: a multiple of 16 bytes, at most the (rounded-up) shard size.
    const fit = Math.max(1024, Math.floor(SIMD_STAGE_BYTES / (nIn + nOut) / 16) * 16)
    const chunk = Math.min(fit, roundUp16(byteLength))
    const inBase = tablesBytes
    const outBase = inBase + nIn * chunk
    const need = outBase + nOut * chunk
    const have = this.#memory.buffer.byteLength
    if (need > have) this.#memory.grow(Math.ceil((need - have) / WASM_PAGE_BYTES))
    const mem = new Uint8Array(this.#memory.buffer)
    for (let r = 0; r < nOut; r++) {
      const row = matrix[r] as Uint8Array
      for (let i = 0; i < nIn; i++) {
        const src = (row[i] as number) * 32
        const dst = (r * nIn + i) * 32
        for (let x = 0; x < 32; x++) mem[dst + x] = NIBBLE_TABLES[src + x] as number
      }
    }
    for (let from = 0; from < byteLength; from += chunk) {
      const len = Math.min(chunk, byteLength - from)
      for (let i = 0; i < nIn; i++)
        mem.set((inputs[i] as Uint8Array).subarray(from, from + len), inBase + i * chunk)
      // Bytes past len in the last chunk are stale; their products land past len and are not copied.
      this.#mulRows(0, inBase, outBase, nIn, nOut, roundUp16(len), chunk)
      for (let r = 0; r < nOut; r++) {
        const at = outBase + r * chunk
        ;(outputs[r] as Uint8Array).set(mem.subarray(at, at + len), from)
      }
    }
  }
}

function roundUp16(n: number): number {
  return (n + 15) & ~15
}

/** undefined: not loaded yet; null: unavailable (no SIMD, missing file, failed self-check). */
let simd: SimdKernel | null | undefined

/** The SIMD kernel, loaded synchronously on first use, or null when it cannot be used here. */
export function simdKernel(): SimdKernel | null {
  if (simd !== undefined) return simd
  simd = null
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly
  if (wasm === undefined) return null
  try {
    const bytes = readFileSync(new URL('./rs-simd.wasm', import.meta.url))
    const { exports } = new wasm.Instance(new wasm.Module(bytes), {})
    const memory = exports.memory
    const mulRows = exports.mul_rows
    if (!(memory instanceof wasm.Memory) || typeof mulRows !== 'function') return null
    const kernel = new SimdKernel(memory, mulRows as MulRowsExport)
    if (selfCheck(kernel)) simd = kernel
  } catch {
    // No WebAssembly SIMD in this engine, or the .wasm is missing: the portable kernel is used.
  }
  return simd
}

/**
 * Compares a kernel with the portable one on small products: 7 and 11 outputs (so the SIMD kernel's
 * 4-, 2- and 1-row paths and the native kernel's groups of 8 all run), 5 inputs, 83 and 200 bytes
 * (partial last vectors of every width).
 */
function selfCheck(kernel: { mulRows: typeof mulRowsJs }): boolean {
  for (const [rows, size] of [
    [7, 83],
    [11, 200],
  ] as const) {
    const matrix: GfMatrix = []
    for (let r = 0; r < rows; r++)
      matrix.push(Uint8Array.from({ length: 5 }, (_, i) => (r * 37 + i * 101 + 1) & 255))
    const inputs = Array.from({ length: 5 }, (_, i) =>
      Uint8Array.from({ length: size }, (_, j) => (j * 13 + i * 59) & 255),
    )
    const want = matrix.map(() => new Uint8Array(size))
    const got = matrix.map(() => new Uint8Array(size))
    mulRowsJs(matrix, inputs, want, size)
    kernel.mulRows(matrix, inputs, got, size)
    if (!want.every((w, r) => bytesEqual(w, got[r] as Uint8Array))) return false
  }
  return true
}

// ---------------------------------------------------------------------------------------------------
// Native kernel (native/rs.c, built by scripts/build-native.ts into build/nodus-native.node)
// ---------------------------------------------------------------------------------------------------

/** The native kernel: multiplies the shards where they are (no staging copies). */
export class NativeKernel {
  readonly #addon: NativeAddon
  /** The CPU path the addon chose at load: `gfni-avx512`, `avx2` or `scalar`. */
  readonly path: string

  constructor(addon: NativeAddon) {
    this.#addon = addon
    this.path = addon.kernel
  }

  /** Same contract as {@link mulRowsJs}. */
  mulRows(matrix: GfMatrix, inputs: Uint8Array[], outputs: Uint8Array[], byteLength: number): void {
    const nIn = inputs.length
    const nOut = outputs.length
    if (nOut === 0 || byteLength === 0) return
    const flat = new Uint8Array(nOut * nIn)
    for (let r = 0; r < nOut; r++) flat.set((matrix[r] as Uint8Array).subarray(0, nIn), r * nIn)
    this.#addon.mulRows(flat, inputs, outputs, byteLength)
  }
}

/** undefined: not loaded yet; null: unavailable (not built, other platform, failed self-check). */
let native: NativeKernel | null | undefined

/** The native kernel, loaded on first use, or null when it cannot be used here. */
export function nativeKernel(): NativeKernel | null {
  if (native !== undefined) return native
  native = null
  const addon = nativeAddon()
  if (addon === null) return null
  try {
    const kernel = new NativeKernel(addon)
    if (selfCheck(kernel)) native = kernel
  } catch {
    // The self-check threw: the WebAssembly kernel is used.
  }
  return native
}

/**
 * The CPU path of the native kernel (`gfni-avx512`, `avx2`, `scalar`), or null when it is not loaded.
 * For benchmarks and diagnostics.
 */
export function nativeKernelPath(): string | null {
  return nativeKernel()?.path ?? null
}

/**
 * The bulk product `outputs[r] = Σ_i matrix[r][i] · inputs[i]` of one kernel (contract of
 * {@link mulRowsJs}), for tests and benchmarks.
 *
 * @throws NodusError ERASURE_INVALID when that kernel is unavailable here
 */
export function kernelMulRows(kernel: ErasureKernel): typeof mulRowsJs {
  if (kernel === 'js') return mulRowsJs
  const loaded = kernel === 'native' ? nativeKernel() : simdKernel()
  if (loaded === null) {
    throw new NodusError('ERASURE_INVALID', `the ${kernel} kernel is not available here`, {
      details: { kernel },
    })
  }
  return (matrix, inputs, outputs, byteLength) => loaded.mulRows(matrix, inputs, outputs, byteLength)
}

const KERNEL_ORDER: readonly ErasureKernel[] = ['native', 'simd', 'js']

/** The best available kernel, capped by NODUS_ERASURE_KERNEL when it names one. */
export function autoKernel(): ErasureKernel {
  const cap = process.env.NODUS_ERASURE_KERNEL
  const from = Math.max(0, KERNEL_ORDER.indexOf(cap as ErasureKernel))
  for (const kernel of KERNEL_ORDER.slice(from)) {
    if (kernel === 'native' && nativeKernel() !== null) return kernel
    if (kernel === 'simd' && simdKernel() !== null) return kernel
  }
  return 'js'
}
