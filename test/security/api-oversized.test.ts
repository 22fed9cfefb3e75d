/**
 * Findings: oversized URLs and headers got Node's or fastify's bare answers instead of the API's
 * `{ code, message, details }`; an upload of any size up to 1 TiB was taken in. Now an over-long URL
 * gets 414, over-long headers 431, a bad URL 400, all in the API's format; and an upload whose
 * Content-Length exceeds `api.maxUploadBytes` gets 413 at once (the body is never read), while a
 * chunked one is cut off with 413 once past it. Uploads within the limit are unaffected.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { putFile } from '../../src/cli/client.ts'
import { type ApiNode, jsonOf, rawExchange, startApiNode } from '../utils/api-node.ts'

const LIMIT = 1024 * 1024

let n: ApiNode
before(async () => {
  n = await startApiNode({ api: { maxUploadBytes: LIMIT } })
})
after(() => n.stop())

function head(method: string, path: string, extra: string[] = []): string {
  return [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${n.port}`, 'Connection: close', ...extra].join(
    '\r\n',
  )
}

test('oversized URLs and headers get the API error format', async () => {
  const cases: [string, number][] = [
    [head('GET', `/files?after=${'a'.repeat(10_000)}`), 414], // over 8 KiB of URL
    [head('GET', `/files?after=${'a'.repeat(20_000)}`), 431], // over Node's 16 KiB of head
    [head('GET', '/health', [`X-Big: ${'b'.repeat(20_000)}`]), 431],
    [head('GET', `/files/${'c'.repeat(500)}`), 414], // a path parameter over maxParamLength
  ]
  for (const [request, status] of cases) {
    const r = await rawExchange(n.port, request)
    assert.equal(r.status, status, request.slice(0, 60))
    assert.match(r.headers['content-type'] ?? '', /^application\/json/)
    const body = jsonOf(r)
    assert.equal(body.code, 'MESSAGE_TOO_LARGE')
    assert.equal(typeof body.message, 'string')
    assert.deepEqual(Object.keys(body).sort(), ['code', 'details', 'message'])
  }
  const badUrl = await rawExchange(n.port, head('GET', '/files/%E0%A4%A'))
  assert.equal(badUrl.status, 400)
  assert.equal(jsonOf(badUrl).code, 'INVALID_ARGUMENT')
  const garbage = await rawExchange(n.port, 'NOT HTTP AT ALL')
  assert.equal(garbage.status, 400)
  assert.equal(jsonOf(garbage).code, 'INVALID_ARGUMENT')
})

test('a Content-Length above api.maxUploadBytes gets 413 at once, the body never sent', async () => {
  for (const declared of [LIMIT + 1, 2 ** 40, 2 ** 60]) {
    // Only the head goes out: a 413 that comes back was decided before any of the body.
    const r = await rawExchange(
      n.port,
      head('POST', '/files?name=big', [
        `Authorization: Bearer ${n.token}`,
        'Content-Type: application/octet-stream',
        `Content-Length: ${declared}`,
      ]),
    )
    assert.equal(r.status, 413, String(declared))
    assert.equal(jsonOf(r).code, 'MESSAGE_TOO_LARGE')
    assert.equal(jsonOf(r).details.maxBytes, LIMIT)
  }
  // The CLI client: refused before it sends any of the file.
  const dir = await mkdtemp(join(tmpdir(), 'nodus-oversized-'))
  try {
    const file = join(dir, 'big.bin')
    await writeFile(file, randomBytes(2 * LIMIT))
    let sent = 0
    await assert.rejects(putFile({ url: n.api, token: n.token }, file, { onBytes: (b) => (sent = b) }), {
      code: 'MESSAGE_TOO_LARGE',
    })
    assert.equal(sent, 0)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  // Without the token, 401 comes first.
  const stranger = await rawExchange(
    n.port,
    head('POST', '/files', ['Content-Type: application/octet-stream', `Content-Length: ${2 ** 40}`]),
  )
  assert.equal(stranger.status, 401)
})

test('a chunked upload is cut off past the limit; uploads within it are stored', async () => {
  const chunk = randomBytes(64 * 1024)
  const chunks = (count: number): Buffer =>
    Buffer.concat([
      ...Array.from({ length: count }, () =>
        Buffer.concat([Buffer.from(`${chunk.byteLength.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]),
      ),
      Buffer.from('0\r\n\r\n'),
    ])
  const over = await rawExchange(
    n.port,
    head('POST', '/files?name=chunked', [
      `Authorization: Bearer ${n.token}`,
      'Content-Type: application/octet-stream',
      'Transfer-Encoding: chunked',
    ]),
    chunks(LIMIT / chunk.byteLength + 2),
  )
  assert.equal(over.status, 413)
  assert.equal(jsonOf(over).code, 'MESSAGE_TOO_LARGE')

  const within = await rawExchange(
    n.port,
    head('POST', '/files?name=chunked', [
      `Authorization: Bearer ${n.token}`,
      'Content-Type: application/octet-stream',
      'Transfer-Encoding: chunked',
    ]),
    chunks(4),
  )
  assert.equal(within.status, 200, within.body)
  const exact = await fetch(`${n.api}/files?name=exact`, {
    method: 'POST',
    headers: { authorization: `Bearer ${n.token}`, 'content-type': 'application/octet-stream' },
    body: randomBytes(LIMIT),
  })
  assert.equal(exact.status, 200)
  const { bytes } = (await exact.json()) as { bytes: number }
  assert.equal(bytes, LIMIT)
})
