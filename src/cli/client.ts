/**
 * A small client for a node's HTTP API, used by the CLI and the demo. Streams both ways; never holds
 * a whole file in memory.
 */
import { constants } from 'node:fs'
import { type FileHandle, open, readFile, rename, rm } from 'node:fs/promises'
import type { ClientRequest, IncomingMessage } from 'node:http'
import { join } from 'node:path'
import { HTTP_LAYER_ERRORS } from '../api/errors.ts'
import { freeIfWhole } from '../common/bytes.ts'
import { RUN_FILE, readApiToken } from '../common/data-dir.ts'
import { alignUp, allocAligned, DIRECT_IO_ALIGN, directIoAvailable } from '../common/direct-io.ts'
import { drained } from '../common/drain.ts'
import { type ErrorCode, isNodusError, NodusError } from '../common/errors.ts'
import { HTTP_STATUS } from '../config/index.ts'

/** open(2) flags for a download written with direct I/O. */
const DIRECT_OUTPUT_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DIRECT

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

/**
 * The node's typed error from an error response's JSON body: its NodusError when nodus knows the code,
 * else PROTOCOL_ERROR with the node's code in `details.code` (the HTTP layer's `UNAUTHORIZED`,
 * `RATE_LIMITED`, …, which are not NodusError codes; {@link shownError} prints them as they are).
 */
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
    details: {
      status,
      ...(body.details ?? {}),
      ...(code === 'PROTOCOL_ERROR' && typeof body.code === 'string' ? { code: body.code } : {}),
    },
  })
}

/** A code as a node writes one (upper-case words joined by `_`). */
const CODE_PATTERN = /^[A-Z][A-Z0-9_]{1,63}$/

/**
 * What the CLI prints for `err` (`error CODE: message`, or this object with `--json`): the error as it
 * is, except a PROTOCOL_ERROR that carries the node's own code in `details.code` (an HTTP-layer code
 * such as 401 `UNAUTHORIZED`, or a code of a newer node): that code and the node's message, with what
 * to do when docs/ERRORS.md's "Codes from the HTTP layer" knows it.
 */
export function shownError(err: NodusError): {
  code: string
  message: string
  details: Record<string, unknown>
} {
  const remote = err.details.code
  if (err.code !== 'PROTOCOL_ERROR' || typeof remote !== 'string' || !CODE_PATTERN.test(remote))
    return err.toJSON()
  const layer = HTTP_LAYER_ERRORS.find((e) => e.code === remote)
  const { code: _, ...details } = err.details
  return {
    code: remote,
    message: layer === undefined ? err.message : `${err.message} (${layer.fix.replaceAll('`', '')})`,
    details,
  }
}

/** Error codes (Node's socket errors and undici's) meaning the connection to the node was never made. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])
/** Error codes meaning an open connection to the node broke (or a connect attempt timed out). */
const CONNECTION_LOST = new Set([
  'ECONNRESET', // also "socket hang up" and a response body cut short ("aborted")
  'EPIPE',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
])

/** The first socket-level error code along `err`'s `cause` chain, if any. */
function socketErrorCode(err: unknown): string | undefined {
  let e: unknown = err
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    if (isNodusError(e, 'NODE_UNREACHABLE')) return 'closed'
    const code = (e as NodeJS.ErrnoException).code
    if (code !== undefined && (NOT_CONNECTED.has(code) || CONNECTION_LOST.has(code))) return code
    e = e.cause
  }
  return undefined
}

/**
 * `err` as NODE_UNREACHABLE when it says the connection to the node's API at `url` failed or broke
 * (ECONNREFUSED, ECONNRESET, EPIPE, socket hang up, a body cut short, undici's socket errors, looked
 * up through `cause`); any other error, or any error once `signal` has aborted, unchanged.
 *
 * @param doing what was under way, for the message ("upload of big.iso", "request GET /system/info")
 * @param outcome what the user should know happened to the operation, appended to the message
 */
export function connectionError(
  err: unknown,
  url: string,
  doing: string,
  outcome: string,
  signal?: AbortSignal,
): unknown {
  if (signal?.aborted === true) return err
  const code = socketErrorCode(err)
  if (code === undefined) return err
  const message = NOT_CONNECTED.has(code)
    ? `cannot reach the node's API at ${url} (${code}): is the node running? (\`nodus status\`)`
    : `the connection to the node's API at ${url} broke during the ${doing} (${code}): the node stopped, or closed the connection (see its log); ${outcome}`
  return new NodusError('NODE_UNREACHABLE', message, { details: { url, reason: code }, cause: err })
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
 * How long a request with `Expect: 100-continue` waits for `100 Continue` (or a final answer) before
 * sending its body anyway, ms: for servers and proxies that ignore the header (RFC 9110, 10.1.1; curl
 * waits 1 s too). A nodus node answers at once.
 */
const EXPECT_CONTINUE_WAIT_MS = 1_000

/**
 * One request through node:http, the body streamed from a Readable. File bodies go this way rather than
 * through fetch: undici's web streams cost CPU-seconds per GB (see docs/benchmarks-history.md, "Session 4"),
 * while node:http hands socket chunks straight through.
 * A request with a body says `Expect: 100-continue` and sends the body only on `100 Continue`: the node
 * refuses a wrong token or an oversized upload before any of the body is sent (it closes such a
 * connection, so a body already on its way could cut off the answer with EPIPE/ECONNRESET).
 * Resolves with the response as soon as its head arrives (even when the node answers before the whole
 * body was sent, as it does on errors); rejects on a connection error or abort.
 */
function streamRequest(
  url: URL,
  method: string,
  hdrs: Record<string, string>,
  body: ((req: ClientRequest) => Promise<void>) | undefined,
  signal: AbortSignal | undefined,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    let responded = false
    let sending = false
    let wait: ReturnType<typeof setTimeout> | undefined
    const headers = body === undefined ? hdrs : { ...hdrs, expect: '100-continue' }
    const req = send(url, { method, headers, ...(signal === undefined ? {} : { signal }) }, (res) => {
      responded = true
      clearTimeout(wait)
      // A final answer instead of 100 Continue: the body will never be sent; end the exchange once the
      // answer is read.
      if (!sending) res.once('end', () => req.destroy())
      resolve(res)
    })
    req.on('error', (err) => {
      clearTimeout(wait)
      reject(err)
    })
    if (body === undefined) {
      req.end()
      return
    }
    const start = (): void => {
      clearTimeout(wait)
      if (sending || responded || req.destroyed) return
      sending = true
      // A node may answer (an error) while the body is being sent; sending then fails, and destroying
      // the request would cut off the answer being read.
      body(req).catch((err: unknown) => {
        if (!responded) req.destroy(err instanceof Error ? err : new Error(String(err)))
      })
    }
    req.once('continue', start)
    req.flushHeaders()
    wait = setTimeout(start, EXPECT_CONTINUE_WAIT_MS)
  })
}

/** Bytes per read of a file being uploaded. */
const UPLOAD_CHUNK_BYTES = 1024 * 1024

/**
 * Send the file open as `fh` as a request body, then end the request; closes `fh` in any case. Reads go into a few reused
 * 1 MiB buffers: a buffer is read into again only after the socket has taken it (the write's
 * callback), so an upload allocates almost nothing, where a piped read stream allocated a fresh
 * buffer per read for V8 to collect.
 */
async function sendFile(req: ClientRequest, fh: FileHandle, onBytes: (n: number) => void): Promise<void> {
  const spare: Buffer[] = []
  let sent = 0
  try {
    for (;;) {
      if (req.destroyed) return
      const buf = spare.pop() ?? Buffer.allocUnsafeSlow(UPLOAD_CHUNK_BYTES)
      const { bytesRead } = await fh.read(buf, 0, UPLOAD_CHUNK_BYTES, null)
      if (bytesRead === 0) break
      sent += bytesRead
      onBytes(sent)
      const ok = req.write(buf.subarray(0, bytesRead), (err) => {
        if (err == null) spare.push(buf)
      })
      if (!ok)
        await drained(
          req,
          undefined,
          () => new NodusError('NODE_UNREACHABLE', 'the connection closed while the file was being sent'),
        )
    }
    req.end()
  } finally {
    await fh.close()
  }
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

/**
 * Stream a local file to the node; `onBytes` is called with bytes sent so far. Throws FILE_NOT_FOUND,
 * NODE_UNREACHABLE when the connection to the node fails or breaks before the answer is read whole
 * (no CID was returned: the upload did not complete), or the node's typed error.
 */
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
  // The size comes from the open file itself, so it is the size of what is sent.
  let fh: FileHandle | undefined
  let size: number
  try {
    fh = await open(path, 'r')
    const st = await fh.stat()
    if (!st.isFile()) throw new Error('not a file')
    size = st.size
  } catch {
    await fh?.close()
    throw new NodusError('FILE_NOT_FOUND', `no such file: ${path}`, { details: { path } })
  }
  const file = fh
  const name = path.split('/').pop() ?? 'file'
  const ttl = options.ttlSeconds === undefined ? '' : `&ttl=${options.ttlSeconds}`
  const critical = options.critical === true ? '&critical=true' : ''
  let res: IncomingMessage
  let text: string
  try {
    res = await streamRequest(
      new URL(`${api.url}/files?name=${encodeURIComponent(name)}${ttl}${critical}`),
      'POST',
      headers(api, { 'content-type': 'application/octet-stream', 'content-length': String(size) }),
      (req) => sendFile(req, file, (n) => options.onBytes?.(n)),
      options.signal,
    )
    text = await textOf(res)
  } catch (err) {
    throw connectionError(
      err,
      api.url,
      `upload of ${path}`,
      'the upload did not complete and no CID was returned; put the file again',
      options.signal,
    )
  } finally {
    // Closed by sendFile once sent; here too when the node answered before (or while) it was sent.
    await file.close().catch(() => {})
  }
  if ((res.statusCode ?? 0) >= 300) throw errorFrom(res.statusCode ?? 0, text)
  return JSON.parse(text) as PutResponse
}

/**
 * Download a file into `outPath`: written to `outPath.part`, checked for length, fsynced, then renamed.
 * Throws the node's typed error (e.g. MANIFEST_NOT_FOUND, DECODE_FAILED), NODE_UNREACHABLE when the
 * connection to the node fails or breaks mid-way (`outPath` is then not written), DECODE_FAILED when
 * the body ends short without a connection error.
 */
export async function getFile(
  api: ApiTarget,
  cid: string,
  outPath: string,
  options: { signal?: AbortSignal; onBytes?: (n: number, total: number | undefined) => void } = {},
): Promise<{ bytes: number }> {
  const lost = (err: unknown): unknown =>
    connectionError(
      err,
      api.url,
      `download of ${cid}`,
      `the download did not complete; nothing was written to ${outPath}`,
      options.signal,
    )
  let res: IncomingMessage
  try {
    res = await streamRequest(
      new URL(`${api.url}/files/${encodeURIComponent(cid)}`),
      'GET',
      headers(api),
      undefined,
      options.signal,
    )
    if ((res.statusCode ?? 0) >= 300) throw errorFrom(res.statusCode ?? 0, await textOf(res))
  } catch (err) {
    throw lost(err)
  }
  const total = Number(res.headers['content-length'] ?? Number.NaN)
  const part = `${outPath}.part`
  let got = 0
  try {
    got = await writeBody(res, part, (n) => options.onBytes?.(n, Number.isFinite(total) ? total : undefined))
    if (Number.isFinite(total) && got !== total) {
      throw new NodusError('DECODE_FAILED', `download ended after ${got} of ${total} bytes`)
    }
    await rename(part, outPath)
  } catch (err) {
    await rm(part, { force: true })
    if (err instanceof NodusError) throw err
    const unreachable = lost(err)
    if (unreachable !== err) throw unreachable
    throw new NodusError('DECODE_FAILED', `download failed: ${(err as Error).message}`, { cause: err })
  }
  return { bytes: got }
}

/** Bytes of response body gathered into one `writev`, at most (plus one chunk). */
const WRITE_BATCH_BYTES = 1024 * 1024

/**
 * Write a response body to a new file `path` and fsync it; resolves with the bytes written.
 *
 * Chunks are gathered into `writev` calls of about {@link WRITE_BATCH_BYTES}, with one in flight
 * while the next batch arrives, and each chunk's memory is freed (`freeIfWhole`) once written: the
 * body's 64 KiB Buffers otherwise wait for V8's external-memory collection, which cost the client a
 * fifth of its CPU in marking during a 126 MB get (perf, docs/benchmarks-history.md "Session 6").
 */
async function writeBody(body: IncomingMessage, path: string, onBytes: (n: number) => void): Promise<number> {
  const direct = await openDirectOutput(path)
  if (direct !== undefined) return writeBodyDirect(body, direct, onBytes)
  const fh = await open(path, 'w')
  try {
    let got = 0
    let batch: Uint8Array[] = []
    let batchBytes = 0
    let writing: Promise<void> | undefined
    const flush = async (chunks: Uint8Array[]): Promise<void> => {
      let { bytesWritten } = await fh.writev(chunks)
      // A short write (rare on a regular file): write the rest chunk by chunk.
      for (const c of chunks) {
        if (bytesWritten >= c.byteLength) {
          bytesWritten -= c.byteLength
          continue
        }
        let at = bytesWritten
        bytesWritten = 0
        while (at < c.byteLength) at += (await fh.write(c, at)).bytesWritten
      }
      for (const c of chunks) freeIfWhole(c)
    }
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      got += chunk.byteLength
      onBytes(got)
      batch.push(chunk)
      batchBytes += chunk.byteLength
      if (batchBytes >= WRITE_BATCH_BYTES) {
        await writing
        writing = flush(batch)
        writing.catch(() => {}) // awaited below; not an unhandled rejection meanwhile
        batch = []
        batchBytes = 0
      }
    }
    await writing
    if (batch.length > 0) await flush(batch)
    await fh.sync()
    return got
  } finally {
    await fh.close()
  }
}

/** Bytes per direct write of a download (two such aligned buffers: one filling while the other is written). */
const DIRECT_STAGE_BYTES = 4 * 1024 * 1024

/**
 * `path`, created or truncated, open for direct I/O (O_DIRECT), once one aligned 4 KiB write has worked
 * there; undefined without the native addon, with `NODUS_DIRECT_IO=0`, or where the file system refuses
 * (the caller then writes through the page cache).
 */
async function openDirectOutput(path: string): Promise<FileHandle | undefined> {
  if (!directIoAvailable()) return undefined
  let fh: FileHandle | undefined
  try {
    fh = await open(path, DIRECT_OUTPUT_FLAGS, 0o644)
    await fh.write(allocAligned(DIRECT_IO_ALIGN), 0, DIRECT_IO_ALIGN, 0)
    await fh.truncate(0)
    return fh
  } catch (err) {
    await fh?.close().catch(() => {})
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return undefined
    throw err
  }
}

/**
 * {@link writeBody} with direct I/O: the body is copied into 4 MiB aligned buffers, each written straight
 * to the disk while the next fills (no page-cache pages: a download of a large file otherwise spends
 * most of its client's CPU having the kernel copy into freshly allocated page cache, docs/benchmarks-history.md
 * "Session 8"); the last buffer is written rounded up to 4 KiB and the file cut back to its length.
 * Closes `fh`.
 */
async function writeBodyDirect(
  body: IncomingMessage,
  fh: FileHandle,
  onBytes: (n: number) => void,
): Promise<number> {
  try {
    const stages = [allocAligned(DIRECT_STAGE_BYTES), allocAligned(DIRECT_STAGE_BYTES)]
    let current = 0
    let fill = 0
    let position = 0
    let got = 0
    let writing: Promise<void> | undefined
    const writeAll = async (buf: Uint8Array, length: number, at: number): Promise<void> => {
      let done = 0
      while (done < length) {
        const { bytesWritten } = await fh.write(buf, done, length - done, at + done)
        if (bytesWritten === 0) throw new Error('direct write made no progress')
        done += bytesWritten
      }
    }
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      got += chunk.byteLength
      onBytes(got)
      let at = 0
      while (at < chunk.byteLength) {
        const stage = stages[current] as Buffer
        const n = Math.min(DIRECT_STAGE_BYTES - fill, chunk.byteLength - at)
        stage.set(chunk.subarray(at, at + n), fill)
        fill += n
        at += n
        if (fill === DIRECT_STAGE_BYTES) {
          await writing
          writing = writeAll(stage, DIRECT_STAGE_BYTES, position)
          writing.catch(() => {}) // awaited below; not an unhandled rejection meanwhile
          position += DIRECT_STAGE_BYTES
          current ^= 1
          fill = 0
        }
      }
      freeIfWhole(chunk)
    }
    await writing
    if (fill > 0) {
      await writeAll(stages[current] as Buffer, alignUp(fill), position)
      if (alignUp(fill) !== fill) await fh.truncate(position + fill)
    }
    await fh.sync()
    return got
  } finally {
    await fh.close()
  }
}

/**
 * One small JSON request through fetch; resolves with the parsed body. Throws the node's typed error,
 * or NODE_UNREACHABLE when the connection fails or breaks.
 */
async function jsonRequest<T>(
  api: ApiTarget,
  method: string,
  path: string,
  init: { headers: Record<string, string>; body?: string },
  signal: AbortSignal | undefined,
): Promise<T> {
  try {
    const res = await fetch(`${api.url}${path}`, {
      method,
      ...init,
      ...(signal === undefined ? {} : { signal }),
    })
    if (!res.ok) throw await failure(res)
    return (await res.json()) as T
  } catch (err) {
    throw connectionError(
      err,
      api.url,
      `request ${method} ${path}`,
      method === 'GET' ? 'retry' : 'it may or may not have taken effect; check before retrying',
      signal,
    )
  }
}

/** GET a JSON route. */
export async function getJson<T>(api: ApiTarget, path: string, signal?: AbortSignal): Promise<T> {
  return jsonRequest<T>(api, 'GET', path, { headers: headers(api) }, signal)
}

/** POST a JSON body to an authenticated route. */
export async function postJson<T>(
  api: ApiTarget,
  path: string,
  body: unknown,
  signal?: AbortSignal,
): Promise<T> {
  return jsonRequest<T>(
    api,
    'POST',
    path,
    { headers: headers(api, { 'content-type': 'application/json' }), body: JSON.stringify(body) },
    signal,
  )
}

/** DELETE an authenticated route. */
export async function deleteJson<T>(api: ApiTarget, path: string, signal?: AbortSignal): Promise<T> {
  return jsonRequest<T>(api, 'DELETE', path, { headers: headers(api) }, signal)
}
