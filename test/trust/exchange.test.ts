/**
 * Signed trust vectors and capacity/locality reports travel between real nodes over
 * /nodus/reports/1.0.0, are verified, rate-limited and used (EigenTrust rows, placement inputs).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { generateIdentity } from '../../src/crypto/index.ts'
import { lengthPrefixed, StreamReader } from '../../src/net/index.ts'
import type { NodusNode } from '../../src/node/node.ts'
import { REPORTS_PROTOCOL } from '../../src/trust/exchange.ts'
import { signTrustVector, trustVectorFromLocalTrust } from '../../src/trust/index.ts'
import { startNodes } from '../utils/nodes.ts'
import { waitFor } from '../utils/wait.ts'

let dir = ''
let nodes: NodusNode[] = []

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodus-exchange-'))
  nodes = await startNodes(dir, 3, {
    trust: { region: 'eu-west', networks: ['as64500'], exchangeIntervalMs: 3_600_000 },
    storage: { capacityBytes: 5_000_000_000 },
  })
})
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  await rm(dir, { recursive: true, force: true })
})

test('capacity reports and trust vectors reach peers and are used', { timeout: 60_000 }, async () => {
  const [a, b, c] = nodes as [NodusNode, NodusNode, NodusNode]
  // Reports are pushed when a connection is identified: wait (bounded) until b has a's.
  await waitFor(() => b.reports.has(a.peerId), { timeoutMs: 10_000, what: "b to hold a's capacity report" })
  const ra = b.reports.get(a.peerId)
  assert.ok(ra, 'b has no report from a')
  assert.equal(ra.region, 'eu-west')
  assert.deepEqual(ra.networks, ['as64500'])
  assert.equal(ra.capacityBytes, 5_000_000_000)
  assert.ok(ra.freeBytes > 0 && ra.freeBytes <= ra.capacityBytes)

  // a's local trust (from its own interactions) reaches b as a signed vector.
  a.trust.recordInteraction(a.peerId, c.peerId, 'audit-passed', 5)
  assert.equal(await a.exchange.push(b.identity.peerId), true)
  const row = b.trust.localTrust().get(a.peerId)
  assert.ok(row !== undefined && (row.get(c.peerId) ?? 0) > 0, "b did not take a's trust vector")
  // A fresh issuer: the very same signed message twice is a replay; a burst runs into the rate limit.
  const issuer = await generateIdentity()
  const sign = async (seq: number): Promise<Uint8Array> =>
    (
      await signTrustVector(
        trustVectorFromLocalTrust(issuer.peerId.toString(), seq, Date.now(), [[c.peerId, 1]]),
        {
          peerId: issuer.peerId,
          ed25519: issuer.ed25519,
        },
      )
    ).bytes
  const send = async (bytes: Uint8Array): Promise<{ ok: boolean; code?: string }> => {
    const stream = await a.libp2p.dialProtocol(b.identity.peerId, REPORTS_PROTOCOL)
    const reader = new StreamReader(stream)
    stream.send(lengthPrefixed(dagCbor.encode({ v: 1, kind: 'trust', bytes })))
    await stream.close()
    return dagCbor.decode(await reader.readFrame(1024)) as { ok: boolean; code?: string }
  }
  const first = await sign(1)
  assert.deepEqual(await send(first), { ok: true })
  assert.deepEqual(await send(first), { ok: false, code: 'TRUST_VECTOR_INVALID' })
  let limited = false
  for (let seq = 2; seq < 60 && !limited; seq++)
    limited = (await send(await sign(seq))).code === 'RATE_LIMITED'
  assert.ok(limited, 'no rate limit within 60 messages')
})

test('garbage on the reports protocol is refused with a code, and the node keeps working', async () => {
  const [a, b] = nodes as [NodusNode, NodusNode]
  const stream = await a.libp2p.dialProtocol(b.identity.peerId, REPORTS_PROTOCOL)
  const reader = new StreamReader(stream)
  stream.send(lengthPrefixed(dagCbor.encode({ v: 1, kind: 'capacity', bytes: Uint8Array.of(1, 2, 3) })))
  await stream.close()
  const resp = dagCbor.decode(await reader.readFrame(1024)) as { ok: boolean; code: string }
  assert.equal(resp.ok, false)
  assert.equal(resp.code, 'CAPACITY_REPORT_INVALID')
  assert.ok(b.reports.has(a.peerId))
})
