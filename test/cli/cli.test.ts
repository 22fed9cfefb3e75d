/**
 * The CLI as a user runs it: init, start, put, get, cid, status, and its errors.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, test } from 'node:test'
import { cidForBytes, cidToString } from '../../src/storage/index.ts'
import { CLI, runCli } from '../utils/run-cli.ts'

const MAIN = CLI
const run = (args: string[]): ReturnType<typeof runCli> => runCli(args, 60_000)

let dir = ''
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-cli-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

test('init creates 0600 keys and token, prints PeerId and did:key, and refuses to run twice', async () => {
  const dataDir = join(dir, 'a')
  const r = await run(['init', '--data-dir', dataDir, '--json'])
  assert.equal(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout) as { peerId: string; did: string }
  assert.match(out.peerId, /^12D3KooW/)
  assert.match(out.did, /^did:key:z6Mk/)
  for (const f of ['keys/ed25519.key', 'keys/mldsa65.key', 'api-token']) {
    assert.equal((await stat(join(dataDir, f))).mode & 0o777, 0o600, f)
  }
  const keyBefore = await readFile(join(dataDir, 'keys/ed25519.key'))
  const again = await run(['init', '--data-dir', dataDir])
  assert.equal(again.code, 1)
  assert.match(again.stderr, /KEYS_EXIST/)
  assert.deepEqual(await readFile(join(dataDir, 'keys/ed25519.key')), keyBefore)
})

test('cid prints the BLAKE3 CIDv1 (raw) of a file in base32', async () => {
  const bytes = randomBytes(300_000)
  const file = join(dir, 'c.bin')
  await writeFile(file, bytes)
  const r = await run(['cid', file])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout.trim(), cidToString(cidForBytes(bytes)))
  assert.match(r.stdout.trim(), /^bafkr4i/)
})

test('unknown commands, unknown flags and bad values are clear errors (exit 2)', async () => {
  const a = await run(['frobnicate'])
  assert.equal(a.code, 2)
  assert.match(a.stderr, /unknown command/)
  const b = await run(['cid', '--bogus', 'x'])
  assert.equal(b.code, 2)
  assert.match(b.stderr, /INVALID_ARGUMENT.*bogus/)
  const c = await run(['demo', '--nodes', 'many'])
  assert.equal(c.code, 2)
  assert.match(c.stderr, /--nodes must be a whole number/)
  const d = await run(['put', join(dir, 'missing.bin'), '--api', 'http://127.0.0.1:1'])
  assert.equal(d.code, 1)
  assert.match(d.stderr, /FILE_NOT_FOUND/)
})

test('one node on its own: start, put, get, status, stop', { timeout: 90_000 }, async () => {
  const dataDir = join(dir, 'solo')
  assert.equal((await run(['init', '--data-dir', dataDir])).code, 0)
  const node: ChildProcess = spawn(
    process.execPath,
    [MAIN, 'start', '--data-dir', dataDir, '--json', '--log-level', 'warn'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  try {
    const events: string[] = []
    let onSettled = (): void => {}
    const settled = new Promise<void>((resolve) => {
      onSettled = resolve
    })
    const ready = await new Promise<{ api: string; peerId: string }>((resolve, reject) => {
      node.once('exit', (code) => reject(new Error(`node exited ${code}`)))
      createInterface({ input: node.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        const msg = JSON.parse(line) as { event: string; api: string; peerId: string }
        events.push(msg.event)
        if (msg.event === 'ready') resolve(msg)
        if (msg.event === 'settled') onSettled()
      })
    })
    assert.match(ready.api, /^http:\/\/127\.0\.0\.1:\d+$/)
    // With --json the node reports when its start-up work (the start-up collection) is done, after ready.
    await settled
    assert.deepEqual(events, ['ready', 'settled'])
    const bytes = randomBytes(3 * 1024 * 1024 + 5)
    const file = join(dir, 'solo.bin')
    await writeFile(file, bytes)
    const put = await run(['put', file, '--data-dir', dataDir, '--json'])
    assert.equal(put.code, 0, put.stderr)
    const { cid } = JSON.parse(put.stdout) as { cid: string }
    const outFile = join(dir, 'solo.out')
    const get = await run(['get', cid, '-o', outFile, '--data-dir', dataDir])
    assert.equal(get.code, 0, get.stderr)
    assert.deepEqual(await readFile(outFile), bytes)
    const status = await run(['status', '--data-dir', dataDir, '--json'])
    assert.equal(status.code, 0, status.stderr)
    const st = JSON.parse(status.stdout) as { peerId: string; usage: { shards: number } }
    assert.equal(st.peerId, ready.peerId)
    assert.ok(st.usage.shards > 0)
    // Unauthenticated upload is refused.
    const res = await fetch(`${ready.api}/files`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: 'x',
    })
    assert.equal(res.status, 401)
    const bad = await fetch(`${ready.api}/files/not-a-cid`)
    assert.equal(bad.status, 400)
    assert.equal(((await bad.json()) as { code: string }).code, 'CID_INVALID')
    // The CLI streams uploads through node:http: a refusal that arrives while the 3 MiB body is still
    // being sent is the node's typed error, and so is a refused download.
    const refused = await run(['put', file, '--api', ready.api, '--token', 'wrong', '--json'])
    assert.notEqual(refused.code, 0)
    assert.match(refused.stderr, /wrong bearer token.*"status":401/)
    const badGet = await run(['get', 'not-a-cid', '-o', join(dir, 'x.out'), '--data-dir', dataDir])
    assert.notEqual(badGet.code, 0)
    assert.match(badGet.stderr, /CID_INVALID/)
    await assert.rejects(stat(join(dir, 'x.out.part')), { code: 'ENOENT' })
  } finally {
    const gone = new Promise((r) => node.once('exit', r))
    node.kill('SIGTERM')
    await gone
  }
})
