/**
 * The epoch switch in the consensus area (src/consensus/area.ts) over the REAL ledger area, with fakes
 * for libp2p and gossip (the real thing: test/e2e/epoch.test.ts). A follower of epoch 0 hears the DAG
 * of 4 validators whose commits decide epoch 1 (the 3 first kept, this node added): it switches at the
 * deciding height, drops the later commits of epoch 0, replays an epoch-1 vertex it heard early,
 * proposes as validator 3 of epoch 1, ignores epoch-0 vertices from then on; restarted over the same
 * stores, it opens epoch 1 directly (the boundary in its ledger at start) and does not sign round 1 again.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { Registry } from 'prom-client'
import { silentLogger } from '../../src/common/logger.ts'
import { systemRandom } from '../../src/common/random.ts'
import {
  Committee,
  createConsensus,
  createConsensusMetrics,
  DEFAULT_CONSENSUS_OPTIONS,
  decodeVertex,
  Follower,
  genesisVertices,
  signVertex,
  type Vertex,
  type VertexSigner,
} from '../../src/consensus/index.ts'
import { signEd25519 } from '../../src/crypto/index.ts'
import { MemoryOrderedStore } from '../../src/kv/index.ts'
import {
  createLedger,
  createLedgerMetrics,
  DEFAULT_LEDGER_OPTIONS,
  encodeTx,
  nextLeaderSeed,
  proposalHash,
  type TxAction,
} from '../../src/ledger/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { waitFor } from '../utils/wait.ts'
import { fakePubsub, federation, type TestFederation, vertexOf } from './harness.ts'

/** A node: the ledger area and the consensus area over `stores`, wired as node.ts does. */
function node(
  fed: TestFederation,
  key: Ed25519PrivateKey,
  stores: { ledger: MemoryOrderedStore; consensus: MemoryOrderedStore },
  ps: ReturnType<typeof fakePubsub>,
) {
  const registry = new Registry()
  const clock = new FakeClock(1_000_000)
  const reports: { peer: string; code: string }[] = []
  const ledger = createLedger(
    {
      logger: silentLogger(),
      metrics: createLedgerMetrics(registry),
      clock,
      dataDir: '/unused',
      genesis: fed.genesis,
      verifyThreads: 0,
      createStore: () => stores.ledger,
    },
    DEFAULT_LEDGER_OPTIONS,
  )
  const consensus = createConsensus(
    {
      logger: silentLogger(),
      clock,
      random: systemRandom,
      metrics: createConsensusMetrics(registry),
      self: 'self',
      identity: { ed25519: key, mldsa: { publicKey: new Uint8Array(0), privateKey: undefined as never } },
      dataDir: '/unused',
      genesis: fed.genesis,
      host: {
        dialProtocol: async () => {
          throw new Error('no network in this test')
        },
        handle: async () => {},
        unhandle: async () => {},
      },
      pubsub: ps.pubsub,
      peers: {
        report: (peer, err) => reports.push({ peer, code: (err as { code: string }).code }),
        isBanned: () => false,
      },
      commits: {
        height: () => ledger.height(),
        epoch: () => ledger.epoch(),
        apply: (c, epoch) => ledger.apply({ ...c, epoch }),
        applyAll: (cs, epoch) => ledger.applyAll(cs.map((c) => ({ ...c, epoch }))),
        preverify: (t) => ledger.preverify(t),
      },
      createStore: () => stores.consensus,
      verifyPool: ledger.verifyPool,
    },
    { ...DEFAULT_CONSENSUS_OPTIONS, verifyThreads: 0 },
  )
  return {
    ledger,
    consensus,
    registry,
    reports,
    async start() {
      await ledger.beforeStart()
      await consensus.beforeStart()
      await ledger.start()
      await consensus.start()
    },
    async stop() {
      await consensus.beforeStop()
      await consensus.stop()
      await ledger.stop()
      await consensus.afterStop()
      await ledger.afterStop()
    },
  }
}

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex')

test('consensus area: switches epochs at the deciding commit; a restart resumes in the new epoch', async () => {
  const fed = await federation(4)
  const self = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(99))
  const chain = fed.genesis.id
  const members = [...fed.keys.slice(0, 3), self].map((k) => ({ ed25519: k.publicKey.raw }))
  const hash = proposalHash({ epoch: 1, members })
  const tx = async (i: number, nonce: number, action: TxAction): Promise<Uint8Array> => {
    const k = fed.keys[i] as Ed25519PrivateKey
    const signer = { publicKey: k.publicKey.raw, sign: (m: Uint8Array) => signEd25519(k, m) }
    return (await encodeTx({ chain, nonce, ...action }, signer)).bytes
  }
  // Validator 0's round-1 vertex carries the proposal and 3 of 4 votes: a quorum decides epoch 1.
  const change = [
    await tx(0, 0, { kind: 'committee.propose', epoch: 1, members }),
    await tx(0, 1, { kind: 'committee.vote', epoch: 1, proposal: hash }),
    await tx(1, 0, { kind: 'committee.vote', epoch: 1, proposal: hash }),
    await tx(2, 0, { kind: 'committee.vote', epoch: 1, proposal: hash }),
  ]
  const g = genesisVertices(fed.committee)
  const rounds: Vertex[][] = [
    await Promise.all(
      [0, 1, 2, 3].map((a) =>
        vertexOf(fed, a, 1, [g[a] as Vertex, ...g.filter((_, i) => i !== a)], a === 0 ? change : []),
      ),
    ),
  ]
  for (let round = 2; round <= 9; round++) {
    const prev = rounds.at(-1) as Vertex[]
    rounds.push(
      await Promise.all(
        [0, 1, 2, 3].map((a) =>
          vertexOf(fed, a, round, [prev[a] as Vertex, ...prev.filter((_, i) => i !== a)]),
        ),
      ),
    )
  }
  // Where the epoch ends: the first commit holding validator 0's round-1 vertex (the DAG decides it).
  const f = new Follower(fed.committee, { ...DEFAULT_CONSENSUS_OPTIONS, initialTimestampMs: 0 })
  const commits = rounds.flat().flatMap((v) => f.addVertex(v, 1_000_000).commits)
  const deciding = commits.find((c) => c.vertices.some((v) => v.round === 1 && v.author === 0))
  assert.ok(deciding !== undefined && commits.length > deciding.index, 'epoch 0 commits past the boundary')
  const height = deciding.index
  const committee1 = new Committee(
    1,
    members.map((m, index) => ({ index, ...m })),
    nextLeaderSeed(fed.genesis.body.leaderSeed, hash, height),
    'ed25519',
  )
  const g1 = genesisVertices(committee1)
  const early = await signVertex(
    {
      epoch: 1,
      round: 1,
      author: 1,
      parents: [g1[1] as Vertex, ...g1.filter((_, i) => i !== 1)].slice(0, 3),
      txs: [],
      timestampMs: deciding.timestampMs,
    },
    fed.signers[1] as VertexSigner,
    committee1,
    fed.limits,
  )

  const stores = { ledger: new MemoryOrderedStore(), consensus: new MemoryOrderedStore() }
  const ps = fakePubsub()
  const a = node(fed, self, stores, ps)
  await a.start()
  let ownRound1: string
  try {
    assert.equal(a.consensus.epoch, 0)
    assert.equal(a.consensus.status().role, 'follower')
    // An epoch-1 vertex first (kept until the switch), then epoch 0's DAG.
    ps.push({ publisher: 'v1', data: early.bytes })
    for (const r of rounds.slice(0, 6))
      for (const v of r) ps.push({ publisher: `v${v.author}`, data: v.bytes })
    await waitFor(() => a.consensus.epoch === 1, { timeoutMs: 10_000, what: 'the switch to epoch 1' })
    const s = a.consensus.status()
    assert.equal(s.role, 'validator')
    assert.equal(a.consensus.author, 3)
    assert.equal(s.committee.base, height)
    assert.deepEqual(
      s.committee.members.map((m) => m.ed25519),
      members.map((m) => hexOf(m.ed25519)),
    )
    assert.equal(a.ledger.height(), height, 'the commits of epoch 0 after the deciding one are not applied')
    assert.equal(a.ledger.epoch()?.epoch, 1)
    // The early vertex was replayed into epoch 1's DAG; this node proposed round 1 of epoch 1.
    await waitFor(
      () => a.consensus.status().highestRound >= 1 && a.consensus.status().lastProposedRound >= 1,
      {
        timeoutMs: 5_000,
        what: 'a proposal of epoch 1',
      },
    )
    assert.ok(a.consensus.vertex(early.digest) !== undefined, 'the early vertex is in the DAG')
    const mine = ps.published.map((b) => decodeVertex(b, committee1, fed.limits))
    assert.ok(mine.length >= 1 && mine.every((v) => v.epoch === 1 && v.author === 3))
    ownRound1 = hexOf((mine.find((v) => v.round === 1) as Vertex).digest)
    // Epoch 0 goes on: ignored (not reported, not added), the ledger does not move.
    const before = a.consensus.status().dagVertices
    const ignored = async (): Promise<number> =>
      (await a.registry.getSingleMetric('nodus_consensus_vertices_ignored_total')?.get())?.values.find(
        (x) => x.labels.reason === 'older-epoch',
      )?.value ?? 0
    const ignoredBefore = await ignored()
    let pushed = 0
    for (const r of rounds.slice(6))
      for (const v of r) {
        ps.push({ publisher: `v${v.author}`, data: v.bytes })
        pushed++
      }
    await waitFor(async () => (await ignored()) - ignoredBefore >= pushed, {
      timeoutMs: 10_000,
      what: 'the old epoch’s vertices to be ignored',
    })
    assert.equal(a.consensus.status().dagVertices, before)
    assert.equal(a.ledger.height(), height)
    assert.deepEqual(a.reports, [])
    // The old epoch's vertices are still served (fetches of nodes reaching the boundary).
    assert.ok(a.consensus.vertex(((rounds[0] as Vertex[])[0] as Vertex).digest) !== undefined)
    const metrics = await a.registry.getSingleMetricAsString('nodus_consensus_epoch')
    assert.match(metrics, /nodus_consensus_epoch 1/)
  } finally {
    await a.stop()
  }

  // A restart: the ledger says epoch 1, so the area opens epoch 1 directly.
  const ps2 = fakePubsub()
  const b = node(fed, self, stores, ps2)
  await b.start()
  try {
    assert.equal(b.ledger.height(), height)
    assert.equal(b.consensus.epoch, 1)
    assert.equal(b.consensus.status().role, 'validator')
    assert.equal(b.consensus.status().committee.base, height)
    assert.equal(b.consensus.status().lastProposedRound, 1, 'its round-1 vertex is known again')
    const again = ps2.published.map((x) => decodeVertex(x, committee1, fed.limits))
    assert.ok(
      again.every((v) => v.round !== 1 || hexOf(v.digest) === ownRound1),
      'never two round-1 vertices',
    )
  } finally {
    await b.stop()
  }
})
