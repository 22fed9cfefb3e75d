/**
 * The CLI's pub/sub commands against a node's HTTP API: `nodus pub TOPIC MESSAGE` (POST
 * /pubsub/:topic) and `nodus sub TOPIC` (GET /pubsub/:topic, server-sent events; one line per
 * message: its text, or with `--json` the event's JSON object).
 */
import { isNodusError, NodusError } from '../common/errors.ts'
import { type ApiTarget, connectionError } from './client.ts'

// node:http through getBuiltinModule, not `import` (see client.ts: an ES import loads undici).
const { request: httpRequest } = process.getBuiltinModule('node:http')
const { request: httpsRequest } = process.getBuiltinModule('node:https')

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
  const url = new URL(`/pubsub/${encodeURIComponent(topic)}`, api.url)
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest
  return await new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          text += c
        })
        res.on('end', () => {
          const body = JSON.parse(text || '{}') as { code?: string; message?: string }
          reject(
            new NodusError(
              (body.code ?? 'PROTOCOL_ERROR') as NodusError['code'],
              body.message ?? `HTTP ${res.statusCode}`,
            ),
          )
        })
        return
      }
      let buffered = ''
      let ended: 'slow' | 'stopped' | 'closed' = 'closed'
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buffered += chunk
        for (let cut = buffered.indexOf('\n\n'); cut >= 0; cut = buffered.indexOf('\n\n')) {
          const event = buffered.slice(0, cut)
          buffered = buffered.slice(cut + 2)
          let name = 'message'
          let data = ''
          for (const line of event.split('\n')) {
            if (line.startsWith('event: ')) name = line.slice(7)
            else if (line.startsWith('data: ')) data += line.slice(6)
          }
          if (data === '') continue
          if (name === 'message') onMessage(JSON.parse(data) as SubscribedMessage)
          else if (name === 'closed') ended = (JSON.parse(data) as { reason: 'slow' | 'stopped' }).reason
        }
      })
      res.on('end', () => resolve(ended))
      res.on('error', (err) => (signal?.aborted === true ? resolve('aborted') : reject(err)))
    })
    req.on('error', (err) => {
      if (signal?.aborted === true) resolve('aborted')
      else reject(connectionError(err, api.url, `subscription to ${topic}`, 'subscribe again', signal))
    })
    signal?.addEventListener('abort', () => req.destroy(), { once: true })
    req.end()
  })
}
