/**
 * Finding (issue 17, "A promise not kept"): a peer that sends bytes not matching the CID got
 * CID_MISMATCH and nothing else happened to it, although docs/ERRORS.md said it is banned.
 *
 * Here a hostile holder's shard server answers gets with corrupted bytes (on both transports: its
 * store's reads flip a byte of every chunk). An honest getter reads the file: the get completes byte for
 * byte from the other holders, the hostile holder is banned (CID_MISMATCH → `ban`), disconnected,
 * refused when either side dials again (the connection gater), refused by the shard server on a bulk
 * socket keyed before the ban, trusted less than an honest holder, and the ban survives a restart of
 * the getter on the same data directory.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { silentLogger } from '../../src/common/logger.ts'
import { loadConfig } from '../../src/config/config.ts'
import { createNode, type NodusNode } from '../../src/node/node.ts'
import type { ShardStore } from '../../src/storage/index.ts'
import { startNodes } from '../utils/nodes.ts'

const N = 5
let dir = ''
const nodes: NodusNode[] = []

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-peer-actions-'))
  nodes.push(
    ...(await startNodes(dir, N, {
      storage: { k: 2, m: 2, segmentSize: 65536, manifestReplicas: 2 },
      repair: { intervalMs: 3_600_000, graceMs: 3_600_000 },
    })),
  )
})
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  await rm(dir, { recursive: true, force: true })
})

/** Every chunk `store` reads comes out with its first byte flipped (a holder serving wrong bytes). */
function serveCorruptBytes(store: ShardStore): void {
  const honest = store.read.bind(store)
  store.read = async function* (cid, options) {
    for await (const chunk of honest(cid, options)) {
      const bad = Uint8Array.from(chunk)
      bad[0] = (bad[0] ?? 0) ^ 0xff
      yield bad
    }
  }
}

/** Resolves when `node` has no connection left to `peer` (at once if it has none). */
function disconnectedFrom(node: NodusNode, peer: string): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (node.libp2p.getConnections().every((c) => c.remotePeer.toString() !== peer)) {
        node.libp2p.removeEventListener('peer:disconnect', check)
        resolve()
      }
    }
    node.libp2p.addEventListener('peer:disconnect', check)
    check()
  })
}

/**
 * `banned` dials `node`, which must drop the connection as soon as Noise names the caller: `node`
 * never opens it (a `connection:open` from `banned` fails at once), and `banned` is left with none.
 * (The dialer's own dial may resolve: its muxer selection is optimistic, so it learns of the refusal a
 * moment later, when the connection closes.)
 */
async function refusedInbound(node: NodusNode, banned: NodusNode): Promise<void> {
  let onOpen: ((evt: CustomEvent<{ remotePeer: { toString(): string } }>) => void) | undefined
  const opened = new Promise<never>((_resolve, reject) => {
    onOpen = (evt) => {
      if (evt.detail.remotePeer.toString() === banned.peerId)
        reject(new Error('the banned peer got a connection'))
    }
    node.libp2p.addEventListener('connection:open', onOpen)
  })
  try {
    await Promise.race([
      opened,
      (async () => {
        await banned.libp2p.dial(node.libp2p.getMultiaddrs()).catch(() => undefined)
        await disconnectedFrom(banned, node.peerId)
      })(),
    ])
  } finally {
    node.libp2p.removeEventListener('connection:open', onOpen)
  }
  assert.equal(node.libp2p.getConnections(banned.libp2p.peerId).length, 0)
}

async function readAll(node: NodusNode, cid: Parameters<NodusNode['files']['get']>[0]): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const p of node.files.get(cid)) parts.push(p)
  return Buffer.concat(parts)
}

test('a holder serving bytes that do not match the CID is banned, disconnected, refused both ways, and stays banned across a restart; the get completes', {
  timeout: 120_000,
}, async () => {
  const up = nodes[0] as NodusNode
  const data = randomBytes(3 * 2 * 65536 - 11)
  const res = await up.files.put(
    (async function* () {
      yield data
    })(),
  )
  // The hostile holder holds a data shard (getters ask data shards first), and is not the uploader.
  const k = res.manifest.k
  const hostilePeer = res.manifest.segments
    .flatMap((s) => s.shards.slice(0, k).flatMap((sh) => sh.holders))
    .find((h) => h !== up.peerId)
  const hostile = nodes.find((n) => n.peerId === hostilePeer) as NodusNode
  assert.ok(hostile, 'no holder of a data shard besides the uploader')
  const getterIndex = nodes.findIndex((n) => n !== up && n !== hostile)
  const getter = nodes[getterIndex] as NodusNode
  serveCorruptBytes(hostile.store)

  // The honest get completes byte for byte although one holder lies.
  const getterSide = disconnectedFrom(getter, hostile.peerId)
  const hostileSide = disconnectedFrom(hostile, getter.peerId)
  assert.deepEqual(await readAll(getter, res.cid), data)

  // Banned for CID_MISMATCH, for trust.banMs (default 24 h), and disconnected at once.
  const ban = getter.peerActions.banOf(hostile.peerId)
  assert.ok(ban, 'the hostile holder was not banned')
  assert.equal(ban.code, 'CID_MISMATCH')
  assert.equal(ban.untilMs - ban.atMs, getter.config.trust.banMs)
  await getterSide
  await hostileSide
  assert.equal(getter.libp2p.getConnections(hostile.libp2p.peerId).length, 0)
  const metrics = await getter.metrics.text()
  assert.match(metrics, /nodus_trust_peer_actions_total\{action="ban"\} [1-9]/)
  assert.match(metrics, /nodus_trust_banned_peers 1\b/)

  // Trusted less than an honest holder that served the getter.
  const honest = nodes.find(
    (n) =>
      n !== hostile && n !== getter && (getter.trust.localTrust().get(getter.peerId)?.get(n.peerId) ?? 0) > 0,
  ) as NodusNode
  assert.ok(honest, 'no honest holder served the getter')
  getter.trust.compute()
  assert.ok(
    getter.trust.score(hostile.peerId) < getter.trust.score(honest.peerId),
    'hostile holder not trusted less',
  )

  // Refused when either side dials again (the connection gater of the getter).
  await assert.rejects(getter.libp2p.dial(hostile.libp2p.getMultiaddrs()))
  await refusedInbound(getter, hostile)

  // A bulk socket keyed before the ban stays open until idle: its requests are refused.
  let answer: Uint8Array | undefined
  const shardCid = res.manifest.segments[0]?.shards[0]?.cid
  assert.ok(shardCid)
  await getter.shardServer.bulkHandler(
    {
      peer: hostile.libp2p.peerId,
      header: dagCbor.encode({ v: 1, op: 'get', cid: shardCid.bytes }),
      body: new Uint8Array(0),
    },
    {
      send: async (header) => {
        answer = header
      },
    },
    AbortSignal.timeout(10_000),
  )
  assert.ok(answer)
  assert.equal((dagCbor.decode(answer) as { code?: string }).code, 'PEER_BANNED')

  // The ban survives a restart of the getter on the same data directory.
  await getter.stop()
  const restarted = await createNode(await loadConfig(getter.config.dataDir), { logger: silentLogger() })
  nodes[getterIndex] = restarted
  await restarted.start()
  assert.ok(restarted.peerActions.isBanned(hostile.peerId), 'the ban was lost in the restart')
  await assert.rejects(restarted.libp2p.dial(hostile.libp2p.getMultiaddrs()))
  await refusedInbound(restarted, hostile)
  for (const n of nodes) {
    if (n !== restarted && n !== hostile) await restarted.libp2p.dial(n.libp2p.getMultiaddrs())
  }
  assert.deepEqual(await readAll(restarted, res.cid), data)
  assert.equal(restarted.libp2p.getConnections(hostile.libp2p.peerId).length, 0)
})
