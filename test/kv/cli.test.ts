/**
 * `nodus kv` driving real nodes (in process, loopback, LMDB) through their HTTP API, each command a
 * real CLI process: create, writes of each kind signed by the CLI, reads and ranges, a write by
 * another node's key refused until the owner grants it, host, sync and sync-status; the HLC the CLI
 * keeps beside its key never goes back.
 */
import assert from 'node:assert/strict'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { KV_CLI_STATE_FILE, parseWriterKey } from '../../src/cli/kv-writer.ts'
import { readApiToken } from '../../src/common/data-dir.ts'
import { formatDbId } from '../../src/kv/db-id.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { startNodes } from '../utils/nodes.ts'
import { runCli } from '../utils/run-cli.ts'

let dir = ''
let nodes: NodusNode[] = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-kv-cli-'))
  nodes = await startNodes(dir, 2, { kv: { syncIntervalMs: 600_000, verifyThreads: 1 } })
})
after(async () => {
  await Promise.all(nodes.map((n) => n.stop().catch(() => {})))
  await rm(dir, { recursive: true, force: true })
})

/** Run `nodus kv ARGS --data-dir <node i's dir>`: exit code, stdout, stderr. */
const kv = (i: number, ...args: string[]) => runCli(['kv', ...args, '--data-dir', join(dir, `n${i}`)])

/** Run it and expect exit code 0; its stdout. */
async function ok(i: number, ...args: string[]): Promise<string> {
  const r = await kv(i, ...args)
  assert.equal(r.code, 0, `nodus kv ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

/** Run it with --json and expect exit code 1 with the error `code`; the error's message. */
async function refused(code: string, i: number, ...args: string[]): Promise<string> {
  const r = await kv(i, ...args, '--json')
  assert.equal(r.code, 1, `expected ${code}: ${r.stdout} ${r.stderr}`)
  const err = JSON.parse(r.stderr) as { code: string; message: string }
  assert.equal(err.code, code, err.message)
  return err.message
}

describe('nodus kv', () => {
  let db = ''

  it('create prints the database id, owned by the node’s key', async () => {
    const a = nodes[0] as NodusNode
    db = (await ok(0, 'create', 'notes')).trim()
    assert.equal(db, formatDbId('notes', a.identity.ed25519.publicKey.raw))
    const key = JSON.parse(await ok(0, 'key', '--json')) as { did: string; peerId: string }
    assert.equal(key.did, a.info().did)
    assert.equal(db, `notes-${key.did.slice('did:key:'.length)}`)
  })

  it('set / get, by the database’s name or its id; --json gives type and value', async () => {
    const id = (await ok(0, 'set', 'title', 'hello world', '--db', 'notes')).trim()
    assert.match(id, /^[0-9a-f]{64}$/)
    assert.equal(await ok(0, 'get', 'title', '--db', db), 'hello world\n')
    assert.deepEqual(JSON.parse(await ok(0, 'get', 'title', '--db', 'notes', '--json')), {
      db,
      key: 'title',
      type: 'string',
      value: 'hello world',
    })
    await refused('KV_KEY_NOT_FOUND', 0, 'get', 'nothing', '--db', db)
  })

  it('hset / get: a hash, field by field', async () => {
    await ok(0, 'hset', 'h', 'f1', 'v1', 'f2', 'v2', '--db', db)
    await ok(0, 'hset', 'h', 'f1', 'v1b', '--db', db)
    assert.equal(await ok(0, 'get', 'h', '--db', db), 'f1\tv1b\nf2\tv2\n')
  })

  it('zadd / zrange: ranks (negative from the end), scores with exclusive bounds, REV and LIMIT', async () => {
    await ok(0, 'zadd', 'z', '1', 'a', '2', 'b', '3', 'c', '-inf', 'low', '--db', db)
    assert.equal(await ok(0, 'zrange', 'z', '0', '-1', '--db', db), 'low\t-inf\na\t1\nb\t2\nc\t3\n')
    assert.equal(await ok(0, 'zrange', 'z', '-2', '-1', '--db', db), 'b\t2\nc\t3\n')
    assert.equal(await ok(0, 'zrange', 'z', '(1', '+inf', '--byscore', '--db', db), 'b\t2\nc\t3\n')
    assert.equal(
      await ok(0, 'zrange', 'z', '(1', '+inf', '--byscore', '--rev', '--limit', '0', '1', '--db', db),
      'c\t3\n',
    )
    const bad = await kv(0, 'zadd', 'z', '1', '--db', db)
    assert.equal(bad.code, 2, 'an odd score/member list is a usage error')
  })

  it('xadd / xrange, geoadd / geosearch, json.set / get --path', async () => {
    await ok(0, 'xadd', 's', 'temp', '21', '--id', '5-1', '--db', db)
    await ok(0, 'xadd', 's', 'temp', '22', '--id', '7-0', '--db', db)
    assert.equal(await ok(0, 'xrange', 's', '(5-1', '+', '--db', db), '7-0\ttemp 22\n')
    await ok(
      0,
      'geoadd',
      'g',
      '13.361389',
      '38.115556',
      'Palermo',
      '15.087269',
      '37.502669',
      'Catania',
      '--db',
      db,
    )
    const near = await ok(
      0,
      'geosearch',
      'g',
      '--lonlat',
      '15,37',
      '--radius',
      '100',
      '--unit',
      'km',
      '--db',
      db,
    )
    assert.match(near, /^Catania\t56\.44\d*\n$/)
    await ok(0, 'json.set', 'j', '{"a":1,"b":[1,2]}', '--db', db)
    assert.equal(await ok(0, 'get', 'j', '--path', '$.b[*]', '--db', db), '[1,2]\n')
  })

  it('a write signed by another node’s key is refused (KV_UNAUTHORIZED) until the owner grants it', async () => {
    const b = nodes[1] as NodusNode
    // b hosts the database: it syncs the create and everything else from a.
    const hosted = JSON.parse(await ok(1, 'host', db, '--json')) as { hosted: boolean; ops: number }
    assert.equal(hosted.hosted, true)
    assert.equal(hosted.ops, 9)
    // b's CLI signs with b's key: b's node refuses it, and so would a's.
    const message = await refused('KV_UNAUTHORIZED', 1, 'set', 'k', 'from b', '--db', db)
    assert.match(message, /no capability/)
    await refused(
      'KV_UNAUTHORIZED',
      1,
      'set',
      'k',
      'from b',
      '--db',
      db,
      '--api',
      (nodes[0] as NodusNode).info().api,
      '--token',
      await readApiToken(join(dir, 'n0')),
    )
    await refused('KV_KEY_NOT_FOUND', 0, 'get', 'k', '--db', db)

    // The owner grants b's key (as `nodus kv key` prints it) for keys under `b/`.
    const did = (await ok(1, 'key')).trim()
    assert.equal(did, b.info().did)
    const grant = (await ok(0, 'grant', did, '--prefix', 'b/', '--expires-in', '1d', '--db', db)).trim()
    assert.match(grant, /^[0-9a-f]{64}$/)
    await ok(1, 'sync', db) // b fetches the grant now, gossip or not
    await ok(1, 'set', 'b/k', 'from b', '--db', db, '--cap', grant)
    await ok(1, 'set', 'b/k2', 'again', '--db', db) // the grant is remembered
    await refused('KV_UNAUTHORIZED', 1, 'set', 'outside', 'x', '--db', db) // out of the prefix
    assert.equal(await ok(1, 'get', 'b/k', '--db', db), 'from b\n')
    await ok(0, 'sync', db)
    assert.equal(await ok(0, 'get', 'b/k2', '--db', db), 'again\n')
  })

  it('sync-status lists what each node hosts, its ops and the last sync', async () => {
    const [a, b] = nodes as [NodusNode, NodusNode]
    const all = JSON.parse(await ok(1, 'sync-status', '--json')) as {
      databases: { db: string; hosted: boolean; ops: number; lastSync?: { peer: string; fetched: number } }[]
    }
    assert.equal(all.databases.length, 1)
    const s = all.databases[0]
    assert.equal(s?.db, db)
    assert.equal(s?.hosted, true)
    assert.equal(s?.ops, 12) // 9, the grant, b's two writes
    assert.equal(s?.lastSync?.peer, a.peerId)
    const one = JSON.parse(await ok(0, 'sync-status', db, '--json')) as {
      ops: number
      lastSync?: { peer: string }
    }
    assert.equal(one.ops, 12)
    assert.equal(one.lastSync?.peer, b.peerId)
    assert.match(
      await ok(0, 'sync-status', db),
      new RegExp(`^${db}  hosted  12 ops  last sync .* with ${b.peerId}: need`),
    )
  })

  it('create --hybrid: every op of the database is hybrid-signed; the CLI remembers it per identity', async () => {
    const hybrid = (await ok(0, 'create', 'sensors', '--hybrid')).trim()
    await ok(0, 'set', 't', '21.5', '--db', 'sensors') // remembered: signed with the hybrid key
    assert.equal(await ok(0, 'get', 't', '--db', hybrid), '21.5\n')
    // The same identity from another directory has no memory of it: an Ed25519 op is refused.
    const other = join(dir, 'other-key-dir')
    await cp(join(dir, 'n0', 'keys'), join(other, 'keys'), { recursive: true })
    const message = await refused('KV_UNAUTHORIZED', 0, 'set', 't', '22', '--db', hybrid, '--key-dir', other)
    assert.match(message, /hybrid mode.*--hybrid/)
    await ok(0, 'set', 't', '22', '--db', hybrid, '--key-dir', other, '--hybrid')
    assert.equal(await ok(0, 'get', 't', '--db', hybrid), '22\n')
    const key = JSON.parse(await ok(0, 'key', '--hybrid', '--json')) as { hybrid: string; ed25519: string }
    assert.equal(key.hybrid.length, 2 * 1984)
    assert.ok(key.hybrid.startsWith(key.ed25519))
  })

  it('the CLI’s HLC never goes back: it continues from the one saved beside the key', async () => {
    const file = join(dir, 'n0', KV_CLI_STATE_FILE)
    const saved = JSON.parse(await readFile(file, 'utf8')) as { hlc: { ms: number; c: number } }
    const ahead = { ms: Date.now() + 30_000, c: 7 }
    assert.ok(saved.hlc.ms <= Date.now() && saved.hlc.ms > 0)
    await writeFile(file, JSON.stringify({ ...saved, hlc: ahead }))
    const w = JSON.parse(await ok(0, 'set', 'later', 'v', '--db', db, '--json')) as {
      hlc: { ms: number; c: number }
    }
    assert.deepEqual(w.hlc, { ms: ahead.ms, c: 8 })
    assert.deepEqual((JSON.parse(await readFile(file, 'utf8')) as { hlc: unknown }).hlc, w.hlc)
  })

  it('a wrong API token shows the node’s 401 UNAUTHORIZED and its message, not PROTOCOL_ERROR', async () => {
    const api = ['--api', (nodes[0] as NodusNode).info().api, '--token', 'not-the-token']
    const message = await refused('UNAUTHORIZED', 0, 'set', 'k', 'v', '--db', db, ...api)
    assert.match(message, /missing or wrong bearer token/)
    assert.match(message, /api-token/, 'with what to do')
    const text = await kv(0, 'set', 'k', 'v', '--db', db, ...api)
    assert.equal(text.code, 1)
    assert.match(text.stderr, /^error UNAUTHORIZED: missing or wrong bearer token/)
    // The node's own codes are shown as before.
    await refused('KV_KEY_NOT_FOUND', 0, 'get', 'never-written', '--db', db)
  })
})

describe('parseWriterKey', () => {
  it('reads a did:key, a z6Mk key id, an Ed25519 PeerId and hex; refuses anything else', () => {
    const a = nodes[0] as NodusNode
    const raw = a.identity.ed25519.publicKey.raw
    const did = a.info().did
    for (const text of [did, did.slice('did:key:'.length), a.peerId, Buffer.from(raw).toString('hex')])
      assert.deepEqual(parseWriterKey(text), raw, text)
    for (const text of ['nope', 'abc', 'did:key:z6Mkxx', `${Buffer.from(raw).toString('hex')}00`])
      assert.throws(() => parseWriterKey(text), { code: 'INVALID_ARGUMENT' }, text)
  })
})
