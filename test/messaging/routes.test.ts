/**
 * The messaging routes (src/messaging/routes.ts) through `app.inject()` with a fake messaging
 * service, and `nodus pub` / `nodus sub` end to end against two real nodes.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { NodusError } from '../../src/common/errors.ts'
import {
  type MqttBridgeStatus,
  messagingRoutes,
  type PublishOptions,
  type PublishReceipt,
  Subscription,
} from '../../src/messaging/index.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { AUTH, errorOf, routesApi } from '../utils/api-node.ts'
import { startNodes } from '../utils/nodes.ts'
import { CLI, runCli } from '../utils/run-cli.ts'
import { waitFor } from '../utils/wait.ts'

const published: { topic: string; data: Uint8Array; options?: PublishOptions | undefined }[] = []
let opened: Subscription | undefined
let bridge: MqttBridgeStatus | undefined
const fake = {
  publish(topic: string, data: Uint8Array, options?: PublishOptions): PublishReceipt {
    if (topic === 'bad\u0001') throw new NodusError('TOPIC_INVALID', 'control character')
    published.push({ topic, data: new Uint8Array(data), options })
    return { topic, publisher: 'me', seq: published.length }
  },
  subscribe(topic: string): Subscription {
    opened = new Subscription(topic, 4, 'close', { dropped: () => {}, closed: () => {} })
    return opened
  },
  topics: () => [{ topic: 'x', subscriptions: 1, peers: 2 }],
  mqtt: () => bridge,
}

describe('messaging routes', async () => {
  const server = await routesApi([messagingRoutes({ messaging: fake, maxMessageBytes: 100 })])
  after(() => server.close())

  it('POST /pubsub/:topic needs the token and publishes the body as it is', async () => {
    const denied = await server.app.inject({
      method: 'POST',
      url: '/pubsub/t',
      payload: 'x',
      headers: { 'content-type': 'text/plain' },
    })
    assert.equal(denied.statusCode, 401)
    const bytes = Buffer.from([0, 1, 2, 255])
    const res = await server.app.inject({
      method: 'POST',
      url: '/pubsub/t%2Fsub',
      payload: bytes,
      headers: { ...AUTH, 'content-type': 'application/octet-stream' },
    })
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(res.json(), { topic: 't/sub', publisher: 'me', seq: 1 })
    assert.deepEqual([...(published[0]?.data ?? [])], [0, 1, 2, 255])
    const text = await server.app.inject({
      method: 'POST',
      url: '/pubsub/t',
      payload: 'héllo',
      headers: { ...AUTH, 'content-type': 'text/plain' },
    })
    assert.equal(text.statusCode, 200)
    assert.equal(new TextDecoder().decode(published[1]?.data), 'héllo')
  })

  it('POST /pubsub/:topic?mqttTopic= publishes with the MQTT topic; GET /pubsub shows the MQTT bridge', async () => {
    const res = await server.app.inject({
      method: 'POST',
      url: `/pubsub/lamp?mqttTopic=${encodeURIComponent('lamp/kitchen/cmd')}`,
      payload: 'on',
      headers: { ...AUTH, 'content-type': 'text/plain' },
    })
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(published.at(-1)?.options, { mqttTopic: 'lamp/kitchen/cmd' })
    bridge = {
      broker: 'mqtt://127.0.0.1:1883',
      connected: true,
      mappings: ['both:lamp/#=lamp'],
      subscribed: ['$share/nodus/lamp/#'],
      bridged: { in: 3, out: 1 },
      dropped: 2,
      queued: 0,
      peers: [],
    }
    try {
      assert.deepEqual((await server.app.inject({ method: 'GET', url: '/pubsub' })).json(), {
        topics: [{ topic: 'x', subscriptions: 1, peers: 2 }],
        mqtt: bridge,
      })
    } finally {
      bridge = undefined
    }
  })

  it('refuses a body over messaging.maxMessageBytes (413), a bad topic (400), a JSON body (400)', async () => {
    const big = await server.app.inject({
      method: 'POST',
      url: '/pubsub/t',
      payload: Buffer.alloc(101),
      headers: { ...AUTH, 'content-type': 'application/octet-stream' },
    })
    assert.equal(big.statusCode, 413)
    assert.equal(errorOf(big.body).code, 'MESSAGE_TOO_LARGE')
    const bad = await server.app.inject({
      method: 'POST',
      url: '/pubsub/bad%01',
      payload: 'x',
      headers: { ...AUTH, 'content-type': 'text/plain' },
    })
    assert.equal(bad.statusCode, 400)
    assert.equal(errorOf(bad.body).code, 'TOPIC_INVALID')
    const json = await server.app.inject({
      method: 'POST',
      url: '/pubsub/t',
      payload: { a: 1 },
      headers: AUTH,
    })
    assert.equal(json.statusCode, 400)
  })

  it('GET /pubsub lists topics; GET /pubsub/:topic streams each message as an SSE event, then why it ended', async () => {
    assert.deepEqual((await server.app.inject({ method: 'GET', url: '/pubsub' })).json(), {
      topics: [{ topic: 'x', subscriptions: 1, peers: 2 }],
    })
    const denied = await server.app.inject({ method: 'GET', url: '/pubsub/news' })
    assert.equal(denied.statusCode, 401, 'a subscription needs the token')
    const subscribedWithoutToken = opened
    assert.equal(subscribedWithoutToken, undefined, 'nothing subscribed without the token')
    const response = server.app.inject({ method: 'GET', url: '/pubsub/news', headers: AUTH })
    await waitFor(() => opened?.topic === 'news', { timeoutMs: 5000, what: 'the subscription' })
    const sub = opened as Subscription
    for (const [i, text] of ['one', 'two'].entries())
      sub.push({
        topic: 'news',
        publisher: 'p',
        seq: 7 + i,
        data: new TextEncoder().encode(text),
        publishedAtMs: 1,
        receivedAtMs: 2,
      })
    await new Promise((r) => setImmediate(r))
    sub.close('stopped')
    const res = await response
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['content-type']), /^text\/event-stream/)
    const events = res.body.split('\n\n').filter((e) => e.startsWith('event: '))
    assert.equal(events.length, 3)
    assert.match(events[0] as string, /^event: message\nid: p:7\ndata: /)
    const first = JSON.parse((events[0] as string).split('data: ')[1] as string)
    assert.equal(Buffer.from(first.data, 'base64').toString(), 'one')
    assert.equal(events[2], 'event: closed\ndata: {"reason":"stopped"}')
  })
})

describe('nodus pub / nodus sub', () => {
  let dir = ''
  let nodes: NodusNode[] = []
  after(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()))
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })

  it('a message published with `nodus pub` on one node is printed by `nodus sub` on another', async () => {
    dir = await mkdtemp(join(tmpdir(), 'nodus-pubsub-cli-'))
    nodes = await startNodes(dir, 2, {})
    const [a, b] = nodes as [NodusNode, NodusNode]
    const sub = spawn(process.execPath, [CLI, 'sub', 'chat', '--json', '--data-dir', join(dir, 'n1')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    sub.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    try {
      await waitFor(() => b.messaging.topics().some((t) => t.topic === 'chat'), {
        timeoutMs: 30_000,
        what: 'the sub',
      })
      await waitFor(
        () =>
          a.messaging.topics().length === 0 &&
          (a.libp2p.services.pubsub?.getSubscribers('/nodus/pubsub/1/chat').length ?? 0) > 0,
        {
          timeoutMs: 10_000,
          what: 'node 0 seeing the subscriber',
        },
      )
      const pub = await runCli(['pub', 'chat', 'hello there', '--json', '--data-dir', join(dir, 'n0')])
      assert.equal(pub.code, 0, pub.stderr)
      const receipt = JSON.parse(pub.stdout) as { topic: string; publisher: string; seq: number }
      assert.equal(receipt.publisher, a.peerId)
      await waitFor(() => stdout.includes('\n'), { timeoutMs: 10_000, what: 'the printed message' })
      const m = JSON.parse(stdout.split('\n')[0] as string)
      assert.equal(Buffer.from(m.data, 'base64').toString(), 'hello there')
      assert.equal(m.seq, receipt.seq)
      assert.equal(m.publisher, a.peerId)
    } finally {
      sub.kill('SIGINT')
    }
    const code = await new Promise((r) => sub.once('exit', r))
    assert.equal(code, 0)
  })
})
