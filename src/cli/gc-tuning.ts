/**
 * V8 garbage-collection settings for a node process (`nodus start`, and so every devnet node).
 *
 * Why: V8 13.6 (Node 24) starts incremental marking "soon" (kSoftLimit, from a task) whenever the room left
 * below the old generation's allocation limit is smaller than the young generation's target capacity
 * (`Heap::IncrementalMarkingLimitReached`, v8/src/heap/heap.cc). Node runs V8 without pointer
 * compression, so under load the young generation grows to 64 MB (`--scavenger-max-new-space-capacity-mb`
 * = 32, doubled), while a node's old generation (about 35 MB live) gets 35–50 MB of room after each
 * mark-compact. So marking starts again right after every mark-compact: a holder storing shards ran 10–12
 * full collections during one 1.5 s put, and concurrent marking took about 30 % of its CPU (perf,
 * docs/benchmarks-history.md "Session 5").
 *
 * With V8's percentage triggers set, that rule is replaced: marking starts from a task once
 * {@link SOFT_TRIGGER_PERCENT} % of the room since the last collection is used, and at once at
 * {@link HARD_TRIGGER_PERCENT} %. The old generation still never passes its limit, so memory stays bounded;
 * it is collected when it is full rather than continuously.
 *
 * The flags are read by V8 on each allocation-limit check, so setting them after start-up takes effect
 * (verified with `--trace-incremental-marking`). `NODUS_V8_GC=default` leaves V8's own heuristics;
 * `NODUS_V8_GC_FLAGS="--flag=value ..."` sets those V8 flags instead of {@link GC_FLAGS}.
 *
 * Flags V8 reads only while it sets up the heap cannot be set at run time, nor in NODE_OPTIONS:
 * {@link START_V8_FLAGS} go on the command line of `nodus start` (bin/nodus.js re-executes itself with them;
 * the devnet spawns its nodes with them), and {@link START_ENV} in its environment, likewise.
 *
 * Start-up garbage: loading ~1,500 modules and starting libp2p grows the young generation to its 64 MB
 * maximum, and V8's memory reducer gives that back only after a minute or two of idleness (an untouched
 * node reads 150–170 MB RSS until then). {@link collectStartupGarbage} runs one memory-reducing
 * collection right after start-up instead: one node read 170 MB at 5, 10 and 30 s before, 108 MB after,
 * for a 60–80 ms pause.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** Percent of the old generation's room used at which incremental marking starts from a task. */
export const SOFT_TRIGGER_PERCENT = 70
/** Percent of the old generation's room used at which incremental marking starts at once. */
export const HARD_TRIGGER_PERCENT = 90

/** How long after a node reports ready `nodus start` runs {@link collectStartupGarbage}, ms. */
export const STARTUP_GC_DELAY_MS = 2_000

/** The V8 flags {@link tuneGc} sets. */
export const GC_FLAGS: readonly string[] = [
  `--incremental-marking-soft-trigger=${SOFT_TRIGGER_PERCENT}`,
  `--incremental-marking-hard-trigger=${HARD_TRIGGER_PERCENT}`,
]

/**
 * V8 flags for the command line of a node process (`nodus start`), read only when V8 sets up its heap.
 *
 * `--initial-old-space-size=128`: the old generation may reach 128 MB before V8 first sizes it from the
 * live data. Without it a fresh node's first large put ran repeated full collections while V8 grew the
 * heap from the ~30 MB of start-up data (27 % of a holder's CPU in that put, perf); the first 126.6 MB put
 * on a fresh 16-node devnet took 25.1–29.5 against 31.8–35.1 CPU-s/GB (alternating runs,
 * docs/benchmarks-history.md "Session 6"). It is a threshold, not memory: idle RSS did not change, nor did the
 * "memory" benchmark's figures.
 */
export const START_V8_FLAGS: readonly string[] = ['--initial-old-space-size=128']

/**
 * Environment variables for a node process, read by glibc when the process starts.
 *
 * `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates concurrently an arena of its own, up to
 * 8 per core, and each keeps its high-water mark; a node's V8 and libuv worker threads held 7–11 MB
 * in them. Two arenas: idle devnet nodes 99–101 MB against 101–105 at 20 s after start, and no CPU
 * cost in three alternating pairs of bench/put-cpu.ts on 16 nodes (warm put 15.9–19.4 CPU-s/GB
 * against 19.2–20.0, get 8.2–10.2 against 10.9–11.9; docs/benchmarks-history.md "Session 7"). A value the
 * caller set is kept.
 */
export const START_ENV: Readonly<Record<string, string>> = Object.freeze({ MALLOC_ARENA_MAX: '2' })

/** The {@link START_ENV} variables `env` does not set already (none with `NODUS_V8_GC=default`). */
export function startEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (env.NODUS_V8_GC === 'default') return {}
  return Object.fromEntries(Object.entries(START_ENV).filter(([k]) => env[k] === undefined))
}

/**
 * {@link START_V8_FLAGS}; or the space-separated flags in `NODUS_V8_START_FLAGS` when set (for trying
 * others, as `NODUS_V8_GC_FLAGS` does for {@link GC_FLAGS}); or none when the environment has
 * `NODUS_V8_GC=default`.
 */
export function startV8Flags(env: NodeJS.ProcessEnv = process.env): readonly string[] {
  if (env.NODUS_V8_GC === 'default') return []
  if (env.NODUS_V8_START_FLAGS !== undefined)
    return env.NODUS_V8_START_FLAGS.split(/\s+/).filter((f) => f !== '')
  return START_V8_FLAGS
}

/**
 * Apply {@link GC_FLAGS} (or `NODUS_V8_GC_FLAGS`) to this process, unless the environment has
 * `NODUS_V8_GC=default`.
 * @returns whether flags were set
 */
export function tuneGc(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NODUS_V8_GC === 'default') return false
  setFlagsFromString(env.NODUS_V8_GC_FLAGS ?? GC_FLAGS.join(' '))
  return true
}

/** The options V8's `gc` extension takes (v8/src/extensions/gc-extension.cc). */
type GcFunction = (options?: {
  type?: 'major' | 'minor'
  execution?: 'sync' | 'async'
  flavor?: string
}) => void

/**
 * Run one full, memory-reducing collection now (V8's "last resort" flavour: it also shrinks the young
 * generation back to its minimum), unless the environment has `NODUS_V8_GC=default`. Blocks the event
 * loop for the collection (60–80 ms on an idle node's ~35 MB heap), so call it once, when idle.
 * `--expose-gc` is switched on only long enough to obtain the function, so no `gc` global appears.
 * @returns whether a collection ran
 */
export function collectStartupGarbage(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NODUS_V8_GC === 'default') return false
  setFlagsFromString('--expose-gc')
  let gc: unknown
  try {
    gc = runInNewContext('gc')
  } finally {
    setFlagsFromString('--no-expose-gc')
  }
  if (typeof gc !== 'function') return false
  ;(gc as GcFunction)({ type: 'major', execution: 'sync', flavor: 'last-resort' })
  return true
}
