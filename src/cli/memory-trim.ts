/**
 * Returning malloc's free memory to the kernel, for a node process (`nodus start`).
 *
 * Why: glibc's malloc gives freed memory back only from the top of an arena and only past its trim
 * threshold (128 KiB), so freed memory below a live allocation stays in the process's RSS. A node's
 * start-up (V8 parsing ~1,500 modules, libp2p and OpenSSL set-up) and every large transfer leave
 * such holes: after start-up, about 5 MB of the main arena and the threads' arenas were free yet
 * resident. `malloc_trim(0)` (glibc ≥ 2.8) releases every whole free page in every arena
 * (madvise MADV_DONTNEED). It takes about a millisecond on an idle node; pages it releases cost a
 * page fault each when malloc reuses them (docs/benchmarks-history.md, "Session 7").
 *
 * Needs the native addon (src/common/native.ts); without it, or without glibc, trimming is a no-op.
 * `NODUS_MALLOC_TRIM=0` in the environment turns it off.
 */
import { nativeAddon } from '../common/native.ts'

/** How often a running node trims, ms. */
export const MALLOC_TRIM_INTERVAL_MS = 30_000

/**
 * Run glibc's `malloc_trim(0)` now, unless the environment has `NODUS_MALLOC_TRIM=0`.
 * @returns true when memory was released; false when none was, or trimming is off or unavailable
 */
export function trimMalloc(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NODUS_MALLOC_TRIM === '0') return false
  return nativeAddon()?.mallocTrim() ?? false
}

/**
 * Trim now and then every `intervalMs` (default {@link MALLOC_TRIM_INTERVAL_MS}) on an unref'd
 * timer, until `signal` aborts. Does nothing when trimming is off or unavailable.
 */
export function startMallocTrimmer(
  options: { intervalMs?: number; signal?: AbortSignal; env?: NodeJS.ProcessEnv } = {},
): void {
  const env = options.env ?? process.env
  if (env.NODUS_MALLOC_TRIM === '0' || nativeAddon() === null || options.signal?.aborted === true) return
  trimMalloc(env)
  const timer = setInterval(() => trimMalloc(env), options.intervalMs ?? MALLOC_TRIM_INTERVAL_MS)
  timer.unref()
  options.signal?.addEventListener('abort', () => clearInterval(timer), { once: true })
}
