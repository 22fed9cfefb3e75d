import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

// The import rules of docs/ARCHITECTURE.md and STYLE.md, checked on src/'s static import graph
// (`import`, `import type`, `export ... from`; dynamic `import()` is not an edge):
// - no import cycle between files;
// - another area imports only an area's index.ts, or its seam files (options.ts, errors.ts,
//   metrics.ts: the tables the assemblers in config/ and metrics/ read);
// - seam files are pure tables: they import only common/ and prom-client;
// - common/ imports no area;
// - every area folder has index.ts, options.ts, metrics.ts, errors.ts and README.md.

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

/** The static imports and re-exports of one file: each module specifier, and whether it is type only. */
function specifiersOf(file: string): { spec: string; typeOnly: boolean }[] {
  const text = readFileSync(join(src, file), 'utf8')
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS)
  const out: { spec: string; typeOnly: boolean }[] = []
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
    if (spec !== undefined && ts.isStringLiteral(spec)) out.push({ spec: spec.text, typeOnly })
  }
  return out
}

/** The relative static imports and re-exports of one file, resolved to files under src/. */
function importsOf(file: string): Edge[] {
  const edges: Edge[] = []
  for (const { spec, typeOnly } of specifiersOf(file)) {
    if (!spec.startsWith('.')) continue
    const target = resolve(dirname(join(src, file)), spec)
    let resolved = target
    if (!isFile(resolved)) resolved = isFile(`${target}.ts`) ? `${target}.ts` : join(target, 'index.ts')
    assert.ok(isFile(resolved), `${file}: cannot resolve '${spec}'`)
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

/** The seam files of an area: pure tables the assemblers read, named alike in every area. */
const SEAM_FILES = ['options.ts', 'errors.ts', 'metrics.ts']
/** The files every area folder has (STYLE.md, issue 18). */
const AREA_FILES = ['index.ts', ...SEAM_FILES, 'README.md']

/** True for `<area>/options.ts`, `<area>/errors.ts` and `<area>/metrics.ts` of an area (not common/). */
const isSeam = (file: string): boolean => {
  const parts = file.split('/')
  return parts.length === 2 && parts[0] !== 'common' && SEAM_FILES.includes(parts[1] ?? '')
}

/** `from -> to` for every import into another area that goes through neither its index.ts nor a seam file. */
function areaViolations(graph: Map<string, Edge[]>): string[] {
  const out: string[] = []
  for (const [from, edges] of graph) {
    for (const { to } of edges) {
      const a = areaOf(from)
      const b = areaOf(to)
      if (a === b || b === 'common') continue // common/ is the shared kit every area uses directly
      if (a === 'common') out.push(`${from} -> ${to} (common/ imports no area)`)
      else if (to !== `${b}/index.ts` && !isSeam(to)) out.push(`${from} -> ${to}`)
    }
  }
  return out.sort()
}

// The assembler of the metrics area is its own metrics.ts (NodusMetrics): it imports the other
// areas' metrics.ts, so it is no pure table.
const SEAM_ASSEMBLERS = ['metrics/metrics.ts']
/** Packages a seam file may import (besides src/common/). */
const SEAM_PACKAGES = ['prom-client']

/** `file -> import` for every import of a seam file that is neither common/ nor an allowed package. */
function seamViolations(files: readonly string[]): string[] {
  const out: string[] = []
  for (const file of files) {
    if (!isSeam(file) || SEAM_ASSEMBLERS.includes(file)) continue
    for (const { spec } of specifiersOf(file)) {
      if (spec.startsWith('.')) {
        const to = relative(src, resolve(dirname(join(src, file)), spec))
          .split(sep)
          .join('/')
        if (areaOf(to) !== 'common') out.push(`${file} -> ${to}`)
      } else if (!SEAM_PACKAGES.includes(spec)) out.push(`${file} -> ${spec}`)
    }
  }
  return out.sort()
}

/** `<area>/<file>` for every file of {@link AREA_FILES} missing from an area folder (a folder of src/ but common/). */
function missingAreaFiles(): string[] {
  const out: string[] = []
  for (const entry of readdirSync(src, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === 'common') continue
    for (const name of AREA_FILES) {
      if (!isFile(join(src, entry.name, name))) out.push(`${entry.name}/${name}`)
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
  // The CLI client and `nodus start` load only these small modules, not their areas (whose index.ts
  // would load fastify, libp2p and LMDB): test/cli/client-imports.test.ts.
  // `nodus sim` takes the placement rule alone, not the storage area (LMDB, libp2p).
  'sim/placement-sim.ts -> storage/placement/placement-scored.ts',
]

// issue 18: the lead adds these with the area factories (api/index.ts with the route plugins,
// node/index.ts with the composition root). The test fails on any other missing file, and on any
// entry here that exists.
const KNOWN_MISSING_AREA_FILES: string[] = []

// issue 18: remove as areas get their factories. Import cycles that exist today (each a strongly
// connected set of files): the test fails on any other, and on any entry here that is gone.
const KNOWN_CYCLES: string[] = []

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

test('seam files (options.ts, errors.ts, metrics.ts) import only common/ and prom-client', () => {
  const files = [...graph.keys()]
  assert.ok(files.filter(isSeam).length >= 25, 'the seam files of every area are found')
  assert.deepEqual(
    seamViolations(files),
    [],
    'a seam file is a pure table: move what it needs into src/common/ or out of the seam file',
  )
})

test('every area folder has index.ts, options.ts, metrics.ts, errors.ts and README.md', () => {
  const found = missingAreaFiles()
  const added = found.filter((f) => !KNOWN_MISSING_AREA_FILES.includes(f))
  const gone = KNOWN_MISSING_AREA_FILES.filter((f) => !found.includes(f))
  assert.deepEqual(
    added,
    [],
    `missing (an area without keys, metrics or codes has the file with an empty table):\n${added.join('\n')}`,
  )
  assert.deepEqual(gone, [], `now present, so remove from KNOWN_MISSING_AREA_FILES:\n${gone.join('\n')}`)
})
