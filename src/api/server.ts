/**
 * The HTTP API (fastify), bound to 127.0.0.1 by default. Mutating routes need the bearer token that
 * `nodus init` wrote. Errors are `{ code, message, details }` with the status from HTTP_STATUS.
 */
import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import { multiaddr } from '@multiformats/multiaddr'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { isNodusError, NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import type { NodusNode } from '../node/node.ts'
import { cidToString, parseCid } from '../storage/index.ts'
import { bearerMatches } from './auth.ts'

export interface ApiServerDeps {
  token: string
  logger: Logger
  /** The node, resolved lazily (the API is built before the node object exists). */
  node: () => NodusNode
}

export interface ApiServer {
  app: FastifyInstance
  /** Listen and return the base URL (`http://127.0.0.1:PORT`). Throws PORT_IN_USE. */
  listen(host: string, port: number): Promise<string>
  close(): Promise<void>
}

/** Largest upload accepted in one request, bytes (1 TiB). */
const MAX_UPLOAD_BYTES = 2 ** 40

export function createApiServer(deps: ApiServerDeps): ApiServer {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 })
  app.addContentTypeParser(
    'application/octet-stream',
    { bodyLimit: MAX_UPLOAD_BYTES },
    (_req, payload, done) => {
      done(null, payload)
    },
  )

  const requireToken = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!bearerMatches(req.headers.authorization, deps.token)) {
      await reply.code(401).send({ code: 'UNAUTHORIZED', message: 'missing or wrong bearer token' })
    }
  }

  app.setErrorHandler((err, _req, reply) => {
    if (isNodusError(err)) {
      void reply.code(err.status).send(err.toJSON())
      return
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500
    if (status >= 500) deps.logger.error({ err: (err as Error).message }, 'api error')
    void reply
      .code(status)
      .send({ code: status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT', message: (err as Error).message })
  })

  app.get('/health', async () => ({ ok: true }))
  app.get('/ready', async () => ({ ok: true }))
  app.get('/system/info', async () => {
    const node = deps.node()
    return { ...node.info(), version: '0.1.0', node: process.version }
  })
  app.get('/network/peers', async () => {
    const node = deps.node()
    return {
      peers: node.libp2p
        .getConnections()
        .map((c) => ({ peerId: c.remotePeer.toString(), addr: c.remoteAddr.toString() })),
    }
  })
  app.post<{ Body: { multiaddr?: unknown } }>(
    '/network/connect',
    { preHandler: requireToken },
    async (req) => {
      const addr = req.body?.multiaddr
      if (typeof addr !== 'string')
        throw new NodusError('INVALID_ARGUMENT', 'body.multiaddr must be a string')
      let ma: ReturnType<typeof multiaddr>
      try {
        ma = multiaddr(addr)
      } catch (err) {
        throw new NodusError('INVALID_ARGUMENT', `bad multiaddr: ${(err as Error).message}`)
      }
      const conn = await deps.node().libp2p.dial(ma, { signal: AbortSignal.timeout(10_000) })
      return { peerId: conn.remotePeer.toString() }
    },
  )
  app.get('/storage/usage', async () => deps.node().store.usage())

  app.post<{ Querystring: { name?: string } }>('/files', { preHandler: requireToken }, async (req) => {
    if (req.headers['content-type'] !== 'application/octet-stream') {
      throw new NodusError('INVALID_ARGUMENT', 'upload with Content-Type: application/octet-stream')
    }
    const body = req.body as IncomingMessage
    const ac = new AbortController()
    req.raw.once('close', () => {
      if (!req.raw.complete) ac.abort(new NodusError('ABORTED', 'client went away'))
    })
    const name = typeof req.query.name === 'string' ? req.query.name.slice(0, 4096) : undefined
    const res = await deps
      .node()
      .files.put(body, { signal: ac.signal, ...(name === undefined ? {} : { name }) })
    return {
      cid: cidToString(res.cid),
      bytes: res.manifest.fileSize,
      segments: res.manifest.segments.length,
      k: res.manifest.k,
      m: res.manifest.m,
      manifestHolders: res.manifestHolders,
      holders: [...new Set(res.manifest.segments.flatMap((sg) => sg.shards.flatMap((sh) => sh.holders)))],
    }
  })

  app.get<{ Params: { cid: string } }>('/files/:cid', async (req, reply) => {
    const cid = parseCid(req.params.cid)
    const ac = new AbortController()
    reply.raw.once('close', () => ac.abort(new NodusError('ABORTED', 'client went away')))
    const files = deps.node().files
    const manifest = await files.resolveManifest(cid, { signal: ac.signal })
    const stream = Readable.from(files.get(cid, { signal: ac.signal, manifest }), { objectMode: false })
    stream.on('error', (err) =>
      deps.logger.warn({ cid: req.params.cid, err: err.message }, 'download failed mid-stream'),
    )
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', String(manifest.manifest.fileSize))
      .header('x-nodus-manifest', cidToString(manifest.cid))
      .send(stream)
  })

  return {
    app,
    async listen(host, port) {
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
