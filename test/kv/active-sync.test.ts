/**
 * Fast anti-entropy for active databases (src/kv/active.ts): a node that loses a write's gossip gets it
 * from the next active sync, long before the periodic round (10 minutes here).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ACTIVE_INTERVALS, ActiveDbs } from '../../src/kv/active.ts'
import { formatDbId } from '../../src/kv/db-id.ts'
import { createArgs } from '../../src/kv/db-ops.ts'
import { encodeOp, type OpInput } from '../../src/kv/op.ts'
import type { Op } from '../../src/kv/op-types.ts'
import { ed25519OpSigner } from '../../src/kv/signer.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { startNodes } from '../utils/nodes.ts'
import { waitFor } from '../utils/wait.ts'

describe('ActiveDbs', () => {
  it('hands out a touched database once per sync, forgets it when idle, and bounds what it tracks', () => {
    const a = new ActiveDbs({ activeSyncIntervalMs: 100, maxActiveDbs: 2 })
    a.touch('x', 1000)
    assert.deepEqual(a.due(1000), ['x'])
    assert.deepEqual(a.due(1100), [], 'still in flight')
    a.done('x')
    assert.deepEqual(a.due(1100), ['x'])
    a.done('x')
    assert.deepEqual(a.due(1000 + ACTIVE_INTERVALS * 100), ['x'], 'active up to the horizon')
    a.done('x')
    assert.deepEqual(a.due(1001 + ACTIVE_INTERVALS * 100), [], 'idle: forgotten')
    assert.equal(a.size, 0)
    a.touch('p', 0)
    a.touch('q', 1)
    a.touch('p', 2)
    a.touch('r', 3)
    assert.deepEqual(a.due(3).sort(), ['p', 'r'], 'the least recently active left')
    a.forget('p')
    assert.equal(a.size, 1)
  })

  it('does nothing with activeSyncIntervalMs 0', () => {
    const a = new ActiveDbs({ activeSyncIntervalMs: 0, maxActiveDbs: 2 })
    a.touch('x', 1)
    assert.deepEqual(a.due(1), [])
  })
})

let dir = ''
let nodes: NodusNode[] = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-kv-active-'))
  // Both drop every kv gossip message they hear: only syncs can bring b the writes.
  nodes = await startNodes(dir, 2, {
    kv: {
      syncIntervalMs: 600_000,
      activeSyncIntervalMs: 200,
      verifyThreads: 1,
      testGossipDropPerMille: 1000,
    },
  })
})
after(async () => {
  await Promise.all(nodes.map((n) => n.stop().catch(() => {})))
  await rm(dir, { recursive: true, force: true })
})

describe('kv.activeSyncIntervalMs', () => {
  it('repairs lost gossip of an active database without waiting for the periodic round', async () => {
    const [a, b] = nodes as [NodusNode, NodusNode]
    const db = formatDbId('active', a.identity.ed25519.publicKey.raw)
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
    await write({ type: 'db', op: 'create', key: '', args: createArgs() })
    await b.areas.kv.host(db)
    const writes: Op[] = []
    for (let i = 0; i < 5; i++) writes.push(await write({ key: `k${i}`, args: [`v${i}`] }))
    await waitFor(() => writes.every((op) => b.areas.kv.engine.getOp(op.id) !== undefined), {
      timeoutMs: 30_000,
      what: 'b to hold every write through active syncs',
    })
  })
})
