/**
 * Catch-up from a ledger snapshot plus the DAG (src/consensus/catchup.ts) in a real 4-validator
 * federation in this process (real libp2p on loopback, real LMDB), with a small `gcDepthRounds`: the
 * fourth validator starts only after the others pruned the rounds it would replay, so it can only catch
 * up by snapshot. A follower that lies (it claims the highest head, then serves a real snapshot with one
 * account dropped, under the true root) is tried first: its snapshot is refused with
 * LEDGER_SNAPSHOT_ROOT_MISMATCH and the liar reported; the node installs a validator's snapshot (f+1
 * validators vouch for it), fetches the DAG above it, and commits on: transfers made before and after
 * the catch-up give it the same balances and state root as the others at a later height. A request
 * frame over the protocol's bound is refused with a typed error.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { writeDevnetGenesis } from '../../src/cli/genesis.ts'
import { initNode } from '../../src/cli/init.ts'
import { bytesEqual } from '../../src/common/bytes.ts'
import { isNodusError } from '../../src/common/errors.ts'
import { silentLogger } from '../../src/common/logger.ts'
import { loadConfig } from '../../src/config/config.ts'
import { CONSENSUS_SNAPSHOT_PROTOCOL } from '../../src/consensus/catchup.ts'
import { Wire } from '../../src/consensus/wire.ts'
import { loadIdentity, signEd25519 } from '../../src/crypto/index.ts'
import { CONFIG_KEY, SUPPLY_KEY } from '../../src/ledger/codec.ts'
import { encodeTx } from '../../src/ledger/index.ts'
import { requestResponse } from '../../src/net/index.ts'
import { createNode, type NodusNode } from '../../src/node/node.ts'
import { waitFor } from '../utils/wait.ts'

let dir = ''
const nodes: NodusNode[] = []
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-catchup-'))
})
after(async () => {
  for (const n of nodes.reverse()) await n.stop().catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

const NET = { net: { listen: ['/ip4/127.0.0.1/tcp/0'] }, api: { port: 0 } }
const GC = 8

async function metric(node: NodusNode, name: string, labels: Record<string, string>): Promise<number> {
  const m = await node.metrics.registry.getSingleMetric(name)?.get()
  return (m?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((a, v) => a + v.value, 0)
}

test('a validator that starts after its peers pruned the DAG catches up from a vouched snapshot; a lying source is refused', {
  timeout: 180_000,
}, async () => {
  const dirs = [0, 1, 2, 3].map((i) => join(dir, `v${i}`))
  for (const d of dirs) await initNode(d, NET)
  const liarDir = join(dir, 'liar')
  await initNode(liarDir, NET)
  const { out } = await writeDevnetGenesis({ dirs, out: join(dir, 'genesis.json'), roundTimeoutMs: 200 })
  const open = async (d: string): Promise<NodusNode> => {
    const config = await loadConfig(d, {
      consensus: { genesis: out, gcDepthRounds: GC, catchupCheckMs: 300, fetchRetryMs: 200 },
    })
    const node = await createNode(config, { logger: silentLogger() })
    nodes.push(node)
    return node
  }
  const live: NodusNode[] = []
  for (const d of dirs.slice(0, 3)) {
    const n = await open(d)
    await n.start()
    live.push(n)
  }
  const liar = await open(liarDir)
  await liar.start()
  const all = [...live, liar]
  for (let i = 0; i < all.length; i++)
    for (let j = i + 1; j < all.length; j++) await all[i]?.libp2p.dial(all[j]?.libp2p.getMultiaddrs() ?? [])
  const v0 = live[0] as NodusNode
  const h = (n: NodusNode): number => n.areas.ledger?.height() ?? 0
  const lastCommittedRound = (n: NodusNode): number => n.areas.consensus?.status().lastDecidedRound ?? 0

  // Transfers from v0's account to v3's (the late validator), one before and one after the catch-up.
  const from = await loadIdentity(dirs[0] as string)
  const to = (await loadIdentity(dirs[3] as string)).ed25519.publicKey.raw
  const transfer = async (via: NodusNode, nonce: number, amount: number): Promise<void> => {
    const chain = via.areas.ledger?.ledger.chain as Uint8Array
    const tx = await encodeTx(
      { chain, nonce, kind: 'transfer', to, amount },
      { publicKey: from.ed25519.publicKey.raw, sign: (m) => signEd25519(from.ed25519, m) },
    )
    await via.areas.consensus?.submitTx(tx.bytes)
    await via.areas.ledger?.outcome(tx.id, AbortSignal.timeout(60_000))
  }
  const nonce = (n: NodusNode): number =>
    n.areas.ledger?.ledger.account(from.ed25519.publicKey.raw)?.nonce ?? -1
  await waitFor(() => h(v0) >= 3, { timeoutMs: 60_000, what: 'first commits' })
  await transfer(v0, 0, 1_111)
  // Past 2 · gcDepthRounds of committed rounds, the validators' stores dropped the early rounds.
  await waitFor(() => lastCommittedRound(v0) > 6 * GC, { timeoutMs: 90_000, what: 'rounds pruned' })

  // The liar: the highest head, then a validator's real snapshot with one account dropped.
  const v0Id = v0.libp2p.peerId
  const proxy = new Wire(liar.libp2p, silentLogger(), {
    protocol: CONSENSUS_SNAPSHOT_PROTOCOL,
    maxFrameBytes: 8 * 1024 * 1024,
    perPeer: 8,
    maxInbound: 64,
    timeoutMs: 20_000,
  })
  await liar.libp2p.unhandle(CONSENSUS_SNAPSHOT_PROTOCOL)
  let liesServed = 0
  await proxy.start(
    async (req) => {
      if (req.op === 'head') return { height: 1_000_000_000, floor: 1_000_000_000 }
      const { ok: _ok, ...reply } = await proxy.request(v0Id, req)
      if (req.op !== 'chunk') return reply
      const c = dagCbor.decode(reply.chunk as Uint8Array) as { entries: Uint8Array[] }
      const i = c.entries.findIndex(
        (k, n) => n % 2 === 0 && !bytesEqual(k, CONFIG_KEY) && !bytesEqual(k, SUPPLY_KEY),
      )
      if (i >= 0) c.entries.splice(i, 2)
      liesServed++
      return { chunk: dagCbor.encode(c) }
    },
    () => {},
  )

  const late = await open(dirs[3] as string)
  await late.start()
  // The liar first: it is among the peers asked from the first check on, and the highest.
  await late.libp2p.dial(liar.libp2p.getMultiaddrs())
  await waitFor(() => (late.areas.consensus?.status().topicPeers ?? 0) >= 1, {
    timeoutMs: 30_000,
    what: 'the liar on the topic',
  })
  for (const n of live) await late.libp2p.dial(n.libp2p.getMultiaddrs())

  await waitFor(
    async () => (await metric(late, 'nodus_consensus_catchups_total', { result: 'installed' })) >= 1,
    { timeoutMs: 90_000, what: 'a snapshot installed' },
  )
  assert.ok(liesServed >= 1, 'the liar was asked first')
  assert.ok((await metric(late, 'nodus_consensus_catchups_total', { result: 'refused' })) >= 1)
  assert.ok(
    (await metric(late, 'nodus_trust_peer_actions_total', { action: 'ban' })) >= 1,
    'the liar was reported (LEDGER_SNAPSHOT_ROOT_MISMATCH, ban)',
  )
  const installedAt = h(late)
  assert.ok(installedAt > 3, `installed at ${installedAt}`)
  assert.ok(nonce(late) >= 1 && nonce(late) === nonce(v0), 'the transfer before the snapshot is in it')

  // It fetches the DAG above the snapshot and commits on; a transfer after it reaches it too.
  await waitFor(() => h(late) >= installedAt + 5, { timeoutMs: 90_000, what: 'commits after the snapshot' })
  await transfer(live[1] as NodusNode, 1, 2_222)
  const at = h(live[1] as NodusNode)
  await waitFor(() => h(late) >= at, { timeoutMs: 60_000, what: 'the late node at the transfer' })
  const root = (n: NodusNode, height: number): string =>
    Buffer.from(n.areas.ledger?.ledger.rootAt(height)?.root ?? new Uint8Array()).toString('hex')
  assert.notEqual(root(late, at), '')
  for (const n of live) {
    await waitFor(() => h(n) >= at, { timeoutMs: 30_000, what: 'every validator at the transfer' })
    assert.equal(root(late, at), root(n, at), `root at ${at}`)
    assert.equal(root(late, installedAt), root(n, installedAt), `root at ${installedAt}`)
  }
  assert.equal(nonce(late), nonce(v0))
  assert.notEqual(root(late, at), root(late, installedAt), 'the transfer changed the state')
  assert.deepEqual(late.areas.consensus?.status().equivocators, [])

  // A request frame over the protocol's bound: a typed refusal, and the stream ends.
  await assert.rejects(
    requestResponse(
      (live[2] as NodusNode).libp2p,
      late.libp2p.peerId,
      CONSENSUS_SNAPSHOT_PROTOCOL,
      dagCbor.encode({ op: 'head', pad: new Uint8Array(4096) }),
      { timeoutMs: 20_000, what: 'oversized', maxReplyBytes: 64 * 1024 },
      (r) => r,
    ),
    (err: unknown) =>
      isNodusError(err) &&
      err.code === 'PROTOCOL_ERROR' &&
      (err.details as { remoteCode?: string }).remoteCode === 'MESSAGE_TOO_LARGE',
  )
  await proxy.stop()
})
