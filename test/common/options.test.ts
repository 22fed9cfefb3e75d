import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isNodusError } from '../../src/common/errors.ts'
import { defineOptions, type OptionsOf } from '../../src/common/options.ts'
import { CONFIG_KEYS, type NodusConfig, parseConfig } from '../../src/config/config.ts'
import type { NetOptions } from '../../src/net/options.ts'
import type { StorageOptions } from '../../src/storage/options.ts'

const TABLE = defineOptions({
  count: { kind: 'int', default: 3, min: 1, description: 'a count' },
  name: { kind: 'string', default: 'x', description: 'a name' },
  names: { kind: 'strings', default: ['a'], description: 'names' },
  mode: { kind: 'enum', default: 'on', values: ['on', 'off'], description: 'a mode' },
})

test('OptionsOf derives a section type from its table: a key without a type, or a type without a key, does not compile', () => {
  const ok: OptionsOf<typeof TABLE> = { count: 1, name: 'y', names: ['b'], mode: 'off' }
  assert.equal(ok.mode, 'off')
  // @ts-expect-error: `mode` is one of its values, not any string
  const badEnum: OptionsOf<typeof TABLE> = { count: 1, name: 'y', names: [], mode: 'maybe' }
  // @ts-expect-error: `count` is missing (every key of the table has a value)
  const missing: OptionsOf<typeof TABLE> = { name: 'y', names: [], mode: 'on' }
  // @ts-expect-error: `extra` is no key of the table
  const extra: OptionsOf<typeof TABLE> = { count: 1, name: 'y', names: [], mode: 'on', extra: 1 }
  // @ts-expect-error: `count` is an int, so a number
  const wrongKind: OptionsOf<typeof TABLE> = { count: '1', name: 'y', names: [], mode: 'on' }
  assert.ok([badEnum, missing, extra, wrongKind].every((o) => typeof o === 'object'))
})

test("defineOptions freezes the table, and an enum's default must be one of its values", () => {
  assert.ok(Object.isFrozen(TABLE))
  // @ts-expect-error: the default 'auto' is not among the values
  defineOptions({ mode: { kind: 'enum', default: 'auto', values: ['on', 'off'], description: 'x' } })
})

test("NodusConfig's sections are the areas' option types", () => {
  const c: NodusConfig = parseConfig({ dataDir: '/d' })
  const storage: StorageOptions = c.storage
  const net: NetOptions = c.net
  assert.equal(storage.k, 10)
  assert.deepEqual(net.listen, ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/udp/0/quic-v1'])
  // @ts-expect-error: no such key in the storage table
  assert.equal(c.storage.nope, undefined)
  // @ts-expect-error: no such section
  assert.equal(c.nosuchsection, undefined)
})

test("a key's own rule (check) is applied after its kind", () => {
  for (const [raw, message] of [
    [{ net: { dhtProtocol: 'kad' } }, 'net.dhtProtocol: must start with "/"'],
    [{ api: { allowedHosts: ['nodus.local', 'http://x'] } }, 'api.allowedHosts: expected host names'],
    [{ api: { allowedHosts: 'nodus.local' } }, 'api.allowedHosts: expected an array of strings'],
  ] as const) {
    assert.throws(
      () => parseConfig({ dataDir: '/d', ...raw }),
      (err) => isNodusError(err, 'CONFIG_INVALID') && err.message.includes(message),
      message,
    )
  }
  assert.deepEqual(parseConfig({ dataDir: '/d', api: { allowedHosts: ['nodus.local'] } }).api.allowedHosts, [
    'nodus.local',
  ])
})

test('every key is listed once, with its section, in docs order, and its default is valid', () => {
  const paths = CONFIG_KEYS.map((k) => k.path)
  assert.equal(new Set(paths).size, paths.length)
  const sections = [...new Set(paths.map((p) => p.split('.')[0]))]
  assert.deepEqual(sections, [
    'net',
    'api',
    'storage',
    'repair',
    'trust',
    'messaging',
    'kv',
    'consensus',
    'ledger',
    'log',
  ])
  const c = parseConfig({ dataDir: '/d' }) as unknown as Record<string, Record<string, unknown>>
  for (const k of CONFIG_KEYS) {
    const [section, key] = k.path.split('.') as [string, string]
    assert.deepEqual(c[section]?.[key], k.default, k.path)
  }
})
