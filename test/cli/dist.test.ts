/**
 * The compiled build (scripts/build-js.ts, run at install): node processes started from dist/ (the
 * CLI bundled into one file, with @libp2p/tls left out and loaded from node_modules on first use)
 * store a file and return it over TLS, with the native erasure kernel and the dashboard assets found
 * from there, and
 * bin/nodus.js picks dist/ only while it is fresh. CI sets NODUS_REQUIRE_DIST=1 so that a missing or
 * stale build fails instead of skipping.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { isBuiltin } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { distIsFresh, ROOT } from '../../scripts/dist.ts'

const fresh = distIsFresh()

test('node processes started from dist/ store a file and return it byte for byte', {
  timeout: 180_000,
}, async (t) => {
  if (!fresh) {
    if (process.env.NODUS_REQUIRE_DIST === '1') assert.fail('dist/ is missing or older than src/')
    t.skip('dist/ is missing or older than src/ (node scripts/build-js.ts)')
    return
  }
  const devnetUrl = new URL('../../dist/src/cli/devnet.js', import.meta.url).href
  const clientUrl = new URL('../../dist/src/cli/client.js', import.meta.url).href
  const rsUrl = new URL('../../dist/src/storage/codec/reed-solomon.js', import.meta.url).href
  const { Devnet } = (await import(devnetUrl)) as typeof import('../../src/cli/devnet.ts')
  const { putFile, getFile } = (await import(clientUrl)) as typeof import('../../src/cli/client.ts')
  const rs = (await import(rsUrl)) as typeof import('../../src/storage/codec/reed-solomon.ts')
  if (process.env.NODUS_REQUIRE_NATIVE === '1') assert.notEqual(rs.nativeKernelPath(), null)

  const dir = await mkdtemp(join(tmpdir(), 'nodus-dist-'))
  const devnet = await Devnet.start({
    nodes: 4,
    baseDir: join(dir, 'net'),
    basePort: 0,
    logLevel: 'warn',
    // TLS first: its module is loaded lazily from outside the bundle, so this proves it is found.
    config: { net: { encrypter: 'tls' }, storage: { k: 2, m: 1, segmentSize: 256 * 1024 } },
  })
  try {
    // The children run the compiled CLI.
    for (const n of devnet.nodes) assert.match(n.proc.spawnargs.join(' '), /dist\/src\/cli\/main\.js/)
    const first = devnet.nodes[0]
    const last = devnet.nodes[3]
    assert.ok(first !== undefined && last !== undefined)
    const data = randomBytes(700_000)
    await writeFile(join(dir, 'in.bin'), data)
    const put = await putFile({ url: first.api, token: first.token }, join(dir, 'in.bin'))
    await getFile({ url: last.api, token: last.token }, put.cid, join(dir, 'out.bin'))
    assert.ok((await readFile(join(dir, 'out.bin'))).equals(data))
    // The dashboard's browser files were copied next to the compiled server.
    const page = await fetch(`${first.api}/`)
    assert.equal(page.status, 200)
    assert.match(await page.text(), /<html/i)
  } finally {
    await devnet.stop()
    await rm(dir, { recursive: true, force: true })
  }
})

test('bin/nodus.js runs dist/ while it is fresh', (t) => {
  if (!fresh) {
    t.skip('dist/ is missing or older than src/')
    return
  }
  // A resolve hook preloaded into the child reports which CLI entry it loads.
  const hook = `import { registerHooks } from 'node:module'
registerHooks({ resolve(specifier, context, next) {
  const r = next(specifier, context)
  if (r.url.includes('/cli/main.')) process.stderr.write('LOADED ' + r.url + '\\n')
  return r
} })`
  const r = spawnSync(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, join(ROOT, 'bin', 'nodus.js'), '--help'],
    { encoding: 'utf8' },
  )
  const loaded = r.stderr
  assert.match(loaded, /dist\/src\/cli\/main\.js/)
  assert.doesNotMatch(loaded, /src\/cli\/main\.ts/)
})

test('the bundled CLI is one ASCII file that imports only Node built-ins and its external packages', async (t) => {
  if (!fresh) {
    if (process.env.NODUS_REQUIRE_DIST === '1') assert.fail('dist/ is missing or older than src/')
    t.skip('dist/ is missing or older than src/ (node scripts/build-js.ts)')
    return
  }
  const code = await readFile(join(ROOT, 'dist', 'src', 'cli', 'main.js'))
  // One byte outside ASCII makes Node hold the whole source as UTF-16: twice its size in the heap
  // (docs/benchmarks-history.md, "Session 7").
  const at = code.findIndex((b) => b > 0x7f)
  assert.equal(
    at,
    -1,
    `non-ASCII byte at ${at}: ${code.subarray(Math.max(0, at - 40), at + 10).toString('latin1')}`,
  )
  const text = code.toString('latin1')
  // Static imports start a statement (esbuild writes them at the top); dynamic ones are import("x").
  const statics = text.matchAll(/(?:^|[;\n])\s*import\s*(?:[\w$\s{},*]+?\s*from\s*)?["']([^"']+)["']/g)
  const dynamics = text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)
  const specifiers = new Set([...statics, ...dynamics].map((m) => m[1] as string))
  const external = new Set(['lmdb', '@napi-rs/blake-hash', '@libp2p/tls'])
  assert.deepEqual(
    [...specifiers].filter((s) => !isBuiltin(s) && !external.has(s)),
    [],
    'the bundle imports modules it should contain',
  )
  assert.ok(specifiers.has('lmdb'), 'lmdb is imported from node_modules')
})
