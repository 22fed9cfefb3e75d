/**
 * Storing is authorized and bounded (issue 17, "Free storage forever" and "Orphans"): a stranger's
 * put without a storage order is refused; with an order of its own it is provisional, clamped and
 * counted against its quota; an aborted upload's shards expire after the provisional lease; an
 * honest upload is committed and survives that cleanup. Real nodes on loopback; the expiry is
 * driven by passing a later `now` to the cleanup (a fake clock), never by sleeping.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { CID } from 'multiformats/cid'
import { isNodusError } from '../../src/common/errors.ts'
import { generateIdentity, signEd25519 } from '../../src/crypto/index.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { cidForBytes, cidToString, parseCid } from '../../src/storage/index.ts'
import { signOrder } from '../../src/storage/protocol/orders.ts'
import { orderFor, startPeer, stopAll, type TestPeer } from '../utils/cluster.ts'
import { startNodes } from '../utils/nodes.ts'

const MiB = 1024 * 1024
const PROVISIONAL_MS = 3_600_000
const MAX_LEASE_MS = 7 * 24 * 3600 * 1000
let dir = ''
let nodes: NodusNode[] = []
let stranger: TestPeer

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-sec-orders-'))
  nodes = await startNodes(dir, 4, {
    storage: {
      k: 2,
      m: 1,
      segmentSize: 256 * 1024,
      manifestReplicas: 2,
      quotaBytes: 4 * MiB,
      quotaShards: 1_000,
      quotaTrustMultiplier: 1,
      maxLeaseMs: MAX_LEASE_MS,
      provisionalLeaseMs: PROVISIONAL_MS,
    },
    repair: { intervalMs: 3_600_000 },
  })
  stranger = await startPeer()
  for (const n of nodes) await stranger.libp2p.dial(n.libp2p.getMultiaddrs())
})

after(async () => {
  await stopAll([stranger])
  await Promise.all(nodes.map((n) => n.stop()))
  await rm(dir, { recursive: true, force: true })
})

function target(): NodusNode {
  return nodes[0] as NodusNode
}

test('a stranger put without a storage order is refused and nothing is stored', async () => {
  const bytes = randomBytes(MiB)
  const cid = cidForBytes(bytes)
  await assert.rejects(stranger.client.put(target().libp2p.peerId, cid, bytes), (err) =>
    isNodusError(err, 'ORDER_INVALID'),
  )
  assert.equal(target().store.has(cid), false)
})

test('an order signed by someone else, for another holder or another block is refused', async () => {
  const bytes = randomBytes(64 * 1024)
  const cid = cidForBytes(bytes)
  const holder = target().libp2p.peerId
  const other = await generateIdentity()
  const forged = await signOrder(
    {
      uploader: other.peerId.toString(),
      holder: holder.toString(),
      cids: [cid],
      maxBytes: bytes.byteLength,
      expiresAt: Date.now() + 3_600_000,
      issuedAt: Date.now(),
    },
    (d) => signEd25519(other.ed25519, d),
  )
  const elsewhere = await orderFor(stranger, (nodes[1] as NodusNode).libp2p.peerId, [cid])
  const wrongBlock = await orderFor(stranger, holder, [cidForBytes(randomBytes(10))])
  for (const order of [forged, elsewhere, wrongBlock]) {
    await assert.rejects(stranger.client.put(holder, cid, bytes, { order }), (err) =>
      isNodusError(err, 'ORDER_INVALID'),
    )
  }
  assert.equal(target().store.has(cid), false)
})

test("a stranger's own order stores provisionally (never forever) and its quota bounds it", async () => {
  const holder = target().libp2p.peerId
  const self = stranger.id.peerId.toString()
  const stored: string[] = []
  let refused = 0
  for (let i = 0; i < 8; i++) {
    const bytes = randomBytes(MiB)
    const cid = cidForBytes(bytes)
    // Asks for ten years: the holder keeps it for the provisional lease only, until a commit.
    const order = await signOrder(
      {
        uploader: self,
        holder: holder.toString(),
        cids: [cid],
        maxBytes: bytes.byteLength,
        expiresAt: Date.now() + 10 * 365 * 24 * 3600 * 1000,
        issuedAt: Date.now(),
      },
      (d) => signEd25519(stranger.id.ed25519, d),
    )
    try {
      await stranger.client.put(holder, cid, bytes, { order })
      stored.push(cidToString(cid))
    } catch (err) {
      assert.ok(isNodusError(err, 'QUOTA_EXCEEDED'), String(err))
      refused++
    }
  }
  // 4 MiB of quota: four 1 MiB blocks, then refusals.
  assert.equal(stored.length, 4)
  assert.equal(refused, 4)
  assert.deepEqual(target().accounts.totals(self), { bytes: 4 * MiB, shards: 4 })
  for (const cid of stored) {
    const rec = target().store.stat(parseCid(cid))
    assert.ok(rec?.expiresAt !== undefined, 'a block stored for a peer always expires')
    assert.ok((rec?.expiresAt ?? Infinity) <= Date.now() + PROVISIONAL_MS)
  }

  // A large put over quota is refused before its body is read, and the sender hears it at once
  // (QUOTA_EXCEEDED, not a TIMEOUT after pushing 8 MiB into a stream nobody reads).
  const big = randomBytes(8 * MiB)
  const bigCid = cidForBytes(big)
  await assert.rejects(
    stranger.client.put(holder, bigCid, big, {
      order: await orderFor(stranger, holder, [bigCid], big.byteLength),
    }),
    (err) => isNodusError(err, 'QUOTA_EXCEEDED'),
  )

  // An honest uploader is not affected by the stranger's spent quota.
  const data = randomBytes(700 * 1024)
  const up = nodes[1] as NodusNode
  const res = await up.files.put(
    (async function* () {
      yield data
    })(),
  )
  const chunks: Buffer[] = []
  for await (const c of (nodes[2] as NodusNode).files.get(res.cid)) chunks.push(Buffer.from(c))
  assert.ok(Buffer.concat(chunks).equals(data))
})

test("an aborted upload's shards are gone after the provisional lease; a committed upload's stay", async () => {
  const holder = target()
  const self = stranger.id.peerId.toString()
  // The stranger's earlier blocks are an upload that never committed. An honest upload commits:
  const up = nodes[1] as NodusNode
  // Placement is scored and random: upload until some shards land on the holder (bounded).
  let honest: CID[] = []
  for (let attempt = 0; attempt < 8 && honest.length === 0; attempt++) {
    const data = randomBytes(600 * 1024)
    const res = await up.files.put(
      (async function* () {
        yield data
      })(),
    )
    honest = res.manifest.segments.flatMap((s) =>
      s.shards.filter((sh) => sh.holders.includes(holder.peerId)).map((sh) => sh.cid),
    )
  }
  assert.ok(honest.length > 0, 'the honest upload placed shards on the holder')
  for (const cid of honest) {
    const claim = holder.accounts.get(cidToString(cid), up.peerId)
    assert.equal(claim?.committed, true, 'the commit reached the holder')
    assert.ok((holder.store.stat(cid)?.expiresAt ?? 0) > Date.now() + PROVISIONAL_MS)
  }
  assert.ok(holder.accounts.totals(self).shards > 0)
  const usedBefore = holder.store.usage().bytes

  // The provisional lease passes (a later `now`: the store's and the accounts' cleanup both take it).
  const later = Date.now() + PROVISIONAL_MS + 60_000
  const { deleted } = await holder.store.cleanupExpired(later)
  await holder.accounts.sweep(later)
  assert.ok(deleted >= 4, `the stranger's provisional blocks are deleted (${deleted})`)
  assert.deepEqual(holder.accounts.totals(self), { bytes: 0, shards: 0 })
  assert.ok(holder.store.usage().bytes <= usedBefore - 4 * MiB)
  for (const cid of honest) assert.ok(holder.store.has(cid), 'committed shards stay')
})
