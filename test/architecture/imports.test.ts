import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

// The import rules of docs/ARCHITECTURE.md and STYLE.md, checked on src/'s static import graph
// (`import`, `import type`, `export ... from`; dynamic `import()` is not an edge):
// - no import cycle between files;
// - another area imports only an area's index.ts;
// - common/ imports no area.

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const src = join(root, 'src')

/** Every `.ts` file under `dir`, as a path relative to src/ with `/` separators. */
function sourceFiles(dir: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...sourceFiles(path))
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))
      out.push(relative(src, path).split(sep).join('/'))
  }
  return out
}

interface Edge {
  to: string
  typeOnly: boolean
}

/** The relative static imports and re-exports of one file, resolved to files under src/. */
function importsOf(file: string): Edge[] {
  const text = readFileSync(join(src, file), 'utf8')
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS)
  const edges: Edge[] = []
  for (const stmt of sf.statements) {
    let spec: ts.Expression | undefined
    let typeOnly = false
    if (ts.isImportDeclaration(stmt)) {
      spec = stmt.moduleSpecifier
      const clause = stmt.importClause
      typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((e) => e.isTypeOnly)))
    } else if (ts.isExportDeclaration(stmt)) {
      spec = stmt.moduleSpecifier
      typeOnly =
        stmt.isTypeOnly ||
        (stmt.exportClause !== undefined &&
          ts.isNamedExports(stmt.exportClause) &&
          stmt.exportClause.elements.length > 0 &&
          stmt.exportClause.elements.every((e) => e.isTypeOnly))
    }
    if (spec === undefined || !ts.isStringLiteral(spec) || !spec.text.startsWith('.')) continue
    const target = resolve(dirname(join(src, file)), spec.text)
    let resolved = target
    if (!isFile(resolved)) resolved = isFile(`${target}.ts`) ? `${target}.ts` : join(target, 'index.ts')
    assert.ok(isFile(resolved), `${file}: cannot resolve '${spec.text}'`)
    const to = relative(src, resolved).split(sep).join('/')
    if (to.startsWith('..')) continue // outside src/ (package.json and the like)
    edges.push({ to, typeOnly })
  }
  return edges
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}

const areaOf = (file: string): string => file.split('/')[0] ?? ''

/** `from -> to` for every import into another area that does not go through its index.ts. */
function areaViolations(graph: Map<string, Edge[]>): string[] {
  const out: string[] = []
  for (const [from, edges] of graph) {
    for (const { to } of edges) {
      const a = areaOf(from)
      const b = areaOf(to)
      if (a === b || b === 'common') continue // common/ is the shared kit every area uses directly
      if (a === 'common') out.push(`${from} -> ${to} (common/ imports no area)`)
      else if (to !== `${b}/index.ts`) out.push(`${from} -> ${to}`)
    }
  }
  return out.sort()
}

/**
 * Strongly connected components of more than one file, or a file importing itself (Tarjan), each
 * named by its files sorted and joined with ' <-> ', with one cycle through them for the message.
 */
function cycles(graph: Map<string, Edge[]>): { key: string; path: string[] }[] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const components: string[][] = []
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next)
    next++
    stack.push(v)
    onStack.add(v)
    for (const { to } of graph.get(v) ?? []) {
      if (!index.has(to)) {
        visit(to)
        low.set(v, Math.min(low.get(v) ?? 0, low.get(to) ?? 0))
      } else if (onStack.has(to)) low.set(v, Math.min(low.get(v) ?? 0, index.get(to) ?? 0))
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string | undefined
      do {
        w = stack.pop()
        if (w === undefined) break
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      const selfLoop = (graph.get(v) ?? []).some((e) => e.to === v)
      if (component.length > 1 || selfLoop) components.push(component.sort())
    }
  }
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v)
  return components
    .map((members) => ({ key: members.join(' <-> '), path: cycleThrough(graph, new Set(members)) }))
    .sort((x, y) => x.key.localeCompare(y.key))
}

/** One cycle inside `members` (a strongly connected set), found by breadth-first search. */
function cycleThrough(graph: Map<string, Edge[]>, members: Set<string>): string[] {
  const start = [...members][0] ?? ''
  const parent = new Map<string, string>()
  const queue = [start]
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i] ?? ''
    for (const { to } of graph.get(v) ?? []) {
      if (!members.has(to)) continue
      if (to === start) {
        const path = [v]
        while (path[0] !== start) path.unshift(parent.get(path[0] ?? '') ?? start)
        return [...path, start]
      }
      if (!parent.has(to)) {
        parent.set(to, v)
        queue.push(to)
      }
    }
  }
  return [start]
}

// issue 18: remove as areas get their factories. The exact list of imports into another area that
// bypass its index.ts today: the test fails on any other, and on any entry here that is gone.
const KNOWN_AREA_VIOLATIONS: string[] = [
  // api/ and node/ have no index.ts yet: node.ts is the service locator the factories will replace.
  'api/docs.ts -> node/node.ts', // type only
  'api/server.ts -> node/node.ts', // type only
  'node/node.ts -> api/auth.ts',
  'node/node.ts -> api/server.ts',
  // The CLI client and `nodus start` load only these small modules, not their areas (whose index.ts
  // would load fastify, libp2p and LMDB): test/cli/client-imports.test.ts.
  'cli/client.ts -> api/auth.ts',
  'cli/client.ts -> node/run-file.ts',
  'cli/devnet.ts -> node/gc-tuning.ts',
  'cli/init.ts -> api/auth.ts',
  'cli/main.ts -> node/gc-tuning.ts',
  // trust/index.ts is pure (no network); exchange.ts is trust's network wiring, which would load libp2p.
  'node/node.ts -> trust/exchange.ts',
  // `nodus sim` takes the placement rule alone, not the storage area (LMDB, libp2p).
  'sim/placement-sim.ts -> storage/placement/placement-scored.ts',
]

// issue 18: remove as areas get their factories. Import cycles that exist today (each a strongly
// connected set of files): the test fails on any other, and on any entry here that is gone.
const KNOWN_CYCLES: string[] = [
  // Type only on the api side (NodusNode); goes with the node() service locator.
  'api/server.ts <-> node/node.ts',
]

const graph = new Map(sourceFiles(src).map((file) => [file, importsOf(file)]))

test('the import graph of src/ is read (sanity check of the parser)', () => {
  assert.ok(graph.size > 50, `only ${graph.size} files under src/`)
  const edges = [...graph.values()].reduce((n, e) => n + e.length, 0)
  assert.ok(edges > 100, `only ${edges} imports between files under src/`)
  assert.ok(
    (graph.get('storage/index.ts') ?? []).some((e) => e.to === 'storage/codec/cid.ts'),
    'storage/index.ts re-exports from codec/cid.ts',
  )
})

test('another area imports only an area index.ts, and common/ imports no area', () => {
  const found = areaViolations(graph)
  const added = found.filter((v) => !KNOWN_AREA_VIOLATIONS.includes(v))
  const gone = KNOWN_AREA_VIOLATIONS.filter((v) => !found.includes(v))
  assert.deepEqual(
    added,
    [],
    `imports into another area that bypass its index.ts (import from '../<area>/index.ts'; re-export there what is needed):\n${added.join('\n')}`,
  )
  assert.deepEqual(gone, [], `fixed, so remove from KNOWN_AREA_VIOLATIONS:\n${gone.join('\n')}`)
})

test('no import cycle between files of src/', () => {
  const found = cycles(graph)
  const added = found.filter((c) => !KNOWN_CYCLES.includes(c.key))
  const gone = KNOWN_CYCLES.filter((k) => !found.some((c) => c.key === k))
  assert.deepEqual(
    added.map((c) => c.key),
    [],
    `import cycles (one cycle in each: ${added.map((c) => c.path.join(' -> ')).join('; ')})`,
  )
  assert.deepEqual(gone, [], `fixed, so remove from KNOWN_CYCLES:\n${gone.join('\n')}`)
})
