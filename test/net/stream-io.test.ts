import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { isNodusError } from '../../src/common/errors.ts'
import { encodeVarint, lengthPrefixed, type NodusLibp2p, StreamReader, sendAll } from '../../src/net/index.ts'
import { startHost } from '../utils/cluster.ts'

const PROTO = '/nodus/test-stream/1.0.0'
const TOTAL = 24 * 1024 * 1024
const payload = randomBytes(TOTAL)
let a: NodusLibp2p
let b: NodusLibp2p

before(async () => {
  ;[a, b] = await Promise.all([startHost(), startHost()])
  await b.handle(PROTO, (stream: Stream) => {
    void (async () => {
      await sendAll(stream, payload)
      await stream.close()
    })()
  })
  await a.dial(b.getMultiaddrs())
})
after(async () => {
  await Promise.all([a.stop(), b.stop()])
})

test('varints encode like multiformats unsigned-varint', () => {
  assert.deepEqual([...encodeVarint(0)], [0])
  assert.deepEqual([...encodeVarint(127)], [127])
  assert.deepEqual([...encodeVarint(128)], [0x80, 1])
  assert.deepEqual([...encodeVarint(300)], [0xac, 0x02])
  assert.deepEqual([...encodeVarint(2 ** 32)], [0x80, 0x80, 0x80, 0x80, 0x10])
  assert.throws(() => encodeVarint(-1))
})

test('a slow reader pauses the sender: memory stays bounded and every byte arrives in order', {
  timeout: 60_000,
}, async () => {
  const stream = await a.dialProtocol(b.peerId, PROTO)
  const high = 512 * 1024
  let pauses = 0
  const pause = stream.pause.bind(stream)
  stream.pause = () => {
    pauses++
    pause()
  }
  const reader = new StreamReader(stream, { highWaterBytes: high })
  const hash = createHash('sha256')
  let got = 0
  let peakQueued = 0
  let peakStreamBuffer = 0
  for await (const chunk of reader.readChunks(TOTAL, 64 * 1024)) {
    hash.update(chunk)
    got += chunk.byteLength
    peakQueued = Math.max(peakQueued, reader.bufferedBytes)
    peakStreamBuffer = Math.max(peakStreamBuffer, stream.readBufferLength)
    // A slow consumer: give the event loop several turns per 64 KiB.
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r))
  }
  assert.equal(got, TOTAL)
  assert.ok(pauses > 0, 'the reader never paused the stream')
  assert.equal(hash.digest('hex'), createHash('sha256').update(payload).digest('hex'))
  // Queued bytes stay within the high-water mark plus one yamux window (2 MiB) in flight.
  assert.ok(peakQueued <= high + 2 * 1024 * 1024 + 256 * 1024, `queued peaked at ${peakQueued}`)
  assert.ok(peakStreamBuffer <= 4 * 1024 * 1024, `stream buffer peaked at ${peakStreamBuffer}`)
})

test('frames over the limit are MESSAGE_TOO_LARGE; a short stream is STREAM_CLOSED', async () => {
  await b.handle('/nodus/test-frames/1.0.0', (stream: Stream) => {
    stream.send(lengthPrefixed(new Uint8Array(2000)))
    stream.send(encodeVarint(50))
    stream.send(new Uint8Array(10))
    void stream.close()
  })
  const stream = await a.dialProtocol(b.peerId, '/nodus/test-frames/1.0.0')
  const reader = new StreamReader(stream)
  await assert.rejects(reader.readFrame(1000), (err) => isNodusError(err, 'MESSAGE_TOO_LARGE'))
  await reader.readExactly(2000)
  await assert.rejects(reader.readFrame(1000), (err) => isNodusError(err, 'STREAM_CLOSED'))
})
