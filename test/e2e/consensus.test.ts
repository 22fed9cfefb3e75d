/**
 * End to end (issue 21): 4 validator processes on loopback with a devnet genesis; transfers submitted
 * through two nodes commit everywhere and every node reaches the same state root; a validator killed
 * (SIGKILL) and restarted catches up and never equivocates.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { getJson } from '../../src/cli/client.ts'
import { apiOf, until } from '../../src/cli/demo-devnet.ts'
import type { Devnet } from '../../src/cli/devnet.ts'
import { startFederation } from '../utils/federation.ts'
import { cliJson } from '../utils/run-cli.ts'

let dir = ''
let net: Devnet | undefined
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-consensus-e2e-'))
})
after(async () => {
  await net?.stop()
  await rm(dir, { recursive: true, force: true })
})

interface DagStatus {
  role: string
  lastCommitIndex: number
  lastProposedRound: number
  highestRound: number
  equivocators: number[]
}
interface LedgerInfo {
  height: number
  root: string
}

const cli = cliJson

test('4 validators: transfers from two nodes commit everywhere with one state root; a killed validator catches up', {
  timeout: 240_000,
}, async () => {
  net = await startFederation({ dir, nodes: 4 })
  const nodes = net.nodes
  const status = (i: number): Promise<DagStatus> =>
    getJson<DagStatus>(apiOf(nodes[i] as never), '/dag/status')
  const ledger = (i: number): Promise<LedgerInfo> => getJson<LedgerInfo>(apiOf(nodes[i] as never), '/ledger')
  for (let i = 0; i < 4; i++) assert.equal((await status(i)).role, 'validator')
  assert.ok(await until(async () => (await status(0)).lastCommitIndex >= 3, 60_000), 'commits start')

  // Transfers signed by node 0's and node 1's keys, each submitted through its own node.
  const to = nodes[3]?.peerId as string
  const t0 = await cli(['tx', 'transfer', to, '1234', '--data-dir', nodes[0]?.dataDir as string])
  assert.equal(t0.status, 'applied')
  const t1 = await cli(['tx', 'transfer', to, '766', '--data-dir', nodes[1]?.dataDir as string])
  assert.equal(t1.status, 'applied')
  const b = await cli(['balance', to, '--data-dir', nodes[2]?.dataDir as string])
  assert.ok((b.mana as number) >= 1_000_000 + 2000 - 1, `balance ${String(b.mana)}`)

  // Kill validator 2, let the others go on, restart it: it catches up.
  const before2 = await status(2)
  await net.kill(2)
  const h0 = (await ledger(0)).height
  assert.ok(
    await until(async () => (await ledger(0)).height >= h0 + 5, 60_000),
    'the 3 others keep committing',
  )
  await net.restart(2)
  const target = (await ledger(0)).height + 3
  assert.ok(
    await until(async () => (await ledger(2)).height >= target, 90_000),
    'the restarted validator catches up',
  )
  const after2 = await status(2)
  assert.ok(after2.lastProposedRound >= before2.lastProposedRound, 'it proposes above its last round')

  // Same root at a common height on every node.
  const common = Math.min(...(await Promise.all([0, 1, 2, 3].map(ledger))).map((l) => l.height))
  const roots = await Promise.all(
    [0, 1, 2, 3].map(async (i) => {
      const s = await getJson<{ root: string }>(apiOf(nodes[i] as never), `/ledger/roots/${common}`)
      return s.root
    }),
  )
  assert.equal(new Set(roots).size, 1, `roots at ${common}: ${roots.join(' ')}`)
  for (let i = 0; i < 4; i++) assert.deepEqual((await status(i)).equivocators, [])
})
