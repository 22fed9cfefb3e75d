/**
 * Dynamic redundancy with real nodes (in process, loopback, real disk): a critical pin or popular
 * reads make the closest keeper add parity rows; the file then survives losses its uploaded code
 * could not; when the critical mark expires the extra rows are dropped; wrong extra parity (not
 * signed by the uploader) cannot corrupt a read. Every node reads one fake clock, which only the
 * test moves.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { CID } from 'multiformats/cid'
import { blake3 } from '../../src/crypto/index.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { cidFromDigest, RAW_CODEC } from '../../src/storage/codec/cid.ts'
import { applyHolderUpdate } from '../../src/storage/files/holder-update.ts'
import type { SignedManifest } from '../../src/storage/files/manifest.ts'
import type { RepairEvent } from '../../src/storage/keeper/repair.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { startNodes } from '../utils/nodes.ts'
import { chunks, collect } from '../utils/streams.ts'

const N = 10
const K = 4
const M = 2
const SEG = 32_768
let dir = ''
const nodes: NodusNode[] = []
const events: RepairEvent[] = []
const clock = new FakeClock(Date.now())

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-dynred-'))
  nodes.push(
    ...(await startNodes(
      dir,
      N,
      {
        storage: { k: K, m: M, segmentSize: SEG, manifestReplicas: 3 },
        // readsPerParityStep 3: reads by 3 to 8 distinct requesters add 1 parity row, 9 add 2
        // (⌊log2(1 + reads / 3)⌋; each requester counts once per hour); the two readers of the other
        // tests add none.
        repair: { intervalMs: 3_600_000, graceMs: 0, criticalExtraParity: 2, readsPerParityStep: 3 },
      },
      (e) => events.push(e),
      clock,
    )),
  )
})
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  await rm(dir, { recursive: true, force: true })
})

async function roundEverywhere(): Promise<void> {
  for (const n of nodes) await n.repairer.runRound()
}

/** Delete a CID from every node's store; resolves the number of copies removed. */
async function deleteEverywhere(cid: CID): Promise<number> {
  let removed = 0
  for (const n of nodes) if (await n.store.delete(cid)) removed++
  return removed
}

test('a critical pin makes the closest keeper add parity; the file then survives losing 2 data and 2 signed parity shards per segment', {
  timeout: 120_000,
}, async () => {
  const up = nodes[0] as NodusNode
  const data = randomBytes(3 * SEG - 77)
  const res = await up.files.put(chunks(data))
  const cid = res.cid
  await up.files.pin(cid, undefined, { critical: true })
  const keepers = nodes.filter((n) => n.watch.has(cid.toString()))
  assert.ok(keepers.length >= 3, `only ${keepers.length} keepers`)
  assert.ok(keepers.every((n) => n.watch.isCritical(cid.toString(), clock.now())))

  const before = events.length
  await roundEverywhere()
  const resized = events.slice(before).filter((e) => e.type === 'resized')
  // One keeper (the closest) resized every segment from 2 to 4 parity shards, once.
  assert.equal(resized.length, res.manifest.segments.length)
  for (const e of resized)
    assert.deepEqual([e.type === 'resized' && e.from, e.type === 'resized' && e.to], [2, 4])

  // Another node sees the update: every segment lists k + m + 2 shards, on distinct peers.
  const reader = nodes[N - 1] as NodusNode
  const view = await reader.files.resolveManifest(cid)
  assert.equal(view.manifest.m, M, 'the signed m stays the uploader’s')
  for (const seg of view.manifest.segments) {
    assert.equal(seg.shards.length, K + M + 2)
    for (const sh of seg.shards.slice(K + M)) assert.ok(sh.holders.length >= 1)
  }

  // Lose data shards 0, 1 and both signed parity shards of every segment: only 2 signed shards are
  // left, fewer than k, so without the added rows the file would be gone.
  for (const seg of view.manifest.segments) {
    for (const j of [0, 1, K, K + 1]) await deleteEverywhere((seg.shards[j] as { cid: CID }).cid)
  }
  const back = await collect(reader.files.get(cid, { manifest: view }))
  assert.ok(back.equals(data), 'file read back through the extra parity rows')

  // Repair restores the lost shards; the critical parity is kept.
  const b2 = events.length
  await roundEverywhere()
  assert.ok(
    events.slice(b2).some((e) => e.type === 'finished'),
    JSON.stringify(events.slice(b2)),
  )
  assert.equal(events.slice(b2).filter((e) => e.type === 'failed').length, 0)
  const healed = await (nodes[1] as NodusNode).files.resolveManifest(cid)
  for (const seg of healed.manifest.segments) assert.equal(seg.shards.length, K + M + 2)
  assert.ok((await collect((nodes[1] as NodusNode).files.get(cid, { manifest: healed }))).equals(data))
})

test('when the critical mark expires, the extra parity rows are dropped from the next holder update', {
  timeout: 120_000,
}, async () => {
  const up = nodes[1] as NodusNode
  const data = randomBytes(2 * SEG)
  const res = await up.files.put(chunks(data))
  const cid = res.cid
  // The first round runs before the mark expires: the nodes' clock stands still until the test moves it.
  const expiresAt = clock.now() + 6_000
  await up.files.pin(cid, expiresAt, { critical: true })
  await roundEverywhere()
  const raised = await (nodes[2] as NodusNode).files.resolveManifest(cid)
  for (const seg of raised.manifest.segments) assert.equal(seg.shards.length, K + M + 2)

  // For the next round the clock stands just past the mark.
  clock.ms = expiresAt + 100
  const b = events.length
  await roundEverywhere()
  assert.ok(events.slice(b).some((e) => e.type === 'published' && e.manifest === cid.toString()))
  const keeper = nodes.find((n) => n.watch.has(cid.toString()) && n !== up) as NodusNode
  const lowered = await keeper.files.resolveManifest(cid)
  for (const seg of lowered.manifest.segments) assert.equal(seg.shards.length, K + M)
  assert.ok((await collect(keeper.files.get(cid, { manifest: lowered }))).equals(data))
})

test('reads counted by the closest keeper raise parity (popularity)', { timeout: 120_000 }, async () => {
  const up = nodes[2] as NodusNode
  const data = randomBytes(SEG + 5)
  const res = await up.files.put(chunks(data))
  const cid = res.cid
  // 18 gets from 6 nodes that do not keep the manifest: each asks the closest keepers for updates.
  // Each reader counts once (per hour): 18 counted reads would add 2 rows, 6 add 1.
  const readers = nodes.filter((n) => !n.watch.has(cid.toString())).slice(0, 6)
  assert.equal(readers.length, 6)
  for (let i = 0; i < 18; i++) {
    const r = readers[i % 6] as NodusNode
    assert.ok((await collect(r.files.get(cid))).equals(data))
  }
  const b = events.length
  await roundEverywhere()
  const resized = events
    .slice(b)
    .filter((e) => e.type === 'resized' && e.manifest === cid.toString()) as Extract<
    RepairEvent,
    { type: 'resized' }
  >[]
  // 6 requesters with readsPerParityStep 3: ⌊log2(1 + 2)⌋ = 1 extra row (not 2: repeats do not count).
  assert.equal(resized.length, res.manifest.segments.length)
  for (const e of resized) assert.equal(e.to, M + 1)
})

test('wrong extra parity in a holder update cannot corrupt a read: the getter falls back to signed shards', {
  timeout: 120_000,
}, async () => {
  const up = nodes[3] as NodusNode
  const reader = nodes[4] as NodusNode
  const data = randomBytes(2 * SEG)
  const res = await up.files.put(chunks(data))
  const signed: SignedManifest = await reader.files.resolveManifest(res.cid)
  // A hostile update: two "parity" rows per segment that are random bytes, stored on the reader
  // itself so it uses them first (local shards come before network ones).
  const parity: CID[][] = []
  for (const seg of signed.manifest.segments) {
    const rows: CID[] = []
    for (let x = 0; x < 2; x++) {
      const junk = randomBytes(seg.shardSize)
      const c = cidFromDigest(blake3(junk), RAW_CODEC)
      await reader.store.put(c, junk)
      rows.push(c)
    }
    parity.push(rows)
  }
  const holders = signed.manifest.segments.map((seg, si) => [
    ...seg.shards.map((sh) => sh.holders),
    ...(parity[si] as CID[]).map(() => [reader.peerId]),
  ])
  const view: SignedManifest = {
    ...signed,
    manifest: applyHolderUpdate(signed.manifest, {
      manifest: signed.cid,
      revision: 9,
      holders,
      parity,
      signer: signed.manifest.uploader,
      createdAt: clock.now(),
    }),
  }
  // Without data shards 0 and 1 the reader must decode; its two local junk rows come first.
  for (const seg of signed.manifest.segments) {
    for (const j of [0, 1]) await deleteEverywhere((seg.shards[j] as { cid: CID }).cid)
  }
  const back = await collect(reader.files.get(res.cid, { manifest: view }))
  assert.ok(back.equals(data))
})
