import assert from 'node:assert/strict'
import { dirname, join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import ts from 'typescript'
import { assertProperty, DEFAULT_SEED, propertySeed } from '../utils/property.ts'
import { findings, sourceFiles } from '../utils/source-scan.ts'

// STYLE.md: properties are seeded, and the seed is printed on failure. Every fast-check run in test/
// goes through test/utils/property.ts (`assertProperty`), which does both; nothing else calls
// `fc.assert` or `fc.check`.

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const testDir = join(root, 'test')
const HELPER = 'utils/property.ts'

/** `line: fc.assert` / `line: fc.check` for each direct run in `text`; comments and strings ignored. */
function directRuns(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: string[] = []
  const visit = (node: ts.Node): void => {
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      ts.isIdentifier(node.expression.expression) &&
      node.expression.expression.text === 'fc' &&
      ['assert', 'check'].includes(node.expression.name.text)
    ) {
      found.push(
        `${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}: fc.${node.expression.name.text}`,
      )
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
  return found
}

/** Set NODUS_SEED to `value` (undefined: unset) for the rest of test `t`; restored after it. */
function withSeedEnv(t: TestContext, value: string | undefined): void {
  const before = process.env.NODUS_SEED
  t.after(() => {
    if (before === undefined) delete process.env.NODUS_SEED
    else process.env.NODUS_SEED = before
  })
  if (value === undefined) delete process.env.NODUS_SEED
  else process.env.NODUS_SEED = value
}

/** The values a property sees in 20 runs under the current seed. */
function seen(): number[] {
  const values: number[] = []
  assertProperty(
    fc.property(fc.integer(), (n) => {
      values.push(n)
    }),
    { numRuns: 20 },
  )
  return values
}

test('the seed is DEFAULT_SEED unless NODUS_SEED (decimal or 0x hex) says otherwise; garbage is an error', (t) => {
  withSeedEnv(t, undefined)
  assert.equal(propertySeed(), DEFAULT_SEED)
  process.env.NODUS_SEED = '12345'
  assert.equal(propertySeed(), 12345)
  process.env.NODUS_SEED = '0x5eed'
  assert.equal(propertySeed(), 0x5eed)
  process.env.NODUS_SEED = 'twelve'
  assert.throws(() => propertySeed(), /NODUS_SEED must be an integer/)
})

test('runs are reproducible: the same seed gives the same values, another seed others', (t) => {
  withSeedEnv(t, '7')
  const first = seen()
  assert.equal(first.length, 20)
  assert.deepEqual(seen(), first)
  process.env.NODUS_SEED = '8'
  assert.notDeepEqual(seen(), first)
})

test('a failure names the seed that replays it, for sync and async properties', async (t) => {
  withSeedEnv(t, '4242')
  const fails = (err: unknown): boolean => {
    assert.ok(err instanceof Error)
    assert.match(err.message, /Counterexample/, "fast-check's report is kept")
    assert.match(err.message, /replay with NODUS_SEED=4242/)
    assert.ok(err.cause instanceof Error, "fast-check's error is the cause")
    return true
  }
  assert.throws(() => assertProperty(fc.property(fc.nat(), (n) => n < 10)), fails)
  await assert.rejects(assertProperty(fc.asyncProperty(fc.nat(), async (n) => n < 10)), fails)
  await assertProperty(
    fc.asyncProperty(fc.nat(), async (n) => n >= 0),
    { numRuns: 5 },
  )
})

test('the scan finds fc.assert and fc.check, and not mentions in comments or strings', () => {
  const text = "fc.assert(p)\n// fc.assert(p)\nconst s = 'fc.check(p)'\nawait fc.check(p, { seed: 1 })\n"
  assert.deepEqual(directRuns('x.ts', text), ['1: fc.assert', '4: fc.check'])
})

test('every fast-check run in test/ goes through test/utils/property.ts', () => {
  const files = sourceFiles(testDir).filter((f) => f !== HELPER)
  assert.ok(files.includes('storage/reed-solomon.test.ts'))
  assert.deepEqual(
    findings(testDir, 'test', files, directRuns),
    [],
    'use assertProperty from test/utils/property.ts (seeded, seed printed on failure)',
  )
})
