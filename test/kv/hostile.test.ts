/**
 * A peer attacks the kv area of a real node (four nodes in process, loopback libp2p, LMDB): it opens
 * more sync sessions than its share (PEER_BUSY beyond kv.maxSyncSessionsPerPeer while another peer
 * still syncs), sends malformed and oversized sync frames (each answered with its code, the peer
 * reported, the node keeps serving), and pushes databases the node is not a keeper of, or more of one
 * owner's than kv.maxKeptDbsPerOwner (refused with KV_DB_NOT_HOSTED, nothing kept), and pushes a
 * database past kv.maxDbBytes (the rest refused with KV_DB_FULL, no partial op kept).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import type { Stream } from '@libp2p/interface'
import { systemClock } from '../../src/common/clock.ts'
import { isNodusError } from '../../src/common/errors.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { loadConfig } from '../../src/config/config.ts'
import { identityFromSeeds } from '../../src/crypto/index.ts'
import { formatDbId } from '../../src/kv/db-id.ts'
import { createArgs } from '../../src/kv/db-ops.ts'
import type { KvEngine } from '../../src/kv/engine.ts'
import { encodeOp } from '../../src/kv/op.ts'
import { indexSet, Reconciler } from '../../src/kv/reconcile/protocol.ts'
import { RECON_VERSION } from '../../src/kv/reconcile/wire.ts'
import { ed25519OpSigner } from '../../src/kv/signer.ts'
import { get } from '../../src/kv/state/index.ts'
import { KV_SYNC_PROTOCOL, KvSync, type SyncReport } from '../../src/kv/sync.ts'
import { kadId, lengthPrefixed, StreamReader, xorCompare } from '../../src/net/index.ts'
import { createNode, type NodusNode } from '../../src/node/node.ts'
import { memoryKvEngine } from '../utils/kv-engine.ts'
import { startNodes } from '../utils/nodes.ts'
import { waitFor } from '../utils/wait.ts'

const PER_PEER = 2
/** The attacker's owner key, for databases of its own. */
const owner = await identityFromSeeds(new Uint8Array(32).fill(7), new Uint8Array(32).fill(8))
/** kv.maxDbBytes on every node here (its least). */
const MAX_DB_BYTES = 64 * 1024
let dir = ''
let nodes: NodusNode[] = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-kv-hostile-'))
  nodes = await startNodes(dir, 4, {
    kv: {
      syncIntervalMs: 600_000,
      activeSyncIntervalMs: 0,
      verifyThreads: 1,
      keepers: 1,
      keeperSlack: 0,
      maxKeptDbsPerOwner: 2,
      maxSyncSessionsPerPeer: PER_PEER,
      maxDbBytes: MAX_DB_BYTES,
    },
  })
})
after(async () => {
  await Promise.all(nodes.map((n) => n.stop().catch(() => {})))
  await rm(dir, { recursive: true, force: true })
})

/** A kv sync client on `node` (the protocol's own initiator; it serves nothing). */
const client = (node: NodusNode, engine: KvEngine = node.areas.kv.engine): KvSync =>
  new KvSync(
    {
      engine,
      host: node.libp2p,
      log: silentLogger(),
      mayServe: () => ({ reason: 'client', message: 'a test client serves nothing' }),
    },
    {
      recon: node.config.kv,
      maxFrameBytes: 2 * 1024 * 1024,
      sessionTimeoutMs: 30_000,
      maxSessions: 4,
      maxSessionsPerPeer: 2,
    },
  )

/** The sum of a metric's values on `node` whose labels include `labels`. */
async function metric(node: NodusNode, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await node.metrics.registry.getSingleMetric(name)?.get()
  return (m?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((s, v) => s + v.value, 0)
}

const frame = (v: Record<string, unknown>): Uint8Array => lengthPrefixed(dagCbor.encode(v))

/** The peer's code when a sync is refused (PROTOCOL_ERROR carrying `details.remoteCode`). */
async function refusedWith(p: Promise<SyncReport>): Promise<string> {
  try {
    await p
  } catch (err) {
    assert.ok(isNodusError(err), String(err))
    return String(err.details.remoteCode ?? err.code)
  }
  assert.fail('the sync was not refused')
}

describe('kv under attack', () => {
  let db = ''
  let createId: Uint8Array = new Uint8Array(0)
  /** Databases of `owner` that b is the keeper of (found in the third test). */
  const mine: string[] = []

  before(async () => {
    // b hosts a database of its own, with one op.
    const b = nodes[1] as NodusNode
    db = formatDbId('target', b.identity.ed25519.publicKey.raw)
    const create = await encodeOp(
      { db, key: '', type: 'db', op: 'create', args: createArgs(), hlc: { ms: Date.now(), c: 0 } },
      ed25519OpSigner(b.identity.ed25519),
    )
    const [r] = await b.areas.kv.submit([create.bytes])
    assert.equal(r?.status, 'applied')
    createId = create.id
  })

  it('a peer opening many sync sessions at once gets PEER_BUSY beyond its share; another peer still syncs', async () => {
    const [a, b, c] = nodes as [NodusNode, NodusNode, NodusNode]
    const busyBefore = await metric(b, 'nodus_kv_sync_refused_total', { reason: 'peer_busy' })
    // The attacker opens twice its share and sends nothing: the first PER_PEER wait for a frame.
    const streams: Stream[] = []
    for (let i = 0; i < 2 * PER_PEER; i++)
      streams.push(await a.libp2p.dialProtocol(b.libp2p.peerId, KV_SYNC_PROTOCOL))
    const answers: string[] = []
    const refused: Stream[] = []
    for (const s of streams) {
      const reader = new StreamReader(s)
      reader.readFrame(64 * 1024).then(
        (f) => {
          answers.push(String((dagCbor.decode(f) as { code?: unknown }).code))
          refused.push(s)
        },
        () => {},
      )
    }
    await waitFor(() => answers.length >= PER_PEER, {
      timeoutMs: 20_000,
      what: 'the refusals beyond the share',
    })
    assert.deepEqual(answers, Array(PER_PEER).fill('PEER_BUSY'))
    assert.equal(
      await metric(b, 'nodus_kv_sync_refused_total', { reason: 'peer_busy' }),
      busyBefore + PER_PEER,
    )
    // (libp2p resets streams past twice the share, kv.maxSyncSessionsPerPeer × 2, on one connection;
    // the attacker drops the refused ones so its next session reaches the kv handler.)
    for (const s of refused) s.abort(new Error('refused'))
    // While the attacker holds its share, its own next session is refused too…
    assert.equal(await refusedWith(client(a).sync(b.libp2p.peerId, db)), 'PEER_BUSY')
    // …and another peer syncs as usual.
    // (b's first sync of its new database may give c the op first, before or during this session.)
    const report = await client(c).sync(b.libp2p.peerId, db)
    assert.equal(report.peer, b.libp2p.peerId.toString())
    assert.ok(c.areas.kv.engine.getOp(createId) !== undefined, 'c holds b’s op')
    // Once the attacker lets go, its share is free again.
    for (const s of streams) s.abort(new Error('done'))
    await waitFor(
      async () => {
        try {
          await client(a).sync(b.libp2p.peerId, db)
          return true
        } catch {
          return false
        }
      },
      { timeoutMs: 20_000, what: 'the attacker’s slots to be released' },
    )
    assert.equal(answers.length, PER_PEER, 'the sessions within the share were never refused')
  })

  it('malformed and oversized sync frames are answered with their code, reported, and the node keeps serving', async () => {
    const [a, b, c] = nodes as [NodusNode, NodusNode, NodusNode]
    const penalizedBefore = await metric(b, 'nodus_trust_peer_actions_total', { action: 'penalize' })
    const ask = async (...frames: Uint8Array[]): Promise<Record<string, unknown>[]> => {
      const s = await a.libp2p.dialProtocol(b.libp2p.peerId, KV_SYNC_PROTOCOL)
      const reader = new StreamReader(s)
      const out: Record<string, unknown>[] = []
      for (const f of frames) {
        s.send(f)
        out.push(dagCbor.decode(await reader.readFrame(1024 * 1024)) as Record<string, unknown>)
        if (out.at(-1)?.ok !== true) break
      }
      s.abort(new Error('done'))
      return out
    }
    const codes = (rs: Record<string, unknown>[]): unknown[] => rs.map((r) => (r.ok === true ? 'ok' : r.code))
    // Not dag-cbor.
    assert.deepEqual(codes(await ask(lengthPrefixed(Uint8Array.of(0xff, 0x00, 0x13)))), [
      'RECON_MESSAGE_INVALID',
    ])
    // A length prefix of 64 MiB: refused before a byte of it is read.
    const header = Uint8Array.from([0x80, 0x80, 0x80, 0x20]) // varint 2^26
    assert.deepEqual(codes(await ask(header)), ['MESSAGE_TOO_LARGE'])
    // A map naming no database; then a database with a reconciliation message that is garbage.
    assert.deepEqual(codes(await ask(frame({ hello: 1 }))), ['RECON_MESSAGE_INVALID'])
    assert.deepEqual(
      codes(
        await ask(
          frame({
            db,
            msg: Uint8Array.of(RECON_VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
          }),
        ),
      ),
      ['RECON_MESSAGE_INVALID'],
    )
    // A real first round, then a put of ops that are not ops: none applied, the peer reported.
    const index = await a.areas.kv.engine.index(db)
    const first = new Reconciler({ set: indexSet(index, a.areas.kv.engine.reader) }, a.config.kv, 'initiator')
    const put = await ask(frame({ db, msg: first.initiate() }), frame({ put: [Uint8Array.of(1, 2, 3)] }))
    assert.deepEqual(codes(put), ['ok', 'ok'])
    assert.equal(put[1]?.applied, 0)
    await waitFor(
      async () =>
        (await metric(b, 'nodus_trust_peer_actions_total', { action: 'penalize' })) >= penalizedBefore + 5,
      { timeoutMs: 20_000, what: 'b to penalize the attacker for each malformed session' },
    )
    // b still serves: an honest peer syncs, and b's database is as it was.
    const status = await b.areas.kv.status(db)
    assert.equal(status.ops, 1)
    const report = await client(c).sync(b.libp2p.peerId, db)
    assert.equal(report.need + report.have, 0, 'c is already in sync')
  })

  it('a peer pushing databases this node is no keeper of, or too many of one owner, is refused', async () => {
    const [a, b, c, d] = nodes as [NodusNode, NodusNode, NodusNode, NodusNode]
    const kad = (n: NodusNode) => kadId(n.libp2p.peerId.toMultihash().bytes)
    // With kv.keepers 1 and no slack, b keeps a database only when it is the closest of the four.
    const closestIsB = (id: string): boolean => {
      const t = kadId(new TextEncoder().encode(id))
      return [a, c, d].every((n) => xorCompare(kad(b), kad(n), t) < 0)
    }
    const notMine: string[] = []
    for (let i = 0; mine.length < 4 || notMine.length < 1; i++) {
      const id = formatDbId(`spam${i}`, owner.ed25519.publicKey.raw)
      if (closestIsB(id)) mine.push(id)
      else notMine.push(id)
    }
    const hostedBefore = b.areas.kv.hosted().length
    assert.equal(await refusedWith(client(a).sync(b.libp2p.peerId, notMine[0] as string)), 'KV_DB_NOT_HOSTED')
    assert.equal(await metric(b, 'nodus_kv_sync_refused_total', { reason: 'not_keeper' }), 1)
    // A keeper keeps kv.maxKeptDbsPerOwner (2) of one owner's databases, then no more.
    await client(a).sync(b.libp2p.peerId, mine[0] as string)
    await client(a).sync(b.libp2p.peerId, mine[1] as string)
    assert.equal(await refusedWith(client(a).sync(b.libp2p.peerId, mine[2] as string)), 'KV_DB_NOT_HOSTED')
    assert.equal(await metric(b, 'nodus_kv_sync_refused_total', { reason: 'owner_full' }), 1)
    const hosted = b.areas.kv.hosted()
    assert.equal(hosted.length, hostedBefore + 2)
    assert.ok(hosted.includes(mine[0] as string) && hosted.includes(mine[1] as string))
    assert.ok(!hosted.includes(mine[2] as string) && !hosted.includes(notMine[0] as string))
    assert.equal((await b.areas.kv.status(mine[0] as string)).kept, true)
    // Hosting one through b's own API makes it b's, and frees a place for the owner.
    await b.areas.kv.host(mine[0] as string)
    assert.equal((await b.areas.kv.status(mine[0] as string)).kept, false)
    await client(a).sync(b.libp2p.peerId, mine[2] as string)
    assert.ok(b.areas.kv.hosted().includes(mine[2] as string))
  })

  it('a peer pushing a database past kv.maxDbBytes gets the rest refused (KV_DB_FULL), nothing partial kept', async () => {
    const [a, b] = nodes as [NodusNode, NodusNode]
    const db = mine[2] as string // kept by b for a's pushes
    const signer = ed25519OpSigner(owner.ed25519)
    const ms = Date.now()
    const ops = [
      await encodeOp(
        { db, key: '', type: 'db', op: 'create', args: createArgs(), hlc: { ms, c: 0 } },
        signer,
      ),
    ]
    for (let i = 0; i < 40; i++)
      ops.push(
        await encodeOp(
          { db, key: `k${i}`, type: 'string', op: 'set', args: ['x'.repeat(4000)], hlc: { ms, c: i + 1 } },
          signer,
        ),
      )
    // The attacker holds them all in a store of its own, with no bound, and pushes them from a.
    const { engine: own } = memoryKvEngine(systemClock)
    const held = await own.submit(
      ops.map((o) => o.bytes),
      'local',
    )
    assert.ok(held.every((r) => r.status === 'applied'))
    const heldOps = ops
    const refusedBefore = await metric(b, 'nodus_kv_ops_refused_total', { reason: 'kv_db_full' })
    const report = await client(a, own).sync(b.libp2p.peerId, db)
    const status = await b.areas.kv.status(db)
    assert.ok(status.bytes <= MAX_DB_BYTES, `${status.bytes} bytes kept`)
    assert.ok(status.bytes > MAX_DB_BYTES - 8 * 1024, 'filled up to the bound')
    assert.equal(status.ops, report.pushed, 'every op kept was counted, nothing else')
    const keptOps = heldOps.filter((o) => b.areas.kv.engine.getOp(o.id) !== undefined)
    assert.equal(keptOps.length, status.ops)
    assert.equal(
      keptOps.reduce((n, o) => n + o.bytes.byteLength, 0),
      status.bytes,
      'the counter is the bytes of the ops held',
    )
    // Every op a bound refused is wholly absent (no state of it): its key reads as never written.
    for (const o of heldOps.filter((x) => !keptOps.includes(x)))
      assert.equal(get(b.areas.kv.engine.reader, db, o.body.key, { nowMs: Date.now() }), undefined)
    assert.ok(keptOps.length < heldOps.length)
    assert.equal(
      await metric(b, 'nodus_kv_ops_refused_total', { reason: 'kv_db_full' }),
      refusedBefore + heldOps.length - keptOps.length,
    )
    // A second push changes nothing.
    await client(a, own).sync(b.libp2p.peerId, db)
    assert.equal((await b.areas.kv.status(db)).bytes, status.bytes)
  })

  it('a restarted node remembers which databases it keeps for peers, and for whom', async () => {
    const a = nodes[0] as NodusNode
    const b = nodes[1] as NodusNode
    const bDir = b.config.dataDir
    await b.stop()
    const restarted = await createNode(await loadConfig(bDir), { logger: silentLogger() })
    await restarted.start()
    nodes[1] = restarted
    await restarted.libp2p.dial(a.libp2p.getMultiaddrs())
    for (const n of nodes.slice(2)) await restarted.libp2p.dial(n.libp2p.getMultiaddrs())
    assert.equal((await restarted.areas.kv.status(mine[0] as string)).kept, false, 'hosted through its API')
    assert.equal((await restarted.areas.kv.status(mine[2] as string)).kept, true)
    // It keeps mine[1] and mine[2] of this owner: a third is refused as before the restart.
    assert.equal(
      await refusedWith(client(a).sync(restarted.libp2p.peerId, mine[3] as string)),
      'KV_DB_NOT_HOSTED',
    )
    assert.equal(await metric(restarted, 'nodus_kv_sync_refused_total', { reason: 'owner_full' }), 1)
  })
})
