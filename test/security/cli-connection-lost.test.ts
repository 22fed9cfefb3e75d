/**
 * Finding: an upload whose connection to the node died mid-way was reported by the CLI as `INTERNAL`
 * ("Error: read ECONNRESET"), as if it were a bug. Now the client reports a connection to the node
 * that breaks mid-upload or mid-download (ECONNRESET, EPIPE, socket hang up, the node killed) or that
 * cannot be made as NODE_UNREACHABLE, saying what happened to the operation.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, test } from 'node:test'
import { getFile, getJson, putFile } from '../../src/cli/client.ts'
import { isNodusError } from '../../src/common/errors.ts'
import { CLI, runCli } from '../utils/run-cli.ts'

let dir = ''
let file = ''
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-conn-lost-'))
  file = join(dir, 'big.bin')
  await writeFile(file, randomBytes(48 * 1024 * 1024))
})
after(() => rm(dir, { recursive: true, force: true }))

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('no address')
  return `http://127.0.0.1:${addr.port}`
}

/** A node stand-in that takes 1 MiB of an upload, or sends 1 MiB of a 3 MiB download, then resets the connection. */
function resettingServer(): Server {
  return createServer((req, res) => {
    if (req.method === 'POST') {
      let got = 0
      req.on('data', (d: Buffer) => {
        got += d.byteLength
        if (got >= 1024 * 1024) req.socket.resetAndDestroy()
      })
      return
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(3 * 1024 * 1024),
    })
    res.write(randomBytes(1024 * 1024), () => req.socket.resetAndDestroy())
  })
}

const unreachable = (what: RegExp) => (err: unknown) => {
  assert.ok(isNodusError(err, 'NODE_UNREACHABLE'), String(err))
  assert.match(err.message, what)
  return true
}

test('an upload or download whose connection is reset mid-way is NODE_UNREACHABLE, in the API client and the CLI', async (t) => {
  const server = resettingServer()
  const url = await listen(server)
  t.after(() => server.close())

  await assert.rejects(
    putFile({ url, token: 't' }, file),
    unreachable(/connection to the node's API at http:\/\/127\.0\.0\.1:\d+ broke during the upload.*no CID/),
  )
  const out = join(dir, 'out.bin')
  await assert.rejects(
    getFile({ url, token: undefined }, 'bafkqaaa', out),
    unreachable(/broke during the download.*nothing was written/),
  )
  await assert.rejects(readFile(out), { code: 'ENOENT' })
  await assert.rejects(readFile(`${out}.part`), { code: 'ENOENT' })

  // The CLI process: a typed error and exit 1, not INTERNAL.
  const put = await runCli(['put', file, '--api', url, '--token', 't', '--json'])
  assert.equal(put.code, 1, put.stderr)
  const reported = JSON.parse(put.stderr.trim().split('\n').at(-1) ?? '') as { code: string; message: string }
  assert.equal(reported.code, 'NODE_UNREACHABLE')
  assert.match(reported.message, /upload/)
  const text = await runCli(['put', file, '--api', url, '--token', 't'])
  assert.match(text.stderr, /^error NODE_UNREACHABLE: the connection to the node's API/m)
  assert.doesNotMatch(text.stderr, /INTERNAL|ECONNRESET\n\s+at /)
})

test('a real node killed in the middle of an upload: NODE_UNREACHABLE', { timeout: 120_000 }, async () => {
  const dataDir = join(dir, 'node')
  assert.equal((await runCli(['init', '--data-dir', dataDir])).code, 0)
  const node: ChildProcess = spawn(
    process.execPath,
    [CLI, 'start', '--data-dir', dataDir, '--json', '--log-level', 'error'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  const exited = new Promise((r) => node.once('exit', r))
  try {
    const api = await new Promise<string>((resolve, reject) => {
      node.once('exit', (code) => reject(new Error(`node exited ${code}`)))
      createInterface({ input: node.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        const msg = JSON.parse(line) as { event: string; api: string }
        if (msg.event === 'ready') resolve(msg.api)
      })
    })
    const token = (await readFile(join(dataDir, 'api-token'), 'utf8')).trim()
    let killed = false
    await assert.rejects(
      putFile({ url: api, token }, file, {
        onBytes: (n) => {
          // 4 MiB of 48 sent: the node is killed with most of the file still to come.
          if (n >= 4 * 1024 * 1024 && !killed) {
            killed = node.kill('SIGKILL')
          }
        },
      }),
      unreachable(/upload.*no CID was returned/),
    )
    assert.ok(killed)
    await exited
    // And now that it is gone: cannot be reached at all.
    await assert.rejects(
      getJson({ url: api, token }, '/system/info'),
      unreachable(/ECONNREFUSED.*is the node running/),
    )
  } finally {
    node.kill('SIGKILL')
    await exited
  }
})
