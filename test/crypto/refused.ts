/** A predicate for `assert.throws`/`rejects`: a NodusError with this code, peerAction and `details.reason`. */
import assert from 'node:assert/strict'
import { isNodusError } from '../../src/common/errors.ts'

export const refused =
  (code: string, peerAction: string, reason?: string) =>
  (e: unknown): boolean => {
    assert.ok(isNodusError(e), `not a NodusError: ${String(e)}`)
    assert.equal(e.code, code, e.message)
    assert.equal(e.peerAction, peerAction)
    if (reason !== undefined) assert.equal(e.details.reason, reason)
    return true
  }
