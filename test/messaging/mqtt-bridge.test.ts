/**
 * The MQTT bridge (src/messaging/mqtt-bridge.ts) against a real mosquitto (test/utils/mosquitto.ts)
 * and real MQTT clients (mqtt.js), with the messaging area on real libp2p hosts (peers.ts): MQTT →
 * nodus, nodus → MQTT, two bridges on one broker (each message once on each side, no loop), a broker
 * that comes up late, oversized payloads, and a stop while the broker is unreachable.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { connect, connectAsync, type IClientOptions, type MqttClient } from 'mqtt'
import {
  BRIDGE_PROPERTY,
  type MqttBridgeStatus,
  type PubsubMessage,
  type Subscription,
} from '../../src/messaging/index.ts'
import { Mosquitto, mosquittoSkip } from '../utils/mosquitto.ts'
import { TcpProxy } from '../utils/tcp-proxy.ts'
import { waitFor } from '../utils/wait.ts'
import { connectAll, counter, type PubsubPeer, startPubsubPeer, waitForSubscribers } from './peers.ts'

const cleanups: (() => Promise<unknown>)[] = []
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
})

/** Fast reconnection, so a broker that comes up is found within a test. */
const FAST = { mqttReconnectMinMs: 20, mqttReconnectMaxMs: 200 }

async function peer(over: Record<string, unknown>, key?: Parameters<typeof startPubsubPeer>[3]) {
  const p = await startPubsubPeer({ ...FAST, ...over }, undefined, undefined, key)
  cleanups.push(() => p.stop())
  return p
}

async function broker(start = true): Promise<Mosquitto> {
  const m = start ? await Mosquitto.start() : await Mosquitto.create()
  cleanups.push(() => m.close())
  return m
}

interface MqttReceived {
  topic: string
  payload: string
  bridge: unknown
}

/**
 * A real MQTT client (MQTT 5) that records what it receives: listening before it connects, since a
 * resumed session's messages may arrive with the CONNACK.
 */
async function mqttClient(
  url: string,
  options: IClientOptions = {},
): Promise<{ client: MqttClient; got: MqttReceived[] }> {
  const client = connect(url, { protocolVersion: 5, reconnectPeriod: 0, ...options })
  cleanups.push(() => client.endAsync(true))
  const got: MqttReceived[] = []
  client.on('message', (topic, payload, packet) =>
    got.push({
      topic,
      payload: payload.toString(),
      bridge: packet.properties?.userProperties?.[BRIDGE_PROPERTY],
    }),
  )
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
  })
  return { client, got }
}

/** Every message `sub` yields, from now on, as it arrives (copied). */
function collect(sub: Subscription): PubsubMessage[] {
  const got: PubsubMessage[] = []
  void (async () => {
    for await (const m of sub) got.push({ ...m, data: new Uint8Array(m.data) })
  })()
  return got
}

const text = (m: PubsubMessage): string => new TextDecoder().decode(m.data)
const status = (p: PubsubPeer): MqttBridgeStatus => p.messaging.mqtt() as MqttBridgeStatus

/** Wait until `p`'s bridge is connected and the broker granted its `n` subscriptions. */
async function bridgeReady(p: PubsubPeer, subscriptions: number): Promise<void> {
  await waitFor(() => status(p).connected && status(p).subscribed.length === subscriptions, {
    timeoutMs: 15_000,
    what: 'the bridge connected and subscribed',
  })
}

describe('MQTT bridge (real mosquitto)', { skip: mosquittoSkip, timeout: 120_000 }, () => {
  it('MQTT → nodus: a device’s message reaches a nodus subscriber on another node, with its MQTT topic', async () => {
    const m = await broker()
    const a = await peer({ mqttUrl: m.url, mqttMappings: ['in:sensors/#=sensors'] })
    const b = await peer({})
    await connectAll([a, b])
    const got = collect(b.messaging.subscribe('sensors'))
    await waitForSubscribers([a], [b], 'sensors')
    await bridgeReady(a, 1)
    assert.deepEqual(status(a).subscribed, ['$share/nodus/sensors/#'])
    const device = await mqttClient(m.url)
    await device.client.publishAsync('sensors/kitchen/temp', '21.5', { qos: 1 })
    await device.client.publishAsync('other/topic', 'not mapped', { qos: 1 })
    await device.client.publishAsync('sensors/hall/temp', '19.0', { qos: 1 })
    await waitFor(() => got.length >= 2, { timeoutMs: 10_000, what: 'two messages on nodus' })
    assert.deepEqual(
      got.map((x) => [x.topic, x.mqttTopic, x.fromMqtt, text(x), x.publisher]),
      [
        ['sensors', 'sensors/kitchen/temp', true, '21.5', a.peerId],
        ['sensors', 'sensors/hall/temp', true, '19.0', a.peerId],
      ],
    )
    assert.equal(await counter(a.metrics, 'nodus_messaging_mqtt_bridged_total', { direction: 'in' }), 2)
    assert.equal(await counter(a.metrics, 'nodus_messaging_mqtt_connected'), 1)
  })

  it('nodus → MQTT: a nodus publish arrives at an MQTT subscriber on the right topic, marked by the bridge', async () => {
    const m = await broker()
    const a = await peer({ mqttUrl: m.url, mqttMappings: ['out:lamp/cmd=lamp', 'out:sensors/+/set=sensors'] })
    const b = await peer({})
    await connectAll([a, b])
    const observer = await mqttClient(m.url)
    await observer.client.subscribeAsync('#', { qos: 1 })
    await waitForSubscribers([b], [a], 'lamp')
    await waitForSubscribers([b], [a], 'sensors')
    await waitFor(() => status(a).connected, { timeoutMs: 15_000, what: 'the bridge connected' })
    b.messaging.publish('lamp', new TextEncoder().encode('on'))
    b.messaging.publish('sensors', new TextEncoder().encode('22'), { mqttTopic: 'sensors/kitchen/set' })
    // No MQTT topic for a wildcard mapping, and one its filter does not match: not exported.
    b.messaging.publish('sensors', new TextEncoder().encode('x'))
    b.messaging.publish('sensors', new TextEncoder().encode('y'), { mqttTopic: 'elsewhere/set' })
    await waitFor(() => observer.got.length >= 2, { timeoutMs: 10_000, what: 'two messages on MQTT' })
    await waitFor(
      async () =>
        (await counter(a.metrics, 'nodus_messaging_mqtt_dropped_total', { reason: 'no_mqtt_topic' })) === 2,
      { timeoutMs: 10_000, what: 'the two unmapped messages counted' },
    )
    assert.deepEqual(observer.got.map((x) => [x.topic, x.payload, x.bridge]).sort(), [
      ['lamp/cmd', 'on', a.peerId],
      ['sensors/kitchen/set', '22', a.peerId],
    ])
    assert.equal(await counter(a.metrics, 'nodus_messaging_mqtt_bridged_total', { direction: 'out' }), 2)
  })

  it('two nodes bridging both ways to one broker: each message once on MQTT and once per nodus subscriber', async () => {
    const m = await broker()
    const [ka, kb] = [await generateKeyPair('Ed25519'), await generateKeyPair('Ed25519')]
    const [ida, idb] = [peerIdFromPrivateKey(ka).toString(), peerIdFromPrivateKey(kb).toString()]
    const both = { mqttUrl: m.url, mqttMappings: ['both:sensors/#=sensors'] }
    const a = await peer({ ...both, mqttPeers: [idb] }, ka)
    const b = await peer({ ...both, mqttPeers: [ida] }, kb)
    await connectAll([a, b])
    const gotA = collect(a.messaging.subscribe('sensors'))
    const gotB = collect(b.messaging.subscribe('sensors'))
    const observer = await mqttClient(m.url)
    await observer.client.subscribeAsync('sensors/#', { qos: 1 })
    await waitForSubscribers([a, b], [a, b], 'sensors')
    await Promise.all([bridgeReady(a, 1), bridgeReady(b, 1)])
    // Each bridge sees the other sharing the exports (connected to the broker and to it).
    await waitFor(() => status(a).peers.includes(idb) && status(b).peers.includes(ida), {
      timeoutMs: 10_000,
      what: 'the bridges to see each other',
    })
    const device = await mqttClient(m.url)
    const N = 20
    const M = 20
    for (let i = 0; i < N; i++) await device.client.publishAsync(`sensors/device/${i}`, `d${i}`, { qos: 1 })
    for (let i = 0; i < M; i++) {
      a.messaging.publish('sensors', new TextEncoder().encode(`a${i}`), { mqttTopic: `sensors/app/a${i}` })
      b.messaging.publish('sensors', new TextEncoder().encode(`b${i}`), { mqttTopic: `sensors/app/b${i}` })
    }
    const total = N + 2 * M
    const sum = async (name: string, labels: Record<string, string>) =>
      (await counter(a.metrics, name, labels)) + (await counter(b.metrics, name, labels))
    await waitFor(
      async () =>
        observer.got.length >= total &&
        gotA.length >= total &&
        gotB.length >= total &&
        // Every export came back once through the shared subscription and was refused (a loop stopped),
        (await sum('nodus_messaging_mqtt_dropped_total', { reason: 'loop' })) >= 2 * M &&
        // and each bridge saw each imported message on nodus and did not send it back.
        (await sum('nodus_messaging_mqtt_dropped_total', { reason: 'from_mqtt' })) >= 2 * N,
      { timeoutMs: 20_000, what: 'every message on both sides' },
    )
    // A fence: once it is through, anything duplicated before it would have arrived too.
    await device.client.publishAsync('sensors/fence', 'fence', { qos: 1 })
    const fenced = (xs: { payload?: string }[] | PubsubMessage[]) =>
      (xs as (PubsubMessage | MqttReceived)[]).some((x) => ('data' in x ? text(x) : x.payload) === 'fence')
    await waitFor(() => fenced(observer.got) && fenced(gotA) && fenced(gotB), {
      timeoutMs: 10_000,
      what: 'the fence',
    })
    const expected = [
      ...Array.from({ length: N }, (_, i) => `sensors/device/${i} d${i}`),
      ...Array.from({ length: M }, (_, i) => `sensors/app/a${i} a${i}`),
      ...Array.from({ length: M }, (_, i) => `sensors/app/b${i} b${i}`),
      'sensors/fence fence',
    ].sort()
    assert.deepEqual(observer.got.map((x) => `${x.topic} ${x.payload}`).sort(), expected, 'once each on MQTT')
    for (const got of [gotA, gotB])
      assert.deepEqual(got.map((x) => `${x.mqttTopic} ${text(x)}`).sort(), expected, 'once each on nodus')
    assert.equal(await sum('nodus_messaging_mqtt_bridged_total', { direction: 'in' }), N + 1)
    assert.equal(await sum('nodus_messaging_mqtt_bridged_total', { direction: 'out' }), 2 * M)
    assert.equal(await sum('nodus_messaging_mqtt_dropped_total', { reason: 'loop' }), 2 * M)
    // Loop prevention at work is not a loss.
    assert.equal(status(a).dropped + status(b).dropped, 0)
    // Rendezvous hashing shared the exports between the two bridges.
    for (const p of [a, b])
      assert.ok((await counter(p.metrics, 'nodus_messaging_mqtt_bridged_total', { direction: 'out' })) > 0)
  })

  it('broker down at start: the node runs, the bridge queues, then connects when the broker comes up and delivers', async () => {
    const m = await broker(false)
    // A persistent session for the observer, made before the broker goes away, so it gets what the
    // bridge publishes while it is itself not yet back.
    await m.start()
    const first = await connectAsync(m.url, {
      protocolVersion: 5,
      clientId: 'observer',
      clean: false,
      properties: { sessionExpiryInterval: 600 },
    })
    await first.subscribeAsync('lamp/#', { qos: 1 })
    await first.endAsync()
    await m.stop()

    const a = await peer({ mqttUrl: m.url, mqttMappings: ['out:lamp/cmd=lamp', 'in:sensors/#=sensors'] })
    const got = collect(a.messaging.subscribe('sensors'))
    a.messaging.publish('lamp', new TextEncoder().encode('on'))
    await waitFor(() => status(a).queued === 1, { timeoutMs: 10_000, what: 'the message queued' })
    assert.equal(status(a).connected, false)
    assert.equal(await counter(a.metrics, 'nodus_messaging_mqtt_connected'), 0)
    assert.equal(await counter(a.metrics, 'nodus_messaging_mqtt_queued_messages'), 1)

    await m.start()
    await bridgeReady(a, 1)
    await waitFor(() => status(a).queued === 0, { timeoutMs: 10_000, what: 'the queue sent' })
    const observer = await mqttClient(m.url, { clientId: 'observer', clean: false })
    await waitFor(() => observer.got.length === 1, { timeoutMs: 10_000, what: 'the queued message on MQTT' })
    assert.deepEqual(observer.got[0], { topic: 'lamp/cmd', payload: 'on', bridge: a.peerId })
    const device = await mqttClient(m.url)
    await device.client.publishAsync('sensors/late', 'hello', { qos: 1 })
    await waitFor(() => got.length === 1, { timeoutMs: 10_000, what: 'the device message on nodus' })
    assert.equal(got[0]?.mqttTopic, 'sensors/late')
    assert.equal(await counter(a.metrics, 'nodus_messaging_mqtt_connected'), 1)
  })

  it('a kept session: a QoS 1 message redelivered (DUP) after a lost PUBACK is not imported twice', async () => {
    const m = await broker()
    const proxy = await TcpProxy.start(m.port)
    cleanups.push(() => proxy.close())
    const a = await peer({
      mqttUrl: `mqtt://127.0.0.1:${proxy.port}`,
      mqttMappings: ['in:s/#=s'],
      mqttSessionExpiryMs: 60_000,
    })
    const got = collect(a.messaging.subscribe('s'))
    await bridgeReady(a, 1)
    const device = await mqttClient(m.url)
    // The bridge receives and imports the message, but its PUBACK never reaches the broker ...
    proxy.dropUpstream = true
    await device.client.publishAsync('s/x', 'once', { qos: 1 })
    await waitFor(() => got.length === 1, { timeoutMs: 10_000, what: 'the import' })
    // ... so when the bridge reconnects to its session, the broker sends it again, DUP set.
    proxy.cutAll()
    proxy.dropUpstream = false
    await waitFor(
      async () =>
        (await counter(a.metrics, 'nodus_messaging_mqtt_dropped_total', { reason: 'duplicate' })) === 1,
      { timeoutMs: 10_000, what: 'the redelivery recognised' },
    )
    await device.client.publishAsync('s/fence', 'fence', { qos: 1 })
    await waitFor(() => got.some((x) => text(x) === 'fence'), { timeoutMs: 10_000, what: 'the fence' })
    assert.deepEqual(
      got.map((x) => `${x.mqttTopic} ${text(x)}`),
      ['s/x once', 's/fence fence'],
    )
  })

  it('gives the broker credentials from the URL or the keys, and never shows the password', async () => {
    const m = await Mosquitto.start({ bridge: 's3cret:x' })
    cleanups.push(() => m.close())
    const inUrl = await peer({
      mqttUrl: `mqtt://bridge:${encodeURIComponent('s3cret:x')}@127.0.0.1:${m.port}`,
      mqttMappings: ['in:a/#=a'],
    })
    const inKeys = await peer({
      mqttUrl: m.url,
      mqttUsername: 'bridge',
      mqttPassword: 's3cret:x',
      mqttMappings: ['in:a/#=a'],
    })
    await Promise.all([bridgeReady(inUrl, 1), bridgeReady(inKeys, 1)])
    for (const p of [inUrl, inKeys]) {
      assert.equal(status(p).broker, m.url)
      assert.doesNotMatch(JSON.stringify(p.messaging.mqtt()), /s3cret/)
    }
  })

  it('drops an MQTT payload over messaging.maxMessageBytes (counted) and carries one at the bound', async () => {
    const m = await broker()
    const a = await peer({ mqttUrl: m.url, mqttMappings: ['in:big/#=big'], maxMessageBytes: 1024 })
    const got = collect(a.messaging.subscribe('big'))
    await bridgeReady(a, 1)
    const device = await mqttClient(m.url)
    await device.client.publishAsync('big/one', Buffer.alloc(1025, 1), { qos: 1 })
    await device.client.publishAsync('big/two', Buffer.alloc(1024, 2), { qos: 1 })
    await waitFor(() => got.length === 1, { timeoutMs: 10_000, what: 'the message at the bound' })
    assert.equal(got[0]?.mqttTopic, 'big/two')
    assert.equal(got[0]?.data.byteLength, 1024)
    assert.equal(await counter(a.metrics, 'nodus_messaging_mqtt_dropped_total', { reason: 'too_large' }), 1)
    assert.equal(status(a).dropped, 1)
  })
})

describe('MQTT bridge without a broker', () => {
  it('a node whose broker is unreachable runs, queues within its bound, and stops at once, dropping what waits', async () => {
    const m = await Mosquitto.create() // a free port with nothing listening
    cleanups.push(() => m.close())
    const a = await startPubsubPeer({
      ...FAST,
      mqttUrl: m.url,
      mqttMappings: ['out:t/x=t'],
      mqttQueueBytes: 64 * 1024,
    })
    const big = new Uint8Array(20_000)
    for (let i = 0; i < 4; i++) a.messaging.publish('t', big)
    await waitFor(
      async () =>
        (await counter(a.metrics, 'nodus_messaging_mqtt_dropped_total', { reason: 'queue_full' })) === 1,
      { timeoutMs: 10_000, what: 'the fourth message over the queue bound' },
    )
    assert.equal(status(a).queued, 3)
    assert.equal(status(a).connected, false)
    await a.stop()
    assert.equal(await counter(a.metrics, 'nodus_messaging_mqtt_dropped_total', { reason: 'stopped' }), 3)
    assert.equal(await counter(a.metrics, 'nodus_messaging_mqtt_queued_messages'), 0)
  })
})
