/**
 * The HTTP routes of direct messages, every one behind the API token (a node's inbox is private):
 *
 * - `POST /messages/:peer`: seal the body (application/octet-stream or text/plain, at most
 *   `messaging.directMaxBodyBytes`) to `peer` and deliver it (online, else through its mailbox);
 *   answers the {@link SendReceipt}.
 * - `GET /messages?after=ID&limit=N`: inbox messages in arrival order after id `after`, at most `limit`
 *   (default 100, at most 1000), each `{ id, from, sentAtMs, receivedAtMs, via, body }` with `body` in
 *   base64.
 * - `GET /messages/stream`: server-sent events, one `message` event (the same JSON) per message stored
 *   in the inbox from now on; a client whose socket holds more than 1 MiB unsent gets a `closed` event
 *   `{ "reason": "slow" }` and the response ends.
 * - `DELETE /messages/:id`: delete an inbox message; `{ deleted }`.
 */
import type { ApiRoutes } from '../api/index.ts'
import type { DirectMessaging } from './direct.ts'
import type { InboxMessage } from './direct-store.ts'
import { messageBody } from './routes.ts'

/** What the direct message routes use. */
export interface DirectRoutesDeps {
  direct: Pick<DirectMessaging, 'send' | 'inbox' | 'deleteMessage' | 'onMessage'>
  /** Largest body, bytes (`messaging.directMaxBodyBytes`). */
  maxBodyBytes: number
}

/** Unsent bytes above which an SSE client is dropped as slow. */
const SSE_MAX_BUFFERED_BYTES = 1024 * 1024

const Message = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    from: { type: 'string' },
    sentAtMs: { type: 'integer' },
    receivedAtMs: { type: 'integer' },
    via: { type: 'string', enum: ['online', 'mailbox'] },
    body: { type: 'string', description: 'base64' },
  },
  required: ['id', 'from', 'sentAtMs', 'receivedAtMs', 'via', 'body'],
} as const

function asJson(m: InboxMessage): Record<string, unknown> {
  return {
    id: m.id,
    from: m.from,
    sentAtMs: m.sentAtMs,
    receivedAtMs: m.receivedAtMs,
    via: m.via,
    body: Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength).toString('base64'),
  }
}

/** The direct message routes, as a plugin for createApiServer. */
export function directRoutes(deps: DirectRoutesDeps): ApiRoutes {
  const { direct, maxBodyBytes } = deps
  return (r, ctx) => {
    r.post<{ Params: { peer: string } }>(
      '/messages/:peer',
      {
        ...ctx.unmetered,
        schema: {
          tags: ['messages'],
          summary:
            'Seal the body (application/octet-stream or text/plain, at most messaging.directMaxBodyBytes) to a peer and deliver it: online, else at its mailbox keepers',
          security: [{ bearer: [] }],
          params: {
            type: 'object',
            properties: { peer: { type: 'string', minLength: 1, maxLength: 128 } },
            required: ['peer'],
          },
          response: {
            200: {
              type: 'object',
              properties: {
                id: { type: 'string' },
                to: { type: 'string' },
                via: { type: 'string', enum: ['online', 'mailbox'] },
                keepers: { type: 'integer' },
              },
              required: ['id', 'to', 'via', 'keepers'],
            },
          },
        },
      },
      async (req) => {
        const body = await messageBody(req, maxBodyBytes)
        return direct.send(req.params.peer, body)
      },
    )
    r.get<{ Querystring: { after?: string; limit?: number } }>(
      '/messages',
      {
        ...ctx.mutating,
        schema: {
          tags: ['messages'],
          summary: 'Inbox messages in arrival order (after the id `after`, at most `limit`)',
          security: [{ bearer: [] }],
          querystring: {
            type: 'object',
            properties: {
              after: { type: 'string', pattern: '^[0-9a-f]{32}$' },
              limit: { type: 'integer', minimum: 1, maximum: 1000 },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: { messages: { type: 'array', items: Message } },
              required: ['messages'],
            },
          },
        },
      },
      async (req) => ({
        messages: direct.inbox({ after: req.query.after, limit: req.query.limit }).map(asJson),
      }),
    )
    r.get(
      '/messages/stream',
      {
        ...ctx.mutating,
        schema: {
          tags: ['messages'],
          summary:
            'Server-sent events: each message stored in the inbox from now on (event `message`, the JSON of GET /messages)',
          security: [{ bearer: [] }],
          produces: ['text/event-stream'],
        },
      },
      async (req, reply) => {
        const res = reply.raw
        reply.hijack()
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
        })
        res.write(': following\n\n')
        const keepalive = setInterval(() => res.write(': keep-alive\n\n'), 15_000)
        keepalive.unref()
        let off = (): void => {}
        const end = (): void => {
          clearInterval(keepalive)
          off()
          res.end()
        }
        off = direct.onMessage((m) => {
          if (res.destroyed) return end()
          if (res.writableLength > SSE_MAX_BUFFERED_BYTES) {
            res.write(`event: closed\ndata: ${JSON.stringify({ reason: 'slow' })}\n\n`)
            return end()
          }
          res.write(`event: message\nid: ${m.id}\ndata: ${JSON.stringify(asJson(m))}\n\n`)
        })
        req.raw.once('close', end)
        res.once('close', end)
        ctx.logger.debug({}, 'inbox stream opened')
      },
    )
    r.delete<{ Params: { id: string } }>(
      '/messages/:id',
      {
        ...ctx.mutating,
        schema: {
          tags: ['messages'],
          summary: 'Delete an inbox message',
          security: [{ bearer: [] }],
          params: {
            type: 'object',
            properties: { id: { type: 'string', pattern: '^[0-9a-f]{32}$' } },
            required: ['id'],
          },
          response: {
            200: { type: 'object', properties: { deleted: { type: 'boolean' } }, required: ['deleted'] },
          },
        },
      },
      async (req) => ({ deleted: await direct.deleteMessage(req.params.id) }),
    )
  }
}
