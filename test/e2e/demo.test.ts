/**
 * End to end: the CLI's demo with real node processes on loopback, a real file, real kills.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { runCli } from '../utils/run-cli.ts'

const run = runCli

/** PIDs of live processes whose command line mentions `needle`. */
async function processesMentioning(needle: string): Promise<number[]> {
  const pids: number[] = []
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const cmd = (await readFile(`/proc/${d}/cmdline`, 'utf8')).replaceAll('\0', ' ')
      if (cmd.includes(needle)) pids.push(Number(d))
    } catch {
      // process gone
    }
  }
  return pids
}

let dir = ''
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-e2e-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

test('demo: 8 processes store a 6 MB file with RS(4,2), lose 2 holders, return it byte for byte', {
  timeout: 240_000,
}, async () => {
  const file = join(dir, 'input.bin')
  await writeFile(file, randomBytes(6 * 1024 * 1024 + 12345))
  const base = join(dir, 'net')
  const r = await run(
    [
      'demo',
      '--nodes',
      '8',
      '--kill',
      '2',
      '--k',
      '4',
      '--m',
      '2',
      '--segment-size',
      '1048576',
      '--file',
      file,
      '--base-dir',
      base,
    ],
    200_000,
  )
  const last = r.stdout.trim().split('\n').pop() ?? ''
  assert.equal(r.code, 0, `demo failed:\n${r.stderr.slice(-3000)}`)
  const result = JSON.parse(last) as Record<string, unknown>
  assert.equal(result.ok, true)
  assert.equal(result.killed, 2)
  assert.equal(result.nodes, 8)
  assert.equal(result.bytes, 6 * 1024 * 1024 + 12345)
  for (const key of ['file', 'sha256', 'cid', 'putSeconds', 'getSeconds', 'putMBps', 'getMBps'])
    assert.ok(key in result, key)
  assert.deepEqual(await processesMentioning(base), [], 'node processes left running')
  assert.deepEqual(await readdir(base), [], 'temporary directories left behind')
})

test('demo refuses bad input with a clear error and starts nothing', { timeout: 60_000 }, async () => {
  const base = join(dir, 'bad')
  const missing = await run(['demo', '--file', join(dir, 'nope.bin'), '--base-dir', base], 30_000)
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /FILE_NOT_FOUND/)
  const file = join(dir, 'small.bin')
  await writeFile(file, randomBytes(1000))
  const tooMany = await run(['demo', '--file', file, '--kill', '5', '--base-dir', base], 30_000)
  assert.equal(tooMany.code, 2)
  assert.match(tooMany.stderr, /INVALID_ARGUMENT.*m = 4/)
  assert.deepEqual(await processesMentioning(base), [])
})

test('demo reports a port in use before starting any node', { timeout: 60_000 }, async () => {
  const { createServer } = await import('node:net')
  const srv = createServer()
  const port: number = await new Promise((res) =>
    srv.listen(0, '127.0.0.1', () => res((srv.address() as { port: number }).port)),
  )
  try {
    const file = join(dir, 'p.bin')
    await writeFile(file, randomBytes(1000))
    const base = join(dir, 'port')
    const r = await run(
      [
        'demo',
        '--file',
        file,
        '--nodes',
        '3',
        '--kill',
        '0',
        '--base-port',
        String(port),
        '--base-dir',
        base,
      ],
      30_000,
    )
    assert.equal(r.code, 1)
    assert.match(r.stderr, /PORT_IN_USE/)
    assert.deepEqual(await processesMentioning(base), [])
  } finally {
    srv.close()
  }
})

test('demo --scenario messaging: 6 processes, every message reaches every subscriber, sealed messages reach a restarted node', {
  timeout: 240_000,
}, async () => {
  const base = join(dir, 'messaging')
  const r = await run(
    [
      'demo',
      '--scenario',
      'messaging',
      '--nodes',
      '6',
      '--publishers',
      '2',
      '--messages',
      '300',
      '--rate',
      '200',
      '--offline',
      '3',
      '--base-dir',
      base,
    ],
    200_000,
  )
  const last = r.stdout.trim().split('\n').pop() ?? ''
  assert.equal(r.code, 0, `demo failed:\n${r.stderr.slice(-3000)}`)
  const result = JSON.parse(last) as Record<string, unknown>
  assert.equal(result.ok, true)
  assert.equal(result.scenario, 'messaging')
  assert.equal(result.published, 300)
  assert.equal(result.subscribers, 6)
  assert.equal(result.delivered, 300 * 6)
  assert.equal(result.lost, 0)
  assert.equal(result.offlineDelivered, 3)
  for (const key of ['msgsPerSecond', 'p50Ms', 'p99Ms']) assert.equal(typeof result[key], 'number', key)
  assert.deepEqual(await processesMentioning(base), [], 'node processes left running')
  assert.deepEqual(await readdir(base), [], 'temporary directories left behind')
})

test('demo refuses an unknown scenario and impossible messaging options, starting nothing', {
  timeout: 60_000,
}, async () => {
  const base = join(dir, 'bad-messaging')
  const unknown = await run(['demo', '--scenario', 'nope', '--base-dir', base], 30_000)
  assert.equal(unknown.code, 2)
  assert.match(unknown.stderr, /INVALID_ARGUMENT.*scenario/)
  const tooMany = await run(
    ['demo', '--scenario', 'messaging', '--nodes', '4', '--publishers', '4', '--base-dir', base],
    30_000,
  )
  assert.equal(tooMany.code, 2)
  assert.match(tooMany.stderr, /INVALID_ARGUMENT.*publishers/)
  assert.deepEqual(await processesMentioning(base), [])
})

test('demo --scenario kv: hosts converge after a stop and restart; unauthorized and replayed writes refused', {
  timeout: 240_000,
}, async () => {
  const base = join(dir, 'kv')
  const r = await run(
    [
      'demo',
      '--scenario',
      'kv',
      '--nodes',
      '5',
      '--hosts',
      '4',
      '--stop',
      '1',
      '--ops',
      '180',
      '--base-dir',
      base,
    ],
    200_000,
  )
  const last = r.stdout.trim().split('\n').pop() ?? ''
  assert.equal(r.code, 0, `demo failed:\n${r.stderr.slice(-3000)}`)
  const result = JSON.parse(last) as Record<string, unknown>
  assert.equal(result.ok, true)
  assert.equal(result.scenario, 'kv')
  assert.equal(result.converged, true)
  assert.equal(result.unauthorizedRefused, true)
  assert.equal(result.replayRefused, true)
  assert.ok((result.ops as number) >= 180)
  for (const key of ['writesPerSecond', 'p99ConvergenceMs', 'catchUpRoundTrips', 'catchUpBytes'])
    assert.equal(typeof result[key], 'number', key)
  assert.deepEqual(await processesMentioning(base), [], 'node processes left running')
  assert.deepEqual(await readdir(base), [], 'temporary directories left behind')
})
