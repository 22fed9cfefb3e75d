/**
 * The messaging area's HTTP routes: `POST /pubsub/:topic` (publish the body; needs the token; an MQTT
 * topic for the bridges in `?mqttTopic=`), `GET /pubsub/:topic` (a server-sent-event stream of the
 * topic's messages) and `GET /pubsub` (the topics this node subscribes to, and the MQTT bridge's state).
 *
 * The SSE stream (text/event-stream, WHATWG HTML "Server-sent events"): one `message` event per
 * message, `id: <publisher>:<seq>`, `data:` a JSON object `{ topic, publisher, seq, publishedAtMs,
 * receivedAtMs, data }` with `data` in base64, plus `mqttTopic` and `fromMqtt` when the message carries
 * them (docs/PROTOCOLS.md, "MQTT bridge"). Each client reads through its own subscription, a queue
 * of `messaging.subscriberQueueMessages`; a client that falls that far behind (its socket not
 * draining) gets a `closed` event `{ "reason": "slow" }` and the response ends
 * (`nodus_messaging_dropped_total{reason="slow_subscriber"}`). A comment line every 15 s keeps idle
 * connections open.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ApiRoutes } from '../api/index.ts'
import { NodusError } from '../common/errors.ts'
import type { Messaging } from './area.ts'
import type { PubsubMessage } from './subscription.ts'

/** What the messaging routes use. */
export interface MessagingRoutesDeps {
  messaging: Pick<Messaging, 'publish' | 'subscribe' | 'topics'> & Partial<Pick<Messaging, 'mqtt'>>
  /** Largest message body, bytes (`messaging.maxMessageBytes`). */
  maxMessageBytes: number
}

/** Between keep-alive comments on an idle SSE stream, ms. */
const SSE_KEEPALIVE_MS = 15_000

const TopicParams = {
  type: 'object',
  properties: { topic: { type: 'string', minLength: 1, maxLength: 4096 } },
  required: ['topic'],
} as const

const Receipt = {
  type: 'object',
  properties: { topic: { type: 'string' }, publisher: { type: 'string' }, seq: { type: 'integer' } },
  required: ['topic', 'publisher', 'seq'],
} as const

const PublishQuery = {
  type: 'object',
  properties: { mqttTopic: { type: 'string', minLength: 1, maxLength: 4096 } },
  additionalProperties: false,
} as const

const MqttStatus = {
  type: 'object',
  description: 'the MQTT bridge, when messaging.mqttUrl is set',
  properties: {
    broker: { type: 'string' },
    connected: { type: 'boolean' },
    mappings: { type: 'array', items: { type: 'string' } },
    subscribed: { type: 'array', items: { type: 'string' } },
    bridged: {
      type: 'object',
      properties: { in: { type: 'integer' }, out: { type: 'integer' } },
      required: ['in', 'out'],
    },
    dropped: { type: 'integer' },
    queued: { type: 'integer' },
    peers: { type: 'array', items: { type: 'string' } },
  },
  required: ['broker', 'connected', 'mappings', 'subscribed', 'bridged', 'dropped', 'queued', 'peers'],
} as const

const TopicList = {
  type: 'object',
  properties: {
    mqtt: MqttStatus,
    topics: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          topic: { type: 'string' },
          subscriptions: { type: 'integer' },
          peers: { type: 'integer' },
        },
        required: ['topic', 'subscriptions', 'peers'],
      },
    },
  },
  required: ['topics'],
} as const

/** The body of a publish: raw bytes (application/octet-stream) or UTF-8 text, at most `max` bytes. */
export async function messageBody(
  req: { headers: IncomingMessage['headers']; body: unknown },
  max: number,
): Promise<Uint8Array> {
  const tooLarge = (bytes: number): NodusError =>
    new NodusError(
      'MESSAGE_TOO_LARGE',
      `message of ${bytes} bytes is over messaging.maxMessageBytes (${max})`,
      {
        details: { bytes, maxMessageBytes: max },
      },
    )
  if (typeof req.body === 'string') {
    const bytes = Buffer.from(req.body, 'utf8')
    if (bytes.byteLength > max) throw tooLarge(bytes.byteLength)
    return bytes
  }
  const type = req.headers['content-type'] ?? ''
  if (!type.startsWith('application/octet-stream') || req.body === undefined || req.body === null)
    throw new NodusError('INVALID_ARGUMENT', 'send the message as application/octet-stream or text/plain')
  const declared = Number(req.headers['content-length'] ?? Number.NaN)
  if (declared > max) throw tooLarge(declared)
  const parts: Buffer[] = []
  let total = 0
  for await (const chunk of req.body as AsyncIterable<Buffer>) {
    total += chunk.byteLength
    if (total > max) throw tooLarge(total)
    parts.push(chunk)
  }
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, total)
}

/** One SSE event for `m`. */
function sseEvent(m: PubsubMessage): string {
  const data = JSON.stringify({
    topic: m.topic,
    publisher: m.publisher,
    seq: m.seq,
    publishedAtMs: m.publishedAtMs,
    receivedAtMs: m.receivedAtMs,
    data: Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength).toString('base64'),
    mqttTopic: m.mqttTopic,
    fromMqtt: m.fromMqtt,
  })
  return `event: message\nid: ${m.publisher}:${m.seq}\ndata: ${data}\n\n`
}

/** Resolves when `res` can take more (drain), or has closed. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.once('drain', done)
    res.once('close', done)
  })
}

/** The messaging routes, as a plugin for createApiServer. */
export function messagingRoutes(deps: MessagingRoutesDeps): ApiRoutes {
  const { messaging, maxMessageBytes } = deps
  return (r, ctx) => {
    r.get(
      '/pubsub',
      {
        schema: {
          tags: ['pubsub'],
          summary:
            'Topics this node subscribes to, with local subscriptions and subscribed peers; `mqtt`: the MQTT bridge (connected, broker, mappings, counts) when there is one',
          response: { 200: TopicList },
        },
      },
      async () => {
        const mqtt = messaging.mqtt?.()
        return mqtt === undefined ? { topics: messaging.topics() } : { topics: messaging.topics(), mqtt }
      },
    )
    r.post<{ Params: { topic: string }; Querystring: { mqttTopic?: string } }>(
      '/pubsub/:topic',
      {
        ...ctx.unmetered,
        schema: {
          tags: ['pubsub'],
          summary:
            'Publish the body (application/octet-stream or text/plain, at most messaging.maxMessageBytes) to a topic; it leaves in a batch within messaging.lingerMs. `mqttTopic`: the MQTT topic an MQTT bridge exporting the topic publishes it to',
          security: [{ bearer: [] }],
          params: TopicParams,
          querystring: PublishQuery,
          response: { 200: Receipt },
        },
      },
      async (req) => {
        const data = await messageBody(req, maxMessageBytes)
        const { mqttTopic } = req.query
        return mqttTopic === undefined
          ? messaging.publish(req.params.topic, data)
          : messaging.publish(req.params.topic, data, { mqttTopic })
      },
    )
    r.get<{ Params: { topic: string } }>(
      '/pubsub/:topic',
      {
        // A subscription joins the gossip topic and takes one of messaging.maxSubscriptions: only the
        // token holder may open one (an unauthenticated client could use up the slots).
        ...ctx.mutating,
        schema: {
          tags: ['pubsub'],
          summary:
            'Server-sent events: each message published to the topic from now on (event `message`, data JSON with base64 `data`); a client that falls messaging.subscriberQueueMessages behind is sent `closed` and dropped',
          security: [{ bearer: [] }],
          produces: ['text/event-stream'],
          params: TopicParams,
        },
      },
      async (req, reply) => {
        const sub = messaging.subscribe(req.params.topic)
        const res = reply.raw
        reply.hijack()
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
        })
        res.write(': subscribed\n\n')
        const keepalive = setInterval(() => res.write(': keep-alive\n\n'), SSE_KEEPALIVE_MS)
        keepalive.unref()
        req.raw.once('close', () => sub.close())
        res.once('close', () => sub.close())
        try {
          for await (const m of sub) {
            if (!res.write(sseEvent(m))) await drained(res)
            if (res.destroyed) break
          }
          if (sub.closedBecause === 'slow' || sub.closedBecause === 'stopped')
            res.write(`event: closed\ndata: ${JSON.stringify({ reason: sub.closedBecause })}\n\n`)
        } catch (err) {
          ctx.logger.debug({ err: (err as Error).message }, 'SSE stream ended')
        } finally {
          clearInterval(keepalive)
          sub.close()
          res.end()
        }
      },
    )
  }
}
