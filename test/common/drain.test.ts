import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { test } from 'node:test'
import { drained } from '../../src/common/drain.ts'

test('drained resolves on drain and removes its listeners', async () => {
  const w = new EventEmitter()
  const p = drained(w)
  w.emit('drain')
  await p
  for (const e of ['drain', 'close', 'error']) assert.equal(w.listenerCount(e), 0, e)
})

test('drained rejects on close (typed), on error and on abort', async () => {
  const closed = new EventEmitter()
  const p1 = drained(closed)
  closed.emit('close')
  await assert.rejects(p1, { code: 'STREAM_CLOSED' })

  const custom = new EventEmitter()
  const p2 = drained(custom, undefined, () => new Error('custom close'))
  custom.emit('close')
  await assert.rejects(p2, /custom close/)

  const failing = new EventEmitter()
  const p3 = drained(failing)
  failing.emit('error', new Error('boom'))
  await assert.rejects(p3, /boom/)

  const ac = new AbortController()
  const stalled = new EventEmitter()
  const p4 = drained(stalled, ac.signal)
  ac.abort(new Error('stop'))
  await assert.rejects(p4, /stop/)
  assert.equal(stalled.listenerCount('drain'), 0)
})
