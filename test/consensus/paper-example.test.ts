import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  Committer,
  Dag,
  genesisVertices,
  type LeaderDecision,
  type Vertex,
} from '../../src/consensus/index.ts'
import { federation, type TestFederation, vertexOf } from './harness.ts'

// The three decisions of the Mysticeti paper's example (arXiv 2310.14821, §4 and Appendix A), on
// n = 4 (f = 1, quorum 3): the leader of round 1 is committed directly, the leader of round 2 is
// skipped directly (a quorum of round-3 vertices does not support it), and the leader of round 3 is
// undecided directly (one certificate) but committed indirectly through the anchor, round 6's leader.

class Builder {
  readonly byRound: Vertex[][]
  readonly dag: Dag
  readonly committer: Committer
  readonly decisions: LeaderDecision[] = []

  readonly fed: TestFederation

  constructor(fed: TestFederation) {
    this.fed = fed
    this.byRound = [genesisVertices(fed.committee).slice()]
    this.dag = new Dag(fed.committee, { maxSuspended: 1000 })
    this.committer = new Committer(this.dag, { gcDepthRounds: 50 })
  }

  /** Author's vertex at `round` with parents: own previous first, then the round−1 vertices of `others`. */
  async add(round: number, author: number, others: number[]): Promise<void> {
    const prev = this.byRound[round - 1] as Vertex[]
    const pick = (a: number) => prev.find((v) => v.author === a) as Vertex
    const v = await vertexOf(this.fed, author, round, [
      pick(author),
      ...others.filter((a) => a !== author).map(pick),
    ])
    const row = this.byRound[round] ?? []
    this.byRound[round] = row
    row.push(v)
    assert.equal(this.dag.add(v).status, 'accepted')
    this.decisions.push(...this.committer.tryCommit().decisions)
  }

  async full(round: number): Promise<void> {
    for (let a = 0; a < 4; a++) await this.add(round, a, [0, 1, 2, 3])
  }
}

test('paper example: direct commit, direct skip, indirect commit through the anchor', async () => {
  const fed = await federation(4)
  const c = fed.committee
  const b = new Builder(fed)
  const all = [0, 1, 2, 3]
  await b.full(1)
  await b.full(2)
  // Round 3: the three authors other than round 2's leader S ignore S's round-2 vertex (they blame it).
  const s = c.leader(2)
  for (const a of all) await b.add(3, a, a === s ? all : all.filter((x) => x !== s))
  // Round 4: three authors support round 3's leader L; D (not L) does not.
  const l = c.leader(3)
  const d = all.find((x) => x !== l && x !== s) ?? (all.find((x) => x !== l) as number)
  for (const a of all) await b.add(4, a, a === d ? all.filter((x) => x !== l) : all)
  // Slots are examined once their decision round may exist (as Sui's committer does).
  assert.deepEqual(
    b.decisions.map((d) => [d.kind, d.round]),
    [
      ['commit', 1],
      ['skip', 2],
    ],
  )
  // Round 5: only one vertex (by a supporter A) is a certificate: it references the three supporters.
  const supporters = all.filter((x) => x !== d)
  const [sa, sb, sc] = supporters as [number, number, number]
  // The others reference D and two of {sb, sc, themselves}: two supporting votes each, not three.
  for (const a of all) await b.add(5, a, a === sa ? supporters : [a, d, sb, sc])
  await b.full(6)
  assert.equal(b.committer.lastDecidedRound, 2, 'round 3 is undecided: one certificate, anchor undecided')
  await b.full(7)
  await b.full(8)
  const kinds = b.decisions.map((x) => [x.kind, x.round])
  assert.deepEqual(kinds.slice(0, 3), [
    ['commit', 1],
    ['skip', 2],
    ['commit', 3],
  ])
  assert.deepEqual(
    kinds.find((x) => x[1] === 6),
    ['commit', 6],
  )
  const three = b.decisions[2]
  assert.ok(three?.kind === 'commit' && three.author === l)
})
