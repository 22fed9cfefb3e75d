import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Registry } from 'prom-client'
import { createConsensusMetrics, observeCoreOutput, observeCoreStatus } from '../../src/consensus/index.ts'
import { Driver } from './driver.ts'

test('metrics follow a core: decisions, commits, latency, rounds, DAG size', async () => {
  const d = await Driver.create({ n: 4, seed: 3 })
  await d.runUntil(d.clock.now() + 1_000)
  const core = d.cores[0]
  assert.ok(core !== undefined)
  const m = createConsensusMetrics(new Registry())
  const commits = d.commits[0] ?? []
  observeCoreOutput(
    m,
    { commits, decisions: [], missing: [], equivocations: [], rejected: [] },
    d.clock.now(),
  )
  observeCoreStatus(m, core.status())
  const value = async (
    metric: { get(): Promise<{ values: { value: number; labels: object }[] }> },
    labels = {},
  ) => (await metric.get()).values.find((v) => JSON.stringify(v.labels) === JSON.stringify(labels))?.value
  assert.equal(
    await value(m.consensusCommittedVertices),
    commits.reduce((n, c) => n + c.vertices.length, 0),
  )
  assert.equal(await value(m.consensusCommitIndex), core.status().lastCommitIndex)
  assert.equal(await value(m.consensusRound, { kind: 'proposed' }), core.status().lastProposedRound)
  assert.equal(await value(m.consensusHalted), 0)
  const latency = await m.consensusCommitLatency.get()
  assert.equal(latency.values.find((v) => v.metricName?.endsWith('_count'))?.value, commits.length)
})
