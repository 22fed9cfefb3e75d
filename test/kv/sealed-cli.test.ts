/**
 * `nodus kv` with a private (sealed) database on two real nodes (in process, loopback, LMDB), each
 * command a real CLI process: create --sealed, sealed writes, the owner reads back; the other node
 * hosts the database but cannot read it until the owner shares the key with it; a plaintext op is
 * refused there.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { readKey } from '../../src/kv/key-read.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { startNodes } from '../utils/nodes.ts'
import { runCli } from '../utils/run-cli.ts'
import { waitFor } from '../utils/wait.ts'

let dir = ''
let nodes: NodusNode[] = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-kv-sealed-cli-'))
  nodes = await startNodes(dir, 2, { kv: { syncIntervalMs: 600_000, verifyThreads: 1 } })
})
after(async () => {
  await Promise.all(nodes.map((n) => n.stop().catch(() => {})))
  await rm(dir, { recursive: true, force: true })
})

const kv = (i: number, ...args: string[]) => runCli(['kv', ...args, '--data-dir', join(dir, `n${i}`)])
async function ok(i: number, ...args: string[]): Promise<string> {
  const r = await kv(i, ...args)
  assert.equal(r.code, 0, `nodus kv ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}
async function refused(code: string, i: number, ...args: string[]): Promise<void> {
  const r = await kv(i, ...args, '--json')
  assert.equal(r.code, 1, `expected ${code}: ${r.stdout} ${r.stderr}`)
  assert.equal((JSON.parse(r.stderr) as { code: string }).code, code, r.stderr)
}

describe('nodus kv, private database', () => {
  it('seals on write, opens for the owner and for a reader it shares with, and only then', async () => {
    const [a, b] = nodes as [NodusNode, NodusNode]
    const db = (await ok(0, 'create', 'diary', '--sealed')).trim()
    await ok(0, 'set', 'today', 'rain-secret-9127', '--db', db)
    await ok(0, 'hset', 'me', 'mood', 'calm-secret', '--db', db)
    assert.equal((await ok(0, 'get', 'today', '--db', db)).trim(), 'rain-secret-9127')
    assert.equal((await ok(0, 'get', 'me', '--db', db)).trim(), 'mood\tcalm-secret')
    // The node holds ciphertext: its own HTTP read shows a sealed value, not the text.
    const held = readKey(a.areas.kv.engine.reader, db, 'today', {}, Date.now()).value
    assert.ok(held instanceof Uint8Array && !Buffer.from(held).toString('latin1').includes('rain'))
    await ok(1, 'host', db)
    await waitFor(async () => (await b.areas.kv.status(db)).ops >= 4, {
      timeoutMs: 20_000,
      what: 'node 1 to hold the ops',
    })
    await refused('KV_DB_KEY_MISSING', 1, 'get', 'today', '--db', db)
    await refused('KV_DB_KEY_MISSING', 1, 'set', 'x', 'y', '--db', db)
    await ok(0, 'share', b.identity.peerId.toString(), '--db', db)
    await ok(1, 'sync', db)
    assert.equal((await ok(1, 'get', 'today', '--db', db)).trim(), 'rain-secret-9127')
    // A rotation shared with node 1: new writes use epoch 1, and both nodes read them.
    await ok(0, 'rotate', '--db', db, b.identity.peerId.toString())
    await ok(0, 'set', 'tomorrow', 'sun-secret', '--db', db)
    await ok(1, 'sync', db)
    assert.equal((await ok(1, 'get', 'tomorrow', '--db', db)).trim(), 'sun-secret')
    // Ops that cannot be sealed are refused by the node.
    await refused('KV_OP_INVALID', 0, 'zadd', 'scores', '1', 'm', '--db', db)
  })
})
