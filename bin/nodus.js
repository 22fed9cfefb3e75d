#!/usr/bin/env node
// Runs the compiled CLI (dist/, built by scripts/build-js.ts at install) when it is at least as new as
// every source file, else the TypeScript sources directly (Node 24 strips types). Compiled, a node
// uses less memory and starts faster (docs/BENCHMARKS.md, "Where the idle RSS goes").
import { existsSync, readdirSync, statSync } from 'node:fs'

const src = new URL('../src/', import.meta.url)
const built = new URL('../dist/BUILT', import.meta.url)

function newestMs(dir) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const url = new URL(entry.isDirectory() ? `${entry.name}/` : entry.name, dir)
    newest = Math.max(newest, entry.isDirectory() ? newestMs(url) : statSync(url).mtimeMs)
  }
  return newest
}

const fresh = existsSync(built) && statSync(built).mtimeMs >= newestMs(src)

// `nodus start` needs V8 flags that V8 reads only while it sets up the heap and that Node does not
// accept in NODE_OPTIONS, and an environment variable glibc reads at process start (START_V8_FLAGS
// and START_ENV in src/cli/gc-tuning.ts, with why): the launcher re-executes itself with them
// (process.execve: same PID, same stdio) before the CLI loads.
if (process.argv[2] === 'start' && typeof process.execve === 'function') {
  const { startEnv, startV8Flags } = await import(
    fresh ? '../dist/src/cli/gc-tuning.js' : '../src/cli/gc-tuning.ts'
  )
  const flags = startV8Flags(process.env).filter((f) => !process.execArgv.includes(f))
  const env = startEnv(process.env)
  if (flags.length > 0 || Object.keys(env).length > 0) {
    try {
      process.execve(
        process.execPath,
        [process.execPath, ...flags, ...process.execArgv, process.argv[1], ...process.argv.slice(2)],
        { ...process.env, ...env },
      )
    } catch {
      // execve refused (a sandbox, say): run on without them; they only tune V8's heap sizing and malloc.
    }
  }
}
await import(fresh ? '../dist/src/cli/main.js' : '../src/cli/main.ts')
