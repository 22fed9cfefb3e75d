/**
 * The optional native addon: native/rs.c (the Reed-Solomon kernel) and native/memory.c (malloc
 * trimming, buffer alignment), built by scripts/build-native.ts into build/nodus-native.node at install. Absent when
 * the install had no C compiler or runs on another platform; every user has a fallback.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'

/** What the addon exports. */
export interface NativeAddon {
  /** outputs[r] = Σ_i matrix[r·nIn + i] · inputs[i] in GF(2^8) (native/rs.c). */
  mulRows(matrix: Uint8Array, inputs: Uint8Array[], outputs: Uint8Array[], byteLength: number): void
  /** The CPU path the kernel chose at load: `gfni-avx512`, `avx2` or `scalar`. */
  readonly kernel: string
  /** glibc `malloc_trim(0)`; true when memory was released, false without glibc (native/memory.c). */
  mallocTrim(): boolean
  /**
   * Bytes from the start of `view` to its first address that is a multiple of `align` (a power of two),
   * in [0, align) (native/memory.c). Throws TypeError/RangeError on a bad argument.
   */
  alignOffset(view: ArrayBufferView, align: number): number
}

/** undefined: not looked for yet; null: not built here, or it failed to load. */
let addon: NativeAddon | null | undefined

/** The addon, loaded on first call, or null when it is not built here or fails to load. Never throws. */
export function nativeAddon(): NativeAddon | null {
  if (addon !== undefined) return addon
  addon = null
  try {
    // build/ is at the package root: two levels up from src/common, three from dist/src/common.
    const require = createRequire(import.meta.url)
    const at = ['../../build/nodus-native.node', '../../../build/nodus-native.node'].find((rel) =>
      existsSync(new URL(rel, import.meta.url)),
    )
    if (at !== undefined) addon = require(at) as NativeAddon
  } catch {
    // Not loadable (built for another Node-API version or platform): callers use their fallbacks.
  }
  return addon
}
