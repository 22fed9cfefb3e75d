/**
 * The CLI's HTTP client against small local servers that misbehave on purpose (loopback only).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { getFile, putFile, shownError } from '../../src/cli/client.ts'
import { NodusError } from '../../src/common/errors.ts'
import { nativeAddon } from '../../src/common/native.ts'
import { residentPages } from '../utils/page-cache.ts'

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('no address')
  return `http://127.0.0.1:${addr.port}`
}

test('a refusal sent while the upload is still going (headers first, body later) is the typed error', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-client-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'big.bin')
  await writeFile(file, randomBytes(8 * 1024 * 1024))
  // Answers 401 without reading the body: the headers at once, the JSON body 100 ms later.
  const server = createServer((req, res) => {
    res.writeHead(401, { 'content-type': 'application/json', connection: 'close' })
    res.flushHeaders()
    setTimeout(() => {
      res.end(JSON.stringify({ code: 'UNAUTHORIZED', message: 'missing or wrong bearer token', details: {} }))
      req.socket.destroySoon()
    }, 100)
  })
  const url = await listen(server)
  t.after(() => server.close())
  await assert.rejects(
    putFile({ url, token: 'wrong' }, file),
    (err: Error & { details?: { status?: number } }) => {
      // The node's own message, not a generic "HTTP 401": the answer was read whole.
      assert.match(err.message, /wrong bearer token/)
      assert.equal(err.details?.status, 401)
      return true
    },
  )
})

test('a download is written whole, direct or buffered, from many small chunks; a body cut short is NODE_UNREACHABLE', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-client-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  let data = randomBytes(3 * 1024 * 1024 + 17)
  let short = false
  const server = createServer((_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(data.byteLength),
    })
    // 1,000-byte writes, some in separate ticks, so the client sees many chunks of odd sizes.
    let at = 0
    const pump = (): void => {
      while (at < data.byteLength) {
        if (short && at >= 1_000_000) {
          res.destroy()
          return
        }
        const ok = res.write(data.subarray(at, at + 1000))
        at += 1000
        if (!ok) {
          res.once('drain', pump)
          return
        }
        if (at % 100_000 === 0) {
          setImmediate(pump)
          return
        }
      }
      res.end()
    }
    pump()
  })
  const url = await listen(server)
  t.after(() => server.close())
  // Direct I/O (when the native addon is built) and buffered; sizes under one 4 MiB staging buffer, over
  // two (both buffers reused), a multiple of 4 KiB (no cut-back), and empty.
  const sizes = [3 * 1024 * 1024 + 17, 9 * 1024 * 1024 + 5, 8 * 1024 * 1024 + 4096, 0]
  for (const mode of ['default', '0']) {
    const before = process.env.NODUS_DIRECT_IO
    if (mode === '0') process.env.NODUS_DIRECT_IO = '0'
    try {
      for (const size of sizes) {
        data = randomBytes(size)
        const out = join(dir, `out-${mode}-${size}.bin`)
        const seen: number[] = []
        const r = await getFile({ url, token: undefined }, 'bafkqaaa', out, { onBytes: (n) => seen.push(n) })
        assert.equal(r.bytes, data.byteLength)
        const resident = residentPages(out)
        if (size > 0 && resident !== undefined && nativeAddon() !== null) {
          // Direct writes leave nothing in the page cache; buffered ones leave the file there.
          if (mode === 'default') assert.equal(resident, 0, 'written with direct I/O')
          else assert.ok(resident > 0, 'written through the page cache')
        }
        assert.deepEqual(await readFile(out), data, `${size} bytes, NODUS_DIRECT_IO ${mode}`)
        if (size > 0) assert.equal(seen.at(-1), data.byteLength)
        await assert.rejects(readFile(`${out}.part`), { code: 'ENOENT' })
      }
    } finally {
      if (before === undefined) delete process.env.NODUS_DIRECT_IO
      else process.env.NODUS_DIRECT_IO = before
    }
  }
  data = randomBytes(3 * 1024 * 1024 + 17)
  short = true
  // The node destroys the connection mid-body (it stopped, or failed to fetch the rest of the file).
  await assert.rejects(getFile({ url, token: undefined }, 'bafkqaaa', join(dir, 'short.bin')), {
    code: 'NODE_UNREACHABLE',
  })
  await assert.rejects(readFile(join(dir, 'short.bin.part')), { code: 'ENOENT' })
})

test('shownError: the node’s own code for what the HTTP layer answered itself; every other error as it is', () => {
  const limited = new NodusError('PROTOCOL_ERROR', 'too many requests', {
    details: { status: 429, code: 'RATE_LIMITED', retryAfterS: 3 },
  })
  const shown = shownError(limited)
  assert.equal(shown.code, 'RATE_LIMITED')
  assert.match(shown.message, /^too many requests \(wait and retry/)
  assert.deepEqual(shown.details, { status: 429, retryAfterS: 3 })
  // A code of a newer node: shown as the node wrote it, without advice.
  assert.deepEqual(
    shownError(new NodusError('PROTOCOL_ERROR', 'new', { details: { code: 'KV_SOMETHING_NEW' } })),
    { code: 'KV_SOMETHING_NEW', message: 'new', details: {} },
  )
  for (const err of [
    new NodusError('KV_DB_FULL', 'full', { details: { db: 'x' } }),
    new NodusError('PROTOCOL_ERROR', 'no code'),
    new NodusError('PROTOCOL_ERROR', 'not a code', { details: { code: 'lower case <b>' } }),
  ])
    assert.deepEqual(shownError(err), err.toJSON())
})
