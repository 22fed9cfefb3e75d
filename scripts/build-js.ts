/**
 * Compiles src/ to plain JavaScript in dist/src/ (tsc with tsconfig.build.json: types stripped,
 * `.ts` imports rewritten to `.js`, no type check; `npm run typecheck` does that), copies the files
 * tsc does not emit (the WebAssembly kernel, the dashboard's browser files), then bundles the CLI
 * with its dependencies into one file that replaces dist/src/cli/main.js (esbuild: whitespace and
 * syntax minified, identifiers not mangled, licence comments in main.js.LEGAL.txt, a linked source
 * map for `node --enable-source-maps`). Native packages (lmdb, @napi-rs/blake-hash) and @libp2p/tls
 * (loaded on the first TLS handshake only, src/net/host.ts) stay outside it.
 *
 * Why: a node started from `.ts` loads Node's TypeScript stripper (swc, as WebAssembly) and keeps
 * its 3.8 MB source; compiled, an idle node uses 15–30 MB less RSS and starts faster. Bundled, it
 * also sheds what Node's module loader keeps per module (about 1,250 modules) and the comments and
 * indentation of every source, which V8 keeps in its heap for lazy compilation: about 10 MB of V8
 * heap less (docs/benchmarks-history.md, "Where the idle RSS goes" and "Session 7").
 *
 * Paths: each bundled module's `import.meta.url`, `__dirname` and `__filename` are rewritten to
 * the module's original location, computed from the bundle's own URL, so that files found relative
 * to a module (the WebAssembly kernel, the native addon, the dashboard, package files) are found
 * as before. `bin/nodus.js` runs dist/ when it is at least as new as every file in src/, else src/
 * directly. Runs as part of the package's `install` script; never fails the install unless
 * --strict. Without esbuild (a production install without dev dependencies) the unbundled tsc
 * output is used.
 *
 * Usage: node scripts/build-js.ts [--strict] [--no-bundle]
 */
import { execFileSync } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const strict = process.argv.includes('--strict')
const noBundle = process.argv.includes('--no-bundle')
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

/**
 * Packages loaded from node_modules at run time rather than bundled: those with native addons, and
 * @libp2p/tls, which a node loads only on its first TLS handshake (its X.509 and ASN.1 code would
 * otherwise sit in every node's heap as bundle source).
 */
const EXTERNAL = ['lmdb', '@napi-rs/blake-hash', '@libp2p/tls']

/**
 * Bundles dist/src/cli/main.js and everything it imports into that same path. Returns false when
 * esbuild is not installed (the unbundled output stays).
 */
async function bundle(): Promise<boolean> {
  let esbuild: typeof import('esbuild')
  try {
    esbuild = await import('esbuild')
  } catch {
    return false
  }
  const entry = join(dist, 'src', 'cli', 'main.js')
  const outDir = dirname(entry)
  const tmp = join(outDir, `main.bundle.${process.pid}.js`)
  // The path of `file` relative to the bundle's directory, as a URL path.
  const rel = (file: string): string => relative(outDir, file).split(sep).join('/') || '.'
  await esbuild.build({
    entryPoints: [entry],
    outfile: tmp,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    minifyWhitespace: true,
    minifySyntax: true,
    // Names stay as written except where two modules' top-level names collide (esbuild then adds a
    // digit); `keepNames` would restore those too, at 5,000 wrapper calls and a 5 % larger bundle.
    keepNames: false,
    legalComments: 'external',
    charset: 'ascii',
    sourcemap: 'linked',
    sourcesContent: false,
    external: EXTERNAL,
    logLevel: 'warning',
    banner: {
      js: [
        "import { createRequire as __nodusCreateRequire } from 'node:module';",
        "import { fileURLToPath as __nodusFileURLToPath } from 'node:url';",
        'const require = __nodusCreateRequire(import.meta.url);',
        'const __nodusUrl = (p) => new URL(p, import.meta.url).href;',
        'const __nodusPath = (p) => __nodusFileURLToPath(new URL(p, import.meta.url));',
      ].join('\n'),
    },
    plugins: [
      {
        name: 'nodus-module-paths',
        setup(build) {
          build.onLoad({ filter: /\.[cm]?js$/ }, (args) => {
            const text = readFileSync(args.path, 'utf8')
            const usesUrl = text.includes('import.meta.url')
            const usesDir =
              /\b__(dirname|filename)\b/.test(text) &&
              !/\b(var|let|const)\s+__(dirname|filename)\b/.test(text)
            if (!usesUrl && !usesDir) return undefined
            let contents = usesUrl
              ? text.replaceAll('import.meta.url', `__nodusUrl(${JSON.stringify(rel(args.path))})`)
              : text
            if (usesDir) {
              contents =
                `var __dirname = __nodusPath(${JSON.stringify(`${rel(dirname(args.path))}/`)});\n` +
                `var __filename = __nodusPath(${JSON.stringify(rel(args.path))});\n${contents}`
            }
            return { contents, loader: 'js' }
          })
        },
      },
    ],
  })
  renameSync(`${tmp}.map`, `${entry}.map`)
  // Written only when some bundled file has licence comments.
  if (existsSync(`${tmp}.LEGAL.txt`)) renameSync(`${tmp}.LEGAL.txt`, `${entry}.LEGAL.txt`)
  // The bundle names its map after the temporary file.
  const code = readFileSync(tmp, 'utf8').replace(
    /sourceMappingURL=main\.bundle\.\d+\.js\.map/,
    'sourceMappingURL=main.js.map',
  )
  writeFileSync(tmp, code)
  renameSync(tmp, entry)
  return true
}

try {
  rmSync(dist, { recursive: true, force: true })
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  copyAssets(join(root, 'src'), join(dist, 'src'))
  const bundled = !noBundle && (await bundle())
  writeFileSync(join(dist, 'BUILT'), `${new Date().toISOString()}\n`)
  console.log(
    `nodus: compiled src/ to ${join(dist, 'src')}${bundled ? '; the CLI bundled into dist/src/cli/main.js' : ' (not bundled: --no-bundle, or esbuild not installed)'}`,
  )
} catch (err) {
  console.warn(`nodus: src/ not compiled (${(err as Error).message}); nodus runs the .ts sources`)
  if (strict) process.exitCode = 1
}
