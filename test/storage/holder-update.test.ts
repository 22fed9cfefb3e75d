/**
 * Holder updates: encoding, extra parity rows (dynamic redundancy), who may sign one and which
 * revisions follow (the inbox a keeper runs for offered updates), and a keeper that falls back to
 * its last good state when a kept update cannot be loaded.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { type ErrorCode, NodusError } from '../../src/common/errors.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { hybridPublicKey, identityFromSeeds, type NodeIdentity, signHybrid } from '../../src/crypto/index.ts'
import { cidForBytes } from '../../src/storage/codec/cid.ts'
import {
  applyHolderUpdate,
  decodeHolderUpdate,
  extraParityOf,
  type HolderUpdate,
  MAX_EXTRA_PARITY,
  MAX_HOLDER_UPDATE_REVISION,
  openHolderUpdate,
  signHolderUpdate,
} from '../../src/storage/files/holder-update.ts'
import { type Manifest, signManifest } from '../../src/storage/files/manifest.ts'
import { HolderUpdateInbox } from '../../src/storage/keeper/holder-update-inbox.ts'
import { ManifestWatch } from '../../src/storage/keeper/manifest-watch.ts'
import { DEFAULT_REPAIR_OPTIONS, type RepairEvent, Repairer } from '../../src/storage/keeper/repair.ts'
import { accountableSigner } from '../../src/trust/index.ts'
import { MemoryStore } from '../utils/memory-store.ts'

const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const shard = (i: number): CID => cidForBytes(new Uint8Array([i, 1, 2, 3]))

const uploader = await identityFromSeeds(seed(7), seed(8))
const keeper = await identityFromSeeds(seed(9), seed(10))
const stranger = await identityFromSeeds(seed(11), seed(12))
/** Holders: real PeerIds (holder updates must list PeerIds). */
const peers = await Promise.all([20, 21, 22, 23, 24, 25].map((b) => identityFromSeeds(seed(b), seed(b + 50))))
const [a, b, c, d, e, f] = peers.map((p) => p.peerId.toString()) as [
  string,
  string,
  string,
  string,
  string,
  string,
]
const idOf = (id: NodeIdentity): string => id.peerId.toString()

const man: Manifest = {
  version: 1,
  name: undefined,
  fileSize: 10,
  fileBlake3: new Uint8Array(32),
  k: 2,
  m: 1,
  segmentSize: 10,
  segments: [{ size: 10, shardSize: 5, shards: [0, 1, 2].map((i) => ({ cid: shard(i), holders: [a] })) }],
  uploader: { peerId: idOf(uploader), publicKey: hybridPublicKey(uploader) },
  createdAt: 1,
  revision: 1,
}
const signed = await signManifest(man, (msg) => signHybrid(uploader, msg))

/** A signed holder update for `signed` by `by` (the uploader by default). */
async function update(
  revision: number,
  holders: string[][][] = [[[b], [c], [d]]],
  by: NodeIdentity = uploader,
  extra: Partial<HolderUpdate> = {},
): Promise<Uint8Array> {
  const u = await signHolderUpdate(
    {
      manifest: signed.cid,
      revision,
      holders,
      signer: { peerId: idOf(by), publicKey: hybridPublicKey(by) },
      createdAt: 2,
      ...extra,
    },
    (msg) => signHybrid(by, msg),
  )
  return u.bytes
}

function thrown(fn: () => unknown): NodusError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof NodusError)
    return err
  }
  assert.fail('nothing thrown')
}

async function rejects(p: Promise<unknown>): Promise<NodusError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof NodusError)
    return err
  }
  assert.fail('nothing thrown')
}

describe('holder updates with extra parity', () => {
  const sign = (msg: Uint8Array) => signHybrid(uploader, msg)
  const base = {
    manifest: signed.cid,
    revision: 2,
    signer: { peerId: idOf(uploader), publicKey: hybridPublicKey(uploader) },
    createdAt: 2,
  }

  it('round-trips and appends the extra rows to each segment', async () => {
    const u = await signHolderUpdate(
      { ...base, holders: [[[b], [c], [d], [e], [f]]], parity: [[shard(3), shard(4)]] },
      sign,
    )
    const back = decodeHolderUpdate(u.bytes, signed).update
    assert.equal(back.parity?.[0]?.length, 2)
    const view = applyHolderUpdate(man, back)
    const seg = view.segments[0]
    assert.ok(seg !== undefined)
    assert.equal(seg.shards.length, 5)
    assert.equal(view.m, 1, 'm stays the signed one')
    assert.equal(extraParityOf(view, seg), 2)
    assert.ok(seg.shards[4]?.cid.equals(shard(4)))
    assert.deepEqual(seg.shards[3]?.holders, [e])
    assert.deepEqual(seg.shards[0]?.holders, [b, a])
  })

  it('an update without extra rows encodes as before (no parity field)', async () => {
    const u = await signHolderUpdate({ ...base, holders: [[[b], [c], [d]]], parity: [[]] }, sign)
    const body = (dagCbor.decode(u.bytes) as { body: Record<string, unknown> }).body
    assert.equal('parity' in body, false)
    assert.equal(
      applyHolderUpdate(man, decodeHolderUpdate(u.bytes, signed).update).segments[0]?.shards.length,
      3,
    )
  })

  it('rejects a holder table that does not match the extra rows, and too many rows', async () => {
    const short = await signHolderUpdate({ ...base, holders: [[[b], [c], [d]]], parity: [[shard(3)]] }, sign)
    assert.throws(() => decodeHolderUpdate(short.bytes, signed), { code: 'MANIFEST_INVALID' })
    const many = Array.from({ length: MAX_EXTRA_PARITY + 1 }, (_, i) => shard(10 + i))
    const tooMany = await signHolderUpdate(
      { ...base, holders: [[[b], [c], [d], ...many.map(() => [e])]], parity: [many] },
      sign,
    )
    assert.throws(() => decodeHolderUpdate(tooMany.bytes, signed), { code: 'MANIFEST_INVALID' })
  })

  it('the signature covers the extra rows', async () => {
    const u = await signHolderUpdate({ ...base, holders: [[[b], [c], [d], [e]]], parity: [[shard(3)]] }, sign)
    const env = dagCbor.decode(u.bytes) as { body: Record<string, unknown>; sig: unknown }
    const forged = dagCbor.encode({ ...env, body: { ...env.body, parity: [[shard(9)]] } })
    assert.throws(() => decodeHolderUpdate(forged, signed), { code: 'SIGNATURE_INVALID' })
  })

  it('holders must be PeerIds (a getter would fail on anything else)', async () => {
    const bad = await update(2, [[[b], ['not-a-peer'], [d]]])
    assert.throws(() => decodeHolderUpdate(bad, signed), { code: 'MANIFEST_INVALID' })
  })
})

describe('who may sign a holder update (openHolderUpdate)', () => {
  const authority = { has: (p: string) => p === idOf(uploader) || p === idOf(keeper) }
  const rules = { authority, sequence: { last: 1, maxStep: 16 } }

  it('admits the uploader and a responsible keeper within the step', async () => {
    assert.equal(openHolderUpdate(await update(2), signed, rules).update.revision, 2)
    assert.equal(openHolderUpdate(await update(17, undefined, keeper), signed, rules).update.revision, 17)
  })

  it('refuses a stranger, accountable', async () => {
    const forged = await update(2, undefined, stranger)
    const err = thrown(() => openHolderUpdate(forged, signed, rules))
    assert.equal(err.code, 'NOT_AUTHORIZED')
    assert.equal(accountableSigner(err), idOf(stranger))
  })

  it('refuses a revision jump and a revision past the ceiling, accountable', async () => {
    const jump = await update(18, undefined, keeper)
    const far = thrown(() => openHolderUpdate(jump, signed, rules))
    assert.equal(far.code, 'REVISION_INVALID')
    assert.equal(accountableSigner(far), idOf(keeper))
    // Without sequence rules (a getter, or repair loading what it kept), the ceiling still holds.
    const huge = await update(Number.MAX_SAFE_INTEGER, undefined, keeper)
    const err = thrown(() => openHolderUpdate(huge, signed, { authority }))
    assert.equal(err.code, 'REVISION_INVALID')
    assert.equal(accountableSigner(err), idOf(keeper))
    assert.throws(() => decodeHolderUpdate(huge, signed), { code: 'REVISION_INVALID' })
    const top = await update(MAX_HOLDER_UPDATE_REVISION)
    assert.equal(openHolderUpdate(top, signed, { authority }).update.revision, MAX_HOLDER_UPDATE_REVISION)
  })

  it('an update that does not apply is refused against its (verified) signer', async () => {
    const twoSegments = await update(
      2,
      [
        [[b], [c], [d]],
        [[b], [c], [d]],
      ],
      keeper,
    )
    const err = thrown(() => openHolderUpdate(twoSegments, signed, { authority }))
    assert.equal(err.code, 'MANIFEST_INVALID')
    assert.equal(accountableSigner(err), idOf(keeper))
    const fourShards = await update(2, [[[b], [c], [d], [e]]], keeper)
    const err2 = thrown(() => openHolderUpdate(fourShards, signed, { authority }))
    assert.equal(accountableSigner(err2), idOf(keeper))
  })
})

describe('the holder update inbox of a keeper', () => {
  let dir = ''
  let watch: ManifestWatch
  const store = new MemoryStore()
  const refused: { signer: string; code: ErrorCode }[] = []
  let responsible = new Set<string>()
  let inbox: HolderUpdateInbox
  const key = signed.cid.toString()

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nodus-inbox-'))
    watch = new ManifestWatch(join(dir, 'watch'))
    watch.open()
    await store.put(signed.cid, signed.bytes)
    inbox = new HolderUpdateInbox(
      {
        store,
        watch,
        responsible: () => responsible,
        onRefused: (signer, code) => refused.push({ signer, code }),
        clock: { now: () => 1_000 },
        logger: silentLogger(),
      },
      { maxRevisionStep: 16 },
    )
  })
  after(async () => {
    await watch.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('refuses updates for a manifest it does not watch', async () => {
    assert.equal(await inbox.offer(signed.cid, await update(2)), false)
    await watch.add(key, 1)
  })

  it('refuses the forged update of a stranger (revision 2^53 − 1) and records the stranger', async () => {
    const forged = await update(Number.MAX_SAFE_INTEGER, undefined, stranger)
    const err = await rejects(inbox.offer(signed.cid, forged))
    assert.equal(err.code, 'NOT_AUTHORIZED')
    assert.equal(err.peerAction, 'reject')
    assert.deepEqual(refused, [{ signer: idOf(stranger), code: 'NOT_AUTHORIZED' }])
    assert.equal(watch.latest(key)?.revision, 1, 'nothing kept')
  })

  it('a keeper it sees as responsible may sign; revisions follow within the step', async () => {
    responsible = new Set([idOf(keeper)])
    assert.equal(await inbox.offer(signed.cid, await update(3, undefined, keeper)), true)
    assert.equal(watch.latest(key)?.revision, 3)
    // Not newer: dropped, nobody blamed (an honest keeper that is behind).
    assert.equal(await inbox.offer(signed.cid, await update(3)), false)
    assert.equal(await inbox.offer(signed.cid, await update(2, undefined, keeper)), false)
    // Too far: refused and recorded.
    refused.length = 0
    const err = await rejects(inbox.offer(signed.cid, await update(20, undefined, keeper)))
    assert.equal(err.code, 'REVISION_INVALID')
    assert.deepEqual(refused, [{ signer: idOf(keeper), code: 'REVISION_INVALID' }])
    // The uploader may sign too; 19 = 3 + 16.
    assert.equal(await inbox.offer(signed.cid, await update(19)), true)
    assert.deepEqual(watch.latest(key)?.previous?.revision, 3, 'the update before it is kept as previous')
  })

  it('an update that does not apply is never kept, and its signer is recorded', async () => {
    refused.length = 0
    const bad = await update(20, [[[b], [c]]], keeper)
    const err = await rejects(inbox.offer(signed.cid, bad))
    assert.equal(err.code, 'MANIFEST_INVALID')
    assert.deepEqual(refused, [{ signer: idOf(keeper), code: 'MANIFEST_INVALID' }])
    assert.equal(watch.latest(key)?.revision, 19)
  })

  it('a bad signature is refused, and the named signer is not blamed', async () => {
    refused.length = 0
    const good = await update(20, undefined, keeper)
    const env = dagCbor.decode(good) as { body: Record<string, unknown>; sig: unknown }
    const tampered = dagCbor.encode({ ...env, body: { ...env.body, holders: [[[e], [e], [e]]] } })
    const err = await rejects(inbox.offer(signed.cid, tampered))
    assert.equal(err.code, 'SIGNATURE_INVALID')
    assert.deepEqual(refused, [])
    assert.equal(watch.latest(key)?.revision, 19)
  })
})

describe('a keeper whose kept update cannot be loaded falls back and keeps repairing', () => {
  let dir = ''
  let watch: ManifestWatch
  const store = new MemoryStore()
  const key = signed.cid.toString()
  const events: RepairEvent[] = []
  let fallbacks = 0
  let repairer: Repairer
  const self = idOf(keeper)

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nodus-fallback-'))
    watch = new ManifestWatch(join(dir, 'watch'))
    watch.open()
    await store.put(signed.cid, signed.bytes)
    // Shard 2's holders (a, and d from any update) lost it; shards 0 and 1 are alive on a, b and c.
    const lost = new Set([`${d}/${shard(2)}`, `${a}/${shard(2)}`])
    repairer = new Repairer(
      {
        selfPeerId: self,
        files: {
          rebuildSegment: async () => [0, 1, 2].map((i) => new Uint8Array([i, 1, 2, 3, 0])),
          placeShard: async () => f,
        },
        client: {
          has: async (peer: PeerId, cids: CID[]) => ({
            have: cids.map((cid) => !lost.has(`${peer.toString()}/${cid}`)),
          }),
          offerUpdate: async () => false,
          audit: async () => {
            throw new Error('no audits in this test')
          },
        },
        random: { bytes: (n) => new Uint8Array(n), next: () => 0 },
        store,
        watch,
        connected: () => [],
        sign: (msg) => signHybrid(keeper, msg),
        publicKey: hybridPublicKey(keeper),
        clock: { now: () => Date.now() },
        logger: silentLogger(),
        metrics: { repairs: { inc: () => {} }, manifestFallbacks: { inc: () => fallbacks++ } },
        onEvent: (ev) => events.push(ev),
      },
      { ...DEFAULT_REPAIR_OPTIONS, graceMs: 0, auditsPerRound: 0 },
    )
  })
  after(async () => {
    await watch.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('falls back to the update kept before the bad one, and repairs', async () => {
    await watch.add(key, 1)
    // A good update (revision 2), then one stored as an older node would have (never checked).
    assert.equal(await watch.offer(key, 2, await update(2), 1), true)
    const forged = await update(Number.MAX_SAFE_INTEGER, undefined, stranger)
    assert.equal(await watch.offer(key, Number.MAX_SAFE_INTEGER, forged, 1), true)
    await repairer.runRound()
    assert.equal(fallbacks, 1)
    assert.ok(events.some((ev) => ev.type === 'finished' && ev.manifest === key))
    // It published the revision after the last good one, and that is what it now keeps.
    assert.ok(events.some((ev) => ev.type === 'published' && ev.revision === 3))
    assert.equal(watch.latest(key)?.revision, 3)
    const view = applyHolderUpdate(
      man,
      decodeHolderUpdate(watch.latest(key)?.update as Uint8Array, signed).update,
    )
    assert.ok(
      view.segments[0]?.shards[2]?.holders.includes(f),
      'the rebuilt shard is listed on its new holder',
    )
    // The next round loads without falling back.
    await repairer.runRound()
    assert.equal(fallbacks, 1)
  })

  it('falls back to the signed manifest alone when there is no good update before', async () => {
    const key2 = signed.cid.toString()
    await watch.remove(key2)
    await watch.add(key2, 1)
    // An update that does not apply (two segments for a one-segment manifest), kept directly.
    const bad = await update(
      2,
      [
        [[b], [c], [d]],
        [[b], [c], [d]],
      ],
      keeper,
    )
    assert.equal(await watch.offer(key2, 2, bad, 1), true)
    events.length = 0
    await repairer.runRound()
    assert.equal(fallbacks, 2)
    assert.ok(events.some((ev) => ev.type === 'published' && ev.revision === 2))
    assert.equal(watch.latest(key2)?.revision, 2)
  })

  it('a manifest copy that cannot be read: the view loaded last is used, and counted', async () => {
    store.corrupt(signed.cid, new Uint8Array([0xa0]))
    events.length = 0
    await repairer.runRound()
    assert.equal(fallbacks, 3)
    const round = events.find((ev) => ev.type === 'round')
    assert.equal(round?.type === 'round' && round.manifests, 1, 'the manifest is still checked')
  })
})
