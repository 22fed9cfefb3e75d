/**
 * The kv area on real nodes (loopback libp2p, LMDB): a write through one node reaches a node hosting
 * the database by gossip; a node that starts hosting later, or was stopped while writes went on,
 * catches up by reconciliation; the HTTP routes apply signed ops and read keys back.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { silentLogger } from '../../src/common/logger.ts'
import { loadConfig } from '../../src/config/config.ts'
import { kvTopic } from '../../src/kv/area.ts'
import { formatDbId } from '../../src/kv/db-id.ts'
import { createArgs } from '../../src/kv/db-ops.ts'
import { encodeOp, type OpInput } from '../../src/kv/op.ts'
import type { Op } from '../../src/kv/op-types.ts'
import { ed25519OpSigner } from '../../src/kv/signer.ts'
import { get, hgetall } from '../../src/kv/state/index.ts'
import { GOSSIP_TOPIC_PREFIX } from '../../src/messaging/index.ts'
import { createNode, type NodusNode } from '../../src/node/node.ts'
import { startNodes } from '../utils/nodes.ts'
import { waitFor } from '../utils/wait.ts'

let dir = ''
let nodes: NodusNode[] = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-kv-area-'))
  nodes = await startNodes(dir, 3, {
    kv: { syncIntervalMs: 600_000, activeSyncIntervalMs: 0, verifyThreads: 1 },
  })
})
after(async () => {
  await Promise.all(nodes.map((n) => n.stop().catch(() => {})))
  await rm(dir, { recursive: true, force: true })
})

describe('kv area', () => {
  let db = ''
  let ms = Date.now()
  const ops: Op[] = []
  const write = async (node: NodusNode, input: Partial<OpInput>): Promise<Op> => {
    const op = await encodeOp(
      { db, key: 'k', type: 'string', op: 'set', args: ['v'], hlc: { ms: ms++, c: 0 }, ...input },
      ed25519OpSigner(node.identity.ed25519),
    )
    const [r] = await node.areas.kv.submit([op.bytes])
    assert.equal(r?.status, 'applied', JSON.stringify(r))
    ops.push(op)
    return op
  }
  const holds = (node: NodusNode, op: Op): boolean => node.areas.kv.engine.getOp(op.id) !== undefined
  const gossipPeers = (node: NodusNode): string[] =>
    (node.areas.net.pubsub?.getSubscribers(`${GOSSIP_TOPIC_PREFIX}${kvTopic(db)}`) ?? []).map(String)

  it('gossip carries a write to a node hosting the database', async () => {
    const [a, b] = nodes as [NodusNode, NodusNode]
    db = formatDbId('notes', a.identity.ed25519.publicKey.raw)
    await write(a, { type: 'db', op: 'create', key: '', args: createArgs() })
    await b.areas.kv.host(db)
    assert.ok(holds(b, ops[0] as Op), 'hosting synced the create')
    // Once a sees b subscribed to the database's topic, a write reaches b by gossip alone (no sync
    // runs: kv.syncIntervalMs is 10 minutes here and active syncs are off).
    await waitFor(
      () => a.areas.kv.engine !== undefined && gossipPeers(a).includes(b.identity.peerId.toString()),
      {
        timeoutMs: 20_000,
        what: 'a to see b on the topic',
      },
    )
    const first = await write(a, { key: 'title', args: ['hello'] })
    await waitFor(() => holds(b, first), { timeoutMs: 20_000, what: 'the write to reach b by gossip' })
    assert.equal(get(b.areas.kv.engine.reader, db, 'title', { nowMs: Date.now() }), 'hello')
  })

  it('a node that starts hosting later catches up by reconciliation', async () => {
    const [a, , c] = nodes as [NodusNode, NodusNode, NodusNode]
    for (let i = 0; i < 50; i++)
      await write(a, { type: 'hash', op: 'hset', key: 'h', field: `f${i}`, args: [i] })
    await c.areas.kv.host(db)
    for (const op of ops) assert.ok(holds(c, op), 'c holds every op after hosting')
    assert.equal(hgetall(c.areas.kv.engine.reader, db, 'h', { nowMs: Date.now() }).length, 50)
    const status = await c.areas.kv.status(db)
    assert.equal(status.ops, ops.length)
    assert.equal(status.hosted, true)
  })

  it('a stopped host catches up after restart, fetching only what it missed', async () => {
    const [a, b] = nodes as [NodusNode, NodusNode]
    const bDir = b.config.dataDir
    await b.stop()
    const missed: Op[] = []
    for (let i = 0; i < 20; i++) missed.push(await write(a, { key: `late${i}`, args: [`v${i}`] }))
    const restarted = await createNode(await loadConfig(bDir), { logger: silentLogger() })
    await restarted.start()
    nodes[1] = restarted
    await restarted.libp2p.dial(a.libp2p.getMultiaddrs())
    assert.deepEqual(restarted.areas.kv.hosted(), [db], 'hosting survives the restart')
    // Its start-up round (or a's) may have run already; either way, after one sync it holds every op,
    // and the fetches of all its sessions add up to what it missed, not to the database.
    const [report] = await restarted.areas.kv.sync(db, { peers: 1 })
    assert.ok(report !== undefined)
    for (const op of ops) assert.ok(holds(restarted, op))
    assert.ok(report.rounds <= 4, `in-sync check took ${report.rounds} rounds`)
    const fetched = await restarted.metrics.registry.getSingleMetric('nodus_kv_synced_ops_total')?.get()
    const sum = (m: typeof fetched, d: string) =>
      (m?.values ?? []).filter((v) => v.labels.direction === d).reduce((x, v) => x + v.value, 0)
    assert.ok(sum(fetched, 'fetched') <= missed.length, 'it fetched only what it missed')
  })

  it('POST /kv/ops applies signed ops; GET /kv/:db/:key reads them; bad ops get typed results', async () => {
    const a = nodes[0] as NodusNode
    const token = (await import('../../src/common/data-dir.ts')).readApiToken
    const auth = {
      authorization: `Bearer ${await token(a.config.dataDir)}`,
      'content-type': 'application/json',
    }
    const op = await encodeOp(
      { db, key: 'greeting', type: 'string', op: 'set', args: ['hi'], hlc: { ms: ms++, c: 0 } },
      ed25519OpSigner(a.identity.ed25519),
    )
    const forged = op.bytes.slice()
    forged[12] = (forged[12] as number) ^ 1
    const res = await fetch(`${a.info().api}/kv/ops`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        ops: [Buffer.from(op.bytes).toString('base64'), Buffer.from(forged).toString('base64')],
      }),
    })
    assert.equal(res.status, 200)
    const body = (await res.json()) as { results: { status: string; code?: string }[] }
    assert.deepEqual(
      body.results.map((r) => r.code ?? r.status),
      ['applied', 'SIGNATURE_INVALID'],
    )
    const read = await fetch(`${a.info().api}/kv/${db}/greeting`)
    assert.deepEqual(await read.json(), { db, key: 'greeting', type: 'string', value: 'hi' })
    const missing = await fetch(`${a.info().api}/kv/${db}/nope`)
    assert.equal(missing.status, 404)
    assert.equal(((await missing.json()) as { code: string }).code, 'KV_KEY_NOT_FOUND')
  })
})
