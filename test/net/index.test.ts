/**
 * net/index.ts exports exactly what src/net/README.md lists as public ("Public API", one bullet per
 * export, the export's name first in backticks), so the README cannot drift from the code.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const net = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'net')

/** The names index.ts exports (`export { a, type B } from ...`), sorted. */
function indexExports(text: string): string[] {
  const sf = ts.createSourceFile('index.ts', text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS)
  const names: string[] = []
  for (const stmt of sf.statements) {
    assert.ok(
      ts.isExportDeclaration(stmt) && stmt.exportClause !== undefined && ts.isNamedExports(stmt.exportClause),
      'index.ts holds only named re-exports',
    )
    for (const e of stmt.exportClause.elements) names.push(e.name.text)
  }
  return names.sort()
}

/** The first backticked name of each top-level bullet under `## Public API`, sorted. */
function readmePublic(text: string): string[] {
  const section = /^## Public API[^\n]*\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(text)?.[1]
  assert.ok(section !== undefined, 'README.md has a "## Public API" section')
  const names: string[] = []
  for (const line of section.split('\n')) {
    const m = /^- `([A-Za-z_$][\w$]*)/.exec(line)
    if (m?.[1] !== undefined) names.push(m[1])
  }
  return names.sort()
}

test('the parsers read exports and bullets (and not nested lines or other sections)', () => {
  assert.deepEqual(indexExports("export { b, type A } from './x.ts'\nexport { c } from './y.ts'\n"), [
    'A',
    'b',
    'c',
  ])
  const md =
    '# x\n## Public API (`index.ts`)\n- `f(a)`: does\n  - `g`: nested\n- `T` (type)\n## Other\n- `h`\n'
  assert.deepEqual(readmePublic(md), ['T', 'f'])
})

test('net/index.ts exports exactly the README public API', () => {
  const exported = indexExports(readFileSync(join(net, 'index.ts'), 'utf8'))
  const documented = readmePublic(readFileSync(join(net, 'README.md'), 'utf8'))
  assert.ok(exported.length > 10, `only ${exported.length} exports read from index.ts`)
  assert.deepEqual(
    exported.filter((n) => !documented.includes(n)),
    [],
    'exported from net/index.ts but not listed in src/net/README.md "Public API"',
  )
  assert.deepEqual(
    documented.filter((n) => !exported.includes(n)),
    [],
    'listed in src/net/README.md "Public API" but not exported from net/index.ts',
  )
})
