/**
 * The HTTP API (fastify), bound to 127.0.0.1 by default. Mutating routes need the bearer token that
 * `nodus init` wrote (compared in constant time), checked in onRequest before any body is parsed;
 * every request's Host must be this API's own address or allow-listed (src/api/guard.ts). Errors are
 * `{ code, message, details }` with the status from HTTP_STATUS (docs/ERRORS.md). Route schemas
 * generate the OpenAPI document served at `/openapi.json` and written to docs/API.md.
 */
import type { IncomingMessage } from 'node:http'
import rateLimit from '@fastify/rate-limit'
import swagger from '@fastify/swagger'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import Fastify, { type FastifyInstance } from 'fastify'
import { type Clock, systemClock } from '../common/clock.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import { HTTP_STATUS } from '../config/index.ts'
import { signEd25519 } from '../crypto/index.ts'
import type { NodusMetrics } from '../metrics/index.ts'
import type { NodusNode } from '../node/node.ts'
import { cidToString, parseCid, signGrant } from '../storage/index.ts'
import { registerDashboard } from './dashboard.ts'
import { capBytes, clientErrorHandler, frameworkErrors, installApiGuard, MAX_HEADER_BYTES } from './guard.ts'
import * as S from './schemas.ts'
import { writeParts } from './write-parts.ts'

export interface ApiServerDeps {
  token: string
  logger: Logger
  /** The node, resolved lazily (the API is built before the node object exists). */
  node: () => NodusNode
  metrics?: NodusMetrics
  /** Source of pin expiries and grant times; defaults to the system clock. */
  clock?: Clock
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
const VERSION = '0.1.0'

/** Parse one `bytes=a-b` range against a size. Undefined: no usable range (serve the whole file). */
export function parseRange(
  header: string | undefined,
  size: number,
): { offset: number; length: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (m === null || (m[1] === '' && m[2] === '')) return undefined
  let start: number
  let end: number
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0) return 'unsatisfiable'
    start = Math.max(0, size - suffix)
    end = size - 1
  } else {
    start = Number(m[1])
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  }
  if (start >= size || start > end) return 'unsatisfiable'
  return { offset: start, length: end - start + 1 }
}

export function createApiServer(
  deps: ApiServerDeps,
  options: ApiServerOptions = DEFAULT_API_OPTIONS,
): ApiServer {
  const clock = deps.clock ?? systemClock
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
        version: VERSION,
        description:
          'HTTP API of one nodus node. Binds 127.0.0.1 by default. Mutating routes need `Authorization: Bearer <token>` (the token is in `<data-dir>/api-token`).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  })
  void app.register(rateLimit, { global: false })

  // Host check on every request; token, rate limits and upload size on the routes that need the token.
  const guard = installApiGuard(app, deps.token, options)
  /** Route options of routes that need the token: checked in onRequest, before any body is parsed. */
  const mutating = { onRequest: guard.guardToken }

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

  // Routes live in a plugin registered after swagger, so that swagger's onRoute hook sees them.
  void app.register(async (r) => {
    r.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
    registerDashboard(r)

    r.get(
      '/health',
      { schema: { tags: ['system'], summary: 'Liveness: the process answers', response: { 200: S.Ok } } },
      async () => ({ ok: true }),
    )
    r.get(
      '/ready',
      {
        schema: {
          tags: ['system'],
          summary: 'Readiness: the node is started and has peers or runs alone',
          response: { 200: S.Ready },
        },
      },
      async () => {
        const n = deps.node()
        return { ok: true, peers: n.libp2p.getPeers().length }
      },
    )
    r.get(
      '/system/info',
      {
        schema: {
          tags: ['system'],
          summary: 'Identity, addresses and version',
          response: { 200: S.SystemInfo },
        },
      },
      async () => {
        const n = deps.node()
        return { ...n.info(), version: VERSION, node: process.version }
      },
    )
    r.get(
      '/system/status',
      {
        schema: {
          tags: ['system'],
          summary: 'Uptime, peers, usage and in-flight work',
          response: { 200: S.SystemStatus },
        },
      },
      async () => {
        const n = deps.node()
        return {
          uptimeSeconds: Math.round(process.uptime()),
          peers: n.libp2p.getPeers().length,
          connections: n.libp2p.getConnections().length,
          usage: n.store.usage(),
          shardRequestsInFlight: n.shardServer.inFlight,
          shardRequestsServed: n.shardServer.served,
          provideQueueDepth: n.provideQueueDepth,
          rssBytes: process.memoryUsage().rss,
        }
      },
    )
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

    r.get(
      '/network/peers',
      { schema: { tags: ['network'], summary: 'Connected peers', response: { 200: S.Peers } } },
      async () => {
        const n = deps.node()
        return {
          peers: n.libp2p.getConnections().map((c) => ({
            peerId: c.remotePeer.toString(),
            addr: c.remoteAddr.toString(),
            direction: c.direction,
            openedAt: c.timeline.open,
            trust: n.trust.score(c.remotePeer.toString()),
            latencyMs: n.perf.stats(c.remotePeer.toString())?.latencyMs ?? null,
            performance: n.perf.score(c.remotePeer.toString()),
          })),
        }
      },
    )
    r.post<{ Body: { multiaddr: string } }>(
      '/network/connect',
      {
        ...mutating,
        schema: {
          tags: ['network'],
          summary: 'Dial a peer by multiaddr',
          security: [{ bearer: [] }],
          body: S.ConnectBody,
          response: { 200: S.ConnectResult },
        },
      },
      async (req) => {
        let ma: ReturnType<typeof multiaddr>
        try {
          ma = multiaddr(req.body.multiaddr)
        } catch (err) {
          throw new NodusError('INVALID_ARGUMENT', `bad multiaddr: ${(err as Error).message}`)
        }
        try {
          const conn = await deps.node().libp2p.dial(ma, { signal: AbortSignal.timeout(10_000) })
          return { peerId: conn.remotePeer.toString() }
        } catch (err) {
          throw new NodusError(
            'PEER_UNREACHABLE',
            `cannot connect to ${req.body.multiaddr}: ${(err as Error).message}`,
          )
        }
      },
    )

    r.get(
      '/storage/usage',
      {
        schema: {
          tags: ['storage'],
          summary: 'Bytes and shards stored, capacity',
          response: { 200: S.Usage },
        },
      },
      async () => deps.node().store.usage(),
    )
    app.get<{ Querystring: { limit?: number; after?: string } }>(
      '/storage/shards',
      {
        schema: {
          tags: ['storage'],
          summary: 'Shards held by this node, paged by CID',
          querystring: S.PageQuery,
          response: { 200: S.ShardList },
        },
      },
      async (req) => {
        const shards = deps.node().store.list({
          limit: req.query.limit ?? 100,
          ...(req.query.after === undefined ? {} : { after: req.query.after }),
        })
        return { shards, next: shards.length > 0 ? (shards[shards.length - 1]?.cid ?? null) : null }
      },
    )

    app.get<{ Querystring: { limit?: number; after?: string } }>(
      '/files',
      {
        schema: {
          tags: ['files'],
          summary: 'Files put through this node (its pins)',
          querystring: S.PageQuery,
          response: { 200: S.FileList },
        },
      },
      async (req) => {
        const files = deps.node().fileIndex.list({
          limit: req.query.limit ?? 100,
          ...(req.query.after === undefined ? {} : { after: req.query.after }),
        })
        return { files: files.map((f) => ({ ...f, name: f.name ?? null, expiresAt: f.expiresAt ?? null })) }
      },
    )
    r.post<{ Querystring: { name?: string; ttl?: number; critical?: boolean } }>(
      '/files',
      {
        onRequest: guard.guardUpload,
        schema: {
          tags: ['files'],
          summary:
            'Upload a file (streamed body, Content-Type: application/octet-stream); returns the manifest CID',
          security: [{ bearer: [] }],
          querystring: S.PutQuery,
          response: { 200: S.PutResult },
        },
      },
      async (req) => {
        if (req.headers['content-type'] !== 'application/octet-stream') {
          throw new NodusError('INVALID_ARGUMENT', 'upload with Content-Type: application/octet-stream')
        }
        // Node holds a body with a Content-Length to that length (the guard bounded it); a chunked
        // body is counted as it comes.
        const body =
          req.headers['content-length'] === undefined
            ? capBytes(req.body as IncomingMessage, options.maxUploadBytes)
            : (req.body as IncomingMessage)
        const ac = new AbortController()
        req.raw.once('close', () => {
          if (!req.raw.complete) ac.abort(new NodusError('ABORTED', 'client went away'))
        })
        const node = deps.node()
        const name = req.query.name
        const expiresAt = req.query.ttl === undefined ? undefined : clock.now() + req.query.ttl * 1000
        const res = await node.files.put(body, {
          signal: ac.signal,
          // Nothing else reads the body's chunks: free each one as soon as it is copied.
          releaseChunks: true,
          ...(name === undefined ? {} : { name }),
          ...(expiresAt === undefined ? {} : { expiresAt }),
        })
        const cid = cidToString(res.cid)
        const critical = req.query.critical === true
        await node.fileIndex.put({
          cid,
          name,
          bytes: res.manifest.fileSize,
          segments: res.manifest.segments.length,
          k: res.manifest.k,
          m: res.manifest.m,
          createdAt: res.manifest.createdAt,
          expiresAt,
          ...(critical ? { critical } : {}),
        })
        // Tell the keepers now; renewals repeat it.
        if (critical) {
          await node.files.pin(res.cid, expiresAt, {
            signal: AbortSignal.timeout(120_000),
            critical: true,
          })
        }
        return {
          cid,
          bytes: res.manifest.fileSize,
          segments: res.manifest.segments.length,
          k: res.manifest.k,
          m: res.manifest.m,
          manifestHolders: res.manifestHolders,
          holders: [...new Set(res.manifest.segments.flatMap((sg) => sg.shards.flatMap((sh) => sh.holders)))],
          expiresAt: expiresAt ?? null,
        }
      },
    )
    app.get<{ Params: { cid: string } }>(
      '/files/:cid/manifest',
      {
        schema: {
          tags: ['files'],
          summary: 'A file manifest: sizes, k, m, and per segment its shard CIDs and holders',
          params: S.CidParams,
          response: { 200: S.ManifestView },
        },
      },
      async (req) => {
        const cid = parseCid(req.params.cid)
        const signed = await deps.node().files.resolveManifest(cid, { signal: AbortSignal.timeout(60_000) })
        const m = signed.manifest
        return {
          cid: cidToString(signed.cid),
          name: m.name ?? null,
          fileSize: m.fileSize,
          k: m.k,
          m: m.m,
          segmentSize: m.segmentSize,
          uploader: m.uploader.peerId,
          createdAt: m.createdAt,
          revision: m.revision,
          segments: m.segments.map((s) => ({
            size: s.size,
            shardSize: s.shardSize,
            shards: s.shards.map((sh) => ({ cid: cidToString(sh.cid), holders: sh.holders })),
          })),
        }
      },
    )
    app.get<{ Params: { cid: string } }>(
      '/files/:cid',
      {
        schema: {
          tags: ['files'],
          summary: 'Download a file (streamed; supports a single HTTP Range)',
          params: S.CidParams,
          produces: ['application/octet-stream'],
        },
      },
      async (req, reply) => {
        const cid = parseCid(req.params.cid)
        const ac = new AbortController()
        reply.raw.once('close', () => ac.abort(new NodusError('ABORTED', 'client went away')))
        const files = deps.node().files
        const manifest = await files.resolveManifest(cid, { signal: ac.signal })
        const size = manifest.manifest.fileSize
        const range = parseRange(req.headers.range, size)
        if (range === 'unsatisfiable') {
          return reply
            .code(416)
            .header('content-range', `bytes */${size}`)
            .send({ code: 'INVALID_ARGUMENT', message: 'range not satisfiable', details: { size } })
        }
        const parts = files
          .get(cid, {
            signal: ac.signal,
            manifest,
            ...(range === undefined ? {} : { range }),
          })
          [Symbol.asyncIterator]()
        // Up to the first part an error is an ordinary error response; after it, the status and
        // headers are out and a failure can only cut the body short.
        const first = await parts.next()
        const headers: Record<string, string> = {
          'content-type': 'application/octet-stream',
          'accept-ranges': 'bytes',
          'x-nodus-manifest': cidToString(manifest.cid),
        }
        if (range !== undefined) {
          headers['content-range'] = `bytes ${range.offset}-${range.offset + range.length - 1}/${size}`
          headers['content-length'] = String(range.length)
        } else headers['content-length'] = String(size)
        // Written by hand rather than as a piped stream: each part is freed once the socket has it.
        reply.hijack()
        reply.raw.writeHead(range === undefined ? 200 : 206, headers)
        try {
          await writeParts(reply.raw, first.done === true ? undefined : first.value, parts, ac.signal)
        } catch (err) {
          deps.logger.warn({ cid: req.params.cid, err: (err as Error).message }, 'download failed mid-stream')
          reply.raw.destroy()
          await parts.return?.(undefined)
        }
      },
    )
    r.post<{ Params: { cid: string }; Body: { pinner: string; ttl?: number } }>(
      '/files/:cid/grant',
      {
        ...mutating,
        schema: {
          tags: ['files'],
          summary:
            "Sign a pin grant: let another node extend this node's leases of a file it uploaded (for `pin --grant`)",
          security: [{ bearer: [] }],
          params: S.CidParams,
          body: S.GrantBody,
          response: { 200: S.GrantResult },
        },
      },
      async (req) => {
        const cidObj = parseCid(req.params.cid)
        const node = deps.node()
        try {
          peerIdFromString(req.body.pinner)
        } catch {
          throw new NodusError('INVALID_ARGUMENT', 'pinner must be a PeerId', {
            details: { pinner: req.body.pinner },
          })
        }
        const signed = await node.files.resolveManifest(cidObj, { signal: AbortSignal.timeout(60_000) })
        if (signed.manifest.uploader.peerId !== node.peerId) {
          throw new NodusError('INVALID_ARGUMENT', "only the file's uploader can grant pins of it", {
            details: { cid: req.params.cid, uploader: signed.manifest.uploader.peerId },
          })
        }
        const expiresAt = clock.now() + (req.body.ttl ?? 30 * 24 * 3600) * 1000
        const grant = await signGrant(
          {
            issuer: node.peerId,
            pinner: req.body.pinner,
            manifest: signed.cid,
            expiresAt,
            issuedAt: clock.now(),
          },
          (d) => signEd25519(node.identity.ed25519, d),
        )
        return {
          cid: cidToString(signed.cid),
          pinner: req.body.pinner,
          expiresAt,
          grant: Buffer.from(grant).toString('base64'),
        }
      },
    )
    r.post<{
      Params: { cid: string }
      Body: { ttl?: number; critical?: boolean; grant?: string } | undefined
    }>(
      '/files/:cid/pin',
      {
        ...mutating,
        schema: {
          tags: ['files'],
          summary:
            'Pin a file (on this node and on every holder of its shards), optionally until a TTL in seconds',
          security: [{ bearer: [] }],
          params: S.CidParams,
          body: S.PinBody,
          response: { 200: S.PinResult },
        },
      },
      async (req) => {
        const cidObj = parseCid(req.params.cid)
        const node = deps.node()
        const ttl = req.body?.ttl
        const expiresAt = ttl === undefined ? undefined : clock.now() + ttl * 1000
        const signed = await node.files.resolveManifest(cidObj, { signal: AbortSignal.timeout(60_000) })
        const critical = req.body?.critical === true
        const grant = req.body?.grant
        const r = await node.files.pin(cidObj, expiresAt, {
          signal: AbortSignal.timeout(120_000),
          manifest: signed,
          ...(critical ? { critical } : {}),
          ...(grant === undefined ? {} : { grant: Buffer.from(grant, 'base64') }),
        })
        const m = signed.manifest
        const cid = cidToString(signed.cid)
        await node.fileIndex.put({
          cid,
          name: m.name,
          bytes: m.fileSize,
          segments: m.segments.length,
          k: m.k,
          m: m.m,
          createdAt: m.createdAt,
          expiresAt,
          ...(critical ? { critical } : {}),
          ...(grant === undefined ? {} : { grant }),
        })
        return { cid, expiresAt: expiresAt ?? null, ...r }
      },
    )
    r.delete<{ Params: { cid: string } }>(
      '/files/:cid',
      {
        ...mutating,
        schema: {
          tags: ['files'],
          summary: 'Unpin a file put through this node',
          security: [{ bearer: [] }],
          params: S.CidParams,
          response: { 200: S.Unpinned },
        },
      },
      async (req) => {
        const cid = cidToString(parseCid(req.params.cid))
        const removed = await deps.node().fileIndex.delete(cid)
        if (!removed)
          throw new NodusError('MANIFEST_NOT_FOUND', `no pin for ${cid} on this node`, { details: { cid } })
        return { cid, unpinned: true }
      },
    )
    r.get(
      '/identity',
      {
        schema: {
          tags: ['identity'],
          summary: "The node's DID and public keys",
          response: { 200: S.Identity },
        },
      },
      async () => {
        const n = deps.node()
        return n.identityInfo()
      },
    )
  })

  return {
    app,
    async listen(host, port) {
      guard.allowHost(host)
      try {
        return await app.listen({ host, port })
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
