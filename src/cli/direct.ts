/**
 * The CLI's direct message commands against a node's HTTP API: `nodus send PEER MESSAGE` (POST
 * /messages/:peer) and `nodus inbox [--follow]` (GET /messages, then with `--follow` the server-sent
 * events of GET /messages/stream; one line per message: `FROM: TEXT`, or with `--json` its JSON
 * object). Every route needs the API token.
 */
import { isNodusError, NodusError } from '../common/errors.ts'
import { type ApiTarget, connectionError, getJson } from './client.ts'
import { followEvents } from './sse.ts'

/** One inbox message as the API sends it (`body` in base64). */
export interface InboxEntry {
  id: string
  from: string
  sentAtMs: number
  receivedAtMs: number
  via: 'online' | 'mailbox'
  body: string
}

/** What `POST /messages/:peer` answers. */
export interface SendAnswer {
  id: string
  to: string
  via: 'online' | 'mailbox'
  keepers: number
}

function auth(api: ApiTarget): Record<string, string> {
  return api.token === undefined ? {} : { authorization: `Bearer ${api.token}` }
}

/**
 * Send `body` to `peer` through the node's API.
 * @throws the node's NodusError (`KEY_NOT_FOUND`, `MAILBOX_UNAVAILABLE`, `MESSAGE_TOO_LARGE`, …) or `NODE_UNREACHABLE`
 */
export async function sendDirect(
  api: ApiTarget,
  peer: string,
  body: Uint8Array,
  signal?: AbortSignal,
): Promise<SendAnswer> {
  try {
    const res = await fetch(`${api.url}/messages/${encodeURIComponent(peer)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', ...auth(api) },
      body,
      ...(signal === undefined ? {} : { signal }),
    })
    const text = await res.text()
    if (!res.ok) {
      const e = JSON.parse(text || '{}') as {
        code?: string
        message?: string
        details?: Record<string, unknown>
      }
      throw new NodusError(
        (e.code ?? 'PROTOCOL_ERROR') as NodusError['code'],
        e.message ?? `HTTP ${res.status}`,
        {
          details: { status: res.status, ...(e.details ?? {}) },
        },
      )
    }
    return JSON.parse(text) as SendAnswer
  } catch (err) {
    if (isNodusError(err)) throw err
    throw connectionError(
      err,
      api.url,
      `send to ${peer}`,
      'the message may or may not have been sent',
      signal,
    )
  }
}

/** Every inbox message, in arrival order (pages of 1000). */
export async function listInbox(api: ApiTarget, signal?: AbortSignal): Promise<InboxEntry[]> {
  const all: InboxEntry[] = []
  let after: string | undefined
  for (;;) {
    const q = after === undefined ? '?limit=1000' : `?limit=1000&after=${after}`
    const page = await getJson<{ messages: InboxEntry[] }>(api, `/messages${q}`, signal)
    all.push(...page.messages)
    if (page.messages.length < 1000) return all
    after = page.messages.at(-1)?.id
  }
}

/**
 * Call `onMessage` for each message stored in the inbox from now on, until `signal` aborts or the node
 * ends the stream. @returns why it ended: `aborted`, `slow` or `closed`
 */
export async function followInbox(
  api: ApiTarget,
  onMessage: (m: InboxEntry) => void,
  signal?: AbortSignal,
): Promise<'aborted' | 'slow' | 'closed'> {
  let ended: 'slow' | 'closed' = 'closed'
  const how = await followEvents(
    api,
    '/messages/stream',
    auth(api),
    (name, data) => {
      if (name === 'message') onMessage(JSON.parse(data) as InboxEntry)
      else if (name === 'closed') ended = 'slow'
    },
    'inbox stream',
    signal,
  )
  return how === 'aborted' ? 'aborted' : ended
}
