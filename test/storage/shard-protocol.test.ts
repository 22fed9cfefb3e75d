import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { isNodusError } from '../../src/common/errors.ts'
import { lengthPrefixed, StreamReader } from '../../src/net/index.ts'
import { cidForBytes, SHARD_PROTOCOL, verifyReceipt } from '../../src/storage/index.ts'
import { orderFor, putOrdered, startPeer, stopAll, type TestPeer } from '../utils/cluster.ts'
import { waitFor } from '../utils/wait.ts'

let a: TestPeer
let b: TestPeer
let busy: TestPeer

before(async () => {
  ;[a, b, busy] = await Promise.all([
    startPeer(),
    startPeer(),
    startPeer({ tuning: { maxConcurrentRequests: 0 } }),
  ])
  await a.libp2p.dial(b.libp2p.getMultiaddrs())
  await a.libp2p.dial(busy.libp2p.getMultiaddrs())
})
after(async () => {
  await stopAll([a, b, busy])
})

test('put stores a block and returns a receipt signed by the holder', async () => {
  const bytes = randomBytes(3 * 1024 * 1024 + 7)
  const cid = cidForBytes(bytes)
  const receipt = await putOrdered(a, a.client, b.id.peerId, cid, bytes)
  assert.equal(receipt.holder, b.id.peerId.toString())
  assert.equal(receipt.size, bytes.byteLength)
  assert.ok(receipt.cid.equals(cid))
  assert.equal(await verifyReceipt(receipt), true)
  assert.equal(await verifyReceipt({ ...receipt, size: receipt.size + 1 }), false)
  assert.ok(b.store.has(cid))
  assert.deepEqual(Buffer.from(await a.client.get(b.id.peerId, cid)), bytes)
  assert.deepEqual((await a.client.has(b.id.peerId, [cid, cidForBytes(randomBytes(5))])).have, [true, false])
})

test('put of bytes that do not match the CID is refused, nothing is stored, and the sender is banned', async () => {
  // A sender of its own: CID_MISMATCH is a `ban` fault (docs/ERRORS.md), and the other tests need a.
  const liar = await startPeer()
  try {
    await liar.libp2p.dial(b.libp2p.getMultiaddrs())
    const cid = cidForBytes(randomBytes(100))
    // The holder answers first, then bans the sender (and hangs up on it): the sender hears why.
    await assert.rejects(putOrdered(liar, liar.client, b.id.peerId, cid, randomBytes(100)), (err) =>
      isNodusError(err, 'CID_MISMATCH'),
    )
    assert.match(
      await b.metrics.text(),
      /nodus_storage_shard_requests_total\{op="put",result="CID_MISMATCH"\} 1\b/,
      'the holder refused the put for CID_MISMATCH',
    )
    assert.equal(b.store.has(cid), false)
    assert.equal(b.trust.peerActions.isBanned(liar.id.peerId.toString()), true)
  } finally {
    await stopAll([liar])
  }
})

test('get of a missing block says SHARD_MISSING', async () => {
  await assert.rejects(a.client.get(b.id.peerId, cidForBytes(randomBytes(10))), (err) =>
    isNodusError(err, 'SHARD_MISSING'),
  )
})

test('an overloaded server answers PEER_BUSY', async () => {
  const bytes = randomBytes(1000)
  await assert.rejects(putOrdered(a, a.client, busy.id.peerId, cidForBytes(bytes), bytes), (err) =>
    isNodusError(err, 'PEER_BUSY'),
  )
})

test('a hostile request gets PROTOCOL_ERROR and the server keeps serving', async () => {
  for (const payload of [
    Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    lengthPrefixed(Uint8Array.from([1, 2, 3])),
    lengthPrefixed(dagCbor.encode({ v: 1, op: 'get', cid: Uint8Array.from([1, 2, 3]) })),
    lengthPrefixed(
      dagCbor.encode({ v: 1, op: 'put', cid: cidForBytes(Uint8Array.of(1)).bytes, size: 2 ** 40 }),
    ),
  ]) {
    const stream = await a.libp2p.dialProtocol(b.id.peerId, SHARD_PROTOCOL)
    const reader = new StreamReader(stream)
    stream.send(payload)
    await stream.close().catch(() => {})
    const resp = dagCbor.decode(await reader.readFrame(65536)) as { ok: boolean; code: string }
    assert.equal(resp.ok, false)
    assert.ok(['PROTOCOL_ERROR', 'CID_INVALID', 'SHARD_TOO_LARGE'].includes(resp.code), resp.code)
  }
  const bytes = randomBytes(10)
  await putOrdered(a, a.client, b.id.peerId, cidForBytes(bytes), bytes)
})

test('repair gets and puts have slots of their own: a stalled upload holding every data slot does not block them', {
  timeout: 60_000,
}, async () => {
  const one = await startPeer({ tuning: { maxConcurrentRequests: 1 } })
  const uploader = await startPeer()
  try {
    await a.libp2p.dial(one.libp2p.getMultiaddrs())
    await uploader.libp2p.dial(one.libp2p.getMultiaddrs())
    const bytes = randomBytes(64 * 1024)
    const cid = cidForBytes(bytes)
    await putOrdered(a, a.client, one.id.peerId, cid, bytes)
    // The uploader's put declares 1 MiB and sends nothing: it holds the only data slot.
    const stalled = cidForBytes(randomBytes(16))
    const stream = await uploader.libp2p.dialProtocol(one.id.peerId, SHARD_PROTOCOL)
    const order = await orderFor(uploader, one.id.peerId, [stalled])
    stream.send(lengthPrefixed(dagCbor.encode({ v: 1, op: 'put', cid: stalled.bytes, size: 1 << 20, order })))
    await waitFor(() => one.server.inFlight > 0, {
      timeoutMs: 5_000,
      what: 'the stalled put to take its slot',
    })
    assert.equal(one.server.inFlight, 1)
    await assert.rejects(a.client.get(one.id.peerId, cid), (err) => isNodusError(err, 'PEER_BUSY'))
    const got = await a.client.get(one.id.peerId, cid, { repair: true })
    assert.ok(Buffer.from(got).equals(bytes))
    stream.abort(new Error('done'))
  } finally {
    await stopAll([one, uploader])
  }
})
