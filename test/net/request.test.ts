import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import type { Stream } from '@libp2p/interface'
import { type ErrorCode, isNodusError } from '../../src/common/errors.ts'
import {
  lengthPrefixed,
  type NodusLibp2p,
  type RequestOptions,
  requestResponse,
  StreamReader,
  sendAll,
} from '../../src/net/index.ts'
import { startHost } from '../utils/cluster.ts'

const PROTO = '/nodus/test-request/1.0.0'
let a: NodusLibp2p
let b: NodusLibp2p
/** Called when the server has read a `silent` request (and starts saying nothing). */
let onSilent: () => void = () => {}

/** Answers by the request's `mode`; `size` bytes of body are read (or not, for `refuse`). */
async function serve(stream: Stream): Promise<void> {
  const reader = new StreamReader(stream)
  const req = dagCbor.decode(await reader.readFrame(1024)) as { mode: string; size?: number }
  const reply = (msg: unknown): boolean => stream.send(lengthPrefixed(dagCbor.encode(msg)))
  switch (req.mode) {
    case 'echo': {
      const body = await reader.readExactly(req.size ?? 0)
      reply({ ok: true, size: body.byteLength })
      await sendAll(stream, body)
      break
    }
    case 'busy':
      reply({ ok: false, code: 'PEER_BUSY', message: 'too many requests' })
      break
    case 'refuse': // answer before reading the body, as a holder refusing a put does
      reply({ ok: false, code: 'QUOTA_EXCEEDED', message: 'no room' })
      break
    case 'big':
      reply({ ok: true, pad: new Uint8Array(4096) })
      break
    case 'list':
      reply([1, 2, 3])
      break
    case 'silent':
      onSilent()
      await new Promise((resolve) => stream.addEventListener('close', resolve, { once: true }))
      return
  }
  await stream.close().catch(() => {})
}

before(async () => {
  ;[a, b] = await Promise.all([startHost(), startHost()])
  await b.handle(PROTO, (stream: Stream) => {
    serve(stream).catch(() => stream.abort(new Error('test server failed')))
  })
  await a.dial(b.getMultiaddrs())
})
after(async () => {
  await Promise.all([a.stop(), b.stop()])
})

function options(extra: Partial<RequestOptions> = {}): RequestOptions {
  return { timeoutMs: 10_000, what: 'test request', maxReplyBytes: 1024, ...extra }
}

function request(mode: string, extra: Partial<RequestOptions> = {}, size?: number): Promise<unknown> {
  const frame = dagCbor.encode({ mode, ...(size === undefined ? {} : { size }) })
  return requestResponse(a, b.peerId, PROTO, frame, options(extra), (reply) => reply)
}

function hasCode(code: ErrorCode, check?: (err: Error & { details: Record<string, unknown> }) => void) {
  return (err: unknown): boolean => {
    assert.ok(isNodusError(err), `not a NodusError: ${String(err)}`)
    assert.equal(err.code, code, err.message)
    check?.(err)
    return true
  }
}

test('a request with a body gets the reply header and the raw bytes after it', async () => {
  const body = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251)
  const frame = dagCbor.encode({ mode: 'echo', size: body.byteLength })
  const got = await requestResponse(a, b.peerId, PROTO, frame, options({ body }), async (reply, reader) => {
    assert.equal(reply.ok, true)
    return reader.readExactly(reply.size as number)
  })
  assert.deepEqual(got, body)
})

test('a request without a body closes its write side and reads the reply', async () => {
  const reply = (await request('echo', {}, 0)) as Record<string, unknown>
  assert.deepEqual(reply, { ok: true, size: 0 })
})

test('a remote error keeps its code when listed, else is PROTOCOL_ERROR naming the remote code', async () => {
  await assert.rejects(
    request('busy', { remoteCodes: new Set<ErrorCode>(['PEER_BUSY']) }),
    hasCode('PEER_BUSY', (err) => {
      assert.equal(err.details.remoteCode, 'PEER_BUSY')
      assert.match(err.message, /too many requests/)
    }),
  )
  await assert.rejects(
    request('busy'),
    hasCode('PROTOCOL_ERROR', (err) => assert.equal(err.details.remoteCode, 'PEER_BUSY')),
  )
})

test('a reply that is not a dag-cbor map is a PROTOCOL_ERROR to reject', async () => {
  await assert.rejects(
    request('list'),
    hasCode('PROTOCOL_ERROR', (err) => assert.equal((err as { peerAction?: string }).peerAction, 'reject')),
  )
})

test('a reply frame above maxReplyBytes is MESSAGE_TOO_LARGE', async () => {
  await assert.rejects(
    request('big', { maxReplyBytes: 1024 }),
    hasCode('MESSAGE_TOO_LARGE', (err) =>
      assert.equal((err as { peerAction?: string }).peerAction, 'reject'),
    ),
  )
  const reply = (await request('big', { maxReplyBytes: 8192 })) as Record<string, unknown>
  assert.equal(reply.ok, true)
})

test('a server that refuses before reading the body is heard at once, not at the timeout', async () => {
  const t0 = performance.now()
  await assert.rejects(
    request('refuse', { body: new Uint8Array(8 * 1024 * 1024), timeoutMs: 20_000 }, 8 * 1024 * 1024),
    hasCode('PROTOCOL_ERROR', (err) => assert.equal(err.details.remoteCode, 'QUOTA_EXCEEDED')),
  )
  assert.ok(performance.now() - t0 < 10_000, 'refusal waited for the timeout')
})

test('a server that never answers times out after timeoutMs with TIMEOUT naming the request', async () => {
  const t0 = performance.now()
  await assert.rejects(
    request('silent', { timeoutMs: 300 }),
    hasCode('TIMEOUT', (err) => assert.match(err.message, /test request timed out after 300 ms/)),
  )
  assert.ok(performance.now() - t0 < 5_000)
})

test('the caller signal cancels the request with its reason', async () => {
  const controller = new AbortController()
  // Abort once the server holds the request, so the request is cancelled in flight.
  onSilent = () => controller.abort(new Error('caller gave up'))
  const pending = request('silent', { signal: controller.signal })
  await assert.rejects(pending, /caller gave up/)
  onSilent = () => {}
})

test('a peer that does not speak the protocol is PEER_UNREACHABLE', async () => {
  const frame = dagCbor.encode({ mode: 'echo' })
  await assert.rejects(
    requestResponse(a, b.peerId, '/nodus/test-unknown/1.0.0', frame, options(), (reply) => reply),
    hasCode('PEER_UNREACHABLE', (err) => assert.equal(err.details.peer, b.peerId.toString())),
  )
  const c = await startHost()
  const gone = c.peerId
  const addrs = c.getMultiaddrs()
  await c.stop()
  await a.peerStore.merge(gone, { multiaddrs: addrs }).catch(() => {})
  await assert.rejects(
    requestResponse(a, gone, PROTO, frame, options({ timeoutMs: 5_000 }), (reply) => reply),
    hasCode('PEER_UNREACHABLE'),
  )
})
