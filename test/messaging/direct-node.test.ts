/**
 * Direct messages through whole nodes (createNode: the DHT namespace, the lifecycle, the API): a
 * message sent over HTTP to a stopped node waits at its keepers, and the node collects it by itself
 * when it starts again (its afterStart, once net has dialled its bootstrap peers), or, started with no
 * peer, as soon as one connects.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { silentLogger } from '../../src/common/logger.ts'
import { loadConfig } from '../../src/config/config.ts'
import { createNode, type NodusNode } from '../../src/node/node.ts'
import { startNodes } from '../utils/nodes.ts'
import { waitFor } from '../utils/wait.ts'

describe('direct messages between whole nodes', () => {
  let dir = ''
  let nodes: NodusNode[] = []
  after(async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()))
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })

  it('a message POSTed to a stopped node reaches it when it starts again', async () => {
    dir = await mkdtemp(join(tmpdir(), 'nodus-direct-node-'))
    nodes = await startNodes(dir, 4, { messaging: { mailboxReplicas: 2 } })
    const [a, r] = nodes as [NodusNode, NodusNode]
    // r publishes its key record; a finds it in the DHT while r is away.
    await r.direct.publishKey()
    await r.stop()
    const token = (await readFile(join(dir, 'n0', 'api-token'), 'utf8')).trim()
    const res = await fetch(`${a.info().api}/messages/${r.peerId}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
      body: 'see you later',
    })
    assert.equal(res.status, 200, await res.clone().text())
    const receipt = (await res.json()) as { id: string; via: string; keepers: number }
    assert.equal(receipt.via, 'mailbox')
    assert.equal(receipt.keepers, 2)

    const bootstrap = nodes.filter((n) => n !== r).flatMap((n) => n.info().multiaddrs)
    const again = await createNode(await loadConfig(join(dir, 'n1'), { net: { bootstrap } }), {
      logger: silentLogger(),
    })
    nodes[1] = again
    await again.start()
    await waitFor(() => again.direct.inbox().length > 0, { timeoutMs: 30_000, what: 'the collected message' })
    const [m] = again.direct.inbox()
    assert.equal(m?.id, receipt.id)
    assert.equal(m?.from, a.peerId)
    assert.equal(m?.via, 'mailbox')
    assert.equal(new TextDecoder().decode(m?.body), 'see you later')

    // Started again with no bootstrap peer, it finds no keeper at first, and collects as soon as a
    // peer connects to it.
    await again.stop()
    const second = await fetch(`${a.info().api}/messages/${r.peerId}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
      body: 'and again',
    })
    assert.equal(second.status, 200, await second.clone().text())
    assert.equal(((await second.json()) as { via: string }).via, 'mailbox')
    const alone = await createNode(await loadConfig(join(dir, 'n1'), { net: { bootstrap: [] } }), {
      logger: silentLogger(),
    })
    nodes[1] = alone
    await alone.start()
    assert.equal(alone.direct.inbox().length, 1)
    await a.libp2p.dial(alone.libp2p.getMultiaddrs())
    await waitFor(() => alone.direct.inbox().length === 2, { timeoutMs: 30_000, what: 'the second message' })
    assert.equal(new TextDecoder().decode(alone.direct.inbox()[1]?.body), 'and again')
  })
})
