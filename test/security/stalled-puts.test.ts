/**
 * Fair service under load (issue 17, "Stalled puts"): one peer opens 80 puts that declare 16 MiB and
 * send nothing. It holds at most its per-peer share of the data slots (the rest are answered
 * PEER_BUSY), reserves no capacity for bytes it never sent, is cut off by the transfer-rate deadline,
 * and meanwhile other peers' puts, gets and control requests (has, audits) are served. Real nodes on
 * loopback; the test waits for events, never for a fixed time.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import type { Stream } from '@libp2p/interface'
import { lengthPrefixed, StreamReader } from '../../src/net/index.ts'
import type { NodusNode } from '../../src/node/node.ts'
import {
  cidForBytes,
  DEFAULT_SHARD_SERVER_OPTIONS,
  SHARD_PROTOCOL,
  ShardClient,
} from '../../src/storage/index.ts'
import { orderFor, startPeer, stopAll, type TestPeer } from '../utils/cluster.ts'
import { startNodes } from '../utils/nodes.ts'
import { waitFor } from '../utils/wait.ts'

const MiB = 1024 * 1024
let dir = ''
let nodes: NodusNode[] = []
let attacker: TestPeer

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-sec-stall-'))
  nodes = await startNodes(dir, 4, {
    storage: { k: 2, m: 1, segmentSize: 256 * 1024, manifestReplicas: 2 },
    repair: { intervalMs: 3_600_000 },
  })
  attacker = await startPeer()
  await attacker.libp2p.dial((nodes[0] as NodusNode).libp2p.getMultiaddrs())
})

after(async () => {
  await stopAll([attacker])
  await Promise.all(nodes.map((n) => n.stop()))
  await rm(dir, { recursive: true, force: true })
})

test('80 stalled puts from one peer hold only its share; others are served; the stalls are cut off', {
  timeout: 120_000,
}, async () => {
  const victim = nodes[0] as NodusNode
  let opened = 0
  const answers: Array<Promise<string>> = []
  let openFailed = 0
  // A stalled put cut off (rate deadline, reset) while the attacker is still opening streams frees its
  // slot, which a later stream may take: on a slow machine the loop outlasts the 5 s rate window.
  let opening = true
  let freedWhileOpening = 0
  for (let i = 0; i < 80; i++) {
    const cid = cidForBytes(randomBytes(32))
    const order = await orderFor(attacker, victim.libp2p.peerId, [cid], 16 * MiB)
    let stream: Stream
    try {
      stream = await attacker.libp2p.dialProtocol(victim.libp2p.peerId, SHARD_PROTOCOL)
    } catch {
      openFailed++ // over the per-connection stream limit: refused by libp2p itself
      continue
    }
    try {
      stream.send(lengthPrefixed(dagCbor.encode({ v: 1, op: 'put', cid: cid.bytes, size: 16 * MiB, order })))
    } catch {
      openFailed++ // reset by the server over the per-connection stream limit
      continue
    }
    opened++
    const reader = new StreamReader(stream)
    answers.push(
      reader.readFrame(65536).then(
        (f) => (dagCbor.decode(f) as { code?: string }).code ?? 'ok',
        () => {
          if (opening) freedWhileOpening++
          return 'cut off'
        },
      ),
    )
  }
  opening = false
  // The ones over the peer's share are answered at once with PEER_BUSY.
  const perPeer = DEFAULT_SHARD_SERVER_OPTIONS.maxRequestsPerPeer
  assert.ok(victim.shardServer.inFlight <= perPeer, `the attacker holds ${victim.shardServer.inFlight} slots`)
  // No capacity is reserved for the 16 MiB bodies that never came.
  assert.ok(victim.store.reservedBytes < 16 * MiB, `reserved ${victim.store.reservedBytes}`)

  // Meanwhile another peer's put (through the victim, as a holder), get and control requests are served.
  const up = nodes[1] as NodusNode
  const data = randomBytes(200 * 1024)
  const res = await up.files.put(
    (async function* () {
      yield data
    })(),
  )
  const onVictim = res.manifest.segments.flatMap((s) =>
    s.shards.filter((sh) => sh.holders.includes(victim.peerId)).map((sh) => sh.cid),
  )
  const client = (nodes[2] as NodusNode).files
  const chunks: Buffer[] = []
  for await (const c of client.get(res.cid)) chunks.push(Buffer.from(c))
  assert.ok(Buffer.concat(chunks).equals(data))
  const have = await shardClientOf(nodes[2] as NodusNode).has(victim.libp2p.peerId, onVictim)
  assert.ok(have.have.every((h) => h))

  // Every stalled put ends: PEER_BUSY at once, or cut off by the transfer-rate deadline.
  const outcomes = await Promise.all(answers)
  const busy = outcomes.filter((o) => o === 'PEER_BUSY').length
  assert.ok(
    busy + openFailed + freedWhileOpening >= 80 - perPeer,
    `busy ${busy}, refused streams ${openFailed}, opened ${opened}, freed while opening ${freedWhileOpening}`,
  )
  assert.ok(
    outcomes.every((o) => o === 'PEER_BUSY' || o === 'cut off' || o === 'TIMEOUT'),
    outcomes.join(','),
  )
  // The server releases each slot as its handler returns, just after the client saw the reset.
  await waitFor(() => victim.shardServer.inFlight === 0, {
    timeoutMs: 10_000,
    what: 'every slot to be released',
  })
})

function shardClientOf(node: NodusNode): ShardClient {
  return new ShardClient(
    { dialProtocol: (p, proto, o) => node.libp2p.dialProtocol(p, proto, o) },
    { requestTimeoutMs: 20_000, maxShardBytes: 16 * MiB },
  )
}
