/**
 * Compiles src/ to plain JavaScript in dist/src/ (tsc with tsconfig.build.json: types stripped,
 * `.ts` imports rewritten to `.js`, no type check; `npm run typecheck` does that) and copies the
 * files tsc does not emit (the WebAssembly kernel, the dashboard's browser files).
 *
 * Why: a node started from `.ts` loads Node's TypeScript stripper (swc, as WebAssembly) and keeps
 * its 3.8 MB source; compiled, an idle node uses 15–30 MB less RSS and starts faster
 * (docs/BENCHMARKS.md, "Where the idle RSS goes"). `bin/nodus.js` runs dist/ when it is at least as
 * new as every file in src/, else src/ directly. Runs as part of the package's `install` script;
 * never fails the install unless --strict.
 *
 * Usage: node scripts/build-js.ts [--strict]
 */
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const strict = process.argv.includes('--strict')
const dist = join(root, 'dist')

/** Copies every file under `from` whose name does not end in `.ts` to the same place under `to`. */
function copyAssets(from: string, to: string): void {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, entry.name)
    if (entry.isDirectory()) copyAssets(src, join(to, entry.name))
    else if (!entry.name.endsWith('.ts')) {
      mkdirSync(to, { recursive: true })
      cpSync(src, join(to, entry.name))
    }
  }
}

try {
  rmSync(dist, { recursive: true, force: true })
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  copyAssets(join(root, 'src'), join(dist, 'src'))
  writeFileSync(join(dist, 'BUILT'), `${new Date().toISOString()}\n`)
  console.log(`nodus: compiled src/ to ${join(dist, 'src')}`)
} catch (err) {
  console.warn(`nodus: src/ not compiled (${(err as Error).message}); nodus runs the .ts sources`)
  if (strict) process.exitCode = 1
}
