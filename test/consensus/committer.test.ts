import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { isNodusError } from '../../src/common/errors.ts'
import {
  type CommittedSubDag,
  Committer,
  Dag,
  digestKey,
  refString,
  type Vertex,
} from '../../src/consensus/index.ts'
import { assertProperty } from '../utils/property.ts'
import { federation, randomDag, shuffled } from './harness.ts'

const GC = 50

/** Feed `vertices` in this order to a fresh DAG and committer; the commit log, one line per commit. */
function run(fed: Awaited<ReturnType<typeof federation>>, vertices: readonly Vertex[]) {
  const dag = new Dag(fed.committee, { maxSuspended: 100_000 })
  const committer = new Committer(dag, { gcDepthRounds: GC })
  const commits: CommittedSubDag[] = []
  for (const v of vertices) {
    const r = dag.add(v)
    assert.deepEqual(r.rejected, [])
    if (r.accepted.length > 0) commits.push(...committer.tryCommit().commits)
  }
  const log = commits.map(
    (c) =>
      `${c.index} ${refString(c.leader)} ${c.timestampMs} ${c.vertices.map((v) => digestKey(v.digest).slice(0, 8)).join(',')}`,
  )
  return { log, commits, committer, dag }
}

// The shape of Sui's test_randomized_dag_with_equivocations: 7 validators, 100 rounds, up to f
// equivocating authors, 100 random delivery orders per seed; every order commits the same sequence.
for (const [seed, equivocators] of [
  [1, []],
  [2, [3]],
  [3, [1, 5]],
] as const) {
  test(`randomized DAG, 7 validators, 100 rounds, equivocators [${equivocators}], 100 delivery orders (seed ${seed})`, async (t) => {
    const fed = await federation(7)
    const vertices = await randomDag(fed, 100, equivocators, seed)
    const reference = run(fed, vertices)
    assert.equal(reference.committer.halted, undefined)
    // Commits keep coming: most leader slots are decided, and the last commit is near the top.
    t.diagnostic(
      `seed ${seed}: ${reference.commits.length} commits, decided to round ${reference.committer.lastDecidedRound}`,
    )
    assert.ok(reference.commits.length >= 50, `only ${reference.commits.length} commits`)
    assert.ok(
      reference.committer.lastDecidedRound >= 90,
      `decided up to ${reference.committer.lastDecidedRound}`,
    )
    let prev = 0
    for (const c of reference.commits) {
      assert.ok(c.timestampMs >= prev)
      prev = c.timestampMs
    }
    for (let order = 0; order < 100; order++) {
      const { log, committer } = run(fed, shuffled(vertices, seed * 1000 + order))
      assert.equal(committer.halted, undefined)
      assert.deepEqual(log, reference.log, `delivery order ${order} of seed ${seed}`)
    }
  })
}

test('no vertex is committed twice, and every committed vertex is in its leader’s history', async () => {
  const fed = await federation(7)
  const { commits } = run(fed, await randomDag(fed, 60, [2], 9))
  const seen = new Set<string>()
  for (const c of commits) {
    for (const v of c.vertices) {
      const k = digestKey(v.digest)
      assert.ok(!seen.has(k), `${refString(v)} committed twice`)
      seen.add(k)
    }
    assert.equal(digestKey(c.vertices.at(-1)?.digest ?? new Uint8Array()), digestKey(c.leader.digest))
  }
})

test('f+1 equivocators: the committer halts with CONSENSUS_HALTED, never forks silently', async () => {
  const fed = await federation(7)
  const vertices = await randomDag(fed, 40, [0, 3, 6], 4)
  const logs: string[][] = []
  for (let order = 0; order < 20; order++) {
    const { log, committer, dag } = run(fed, shuffled(vertices, 77 + order))
    assert.ok(isNodusError(committer.halted, 'CONSENSUS_HALTED'), 'halted')
    assert.deepEqual(dag.equivocators, [0, 3, 6])
    // Halted for good: more vertices change nothing.
    assert.deepEqual(committer.tryCommit(), { decisions: [], commits: [] })
    logs.push(log)
  }
  // What was emitted before the halt is prefix-consistent in these runs.
  for (const log of logs)
    for (let i = 0; i < Math.min(log.length, (logs[0] as string[]).length); i++)
      assert.equal(log[i], logs[0]?.[i])
})

test('property: for any committee size, ≤ f equivocators and two delivery orders, one commit sequence', async () => {
  const feds = new Map<number, Awaited<ReturnType<typeof federation>>>()
  for (const n of [4, 5, 7, 10]) feds.set(n, await federation(n))
  await assertProperty(
    fc.asyncProperty(
      fc.constantFrom(4, 5, 7, 10),
      fc.integer({ min: 0, max: 2 ** 31 }),
      fc.double({ min: 0.5, max: 1, noNaN: true }),
      fc.integer({ min: 0, max: 2 ** 31 }),
      fc.integer({ min: 0, max: 2 ** 31 }),
      async (n, dagSeed, link, orderA, orderB) => {
        const fed = feds.get(n) as Awaited<ReturnType<typeof federation>>
        const equivocators = shuffled([...Array(n).keys()], dagSeed).slice(0, fed.committee.f)
        const vertices = await randomDag(fed, 25, equivocators, dagSeed, link)
        const a = run(fed, shuffled(vertices, orderA))
        const b = run(fed, shuffled(vertices, orderB))
        assert.deepEqual(a.log, b.log)
        assert.equal(a.committer.halted, undefined)
      },
    ),
    { numRuns: 12 },
  )
})
