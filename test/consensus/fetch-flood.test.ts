/**
 * A peer floods `/nodus/consensus-fetch/1.0.0` (src/consensus/area.ts, wire.ts) of a validator in a
 * real 4-validator federation in this process (real libp2p on loopback, real LMDB): many concurrent
 * requests past `fetchPeerConcurrency` are refused PEER_BUSY, oversized requests (more refs than
 * `fetchMaxRefs`, a frame past the frame bound) are refused with a typed error and the peer is
 * reported (`nodus_trust_peer_actions_total`), refs the node does not hold get an empty answer, and the
 * validator keeps committing throughout.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { writeDevnetGenesis } from '../../src/cli/genesis.ts'
import { initNode } from '../../src/cli/init.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { loadConfig } from '../../src/config/config.ts'
import { CONSENSUS_FETCH_PROTOCOL } from '../../src/consensus/fetcher.ts'
import { Wire } from '../../src/consensus/wire.ts'
import { lengthPrefixed, StreamReader } from '../../src/net/index.ts'
import { createNode, type NodusNode } from '../../src/node/node.ts'
import { waitFor } from '../utils/wait.ts'

let dir = ''
const nodes: NodusNode[] = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-fetch-flood-'))
})
after(async () => {
  for (const n of nodes.reverse()) await n.stop().catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

const NET = { net: { listen: ['/ip4/127.0.0.1/tcp/0'] }, api: { port: 0 } }
const MAX_REFS = 16
const PER_PEER = 2

test('a peer flooding consensus-fetch is refused within bounds and reported; the validator keeps committing', {
  timeout: 180_000,
}, async () => {
  const dirs = [0, 1, 2, 3].map((i) => join(dir, `v${i}`))
  for (const d of dirs) await initNode(d, NET)
  const { out } = await writeDevnetGenesis({ dirs, out: join(dir, 'genesis.json'), roundTimeoutMs: 200 })
  for (const d of dirs) {
    const config = await loadConfig(d, {
      consensus: { genesis: out, fetchMaxRefs: MAX_REFS, fetchPeerConcurrency: PER_PEER },
    })
    const node = await createNode(config, { logger: silentLogger() })
    await node.start()
    nodes.push(node)
  }
  const attackerDir = join(dir, 'attacker')
  await initNode(attackerDir, NET)
  const attacker = await createNode(await loadConfig(attackerDir), { logger: silentLogger() })
  await attacker.start()
  nodes.push(attacker)
  for (let i = 0; i < 4; i++)
    for (let j = i + 1; j < 4; j++) await nodes[i]?.libp2p.dial(nodes[j]?.libp2p.getMultiaddrs() ?? [])
  const victim = nodes[0] as NodusNode
  const height = (): number => victim.areas.ledger?.height() ?? 0
  await waitFor(() => height() >= 3, { timeoutMs: 60_000, what: 'commits before the flood' })
  await attacker.libp2p.dial(victim.libp2p.getMultiaddrs())
  /** Faults the victim acted on (penalize, disconnect, ban): malformed requests are `reject`s. */
  const acted = async (): Promise<number> => {
    const m = await victim.metrics.registry.getSingleMetric('nodus_trust_peer_actions_total')?.get()
    return (m?.values ?? []).filter((v) => v.labels.action !== 'ignore').reduce((a, v) => a + v.value, 0)
  }
  const actedBefore = await acted()
  const h0 = height()

  // The attacker's client: no per-peer bound of its own.
  const wire = new Wire(attacker.libp2p, silentLogger(), {
    protocol: CONSENSUS_FETCH_PROTOCOL,
    maxFrameBytes: 4 * 1024 * 1024,
    perPeer: 10_000,
    maxInbound: 1,
    timeoutMs: 20_000,
  })
  const refusedCode = (err: unknown): string =>
    String(
      (err as { details?: { remoteCode?: string }; code?: string }).details?.remoteCode ??
        (err as { code?: string }).code,
    )

  // 1. Refs it does not hold: answered, with nothing.
  const unknown = Array.from({ length: MAX_REFS }, (_, i) => new Uint8Array(32).fill(i + 1))
  const empty = await wire.request(victim.libp2p.peerId, { refs: unknown })
  assert.deepEqual(empty.vertices, [])

  // 2. Many at once: at most PER_PEER served at a time, others refused PEER_BUSY, and streams past the
  // protocol's inbound bound (max(8, 16 × PER_PEER) per connection) reset by libp2p.
  const flood = await Promise.allSettled(
    Array.from({ length: 60 }, () => wire.request(victim.libp2p.peerId, { refs: unknown })),
  )
  const codes = new Map<string, number>()
  for (const r of flood) {
    const c = r.status === 'fulfilled' ? 'served' : refusedCode(r.reason)
    codes.set(c, (codes.get(c) ?? 0) + 1)
  }
  const seen = JSON.stringify(Object.fromEntries(codes))
  assert.ok((codes.get('PEER_BUSY') ?? 0) > 0, `some refused PEER_BUSY: ${seen}`)
  assert.ok((codes.get('served') ?? 0) >= 1, `some served: ${seen}`)
  assert.ok((codes.get('STREAM_CLOSED') ?? 0) <= 60 - 8, `the inbound bound admits at least 8: ${seen}`)
  for (const c of codes.keys())
    assert.ok(['served', 'PEER_BUSY', 'STREAM_CLOSED'].includes(c), `unexpected ${c}: ${seen}`)

  // 3. Oversized: more refs than fetchMaxRefs, and refs that are not digests: typed refusals.
  const tooMany = Array.from({ length: MAX_REFS + 1 }, () => new Uint8Array(32))
  await assert.rejects(wire.request(victim.libp2p.peerId, { refs: tooMany }), (err) => {
    assert.equal(refusedCode(err), 'PROTOCOL_ERROR')
    assert.match((err as Error).message, new RegExp(`at most ${MAX_REFS}`))
    return true
  })
  await assert.rejects(wire.request(victim.libp2p.peerId, { refs: [new Uint8Array(5)] }), (err) => {
    assert.equal(refusedCode(err), 'PROTOCOL_ERROR')
    return true
  })

  // 4. A frame past the victim's frame bound: refused before it is read whole.
  const stream = await attacker.libp2p.dialProtocol(victim.libp2p.peerId, CONSENSUS_FETCH_PROTOCOL)
  const huge = dagCbor.encode({ refs: [new Uint8Array(8 * 1024 * 1024)] })
  const reader = new StreamReader(stream, { signal: AbortSignal.timeout(20_000) })
  stream.send(lengthPrefixed(huge).subarray(0, 64))
  const answer = dagCbor.decode(await reader.readFrame(64 * 1024)) as { ok: boolean; code: string }
  assert.equal(answer.ok, false)
  assert.equal(typeof answer.code, 'string')
  stream.abort(new Error('done'))

  // Reported: the malformed requests (two, and the oversized frame) were acted on; PEER_BUSY was not
  // (peerAction ignore: a busy answer is no fault).
  assert.ok((await acted()) >= actedBefore + 2, `peer actions ${actedBefore} → ${await acted()}`)

  // And the validator kept committing.
  await waitFor(() => height() >= h0 + 5, { timeoutMs: 60_000, what: 'commits after the flood' })
  const s = victim.areas.consensus?.status()
  assert.equal(s?.halted, false)
})
