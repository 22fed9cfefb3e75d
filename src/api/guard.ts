/**
 * What the API checks before it looks at a request's body: the Host header (DNS rebinding), the bearer
 * token, the per-bucket rate limits and the declared upload size; and the API's error format for the
 * requests Node or fastify refuse before any route runs (oversized headers, bad URLs).
 *
 * Order, for every request (global onRequest): Host → URL length. Then, for a route that needs the
 * token (route onRequest, `guardToken`): rate limit in the caller's bucket → 401 without the valid
 * token → (uploads, `guardUpload`) 413 on a declared Content-Length over the upload limit. All of it
 * runs before fastify parses or validates a body, so an unauthenticated request gets 401 (or 429)
 * whatever it carries; a client that sent `Expect: 100-continue` gets the refusal before sending any.
 *
 * Buckets: the holder of the valid token has one bucket (`api.mutatingPerMinute`), whatever its address,
 * except on routes that bound themselves with their own queues (publish, send: `guardTokenUnmetered`);
 * every client without it has one per address (`api.unauthenticatedPerMinute`). A web page that floods
 * the API from the owner's own machine therefore exhausts only its own bucket.
 */
import { isIP } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { NodusError } from '../common/errors.ts'
import { bearerMatches } from './auth.ts'

type RateLimiter = ReturnType<FastifyInstance['createRateLimit']>

/** Longest request line plus headers Node accepts, bytes (Node's default); beyond it: 431. */
export const MAX_HEADER_BYTES = 16 * 1024
/** Longest URL (path and query) a route accepts, bytes; beyond it: 414. */
export const MAX_URL_BYTES = 8 * 1024

export interface ApiErrorBody {
  code: string
  message: string
  details: Record<string, unknown>
}

/**
 * The host name of a Host header value: lowercased, without port, brackets or a trailing dot.
 * Undefined for a missing or malformed value (userinfo, path, bad port, unbalanced brackets).
 */
export function hostName(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]/@?#\s]+))(?::(\d{1,5}))?$/.exec(header.trim())
  if (m === null) return undefined
  if (m[1] !== undefined) return isIP(m[1]) === 6 ? m[1].toLowerCase() : undefined
  const name = (m[2] ?? '').toLowerCase().replace(/\.$/, '')
  return name === '' ? undefined : name
}

/**
 * True when a request with this Host header may be served: an IP literal (a browser sends one only for
 * a page loaded from that very address, so it cannot come from DNS rebinding), `localhost`, or a name
 * in `allowed` (lowercased names). The port is not compared: rebinding works through the name alone,
 * and a tunnel (`ssh -L 8080:127.0.0.1:PORT`) legitimately changes the port.
 */
export function hostAllowed(header: string | undefined, allowed: ReadonlySet<string>): boolean {
  const name = hostName(header)
  if (name === undefined) return false
  return isIP(name) !== 0 || name === 'localhost' || allowed.has(name)
}

/**
 * Host names as {@link hostAllowed} compares them (lowercased, no trailing dot), from config-style
 * names (`api.allowedHosts`, the bind host); IP literals and malformed names are left out.
 */
export function allowedHostSet(names: readonly string[]): ReadonlySet<string> {
  const set = new Set<string>()
  for (const h of names) {
    if (isIP(h) !== 0) continue // IP literals are accepted anyway
    const name = hostName(h)
    if (name !== undefined) set.add(name)
  }
  return set
}

export interface ApiGuardOptions {
  /** Requests per minute to token routes with the valid token, one bucket for the holder. */
  mutatingPerMinute: number
  /** Requests per minute per client address to token routes without the valid token. */
  unauthenticatedPerMinute: number
  /** Host names accepted besides IP literals, localhost and the bind host (config `api.allowedHosts`). */
  allowedHosts: readonly string[]
  /** Largest declared Content-Length of an upload, bytes. */
  maxUploadBytes: number
}

type Hook = (req: FastifyRequest, reply: FastifyReply) => Promise<void>

/** Why a request that needs the token is refused: 429 `RATE_LIMITED` (with its retry delay) or 401 `UNAUTHORIZED`. */
export interface TokenRefusal {
  status: 401 | 429
  body: ApiErrorBody
  retryAfterSeconds?: number
}

export interface ApiGuard {
  /** Route onRequest hook for routes that need the token: 429, then 401, before anything is parsed. */
  guardToken: Hook
  /** Route onRequest hook for `POST /files`: {@link ApiGuard.guardToken}, then 413 on a Content-Length over the limit. */
  guardUpload: Hook
  /**
   * Route onRequest hook for routes a token holder calls at high rates and that bound themselves with
   * their own queues (publish, send): the token holder is not counted; a caller without the token gets
   * its address's bucket (429), then 401, as with {@link ApiGuard.guardToken}.
   */
  guardTokenUnmetered: Hook
  /**
   * {@link ApiGuard.guardTokenUnmetered}'s decision without answering: for a route that needs the token
   * for some requests only (a GraphQL mutation, not a query). Undefined when the request may go on.
   */
  checkToken(req: FastifyRequest): Promise<TokenRefusal | undefined>
  /** Accept `host` (the address the API binds) in the Host header from now on; IP literals need not be added. */
  allowHost(host: string): void
}

/** True when the request announces a body (that a refusal should not wait to drain). */
function hasBody(req: FastifyRequest): boolean {
  const len = req.headers['content-length']
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined
}

/**
 * Send an error in the API's format. A refused request that announced a body gets `Connection: close`:
 * the body is never read, and Node would otherwise read and discard all of it to keep the connection.
 */
async function refuse(
  req: FastifyRequest,
  reply: FastifyReply,
  status: number,
  body: ApiErrorBody,
): Promise<void> {
  if (hasBody(req)) void reply.header('connection', 'close')
  await reply.code(status).send(body)
}

/**
 * Install the API's request guard on `app` and return its route hooks. Adds to `app`: the global
 * onRequest Host and URL-length check (403 HOST_NOT_ALLOWED, 414), and `Expect: 100-continue` handling:
 * Node leaves the answer to us, so a request the guards refuse gets its 401/413 before any of its body
 * is sent, and one that passed them gets `100 Continue` when its body is about to be read (preParsing
 * runs after every onRequest hook). `app` must register @fastify/rate-limit, whose `createRateLimit`
 * keeps the buckets (an LRU of at most 5,000 keys); the limiters are built at the first request.
 */
export function installApiGuard(app: FastifyInstance, token: string, options: ApiGuardOptions): ApiGuard {
  const allowed = new Set(allowedHostSet(options.allowedHosts))
  let limiters: { holder: RateLimiter; stranger: RateLimiter } | undefined
  const limiter = (authed: boolean): RateLimiter => {
    limiters ??= {
      holder: app.createRateLimit({
        max: options.mutatingPerMinute,
        timeWindow: 60_000,
        keyGenerator: () => 'token-holder',
      }),
      stranger: app.createRateLimit({
        max: options.unauthenticatedPerMinute,
        timeWindow: 60_000,
        keyGenerator: (req) => `anonymous:${req.ip}`,
      }),
    }
    return authed ? limiters.holder : limiters.stranger
  }

  app.addHook('onRequest', async (req, reply) => {
    const host = req.headers.host
    if (!hostAllowed(host, allowed)) {
      await refuse(req, reply, 403, {
        code: 'HOST_NOT_ALLOWED',
        message:
          host === undefined
            ? 'no Host header'
            : `Host ${JSON.stringify(host.slice(0, 100))} is not this API's address; add the name to api.allowedHosts to serve it`,
        details: {},
      })
      return
    }
    if (req.url.length > MAX_URL_BYTES) {
      await refuse(req, reply, 414, {
        code: 'MESSAGE_TOO_LARGE',
        message: `URL longer than ${MAX_URL_BYTES} bytes`,
        details: { maxBytes: MAX_URL_BYTES },
      })
    }
  })
  app.server.on('checkContinue', (req, res) => app.server.emit('request', req, res))
  app.addHook('preParsing', async (req, reply, payload) => {
    if (req.headers.expect?.toLowerCase() === '100-continue' && !reply.raw.headersSent)
      reply.raw.writeContinue()
    return payload
  })

  const verdict = async (req: FastifyRequest, meterHolder: boolean): Promise<TokenRefusal | undefined> => {
    const authed = bearerMatches(req.headers.authorization, token)
    if (authed && !meterHolder) return undefined
    const limit = await limiter(authed)(req)
    if (!limit.isAllowed && limit.isExceeded) {
      return {
        status: 429,
        retryAfterSeconds: limit.ttlInSeconds,
        body: {
          code: 'RATE_LIMITED',
          message: `more than ${limit.max} requests per minute ${authed ? 'with the API token' : 'without the API token'}; retry in ${limit.ttlInSeconds} s`,
          details: { retryAfterSeconds: limit.ttlInSeconds },
        },
      }
    }
    if (!authed)
      return {
        status: 401,
        body: { code: 'UNAUTHORIZED', message: 'missing or wrong bearer token', details: {} },
      }
    return undefined
  }
  const guard = async (req: FastifyRequest, reply: FastifyReply, meterHolder: boolean): Promise<void> => {
    const refusal = await verdict(req, meterHolder)
    if (refusal === undefined) return
    if (refusal.retryAfterSeconds !== undefined)
      void reply.header('retry-after', String(refusal.retryAfterSeconds))
    await refuse(req, reply, refusal.status, refusal.body)
  }
  const guardToken: Hook = (req, reply) => guard(req, reply, true)

  return {
    guardToken,
    guardTokenUnmetered: (req, reply) => guard(req, reply, false),
    checkToken: (req) => verdict(req, false),
    async guardUpload(req, reply) {
      await guardToken(req, reply)
      if (reply.sent) return
      const declared = req.headers['content-length']
      if (declared !== undefined && Number(declared) > options.maxUploadBytes) {
        await refuse(req, reply, 413, {
          code: 'MESSAGE_TOO_LARGE',
          message: `upload of ${declared} bytes exceeds api.maxUploadBytes (${options.maxUploadBytes})`,
          details: { maxBytes: options.maxUploadBytes },
        })
      }
    },
    allowHost(host) {
      for (const name of allowedHostSet([host])) allowed.add(name)
    },
  }
}

/**
 * Yields `source` unchanged; throws MESSAGE_TOO_LARGE once more than `maxBytes` have come. For bodies
 * without a Content-Length (chunked), whose size no header declared.
 */
export async function* capBytes(
  source: AsyncIterable<Uint8Array>,
  maxBytes: number,
): AsyncGenerator<Uint8Array> {
  let total = 0
  for await (const chunk of source) {
    total += chunk.byteLength
    if (total > maxBytes) {
      throw new NodusError('MESSAGE_TOO_LARGE', `upload exceeds api.maxUploadBytes (${maxBytes})`, {
        details: { maxBytes },
      })
    }
    yield chunk
  }
}

function rawResponse(status: number, reason: string, body: ApiErrorBody): string {
  const text = JSON.stringify(body)
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`
}

/**
 * fastify's `clientErrorHandler`: requests Node's HTTP parser refused, answered in the API's format
 * (fastify's default answers `{ error, message, statusCode }`). Header overflow (request line plus
 * headers over {@link MAX_HEADER_BYTES}) gets 431 MESSAGE_TOO_LARGE; a request timeout 408 TIMEOUT; any
 * other malformed request 400 INVALID_ARGUMENT. The connection is closed.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  let response: string
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    response = rawResponse(431, 'Request Header Fields Too Large', {
      code: 'MESSAGE_TOO_LARGE',
      message: `URL and headers exceed ${MAX_HEADER_BYTES} bytes`,
      details: { maxBytes: MAX_HEADER_BYTES },
    })
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    response = rawResponse(408, 'Request Timeout', {
      code: 'TIMEOUT',
      message: 'the request was not received in time',
      details: {},
    })
  } else {
    response = rawResponse(400, 'Bad Request', {
      code: 'INVALID_ARGUMENT',
      message: 'malformed HTTP request',
      details: {},
    })
  }
  if (socket.writable) socket.write(response)
  socket.destroy()
}

/**
 * fastify's `frameworkErrors`: errors raised while routing, before any hook runs (a URL that does not
 * decode, a path parameter over `maxParamLength`), answered in the API's format.
 */
export function frameworkErrors(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void reply
      .code(414)
      .send({ code: 'MESSAGE_TOO_LARGE', message: 'a path parameter is too long', details: {} })
    return
  }
  if (err.code === 'FST_ERR_BAD_URL') {
    void reply.code(400).send({ code: 'INVALID_ARGUMENT', message: 'the URL does not decode', details: {} })
    return
  }
  void reply.code(500).send({ code: 'INTERNAL', message: err.message, details: {} })
}
