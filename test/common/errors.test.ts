import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { HTTP_STATUS, isNodusError, NodusError } from '../../src/common/errors.ts'

test('every error code is documented in docs/ERRORS.md with its HTTP status', async () => {
  const doc = await readFile(new URL('../../docs/ERRORS.md', import.meta.url), 'utf8')
  for (const [code, status] of Object.entries(HTTP_STATUS)) {
    assert.match(
      doc,
      new RegExp(`\\| \`${code}\` \\| ${status} \\|`),
      `${code} missing or wrong in docs/ERRORS.md`,
    )
  }
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
