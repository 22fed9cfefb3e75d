/**
 * Pub/sub between real libp2p hosts on loopback (gossipsub + the messaging area): every message
 * delivered once and in order per publisher, with two and with four nodes; a peer sending malformed or
 * oversized batches is rejected, penalized in gossipsub's score and then disconnected by peer actions.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { systemClock } from '../../src/common/clock.ts'
import { silentLogger } from '../../src/common/logger.ts'
import {
  encodeBatch,
  GOSSIP_TOPIC_PREFIX,
  type PubsubMessage,
  type Subscription,
} from '../../src/messaging/index.ts'
import { createHost, DEFAULT_HOST_OPTIONS, type NodusLibp2p } from '../../src/net/index.ts'
import { MemoryBanStore, PeerActions } from '../../src/trust/index.ts'
import { waitFor } from '../utils/wait.ts'
import { connectAll, counter, type PubsubPeer, startPubsubPeer, waitForSubscribers } from './peers.ts'

const running: { stop(): Promise<void> }[] = []
after(async () => {
  await Promise.allSettled(running.map((p) => p.stop()))
})

async function peers(n: number, over: Record<string, unknown> = {}): Promise<PubsubPeer[]> {
  const out: PubsubPeer[] = []
  for (let i = 0; i < n; i++) {
    const p = await startPubsubPeer(over)
    running.push(p)
    out.push(p)
  }
  await connectAll(out)
  return out
}

/** Read `n` messages from `sub`. */
async function take(sub: Subscription, n: number): Promise<PubsubMessage[]> {
  const got: PubsubMessage[] = []
  if (n === 0) return got
  for await (const m of sub) {
    got.push({ ...m, data: new Uint8Array(m.data) })
    if (got.length === n) break
  }
  return got
}

/** The message `i` of publisher index `p`: its size varies so batches cut at every bound. */
function body(p: number, i: number): Uint8Array {
  const b = new Uint8Array(8 + ((i * 37) % 900))
  const v = new DataView(b.buffer)
  v.setUint32(0, p)
  v.setUint32(4, i)
  return b
}

describe('pub/sub between real hosts', () => {
  it('two nodes: every message once, in order, intact; batches cut by size; the publisher hears itself', async () => {
    const [a, b] = (await peers(2, { maxBatchBytes: 8192, maxMessageBytes: 4096 })) as [
      PubsubPeer,
      PubsubPeer,
    ]
    const subB = b.messaging.subscribe('t')
    const subA = a.messaging.subscribe('t')
    await waitForSubscribers([a], [b], 't')
    const N = 3000
    const receivedB = take(subB, N)
    const receivedA = take(subA, N)
    const seqs: number[] = []
    for (let i = 0; i < N; i++) {
      seqs.push(a.messaging.publish('t', body(0, i)).seq)
      if (i % 500 === 499) await a.messaging.flush()
    }
    await a.messaging.flush()
    for (const got of [await receivedB, await receivedA]) {
      assert.equal(got.length, N)
      assert.deepEqual(
        got.map((m) => m.seq),
        seqs,
      )
      for (const [i, m] of got.entries()) {
        assert.equal(m.publisher, a.peerId)
        assert.deepEqual(m.data, body(0, i))
      }
    }
    const batches = await counter(a.metrics, 'nodus_messaging_batches_sent_total')
    assert.ok(batches > 1 && batches < N / 4, `${batches} batches for ${N} messages`)
    assert.equal(await counter(b.metrics, 'nodus_messaging_delivered_total'), N)
    assert.equal(await counter(b.metrics, 'nodus_messaging_dropped_total'), 0)
    subA.close()
    subB.close()
  })

  it('four nodes, three publishers: every subscriber gets every message once, in order per publisher', async () => {
    const nodes = await peers(4)
    const subs = nodes.map((n) => n.messaging.subscribe('mesh'))
    await waitForSubscribers(nodes, nodes, 'mesh')
    const N = 400
    const publishers = nodes.slice(0, 3)
    const received = subs.map((s) => take(s, N * publishers.length))
    for (let i = 0; i < N; i++)
      for (const [p, node] of publishers.entries()) node.messaging.publish('mesh', body(p, i))
    await Promise.all(publishers.map((p) => p.messaging.flush()))
    for (const got of await Promise.all(received)) {
      for (const [p, node] of publishers.entries()) {
        const mine = got.filter((m) => m.publisher === node.peerId)
        assert.equal(mine.length, N, `messages of publisher ${p}`)
        for (const [i, m] of mine.entries()) {
          assert.deepEqual(m.data, body(p, i))
          if (i > 0) assert.equal(m.seq, (mine[i - 1] as PubsubMessage).seq + 1)
        }
      }
    }
    for (const s of subs) s.close()
  })

  it('a subscriber that falls behind is closed (slow) and counted; drop-oldest keeps the newest', async () => {
    const [a, b] = (await peers(2)) as [PubsubPeer, PubsubPeer]
    const slow = b.messaging.subscribe('slow', { capacity: 10 })
    const lossy = b.messaging.subscribe('slow', { capacity: 10, onSlow: 'drop-oldest' })
    await waitForSubscribers([a], [b], 'slow')
    for (let i = 0; i < 50; i++) a.messaging.publish('slow', body(0, i))
    await a.messaging.flush()
    await waitFor(() => slow.closedBecause === 'slow' && lossy.size === 10, {
      timeoutMs: 10_000,
      what: 'the slow subscriber closed',
    })
    const kept = await take(lossy, 10)
    assert.deepEqual(
      kept.map((m) => new DataView(m.data.buffer, m.data.byteOffset).getUint32(4)),
      [40, 41, 42, 43, 44, 45, 46, 47, 48, 49],
    )
    assert.equal(await counter(b.metrics, 'nodus_messaging_dropped_total', { reason: 'slow_subscriber' }), 11)
    assert.equal(await counter(b.metrics, 'nodus_messaging_dropped_total', { reason: 'subscriber_full' }), 40)
    lossy.close()
  })

  it('a peer sending malformed and oversized batches is rejected, loses gossipsub score, and is disconnected', async () => {
    // The victim: the messaging area, with real peer actions that hang up on the 5th reject.
    let actions: PeerActions | undefined
    const victim = await startPubsubPeer(
      { maxBatchBytes: 4096, maxMessageBytes: 2048 },
      systemClock,
      (libp2p) => {
        actions = new PeerActions(
          {
            self: libp2p.peerId.toString(),
            clock: systemClock,
            trust: { recordInteraction: () => {} },
            perf: { record: () => {} },
            bans: new MemoryBanStore(),
            logger: silentLogger(),
          },
          { rejectsToDisconnect: 5 },
        )
        actions.onDisconnect(async (peer) => {
          await libp2p.hangUp(peerIdFromString(peer))
        })
        return actions
      },
    )
    running.push(victim)
    // The attacker: plain gossipsub (its own defaults), publishing whatever it likes on our topic.
    const attacker: NodusLibp2p = await createHost(
      await generateKeyPair('Ed25519'),
      { ...DEFAULT_HOST_OPTIONS },
      { pubsub: {} },
    )
    await attacker.start()
    running.push({
      stop: async () => {
        await attacker.stop()
      },
    })
    const honest = await startPubsubPeer()
    running.push(honest)
    await connectAll([victim, { libp2p: attacker }, honest])
    const sub = victim.messaging.subscribe('t')
    await waitForSubscribers([{ libp2p: attacker }, honest], [victim], 't')
    const gossipTopic = `${GOSSIP_TOPIC_PREFIX}t`
    const pubsub = attacker.services.pubsub
    assert.ok(pubsub !== undefined)
    const oversized = encodeBatch({
      sessionStart: 1,
      firstSeq: 1,
      timeMs: Date.now(),
      entries: [{ data: new Uint8Array(5000), publishedAtMs: Date.now() }],
    })
    const bad = [
      new Uint8Array([9, 9, 9]), // unknown version
      new Uint8Array([1, 0, 0]), // truncated
      oversized, // well formed but over maxBatchBytes (and maxMessageBytes)
      new Uint8Array(0), // empty
      new Uint8Array([1, 0, 0, 0, 5]), // claims 5 messages, has none
    ]
    for (const data of bad) await pubsub.publish(gossipTopic, data)
    await waitFor(() => victim.reports.length === bad.length, { timeoutMs: 10_000, what: 'five rejects' })
    assert.ok(
      victim.reports.every((r) => r.peer === attacker.peerId.toString() && r.code === 'BATCH_INVALID'),
    )
    assert.ok(victim.penalties.score(attacker.peerId.toString()) < -40, 'a P5 penalty per reject')
    assert.equal(victim.penalties.score(honest.peerId), 0)
    await waitFor(() => victim.libp2p.getConnections(attacker.peerId).length === 0, {
      timeoutMs: 10_000,
      what: 'the attacker disconnected',
    })
    assert.equal(
      await counter(victim.metrics, 'nodus_messaging_dropped_total', { reason: 'invalid' }),
      bad.length,
    )
    // The honest peer still gets through, and nothing of the attacker was delivered.
    honest.messaging.publish('t', new TextEncoder().encode('still here'))
    const [m] = await take(sub, 1)
    assert.equal(m?.publisher, honest.peerId)
    assert.equal(new TextDecoder().decode(m?.data), 'still here')
    sub.close()
  })
})
