import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import type { Clock } from '../../src/common/clock.ts'
import { cidForBytes } from '../../src/storage/index.ts'
import { putOrdered, startPeer, stopAll } from '../utils/cluster.ts'
import { chunks } from '../utils/streams.ts'

// STYLE.md: everything nondeterministic comes in through deps. Outside common/ (where the system clock
// lives), the composition root node/ and the CLI commands, no code reads the wall clock or randomness
// itself: `Date.now` and `Math.random` appear nowhere else in src/. The dashboard's .js files run in
// the browser and are not checked.

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const src = join(root, 'src')
const EXEMPT_DIRS = ['common/', 'node/', 'cli/']

/** Source files to check, relative to src/ with `/` separators. */
function checkedFiles(dir: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    const rel = relative(src, path).split(sep).join('/')
    if (entry.isDirectory()) {
      if (!EXEMPT_DIRS.includes(`${rel}/`)) out.push(...checkedFiles(path))
    } else if (/\.(ts|js|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
      if (!(rel.startsWith('api/dashboard/') && entry.name.endsWith('.js'))) out.push(rel)
    }
  }
  return out
}

/** `line: Date.now` / `line: Math.random` for each use (called or not) in `text`; comments and strings ignored. */
function clockReads(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: string[] = []
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression)) {
      const name = `${node.expression.text}.${node.name.text}`
      if (name === 'Date.now' || name === 'Math.random') {
        found.push(`${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}: ${name}`)
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
  return found
}

test('the scan finds Date.now and Math.random, and not mentions in comments or strings', () => {
  const text = "// Date.now()\nconst a = Date.now()\nconst r = Math.random\nconst s = 'Math.random()'\n"
  assert.deepEqual(clockReads('x.ts', text), ['2: Date.now', '3: Math.random'])
})

test('no Date.now() or Math.random() in src/ outside common/, node/, cli/ and the browser dashboard', () => {
  const files = checkedFiles(src)
  assert.ok(files.includes('storage/files/files.ts') && !files.includes('node/node.ts'))
  const offences = files.flatMap((f) =>
    clockReads(f, readFileSync(join(src, f), 'utf8')).map((r) => `src/${f}:${r}`),
  )
  assert.deepEqual(
    offences,
    [],
    'take a `clock: Clock` (src/common/clock.ts) or a `random` through deps instead',
  )
})

test('a fake clock in deps sets receipts storedAt (ShardServer) and manifests createdAt (FileService)', async () => {
  // Half a minute behind the real time: inside the skew orders allow, and unlike anything Date.now() gives.
  const t = Date.now() - 30_000
  const clock: Clock = { now: () => t }
  const peers = await Promise.all([
    startPeer({ storage: { k: 1, m: 0, segmentSize: 64 * 1024, manifestReplicas: 1 }, clock }),
    startPeer({ clock }),
  ])
  const [a, b] = peers
  try {
    await a.libp2p.dial(b.libp2p.getMultiaddrs())
    const bytes = randomBytes(1000)
    const receipt = await putOrdered(a, a.client, b.id.peerId, cidForBytes(bytes), bytes)
    assert.equal(receipt.storedAt, t)
    const res = await a.files.put(chunks(randomBytes(10_000), 4096), { name: 'c.bin' })
    assert.equal(res.manifest.createdAt, t)
  } finally {
    await stopAll(peers)
  }
})
