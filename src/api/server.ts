/**
 * The HTTP API (fastify), bound to 127.0.0.1 by default. Mutating routes need the bearer token that
 * `nodus init` wrote (compared in constant time), checked in onRequest before any body is parsed;
 * every request's Host must be this API's own address or allow-listed (src/api/guard.ts). Errors are
 * `{ code, message, details }` with the status from HTTP_STATUS (docs/ERRORS.md). Route schemas
 * generate the OpenAPI document served at `/openapi.json` and written to docs/API.md.
 *
 * The server serves `/openapi.json`, the dashboard and `/metrics` itself; every other route comes from
 * an area's plugin ({@link ApiRoutes}: src/node/routes.ts, src/net/routes.ts, src/storage/routes.ts),
 * each built from the narrow deps its routes use. The server knows no area.
 */
import type { IncomingMessage } from 'node:http'
import rateLimit from '@fastify/rate-limit'
import swagger from '@fastify/swagger'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { isNodusError, NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import { HTTP_STATUS } from '../config/index.ts'
import type { NodusMetrics } from '../metrics/index.ts'
import { registerDashboard } from './dashboard.ts'
import {
  capBytes,
  clientErrorHandler,
  frameworkErrors,
  installApiGuard,
  MAX_HEADER_BYTES,
  type TokenRefusal,
} from './guard.ts'

/** The nodus version the API reports (`GET /system/info`, the OpenAPI document). */
export const NODUS_VERSION = '0.1.0'

/** A route-level onRequest hook of the API's guard. */
export type RouteHook = (req: FastifyRequest, reply: FastifyReply) => Promise<void>

/** What the server hands each area's routes: the guard's checks, the upload body, its logger. */
export interface ApiRouteContext {
  /**
   * Spread into the options of a route that needs the token: 429 `RATE_LIMITED` in the caller's bucket,
   * then 401 `UNAUTHORIZED` without the valid token, in onRequest, before any body is parsed. Such a
   * route is marked **auth** in docs/API.md when its schema also has `security: [{ bearer: [] }]`.
   */
  readonly mutating: { onRequest: RouteHook }
  /**
   * Like {@link ApiRouteContext.mutating}, but the token holder's requests are not counted: for routes
   * called at high rates (a publish, a direct message) that bound themselves with their own queues
   * (`QUEUE_FULL`). Callers without the token still get 429, then 401.
   */
  readonly unmetered: { onRequest: RouteHook }
  /**
   * Spread into the options of the upload route (`Content-Type: application/octet-stream`, streamed):
   * {@link ApiRouteContext.mutating}'s checks, then 413 `MESSAGE_TOO_LARGE` on a declared
   * Content-Length over `api.maxUploadBytes`.
   */
  readonly upload: { onRequest: RouteHook }
  /**
   * The streamed body of a request to an `upload` route. A chunked body (no Content-Length) throws
   * MESSAGE_TOO_LARGE once past `api.maxUploadBytes`; a declared length was bounded by the guard.
   */
  uploadBody(req: FastifyRequest): AsyncIterable<Uint8Array>
  /**
   * For routes that need the token for some requests only (GraphQL: mutations, not queries): the
   * refusal {@link ApiRouteContext.unmetered} would answer with (429 `RATE_LIMITED` in the caller's
   * bucket, then 401 `UNAUTHORIZED`), or undefined when the request carries the valid token.
   */
  checkToken(req: FastifyRequest): Promise<TokenRefusal | undefined>
  /** The base URL the API listens on (`http://127.0.0.1:PORT`, as `listen` returned it); '' before. */
  url(): string
  /** The API's logger. */
  readonly logger: Logger
}

/**
 * One area's routes (a plugin): registers them on `app` with the route-level checks of `ctx`. `app`
 * is the API's route scope, registered after swagger (so the routes are in the OpenAPI document) and
 * with the API's error handler: a thrown NodusError answers `{ code, message, details }` with its
 * status. Build one with the area's `xRoutes(deps)` factory, which takes only what its routes use.
 */
export type ApiRoutes = (app: FastifyInstance, ctx: ApiRouteContext) => void

export interface ApiServerDeps {
  /** The bearer token of the routes that need it (`<data-dir>/api-token`). */
  token: string
  logger: Logger
  /** The areas' routes, registered in this order (within a path, OpenAPI lists methods in it). */
  routes: readonly ApiRoutes[]
  /** Request counts and latencies (onResponse) and `GET /metrics`; without it `/metrics` is 503 NOT_STARTED. */
  metrics?: NodusMetrics
}

export interface ApiServerOptions {
  /** Requests per minute to token routes with the valid token (one bucket for the holder). Default 600. */
  mutatingPerMinute: number
  /** Requests per minute per client address to token routes without the valid token. Default 120. */
  unauthenticatedPerMinute: number
  /**
   * Host names accepted in the Host header besides IP literals, `localhost` and the host `listen` binds
   * (config `api.allowedHosts`). Default none.
   */
  allowedHosts: readonly string[]
  /** Largest upload (`POST /files` body), bytes. Default 64 GiB (config `api.maxUploadBytes`). */
  maxUploadBytes: number
}

/** The defaults of {@link ApiServerOptions}, the same as the config keys' defaults. */
export const DEFAULT_API_OPTIONS: Readonly<ApiServerOptions> = Object.freeze({
  mutatingPerMinute: 600,
  unauthenticatedPerMinute: 120,
  allowedHosts: [],
  maxUploadBytes: 64 * 2 ** 30,
})

export interface ApiServer {
  app: FastifyInstance
  /** Listen and return the base URL (`http://127.0.0.1:PORT`). Throws PORT_IN_USE. */
  listen(host: string, port: number): Promise<string>
  close(): Promise<void>
}

/** Largest JSON body, bytes. */
const MAX_JSON_BYTES = 64 * 1024

export function createApiServer(
  deps: ApiServerDeps,
  options: ApiServerOptions = DEFAULT_API_OPTIONS,
): ApiServer {
  const app = Fastify({
    logger: false,
    bodyLimit: MAX_JSON_BYTES,
    ajv: { customOptions: { removeAdditional: false } },
    // A missing Host gets the guard's 403 in the API's format rather than Node's bare 400.
    http: { maxHeaderSize: MAX_HEADER_BYTES, requireHostHeader: false },
    clientErrorHandler,
    frameworkErrors,
  })
  // Uploads are streamed to the handler as they are; their size is bounded by the guard
  // (Content-Length) and by capBytes (chunked bodies).
  app.addContentTypeParser(
    'application/octet-stream',
    { bodyLimit: options.maxUploadBytes },
    (_req, payload, done) => {
      done(null, payload)
    },
  )
  void app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'nodus node API',
        version: NODUS_VERSION,
        description:
          'HTTP API of one nodus node. Binds 127.0.0.1 by default. Mutating routes need `Authorization: Bearer <token>` (the token is in `<data-dir>/api-token`).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  })
  void app.register(rateLimit, { global: false })

  // Host check on every request; token, rate limits and upload size on the routes that need the token.
  const guard = installApiGuard(app, deps.token, options)
  // A WebSocket upgrade request (GET /graphql, src/kv/graphql.ts) that gets an HTTP answer instead (the
  // guard refused it, or its route is no WebSocket route) holds a socket the HTTP server no longer
  // reads or closes: close it once answered, or it lingers (and holds up close()) while the client
  // keeps it open. An upgraded one is hijacked and never gets here.
  app.addHook('onResponse', async (req) => {
    const socket = req.raw.socket
    if (req.raw.headers.upgrade !== undefined && /\bupgrade\b/i.test(req.raw.headers.connection ?? ''))
      socket.end(() => socket.destroy())
  })
  /** The base URL, once listening. */
  let url = ''

  if (deps.metrics !== undefined) {
    const m = deps.metrics
    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url ?? 'unknown'
      m.apiRequests.inc({ route, method: req.method, status: String(reply.statusCode) })
      m.apiSeconds.observe({ route, method: req.method }, reply.elapsedTime / 1000)
    })
  }

  app.setErrorHandler((err, _req, reply) => {
    if (isNodusError(err)) {
      void reply.code(HTTP_STATUS[err.code]).send(err.toJSON())
      return
    }
    const e = err as { statusCode?: number; message?: string; validation?: unknown; code?: string }
    if (e.validation !== undefined) {
      void reply
        .code(400)
        .send({ code: 'INVALID_ARGUMENT', message: e.message ?? 'invalid request', details: {} })
      return
    }
    const status = e.statusCode ?? 500
    if (status >= 500) deps.logger.error({ err: e.message }, 'api error')
    const code =
      status === 429
        ? 'RATE_LIMITED'
        : status === 413
          ? 'MESSAGE_TOO_LARGE'
          : status >= 500
            ? 'INTERNAL'
            : 'INVALID_ARGUMENT'
    void reply.code(status).send({ code, message: e.message ?? 'error', details: {} })
  })
  app.setNotFoundHandler((req, reply) => {
    void reply
      .code(404)
      .send({ code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}`, details: {} })
  })

  const ctx: ApiRouteContext = {
    // Route options of routes that need the token: checked in onRequest, before any body is parsed.
    mutating: { onRequest: guard.guardToken },
    unmetered: { onRequest: guard.guardTokenUnmetered },
    checkToken: guard.checkToken,
    upload: { onRequest: guard.guardUpload },
    // Node holds a body with a Content-Length to that length (the guard bounded it); a chunked body is
    // counted as it comes.
    uploadBody: (req) =>
      req.headers['content-length'] === undefined
        ? capBytes(req.body as IncomingMessage, options.maxUploadBytes)
        : (req.body as IncomingMessage),
    url: () => url,
    logger: deps.logger,
  }
  // Routes live in a plugin registered after swagger, so that swagger's onRoute hook sees them.
  void app.register(async (r) => {
    r.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
    registerDashboard(r)
    r.get(
      '/metrics',
      {
        schema: {
          tags: ['system'],
          summary: 'Prometheus metrics (text exposition format)',
          produces: ['text/plain'],
        },
      },
      async (_req, reply) => {
        if (deps.metrics === undefined) throw new NodusError('NOT_STARTED', 'metrics are not enabled')
        return reply.header('content-type', deps.metrics.registry.contentType).send(await deps.metrics.text())
      },
    )
    for (const routes of deps.routes) routes(r, ctx)
  })

  return {
    app,
    async listen(host, port) {
      guard.allowHost(host)
      try {
        url = await app.listen({ host, port })
        return url
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new NodusError('PORT_IN_USE', `API port ${port} on ${host} is in use`, {
            details: { host, port },
          })
        }
        throw err
      }
    },
    async close() {
      await app.close()
    },
  }
}
