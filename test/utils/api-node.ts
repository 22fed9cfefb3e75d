/**
 * A real node (in process, loopback, real disk) for tests of its HTTP API; an API server with only
 * some areas' routes and no node, for `app.inject()` tests with fakes; and a raw HTTP/1.1 exchange
 * over a fresh loopback socket for requests fetch will not send (a chosen Host, no Host, headers
 * without their body, oversized heads).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type ApiRoutes,
  type ApiServer,
  type ApiServerOptions,
  createApiServer,
  DEFAULT_API_OPTIONS,
} from '../../src/api/index.ts'
import { initNode } from '../../src/cli/init.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { loadConfig } from '../../src/config/config.ts'
import { createNode, type NodusNode } from '../../src/node/node.ts'

export interface ApiNode {
  node: NodusNode
  /** `http://127.0.0.1:PORT` */
  api: string
  port: number
  token: string
  stop(): Promise<void>
}

/** Start one node with `config` (merged over small segments: 64 KiB, k 4, m 2) and return its API. */
export async function startApiNode(config: Record<string, unknown> = {}): Promise<ApiNode> {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-api-sec-'))
  const { token } = await initNode(dir, { storage: { segmentSize: 65536, k: 4, m: 2 }, ...config })
  const node = await createNode(await loadConfig(dir), { logger: silentLogger() })
  await node.start()
  const api = node.info().api
  return {
    node,
    api,
    port: Number(new URL(api).port),
    token,
    async stop() {
      await node.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** The token of {@link routesApi} servers. */
export const TEST_TOKEN = 'test-token-0123456789abcdef'

/** `Authorization` header with {@link TEST_TOKEN}. */
export const AUTH: Readonly<Record<string, string>> = Object.freeze({ authorization: `Bearer ${TEST_TOKEN}` })

/**
 * An API server serving `routes` (and its own `/openapi.json`, dashboard and `/metrics`), built with
 * {@link TEST_TOKEN}, `options` over the defaults, and no node: drive it with `server.app.inject()`,
 * close it when done.
 */
export async function routesApi(
  routes: readonly ApiRoutes[],
  options: Partial<ApiServerOptions> = {},
): Promise<ApiServer> {
  const server = createApiServer(
    { token: TEST_TOKEN, logger: silentLogger(), routes },
    { ...DEFAULT_API_OPTIONS, ...options },
  )
  await server.app.ready()
  return server
}

/** The `{ code, message, details }` body of an API error (throws when the body is not JSON). */
export function errorOf(body: string): { code: string; message: string; details: Record<string, unknown> } {
  return JSON.parse(body) as { code: string; message: string; details: Record<string, unknown> }
}

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

/**
 * Send `head` (request line and headers, each line ending CRLF, without the blank line, which is added)
 * and then `body` (if any) on a new connection to 127.0.0.1:`port`, and read the response until the
 * server closes the connection. Send `Connection: close` in `head` for responses the server would
 * otherwise keep the connection open after. Rejects when the connection closes with no response.
 */
export function rawExchange(port: number, head: string, body?: Uint8Array): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (d: Buffer) => chunks.push(d))
    const finish = (err?: Error): void => {
      const text = Buffer.concat(chunks).toString('utf8')
      const at = text.indexOf('\r\n\r\n')
      if (at < 0) {
        reject(err ?? new Error(`no HTTP response: ${JSON.stringify(text.slice(0, 200))}`))
        return
      }
      const [statusLine = '', ...lines] = text.slice(0, at).split('\r\n')
      const headers: Record<string, string> = {}
      for (const l of lines) {
        const i = l.indexOf(':')
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: text.slice(at + 4) })
    }
    // A server that answers without reading the body may reset the connection after its answer.
    socket.on('error', (err) => finish(err))
    socket.on('end', () => {
      finish()
      socket.destroy()
    })
    socket.write(`${head}\r\n\r\n`)
    if (body !== undefined) socket.write(body)
  })
}

/** The parsed JSON body of a raw response (throws when it is not JSON). */
export function jsonOf(r: RawResponse): { code: string; message: string; details: Record<string, unknown> } {
  return errorOf(r.body)
}
