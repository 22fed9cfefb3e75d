import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { defineErrors, isNodusError, NodusError } from '../../src/common/errors.ts'
import { ERROR_TABLES, HTTP_STATUS } from '../../src/config/index.ts'

test('every error code is documented in docs/ERRORS.md with its HTTP status', async () => {
  const doc = await readFile(new URL('../../docs/ERRORS.md', import.meta.url), 'utf8')
  assert.ok(Object.keys(HTTP_STATUS).length >= 38, "the status table holds every area's codes")
  for (const [code, status] of Object.entries(HTTP_STATUS)) {
    assert.match(
      doc,
      new RegExp(`\\| \`${code}\` \\| ${status} \\|`),
      `${code} missing or wrong in docs/ERRORS.md`,
    )
  }
})

test('every area table entry has a code name, an HTTP error status and both docs columns', () => {
  const codes = ERROR_TABLES.flatMap((t) => Object.keys(t))
  assert.equal(new Set(codes).size, codes.length, 'a code is declared by one table only')
  assert.deepEqual(codes.toSorted(), Object.keys(HTTP_STATUS).toSorted())
  for (const table of ERROR_TABLES) {
    assert.ok(Object.isFrozen(table))
    for (const [code, e] of Object.entries(table)) {
      assert.match(code, /^[A-Z][A-Z0-9_]*$/)
      assert.ok(
        Number.isInteger(e.status) && e.status >= 400 && e.status <= 599,
        `${code}: status ${e.status}`,
      )
      assert.ok(e.what.length > 0 && e.fix.length > 0, `${code}: what and fix`)
      assert.equal(new NodusError(code as keyof typeof HTTP_STATUS, 'x').status, e.status)
    }
  }
})

test('a code declared twice is refused at load', () => {
  assert.throws(
    () => defineErrors({ TIMEOUT: { status: 504, what: 'again', fix: 'none' } }),
    /TIMEOUT is declared twice/,
  )
})

test('a code no table declares does not compile', () => {
  // @ts-expect-error: NO_SUCH_CODE is in no area's errors.ts (tsc fails here if it ever compiles)
  const err = new NodusError('NO_SUCH_CODE', 'x')
  assert.throws(() => err.status, /no HTTP status for NO_SUCH_CODE/)
})

test("a code's status is known once its area's table is loaded (config/index.ts loads them all)", () => {
  const errors = new URL('../../src/common/errors.ts', import.meta.url).href
  const config = new URL('../../src/config/index.ts', import.meta.url).href
  const script = `const { NodusError } = await import(${JSON.stringify(errors)})
    const status = () => { try { return new NodusError('CID_INVALID', 'x').status } catch (e) { return e.message } }
    const before = status()
    await import(${JSON.stringify(config)})
    console.log(JSON.stringify({ common: new NodusError('TIMEOUT', 'x').status, before, after: status() }))`
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
  assert.deepEqual(JSON.parse(out), {
    common: 504,
    before: "no HTTP status for CID_INVALID: its area's errors.ts is not loaded (see config/index.ts)",
    after: 400,
  })
})

test('NodusError carries code, status, details and peer action', () => {
  const err = new NodusError('PEER_BUSY', 'busy', { details: { limit: 3 }, peerAction: 'ignore' })
  assert.equal(err.status, 503)
  assert.deepEqual(err.toJSON(), { code: 'PEER_BUSY', message: 'busy', details: { limit: 3 } })
  assert.equal(err.peerAction, 'ignore')
  const asUnknown: unknown = err
  assert.equal(isNodusError(asUnknown, 'PEER_BUSY'), true)
  assert.equal(isNodusError(asUnknown, 'TIMEOUT'), false)
  assert.equal(isNodusError(new Error('x')), false)
})
