import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BatchQueue } from '../../src/common/batch-queue.ts'
import { isNodusError } from '../../src/common/errors.ts'

test('items pushed while the gate waits join that batch; batches never exceed batchSize', async () => {
  const batches: number[][] = []
  let open: () => void = () => {}
  const firstGate = Promise.withResolvers<void>()
  let gated = 0
  const q = new BatchQueue<number>(
    async (items) => {
      batches.push(items)
    },
    {
      batchSize: 4,
      maxPending: 100,
      gate: async () => {
        gated++
        if (gated === 1) {
          firstGate.resolve()
          await new Promise<void>((r) => (open = r))
        }
      },
    },
  )
  q.push(0)
  await firstGate.promise // the first batch waits at the gate
  for (let i = 1; i < 10; i++) q.push(i)
  assert.equal(q.size, 10)
  open()
  await q.onIdle()
  assert.deepEqual(batches, [
    [0, 1, 2, 3],
    [4, 5, 6, 7],
    [8, 9],
  ])
  assert.equal(q.size, 0)
  // A push after the loop ended starts it again.
  q.push(10)
  await q.onIdle()
  assert.deepEqual(batches.at(-1), [10])
})

test('QUEUE_FULL beyond maxPending; a failing batch goes to onError and the queue goes on', async () => {
  const errors: number[][] = []
  const done: number[][] = []
  let release: () => void = () => {}
  const hold = new Promise<void>((r) => (release = r))
  const running = Promise.withResolvers<void>()
  const q = new BatchQueue<number>(
    async (items) => {
      running.resolve()
      await hold
      if (items.includes(1)) throw new Error('boom')
      done.push(items)
    },
    { batchSize: 1, maxPending: 2, onError: (_err, items) => errors.push(items) },
  )
  q.push(1) // taken into the running batch at once
  await running.promise
  q.push(2)
  q.push(3)
  assert.throws(
    () => q.push(4),
    (e: unknown) => isNodusError(e) && e.code === 'QUEUE_FULL',
  )
  release()
  await q.onIdle()
  assert.deepEqual(errors, [[1]])
  assert.deepEqual(done, [[2], [3]])
})

test('stop() aborts the gate, drops waiting items and refuses new ones', async () => {
  const ran: number[][] = []
  let gateSignal: AbortSignal | undefined
  const atGate = Promise.withResolvers<void>()
  const q = new BatchQueue<number>(
    async (items) => {
      ran.push(items)
    },
    {
      batchSize: 8,
      maxPending: 8,
      gate: async (_oldest, signal) => {
        gateSignal = signal
        atGate.resolve()
        await new Promise((_r, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
      },
    },
  )
  q.push(1)
  q.push(2)
  await atGate.promise
  await q.stop()
  assert.equal(gateSignal?.aborted, true)
  assert.deepEqual(ran, [])
  assert.equal(q.size, 0)
  q.push(3)
  assert.equal(q.size, 0)
})
