/**
 * End to end (issue 21): an epoch change on real processes (loopback). 4 validators and 1 follower;
 * the validators propose and vote (`nodus committee propose|vote`) a committee of 3 of them and the
 * follower. Every node switches at the same height; the new committee commits transfers (one sent
 * through the removed validator, now a follower); the former follower leads commits of epoch 1; the
 * removed validator proposes no more; every node ends with the same state root; a node restarted
 * after the switch resumes in epoch 1.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { getJson } from '../../src/cli/client.ts'
import { apiOf, until } from '../../src/cli/demo-devnet.ts'
import type { Devnet } from '../../src/cli/devnet.ts'
import { followEvents } from '../../src/cli/sse.ts'
import { startFederation } from '../utils/federation.ts'
import { cliJson } from '../utils/run-cli.ts'

let dir = ''
let net: Devnet | undefined
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-epoch-e2e-'))
})
after(async () => {
  await net?.stop()
  await rm(dir, { recursive: true, force: true })
})

interface DagStatus {
  epoch: number
  role: string
  author: number
  lastProposedRound: number
  equivocators: number[]
  committee: { base: number; members: { ed25519: string }[] }
}

const cli = cliJson

test('epoch change: 4 validators and a follower switch to a committee of 3 old and the follower', {
  timeout: 300_000,
}, async () => {
  net = await startFederation({ dir, nodes: 5, members: 4 })
  const nodes = net.nodes
  const api = (i: number) => apiOf(nodes[i] as never)
  const dataDir = (i: number): string => nodes[i]?.dataDir as string
  const status = (i: number): Promise<DagStatus> => getJson<DagStatus>(api(i), '/dag/status')
  const height = async (i: number): Promise<number> =>
    (await getJson<{ height: number }>(api(i), '/ledger')).height
  const all = [0, 1, 2, 3, 4]
  assert.deepEqual(await Promise.all(all.map(async (i) => (await status(i)).role)), [
    'validator',
    'validator',
    'validator',
    'validator',
    'follower',
  ])
  assert.ok(await until(async () => (await height(0)) >= 3, 60_000), 'commits start')

  // Node 0's commits as they apply: the leader of each.
  const commits: { height: number; leader: { author: number } }[] = []
  const stream = new AbortController()
  void followEvents(
    api(0),
    '/ledger/commits',
    { authorization: `Bearer ${nodes[0]?.token}` },
    (name, data) => {
      if (name === 'commit') commits.push(JSON.parse(data))
    },
    'the commits of node 0',
    stream.signal,
  ).catch(() => {})

  try {
    // Propose 0, 1, 2 and the follower (4); validator 3 is removed. 3 of 4 votes decide.
    const members = [0, 1, 2, 4].flatMap((i) => ['--member', nodes[i]?.peerId as string])
    const p = await cli(['committee', 'propose', ...members, '--data-dir', dataDir(0)])
    assert.equal(p.status, 'applied')
    const show = await cli(['committee', 'show', '--data-dir', dataDir(1)])
    const hash = (show.proposals as { hash: string }[])[0]?.hash as string
    assert.match(hash, /^[0-9a-f]{64}$/)
    for (const i of [0, 1, 2]) {
      const v = await cli(['committee', 'vote', hash, '--data-dir', dataDir(i)])
      assert.equal(v.status, 'applied', `vote of node ${i}`)
    }

    // Every node switches, at the same height.
    assert.ok(
      await until(async () => (await Promise.all(all.map(status))).every((s) => s.epoch === 1), 60_000),
      'every node runs epoch 1',
    )
    const after1 = await Promise.all(all.map(status))
    const base = after1[0]?.committee.base as number
    assert.ok(base > 0)
    assert.deepEqual(
      after1.map((s) => s.committee.base),
      all.map(() => base),
      'one switch height',
    )
    assert.deepEqual(
      after1.map((s) => s.role),
      ['validator', 'validator', 'validator', 'follower', 'validator'],
    )
    assert.equal(after1[4]?.author, 3, 'the former follower is validator 3 of epoch 1')
    const committee = await cli(['committee', 'show', '--data-dir', dataDir(3)])
    assert.equal(committee.epoch, 1)
    assert.equal(committee.base, base)

    // The new committee commits transfers: one through a validator, one through the removed one.
    // (to genesis accounts: an account without mana capacity cannot take a transfer)
    const t0 = await cli(['tx', 'transfer', nodes[3]?.peerId as string, '1000', '--data-dir', dataDir(0)])
    assert.equal(t0.status, 'applied')
    assert.ok((t0.height as number) > base)
    const t3 = await cli(['tx', 'transfer', nodes[1]?.peerId as string, '500', '--data-dir', dataDir(3)])
    assert.equal(t3.status, 'applied')
    // The former follower proposes: commits of epoch 1 led by it; the removed validator proposes no more.
    assert.ok(
      await until(() => commits.some((c) => c.height > base && c.leader.author === 3), 60_000),
      'a commit of epoch 1 led by the former follower',
    )
    assert.equal((await status(3)).lastProposedRound, 0, 'the removed validator proposes no more')
    const metrics = await fetch(new URL('/metrics', nodes[2]?.api), {
      headers: { authorization: `Bearer ${nodes[2]?.token}` },
    }).then((r) => r.text())
    assert.match(metrics, /^nodus_consensus_epoch 1$/m)

    // A restart after the switch resumes in epoch 1.
    await net.kill(4)
    const h = await height(0)
    assert.ok(await until(async () => (await height(0)) >= h + 3, 60_000), 'the 3 others commit on')
    await net.restart(4)
    const s4 = await status(4)
    assert.equal(s4.epoch, 1)
    assert.equal(s4.role, 'validator')
    assert.equal(s4.committee.base, base)
    const target = (await height(0)) + 3
    assert.ok(await until(async () => (await height(4)) >= target, 90_000), 'the restarted node catches up')

    // One state root at a common height; nobody equivocated.
    const common = Math.min(...(await Promise.all(all.map(height))))
    const roots = await Promise.all(
      all.map(async (i) => (await getJson<{ root: string }>(api(i), `/ledger/roots/${common}`)).root),
    )
    assert.equal(new Set(roots).size, 1, `roots at ${common}: ${roots.join(' ')}`)
    for (const i of all) assert.deepEqual((await status(i)).equivocators, [])
  } finally {
    stream.abort()
  }
})
