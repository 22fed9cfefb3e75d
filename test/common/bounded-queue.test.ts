import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BoundedQueue } from '../../src/common/bounded-queue.ts'
import { isNodusError } from '../../src/common/errors.ts'
import { mapConcurrent, Semaphore } from '../../src/common/semaphore.ts'

test('BoundedQueue runs at most `concurrency` jobs and refuses beyond maxPending', async () => {
  let running = 0
  let peak = 0
  const gates: (() => void)[] = []
  // Once open, a job still awaits (a resolved promise), so jobs started together overlap.
  let open = false
  const errors: unknown[] = []
  const q = new BoundedQueue<number>(
    async (n) => {
      running++
      peak = Math.max(peak, running)
      await new Promise<void>((r) => (open ? r() : gates.push(r)))
      running--
      if (n === 3) throw new Error('job 3 failed')
    },
    2,
    3,
    (err) => errors.push(err),
  )
  for (let i = 0; i < 5; i++) q.push(i)
  assert.equal(q.active, 2)
  assert.equal(q.size, 3)
  assert.throws(
    () => q.push(9),
    (err) => isNodusError(err, 'QUEUE_FULL'),
  )
  open = true
  for (const release of gates.splice(0)) release()
  await q.onIdle()
  assert.equal(peak, 2)
  assert.equal(errors.length, 1)
})

test('Semaphore says no instead of queueing; mapConcurrent keeps order and bounds concurrency', async () => {
  const s = new Semaphore(2)
  const a = s.tryAcquire()
  const b = s.tryAcquire()
  assert.ok(a && b)
  assert.equal(s.tryAcquire(), undefined)
  a()
  a()
  assert.equal(s.inUse, 1)
  let inFlight = 0
  let peak = 0
  const out = await mapConcurrent([5, 4, 3, 2, 1], 2, async (x) => {
    inFlight++
    peak = Math.max(peak, inFlight)
    await new Promise((r) => setImmediate(r))
    inFlight--
    return x * 2
  })
  assert.deepEqual(out, [10, 8, 6, 4, 2])
  assert.equal(peak, 2)
})
