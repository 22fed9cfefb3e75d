import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import {
  Core,
  DEFAULT_CONSENSUS_OPTIONS,
  OrderedProposalStore,
  type Vertex,
  type VertexSigner,
} from '../../src/consensus/index.ts'
import { MemoryOrderedStore } from '../../src/kv/index.ts'
import { federation, fullRounds } from './harness.ts'

const fed = await federation(4)
const [r1] = (await fullRounds(fed, 1)) as [Vertex[]]

test('a core refuses a vertex from the future (ignore) and persists through an OrderedStore', async () => {
  const store = new OrderedProposalStore(new MemoryOrderedStore(), 0)
  const core = await Core.open(
    { committee: fed.committee, signer: fed.signers[0] as VertexSigner, store },
    { ...DEFAULT_CONSENSUS_OPTIONS, ...fed.limits, author: 0, roundTimeoutMs: 200, initialTimestampMs: 0 },
  )
  const out = await core.start(5_000)
  assert.equal(out.proposed?.round, 1)
  assert.deepEqual(await store.load(), out.proposed?.bytes)
  assert.throws(
    () => core.addVertex(r1[1] as Vertex, 1000 - DEFAULT_CONSENSUS_OPTIONS.maxFutureSkewMs - 1),
    (e) => isNodusError(e, 'VERTEX_FROM_FUTURE') && e.peerAction === 'ignore',
  )
  // A restart on the same store proposes above round 1 only.
  const again = await Core.open(
    { committee: fed.committee, signer: fed.signers[0] as VertexSigner, store },
    { ...DEFAULT_CONSENSUS_OPTIONS, ...fed.limits, author: 0, roundTimeoutMs: 200, initialTimestampMs: 0 },
  )
  const restarted = await again.start(6_000)
  assert.equal(restarted.proposed, undefined)
  for (const v of r1.slice(1)) again.addVertex(v, 6_000)
  const next = await again.propose(6_000)
  assert.equal(next.proposed?.round, 2)
  assert.equal(again.dag.equivocators.length, 0)
})

test('a failed save sends nothing and returns the transactions to the pool', async () => {
  let failNext = true
  const saved: Uint8Array[] = []
  const store = {
    load: async () => undefined,
    save: async (bytes: Uint8Array) => {
      if (failNext) {
        failNext = false
        throw new Error('disk full')
      }
      saved.push(bytes)
    },
  }
  const core = await Core.open(
    { committee: fed.committee, signer: fed.signers[1] as VertexSigner, store },
    { ...DEFAULT_CONSENSUS_OPTIONS, ...fed.limits, author: 1, roundTimeoutMs: 200, initialTimestampMs: 0 },
  )
  core.submit(Uint8Array.of(1))
  core.submit(Uint8Array.of(2))
  await assert.rejects(core.start(5_000), /disk full/)
  assert.equal(core.pendingTxs, 2)
  const out = await core.propose(5_000)
  assert.deepEqual(out.proposed?.txs, [Uint8Array.of(1), Uint8Array.of(2)])
  assert.deepEqual(saved, [out.proposed?.bytes])
  assert.equal(core.pendingTxs, 0)
})
