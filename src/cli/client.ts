/**
 * A small client for a node's HTTP API, used by the CLI and the demo. Streams both ways; never holds
 * a whole file in memory.
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { readFile, rename, rm, stat } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { join } from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { readApiToken } from '../api/auth.ts'
import { type ErrorCode, HTTP_STATUS, NodusError } from '../common/errors.ts'
import { RUN_FILE } from '../node/run-file.ts'

// node:http and node:https through getBuiltinModule, not `import`: an ES import of node:http reads every
// export, and Node 24's lazy WebSocket/EventSource exports then load undici (heap +2.9 MB, external
// +2.3 MB, RSS +19 MB in a bare process; about 2 MB in an idle node), which neither the CLI nor a node
// started by it uses.
const { request: httpRequest } = process.getBuiltinModule('node:http')
const { request: httpsRequest } = process.getBuiltinModule('node:https')

export interface ApiTarget {
  url: string
  token: string | undefined
}

/** Find a running node's API from its data directory (the run file written at start). */
export async function apiFromDataDir(dataDir: string): Promise<ApiTarget> {
  let run: { url?: unknown }
  try {
    run = JSON.parse(await readFile(join(dataDir, RUN_FILE), 'utf8')) as { url?: unknown }
  } catch {
    throw new NodusError(
      'NOT_STARTED',
      `no running node for ${dataDir}; start one with \`nodus start --data-dir ${dataDir}\``,
    )
  }
  if (typeof run.url !== 'string') throw new NodusError('NOT_STARTED', `bad run file in ${dataDir}`)
  const token = await readApiToken(dataDir).catch(() => undefined)
  return { url: run.url, token }
}

/** The node's typed error from an error response's JSON body (PROTOCOL_ERROR when it has none). */
function errorFrom(status: number, text: string): NodusError {
  let body: { code?: string; message?: string; details?: Record<string, unknown> } = {}
  try {
    body = JSON.parse(text) as typeof body
  } catch {
    // not JSON
  }
  const code =
    body.code !== undefined && body.code in HTTP_STATUS ? (body.code as ErrorCode) : 'PROTOCOL_ERROR'
  return new NodusError(code, body.message ?? `HTTP ${status}`, {
    details: { status, ...(body.details ?? {}) },
  })
}

async function failure(res: Response): Promise<NodusError> {
  return errorFrom(res.status, await res.text().catch(() => ''))
}

/** Read a whole (small) response body as UTF-8. */
async function textOf(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = []
  for await (const chunk of res) parts.push(chunk as Buffer)
  return Buffer.concat(parts).toString('utf8')
}

/**
 * One request through node:http, the body streamed from a Readable. File bodies go this way rather than
 * through fetch: undici's web streams cost CPU-seconds per GB (see docs/BENCHMARKS.md, "Session 4"),
 * while node:http hands socket chunks straight through.
 * Resolves with the response as soon as its head arrives (even when the node answers before the whole
 * body was sent, as it does on errors); rejects on a connection error or abort.
 */
function streamRequest(
  url: URL,
  method: string,
  hdrs: Record<string, string>,
  body: NodeJS.ReadableStream | undefined,
  signal: AbortSignal | undefined,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    const req = send(url, { method, headers: hdrs, ...(signal === undefined ? {} : { signal }) }, resolve)
    req.on('error', reject)
    if (body === undefined) {
      req.end()
      return
    }
    body.on('error', (err) => req.destroy(err))
    body.pipe(req)
  })
}

function headers(api: ApiTarget, extra: Record<string, string> = {}): Record<string, string> {
  return { ...extra, ...(api.token === undefined ? {} : { authorization: `Bearer ${api.token}` }) }
}

export interface PutResponse {
  cid: string
  bytes: number
  segments: number
  k: number
  m: number
  manifestHolders: string[]
  holders: string[]
}

/** Stream a local file to the node; `onBytes` is called with bytes sent so far. Throws FILE_NOT_FOUND. */
export async function putFile(
  api: ApiTarget,
  path: string,
  options: {
    signal?: AbortSignal
    onBytes?: (n: number) => void
    ttlSeconds?: number
    /** Pin as critical: keepers add extra parity shards. */
    critical?: boolean
  } = {},
): Promise<PutResponse> {
  let size: number
  try {
    const st = await stat(path)
    if (!st.isFile()) throw new Error('not a file')
    size = st.size
  } catch {
    throw new NodusError('FILE_NOT_FOUND', `no such file: ${path}`, { details: { path } })
  }
  let sent = 0
  const file = createReadStream(path, { highWaterMark: 1024 * 1024 })
  file.on('data', (chunk) => {
    sent += chunk.length
    options.onBytes?.(sent)
  })
  const name = path.split('/').pop() ?? 'file'
  const ttl = options.ttlSeconds === undefined ? '' : `&ttl=${options.ttlSeconds}`
  const critical = options.critical === true ? '&critical=true' : ''
  const res = await streamRequest(
    new URL(`${api.url}/files?name=${encodeURIComponent(name)}${ttl}${critical}`),
    'POST',
    headers(api, { 'content-type': 'application/octet-stream', 'content-length': String(size) }),
    file,
    options.signal,
  ).catch((err: unknown) => {
    file.destroy()
    throw err
  })
  const text = await textOf(res)
  file.destroy()
  if ((res.statusCode ?? 0) >= 300) throw errorFrom(res.statusCode ?? 0, text)
  return JSON.parse(text) as PutResponse
}

/**
 * Download a file into `outPath`: written to `outPath.part`, checked for length, fsynced, then renamed.
 * Throws the node's typed error (e.g. MANIFEST_NOT_FOUND, DECODE_FAILED).
 */
export async function getFile(
  api: ApiTarget,
  cid: string,
  outPath: string,
  options: { signal?: AbortSignal; onBytes?: (n: number, total: number | undefined) => void } = {},
): Promise<{ bytes: number }> {
  const res = await streamRequest(
    new URL(`${api.url}/files/${encodeURIComponent(cid)}`),
    'GET',
    headers(api),
    undefined,
    options.signal,
  )
  if ((res.statusCode ?? 0) >= 300) throw errorFrom(res.statusCode ?? 0, await textOf(res))
  const total = Number(res.headers['content-length'] ?? Number.NaN)
  const part = `${outPath}.part`
  let got = 0
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      got += chunk.byteLength
      options.onBytes?.(got, Number.isFinite(total) ? total : undefined)
      cb(null, chunk)
    },
  })
  try {
    const out = createWriteStream(part, { flush: true })
    await pipeline(res, counter, out)
    if (Number.isFinite(total) && got !== total) {
      throw new NodusError('DECODE_FAILED', `download ended after ${got} of ${total} bytes`)
    }
    await rename(part, outPath)
  } catch (err) {
    await rm(part, { force: true })
    if (err instanceof NodusError) throw err
    throw new NodusError('DECODE_FAILED', `download failed: ${(err as Error).message}`, { cause: err })
  }
  return { bytes: got }
}

/** GET a JSON route. */
export async function getJson<T>(api: ApiTarget, path: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(`${api.url}${path}`, {
    headers: headers(api),
    ...(signal === undefined ? {} : { signal }),
  })
  if (!res.ok) throw await failure(res)
  return (await res.json()) as T
}

/** POST a JSON body to an authenticated route. */
export async function postJson<T>(
  api: ApiTarget,
  path: string,
  body: unknown,
  signal?: AbortSignal,
): Promise<T> {
  const res = await fetch(`${api.url}${path}`, {
    method: 'POST',
    headers: headers(api, { 'content-type': 'application/json' }),
    body: JSON.stringify(body),
    ...(signal === undefined ? {} : { signal }),
  })
  if (!res.ok) throw await failure(res)
  return (await res.json()) as T
}

/** DELETE an authenticated route. */
export async function deleteJson<T>(api: ApiTarget, path: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(`${api.url}${path}`, {
    method: 'DELETE',
    headers: headers(api),
    ...(signal === undefined ? {} : { signal }),
  })
  if (!res.ok) throw await failure(res)
  return (await res.json()) as T
}
