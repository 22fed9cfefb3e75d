/**
 * Finding (issue 17): a holder update signed by an arbitrary key with revision 2^53 − 1 was accepted
 * by the keepers of a manifest; from then on they failed to load it every round and stopped repairing
 * the file. Here, on real nodes (loopback, real disk):
 * - a stranger (a fresh identity, farther from the manifest CID than any keeper could be) offers that
 *   update to every keeper: each refuses it (NOT_AUTHORIZED) and records the stranger;
 * - a keeper (authorized to sign) offers one with the same absurd revision: refused (REVISION_INVALID);
 * - the update, stored anyway as an older version would have, makes every keeper fall back to the
 *   signed manifest (metric) instead of stopping: after a holder dies the file is repaired, every
 *   segment is healthy again and the file reads back byte for byte.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import { generateIdentity, hybridPublicKey, type NodeIdentity, signHybrid } from '../../src/crypto/index.ts'
import { createHost, DEFAULT_HOST_OPTIONS, type NodusLibp2p } from '../../src/net/index.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { signHolderUpdate } from '../../src/storage/files/holder-update.ts'
import type { SignedManifest } from '../../src/storage/files/manifest.ts'
import { ShardClient } from '../../src/storage/index.ts'
import type { RepairEvent } from '../../src/storage/keeper/repair.ts'
import { closestTo } from '../../src/storage/keeper/responsibility.ts'
import { startNodes } from '../utils/nodes.ts'
import { chunks, collect } from '../utils/streams.ts'

const N = 8
const REPLICAS = 3
let dir = ''
let nodes: NodusNode[] = []
const events: RepairEvent[] = []
let stranger: { id: NodeIdentity; host: NodusLibp2p; client: ShardClient } | undefined

let data = Buffer.alloc(0)
let cid: CID
let signed: SignedManifest
let keepers: NodusNode[] = []

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-forged-update-'))
  nodes = await startNodes(
    dir,
    N,
    {
      storage: { k: 4, m: 2, segmentSize: 65536, manifestReplicas: REPLICAS },
      repair: { intervalMs: 3_600_000, graceMs: 0, auditsPerRound: 0 },
    },
    (e) => events.push(e),
  )
  const up = nodes[0] as NodusNode
  data = randomBytes(3 * 65536 - 100)
  const res = await up.files.put(chunks(data))
  cid = res.cid
  signed = await up.files.resolveManifest(cid)
  keepers = nodes.filter((n) => n.watch.has(cid.toString()))
  assert.ok(keepers.length >= 3, `only ${keepers.length} keepers`)
})
after(async () => {
  await stranger?.host.stop()
  await Promise.all(nodes.map((n) => n.stop()))
  await rm(dir, { recursive: true, force: true })
})

/** A holder update for the manifest, signed by `by`, listing every holder of the manifest. */
async function forgedUpdate(by: NodeIdentity, revision: number): Promise<Uint8Array> {
  const u = await signHolderUpdate(
    {
      manifest: cid,
      revision,
      holders: signed.manifest.segments.map((s) => s.shards.map((sh) => sh.holders)),
      signer: { peerId: by.peerId.toString(), publicKey: hybridPublicKey(by) },
      createdAt: Date.now(),
    },
    (msg) => signHybrid(by, msg),
  )
  return u.bytes
}

const rowHas = (k: NodusNode, peer: string): boolean => k.trust.localTrust().get(k.peerId)?.has(peer) === true

test('a stranger’s holder update with revision 2^53 − 1 is refused by every keeper and recorded against it', {
  timeout: 120_000,
}, async () => {
  // A fresh identity that ranks below the 2 × manifestReplicas closest to the manifest CID among all
  // nodes, so no keeper can see it as responsible (each keeper sees all nodes).
  let id = await generateIdentity()
  const ids = nodes.map((n) => n.peerId)
  for (let i = 0; i < 200; i++) {
    if (closestTo(cid.bytes, [...ids, id.peerId.toString()]).indexOf(id.peerId.toString()) >= 2 * REPLICAS)
      break
    id = await generateIdentity()
  }
  const strangerId = id.peerId.toString()
  assert.ok(closestTo(cid.bytes, [...ids, strangerId]).indexOf(strangerId) >= 2 * REPLICAS)
  const host = await createHost(id.ed25519, { ...DEFAULT_HOST_OPTIONS })
  await host.start()
  const client = new ShardClient(
    { dialProtocol: (peer, protocol, o) => host.dialProtocol(peer, protocol, o) },
    { requestTimeoutMs: 30_000, maxShardBytes: 1 << 20 },
  )
  stranger = { id, host, client }
  const forged = await forgedUpdate(id, Number.MAX_SAFE_INTEGER)

  for (const k of keepers) {
    assert.equal(rowHas(k, strangerId), false)
    await host.dial(k.libp2p.getMultiaddrs())
    let accepted: boolean | undefined
    let code: unknown
    try {
      accepted = await client.offerUpdate(peerIdFromString(k.peerId), cid, forged)
    } catch (err) {
      code = (err as { details?: { remoteCode?: unknown } }).details?.remoteCode
    }
    assert.notEqual(accepted, true, `keeper ${k.peerId} accepted the forged update`)
    assert.equal(code, 'NOT_AUTHORIZED')
    assert.equal(k.watch.latest(cid.toString())?.revision, 1, 'nothing kept')
    assert.ok(rowHas(k, strangerId), 'the signer was not recorded')
  }
})

test('a keeper’s own update with an absurd revision is refused by the other keepers', {
  timeout: 120_000,
}, async () => {
  const [signer, ...others] = keepers as [NodusNode, ...NodusNode[]]
  const client = new ShardClient(
    { dialProtocol: (peer, protocol, o) => signer.libp2p.dialProtocol(peer, protocol, o) },
    { requestTimeoutMs: 30_000, maxShardBytes: 1 << 20 },
  )
  const forged = await forgedUpdate(signer.identity, Number.MAX_SAFE_INTEGER)
  for (const k of others) {
    await assert.rejects(client.offerUpdate(peerIdFromString(k.peerId), cid, forged), (err: unknown) => {
      assert.equal((err as { details?: { remoteCode?: unknown } }).details?.remoteCode, 'REVISION_INVALID')
      return true
    })
    assert.equal(k.watch.latest(cid.toString())?.revision, 1)
  }
  // One revision on (what an honest repair publishes) is accepted.
  const next = await forgedUpdate(signer.identity, 2)
  for (const k of others) {
    assert.equal(await client.offerUpdate(peerIdFromString(k.peerId), cid, next), true)
    assert.equal(k.watch.latest(cid.toString())?.revision, 2)
  }
})

test('keepers that kept a forged update fall back, and repair of the file goes on after a holder dies', {
  timeout: 180_000,
}, async () => {
  const key = cid.toString()
  // The state an older version left behind: the stranger's update kept by every keeper.
  const forged = await forgedUpdate((stranger as { id: NodeIdentity }).id, Number.MAX_SAFE_INTEGER)
  for (const k of keepers)
    assert.equal(await k.watch.offer(key, Number.MAX_SAFE_INTEGER, forged, Date.now()), true)

  // A shard holder that is not a keeper dies.
  const holders = new Set(signed.manifest.segments.flatMap((s) => s.shards.flatMap((sh) => sh.holders)))
  const victim = nodes.find((n) => holders.has(n.peerId) && !n.watch.has(key)) as NodusNode
  assert.ok(victim, 'no holder outside the keepers')
  await victim.stop()
  const alive = nodes.filter((n) => n !== victim)
  const lostSegments = signed.manifest.segments.flatMap((s, si) =>
    s.shards.some((sh) => sh.holders.includes(victim.peerId)) ? [si] : [],
  )
  assert.ok(lostSegments.length > 0)

  const healthy = async (): Promise<number[]> => {
    const view = await (alive[alive.length - 1] as NodusNode).files.resolveManifest(cid)
    return view.manifest.segments.map(
      (seg) =>
        seg.shards.filter((sh) =>
          sh.holders.some((h) => alive.find((n) => n.peerId === h)?.store.has(sh.cid) === true),
        ).length,
    )
  }
  const before = events.length
  for (let round = 0; round < 4 && (await healthy()).some((n) => n < 6); round++) {
    await Promise.all(alive.map((n) => n.repairer.runRound()))
  }
  assert.deepEqual(
    await healthy(),
    signed.manifest.segments.map(() => 6),
    'segments not healthy again',
  )
  const repaired = new Set(
    events.slice(before).flatMap((e) => (e.type === 'finished' && e.manifest === key ? [e.segment] : [])),
  )
  assert.deepEqual([...repaired].sort(), lostSegments)

  // Every keeper fell back (said so in its metric) instead of failing to load the manifest.
  for (const k of keepers) {
    const fallbacks = (await k.metrics.manifestFallbacks.get()).values[0]?.value ?? 0
    assert.ok(fallbacks >= 1, `keeper ${k.peerId} did not fall back`)
    const rev = k.watch.latest(key)?.revision ?? 0
    assert.ok(rev < 2 ** 32, `keeper ${k.peerId} still keeps revision ${rev}`)
  }

  // A reader that is not a keeper gets the file back byte for byte.
  const reader = alive.find((n) => !n.watch.has(key)) as NodusNode
  assert.ok((await collect(reader.files.get(cid))).equals(data))
})
