/**
 * The web dashboard, served by the node at `/` with its assets under `/ui/`. No build step: the page is
 * plain ES modules in src/api/dashboard/, and its libraries (preact, htm, uPlot) are the ESM builds in
 * node_modules, served as they are and found through an import map in index.html.
 *
 * Routes are hidden from the OpenAPI document (`schema: { hide: true }`). Every response carries a
 * strong ETag and `Cache-Control: no-cache` (the browser revalidates and gets 304 while nothing
 * changed), and the page a Content-Security-Policy that allows only this origin and the import map's
 * hash, so a file name or peer address cannot run script and read the API token the user pasted.
 */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
}

/** Library files the page imports, by the name under `/ui/vendor/`, as module specifiers to resolve. */
const VENDOR: Readonly<Record<string, string>> = {
  'preact.mjs': 'preact',
  'hooks.mjs': 'preact/hooks',
  'htm.mjs': 'htm',
  'uPlot.esm.js': 'uplot/dist/uPlot.esm.js',
  'uPlot.min.css': 'uplot/dist/uPlot.min.css',
}

interface Asset {
  /** Absolute path on disk. */
  path: string
  contentType: string
}

interface Loaded {
  body: Buffer
  etag: string
}

const DASHBOARD_DIR = new URL('./dashboard/', import.meta.url)

/** The assets by URL path: `/` is index.html, `/ui/NAME` the page's own files, `/ui/vendor/NAME` libraries. */
function assetTable(): Map<string, Asset> {
  const table = new Map<string, Asset>()
  for (const name of readdirSync(DASHBOARD_DIR)) {
    const contentType = CONTENT_TYPES[extname(name)]
    // Declaration files describe modules for tsc; the browser has no use for them.
    if (contentType === undefined || name.endsWith('.d.ts')) continue
    const path = fileURLToPath(new URL(name, DASHBOARD_DIR))
    table.set(name === 'index.html' ? '/' : `/ui/${name}`, { path, contentType })
  }
  for (const [name, specifier] of Object.entries(VENDOR)) {
    let path: string
    try {
      path = fileURLToPath(import.meta.resolve(specifier))
    } catch {
      continue // not installed: the route answers 404 and the page says what failed to load
    }
    table.set(`/ui/vendor/${name}`, { path, contentType: CONTENT_TYPES[extname(name)] ?? 'text/plain' })
  }
  return table
}

/** `script-src` hashes of the page's inline scripts (the import map), in CSP source syntax. */
function inlineScriptHashes(html: string): string[] {
  const out: string[] = []
  for (const m of html.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)) {
    out.push(
      `'sha256-${createHash('sha256')
        .update(m[1] ?? '')
        .digest('base64')}'`,
    )
  }
  return out
}

/**
 * Serve the dashboard: `GET /` (the page) and `GET /ui/*` (its modules, styles and libraries). Files
 * are read from disk on first request and kept in memory (about 200 KB in all).
 */
export function registerDashboard(app: FastifyInstance): void {
  const table = assetTable()
  const cache = new Map<string, Loaded>()
  let csp: string | undefined

  const load = (asset: Asset): Loaded => {
    let hit = cache.get(asset.path)
    if (hit === undefined) {
      const body = readFileSync(asset.path)
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`
      hit = { body, etag }
      cache.set(asset.path, hit)
    }
    return hit
  }

  const pageCsp = (html: Buffer): string => {
    csp ??= [
      "default-src 'none'",
      `script-src 'self' ${inlineScriptHashes(html.toString('utf8')).join(' ')}`,
      "style-src 'self'",
      "img-src 'self' data:",
      "connect-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; ')
    return csp
  }

  const serve = async (path: string, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const asset = table.get(path)
    if (asset === undefined) {
      return reply.code(404).send({ code: 'NOT_FOUND', message: `no dashboard file ${path}`, details: {} })
    }
    let loaded: Loaded
    try {
      loaded = load(asset)
    } catch {
      return reply
        .code(404)
        .send({ code: 'NOT_FOUND', message: `dashboard file ${path} is missing`, details: {} })
    }
    void reply
      .header('content-type', asset.contentType)
      .header('cache-control', 'no-cache')
      .header('etag', loaded.etag)
      .header('x-content-type-options', 'nosniff')
    if (path === '/') {
      void reply
        .header('content-security-policy', pageCsp(loaded.body))
        .header('referrer-policy', 'no-referrer')
    }
    if (req.headers['if-none-match'] === loaded.etag) return reply.code(304).send()
    return reply.send(loaded.body)
  }

  app.get('/', { schema: { hide: true } }, async (req, reply) => serve('/', req, reply))
  app.get<{ Params: { '*': string } }>('/ui/*', { schema: { hide: true } }, async (req, reply) =>
    serve(`/ui/${req.params['*']}`, req, reply),
  )
}
