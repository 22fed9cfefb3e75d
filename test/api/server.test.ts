/**
 * createApiServer with route plugins of its own making, through `app.inject()`: what the server adds
 * to any area's routes (error format, token hook, OpenAPI, metrics), with no area and no node.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type ApiRoutes, createApiServer, DEFAULT_API_OPTIONS } from '../../src/api/index.ts'
import { NodusError } from '../../src/common/errors.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { NodusMetrics } from '../../src/metrics/index.ts'
import { AUTH, errorOf, routesApi, TEST_TOKEN } from '../utils/api-node.ts'

/** A plugin with one open route, one token route, and routes that fail in chosen ways. */
const probe: ApiRoutes = (r, ctx) => {
  r.get('/probe/open', { schema: { tags: ['probe'], summary: 'open' } }, async () => ({ ok: true }))
  r.post(
    '/probe/guarded',
    { ...ctx.mutating, schema: { summary: 'guarded', security: [{ bearer: [] }] } },
    async () => ({
      ok: true,
    }),
  )
  r.post(
    '/probe/unmetered',
    { ...ctx.unmetered, schema: { summary: 'unmetered', security: [{ bearer: [] }] } },
    async () => ({ ok: true }),
  )
  r.get('/probe/nodus', async () => {
    throw new NodusError('PEER_BANNED', 'banned', { details: { peer: 'x' } })
  })
  r.get('/probe/bug', async () => {
    throw new TypeError('x is undefined')
  })
}

test('route plugins get the error format: NodusError status and body, anything else 500 INTERNAL', async (t) => {
  const server = await routesApi([probe])
  t.after(() => server.close())
  const nodus = await server.app.inject({ method: 'GET', url: '/probe/nodus' })
  assert.equal(nodus.statusCode, 403)
  assert.deepEqual(errorOf(nodus.body), { code: 'PEER_BANNED', message: 'banned', details: { peer: 'x' } })
  const bug = await server.app.inject({ method: 'GET', url: '/probe/bug' })
  assert.equal(bug.statusCode, 500)
  assert.equal(errorOf(bug.body).code, 'INTERNAL')
  const open = await server.app.inject({ method: 'GET', url: '/probe/open' })
  assert.deepEqual(open.json(), { ok: true })
})

test('ctx.mutating: 401 without the token, 429 past the rate limit, with the token the route runs', async (t) => {
  const server = await routesApi([probe], { mutatingPerMinute: 2, unauthenticatedPerMinute: 1 })
  t.after(() => server.close())
  const anon = await server.app.inject({ method: 'POST', url: '/probe/guarded' })
  assert.equal(anon.statusCode, 401)
  assert.equal(errorOf(anon.body).code, 'UNAUTHORIZED')
  const anonAgain = await server.app.inject({ method: 'POST', url: '/probe/guarded' })
  assert.equal(anonAgain.statusCode, 429, 'strangers have their own bucket, of 1')
  for (let i = 0; i < 2; i++) {
    const ok = await server.app.inject({ method: 'POST', url: '/probe/guarded', headers: AUTH })
    assert.equal(ok.statusCode, 200)
  }
  const over = await server.app.inject({ method: 'POST', url: '/probe/guarded', headers: AUTH })
  assert.equal(over.statusCode, 429)
  assert.equal(errorOf(over.body).code, 'RATE_LIMITED')
  assert.ok(Number(over.headers['retry-after']) > 0)
})

test('ctx.unmetered: the token holder is not counted, callers without it still get 401 then 429', async (t) => {
  const server = await routesApi([probe], { mutatingPerMinute: 2, unauthenticatedPerMinute: 1 })
  t.after(() => server.close())
  for (let i = 0; i < 5; i++) {
    const ok = await server.app.inject({ method: 'POST', url: '/probe/unmetered', headers: AUTH })
    assert.equal(ok.statusCode, 200, `request ${i} with the token`)
  }
  const metered = await server.app.inject({ method: 'POST', url: '/probe/guarded', headers: AUTH })
  assert.equal(metered.statusCode, 200, 'the unmetered requests did not use up the holder’s bucket')
  const anon = await server.app.inject({ method: 'POST', url: '/probe/unmetered' })
  assert.equal(anon.statusCode, 401)
  const anonAgain = await server.app.inject({ method: 'POST', url: '/probe/unmetered' })
  assert.equal(anonAgain.statusCode, 429)
})

test('the OpenAPI document lists the plugins’ routes, token routes with bearer security', async (t) => {
  const server = await routesApi([probe])
  t.after(() => server.close())
  const doc = (await server.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<string, Record<string, { summary?: string; security?: unknown[] }>>
  }
  assert.equal(doc.paths['/probe/open']?.get?.summary, 'open')
  assert.equal(doc.paths['/probe/open']?.get?.security, undefined)
  assert.deepEqual(doc.paths['/probe/guarded']?.post?.security, [{ bearer: [] }])
  assert.ok('/metrics' in doc.paths)
  assert.equal(doc.paths['/openapi.json'], undefined)
})

test('/metrics: Prometheus text with the request counts of plugin routes; 503 without metrics', async (t) => {
  const metrics = new NodusMetrics()
  const server = createApiServer(
    { token: TEST_TOKEN, logger: silentLogger(), routes: [probe], metrics },
    DEFAULT_API_OPTIONS,
  )
  t.after(() => server.close())
  await server.app.inject({ method: 'GET', url: '/probe/open' })
  const r = await server.app.inject({ method: 'GET', url: '/metrics' })
  assert.equal(r.statusCode, 200)
  assert.match(String(r.headers['content-type']), /text\/plain/)
  assert.match(r.body, /nodus_api_requests_total\{route="\/probe\/open",method="GET",status="200"\} 1/)

  const bare = await routesApi([])
  t.after(() => bare.close())
  const none = await bare.app.inject({ method: 'GET', url: '/metrics' })
  assert.equal(none.statusCode, 503)
  assert.equal(errorOf(none.body).code, 'NOT_STARTED')
})
