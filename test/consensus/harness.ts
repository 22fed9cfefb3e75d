/**
 * Test helpers of the consensus area: a committee with deterministic keys and its signed genesis, a
 * vertex builder, and a Sui-style random DAG (Sui consensus/core's RandomDag, read, not copied).
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { mulberry32 } from '../../src/common/prng.ts'
import {
  type Committee,
  committeeOf,
  GENESIS_DEFAULTS,
  type Genesis,
  type GenesisBody,
  genesisSigningBytes,
  genesisVertices,
  signVertex,
  type Vertex,
  type VertexLimits,
  type VertexSigner,
  verifyGenesis,
} from '../../src/consensus/index.ts'
import { signEd25519 } from '../../src/crypto/index.ts'

export interface TestFederation {
  keys: Ed25519PrivateKey[]
  signers: VertexSigner[]
  genesis: Genesis
  committee: Committee
  limits: VertexLimits
}

/** `n` validators with keys from seeds `seedBase + i`, an Ed25519 genesis signed by all. */
export async function federation(
  n: number,
  seedBase = 1,
  overrides: Partial<GenesisBody> = {},
): Promise<TestFederation> {
  const keys = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(seedBase + i)),
    ),
  )
  const body: GenesisBody = {
    version: 1,
    federation: 'test',
    epoch: 0,
    createdAtMs: 1_000,
    leaderSeed: new Uint8Array(32).fill(7),
    signatureMode: 'ed25519',
    roundTimeoutMs: 200,
    maxTxsPerVertex: GENESIS_DEFAULTS.maxTxsPerVertex,
    maxVertexBytes: GENESIS_DEFAULTS.maxVertexBytes,
    members: keys.map((k, i) => ({ name: `v${i}`, ed25519: k.publicKey.raw })),
    ledger: { accounts: [] },
    ...overrides,
  }
  const message = genesisSigningBytes(body)
  const genesis = verifyGenesis(
    body,
    keys.map((k) => signEd25519(k, message)),
  )
  const committee = committeeOf(genesis)
  const signers: VertexSigner[] = keys.map((k) => ({
    scheme: 'ed25519',
    sign: (m: Uint8Array) => signEd25519(k, m),
  }))
  return { keys, signers, genesis, committee, limits: genesis.body }
}

/** Sign a vertex of `author` at `round` with these parents (own first) and timestamp round·1000. */
export function vertexOf(
  fed: TestFederation,
  author: number,
  round: number,
  parents: readonly Vertex[],
  txs: Uint8Array[] = [],
): Promise<Vertex> {
  const timestampMs = Math.max(round * 1000, ...parents.map((p) => p.timestampMs))
  return signVertex(
    { epoch: fed.committee.epoch, round, author, parents, txs, timestampMs },
    fed.signers[author] as VertexSigner,
    fed.committee,
    fed.limits,
  )
}

/**
 * A random DAG of `rounds` rounds over `fed`'s committee: every author proposes at every round (each
 * author in `equivocators` twice, with other transactions); each vertex references its author's own
 * previous vertex first (an equivocator's: one of them at random) and, for each other author, one of
 * its previous-round vertices with probability `linkProbability`, topped up to a quorum at random.
 */
export async function randomDag(
  fed: TestFederation,
  rounds: number,
  equivocators: readonly number[],
  seed: number,
  linkProbability = 0.8,
): Promise<Vertex[]> {
  const rnd = mulberry32(seed)
  const { n, quorum } = fed.committee
  let previous: Vertex[][] = genesisVertices(fed.committee).map((g) => [g])
  const all: Vertex[] = []
  for (let round = 1; round <= rounds; round++) {
    const current: Vertex[][] = []
    for (let author = 0; author < n; author++) {
      const copies = equivocators.includes(author) ? 2 : 1
      const mine: Vertex[] = []
      current[author] = mine
      for (let c = 0; c < copies; c++) {
        const pick = (a: number): Vertex => {
          const vs = previous[a] as Vertex[]
          return vs[Math.floor(rnd() * vs.length)] as Vertex
        }
        const others = Array.from({ length: n }, (_, a) => a).filter((a) => a !== author)
        const chosen = others.filter(() => rnd() < linkProbability)
        const rest = others.filter((a) => !chosen.includes(a))
        while (chosen.length + 1 < quorum)
          chosen.push(rest.splice(Math.floor(rnd() * rest.length), 1)[0] as number)
        const parents = [pick(author), ...chosen.sort((a, b) => a - b).map(pick)]
        const v = await vertexOf(fed, author, round, parents, [Uint8Array.of(round % 256, author, c, 1)])
        mine.push(v)
        all.push(v)
      }
    }
    previous = current
  }
  return all
}

/** A seeded Fisher–Yates shuffle (a copy). */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const rnd = mulberry32(seed)
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    const t = out[i] as T
    out[i] = out[j] as T
    out[j] = t
  }
  return out
}

/** `rounds` fully connected rounds (1..rounds) of every author: each vertex references the whole previous round. */
export async function fullRounds(fed: TestFederation, rounds: number): Promise<Vertex[][]> {
  const out: Vertex[][] = []
  let previous: readonly Vertex[] = genesisVertices(fed.committee)
  for (let round = 1; round <= rounds; round++) {
    const prev = previous
    const own = (a: number) => [prev[a] as Vertex, ...prev.filter((v) => v.author !== a)]
    previous = await Promise.all(prev.map((_, a) => vertexOf(fed, a, round, own(a))))
    out.push([...previous])
  }
  return out
}

type Msg = { publisher: string; data: Uint8Array }

/** A gossip topic the test pushes messages into; what the area publishes is kept (`published`). */
export function fakePubsub() {
  const waiting: Msg[] = []
  let wake: (() => void) | undefined
  let closed = false
  const published: Uint8Array[] = []
  return {
    published,
    push(m: Msg) {
      waiting.push(m)
      wake?.()
    },
    pubsub: {
      publish: (_t: string, d: Uint8Array) => published.push(d),
      topicPeers: () => [],
      subscribe: () => {
        closed = false
        return {
          close() {
            closed = true
            wake?.()
          },
          async *[Symbol.asyncIterator]() {
            while (!closed) {
              const m = waiting.shift()
              if (m !== undefined) yield m
              else await new Promise<void>((r) => (wake = r))
            }
          },
        }
      },
    },
  }
}
