/**
 * Finding: input was validated before the token was checked, so an unauthenticated `POST /files` got
 * 415 or 400 depending on its Content-Type, never 401 (and its body was parsed for a stranger). Now the
 * token is checked in onRequest: without it every token route answers 401 UNAUTHORIZED whatever the
 * request carries, before any of its body is read. Public routes stay public.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { putFile } from '../../src/cli/client.ts'
import { isNodusError } from '../../src/common/errors.ts'
import { type ApiNode, jsonOf, rawExchange, startApiNode } from '../utils/api-node.ts'

let n: ApiNode
before(async () => {
  n = await startApiNode()
})
after(() => n.stop())

const CID = 'bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4'

test('an unauthenticated POST /files gets 401 whatever its Content-Type and body', async () => {
  const cases: [string | undefined, string][] = [
    ['text/plain', 'hello'],
    ['application/json', '{"not":"checked"'],
    ['application/octet-stream', 'x'.repeat(10_000)],
    ['garbage/;;;=', 'x'],
    ['multipart/form-data; boundary=x', '--x--'],
    [undefined, 'x'],
  ]
  for (const [type, body] of cases) {
    for (const authorization of [undefined, 'Bearer wrong', `Bearer ${n.token}x`, n.token]) {
      const r = await fetch(`${n.api}/files?name=${'n'.repeat(300)}&ttl=-5&bogus=1`, {
        method: 'POST',
        headers: {
          ...(type === undefined ? {} : { 'content-type': type }),
          ...(authorization === undefined ? {} : { authorization }),
        },
        body,
      })
      assert.equal(r.status, 401, `${type} with ${authorization}`)
      assert.deepEqual(await r.json(), {
        code: 'UNAUTHORIZED',
        message: 'missing or wrong bearer token',
        details: {},
      })
    }
  }
})

test('every token route answers 401 before reading a body, even one declared at 10 GiB', async () => {
  const routes = [
    ['POST', '/files'],
    ['POST', '/network/connect'],
    ['POST', `/files/${CID}/pin`],
    ['POST', '/files/not-a-cid/pin'],
    ['DELETE', `/files/${CID}`],
  ]
  for (const [method, path] of routes) {
    for (const type of ['application/octet-stream', 'application/json', 'text/plain']) {
      // Headers only: the body is never sent, so only an answer that does not wait for it comes back.
      const r = await rawExchange(
        n.port,
        `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${n.port}\r\nContent-Type: ${type}\r\nContent-Length: ${10 * 2 ** 30}`,
      )
      assert.equal(r.status, 401, `${method} ${path} ${type}`)
      assert.equal(jsonOf(r).code, 'UNAUTHORIZED')
      assert.equal(r.headers.connection, 'close', 'the unread body is not drained')
    }
    // A chunked body that never ends.
    const chunked = await rawExchange(
      n.port,
      `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${n.port}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked`,
      Buffer.from('10\r\n{"multiaddr":"/'),
    )
    assert.equal(chunked.status, 401, `${method} ${path} chunked`)
  }
})

test('with the token, the same bad inputs get their validation errors, and public routes need no token', async () => {
  const auth = { authorization: `Bearer ${n.token}` }
  const plain = await fetch(`${n.api}/files`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'text/plain' },
    body: 'x',
  })
  assert.equal(plain.status, 400)
  assert.equal(((await plain.json()) as { code: string }).code, 'INVALID_ARGUMENT')
  const badJson = await fetch(`${n.api}/network/connect`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: '{"multiaddr":',
  })
  assert.equal(badJson.status, 400)
  // The scheme is case-insensitive (RFC 7235).
  const lower = await fetch(`${n.api}/files/${CID}`, {
    method: 'DELETE',
    headers: { authorization: `bearer ${n.token}` },
  })
  assert.equal(lower.status, 404)
  assert.equal(((await lower.json()) as { code: string }).code, 'MANIFEST_NOT_FOUND')

  for (const path of [
    '/',
    '/health',
    '/ready',
    '/system/info',
    '/system/status',
    '/metrics',
    '/network/peers',
    '/storage/usage',
    '/storage/shards',
    '/files',
    '/identity',
    '/openapi.json',
  ]) {
    const r = await fetch(`${n.api}${path}`)
    assert.equal(r.status, 200, path)
    await r.arrayBuffer()
  }
})

test('the CLI client learns of a refusal before sending any of the file (Expect: 100-continue)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-auth-first-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const big = join(dir, 'big.bin')
  await writeFile(big, randomBytes(32 * 1024 * 1024))
  let sent = 0
  await assert.rejects(
    putFile({ url: n.api, token: 'wrong' }, big, { onBytes: (b) => (sent = b) }),
    (err: unknown) => {
      assert.ok(isNodusError(err), String(err))
      assert.match(err.message, /wrong bearer token/)
      assert.equal(err.details.status, 401)
      return true
    },
  )
  assert.equal(sent, 0, 'no byte of the file was sent')
  // With the token, the node says 100 Continue and the file goes through.
  const small = join(dir, 'small.bin')
  await writeFile(small, randomBytes(200_000))
  const r = await putFile({ url: n.api, token: n.token }, small, { onBytes: (b) => (sent = b) })
  assert.equal(r.bytes, 200_000)
  assert.equal(sent, 200_000)
})
