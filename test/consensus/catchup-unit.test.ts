/**
 * Catch-up (src/consensus/catchup.ts) between in-memory nodes: real ledgers, real snapshots and real
 * vouch digests, a fake wire that hands each request to the peer's `serve` (as wire.ts does: a
 * refusal comes back as PROTOCOL_ERROR with the remote code, no peerAction). Hostile cases: a single
 * vouch never installs; a source whose chunks do not give the vouched root is refused, reported (ban)
 * and the next source installs; malformed offers and chunks are typed errors; bounds (per-peer
 * slots, request ops, snapshot bytes, export cache) hold.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { bytesEqual } from '../../src/common/bytes.ts'
import { isNodusError, NodusError } from '../../src/common/errors.ts'
import { FairSlots } from '../../src/common/fair-slots.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { CatchUp, type CatchUpOptions, type SnapshotLedger } from '../../src/consensus/catchup.ts'
import type { CommitterState } from '../../src/consensus/committer.ts'
import { VouchLog } from '../../src/consensus/vouch.ts'
import { MemoryOrderedStore } from '../../src/kv/index.ts'
import { CONFIG_KEY, SUPPLY_KEY } from '../../src/ledger/codec.ts'
import { exportSnapshot, importSnapshot, Ledger } from '../../src/ledger/index.ts'
import { acct, applyUnsigned, genesis, memoryLedger, rawTx, T0 } from '../ledger/helpers.ts'
import { FakeClock } from '../utils/fake-clock.ts'

const ACCOUNTS = [acct(1), acct(2), acct(3)]
const G = genesis(ACCOUNTS)
const CHUNK = 4096
const GC = 5

/** Transfers at heights 1..n (the same on every honest node). */
async function ledgerAt(n: number): Promise<Ledger> {
  const l = await memoryLedger(G)
  for (let h = 1; h <= n; h++)
    await applyUnsigned(l, T0 + h * 1000, [
      await rawTx(ACCOUNTS[h % 3] as Uint8Array, Math.floor((h - 1) / 3), {
        kind: 'transfer',
        to: ACCOUNTS[(h + 1) % 3] as Uint8Array,
        amount: h,
      }),
    ])
  return l
}

/** The committer state after commit `h` (what every honest node's vouch log holds). */
const stateAt = (h: number): CommitterState => ({
  lastDecidedRound: 3 * h + 1,
  lastIndex: h,
  lastTimestampMs: T0 + h * 1000,
  lastCommittedRound: 3 * h,
  committed: [{ author: 0, round: 3 * h, digest: new Uint8Array(32).fill(h) }],
})

/** A SnapshotLedger over a Ledger on a memory store: install imports apart, then swaps. */
function snapshotLedger(initial: Ledger) {
  let ledger = initial
  const installs: number[] = []
  const sl: SnapshotLedger = {
    chunkBytes: CHUNK,
    height: () => ledger.height,
    rootAt: (h) => ledger.rootAt(h),
    exportSnapshot: (signal) => exportSnapshot(ledger, { chunkBytes: CHUNK, signal }),
    async installSnapshot(chunks, o) {
      const store = new MemoryOrderedStore()
      const info = await importSnapshot(store, chunks, { ...o, chunkBytes: CHUNK })
      ledger = await Ledger.open({ store }, { genesis: G })
      installs.push(info.height)
      return info
    },
  }
  return {
    sl,
    installs,
    get ledger() {
      return ledger
    },
  }
}

interface Node {
  id: PeerId
  name: string
  catchUp: CatchUp
  ledger: ReturnType<typeof snapshotLedger>
  reports: { peer: string; code: string; action: string | undefined }[]
  counts: string[]
  restored: CommitterState[]
  requests: { to: string; op: unknown }[]
  vouch: VouchLog
  /** Replaces this node's handler (a liar). */
  serveAs?: (req: Record<string, unknown>, from: string) => Promise<Record<string, unknown>>
}

const OPTIONS: CatchUpOptions = {
  maxSnapshotBytes: 1024 * 1024,
  cacheSnapshots: 2,
  cacheMs: 60_000,
  cacheRounds: 3,
  headPeers: 8,
}

/** Nodes `specs` on one fake network; validators are those with `validator: true`. */
async function network(
  specs: { name: string; height: number; validator: boolean; vouch?: boolean }[],
  o: { options?: Partial<CatchUpOptions>; perPeer?: number; waiting?: boolean } = {},
) {
  const byPeer = new Map<string, Node>()
  const nodes: Node[] = []
  const clock = new FakeClock(T0)
  for (const [i, s] of specs.entries()) {
    const key = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(i + 1))
    const id = peerIdFromPrivateKey(key)
    const ledger = snapshotLedger(await ledgerAt(s.height))
    const vouch = new VouchLog(GC, 64)
    if (s.vouch !== false && s.height > 0) vouch.reset(stateAt(s.height), T0)
    const node: Node = {
      id,
      name: s.name,
      ledger,
      reports: [],
      counts: [],
      restored: [],
      requests: [],
      vouch,
    } as unknown as Node
    const validators = (): string[] =>
      specs
        .map((x, j) => ({ x, j }))
        .filter(({ x, j }) => x.validator && j !== i)
        .map(({ j }) => (nodes[j] as Node).id.toString())
    node.catchUp = new CatchUp(
      {
        wire: {
          async request(peer, body) {
            node.requests.push({ to: peer.toString(), op: body.op })
            const to = byPeer.get(peer.toString())
            if (to === undefined) throw new NodusError('PEER_UNREACHABLE', 'no such peer')
            try {
              const reply = await (to.serveAs ?? to.catchUp.serve)(body, id.toString())
              // What goes over the wire: dag-cbor both ways.
              return dagCbor.decode(dagCbor.encode(reply)) as Record<string, unknown>
            } catch (err) {
              throw new NodusError('PROTOCOL_ERROR', `peer: ${(err as Error).message}`, {
                details: { remoteCode: isNodusError(err) ? err.code : 'PROTOCOL_ERROR' },
              })
            }
          },
        },
        log: silentLogger(),
        clock,
        random: { next: () => 0.5 } as never,
        ledger: ledger.sl,
        vouch,
        slots: new FairSlots({ global: 8, perPeer: o.perPeer ?? 2, perGroup: 8 }),
        validity: 2,
        maxCommittedRefs: 4 * (GC + 2),
        validators,
        sources: () => nodes.filter((n) => n !== node).map((n) => n.id.toString()),
        servedFloor: () => Math.max(0, 3 * node.ledger.sl.height() - 2 * GC),
        dagFloor: () => Math.max(0, 3 * node.ledger.sl.height() - GC),
        waiting: () => o.waiting ?? true,
        lastCommittedRound: () => 3 * node.ledger.sl.height(),
        serial: (fn) => fn(),
        restore: async (state) => {
          node.restored.push(state)
          vouch.reset(state, T0)
        },
        report: (peer, err) => node.reports.push({ peer, code: err.code, action: err.peerAction }),
        counted: (r) => node.counts.push(r),
        signal: () => new AbortController().signal,
      },
      { ...OPTIONS, ...o.options },
    )
    nodes.push(node)
    byPeer.set(id.toString(), node)
  }
  return { nodes, clock }
}

const rootOf = (n: Node): string => Buffer.from(n.ledger.ledger.root).toString('hex')

describe('catch-up by snapshot', () => {
  it('installs a snapshot f+1 validators vouch for, restores the committer there, then is current', async () => {
    const { nodes } = await network([
      { name: 'a', height: 30, validator: true },
      { name: 'b', height: 30, validator: true },
      { name: 'c', height: 30, validator: true },
      { name: 'late', height: 0, validator: true },
    ])
    const [a, , , late] = nodes as [Node, Node, Node, Node]
    assert.equal(await late.catchUp.check(), 'current', 'the first check only notes the height')
    assert.equal(late.requests.length, 0)
    assert.equal(await late.catchUp.check(), 'installed')
    assert.deepEqual(late.ledger.installs, [30])
    assert.equal(rootOf(late), rootOf(a))
    assert.equal(late.restored.length, 1)
    assert.equal(late.restored[0]?.lastIndex, 30)
    assert.equal(late.restored[0]?.lastDecidedRound, 90, 'decides again from the last committed round')
    assert.deepEqual(late.counts, ['installed'])
    assert.deepEqual(late.reports, [])
    // At the others' height now: no further catch-up.
    assert.equal(await late.catchUp.check(), 'current')
    assert.equal(await late.catchUp.check(), 'current')
    assert.deepEqual(late.ledger.installs, [30])
  })

  it('across an epoch switch: the vouched state carries the epoch and its base; the restore is of that epoch', async () => {
    const { nodes } = await network([
      { name: 'a', height: 30, validator: true },
      { name: 'b', height: 30, validator: true },
      { name: 'c', height: 30, validator: true },
      { name: 'late', height: 0, validator: true },
    ])
    const [a, b, c, late] = nodes as [Node, Node, Node, Node]
    // Epoch 1 started after height 20: height 30 is its commit 10.
    for (const n of [a, b, c]) n.vouch.reset({ ...stateAt(30), lastIndex: 10, epoch: 1, base: 20 }, T0)
    assert.equal(await late.catchUp.check(), 'current')
    assert.equal(await late.catchUp.check(), 'installed')
    assert.deepEqual(late.ledger.installs, [30])
    const r = late.restored[0] as CommitterState & { epoch?: number; base?: number }
    assert.deepEqual([r.epoch, r.base, r.lastIndex], [1, 20, 10])
    // A state that claims another epoch or base has another digest: no vouch matches it.
    const other = new VouchLog(GC, 4)
    other.reset({ ...stateAt(30), lastIndex: 10, epoch: 2, base: 20 }, T0)
    assert.notDeepEqual(other.digestAt(30), a.vouch.digestAt(30))
  })

  it('never installs with a single vouch (fewer than f+1): CONSENSUS_SNAPSHOT_UNVOUCHED, nothing reported', async () => {
    const { nodes } = await network([
      { name: 'a', height: 30, validator: true },
      // b and c keep no vouches (and so export nothing): only a vouches for its own snapshot.
      { name: 'b', height: 30, validator: true, vouch: false },
      { name: 'c', height: 30, validator: true, vouch: false },
      { name: 'late', height: 0, validator: true },
    ])
    const [a, , , late] = nodes as [Node, Node, Node, Node]
    await assert.rejects(
      late.catchUp.catchUpFrom(a.id.toString()),
      (err: unknown) =>
        isNodusError(err) &&
        err.code === 'CONSENSUS_SNAPSHOT_UNVOUCHED' &&
        err.peerAction === 'ignore' &&
        (err.details as { vouched: number }).vouched === 1,
    )
    assert.deepEqual(late.ledger.installs, [])
    assert.equal(late.ledger.sl.height(), 0)
    assert.equal(late.requests.filter((r) => r.op === 'chunk').length, 0, 'no chunk asked before the vouches')
    // Through check(): tried (a first: highest), refused by nobody, never installed.
    await late.catchUp.check()
    const r = await late.catchUp.check()
    assert.notEqual(r, 'installed')
    assert.deepEqual(late.ledger.installs, [])
    assert.ok(late.counts.every((c) => c === 'failed'))
    assert.deepEqual(late.reports, [])
  })

  it('a source whose chunks do not give the vouched root is refused and reported (ban); the next installs', async () => {
    const { nodes } = await network([
      { name: 'a', height: 30, validator: true },
      { name: 'b', height: 30, validator: true },
      { name: 'c', height: 30, validator: true },
      { name: 'liar', height: 0, validator: false },
      { name: 'late', height: 0, validator: true },
    ])
    const [a, , , liar, late] = nodes as [Node, Node, Node, Node, Node]
    let lies = 0
    liar.serveAs = async (req) => {
      if (req.op === 'head') return { height: 1_000_000, floor: 1_000_000 }
      const reply = await a.catchUp.serve(req, liar.id.toString())
      if (req.op !== 'chunk') return reply
      const c = dagCbor.decode(reply.chunk as Uint8Array) as { entries: Uint8Array[] }
      const i = c.entries.findIndex(
        (k, n) => n % 2 === 0 && !bytesEqual(k, CONFIG_KEY) && !bytesEqual(k, SUPPLY_KEY),
      )
      c.entries.splice(i, 2)
      lies++
      return { chunk: dagCbor.encode(c) }
    }
    await late.catchUp.check()
    assert.equal(await late.catchUp.check(), 'installed')
    assert.ok(lies >= 1, 'the liar (highest head) was tried first')
    assert.deepEqual(late.reports, [
      { peer: liar.id.toString(), code: 'LEDGER_SNAPSHOT_ROOT_MISMATCH', action: 'ban' },
    ])
    assert.deepEqual(late.counts, ['refused', 'installed'])
    assert.deepEqual(late.ledger.installs, [30])
    assert.equal(rootOf(late), rootOf(a))
  })

  it('malformed and out-of-bounds offers and chunks are typed errors; nothing is installed', async () => {
    const { nodes } = await network([
      { name: 'a', height: 30, validator: true },
      { name: 'b', height: 30, validator: true },
      { name: 'bad', height: 30, validator: true },
      { name: 'late', height: 0, validator: true },
    ])
    const [a, , bad, late] = nodes as [Node, Node, Node, Node]
    const honest = (req: Record<string, unknown>) => a.catchUp.serve(req, bad.id.toString())
    const cases: {
      what: string
      serve: (req: Record<string, unknown>) => Promise<Record<string, unknown>>
      code: string
      action: string
    }[] = [
      {
        what: 'not an offer',
        serve: async () => ({ height: 'x' }),
        code: 'PROTOCOL_ERROR',
        action: 'reject',
      },
      {
        what: 'a state of another height',
        serve: async (req) => {
          const r = await honest(req)
          return req.op === 'offer' ? { ...r, height: (r.height as number) + 1 } : r
        },
        code: 'PROTOCOL_ERROR',
        action: 'reject',
      },
      {
        what: 'a state with too many refs',
        serve: async (req) => {
          const r = await honest(req)
          if (req.op !== 'offer') return r
          const s = r.state as CommitterState
          const many = Array.from({ length: 100 }, (_, i) => ({
            author: 0,
            round: i,
            digest: new Uint8Array(32),
          }))
          return { ...r, state: { ...s, committed: many } }
        },
        code: 'PROTOCOL_ERROR',
        action: 'reject',
      },
      {
        what: 'a chunk over the offered chunk size',
        serve: async (req) => (req.op === 'chunk' ? { chunk: new Uint8Array(CHUNK + 1) } : honest(req)),
        code: 'PROTOCOL_ERROR',
        action: 'reject',
      },
      {
        what: 'a chunk that is not dag-cbor',
        serve: async (req) => (req.op === 'chunk' ? { chunk: new Uint8Array([0xff, 0xff]) } : honest(req)),
        code: 'PROTOCOL_ERROR',
        action: 'reject',
      },
      {
        what: 'chunks over this node’s chunk bound',
        serve: async (req) => {
          const r = await honest(req)
          return req.op === 'offer' ? { ...r, chunkBytes: CHUNK * 2 } : r
        },
        code: 'CONSENSUS_SNAPSHOT_UNAVAILABLE',
        action: 'ignore',
      },
      {
        what: 'a snapshot over catchupMaxSnapshotBytes',
        serve: async (req) => {
          const r = await honest(req)
          return req.op === 'offer' ? { ...r, bytes: 2 * 1024 * 1024, chunks: 1 } : r
        },
        code: 'CONSENSUS_SNAPSHOT_UNAVAILABLE',
        action: 'ignore',
      },
    ]
    for (const c of cases) {
      bad.serveAs = c.serve
      await assert.rejects(
        late.catchUp.catchUpFrom(bad.id.toString()),
        (err: unknown) => isNodusError(err) && err.code === c.code && err.peerAction === c.action,
        c.what,
      )
    }
    assert.deepEqual(late.ledger.installs, [])
    assert.equal(late.ledger.sl.height(), 0)
  })

  it('serving: bad requests are PROTOCOL_ERROR; a peer past its slots gets PEER_BUSY; exports and the cache are bounded', async () => {
    const { nodes } = await network(
      [
        { name: 'a', height: 10, validator: true },
        { name: 'x', height: 0, validator: false },
        { name: 'y', height: 0, validator: false },
      ],
      { perPeer: 1, options: { cacheMs: 0 } },
    )
    const [a, x, y] = nodes as [Node, Node, Node]
    const serve = (req: Record<string, unknown>, from = x) => a.catchUp.serve(req, from.id.toString())
    for (const req of [{ op: 'nope' }, { op: 'vouch', height: -1 }, { op: 'chunk', height: 'a', seq: 0 }])
      await assert.rejects(
        serve(req),
        (e: unknown) => isNodusError(e) && e.code === 'PROTOCOL_ERROR' && e.peerAction === 'reject',
      )
    await assert.rejects(
      serve({ op: 'vouch', height: 9 }),
      (e: unknown) =>
        isNodusError(e) && e.code === 'CONSENSUS_SNAPSHOT_UNAVAILABLE' && e.peerAction === 'ignore',
    )
    const v = await serve({ op: 'vouch', height: 10 })
    assert.ok(v.root instanceof Uint8Array && v.state instanceof Uint8Array)

    // One slot per peer: while x's offer is served, x is busy, y is not.
    const offer = serve({ op: 'offer' })
    await assert.rejects(
      serve({ op: 'head' }),
      (e: unknown) => isNodusError(e) && e.code === 'PEER_BUSY' && e.peerAction === 'ignore',
    )
    assert.equal((await serve({ op: 'head' }, y)).height, 10)
    assert.equal((await offer).height, 10)

    // Exports at 3 heights with a cache of 2: the oldest is dropped, its chunks with it.
    for (const h of [11, 12]) {
      await applyUnsigned(a.ledger.ledger, T0 + h * 1000, [])
      a.vouch.reset(stateAt(h), T0)
      assert.equal((await serve({ op: 'offer' })).height, h)
    }
    assert.equal(a.catchUp.cached.snapshots, 2)
    await assert.rejects(
      serve({ op: 'chunk', height: 10, seq: 0 }),
      (e: unknown) => isNodusError(e) && e.code === 'CONSENSUS_SNAPSHOT_UNAVAILABLE',
    )
    assert.ok((await serve({ op: 'chunk', height: 12, seq: 0 })).chunk instanceof Uint8Array)
  })

  it('a snapshot over catchupMaxSnapshotBytes is not exported', async () => {
    const { nodes } = await network(
      [
        { name: 'a', height: 10, validator: true },
        { name: 'x', height: 0, validator: false },
      ],
      { options: { maxSnapshotBytes: 200 } },
    )
    const [a, x] = nodes as [Node, Node]
    await assert.rejects(
      a.catchUp.serve({ op: 'offer' }, x.id.toString()),
      (e: unknown) =>
        isNodusError(e) && e.code === 'CONSENSUS_SNAPSHOT_UNAVAILABLE' && e.peerAction === 'ignore',
    )
    assert.equal(a.catchUp.cached.snapshots, 0)
  })

  it('a node that is not waiting for parents asks nobody', async () => {
    const { nodes } = await network(
      [
        { name: 'a', height: 30, validator: true },
        { name: 'late', height: 0, validator: true },
      ],
      { waiting: false },
    )
    const late = nodes[1] as Node
    assert.equal(await late.catchUp.check(), 'current')
    assert.equal(await late.catchUp.check(), 'current')
    assert.equal(late.requests.length, 0)
  })
})

describe('VouchLog', () => {
  const ref = (round: number, author: number) => ({
    author,
    round,
    digest: new Uint8Array(32).fill(round * 4 + author),
  })
  const commit = (index: number) => ({
    index,
    leader: ref(index * 2, 0),
    vertices: [ref(index * 2 - 1, 1), ref(index * 2, 0)],
    timestampMs: T0 + index,
  })
  it('the same commits give the same digests, in any order of vertices; old heights and refs are dropped', () => {
    const a = new VouchLog(GC, 4)
    const b = new VouchLog(GC, 4)
    a.reset(undefined, T0)
    b.reset(undefined, T0)
    for (let i = 1; i <= 8; i++) {
      const c = commit(i)
      a.record(c)
      b.record({ ...c, vertices: [...c.vertices].reverse() })
    }
    assert.deepEqual(a.digestAt(8), b.digestAt(8))
    assert.equal(a.digestAt(4), undefined, 'only the last 4 heights are kept')
    assert.ok(a.current().committed.every((r) => r.round >= 16 - GC))
    a.record(commit(10))
    assert.equal(a.current().lastIndex, 8, 'a gap is ignored')
    // An epoch switch after commit 8: height 8 is vouched as epoch 1's start, then heights go on.
    const d = new VouchLog(GC, 4)
    d.reset(a.current(), T0)
    d.startEpoch(1, 8, T0 + 8)
    assert.notDeepEqual(d.digestAt(8), a.digestAt(8))
    assert.deepEqual([d.current().epoch, d.current().base, d.current().lastIndex], [1, 8, 0])
    d.record(commit(1))
    assert.ok(d.digestAt(9) !== undefined, 'commit 1 of epoch 1 is height 9')
    const e = new VouchLog(GC, 4)
    e.reset(d.current(), T0)
    assert.deepEqual(e.digestAt(9), d.digestAt(9), 'a node restored in epoch 1 vouches alike')
    // A node restored at height 8 vouches as one that applied 1..8.
    const c = new VouchLog(GC, 4)
    c.reset(a.current(), T0)
    assert.deepEqual(c.digestAt(8), a.digestAt(8))
  })
})
