import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { MemoryProposalStore } from '../../src/consensus/index.ts'
import { commitLog, Driver } from './driver.ts'

/** Every pair of logs agrees on their common prefix. */
function assertPrefixConsistent(logs: string[][]): void {
  for (const a of logs)
    for (const b of logs)
      for (let i = 0; i < Math.min(a.length, b.length); i++)
        assert.equal(a[i], b[i], `commit ${i + 1} differs`)
}

test('7 validators over random delays commit one sequence, and every transaction once', async () => {
  for (const seed of [1, 2, 3]) {
    const d = await Driver.create({ n: 7, seed })
    const txs: string[] = []
    for (let i = 0; i < 7; i++)
      for (let k = 0; k < 20; k++) {
        const tx = Uint8Array.of(i, k, seed)
        d.cores[i]?.submit(tx)
        txs.push(Buffer.from(tx).toString('hex'))
      }
    await d.runUntil(d.clock.now() + 3_000)
    const logs = d.commits.map(commitLog)
    assertPrefixConsistent(logs)
    for (const log of logs) assert.ok(log.length >= 20, `only ${log.length} commits (seed ${seed})`)
    const committed = (d.commits[0] ?? []).flatMap((c) =>
      c.vertices.flatMap((v) => v.txs.map((t) => Buffer.from(t).toString('hex'))),
    )
    assert.deepEqual([...committed].sort(), [...txs].sort(), 'each transaction committed exactly once')
    assert.deepEqual(d.errors, [])
  }
})

test('liveness with f crashed validators: the others keep committing', async () => {
  const d = await Driver.create({ n: 7, seed: 5, down: [1, 4] })
  await d.runUntil(d.clock.now() + 5_000)
  const live = [0, 2, 3, 5, 6].map((i) => commitLog(d.commits[i] ?? []))
  assertPrefixConsistent(live)
  for (const log of live) assert.ok(log.length >= 10, `only ${log.length} commits`)
  // The crashed validators' leader slots were skipped, the others committed.
  const leaders = new Set((d.commits[0] ?? []).map((c) => c.leader.author))
  assert.ok(!leaders.has(1) && !leaders.has(4))
})

test('with f+1 crashed validators nothing is committed', async () => {
  const d = await Driver.create({ n: 7, seed: 6, down: [1, 4, 5] })
  await d.runUntil(d.clock.now() + 3_000)
  for (const c of d.commits) assert.equal(c.length, 0)
})

test('a crashed validator restarts from its proposal store and never equivocates', async () => {
  const d = await Driver.create({ n: 4, seed: 7 })
  await d.runUntil(d.clock.now() + 1_000)
  const store = d.stores[2] as MemoryProposalStore
  const before = d.cores[2]?.status().lastProposedRound ?? 0
  assert.ok(before > 3)
  d.crash(2)
  await d.runUntil(d.clock.now() + 300)
  await d.start(2, store)
  await d.runUntil(d.clock.now() + 2_000)
  const after = d.cores[2]?.status()
  assert.ok((after?.lastProposedRound ?? 0) > before, 'it proposes again, above its last round')
  for (const core of d.cores) assert.deepEqual(core?.dag.equivocators, [])
  const logs = d.commits.map(commitLog)
  assertPrefixConsistent(logs)
  assert.ok((logs[2] ?? []).length > 0, 'the restarted validator commits again (from height 1)')
})

test('without its proposal store a restarted validator equivocates (what the store prevents)', async () => {
  const d = await Driver.create({ n: 4, seed: 7 })
  await d.runUntil(d.clock.now() + 1_000)
  d.crash(2)
  await d.start(2, new MemoryProposalStore())
  await d.runUntil(d.clock.now() + 1_000)
  assert.ok(d.cores.some((c) => c?.dag.equivocators.includes(2)))
  assert.ok(
    d.cores.every((c) => c?.status().halted === false),
    'one equivocator (f = 1) does not halt',
  )
})

test('submit refuses past the pool bounds with TX_POOL_FULL', async () => {
  const d = await Driver.create({ n: 4, seed: 8 })
  const core = d.cores[0]
  assert.ok(core !== undefined)
  assert.throws(
    () => core.submit(new Uint8Array(0)),
    (e) => isNodusError(e, 'INVALID_ARGUMENT'),
  )
  for (let i = 0; i < 100_000; i++) core.submit(Uint8Array.of(1))
  assert.throws(
    () => core.submit(Uint8Array.of(1)),
    (e) => isNodusError(e, 'TX_POOL_FULL'),
  )
})

test('end to end with f equivocating validators: honest validators commit one sequence, commits keep coming', async () => {
  for (const seed of [11, 12]) {
    const d = await Driver.create({ n: 7, seed, equivocators: [2, 5] })
    await d.runUntil(d.clock.now() + 3_000)
    const honest = [0, 1, 3, 4, 6]
    const logs = honest.map((i) => commitLog(d.commits[i] ?? []))
    assertPrefixConsistent(logs)
    for (const log of logs) assert.ok(log.length >= 10, `only ${log.length} commits (seed ${seed})`)
    for (const i of honest) {
      assert.deepEqual(d.cores[i]?.dag.equivocators, [2, 5], `validator ${i} holds the evidence`)
      assert.equal(d.cores[i]?.status().halted, false)
    }
  }
})

test('end to end with f+1 equivocating validators: honest validators halt, and never fork silently', async () => {
  const d = await Driver.create({ n: 7, seed: 13, equivocators: [0, 2, 5] })
  await d.runUntil(d.clock.now() + 3_000)
  const honest = [1, 3, 4, 6]
  for (const i of honest) assert.equal(d.cores[i]?.status().halted, true, `validator ${i} halted`)
  // Whatever was committed before the halt is prefix-consistent.
  assertPrefixConsistent(honest.map((i) => commitLog(d.commits[i] ?? [])))
  // Halted cores propose no more.
  const rounds = honest.map((i) => d.cores[i]?.status().lastProposedRound)
  await d.runUntil(d.clock.now() + 1_000)
  assert.deepEqual(
    honest.map((i) => d.cores[i]?.status().lastProposedRound),
    rounds,
  )
})

test('a validator restarted with its committer state goes on with the same sequence, from the next height', async () => {
  const d = await Driver.create({ n: 4, seed: 21 })
  await d.runUntil(d.clock.now() + 2_000)
  const core = d.cores[3]
  assert.ok(core !== undefined)
  const state = core.committer.state()
  assert.ok(state.lastIndex > 5 && state.committed.length > 0)
  d.crash(3)
  await d.runUntil(d.clock.now() + 500)
  await d.start(3, d.stores[3], state)
  assert.ok((d.cores[3]?.dag.floor ?? 0) > 0, 'the DAG starts at the restored GC floor')
  await d.runUntil(d.clock.now() + 2_000)
  const resumed = d.commits[3] ?? []
  assert.ok(resumed.length > 5, `only ${resumed.length} commits after the restart`)
  assert.equal(resumed[0]?.index, state.lastIndex + 1)
  const reference = commitLog(d.commits[0] ?? [])
  for (const line of commitLog(resumed)) assert.equal(line, reference[Number(line.split(' ')[0]) - 1])
  for (const c of d.cores) assert.deepEqual(c?.dag.equivocators, [])
})

test('idle pacing: with nothing to order rounds slow to one per idleRoundDelayMs; a transaction commits at delivery speed', async () => {
  const paced = await Driver.create({ n: 4, seed: 5, idleRoundDelayMs: 100 })
  const free = await Driver.create({ n: 4, seed: 5 })
  await paced.runUntil(paced.clock.now() + 2_000)
  await free.runUntil(free.clock.now() + 2_000)
  const pacedRound = paced.cores[0]?.status().lastProposedRound ?? 0
  const freeRound = free.cores[0]?.status().lastProposedRound ?? 0
  // At most one vertex per 100 ms (plus the first) while idle; unpaced, rounds follow the 1–40 ms delays.
  assert.ok(pacedRound <= 2_000 / 100 + 1, `paced: round ${pacedRound} after 2 s`)
  assert.ok(freeRound > 3 * pacedRound, `unpaced: round ${freeRound}, paced ${pacedRound}`)
  // A transaction ends the wait: every core commits it within a few delivery delays, not idle rounds.
  const tx = Uint8Array.of(7, 7, 7)
  const hex = Buffer.from(tx).toString('hex')
  const sentAt = paced.clock.now()
  paced.submit(1, tx)
  const committedAt = new Map<number, number>()
  for (let step = 0; step < 200 && committedAt.size < 4; step++) {
    await paced.runUntil(paced.clock.now() + 5)
    for (let i = 0; i < 4; i++)
      if (
        !committedAt.has(i) &&
        (paced.commits[i] ?? []).some((c) =>
          c.vertices.some((v) => v.txs.some((t) => Buffer.from(t).toString('hex') === hex)),
        )
      )
        committedAt.set(i, paced.clock.now())
  }
  assert.equal(committedAt.size, 4, 'committed at every core')
  // Simulated time: 3 rounds of at most 40 ms delivery each, plus a leader's wait, stay below the 300 ms
  // that three idle rounds would take.
  const worst = Math.max(...committedAt.values()) - sentAt
  assert.ok(worst < 300, `committed everywhere ${worst} ms (simulated) after submission`)
  // Then idle again: the pace returns.
  const before = paced.cores[0]?.status().lastProposedRound ?? 0
  await paced.runUntil(paced.clock.now() + 1_000)
  const after = paced.cores[0]?.status().lastProposedRound ?? 0
  assert.ok(after - before <= 1_000 / 100 + 3, `${after - before} rounds in an idle second`)
  assert.deepEqual(paced.errors, [])
})
