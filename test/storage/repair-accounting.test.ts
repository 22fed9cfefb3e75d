/**
 * How a keeper counts copies (repair.ts with fakes): a failed audit marks a copy lost for good (not for
 * one round), a holder that answers `has` = false is lost at once, a copy reported lost is lost at once,
 * and an unreachable holder gets the grace period.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { NodusError } from '../../src/common/errors.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { hybridPublicKey, identityFromSeeds, signHybrid } from '../../src/crypto/index.ts'
import { cidForBytes } from '../../src/storage/codec/cid.ts'
import { type Manifest, signManifest } from '../../src/storage/files/manifest.ts'
import type { AuditChallenge } from '../../src/storage/keeper/audit.ts'
import { ManifestWatch } from '../../src/storage/keeper/manifest-watch.ts'
import { DEFAULT_REPAIR_OPTIONS, type RepairEvent, Repairer } from '../../src/storage/keeper/repair.ts'
import { MemoryStore } from '../utils/memory-store.ts'

const seed = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const shard = (i: number): CID => cidForBytes(new Uint8Array([i, 9, 9, 9]))

const uploader = await identityFromSeeds(seed(31), seed(32))
const keeper = await identityFromSeeds(seed(33), seed(34))
const peers = await Promise.all([40, 41, 42, 43, 44].map((b) => identityFromSeeds(seed(b), seed(b + 50))))
const [a, b, c, d, fresh] = peers.map((p) => p.peerId.toString()) as [string, string, string, string, string]

// k = 2, m = 2, one segment; with thresholdMargin 0 a segment is repaired at 2 healthy shards or fewer,
// so one lost copy alone does not trigger a repair and the accounting can be watched over rounds.
const man: Manifest = {
  version: 1,
  name: undefined,
  fileSize: 8,
  fileBlake3: new Uint8Array(32),
  k: 2,
  m: 2,
  segmentSize: 8,
  segments: [
    {
      size: 8,
      shardSize: 4,
      shards: [a, b, c, d].map((holder, i) => ({ cid: shard(i), holders: [holder] })),
    },
  ],
  uploader: { peerId: uploader.peerId.toString(), publicKey: hybridPublicKey(uploader) },
  createdAt: 1,
  revision: 1,
}
const signed = await signManifest(man, (msg) => signHybrid(uploader, msg))

describe('repair: known-bad copies', () => {
  let dir = ''
  let watch: ManifestWatch
  const store = new MemoryStore()
  const events: RepairEvent[] = []
  let now = 1_000_000
  /** `${holder}/${cid}` the fake holders answer `has` = false for. */
  const absent = new Set<string>()
  /** Holders that do not answer `has` at all. */
  const silent = new Set<string>()
  /** Holders whose audit answers are wrong. */
  const lying = new Set<string>()
  const audited: string[] = []
  let repairer: Repairer

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nodus-repair-accounting-'))
    watch = new ManifestWatch(join(dir, 'watch'))
    watch.open()
    await store.put(signed.cid, signed.bytes)
    await watch.add(signed.cid.toString(), 1)
    repairer = new Repairer(
      {
        selfPeerId: keeper.peerId.toString(),
        files: {
          rebuildSegment: async () => [0, 1, 2, 3].map((i) => new Uint8Array([i, 9, 9, 9])),
          placeShard: async () => fresh,
        },
        client: {
          has: async (peer: PeerId, cids: CID[]) => {
            if (silent.has(peer.toString())) throw new NodusError('TIMEOUT', 'no answer')
            return { have: cids.map((cid) => !absent.has(`${peer.toString()}/${cid}`)) }
          },
          offerUpdate: async () => false,
          audit: async (peer: PeerId, ch: AuditChallenge) => {
            audited.push(peer.toString())
            if (!lying.has(peer.toString())) throw new NodusError('PEER_BUSY', 'not audited here')
            return { nonce: ch.nonce, data: new Uint8Array(ch.length), cvs: new Uint8Array(0) }
          },
        },
        random: { bytes: (n) => new Uint8Array(n).fill(7), next: () => 0 },
        store,
        watch,
        connected: () => [],
        sign: (msg) => signHybrid(keeper, msg),
        publicKey: hybridPublicKey(keeper),
        clock: { now: () => now },
        logger: silentLogger(),
        onEvent: (ev) => events.push(ev),
      },
      { ...DEFAULT_REPAIR_OPTIONS, graceMs: 60_000, thresholdMargin: 0, auditsPerRound: 100 },
    )
  })
  after(async () => {
    await watch.close()
    await rm(dir, { recursive: true, force: true })
  })

  const round = async (): Promise<RepairEvent[]> => {
    const from = events.length
    await repairer.runRound()
    now += 1_000
    return events.slice(from)
  }

  it('one failed audit marks the copy lost in later rounds too, though its holder still says it has it', async () => {
    lying.add(c)
    const first = await round()
    assert.ok(audited.includes(c))
    assert.equal(repairer.badCopies, 1)
    assert.ok(!first.some((e) => e.type === 'started'), 'one lost copy of four is above the threshold')
    // The liar is not audited again (it is not live), and still counts as lost: when a second copy goes
    // (answered `has` = false: lost at once, no grace), the segment is at the threshold and both are rebuilt.
    lying.delete(c)
    audited.length = 0
    absent.add(`${d}/${shard(3)}`)
    const second = await round()
    assert.ok(!audited.includes(c), 'a known-bad copy is not audited as if live')
    const started = second.find((e) => e.type === 'started')
    assert.ok(started?.type === 'started', 'repair started in the round after the failed audit')
    assert.deepEqual(started.missing, [2, 3])
    assert.ok(second.some((e) => e.type === 'published'))
    // The segment is healthy again and stays so: the bad copy (still listed by the signed manifest, which
    // holder updates only add to) stays marked, so it is neither counted live nor repaired again.
    absent.clear()
    const third = await round()
    assert.ok(third.some((e) => e.type === 'round' && e.unhealthy === 0))
    assert.ok(!third.some((e) => e.type === 'started'))
    assert.equal(repairer.badCopies, 1)
  })

  it('an unreachable holder gets the grace period; a copy reported lost does not', async () => {
    silent.add(a)
    silent.add(b)
    const quiet = await round()
    assert.ok(!quiet.some((e) => e.type === 'started'), 'no repair while the grace period runs')
    silent.delete(b)
    repairer.markBad(b, shard(1).toString())
    const reported = await round()
    const started = reported.find((e) => e.type === 'started')
    assert.ok(started?.type === 'started')
    assert.deepEqual(started.missing, [1], 'the reported copy is rebuilt; the silent one waits for grace')
    silent.clear()
  })
})
