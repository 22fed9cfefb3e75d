/**
 * Finding: the API did not check the Host header, so a web page could reach it through DNS rebinding
 * (evil.example resolving first to the attacker, then to 127.0.0.1: the page, same-origin with
 * evil.example, then reads the API's answers). Now a request whose Host is not the API's own address
 * (an IP literal, localhost, the bind host) or an allow-listed name gets 403 HOST_NOT_ALLOWED, on
 * every route, before anything else runs.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { hostAllowed, hostName } from '../../src/api/guard.ts'
import { parseConfig } from '../../src/config/config.ts'
import { type ApiNode, jsonOf, rawExchange, startApiNode } from '../utils/api-node.ts'

let n: ApiNode
before(async () => {
  n = await startApiNode({ api: { allowedHosts: ['nodus.home.arpa'] } })
})
after(() => n.stop())

function get(path: string, host: string | undefined, extra = ''): ReturnType<typeof rawExchange> {
  const hostLine = host === undefined ? '' : `\r\nHost: ${host}`
  return rawExchange(n.port, `GET ${path} HTTP/1.1${hostLine}\r\nConnection: close${extra}`)
}

test('a rebinding Host is refused on every kind of route; the API serves nothing to it', async () => {
  const evil = `evil.example:${n.port}`
  for (const path of [
    '/system/info',
    '/identity',
    '/',
    '/ui/app.js',
    '/metrics',
    '/files',
    '/no/such/route',
  ]) {
    const r = await get(path, evil)
    assert.equal(r.status, 403, path)
    assert.equal(jsonOf(r).code, 'HOST_NOT_ALLOWED')
    assert.doesNotMatch(r.body, new RegExp(n.node.peerId))
  }
  // Even with the token (a rebinding page has none, but the Host check comes first).
  const up = await rawExchange(
    n.port,
    `POST /files HTTP/1.1\r\nHost: ${evil}\r\nAuthorization: Bearer ${n.token}\r\nContent-Type: application/octet-stream\r\nContent-Length: 5`,
    Buffer.from('hello'),
  )
  assert.equal(up.status, 403)
  // Names that only look like ours, and malformed or missing Hosts.
  for (const host of [
    `localhost.evil.example:${n.port}`,
    `127.0.0.1.nip.io:${n.port}`,
    `nodus.home.arpa.evil.example:${n.port}`,
    `evil@127.0.0.1:${n.port}`,
    '::1',
    '',
    undefined,
  ]) {
    const r = await get('/system/info', host)
    assert.equal(r.status, 403, String(host))
    assert.equal(jsonOf(r).code, 'HOST_NOT_ALLOWED')
  }
})

test("the API's own addresses and allow-listed names are served", async () => {
  for (const host of [
    `127.0.0.1:${n.port}`,
    `localhost:${n.port}`,
    `LOCALHOST:${n.port}`,
    `[::1]:${n.port}`,
    'localhost',
    `nodus.home.arpa:${n.port}`,
    'NODUS.home.arpa.',
    // Through a tunnel (`ssh -L 8080:127.0.0.1:PORT`) the browser names another port.
    'localhost:8080',
  ]) {
    const r = await get('/system/info', host)
    assert.equal(r.status, 200, host)
    assert.equal((JSON.parse(r.body) as { peerId: string }).peerId, n.node.peerId)
  }
  // The CLI's and the dashboard's way in: the URL the node reports, Host set by the client.
  const r = await fetch(`${n.api}/system/info`)
  assert.equal(r.status, 200)
})

test('hostName and hostAllowed parse Host values strictly', () => {
  assert.equal(hostName('Example.COM.:80'), 'example.com')
  assert.equal(hostName('[::1]:80'), '::1')
  assert.equal(hostName('[nope]:80'), undefined)
  assert.equal(hostName('a/b'), undefined)
  assert.equal(hostName('a:b'), undefined)
  const allowed = new Set(['nodus.lan'])
  assert.equal(hostAllowed('10.0.0.7:1234', allowed), true)
  assert.equal(hostAllowed('nodus.lan', allowed), true)
  assert.equal(hostAllowed('x.nodus.lan', allowed), false)
  assert.equal(hostAllowed(undefined, allowed), false)
})

test('api.allowedHosts takes host names only', () => {
  assert.deepEqual(
    parseConfig({ dataDir: '/x', api: { allowedHosts: ['nodus.lan', 'box.'] } }).api.allowedHosts,
    ['nodus.lan', 'box.'],
  )
  for (const bad of ['http://nodus.lan', 'nodus.lan:8080', '*.example', 'a/b', '']) {
    assert.throws(() => parseConfig({ dataDir: '/x', api: { allowedHosts: [bad] } }), {
      code: 'CONFIG_INVALID',
    })
  }
})
