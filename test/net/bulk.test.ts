/**
 * The bulk channel (src/net/bulk*.ts): shard gets and puts over TLS 1.3 sockets keyed over libp2p,
 * between real libp2p hosts on loopback; fallback to libp2p streams; hostile and broken sockets.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer as createNetServer } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { connect as tlsConnect } from 'node:tls'
import * as dagCbor from '@ipld/dag-cbor'
import type { Clock } from '../../src/common/clock.ts'
import { isNodusError, NodusError } from '../../src/common/errors.ts'
import { BulkChannel, DEFAULT_BULK_OPTIONS } from '../../src/net/bulk.ts'
import { BULK_PROTOCOL, FrameParser } from '../../src/net/bulk-wire.ts'
import { encodeVarint, StreamReader } from '../../src/net/index.ts'
import { cidForBytes, ShardClient, verifyReceipt } from '../../src/storage/index.ts'
import { orderFor, putOrdered, startPeer, stopAll, type TestPeer } from '../utils/cluster.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { waitFor } from '../utils/wait.ts'

interface BulkPeer extends TestPeer {
  bulk: BulkChannel
  bulkClient: ShardClient
  /** Requests this peer's bulk listener has handed to its shard server. */
  bulkServed: { count: number }
}

async function bulkPeer(
  options: Partial<typeof DEFAULT_BULK_OPTIONS> = {},
  clock?: Clock,
): Promise<BulkPeer> {
  const peer = await startPeer()
  const bulkServed = { count: 0 }
  const bulk = new BulkChannel(
    {
      handle: (protocol, handler, o) => peer.libp2p.handle(protocol, handler, o),
      dialProtocol: (p, protocol, o) => peer.libp2p.dialProtocol(p, protocol, o),
      remoteHost: () => '127.0.0.1',
      handler: (request, reply, signal) => {
        bulkServed.count++
        return peer.server.bulkHandler(request, reply, signal)
      },
      logger: { debug: () => {} },
      ...(clock === undefined ? {} : { clock }),
    },
    { ...DEFAULT_BULK_OPTIONS, ...options },
  )
  await bulk.start()
  const bulkClient = new ShardClient(
    { dialProtocol: (p, proto, o) => peer.libp2p.dialProtocol(p, proto, o), bulk },
    { requestTimeoutMs: 20_000, maxShardBytes: 16 * 1024 * 1024 },
  )
  return { ...peer, bulk, bulkClient, bulkServed }
}

/** Stop the peers' bulk channels, then the peers. */
async function stopBulkPeers(...peers: BulkPeer[]): Promise<void> {
  await Promise.all(peers.map((p) => p.bulk.stop()))
  await stopAll(peers)
}

/** A ticket from `server`, fetched over libp2p as the client side does. */
async function ticket(
  client: TestPeer,
  server: TestPeer,
): Promise<{ port: number; id: string; key: string }> {
  const stream = await client.libp2p.dialProtocol(server.id.peerId, BULK_PROTOCOL)
  const raw = await new StreamReader(stream).readFrame(1024)
  await stream.close().catch(() => {})
  return JSON.parse(new TextDecoder().decode(raw)) as { port: number; id: string; key: string }
}

/** A raw TLS socket to `port` with the given PSK; resolves once connected, rejects on failure. */
function rawSocket(port: number, identity: string, key: Buffer): Promise<ReturnType<typeof tlsConnect>> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      minVersion: 'TLSv1.3',
      pskCallback: () => ({ psk: key, identity }),
      checkServerIdentity: () => undefined,
    })
    s.once('secureConnect', () => resolve(s))
    s.once('error', reject)
    s.once('close', () => reject(new Error('closed')))
  })
}

function closed(s: ReturnType<typeof tlsConnect>): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) resolve()
    s.once('close', () => resolve())
  })
}

describe('bulk channel', () => {
  let a: BulkPeer
  let b: BulkPeer
  let plain: TestPeer

  before(async () => {
    ;[a, b] = await Promise.all([bulkPeer(), bulkPeer()])
    plain = await startPeer()
    await a.libp2p.dial(b.libp2p.getMultiaddrs())
    await a.libp2p.dial(plain.libp2p.getMultiaddrs())
  })
  after(async () => {
    await stopBulkPeers(a, b)
    await stopAll([plain])
  })

  it('carries puts and gets (signed receipts, CID-checked bytes), many in flight, over its own sockets', async () => {
    const blobs = Array.from({ length: 24 }, (_, i) => randomBytes(i === 0 ? 0 : i * 65_537 + (i % 3)))
    blobs.push(randomBytes(5 * 1024 * 1024 + 11))
    // Batches of 8. The first requests wait for the channel to be keyed (keyingWaitMs) rather than
    // go over libp2p, so every one is served by the bulk listener.
    const receipts = []
    for (let i = 0; i < blobs.length; i += 8) {
      receipts.push(
        ...(await Promise.all(
          blobs
            .slice(i, i + 8)
            .map((bytes) => putOrdered(a, a.bulkClient, b.id.peerId, cidForBytes(bytes), bytes)),
        )),
      )
      if (i === 0) assert.equal(b.bulkServed.count, 8, 'the first batch went over the bulk channel')
    }
    assert.equal(b.bulkServed.count, blobs.length)
    for (const [i, r] of receipts.entries()) {
      assert.equal(r.holder, b.id.peerId.toString())
      assert.equal(r.size, blobs[i]?.byteLength)
      assert.equal(await verifyReceipt(r), true)
    }
    await a.bulk.settled(b.id.peerId)
    const direct = await a.bulk.request(
      b.id.peerId,
      dagCbor.encode({ v: 1, op: 'get', cid: cidForBytes(blobs[3] as Uint8Array).bytes }),
      new Uint8Array(0),
      AbortSignal.timeout(10_000),
    )
    assert.deepEqual(dagCbor.decode(direct.header), { ok: true, size: blobs[3]?.byteLength })
    assert.ok(Buffer.from(direct.body).equals(blobs[3] as Uint8Array))
    const got = await Promise.all(blobs.map((bytes) => a.bulkClient.get(b.id.peerId, cidForBytes(bytes))))
    for (const [i, bytes] of blobs.entries())
      assert.ok(Buffer.from(got[i] as Uint8Array).equals(bytes), `blob ${i}`)
    assert.ok(
      a.bulk.sockets.outbound >= 1 && a.bulk.sockets.outbound <= DEFAULT_BULK_OPTIONS.maxSocketsPerPeer,
    )
    assert.equal(b.bulk.sockets.inbound, a.bulk.sockets.outbound)
  })

  it('passes remote errors through (SHARD_MISSING, CID_MISMATCH on put) without falling back', async () => {
    await assert.rejects(a.bulkClient.get(b.id.peerId, cidForBytes(randomBytes(10))), (err) =>
      isNodusError(err, 'SHARD_MISSING'),
    )
    // From a sender of its own: CID_MISMATCH is a `ban` fault (docs/ERRORS.md), and the other tests need a.
    const liar = await bulkPeer()
    try {
      await liar.libp2p.dial(b.libp2p.getMultiaddrs())
      const cid = cidForBytes(randomBytes(100))
      await assert.rejects(putOrdered(liar, liar.bulkClient, b.id.peerId, cid, randomBytes(100)), (err) =>
        isNodusError(err, 'CID_MISMATCH'),
      )
      assert.equal(b.store.has(cid), false)
      assert.equal(b.trust.peerActions.isBanned(liar.id.peerId.toString()), true)
    } finally {
      await stopBulkPeers(liar)
    }
  })

  it('falls back to libp2p streams for a peer without a bulk channel', async () => {
    const bytes = randomBytes(300_000)
    const cid = cidForBytes(bytes)
    await plain.store.put(cid, bytes)
    assert.ok(Buffer.from(await a.bulkClient.get(plain.id.peerId, cid)).equals(bytes))
    await a.bulk.settled(plain.id.peerId)
    assert.equal(a.bulk.available(plain.id.peerId), false, 'the failed connect is remembered')
    await assert.rejects(
      a.bulk.request(plain.id.peerId, new Uint8Array(1), new Uint8Array(0), AbortSignal.timeout(5_000)),
      (err) => isNodusError(err, 'BULK_UNAVAILABLE'),
    )
    const more = randomBytes(1000)
    const r = await putOrdered(a, a.bulkClient, plain.id.peerId, cidForBytes(more), more)
    assert.equal(await verifyReceipt(r), true)
  })

  it('refuses unknown, reused and expired tickets; the listener keeps serving', async () => {
    await assert.rejects(rawSocket(b.bulk.port, 'no-such-ticket', randomBytes(32)))
    const t = await ticket(a, b)
    const s = await rawSocket(t.port, t.id, Buffer.from(t.key, 'hex'))
    s.destroy()
    await assert.rejects(rawSocket(t.port, t.id, Buffer.from(t.key, 'hex')), 'a ticket is single-use')
    const wrongKey = await ticket(a, b)
    await assert.rejects(rawSocket(wrongKey.port, wrongKey.id, randomBytes(32)), 'the key must match')
    const clock = new FakeClock(Date.now())
    const short = await bulkPeer({}, clock)
    try {
      await a.libp2p.dial(short.libp2p.getMultiaddrs())
      const fresh = await ticket(a, short)
      const old = await ticket(a, short)
      ;(await rawSocket(fresh.port, fresh.id, Buffer.from(fresh.key, 'hex'))).destroy() // within its TTL: taken
      clock.advance(DEFAULT_BULK_OPTIONS.ticketTtlMs + 1)
      await assert.rejects(
        rawSocket(old.port, old.id, Buffer.from(old.key, 'hex')),
        'an expired ticket is refused',
      )
    } finally {
      await stopBulkPeers(short)
    }
    const bytes = randomBytes(1234)
    await putOrdered(a, a.bulkClient, b.id.peerId, cidForBytes(bytes), bytes)
  })

  it('closes a socket that sends a malformed or oversized frame, and keeps serving others', async () => {
    for (const junk of [
      Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      encodeVarint(64 * 1024 + 1),
      Uint8Array.from([...encodeVarint(1), 0, ...encodeVarint(DEFAULT_BULK_OPTIONS.maxBodyBytes + 1)]),
    ]) {
      const t = await ticket(a, b)
      const s = await rawSocket(t.port, t.id, Buffer.from(t.key, 'hex'))
      s.on('error', () => {})
      s.write(junk)
      await closed(s)
    }
    // A request the shard server cannot parse gets an error reply on the same socket.
    const t = await ticket(a, b)
    const s = await rawSocket(t.port, t.id, Buffer.from(t.key, 'hex'))
    const firstReply = new Promise<{ header: Uint8Array }>((resolve, reject) => {
      const parser = new FrameParser(1024, resolve)
      s.on('data', (d: Buffer) => parser.push(d))
      s.once('close', () => reject(new Error('the socket closed without a reply')))
    })
    const header = dagCbor.encode({ v: 1, op: 'audit', nonsense: true })
    s.write(Uint8Array.from([...encodeVarint(header.byteLength), ...header, ...encodeVarint(0)]))
    const reply = dagCbor.decode((await firstReply).header) as { ok: boolean; code: string }
    assert.equal(reply.ok, false)
    assert.equal(reply.code, 'PROTOCOL_ERROR')
    s.destroy()
    const bytes = randomBytes(4321)
    const cid = cidForBytes(bytes)
    await putOrdered(a, a.bulkClient, b.id.peerId, cid, bytes)
    assert.ok(Buffer.from(await a.bulkClient.get(b.id.peerId, cid)).equals(bytes))
  })

  it('a socket with more requests queued than it reads at once resumes as they are served', async () => {
    // One socket, 40 pipelined gets: the server stops reading at 16 queued requests and must start
    // again as it answers them (it once stayed paused until its idle timeout, 30 s by default).
    const client = await bulkPeer({ maxSocketsPerPeer: 1 })
    const server = await bulkPeer({ idleTimeoutMs: 600_000 })
    try {
      await client.libp2p.dial(server.libp2p.getMultiaddrs())
      const bytes = randomBytes(64 * 1024)
      const cid = cidForBytes(bytes)
      await server.store.put(cid, bytes)
      const get = dagCbor.encode({ v: 1, op: 'get', cid: cid.bytes })
      const ask = (): ReturnType<BulkChannel['request']> =>
        client.bulk.request(server.id.peerId, get, new Uint8Array(0), AbortSignal.timeout(10_000))
      await ask() // keys the channel
      const answers = await Promise.all(Array.from({ length: 40 }, ask))
      for (const r of answers) assert.ok(Buffer.from(r.body).equals(bytes))
      // The socket must be reading again: a request sent after the burst is answered.
      assert.ok(Buffer.from((await ask()).body).equals(bytes))
      assert.equal(client.bulk.sockets.outbound, 1)
      assert.equal(server.bulkServed.count, 42)
    } finally {
      await stopBulkPeers(client, server)
    }
  })

  it('waits for keying once per connect: a peer whose listener never answers costs one wait', async () => {
    // The client is told the server is at 127.0.0.2, where a TCP listener on the same port accepts and
    // then says nothing, so the TLS handshake hangs (as behind a firewall that drops packets).
    const server = await bulkPeer()
    const accepted: import('node:net').Socket[] = []
    const silent = createNetServer((s) => {
      accepted.push(s)
      s.on('error', () => {})
    })
    await new Promise<void>((resolve, reject) => {
      silent.once('error', reject)
      silent.listen(server.bulk.port, '127.0.0.2', () => resolve())
    })
    const peer = await startPeer()
    const keyingWaitMs = 400
    const client = new BulkChannel(
      {
        handle: (protocol, handler, o) => peer.libp2p.handle(protocol, handler, o),
        dialProtocol: (p, protocol, o) => peer.libp2p.dialProtocol(p, protocol, o),
        remoteHost: () => '127.0.0.2',
        handler: async () => {
          throw new Error('serves nothing')
        },
        logger: { debug: () => {} },
      },
      { ...DEFAULT_BULK_OPTIONS, keyingWaitMs, connectTimeoutMs: 20_000 },
    )
    await client.start()
    try {
      await peer.libp2p.dial(server.libp2p.getMultiaddrs())
      const ask = (): Promise<unknown> =>
        client.request(server.id.peerId, new Uint8Array(1), new Uint8Array(0), AbortSignal.timeout(30_000))
      const unavailable = (err: unknown): boolean => isNodusError(err, 'BULK_UNAVAILABLE')
      const first = ask()
      const keyingEnds = performance.now() + keyingWaitMs // the connect began in ask(): its wait ends by then
      await assert.rejects(first, unavailable) // waited for the connect, then gave up
      // Timers count whole milliseconds from the event loop's cached time, so on a busy machine the first
      // request may give up a little before the keying wait (on performance.now()) is over; the claim is
      // about requests after it.
      await waitFor(() => performance.now() > keyingEnds, {
        timeoutMs: 5_000,
        what: 'the keying wait to end',
      })
      // The connect is still hanging; the next request does not wait again: it is refused before the
      // event loop's next turn (a wait, even of 1 ms, would need a timer, which fires later).
      const next = ask().then(
        () => 'answered',
        (err: unknown) => (unavailable(err) ? 'unavailable' : 'other'),
      )
      const nextTurn = new Promise((r) => setImmediate(() => r('waited')))
      assert.equal(await Promise.race([next, nextTurn]), 'unavailable')
    } finally {
      await client.stop()
      for (const s of accepted) s.destroy()
      await new Promise((r) => silent.close(r))
      await stopBulkPeers(server)
      await stopAll([peer])
    }
  })

  it('caps the sockets one peer may open (2 × maxSocketsPerPeer)', async () => {
    const c = await bulkPeer()
    const open: ReturnType<typeof tlsConnect>[] = []
    try {
      await a.libp2p.dial(c.libp2p.getMultiaddrs())
      for (let i = 0; i < 2 * DEFAULT_BULK_OPTIONS.maxSocketsPerPeer; i++) {
        const t = await ticket(a, c)
        open.push(await rawSocket(t.port, t.id, Buffer.from(t.key, 'hex')))
      }
      const t = await ticket(a, c)
      const extra = await rawSocket(t.port, t.id, Buffer.from(t.key, 'hex')).catch(() => undefined)
      if (extra !== undefined) {
        extra.on('error', () => {})
        await closed(extra)
      }
      assert.equal(c.bulk.sockets.inbound, 2 * DEFAULT_BULK_OPTIONS.maxSocketsPerPeer)
      assert.ok(open.every((s) => !s.destroyed))
    } finally {
      for (const s of open) s.destroy()
      await stopBulkPeers(c)
    }
  })

  it('bounds the bytes held for inbound requests: a small budget still serves every put, and a peer trickling a large body is cut off', {
    timeout: 60_000,
  }, async () => {
    // No idle timeout to close the trickling socket: only the budget rule can.
    const c = await bulkPeer({ maxInboundBufferedBytes: 1024 * 1024, idleTimeoutMs: 600_000 })
    try {
      await a.libp2p.dial(c.libp2p.getMultiaddrs())
      const blobs = Array.from({ length: 24 }, (_, i) => randomBytes(300_000 + i))
      // Key the channel first so that the puts go over it.
      await putOrdered(
        a,
        a.bulkClient,
        c.id.peerId,
        cidForBytes(blobs[0] as Uint8Array),
        blobs[0] as Uint8Array,
      )
      await a.bulk.settled(c.id.peerId)
      const receipts = await Promise.all(
        blobs.map(async (bytes) =>
          a.bulk.request(
            c.id.peerId,
            dagCbor.encode({
              v: 1,
              op: 'put',
              cid: cidForBytes(bytes).bytes,
              size: bytes.byteLength,
              order: await orderFor(a, c.id.peerId, [cidForBytes(bytes)]),
            }),
            bytes,
            AbortSignal.timeout(30_000),
          ),
        ),
      )
      for (const r of receipts) assert.equal((dagCbor.decode(r.header) as { ok: boolean }).ok, true)
      for (const bytes of blobs) assert.ok(c.store.has(cidForBytes(bytes)))

      // 1.5 MiB of a 5 MiB body, then silence: over the budget with no complete request anywhere.
      const t = await ticket(a, c)
      const s = await rawSocket(t.port, t.id, Buffer.from(t.key, 'hex'))
      s.on('error', () => {})
      const header = dagCbor.encode({
        v: 1,
        op: 'put',
        cid: cidForBytes(Uint8Array.of(1)).bytes,
        size: 5 << 20,
      })
      s.write(Uint8Array.from([...encodeVarint(header.byteLength), ...header, ...encodeVarint(5 << 20)]))
      s.write(randomBytes(1536 * 1024))
      await closed(s)
      const more = randomBytes(1000)
      await putOrdered(a, a.bulkClient, c.id.peerId, cidForBytes(more), more)
    } finally {
      await stopBulkPeers(c)
    }
  })

  it('warm keys one socket ahead of requests; a small get goes over libp2p until a socket is open', async () => {
    const [c, d] = await Promise.all([bulkPeer(), bulkPeer()])
    try {
      await c.libp2p.dial(d.libp2p.getMultiaddrs())
      const bytes = randomBytes(2_000)
      const cid = cidForBytes(bytes)
      await d.store.put(cid, bytes)
      assert.equal(c.bulk.isOpen(d.id.peerId), false)
      // No socket yet: a small get does not wait for keying (it goes over libp2p) and warms one.
      assert.ok(Buffer.from(await c.bulkClient.get(d.id.peerId, cid, { small: true })).equals(bytes))
      assert.equal(d.bulkServed.count, 0, 'served over libp2p')
      assert.equal(c.bulk.warm(d.id.peerId), false, 'the small get already started keying one')
      await c.bulk.settled(d.id.peerId)
      assert.equal(c.bulk.isOpen(d.id.peerId), true)
      assert.equal(c.bulk.warm(d.id.peerId), false, 'nothing to do with a socket open')
      assert.equal(c.bulk.sockets.outbound, 1)
      // Now the small get finds the socket open and uses it.
      assert.ok(Buffer.from(await c.bulkClient.get(d.id.peerId, cid, { small: true })).equals(bytes))
      assert.equal(d.bulkServed.count, 1)
      // The other way round: warm first, then a shard get finds its socket keyed.
      assert.equal(d.bulkClient.warm(c.id.peerId), true)
      assert.equal(d.bulkClient.warm(c.id.peerId), false, 'one connect at a time')
      await d.bulk.settled(c.id.peerId)
      assert.equal(d.bulk.isOpen(c.id.peerId), true)
      await c.store.put(cid, bytes)
      assert.ok(Buffer.from(await d.bulkClient.get(c.id.peerId, cid)).equals(bytes))
      assert.equal(c.bulkServed.count, 1)
      assert.equal(plainWarm(), false)
    } finally {
      await stopBulkPeers(c, d)
    }
    function plainWarm(): boolean {
      // A peer without a bulk channel: the failed connect earlier in this suite is remembered.
      return a.bulk.available(plain.id.peerId) && a.bulk.warm(plain.id.peerId)
    }
  })

  it('a request aborted mid-way is dropped on arrival: its socket and the requests behind it go on', async () => {
    const bytes = randomBytes(8 * 1024 * 1024)
    const cid = cidForBytes(bytes)
    await b.store.put(cid, bytes)
    await a.bulk.settled(b.id.peerId)
    const sockets = a.bulk.sockets.outbound
    const served = b.bulkServed.count
    const controller = new AbortController()
    const pending = a.bulkClient.get(b.id.peerId, cid, { signal: controller.signal })
    // Pipelined behind it on the same sockets (every socket busy): these must not fail with it.
    const behind = Array.from({ length: 2 * DEFAULT_BULK_OPTIONS.maxSocketsPerPeer }, () =>
      a.bulkClient.get(b.id.peerId, cid),
    )
    controller.abort(new NodusError('ABORTED', 'test abort'))
    await assert.rejects(pending, (err) => isNodusError(err, 'ABORTED'))
    for (const got of await Promise.all(behind)) assert.ok(Buffer.from(got).equals(bytes))
    assert.equal(
      b.bulkServed.count - served,
      behind.length + 1,
      'all over the bulk channel, none over libp2p',
    )
    assert.ok(a.bulk.sockets.outbound >= sockets, 'no socket closed by the abort')
    assert.ok(Buffer.from(await a.bulkClient.get(b.id.peerId, cid)).equals(bytes))
  })

  it('when the server stops, requests fall back to libp2p', async () => {
    const c = await bulkPeer()
    await a.libp2p.dial(c.libp2p.getMultiaddrs())
    const bytes = randomBytes(200_000)
    const cid = cidForBytes(bytes)
    await c.store.put(cid, bytes)
    assert.ok(Buffer.from(await a.bulkClient.get(c.id.peerId, cid)).equals(bytes))
    await c.bulk.stop()
    assert.ok(Buffer.from(await a.bulkClient.get(c.id.peerId, cid)).equals(bytes))
    await stopAll([c])
  })
})

describe('bulk frame parser', () => {
  it('parses messages split at every byte boundary, and rejects bad varints and oversized frames', () => {
    const header = dagCbor.encode({ ok: true, size: 5 })
    const body = Uint8Array.of(1, 2, 3, 4, 5)
    const one = Uint8Array.from([
      ...encodeVarint(header.byteLength),
      ...header,
      ...encodeVarint(body.byteLength),
      ...body,
    ])
    const wire = Uint8Array.from([...one, ...one, ...encodeVarint(0), ...encodeVarint(0)])
    for (let cut = 0; cut <= wire.byteLength; cut++) {
      const got: { header: Uint8Array; body: Uint8Array }[] = []
      const p = new FrameParser(100, (m) => got.push(m))
      p.push(wire.subarray(0, cut))
      p.push(wire.subarray(cut))
      assert.equal(got.length, 3, `cut ${cut}`)
      assert.deepEqual([...(got[1]?.body ?? [])], [...body])
      assert.equal(got[2]?.header.byteLength, 0)
    }
    assert.throws(
      () =>
        new FrameParser(100, () => {}).push(
          Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1]),
        ),
      (err) => isNodusError(err, 'PROTOCOL_ERROR'),
    )
    assert.throws(
      () => new FrameParser(100, () => {}).push(Uint8Array.from([0, 101])),
      (err) => isNodusError(err, 'MESSAGE_TOO_LARGE'),
    )
  })
})
