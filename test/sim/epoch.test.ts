/**
 * An epoch change on the simulator (src/sim/consensus-epoch.ts): the real core, follower and ledger.
 * 7 validators hand over to 4 of them plus 3 new ones; every node switches at the same commit, the
 * new committee commits, removed validators stop proposing, one commit log and one state root; a
 * removed validator's old-epoch and forged new-epoch vertices are ignored or refused; a minority of
 * votes decides nothing.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DEFAULT_EPOCH_SIM_OPTIONS, runEpochSim } from '../../src/sim/index.ts'

describe('sim: epoch change through the ledger', () => {
  it('7 → 4 old + 3 new: same switch commit everywhere, the new committee commits, seed 1', async () => {
    const r = await runEpochSim({ ...DEFAULT_EPOCH_SIM_OPTIONS, seed: 1, attacker: true })
    const h = r.switchHeights[0]
    assert.ok(typeof h === 'number' && h > 0, `decided: ${JSON.stringify(r.switchHeights)}`)
    assert.deepEqual(
      r.switchHeights,
      r.switchHeights.map(() => h),
      'every node switches after the same commit',
    )
    assert.deepEqual(
      r.epochs,
      r.epochs.map(() => 1),
    )
    assert.equal(r.safetyViolations, 0)
    assert.ok(r.stateRootsEqual, 'one state root')
    assert.ok(r.epoch1Commits >= 20, `epoch 1 commits: ${r.epoch1Commits}`)
    assert.ok(
      r.log.every((line, i) => line.startsWith(`${i + 1} e${i + 1 <= h ? 0 : 1} `)),
      'heights continue',
    )
    for (const i of [4, 5, 6])
      assert.equal(r.proposed[i]?.[1] ?? 0, 0, `removed validator ${i} stops proposing`)
    for (const i of [0, 1, 2, 3, 7, 8, 9])
      assert.ok((r.proposed[i]?.[1] ?? 0) > 10, `member ${i} proposes in epoch 1`)
    for (const i of [7, 8, 9])
      assert.equal(r.proposed[i]?.[0] ?? 0, 0, `new member ${i} did not propose in epoch 0`)
    // The attack: epoch-0 vertices ignored, forged epoch-1 ones refused, commits go on.
    assert.ok(r.attackSent[0] > 0 && r.attackSent[1] > 0, `attack sent ${r.attackSent}`)
    assert.ok((r.refused.VERTEX_WRONG_EPOCH ?? 0) >= r.attackSent[0], JSON.stringify(r.refused))
    assert.ok((r.refused.SIGNATURE_INVALID ?? 0) >= r.attackSent[1] * 8, JSON.stringify(r.refused))
    assert.ok(r.committedTxs > 0.9 * r.submittedTxs, `${r.committedTxs} of ${r.submittedTxs} transfers final`)
  })

  it('a minority (f = 2 of 7) voting decides nothing; commits go on in epoch 0, seed 2', async () => {
    const r = await runEpochSim({ ...DEFAULT_EPOCH_SIM_OPTIONS, seed: 2, voters: 2, durationMs: 5_000 })
    assert.deepEqual(
      r.switchHeights,
      r.switchHeights.map(() => null),
    )
    assert.deepEqual(
      r.epochs,
      r.epochs.map(() => 0),
    )
    assert.equal(r.safetyViolations, 0)
    assert.ok(r.stateRootsEqual)
    assert.ok(r.log.length > 50, `commits: ${r.log.length}`)
    for (const i of [7, 8, 9]) assert.equal(r.proposed[i]?.[0] ?? 0, 0, `follower ${i} never proposes`)
  })

  it('the same seed gives the same commit log', async () => {
    const o = { ...DEFAULT_EPOCH_SIM_OPTIONS, seed: 3, durationMs: 4_000, signatures: false }
    const [a, b] = [await runEpochSim(o), await runEpochSim(o)]
    assert.ok(a.switchHeights[0] !== null)
    assert.equal(a.logHash, b.logHash)
  })
})
