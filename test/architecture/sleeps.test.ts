import assert from 'node:assert/strict'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { findings, sourceFiles } from '../utils/source-scan.ts'

// STYLE.md: never sleep to wait for something; wait for the event. Outside test/utils/ (where the one
// polling helper, wait.ts `waitFor`, lives), no test file:
// - builds a promise that a timer resolves (`new Promise((r) => setTimeout(r, ms))`, a `sleep`/`tick`
//   helper made that way) or imports node:timers/promises;
// - loops on the wall clock (`while (... Date.now() < deadline)`, `performance.now()` likewise).
// A timer that is not awaited (a fake server answering late) is not a sleep; nor is a turn of the event
// loop (`setImmediate`), which waits for no time.

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const testDir = join(root, 'test')
const EXEMPT_DIRS = ['utils/', 'fixtures/']
const TIMERS = new Set(['setTimeout', 'setInterval'])
const CLOCKS = new Set(['Date.now', 'performance.now'])

/** The called name: `setTimeout`, `Date.now`, `globalThis.setTimeout` → `setTimeout`. */
function calleeName(expr: ts.Expression): string | undefined {
  if (ts.isIdentifier(expr)) return expr.text
  if (ts.isPropertyAccessExpression(expr)) {
    if (ts.isIdentifier(expr.expression) && expr.expression.text !== 'globalThis') {
      return `${expr.expression.text}.${expr.name.text}`
    }
    return expr.name.text
  }
  return undefined
}

/** True when `node` contains a call whose name is in `names`. */
function calls(node: ts.Node, names: Set<string>): boolean {
  let found = false
  const visit = (n: ts.Node): void => {
    if (found) return
    if (ts.isCallExpression(n) && names.has(calleeName(n.expression) ?? '')) found = true
    else ts.forEachChild(n, visit)
  }
  visit(node)
  return found
}

/** `line: what` for each fixed sleep or wall-clock polling loop in `text`; comments and strings ignored. */
function sleeps(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: string[] = []
  const at = (node: ts.Node, what: string): void => {
    found.push(`${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}: ${what}`)
  }
  const visit = (node: ts.Node): void => {
    if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Promise') {
      if (node.arguments?.some((a) => calls(a, TIMERS))) at(node, 'a promise resolved by a timer')
    } else if (
      ts.isImportDeclaration(node) &&
      ts.isStringLiteral(node.moduleSpecifier) &&
      /^(node:)?timers\/promises$/.test(node.moduleSpecifier.text)
    ) {
      at(node, 'timers/promises')
    } else if (ts.isWhileStatement(node) || ts.isDoStatement(node)) {
      if (calls(node.expression, CLOCKS)) at(node, 'a loop on the wall clock')
    } else if (ts.isForStatement(node)) {
      if (node.condition !== undefined && calls(node.condition, CLOCKS)) at(node, 'a loop on the wall clock')
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
  return found
}

test('the scan finds sleeps and wall-clock polling, and not timers nobody awaits or turns of the loop', () => {
  const text = [
    'await new Promise((r) => setTimeout(r, 20))', // 1
    'const tick = (ms) => new Promise((resolve) => { globalThis.setTimeout(resolve, ms) })', // 2
    "import { setTimeout as sleep } from 'node:timers/promises'", // 3
    'while (!done && Date.now() < deadline) await poll()', // 4
    'for (let i = 0; performance.now() < end; i++) await poll()', // 5
    'setTimeout(() => res.end(), 100)', // 6: a fake server answering late
    'await new Promise((r) => setImmediate(r))', // 7: one turn
    "// await new Promise((r) => setTimeout(r, 20)); const s = 'setTimeout(r, 1)'", // 8
    'const t0 = Date.now()', // 9
  ].join('\n')
  assert.deepEqual(sleeps('x.ts', text), [
    '1: a promise resolved by a timer',
    '2: a promise resolved by a timer',
    '3: timers/promises',
    '4: a loop on the wall clock',
    '5: a loop on the wall clock',
  ])
})

test('no fixed sleep in test/ outside test/utils/', () => {
  const files = sourceFiles(testDir, EXEMPT_DIRS)
  assert.ok(files.includes('net/bulk.test.ts') && !files.includes('utils/wait.ts'))
  assert.deepEqual(
    findings(testDir, 'test', files, sleeps),
    [],
    'wait for the event (a promise, an event or a callback the code exposes), move a fake clock ' +
      '(test/utils/fake-clock.ts, or node:test mock.timers for code on the global timers), or, for a ' +
      'state nothing announces, poll with waitFor (test/utils/wait.ts)',
  )
})
