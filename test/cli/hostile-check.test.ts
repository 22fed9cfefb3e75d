/**
 * The checks of `nodus chaos --hostile` (src/cli/hostile-check.ts): the longest stretch of honest
 * refusals, and the after-run reading of a node's storage accounts and watch list, which must find
 * each thing a failed defence would leave behind (and nothing on a clean node).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { checkHolderState, holderStateFailures, RefusalStretch } from '../../src/cli/hostile-check.ts'
import { forgedHolderUpdate } from '../../src/cli/hostile-wire.ts'
import { generateIdentity, type NodeIdentity } from '../../src/crypto/index.ts'
import { cidForBytes, cidToString } from '../../src/storage/index.ts'
import { ManifestWatch } from '../../src/storage/keeper/manifest-watch.ts'
import { StorageAccounts } from '../../src/storage/protocol/accounts.ts'

const DAY = 24 * 3600 * 1000
const NOW = 1_800_000_000_000
const TERMS = { leaseMs: 30 * DAY, maxLeaseMs: 90 * DAY, provisionalLeaseMs: 3600_000, maxQuotaBytes: 1000 }

let dir = ''
let hostile: NodeIdentity
let uploader: NodeIdentity
const manifest = cidToString(cidForBytes(new TextEncoder().encode('manifest')))
const shard = cidToString(cidForBytes(new TextEncoder().encode('shard')))
const junk = cidToString(cidForBytes(new TextEncoder().encode('provisional')))

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-hostile-check-'))
  hostile = await generateIdentity()
  uploader = await generateIdentity()
})
after(() => rm(dir, { recursive: true, force: true }))

function accountsAt(dataDir: string): StorageAccounts {
  const a = new StorageAccounts(
    { trust: () => 0 },
    { path: join(dataDir, 'accounts'), quotaBytes: 1 << 30, quotaShards: 1 << 20, quotaTrustMultiplier: 1 },
  )
  a.open()
  return a
}

function input(dataDir: string, provisional: Array<{ holder: string; cid: string; atMs: number }> = []) {
  return {
    nodes: [{ index: 3, peerId: 'holder', dataDir }],
    hostile: hostile.peerId.toString(),
    files: [{ manifest, blocks: [manifest, shard] }],
    provisional,
    ...TERMS,
    nowMs: NOW,
  }
}

test('RefusalStretch: a stretch runs from the first refusal to the last before a success', () => {
  const s = new RefusalStretch()
  s.record('ok', 0, 1_000)
  s.record('refused', 1_000, 2_000)
  s.record('failed', 2_000, 30_000) // a killed node neither extends nor ends it
  s.record('refused', 30_000, 31_000)
  s.record('ok', 31_000, 32_000)
  s.record('refused', 40_000, 45_000)
  assert.equal(s.refused, 3)
  assert.equal(s.longestSeconds, 30)
})

test('a clean node: honest claims within their lease, the hostile peer within its bounds', async () => {
  const d = join(dir, 'clean')
  const a = accountsAt(d)
  const up = uploader.peerId.toString()
  const hp = hostile.peerId.toString()
  await a.claim(shard, up, {
    size: 100,
    expiresAt: NOW + TERMS.leaseMs - 1,
    committed: true,
    origin: 'order',
  })
  await a.claim(shard, hp, { size: 100, expiresAt: NOW + TERMS.maxLeaseMs, committed: true, origin: 'pin' })
  await a.claim(junk, hp, { size: 500, expiresAt: NOW + 1_000, committed: false, origin: 'order' })
  await a.close()
  const w = new ManifestWatch(join(d, 'watch'))
  w.open()
  await w.add(manifest, NOW)
  await w.close()
  const s = await checkHolderState(input(d, [{ holder: 'holder', cid: junk, atMs: NOW }]))
  assert.equal(holderStateFailures(s), 0, s.problems.join('; '))
  assert.equal(s.claimsChecked, 2)
  assert.equal(s.hostileHeldMaxBytes, 600)
  assert.equal(s.honestHeldMaxBytes, 100)
})

test('a node where the defences failed: each finding is counted', async () => {
  const d = join(dir, 'broken')
  const a = accountsAt(d)
  const up = uploader.peerId.toString()
  const hp = hostile.peerId.toString()
  // The stranger's 10-year pin extended the uploader's claim (to the maximum lease).
  await a.claim(shard, up, { size: 100, expiresAt: NOW + TERMS.maxLeaseMs, committed: true, origin: 'order' })
  // Its own claim is kept for ten years, its provisional block was committed, and it is over quota.
  await a.claim(manifest, hp, { size: 600, expiresAt: NOW + 3650 * DAY, committed: true, origin: 'pin' })
  await a.claim(junk, hp, { size: 500, expiresAt: NOW + 1_000, committed: true, origin: 'order' })
  await a.close()
  const w = new ManifestWatch(join(d, 'watch'))
  w.open()
  await w.add(manifest, NOW)
  await w.markCritical(manifest, undefined)
  const view = {
    cid: manifest,
    k: 1,
    m: 1,
    segments: [{ shards: [shard, junk].map((cid) => ({ cid, holders: [up] })) }],
  }
  const forged = await forgedHolderUpdate(view, hostile, NOW)
  assert.equal(await w.offer(manifest, Number.MAX_SAFE_INTEGER, forged, NOW), true)
  await w.close()
  const s = await checkHolderState(input(d, [{ holder: 'holder', cid: junk, atMs: NOW }]))
  assert.equal(s.escalatedClaims, 1)
  assert.equal(s.hostileClaimsTooLong, 1)
  assert.equal(s.provisionalKept, 1)
  assert.equal(s.overQuota, 1)
  assert.equal(s.criticalMarks, 1)
  assert.equal(s.forgedUpdatesKept, 1)
  assert.equal(holderStateFailures(s), 6)
  assert.equal(s.problems.length, 6)
})
