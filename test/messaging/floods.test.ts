/**
 * Floods from a hostile peer speaking raw gossipsub RPCs (hand-encoded protobuf, gossipsub's rpc.proto)
 * stay bounded in the victim: subscriptions per peer, IDONTWANT ids per heartbeat, IHAVE answers per
 * heartbeat, and RPCs over the decode limits dropped whole. Some bounds live inside @libp2p/gossipsub:
 * this test reads its maps (`idontwants`, `iasked`) to check them, and fails loudly if they move.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { GOSSIP_TOPIC_PREFIX } from '../../src/messaging/index.ts'
import { createHost, DEFAULT_HOST_OPTIONS, encodeVarint, type NodusLibp2p } from '../../src/net/index.ts'
import { waitFor } from '../utils/wait.ts'
import { type PubsubPeer, startPubsubPeer } from './peers.ts'

/** A protobuf length-delimited field. */
function field(no: number, payload: Uint8Array): Uint8Array {
  return concat([encodeVarint((no << 3) | 2), encodeVarint(payload.byteLength), payload])
}
function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts)
}
const utf8 = (s: string) => new TextEncoder().encode(s)

/** RPC { subscriptions: [{ subscribe, topicid }] }. */
function subscribeRpc(topics: string[], subscribe = true): Uint8Array {
  return concat(
    topics.map((t) => field(1, concat([Uint8Array.from([0x08, subscribe ? 1 : 0]), field(2, utf8(t))]))),
  )
}
/** RPC { control: { ihave: [{ topicID, messageIDs }] } }. */
function ihaveRpc(topic: string, ids: Uint8Array[]): Uint8Array {
  return field(3, field(1, concat([field(1, utf8(topic)), ...ids.map((id) => field(2, id))])))
}
/** RPC { control: { idontwant: [{ messageIDs }] } }. */
function idontwantRpc(ids: Uint8Array[]): Uint8Array {
  return field(3, field(5, concat(ids.map((id) => field(1, id)))))
}
function ids(n: number, salt: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => {
    const b = new Uint8Array(20)
    new DataView(b.buffer).setUint32(0, salt)
    new DataView(b.buffer).setUint32(4, i)
    return b
  })
}

/** What this test reads inside @libp2p/gossipsub 17. */
interface GossipsubInternals {
  idontwants: Map<string, Map<string, number>>
  iasked: Map<string, number>
  peers: Map<string, unknown>
}

const running: { stop(): Promise<void> }[] = []
after(async () => {
  await Promise.allSettled(running.map((p) => p.stop()))
})

async function hostile(): Promise<NodusLibp2p> {
  const h = await createHost(await generateKeyPair('Ed25519'), { ...DEFAULT_HOST_OPTIONS })
  // Speak meshsub (identify advertises it, so the victim takes this host as a gossipsub peer); read
  // and drop whatever the victim sends.
  await h.handle('/meshsub/1.2.0', (stream) => {
    void (async () => {
      for await (const _ of stream) {
        // discard
      }
    })().catch(() => {})
  })
  await h.start()
  running.push({
    stop: async () => {
      await h.stop()
    },
  })
  return h
}

function frame(rpc: Uint8Array): Uint8Array {
  return concat([encodeVarint(rpc.byteLength), rpc])
}

async function waitDrained(stream: Stream): Promise<void> {
  if (stream.writableNeedsDrain) await new Promise((r) => stream.addEventListener('drain', r, { once: true }))
}

describe('gossipsub floods stay bounded', () => {
  it('subscriptions, IDONTWANT and IHAVE floods from one peer stay within their bounds', async () => {
    const victim: PubsubPeer = await startPubsubPeer({
      maxPeerSubscriptions: 100,
      maxIdontwantPerHeartbeat: 64,
      maxSubscriptionsPerRpc: 1000,
      heartbeatMs: 60_000, // one heartbeat for the whole test: the per-heartbeat counters never reset
    })
    running.push(victim)
    const sub = victim.messaging.subscribe('t')
    const h = await hostile()
    await h.dial(victim.libp2p.getMultiaddrs())
    const internals = victim.libp2p.services.pubsub as unknown as GossipsubInternals
    assert.ok(
      internals.idontwants instanceof Map && internals.iasked instanceof Map,
      'gossipsub internals moved',
    )
    const hid = h.peerId.toString()
    await waitFor(() => internals.peers.has(hid), {
      timeoutMs: 10_000,
      what: 'the victim adding the hostile peer',
    })
    const stream = await h.dialProtocol(victim.libp2p.peerId, '/meshsub/1.2.0')
    const sendRpc = async (rpc: Uint8Array): Promise<void> => {
      stream.send(frame(rpc))
      await waitDrained(stream)
    }

    // The hostile peer joins 't' (seen by the victim): the stream works.
    const pubsub = victim.libp2p.services.pubsub
    assert.ok(pubsub !== undefined)
    const onT = (): boolean =>
      pubsub.getSubscribers(`${GOSSIP_TOPIC_PREFIX}t`).some((p) => p.toString() === hid)
    await sendRpc(subscribeRpc([`${GOSSIP_TOPIC_PREFIX}t`]))
    await waitFor(onT, { timeoutMs: 10_000, what: 'the first subscription' })

    // 3,000 subscriptions in 3 RPCs of 1,000: the victim keeps at most ~100 (1 KiB + the name each).
    const topics = Array.from({ length: 3000 }, (_, i) => `${GOSSIP_TOPIC_PREFIX}flood-${i}`)
    for (let i = 0; i < 3; i++) await sendRpc(subscribeRpc(topics.slice(i * 1000, (i + 1) * 1000)))
    // An RPC over maxSubscriptionsPerRpc is dropped whole.
    await sendRpc(subscribeRpc(Array.from({ length: 1001 }, (_, i) => `${GOSSIP_TOPIC_PREFIX}over-${i}`)))
    // IDONTWANT: 20 RPCs of 64 ids, and one RPC of 65 ids (over the per-RPC limit: dropped).
    for (let i = 0; i < 20; i++) await sendRpc(idontwantRpc(ids(64, i)))
    await sendRpc(idontwantRpc(ids(65, 999)))
    // IHAVE: 50 RPCs of 1,000 ids on a topic the victim is meshed on.
    for (let i = 0; i < 50; i++) await sendRpc(ihaveRpc(`${GOSSIP_TOPIC_PREFIX}t`, ids(1000, 1000 + i)))
    // A marker after everything (RPCs of one stream are handled in order): leaving 't'.
    await sendRpc(subscribeRpc([`${GOSSIP_TOPIC_PREFIX}t`], false))
    await waitFor(() => !onT(), { timeoutMs: 10_000, what: 'the floods processed' })

    const kept = topics.filter((t) => pubsub.getSubscribers(t).some((p) => p.toString() === hid)).length
    assert.ok(kept > 0 && kept <= 100, `${kept} subscriptions kept for one peer`)
    assert.equal(
      pubsub.getSubscribers(`${GOSSIP_TOPIC_PREFIX}over-0`).length,
      0,
      'the oversized RPC was dropped',
    )
    const idontwant = internals.idontwants.get(hid)?.size ?? 0
    assert.ok(idontwant > 0 && idontwant <= 64, `${idontwant} IDONTWANT ids kept`)
    const asked = internals.iasked.get(hid) ?? 0
    assert.ok(asked > 0 && asked <= 5000, `${asked} message ids asked of one peer in a heartbeat`)
    sub.close()
  })
})
