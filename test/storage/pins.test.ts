/**
 * Pins and leases across real nodes: holders learn each shard's expiry, pins without a TTL are leases
 * the pinning node renews, unpinned data expires on holders and cleanup reclaims it.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { readApiToken } from '../../src/common/data-dir.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { parseCid } from '../../src/storage/index.ts'
import { startNodes } from '../utils/nodes.ts'

const LEASE = 60_000
let dir = ''
let nodes: NodusNode[] = []

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-pins-'))
  nodes = await startNodes(dir, 7, {
    storage: { k: 4, m: 2, segmentSize: 65536, leaseMs: LEASE, manifestReplicas: 3 },
    repair: { intervalMs: 3_600_000 },
  })
})
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  await rm(dir, { recursive: true, force: true })
})

async function put(node: NodusNode, bytes: Uint8Array, ttl?: number): Promise<{ cid: string }> {
  const token = await readApiToken(node.config.dataDir)
  const q = ttl === undefined ? '' : `?ttl=${ttl}`
  const r = await fetch(`${node.info().api}/files${q}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: bytes,
  })
  assert.equal(r.status, 200)
  return (await r.json()) as { cid: string }
}

/** [holder node, shard CID] for every shard copy of a file. */
async function copies(node: NodusNode, cid: string): Promise<[NodusNode, ReturnType<typeof parseCid>][]> {
  const m = await node.files.resolveManifest(parseCid(cid))
  return m.manifest.segments.flatMap((s) =>
    s.shards.flatMap((sh) =>
      sh.holders.map(
        (h) => [nodes.find((n) => n.peerId === h) as NodusNode, sh.cid] as [NodusNode, typeof sh.cid],
      ),
    ),
  )
}

test('leases, TTL pins, renewal, unpin and cleanup', { timeout: 120_000 }, async () => {
  const up = nodes[0] as NodusNode
  const t0 = Date.now()
  const a = await put(up, randomBytes(200_000))
  const b = await put(up, randomBytes(150_000), 3600)
  const t1 = Date.now()

  // Holders know each shard's expiry: a lease for A, the TTL for B.
  for (const [holder, cid] of await copies(up, a.cid)) {
    const exp = holder.store.stat(cid)?.expiresAt ?? 0
    assert.ok(exp >= t0 + LEASE && exp <= t1 + LEASE, 'A: lease expiry')
  }
  for (const [holder, cid] of await copies(up, b.cid)) {
    const exp = holder.store.stat(cid)?.expiresAt ?? 0
    assert.ok(exp >= t0 + 3_600_000 && exp <= t1 + 3_600_000, 'B: TTL expiry')
  }

  // Renewal pushes A's lease forward.
  const later = Date.now() + 30_000
  const r = await up.renewPins(later)
  assert.equal(r.renewed, 2)
  assert.equal(r.failed, 0)
  for (const [holder, cid] of await copies(up, a.cid)) {
    assert.ok((holder.store.stat(cid)?.expiresAt ?? 0) >= Date.now() + LEASE - 1000, 'A: renewed')
  }

  // Unpin A: no more renewals; once its lease passes, cleanup reclaims it on every holder; B stays.
  const token = await readApiToken(up.config.dataDir)
  const del = await fetch(`${up.info().api}/files/${a.cid}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${token}` },
  })
  assert.equal(del.status, 200)
  assert.equal((await up.renewPins()).renewed, 1)
  const aCopies = await copies(up, a.cid)
  const past = Date.now() + LEASE + 60_000
  const before = nodes.reduce((n, x) => n + x.store.usage().bytes, 0)
  for (const n of nodes) await n.store.cleanupExpired(past)
  for (const [holder, cid] of await copies(up, b.cid)) assert.ok(holder.store.has(cid), 'B survived cleanup')
  for (const [holder, cid] of aCopies) assert.equal(holder.store.has(cid), false, 'A reclaimed')
  assert.equal(up.store.has(parseCid(a.cid)), false, 'the manifest lease ran out too')
  assert.ok(nodes.reduce((n, x) => n + x.store.usage().bytes, 0) < before)

  // A TTL pin whose time has come is dropped from the node's pins.
  const gone = await up.renewPins(Date.now() + 3_600_000 + 1000)
  assert.equal(gone.expired, 1)
  assert.equal(up.fileIndex.list().length, 0)
})
