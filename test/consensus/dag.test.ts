import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import {
  Core,
  Dag,
  DEFAULT_CONSENSUS_OPTIONS,
  digestKey,
  genesisVertices,
  OrderedProposalStore,
  openVertex,
  signVertex,
  type Vertex,
  type VertexSigner,
} from '../../src/consensus/index.ts'
import { MemoryOrderedStore } from '../../src/kv/index.ts'
import { federation, vertexOf } from './harness.ts'

const fed = await federation(4)
const g = genesisVertices(fed.committee)
const all = (round: Vertex[]) => (a: number) => [round[a] as Vertex, ...round.filter((v) => v.author !== a)]
const r1 = await Promise.all([0, 1, 2, 3].map((a) => vertexOf(fed, a, 1, all([...g])(a))))
const r2 = await Promise.all([0, 1, 2, 3].map((a) => vertexOf(fed, a, 2, all(r1)(a))))

test('a vertex waits for its parents, reports them missing, and is accepted when they arrive', () => {
  const dag = new Dag(fed.committee, { maxSuspended: 10 })
  const child = r2[0] as Vertex
  const first = dag.add(child)
  assert.equal(first.status, 'suspended')
  assert.deepEqual(
    first.missing.map((r) => digestKey(r.digest)).sort(),
    r1.map((v) => digestKey(v.digest)).sort(),
  )
  for (const v of r1.slice(0, 3)) assert.equal(dag.add(v).status, 'accepted')
  assert.equal(dag.get(child.digest), undefined)
  const last = dag.add(r1[3] as Vertex)
  assert.deepEqual(
    last.accepted.map((v) => v.round),
    [1, 2],
    'the parent, then the child it released',
  )
  assert.deepEqual(last.missing, [])
  assert.equal(dag.add(child).status, 'duplicate')
})

test('the suspended set is bounded: past it, arrivals are dropped', () => {
  const dag = new Dag(fed.committee, { maxSuspended: 2 })
  assert.equal(dag.add(r2[0] as Vertex).status, 'suspended')
  assert.equal(dag.add(r2[1] as Vertex).status, 'suspended')
  assert.equal(dag.add(r2[2] as Vertex).status, 'dropped')
  assert.equal(dag.suspendedCount, 2)
})

test('equivocation is detected and both signed vertices kept as evidence', async () => {
  const dag = new Dag(fed.committee, { maxSuspended: 10 })
  for (const v of r1) dag.add(v)
  const other = await vertexOf(fed, 2, 2, all(r1)(2), [Uint8Array.of(9)])
  assert.equal(dag.add(r2[2] as Vertex).equivocations.length, 0)
  const res = dag.add(other)
  assert.equal(res.status, 'accepted', 'the second vertex stays in the DAG')
  assert.equal(res.equivocations.length, 1)
  const ev = res.equivocations[0]
  assert.equal(ev?.author, 2)
  // The evidence verifies on its own: both are signed by author 2 for round 2.
  for (const v of ev?.vertices ?? []) assert.equal(openVertex(v.bytes, fed.committee, fed.limits).author, 2)
  assert.deepEqual(dag.equivocators, [2])
  assert.equal(dag.slot(2, 2).length, 2)
})

test('a vertex timestamped before a parent is rejected (VERTEX_INVALID, reject)', async () => {
  const dag = new Dag(fed.committee, { maxSuspended: 10 })
  for (const v of r1) dag.add(v)
  const early = await vertexOf(fed, 0, 2, all(r1)(0))
  // Re-sign with a timestamp before the parents' (vertexOf raises it, so sign directly).
  const bad = await signVertex(
    { ...early, timestampMs: 1 },
    fed.signers[0] as VertexSigner,
    fed.committee,
    fed.limits,
  )
  const res = dag.add(bad)
  assert.equal(res.status, 'rejected')
  assert.ok(isNodusError(res.rejected[0]?.error, 'VERTEX_INVALID'))
  assert.equal(res.rejected[0]?.error.peerAction, 'reject')
})

test('prune drops rounds below the floor; parents below it count as present', () => {
  const dag = new Dag(fed.committee, { maxSuspended: 10 })
  for (const v of [...r1, ...r2]) dag.add(v)
  assert.equal(dag.prune(2), 8)
  assert.equal(dag.floor, 2)
  assert.equal(dag.get((r1[0] as Vertex).digest), undefined)
  assert.ok(dag.has(r1[0] as Vertex))
  assert.equal(dag.add(r1[0] as Vertex).status, 'stale')
})

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
