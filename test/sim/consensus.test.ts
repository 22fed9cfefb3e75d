/**
 * `nodus sim consensus` (issue 21, "How we will know"): the real Mysticeti-C core and ledger over the
 * seeded simulated network. Every run is seeded; a failure prints its seed in the test name.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  AVALANCHEGO_SNOWBALL,
  type ConsensusSimOptions,
  DEFAULT_CONSENSUS_SIM_OPTIONS,
  parseLatency,
  parseOutage,
  parsePartition,
  runMysticetiSim,
  runSnowballSim,
} from '../../src/sim/index.ts'

const base = (o: Partial<ConsensusSimOptions>): ConsensusSimOptions => ({
  ...DEFAULT_CONSENSUS_SIM_OPTIONS,
  durationMs: 6_000,
  txPerSecond: 100,
  ...o,
})

describe('sim consensus: Mysticeti-C on the real core and ledger', () => {
  for (const [seed, equivocators, signatures, loss] of [
    [1, 0, true, 0],
    [2, 1, false, 0.02],
    [3, 2, false, 0],
    [4, 2, true, 0.01],
  ] as const) {
    it(`7 validators, 100 rounds, ${equivocators} equivocators (f = 2), loss ${loss}, seed ${seed}: one sequence, commits keep coming`, async () => {
      const commitsAt: number[] = []
      const r = await runMysticetiSim(
        base({
          validators: 7,
          rounds: 100,
          durationMs: 60_000,
          seed,
          byzantine: equivocators,
          equivocators,
          signatures,
          loss,
          reorder: 0.1,
          latency: parseLatency('uniform:2-60'),
          onCommit: (v, _i, at) => {
            if (v === 6) commitsAt.push(at)
          },
        }),
      )
      assert.equal(r.safetyViolations, 0)
      assert.equal(r.halted, false)
      assert.equal(r.stateRootsEqual, true)
      assert.deepEqual(
        r.details.equivocators,
        Array.from({ length: equivocators }, (_, i) => i),
      )
      assert.ok(r.commits >= 30, `only ${r.commits} commits in 100 rounds`)
      // Commits keep coming: one in every quarter of the run.
      const end = commitsAt[commitsAt.length - 1] as number
      for (let q = 0; q < 4; q++)
        assert.ok(
          commitsAt.some((t) => t >= (q * end) / 4 && t <= ((q + 1) * end) / 4),
          `no commit in quarter ${q}`,
        )
      assert.ok(r.committedTxs > 0)
    })
  }

  it('f + 1 = 3 equivocators of 7: halts and flags them, never forks silently (seeds 1–3)', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await runMysticetiSim(
        base({ validators: 7, seed, byzantine: 3, equivocators: 3, signatures: false, durationMs: 4_000 }),
      )
      assert.equal(r.safetyViolations, 0, `seed ${seed}`)
      assert.equal(r.halted, true, `seed ${seed}`)
      assert.equal(r.details.haltedCore, true, `seed ${seed}`)
      assert.ok((r.details.equivocators as number[]).length > 2, `seed ${seed}`)
    }
  })

  it('6/4 partition of 10: no commits on either side during the split; all commit again after healing', async () => {
    const commits: { v: number; i: number; at: number }[] = []
    const r = await runMysticetiSim(
      base({
        validators: 10,
        seed: 5,
        signatures: false,
        partitions: [parsePartition('6/4@2s-5s', 10)],
        onCommit: (v, i, at) => commits.push({ v, i, at }),
      }),
    )
    // A validator may still apply heights decided before the split (catching up from its own side):
    // no height beyond what was committed by split + grace (votes sent before it) commits until it heals.
    const grace = 500
    const before = Math.max(...commits.filter((c) => c.at <= 2_000 + grace).map((c) => c.i))
    assert.deepEqual(
      commits.filter((c) => c.at < 5_000 && c.i > before),
      [],
    )
    for (let v = 0; v < 10; v++)
      assert.ok(
        commits.some((c) => c.v === v && c.at > 5_000),
        `validator ${v}`,
      )
    assert.equal(r.safetyViolations, 0)
    assert.equal(r.stateRootsEqual, true)
    assert.equal(r.halted, false)
  })

  it('7/3 partition of 10: the majority keeps committing, the minority does not; after healing it catches up (snapshot)', async () => {
    const commits: { v: number; at: number }[] = []
    const r = await runMysticetiSim(
      base({
        validators: 10,
        seed: 6,
        signatures: false,
        durationMs: 9_000,
        gcDepthRounds: 10, // the majority garbage-collects what the minority lacks: catch-up by snapshot
        partitions: [parsePartition('7/3@1s-6s', 10)],
        onCommit: (v, _i, at) => commits.push({ v, at }),
      }),
    )
    const during = (v: number) => commits.filter((c) => c.v === v && c.at > 1_500 && c.at < 6_000).length
    for (let v = 0; v < 7; v++) assert.ok(during(v) > 5, `majority validator ${v}: ${during(v)} commits`)
    for (let v = 7; v < 10; v++) assert.equal(during(v), 0, `minority validator ${v}`)
    const heights = r.details.heights as number[]
    const max = Math.max(...heights)
    for (const h of heights) assert.ok(h >= max - 3, `heights ${heights}`)
    assert.ok(
      (r.details.snapshotsInstalled as number[]).slice(7).some((s) => s > 0),
      'the minority used a snapshot',
    )
    assert.equal(r.safetyViolations, 0)
    assert.equal(r.stateRootsEqual, true)
  })

  it('a crashed validator restarts from its stores, and a late joiner catches up from a snapshot + the DAG', async () => {
    const r = await runMysticetiSim(
      base({
        validators: 10,
        seed: 7,
        durationMs: 8_000,
        crashes: [parseOutage('1@1s-2s')],
        late: [parseOutage('1@6s')],
      }),
    )
    const heights = r.details.heights as number[]
    const roots = r.details.rootsAtMinHeight as (string | null)[]
    // Validator 8 joined late (from a snapshot, then the DAG); validator 0 replayed every height.
    assert.ok(((r.details.snapshotsInstalled as number[])[8] as number) >= 1)
    assert.ok((heights[8] as number) >= Math.max(...heights) - 3, `heights ${heights}`)
    assert.equal(roots[8], roots[0])
    assert.equal(roots[9], roots[0])
    assert.equal(r.stateRootsEqual, true)
    assert.equal(r.safetyViolations, 0)
  })

  it('the same seed gives a byte-identical commit log; signatures on or off give the same log', async () => {
    const o = base({ validators: 7, seed: 11, durationMs: 2_000, loss: 0.02, reorder: 0.2 })
    const a = await runMysticetiSim(o)
    const b = await runMysticetiSim(o)
    const c = await runMysticetiSim({ ...o, signatures: false })
    const d = await runMysticetiSim({ ...o, seed: 12 })
    assert.ok(a.log.length > 20)
    assert.deepEqual(a.log, b.log)
    assert.equal(a.details.commitLogHash, b.details.commitLogHash)
    assert.deepEqual(c.log, a.log)
    assert.notEqual(d.details.commitLogHash, a.details.commitLogHash)
  })
})

describe('sim consensus: Snowball (avalanchego parameters)', () => {
  it('no Byzantine validators: every conflict finalized everywhere, safely, deterministically', () => {
    const o = {
      ...base({ validators: 10, seed: 3, durationMs: 3_000 }),
      ...AVALANCHEGO_SNOWBALL,
      pollTimeoutMs: 1_000,
    }
    const a = runSnowballSim(o)
    const b = runSnowballSim(o)
    assert.deepEqual(a, b)
    assert.equal(a.safetyViolations, 0)
    assert.equal(a.committedTxs, a.submittedTxs)
    assert.ok((a.p50FinalityMs as number) > 0)
  })

  it('a third Byzantine: safety is reported, and liveness suffers', () => {
    const r = runSnowballSim({
      ...base({ validators: 10, seed: 3, durationMs: 3_000, byzantine: 3 }),
      ...AVALANCHEGO_SNOWBALL,
      pollTimeoutMs: 1_000,
    })
    assert.equal(typeof r.safetyViolations, 'number')
    assert.ok(r.committedTxs < r.submittedTxs)
  })
})
