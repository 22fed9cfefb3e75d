/**
 * The CLI's pub/sub commands against a node's HTTP API: `nodus pub TOPIC MESSAGE` (POST
 * /pubsub/:topic) and `nodus sub TOPIC` (GET /pubsub/:topic, server-sent events; one line per
 * message: its text, or with `--json` the event's JSON object).
 */
import { isNodusError, NodusError } from '../common/errors.ts'
import { type ApiTarget, connectionError } from './client.ts'
import { followEvents } from './sse.ts'

/** One message as `GET /pubsub/:topic` sends it (`data` in base64). */
export interface SubscribedMessage {
  topic: string
  publisher: string
  seq: number
  publishedAtMs: number
  receivedAtMs: number
  data: string
}

/**
 * Publish `data` to `topic` through the node's API.
 * @returns the message's id: `{ topic, publisher, seq }`
 * @throws the node's NodusError (`TOPIC_INVALID`, `MESSAGE_TOO_LARGE`, `QUEUE_FULL`, `UNAUTHORIZED`, …) or `NODE_UNREACHABLE`
 */
export async function publishMessage(
  api: ApiTarget,
  topic: string,
  data: Uint8Array,
  signal?: AbortSignal,
): Promise<{ topic: string; publisher: string; seq: number }> {
  const path = `/pubsub/${encodeURIComponent(topic)}`
  try {
    const res = await fetch(`${api.url}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        ...(api.token === undefined ? {} : { authorization: `Bearer ${api.token}` }),
      },
      body: data,
      ...(signal === undefined ? {} : { signal }),
    })
    const text = await res.text()
    if (!res.ok) {
      const body = JSON.parse(text || '{}') as {
        code?: string
        message?: string
        details?: Record<string, unknown>
      }
      throw new NodusError(
        (body.code ?? 'PROTOCOL_ERROR') as NodusError['code'],
        body.message ?? `HTTP ${res.status}`,
        {
          details: { status: res.status, ...(body.details ?? {}) },
        },
      )
    }
    return JSON.parse(text) as { topic: string; publisher: string; seq: number }
  } catch (err) {
    if (isNodusError(err)) throw err
    throw connectionError(
      err,
      api.url,
      `publish to ${topic}`,
      'the message may or may not have been published',
      signal,
    )
  }
}

/**
 * Follow `topic` through the node's SSE stream, calling `onMessage` for each message until `signal`
 * aborts or the node ends the stream.
 * @returns why the stream ended: `aborted`, `slow` (this client fell behind and was dropped), `stopped`
 *   (the node stopped) or `closed`
 */
export async function followTopic(
  api: ApiTarget,
  topic: string,
  onMessage: (m: SubscribedMessage) => void,
  signal?: AbortSignal,
): Promise<'aborted' | 'slow' | 'stopped' | 'closed'> {
  let ended: 'slow' | 'stopped' | 'closed' = 'closed'
  const r = await followEvents(
    api,
    `/pubsub/${encodeURIComponent(topic)}`,
    api.token === undefined ? {} : { authorization: `Bearer ${api.token}` },
    (name, data) => {
      if (name === 'message') onMessage(JSON.parse(data) as SubscribedMessage)
      else if (name === 'closed') ended = (JSON.parse(data) as { reason: 'slow' | 'stopped' }).reason
    },
    `subscription to ${topic}`,
    signal,
  )
  return r === 'aborted' ? 'aborted' : ended
}
