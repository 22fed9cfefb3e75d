import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import {
  Dag,
  digestKey,
  genesisVertices,
  openVertex,
  signVertex,
  type Vertex,
  type VertexSigner,
} from '../../src/consensus/index.ts'
import { federation, fullRounds, vertexOf } from './harness.ts'

const fed = await federation(4)
const _g = genesisVertices(fed.committee)
const all = (round: Vertex[]) => (a: number) => [round[a] as Vertex, ...round.filter((v) => v.author !== a)]
const [r1, r2] = (await fullRounds(fed, 2)) as [Vertex[], Vertex[]]

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
