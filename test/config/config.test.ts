import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { envName, loadConfig, parseConfig } from '../../src/config/config.ts'

test('defaults are filled in and the result is frozen', () => {
  const c = parseConfig({ dataDir: '/d' })
  assert.equal(c.storage.k, 10)
  assert.equal(c.storage.m, 4)
  assert.equal(c.net.dhtProtocol, '/nodus/kad/1.0.0')
  assert.equal(c.api.host, '127.0.0.1')
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.storage) && Object.isFrozen(c.net.listen))
})

test('bad values and unknown keys are CONFIG_INVALID naming the key', () => {
  for (const [raw, key] of [
    [{ dataDir: '/d', storage: { k: 0 } }, 'storage.k'],
    [{ dataDir: '/d', api: { port: 70000 } }, 'api.port'],
    [{ dataDir: '/d', nope: 1 }, 'nope'],
    [{ dataDir: '/d', storage: { k: 200, m: 100 } }, 'k + storage.m'],
    [{ dataDir: '/d', net: { dhtProtocol: 'kad' } }, 'net.dhtProtocol'],
    [{ dataDir: '/d', net: { listen: '/ip4/127.0.0.1/tcp/0' } }, 'net.listen'],
    [{ dataDir: '/d', net: { bootstrap: [1] } }, 'net.bootstrap'],
    [{ dataDir: '/d', log: { level: 'loud' } }, 'log.level'],
    [{ dataDir: '/d', storage: { k: '3' } }, 'storage.k'],
    [{ dataDir: '/d', storage: { k: 2.5 } }, 'storage.k'],
    [{ dataDir: '/d', api: { nope: 1 } }, 'api.nope'],
    [{ dataDir: '/d', api: 5 }, 'api'],
    [{ dataDir: '' }, 'dataDir'],
    [{ dataDir: '/d', storage: { k: 1, segmentSize: 64 * 1024 * 1024 } }, 'storage.segmentSize'],
    [null, '(root)'],
  ] as const) {
    assert.throws(
      () => parseConfig(raw),
      (err) => isNodusError(err, 'CONFIG_INVALID') && err.message.includes(key),
      key,
    )
  }
})

test('file values override defaults and flags override the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-cfg-'))
  try {
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ api: { port: 5001 }, storage: { k: 6, m: 3 } }),
    )
    const c = await loadConfig(dir, { api: { port: 6001 } })
    assert.equal(c.api.port, 6001)
    assert.equal(c.storage.k, 6)
    assert.equal(c.storage.m, 3)
    assert.equal(c.dataDir, dir)
    await writeFile(join(dir, 'config.json'), '{ not json')
    await assert.rejects(loadConfig(dir), (err) => isNodusError(err, 'CONFIG_INVALID'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('environment sits between the file and the flags', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'nodus-cfg-'))
  try {
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ api: { port: 5001 }, storage: { capacityBytes: 1000 } }),
    )
    const env = {
      NODUS_API_PORT: '7001',
      NODUS_STORAGE_CAPACITY_BYTES: '2000',
      NODUS_NET_BOOTSTRAP: '/ip4/1.2.3.4/tcp/1, /ip4/5.6.7.8/tcp/2',
    }
    const c = await loadConfig(dir, { api: { port: 8001 } }, env)
    assert.equal(c.api.port, 8001)
    assert.equal(c.storage.capacityBytes, 2000)
    assert.deepEqual(c.net.bootstrap, ['/ip4/1.2.3.4/tcp/1', '/ip4/5.6.7.8/tcp/2'])
    await assert.rejects(
      loadConfig(dir, {}, { NODUS_API_PORT: 'eighty' }),
      (err) => isNodusError(err, 'CONFIG_INVALID') && err.message.includes('NODUS_API_PORT'),
    )
    assert.equal(envName('storage.maxShardBytes'), 'NODUS_STORAGE_MAX_SHARD_BYTES')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('durations parse with units and reject nonsense', async () => {
  const { parseDuration } = await import('../../src/cli/duration.ts')
  assert.equal(parseDuration('3600'), 3600)
  assert.equal(parseDuration('90m'), 5400)
  assert.equal(parseDuration('12h'), 43200)
  assert.equal(parseDuration('30d'), 2_592_000)
  assert.equal(parseDuration('2w'), 1_209_600)
  for (const bad of ['', '0', '-5', '1.5h', 'soon', '10y']) {
    assert.throws(
      () => parseDuration(bad),
      (err) => isNodusError(err, 'INVALID_ARGUMENT'),
      bad,
    )
  }
})
