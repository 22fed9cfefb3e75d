/**
 * Direct messages between real nodes (createNode: every area, the API, the DHT namespace), through the
 * CLI and HTTP: `nodus send` on one node, `nodus inbox --follow` and GET /messages on the other, and
 * the token every route needs.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import type { NodusNode } from '../../src/node/node.ts'
import { startNodes } from '../utils/nodes.ts'
import { CLI, runCli } from '../utils/run-cli.ts'
import { waitFor } from '../utils/wait.ts'

describe('nodus send / nodus inbox', () => {
  let dir = ''
  let nodes: NodusNode[] = []
  after(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()))
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })

  it('a message sent with `nodus send` is printed by `nodus inbox --follow` and listed by GET /messages', async () => {
    dir = await mkdtemp(join(tmpdir(), 'nodus-direct-cli-'))
    nodes = await startNodes(dir, 2, {})
    const [a, b] = nodes as [NodusNode, NodusNode]
    const follow = spawn(
      process.execPath,
      [CLI, 'inbox', '--follow', '--json', '--data-dir', join(dir, 'n1')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stdout = ''
    follow.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    try {
      const sent = await runCli(['send', b.peerId, 'hello b', '--json', '--data-dir', join(dir, 'n0')])
      assert.equal(sent.code, 0, sent.stderr)
      const receipt = JSON.parse(sent.stdout) as { id: string; to: string; via: string }
      assert.equal(receipt.to, b.peerId)
      assert.equal(receipt.via, 'online')
      await waitFor(() => stdout.includes('\n'), { timeoutMs: 20_000, what: 'the printed message' })
      const m = JSON.parse(stdout.split('\n')[0] as string)
      assert.equal(m.id, receipt.id)
      assert.equal(m.from, a.peerId)
      assert.equal(Buffer.from(m.body, 'base64').toString(), 'hello b')

      const listed = await runCli(['inbox', '--data-dir', join(dir, 'n1')])
      assert.equal(listed.code, 0, listed.stderr)
      assert.equal(listed.stdout, `${a.peerId}: hello b\n`)

      const info = b.info()
      const token = (await readFile(join(dir, 'n1', 'api-token'), 'utf8')).trim()
      const noToken = await fetch(`${info.api}/messages`)
      assert.equal(noToken.status, 401)
      const withToken = await fetch(`${info.api}/messages`, { headers: { authorization: `Bearer ${token}` } })
      assert.equal(withToken.status, 200)
      const body = (await withToken.json()) as { messages: { id: string }[] }
      assert.deepEqual(
        body.messages.map((x) => x.id),
        [receipt.id],
      )
    } finally {
      follow.kill('SIGINT')
    }
    const code = await new Promise((r) => follow.once('exit', r))
    assert.equal(code, 0)
  })
})
