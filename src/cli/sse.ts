/**
 * A server-sent-event client for the CLI (WHATWG HTML, "Server-sent events": events separated by a
 * blank line, `event:` and `data:` fields) over node:http, for the node's streaming routes.
 */
import { NodusError } from '../common/errors.ts'
import { type ApiTarget, connectionError } from './client.ts'

// node:http through getBuiltinModule, not `import` (see client.ts: an ES import loads undici).
const { request: httpRequest } = process.getBuiltinModule('node:http')
const { request: httpsRequest } = process.getBuiltinModule('node:https')

/**
 * GET `path` as an event stream and call `onEvent(name, data)` for each event with data (name
 * `message` when absent), until `signal` aborts or the node ends the stream.
 * @param what - names the stream in a connection error
 * @returns `aborted` or `ended`
 * @throws the node's NodusError for a non-200 answer; `NODE_UNREACHABLE` when it cannot connect
 */
export function followEvents(
  api: ApiTarget,
  path: string,
  headers: Record<string, string>,
  onEvent: (name: string, data: string) => void,
  what: string,
  signal?: AbortSignal,
): Promise<'aborted' | 'ended'> {
  const url = new URL(path, api.url)
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'GET', headers: { accept: 'text/event-stream', ...headers } },
      (res) => {
        res.setEncoding('utf8')
        if (res.statusCode !== 200) {
          let text = ''
          res.on('data', (c: string) => {
            text += c
          })
          res.on('end', () => {
            const body = JSON.parse(text || '{}') as { code?: string; message?: string }
            const code = (body.code ?? 'PROTOCOL_ERROR') as NodusError['code']
            reject(new NodusError(code, body.message ?? `HTTP ${res.statusCode}`))
          })
          return
        }
        let buffered = ''
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
            if (data !== '') onEvent(name, data)
          }
        })
        res.on('end', () => resolve(signal?.aborted === true ? 'aborted' : 'ended'))
        res.on('error', (err) => (signal?.aborted === true ? resolve('aborted') : reject(err)))
      },
    )
    req.on('error', (err) => {
      if (signal?.aborted === true) resolve('aborted')
      else reject(connectionError(err, api.url, what, 'run it again', signal))
    })
    signal?.addEventListener('abort', () => req.destroy(), { once: true })
    req.end()
  })
}
