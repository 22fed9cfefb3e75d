/**
 * The consensus area with fakes for libp2p and gossip (the real thing runs in test/e2e/consensus.test.ts):
 * forged and malformed vertices are reported with their peerAction and change nothing; valid ones
 * enter the DAG; a follower refuses to pool transactions; a commit reaches the sink.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { Registry } from 'prom-client'
import { silentLogger } from '../../src/common/logger.ts'
import { systemRandom } from '../../src/common/random.ts'
import {
  type CommittedSubDag,
  createConsensus,
  createConsensusMetrics,
  DEFAULT_CONSENSUS_OPTIONS,
  genesisVertices,
  signVertex,
  type Vertex,
  type VertexSigner,
} from '../../src/consensus/index.ts'
import { MemoryOrderedStore } from '../../src/kv/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { waitFor } from '../utils/wait.ts'
import { fakePubsub, federation, vertexOf } from './harness.ts'

test('consensus area: forged and malformed vertices are reported; valid ones join the DAG; commits reach the sink', async () => {
  const fed = await federation(4)
  const follower = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(99))
  const reports: { peer: string; code: string; action: string | undefined }[] = []
  const commits: CommittedSubDag[] = []
  const ps = fakePubsub()
  const handled: string[] = []
  const area = createConsensus(
    {
      logger: silentLogger(),
      clock: new FakeClock(1_000_000),
      random: systemRandom,
      metrics: createConsensusMetrics(new Registry()),
      self: 'self',
      identity: {
        ed25519: follower,
        mldsa: { publicKey: new Uint8Array(0), privateKey: undefined as never },
      },
      dataDir: '/unused',
      genesis: fed.genesis,
      host: {
        dialProtocol: async () => {
          throw new Error('no network in this test')
        },
        handle: async (p) => {
          handled.push(p)
        },
        unhandle: async () => {},
      },
      pubsub: ps.pubsub,
      peers: {
        report: (peer, err) => {
          const e = err as { code: string; peerAction?: string }
          reports.push({ peer, code: e.code, action: e.peerAction })
        },
        isBanned: () => false,
      },
      commits: {
        height: () => commits.at(-1)?.index ?? 0,
        apply: async (c) => {
          commits.push(c)
        },
      },
      createStore: () => new MemoryOrderedStore(),
    },
    { ...DEFAULT_CONSENSUS_OPTIONS, verifyThreads: 0 },
  )
  await area.beforeStart()
  await area.start()
  try {
    assert.equal(area.author, undefined)
    assert.deepEqual(handled.sort(), ['/nodus/consensus-fetch/1.0.0', '/nodus/consensus-submit/1.0.0'])
    const g = genesisVertices(fed.committee)
    const r1 = await Promise.all(
      [0, 1, 2, 3].map((a) => vertexOf(fed, a, 1, [g[a] as Vertex, ...g.filter((_, i) => i !== a)])),
    )

    // A forged signature: validator 1's vertex signed with validator 2's key.
    const v1 = r1[1] as Vertex
    const forged = (
      await signVertex(
        { epoch: 0, round: 1, author: 1, parents: v1.parents, txs: [], timestampMs: v1.timestampMs },
        fed.signers[2] as VertexSigner,
        fed.committee,
        fed.limits,
      )
    ).bytes
    ps.push({ publisher: 'forger', data: forged })
    ps.push({ publisher: 'garbler', data: Uint8Array.of(1, 2, 3) })
    await waitFor(() => reports.length >= 2, { timeoutMs: 5_000, what: 'two reports' })
    const byPeer = Object.fromEntries(reports.map((r) => [r.peer, r]))
    assert.equal(byPeer.forger?.code, 'SIGNATURE_INVALID')
    assert.equal(byPeer.forger?.action, 'ban')
    assert.equal(byPeer.garbler?.code, 'VERTEX_INVALID')
    assert.equal(byPeer.garbler?.action, 'reject')
    assert.equal(area.status().dagVertices, 4, 'nothing was added')

    // Valid vertices of rounds 1..6 from every validator: they join, and leaders commit.
    let prev = r1
    for (const v of r1) ps.push({ publisher: `v${v.author}`, data: v.bytes })
    for (let round = 2; round <= 6; round++) {
      const cur = await Promise.all(
        [0, 1, 2, 3].map((a) =>
          vertexOf(fed, a, round, [prev[a] as Vertex, ...prev.filter((_, i) => i !== a)]),
        ),
      )
      for (const v of cur) ps.push({ publisher: `v${v.author}`, data: v.bytes })
      prev = cur
    }
    await waitFor(() => area.status().highestRound === 6, { timeoutMs: 5_000, what: 'round 6' })
    await waitFor(() => commits.length > 0, { timeoutMs: 5_000, what: 'a commit' })
    assert.deepEqual(
      commits.map((c) => c.index),
      commits.map((_, i) => i + 1),
    )
    assert.equal(area.status().role, 'follower')
    assert.equal(reports.length, 2, 'valid vertices are not reported')
    assert.ok(area.vertex((r1[2] as Vertex).digest) !== undefined)

    // A follower with no reachable validator refuses a transaction.
    await assert.rejects(area.submitTx(Uint8Array.of(1)), { code: 'CONSENSUS_NO_VALIDATOR' })
  } finally {
    await area.beforeStop()
    await area.stop()
    await area.afterStop()
  }
})
