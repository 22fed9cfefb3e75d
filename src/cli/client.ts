/**
 * A small client for a node's HTTP API, used by the CLI and the demo. Streams both ways; never holds
 * a whole file in memory.
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { readApiToken } from '../api/auth.ts'
import { type ErrorCode, HTTP_STATUS, NodusError } from '../common/errors.ts'
import { RUN_FILE } from '../node/node.ts'

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

async function failure(res: Response): Promise<NodusError> {
  let body: { code?: string; message?: string; details?: Record<string, unknown> } = {}
  try {
    body = (await res.json()) as typeof body
  } catch {
    // not JSON
  }
  const code =
    body.code !== undefined && body.code in HTTP_STATUS ? (body.code as ErrorCode) : 'PROTOCOL_ERROR'
  return new NodusError(code, body.message ?? `HTTP ${res.status}`, {
    details: { status: res.status, ...(body.details ?? {}) },
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
  try {
    const st = await stat(path)
    if (!st.isFile()) throw new Error('not a file')
  } catch {
    throw new NodusError('FILE_NOT_FOUND', `no such file: ${path}`, { details: { path } })
  }
  let sent = 0
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sent += chunk.byteLength
      options.onBytes?.(sent)
      cb(null, chunk)
    },
  })
  const body = Readable.toWeb(
    createReadStream(path, { highWaterMark: 1024 * 1024 }).pipe(counter),
  ) as ReadableStream<Uint8Array>
  const name = path.split('/').pop() ?? 'file'
  const ttl = options.ttlSeconds === undefined ? '' : `&ttl=${options.ttlSeconds}`
  const critical = options.critical === true ? '&critical=true' : ''
  const res = await fetch(`${api.url}/files?name=${encodeURIComponent(name)}${ttl}${critical}`, {
    method: 'POST',
    headers: headers(api, { 'content-type': 'application/octet-stream' }),
    body,
    duplex: 'half',
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  } as RequestInit)
  if (!res.ok) throw await failure(res)
  return (await res.json()) as PutResponse
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
  const res = await fetch(`${api.url}/files/${encodeURIComponent(cid)}`, {
    headers: headers(api),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  })
  if (!res.ok || res.body === null) throw await failure(res)
  const total = Number(res.headers.get('content-length') ?? Number.NaN)
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
    await pipeline(
      Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>),
      counter,
      out,
    )
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
