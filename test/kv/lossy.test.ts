/**
 * The gossip-drop test aid on real nodes: with kv.testGossipDropPerMille 1000 a node hears every
 * write by gossip and drops it (counted in nodus_kv_gossip_dropped_total), so it holds none until
 * anti-entropy, which then fills everything.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { kvTopic } from '../../src/kv/area.ts'
import { formatDbId } from '../../src/kv/db-id.ts'
import { createArgs } from '../../src/kv/db-ops.ts'
import { encodeOp, type OpInput } from '../../src/kv/op.ts'
import type { Op } from '../../src/kv/op-types.ts'
import { ed25519OpSigner } from '../../src/kv/signer.ts'
import { GOSSIP_TOPIC_PREFIX } from '../../src/messaging/index.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { startNodes } from '../utils/nodes.ts'
import { waitFor } from '../utils/wait.ts'

let dir = ''
let nodes: NodusNode[] = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-kv-lossy-'))
  nodes = await startNodes(dir, 2, {
    kv: { syncIntervalMs: 600_000, activeSyncIntervalMs: 0, verifyThreads: 1, testGossipDropPerMille: 1000 },
  })
})
after(async () => {
  await Promise.all(nodes.map((n) => n.stop().catch(() => {})))
  await rm(dir, { recursive: true, force: true })
})

const dropped = async (node: NodusNode): Promise<number> =>
  (await node.metrics.registry.getSingleMetric('nodus_kv_gossip_dropped_total')?.get())?.values[0]?.value ?? 0

describe('kv.testGossipDropPerMille', () => {
  it('drops received gossip; anti-entropy repairs it', async () => {
    const [a, b] = nodes as [NodusNode, NodusNode]
    const db = formatDbId('lossy', a.identity.ed25519.publicKey.raw)
    let ms = Date.now()
    const write = async (input: Partial<OpInput>): Promise<Op> => {
      const op = await encodeOp(
        { db, key: 'k', type: 'string', op: 'set', args: ['v'], hlc: { ms: ms++, c: 0 }, ...input },
        ed25519OpSigner(a.identity.ed25519),
      )
      const [r] = await a.areas.kv.submit([op.bytes])
      assert.equal(r?.status, 'applied', JSON.stringify(r))
      return op
    }
    const create = await write({ type: 'db', op: 'create', key: '', args: createArgs() })
    await b.areas.kv.host(db)
    assert.ok(b.areas.kv.engine.getOp(create.id) !== undefined, 'hosting synced the create')
    await waitFor(
      () =>
        (a.areas.net.pubsub?.getSubscribers(`${GOSSIP_TOPIC_PREFIX}${kvTopic(db)}`) ?? [])
          .map(String)
          .includes(b.identity.peerId.toString()),
      { timeoutMs: 20_000, what: 'a to see b on the topic' },
    )
    const writes: Op[] = []
    for (let i = 0; i < 5; i++) writes.push(await write({ key: `k${i}`, args: [`v${i}`] }))
    await waitFor(async () => (await dropped(b)) >= writes.length, {
      timeoutMs: 20_000,
      what: 'b to hear (and drop) every write',
    })
    for (const op of writes) assert.equal(b.areas.kv.engine.getOp(op.id), undefined, 'dropped, not applied')
    assert.equal(await dropped(a), 0, 'a heard nothing from others')
    const [report] = await b.areas.kv.sync(db, { peers: 1 })
    assert.equal(report?.fetched, writes.length)
    for (const op of writes) assert.ok(b.areas.kv.engine.getOp(op.id) !== undefined, 'filled by sync')
  })
})
