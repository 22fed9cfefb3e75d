/**
 * The storage area's HTTP routes: `/storage/usage`, `/storage/shards`, and `/files` (upload, list,
 * manifest, download with a single Range, pin, grant, unpin). Uploads, pins, grants and unpins go
 * through the {@link PinService}, which keeps the file index; the routes parse and shape.
 */
import { type ApiRoutes, parseRange, schemas as S, writeParts } from '../api/index.ts'
import { NodusError } from '../common/errors.ts'
import { cidToString, parseCid } from './codec/cid.ts'
import type { FileService } from './files/files.ts'
import type { PinService } from './files/pins-service.ts'
import type { ShardStore } from './store/shard-store.ts'

/** What the storage routes use. */
export interface StorageRoutesDeps {
  /** Usage and the paged shard list. */
  store: Pick<ShardStore, 'usage' | 'list'>
  /** Manifests and downloads. */
  files: Pick<FileService, 'resolveManifest' | 'get'>
  /** Uploads, the pin list, pins, grants, unpins. */
  pins: Pick<PinService, 'put' | 'list' | 'pin' | 'grant' | 'unpin'>
}

/** How long resolving a manifest for `GET /files/:cid/manifest` may take, ms. */
const MANIFEST_TIMEOUT_MS = 60_000

/** A page of a CID-ordered list from `?limit=&after=` (validated by S.PageQuery): 100 by default. */
function page(query: { limit?: number; after?: string }): { limit: number; after?: string } {
  return { limit: query.limit ?? 100, ...(query.after === undefined ? {} : { after: query.after }) }
}

/** The storage routes, as a plugin for createApiServer. */
export function storageRoutes(deps: StorageRoutesDeps): ApiRoutes {
  const { store, files, pins } = deps
  return (r, ctx) => {
    r.get(
      '/storage/usage',
      {
        schema: {
          tags: ['storage'],
          summary: 'Bytes and shards stored, capacity',
          response: { 200: S.Usage },
        },
      },
      async () => store.usage(),
    )
    r.get<{ Querystring: { limit?: number; after?: string } }>(
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
        const shards = store.list(page(req.query))
        return { shards, next: shards.length > 0 ? (shards[shards.length - 1]?.cid ?? null) : null }
      },
    )

    r.get<{ Querystring: { limit?: number; after?: string } }>(
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
        const list = pins.list(page(req.query))
        return { files: list.map((f) => ({ ...f, name: f.name ?? null, expiresAt: f.expiresAt ?? null })) }
      },
    )
    r.post<{ Querystring: { name?: string; ttl?: number; critical?: boolean } }>(
      '/files',
      {
        ...ctx.upload,
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
        const body = ctx.uploadBody(req)
        const ac = new AbortController()
        req.raw.once('close', () => {
          if (!req.raw.complete) ac.abort(new NodusError('ABORTED', 'client went away'))
        })
        const { name, ttl } = req.query
        const res = await pins.put(body, {
          signal: ac.signal,
          ...(name === undefined ? {} : { name }),
          ...(ttl === undefined ? {} : { ttlMs: ttl * 1000 }),
          ...(req.query.critical === true ? { critical: true } : {}),
        })
        const m = res.put.manifest
        return {
          cid: res.cid,
          bytes: m.fileSize,
          segments: m.segments.length,
          k: m.k,
          m: m.m,
          manifestHolders: res.put.manifestHolders,
          holders: [...new Set(m.segments.flatMap((sg) => sg.shards.flatMap((sh) => sh.holders)))],
          expiresAt: res.expiresAt ?? null,
        }
      },
    )
    r.get<{ Params: { cid: string } }>(
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
        const signed = await files.resolveManifest(cid, { signal: AbortSignal.timeout(MANIFEST_TIMEOUT_MS) })
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
    r.get<{ Params: { cid: string } }>(
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
        const manifest = await files.resolveManifest(cid, { signal: ac.signal, warm: true })
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
          ctx.logger.warn({ cid: req.params.cid, err: (err as Error).message }, 'download failed mid-stream')
          reply.raw.destroy()
          await parts.return?.(undefined)
        }
      },
    )
    r.post<{ Params: { cid: string }; Body: { pinner: string; ttl?: number } }>(
      '/files/:cid/grant',
      {
        ...ctx.mutating,
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
        const { ttl } = req.body
        const g = await pins.grant(
          req.params.cid,
          req.body.pinner,
          ttl === undefined ? {} : { ttlMs: ttl * 1000 },
        )
        return {
          cid: g.cid,
          pinner: g.pinner,
          expiresAt: g.expiresAt,
          grant: Buffer.from(g.grant).toString('base64'),
        }
      },
    )
    r.post<{
      Params: { cid: string }
      Body: { ttl?: number; critical?: boolean; grant?: string } | undefined
    }>(
      '/files/:cid/pin',
      {
        ...ctx.mutating,
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
        const cid = parseCid(req.params.cid)
        const ttl = req.body?.ttl
        const grant = req.body?.grant
        const p = await pins.pin(cid, {
          ...(ttl === undefined ? {} : { ttlMs: ttl * 1000 }),
          ...(req.body?.critical === true ? { critical: true } : {}),
          ...(grant === undefined ? {} : { grant }),
        })
        return {
          cid: p.cid,
          expiresAt: p.expiresAt ?? null,
          extended: p.extended,
          missing: p.missing,
          unreachable: p.unreachable,
        }
      },
    )
    r.delete<{ Params: { cid: string } }>(
      '/files/:cid',
      {
        ...ctx.mutating,
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
        await pins.unpin(cid)
        return { cid, unpinned: true }
      },
    )
  }
}
