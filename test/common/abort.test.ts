import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { test } from 'node:test'
import { throwIfAborted, withDeadline } from '../../src/common/abort.ts'
import { isNodusError, NodusError } from '../../src/common/errors.ts'

// The deadline's timer runs on node:test's fake timers: time moves only when a test ticks it.

test('withDeadline aborts with TIMEOUT at the deadline', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const d = withDeadline(undefined, 20, 'probe')
  t.mock.timers.tick(19)
  assert.equal(d.signal.aborted, false, 'not before the deadline')
  t.mock.timers.tick(1)
  assert.equal(d.signal.aborted, true)
  assert.ok(isNodusError(d.signal.reason) && d.signal.reason.code === 'TIMEOUT')
  assert.match((d.signal.reason as Error).message, /probe timed out after 20 ms/)
})

test('withDeadline follows its parent signal', () => {
  const parent = new AbortController()
  const d = withDeadline(parent.signal, 60_000)
  parent.abort(new NodusError('ABORTED', 'stop'))
  assert.equal(d.signal.aborted, true)
  assert.throws(() => throwIfAborted(d.signal), { code: 'ABORTED' })
  d[Symbol.dispose]()
})

test('disposing of a deadline cancels its timer: the signal never aborts', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  let signal: AbortSignal
  {
    using d = withDeadline(undefined, 20)
    signal = d.signal
  }
  t.mock.timers.tick(60)
  assert.equal(signal.aborted, false)
})

test('a deadline on an aborted parent starts aborted, with the parent’s reason', () => {
  const parent = new AbortController()
  const reason = new NodusError('ABORTED', 'gone')
  parent.abort(reason)
  using d = withDeadline(parent.signal, 60_000)
  assert.equal(d.signal.aborted, true)
  assert.equal(d.signal.reason, reason)
})

test('disposing of a deadline unhooks it from its parent', () => {
  const parent = new AbortController()
  const deadlines = Array.from({ length: 50 }, () => withDeadline(parent.signal, 60_000))
  assert.equal(getEventListeners(parent.signal, 'abort').length, 50)
  for (const d of deadlines) d[Symbol.dispose]()
  assert.equal(getEventListeners(parent.signal, 'abort').length, 0)
  // A disposed deadline no longer follows the parent.
  parent.abort()
  assert.ok(deadlines.every((d) => !d.signal.aborted))
})
