/**
 * Encrypted direct messages between real in-process nodes (TCP, Noise, Yamux, kad-dht): online
 * delivery, refusals with typed errors, replays refused after the message was deleted and the node
 * restarted (online and through a keeper), the mailbox across a restart and the loss of keepers, the
 * per-sender quota and the per-recipient bound under floods, and key rotation with its grace period.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { isNodusError } from '../../src/common/errors.ts'
import { systemRandom } from '../../src/common/random.ts'
import { listXWingKeys, sealMessage, signEd25519 } from '../../src/crypto/index.ts'
import { DIRECT_PROTOCOL, mailboxAckBytes } from '../../src/messaging/index.ts'
import { requestResponse } from '../../src/net/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import {
  type DirectPeer,
  directOptions,
  mesh,
  startDirectPeer,
  stopDirectPeer,
  stopDirectPeers,
} from './direct-peers.ts'

const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const str = (b: Uint8Array): string => new TextDecoder().decode(b)

/** Deliver raw sealed bytes from `from` to `to` over /nodus/msg/1.0.0. */
function deliverRaw(from: DirectPeer, to: DirectPeer, msg: Uint8Array): Promise<unknown> {
  return requestResponse(
    from.libp2p,
    to.libp2p.peerId,
    DIRECT_PROTOCOL,
    dagCbor.encode({ op: 'deliver', msg }),
    {
      timeoutMs: 10_000,
      what: 'raw deliver',
      maxReplyBytes: 4096,
      remoteCodes: new Set([
        'SEALED_MESSAGE_INVALID',
        'SEALED_MESSAGE_REPLAYED',
        'DECRYPT_FAILED',
        'SEALED_MESSAGE_FORGED',
        'SEALED_MESSAGE_STALE',
        'INBOX_FULL',
      ]),
    },
    (r) => r,
  )
}

/** Store raw sealed bytes for `to` at `keeper` over /nodus/msg/1.0.0 (what a sender, or anyone, may do). */
function storeRaw(from: DirectPeer, keeper: DirectPeer, to: string, msg: Uint8Array): Promise<unknown> {
  return requestResponse(
    from.libp2p,
    keeper.libp2p.peerId,
    DIRECT_PROTOCOL,
    dagCbor.encode({ op: 'store', to, ttlMs: 3600_000, msg }),
    { timeoutMs: 10_000, what: 'raw store', maxReplyBytes: 4096 },
    (r) => r,
  )
}

/** The value of `counter{label=value}` (0 when absent). */
async function counted(
  counter: { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> },
  label: string,
  value: string,
): Promise<number> {
  return (await counter.get()).values.find((v) => v.labels[label] === value)?.value ?? 0
}

const rejectsWith = async (p: Promise<unknown>, code: string): Promise<void> => {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isNodusError(err), `a NodusError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    return true
  })
}

describe('direct messages online', () => {
  const clock = new FakeClock(1_800_000_000_000)
  // A grace period shorter than a key's lifetime, so the test can pass it with the new key still valid.
  const options = directOptions({ keyGraceMs: 24 * 3600 * 1000 })
  let peers: DirectPeer[] = []
  let a: DirectPeer
  let b: DirectPeer
  let c: DirectPeer

  before(async () => {
    peers = [
      await startDirectPeer(clock, options),
      await startDirectPeer(clock, options),
      await startDirectPeer(clock, options),
    ]
    ;[a, b, c] = peers as [DirectPeer, DirectPeer, DirectPeer]
    await mesh(peers)
  })
  after(() => stopDirectPeers(peers))

  it('delivers a sealed message to a connected peer, which stores it in its inbox', async () => {
    const seen: string[] = []
    const off = b.direct.onMessage((m) => seen.push(str(m.body)))
    const receipt = await a.direct.send(b.id.peerId.toString(), text('hello b'))
    off()
    assert.equal(receipt.via, 'online')
    const inbox = b.direct.inbox()
    assert.equal(inbox.length, 1)
    const m = inbox[0]
    assert.ok(m !== undefined)
    assert.equal(m.id, receipt.id)
    assert.equal(m.from, a.id.peerId.toString())
    assert.equal(str(m.body), 'hello b')
    assert.equal(m.via, 'online')
    assert.deepEqual(seen, ['hello b'])
    assert.equal((await a.metrics.directSent.get()).values.find((v) => v.labels.via === 'online')?.value, 1)
    assert.equal(
      (await b.metrics.directDelivered.get()).values.find((v) => v.labels.via === 'online')?.value,
      1,
    )
    // Nothing for a or c.
    assert.equal(a.direct.inbox().length, 0)
    assert.equal(c.direct.inbox().length, 0)
  })

  it('refuses a tampered message (DECRYPT_FAILED), a replay (SEALED_MESSAGE_REPLAYED) and one sealed to another peer (SEALED_MESSAGE_INVALID)', async () => {
    const sealed = await sealMessage(a.id, b.direct.keys.record.value, text('once'), {
      clock,
      random: systemRandom,
    })
    const outer = dagCbor.decode(sealed.bytes) as {
      v: number
      kid: Uint8Array
      enc: Uint8Array
      ct: Uint8Array
    }
    const ct = outer.ct.slice()
    ct[10] = (ct[10] as number) ^ 0x01
    const tampered = dagCbor.encode({ ...outer, ct })
    await rejectsWith(deliverRaw(a, b, tampered), 'DECRYPT_FAILED')
    await deliverRaw(a, b, sealed.bytes)
    await rejectsWith(deliverRaw(a, b, sealed.bytes), 'SEALED_MESSAGE_REPLAYED')
    await rejectsWith(deliverRaw(a, c, sealed.bytes), 'SEALED_MESSAGE_INVALID')
    const refused = (await b.metrics.directRefused.get()).values
    assert.equal(refused.find((v) => v.labels.reason === 'decrypt_failed')?.value, 1)
    assert.equal(refused.find((v) => v.labels.reason === 'sealed_message_replayed')?.value, 1)
    // Only the tampered one's failure is `ignore`: nobody is reported for what a relay cannot see.
    assert.deepEqual(b.reports, [])
    assert.equal(b.direct.inbox().filter((m) => str(m.body) === 'once').length, 1)
  })

  it('refuses a malformed request and reports the peer (MAILBOX_REQUEST_INVALID, reject)', async () => {
    await rejectsWith(
      requestResponse(
        a.libp2p,
        b.libp2p.peerId,
        DIRECT_PROTOCOL,
        dagCbor.encode({ op: 'nope' }),
        {
          timeoutMs: 10_000,
          what: 'bad op',
          maxReplyBytes: 4096,
          remoteCodes: new Set(['MAILBOX_REQUEST_INVALID']),
        },
        (r) => r,
      ),
      'MAILBOX_REQUEST_INVALID',
    )
    assert.deepEqual(b.reports, [{ peer: a.id.peerId.toString(), code: 'MAILBOX_REQUEST_INVALID' }])
  })

  it('a key rotation keeps messages sealed to the previous key readable within the grace period, and not after', async () => {
    const old = b.direct.keys.record.value
    await b.direct.rotateKey()
    assert.equal(b.direct.keys.epoch, old.epoch + 1)
    assert.deepEqual(await listXWingKeys(b.dataDir), [old.epoch, old.epoch + 1])
    // a still has the old record cached: its message is sealed to the old key and opens.
    const r1 = await a.direct.send(b.id.peerId.toString(), text('to the old key'))
    assert.equal(r1.via, 'online')
    const stale = await sealMessage(a.id, old, text('late'), { clock, random: systemRandom })
    clock.advance(options.keyGraceMs + 1)
    assert.deepEqual(await b.direct.keys.prune(), [old.epoch])
    assert.deepEqual(await listXWingKeys(b.dataDir), [old.epoch + 1])
    await rejectsWith(deliverRaw(a, b, stale.bytes), 'SEALED_MESSAGE_INVALID')
    // a's send recovers by itself: b refuses the old key, a looks b's record up again and re-seals.
    const r2 = await a.direct.send(b.id.peerId.toString(), text('to the new key'))
    assert.equal(r2.via, 'online')
    const bodies = b.direct.inbox({ limit: 1000 }).map((m) => str(m.body))
    assert.ok(bodies.includes('to the old key'))
    assert.ok(bodies.includes('to the new key'))
    assert.ok(!bodies.includes('late'))
  })
  it('rotates on schedule: maintain() makes the next key once the current one is keyRotationMs old, and publishes it', async () => {
    const epoch = b.direct.keys.epoch
    await b.direct.maintain()
    assert.equal(b.direct.keys.epoch, epoch, 'not yet due')
    clock.advance(options.keyRotationMs)
    await b.direct.maintain()
    assert.equal(b.direct.keys.epoch, epoch + 1)
    // c has no cached record of b: it finds the new one (from b, connected) and delivers.
    c.direct.keys.forget(b.id.peerId.toString())
    const r = await c.direct.send(b.id.peerId.toString(), text('after the scheduled rotation'))
    assert.equal(r.via, 'online')
    const last = b.direct.inbox({ limit: 1000 }).at(-1)
    assert.equal(str(last?.body ?? new Uint8Array()), 'after the scheduled rotation')
  })
})

describe('direct message replays across deletion and restart', () => {
  const clock = new FakeClock(1_800_000_000_000)
  const options = directOptions({ inboxMaxMessages: 1 })
  let peers: DirectPeer[] = []

  before(async () => {
    peers = [
      await startDirectPeer(clock, options),
      await startDirectPeer(clock, options),
      await startDirectPeer(clock, options),
    ]
    await mesh(peers)
  })
  after(() => stopDirectPeers(peers))

  it('a message deleted from the inbox is refused when replayed after a restart: online and through a keeper (SEALED_MESSAGE_REPLAYED)', async () => {
    const [a, b, k] = peers as [DirectPeer, DirectPeer, DirectPeer]
    const bTo = b.id.peerId.toString()
    const sealed = await sealMessage(a.id, b.direct.keys.record.value, text('once only'), {
      clock,
      random: systemRandom,
    })
    const id = Buffer.from(sealed.id).toString('hex')
    await deliverRaw(a, b, sealed.bytes)
    assert.equal(await b.direct.deleteMessage(id), true)
    assert.equal(b.direct.inbox().length, 0)
    await rejectsWith(deliverRaw(a, b, sealed.bytes), 'SEALED_MESSAGE_REPLAYED')

    await stopDirectPeer(b)
    const b2 = await startDirectPeer(clock, options, { id: b.id, dataDir: b.dataDir })
    peers[1] = b2
    await mesh(peers)
    clock.advance(3600_000) // well within the message's max age
    await rejectsWith(deliverRaw(a, b2, sealed.bytes), 'SEALED_MESSAGE_REPLAYED')
    assert.equal(await counted(b2.metrics.directRefused, 'reason', 'sealed_message_replayed'), 1)

    // The same bytes left at a keeper (an attacker, or a keeper that still held them): collected,
    // refused, acknowledged, so the keeper deletes them.
    await storeRaw(a, k, bTo, sealed.bytes)
    assert.equal(k.direct.store.recipientUsage(bTo).count, 1)
    assert.equal(await b2.direct.collect(), 0)
    assert.equal(b2.direct.inbox().length, 0)
    assert.equal(k.direct.store.recipientUsage(bTo).count, 0)
    assert.equal(await counted(k.metrics.mailboxRemoved, 'reason', 'acked'), 1)
  })

  it('a message refused because the inbox was full is not remembered: it is taken once there is room, after a restart too', async () => {
    const [a, b] = peers as [DirectPeer, DirectPeer]
    const seal = (body: string) =>
      sealMessage(a.id, b.direct.keys.record.value, text(body), { clock, random: systemRandom })
    const first = await seal('fills the inbox')
    const second = await seal('waits')
    await deliverRaw(a, b, first.bytes)
    await rejectsWith(deliverRaw(a, b, second.bytes), 'INBOX_FULL')
    assert.equal(await b.direct.deleteMessage(Buffer.from(first.id).toString('hex')), true)
    await stopDirectPeer(b)
    const b2 = await startDirectPeer(clock, options, { id: b.id, dataDir: b.dataDir })
    peers[1] = b2
    await mesh(peers)
    await deliverRaw(a, b2, second.bytes)
    assert.deepEqual(
      b2.direct.inbox().map((m) => str(m.body)),
      ['waits'],
    )
    assert.equal(b2.direct.store.replayState().storedIds, 3)
  })
})

describe('direct messages through the mailbox', () => {
  const clock = new FakeClock(1_800_000_000_000)
  const options = directOptions({ mailboxReplicas: 3, mailboxSenderMessages: 3 })
  let peers: DirectPeer[] = []

  before(async () => {
    peers = []
    for (let i = 0; i < 6; i++) peers.push(await startDirectPeer(clock, options))
    await mesh(peers)
    await Promise.all(peers.map((p) => p.direct.publishKey()))
  })
  after(() => stopDirectPeers(peers))

  it('delivers to a recipient that was offline, across its restart and the loss of some keepers', async () => {
    const [a, r] = peers as [DirectPeer, DirectPeer]
    const rTo = r.id.peerId.toString()
    await stopDirectPeer(r)
    const receipt = await a.direct.send(rTo, text('while you were away'))
    assert.equal(receipt.via, 'mailbox')
    assert.equal(receipt.keepers, 3)
    const holders = peers.filter((p) => p.running && p.direct.store.mailboxUsage.count === 1)
    assert.equal(holders.length, 3)
    // Two of the three keepers go away.
    for (const k of holders.slice(0, 2)) await stopDirectPeer(k)

    const restarted = await startDirectPeer(clock, options, { id: r.id, dataDir: r.dataDir })
    peers[1] = restarted
    await mesh(peers)
    assert.equal(await restarted.direct.collect(), 1)
    const inbox = restarted.direct.inbox()
    assert.equal(inbox.length, 1)
    assert.equal(inbox[0]?.id, receipt.id)
    assert.equal(inbox[0]?.from, a.id.peerId.toString())
    assert.equal(inbox[0]?.via, 'mailbox')
    assert.equal(str(inbox[0]?.body ?? new Uint8Array()), 'while you were away')
    // Acknowledged, so deleted at the keeper still running.
    const survivor = holders[2] as DirectPeer
    assert.equal(survivor.direct.store.mailboxUsage.count, 0)
    assert.equal(
      (await survivor.metrics.mailboxRemoved.get()).values.find((v) => v.labels.reason === 'acked')?.value,
      1,
    )
    // Collecting again finds nothing; the inbox survives another restart.
    assert.equal(await restarted.direct.collect(), 0)
    await stopDirectPeer(restarted)
    const again = await startDirectPeer(clock, options, { id: r.id, dataDir: r.dataDir })
    peers[1] = again
    await mesh(peers)
    assert.deepEqual(
      again.direct.inbox().map((m) => m.id),
      [receipt.id],
    )
  })

  it('a flood from one sender stays within its quota on every keeper, and another sender’s message is still stored', async () => {
    const running = peers.filter((p) => p.running)
    assert.ok(running.length >= 4)
    const [a, target, other] = running as [DirectPeer, DirectPeer, DirectPeer]
    const to = target.id.peerId.toString()
    await target.direct.publishKey()
    // The senders must know the record before the target goes away (they also could fetch it from the DHT).
    await a.direct.keys.lookup(to, AbortSignal.timeout(10_000))
    await other.direct.keys.lookup(to, AbortSignal.timeout(10_000))
    await stopDirectPeer(target)
    const outcomes: string[] = []
    for (let i = 0; i < 8; i++) {
      try {
        const r = await a.direct.send(to, text(`flood ${i}`))
        outcomes.push(`${r.via}:${r.keepers}`)
      } catch (err) {
        assert.ok(isNodusError(err, 'MAILBOX_UNAVAILABLE'), String(err))
        outcomes.push('refused')
      }
    }
    const aId = a.id.peerId.toString()
    for (const p of peers.filter((q) => q.running)) {
      const usage = p.direct.store.storerUsage(aId)
      assert.ok(usage.count <= options.mailboxSenderMessages, `${usage.count} at one keeper`)
    }
    assert.ok(outcomes.includes('refused'), outcomes.join(','))
    const refusedAtKeepers = await Promise.all(
      peers
        .filter((q) => q.running)
        .map(
          async (p) =>
            (await p.metrics.directRefused.get()).values.find((v) => v.labels.reason === 'quota_exceeded')
              ?.value ?? 0,
        ),
    )
    assert.ok(refusedAtKeepers.some((n) => n > 0))
    // The quota is a's alone: another sender's message to the same recipient is stored.
    const r = await other.direct.send(to, text('not part of the flood'))
    assert.equal(r.via, 'mailbox')
    assert.ok(r.keepers >= 1)

    // Only the recipient can delete: an acknowledgement signed by the sender is refused and deletes nothing.
    const keeper = peers.find((p) => p.running && p !== a && p.direct.store.storerUsage(aId).count > 0)
    assert.ok(keeper !== undefined)
    const held = keeper.direct.store.listMailbox(to, { maxBytes: 1 << 20, nowMs: clock.now() }).entries
    assert.ok(held.length > 0)
    const ids = held.map((e) => Buffer.from(e.id, 'hex'))
    const keeperId = keeper.id.peerId.toString()
    const at = clock.now()
    const forged = signEd25519(a.id.ed25519, mailboxAckBytes(to, keeperId, at, ids))
    await rejectsWith(
      requestResponse(
        a.libp2p,
        keeper.libp2p.peerId,
        DIRECT_PROTOCOL,
        dagCbor.encode({ op: 'ack', to, keeper: keeperId, at, ids, sig: forged }),
        {
          timeoutMs: 10_000,
          what: 'forged ack',
          maxReplyBytes: 4096,
          remoteCodes: new Set(['MAILBOX_REQUEST_INVALID']),
        },
        (r) => r,
      ),
      'MAILBOX_REQUEST_INVALID',
    )
    assert.equal(
      keeper.direct.store.listMailbox(to, { maxBytes: 1 << 20, nowMs: clock.now() }).entries.length,
      held.length,
    )
  })
})

describe('a flood aimed at one recipient', () => {
  const clock = new FakeClock(1_800_000_000_000)
  // Each keeper keeps 4 messages in all, at most 3 for one recipient; senders have room for many.
  const options = directOptions({
    mailboxReplicas: 2,
    mailboxMaxMessages: 4,
    mailboxRecipientMessages: 3,
    mailboxSenderMessages: 100,
  })
  const peers: DirectPeer[] = []
  after(() => stopDirectPeers(peers))

  it('many senders flooding one recipient take at most mailboxRecipientMessages at each keeper: another recipient’s message is still stored', async () => {
    for (let i = 0; i < 5; i++) peers.push(await startDirectPeer(clock, options))
    await mesh(peers)
    await Promise.all(peers.map((p) => p.direct.publishKey()))
    const [x, y, ...senders] = peers as [DirectPeer, DirectPeer, ...DirectPeer[]]
    const xTo = x.id.peerId.toString()
    const yTo = y.id.peerId.toString()
    for (const s of senders) {
      await s.direct.keys.lookup(xTo, AbortSignal.timeout(10_000))
      await s.direct.keys.lookup(yTo, AbortSignal.timeout(10_000))
    }
    await stopDirectPeer(x)
    await stopDirectPeer(y)

    // Every sender sends 4 to x: each keeper is asked by two senders, 8 messages for x.
    let refused = 0
    for (const s of senders)
      for (let i = 0; i < 4; i++)
        await s.direct.send(xTo, text(`flood ${i}`)).catch((err: unknown) => {
          assert.ok(isNodusError(err, 'MAILBOX_UNAVAILABLE'), String(err))
          refused++
        })
    assert.ok(refused > 0)
    let full = 0
    for (const k of senders) {
      assert.equal(k.direct.store.recipientUsage(xTo).count, options.mailboxRecipientMessages)
      full += await counted(k.metrics.directRefused, 'reason', 'mailbox_recipient_full')
    }
    assert.ok(full > 0)

    // The flood took 3 of each keeper's 4: y's message is stored at both its keepers.
    const r = await (senders[0] as DirectPeer).direct.send(yTo, text('for y'))
    assert.deepEqual({ via: r.via, keepers: r.keepers }, { via: 'mailbox', keepers: 2 })
    const yBack = await startDirectPeer(clock, options, { id: y.id, dataDir: y.dataDir })
    peers[1] = yBack
    await mesh(peers)
    assert.equal(await yBack.direct.collect(), 1)
    assert.equal(str(yBack.direct.inbox()[0]?.body ?? new Uint8Array()), 'for y')
  })
})

describe('direct message server bounds', () => {
  const clock = new FakeClock(1_800_000_000_000)
  let peers: DirectPeer[] = []
  after(() => stopDirectPeers(peers))

  it('serves at most directMaxConcurrentRequests at once; beyond, PEER_BUSY, and the sender goes to the mailbox', async () => {
    const options = directOptions({ directMaxConcurrentRequests: 1, mailboxReplicas: 1 })
    peers = [
      await startDirectPeer(clock, options),
      await startDirectPeer(clock, options),
      await startDirectPeer(clock, options),
    ]
    const [a, b] = peers as [DirectPeer, DirectPeer]
    await mesh(peers)
    const to = b.id.peerId.toString()
    await a.direct.keys.lookup(to, AbortSignal.timeout(10_000))
    // A request that never sends its frame holds b's only slot.
    const held = await a.libp2p.dialProtocol(b.libp2p.peerId, DIRECT_PROTOCOL)
    try {
      await rejectsWith(
        requestResponse(
          a.libp2p,
          b.libp2p.peerId,
          DIRECT_PROTOCOL,
          dagCbor.encode({ op: 'key' }),
          { timeoutMs: 10_000, what: 'key', maxReplyBytes: 16_384, remoteCodes: new Set(['PEER_BUSY']) },
          (r) => r,
        ),
        'PEER_BUSY',
      )
      const r = await a.direct.send(to, text('busy'))
      assert.equal(r.via, 'mailbox')
      assert.equal(r.keepers, 1)
    } finally {
      held.abort(new Error('done'))
    }
    assert.equal(await b.direct.collect(), 1)
    assert.equal(str(b.direct.inbox().at(-1)?.body ?? new Uint8Array()), 'busy')
  })
})
