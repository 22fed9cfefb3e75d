/**
 * Data plane (issue 4, item 4): shard transfer between two node processes on loopback, over one
 * connection with many concurrent streams.
 *
 * A server process holds 16 shards of 1 MiB in memory and serves `/nodus/shard/1.0.0` (the node's
 * ShardServer) on a libp2p host built by src/net/host.ts `createHost` (TCP, Yamux, and Noise or
 * TLS 1.3). This process dials it once and fetches the shards with `get`, 15 requests in flight (a
 * holder accepts 16 inbound shard streams per connection), until 512 MiB (quick: 128 MiB) arrived;
 * and once more with one request at a time. Every shard is checked against its CID on arrival, as in
 * the node.
 *
 * Peer in the same run: the same bytes streamed over one TLS 1.3 connection of node:tls (OpenSSL,
 * AES-256-GCM) between the same two processes, no framing: the ceiling of an authenticated,
 * encrypted byte channel on this machine with Node's own sockets. CPU: user + system of both
 * processes, from /proc, per GB moved.
 *
 *   node bench/dataplane.bench.ts [--quick]
 * Also: the same gets over the bulk channel (src/net/bulk.ts): TLS 1.3 sockets between the two
 * processes, keyed over their libp2p connection, with no muxer.
 *
 *   NODE_OPTIONS=--cpu-prof node bench/dataplane.bench.ts --one tls|noise|bulk [IN_FLIGHT]   (one transfer, to profile)
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect, createServer } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { NodusError } from '../src/common/errors.ts'
import { BulkChannel, type BulkHandler, DEFAULT_BULK_OPTIONS } from '../src/net/bulk.ts'
import { createHost, DEFAULT_HOST_OPTIONS, type NodusLibp2p } from '../src/net/host.ts'
import { cidForBytes, parseCid } from '../src/storage/codec/cid.ts'
import { ShardClient } from '../src/storage/protocol/shard-client.ts'
import { SHARD_PROTOCOL } from '../src/storage/protocol/shard-messages.ts'
import { DEFAULT_SHARD_SERVER_OPTIONS, ShardServer } from '../src/storage/protocol/shard-server.ts'
import { MemoryStore } from '../test/utils/memory-store.ts'
import {
  type BenchOptions,
  cpuMs,
  cpuSecPerGB,
  fillPseudoRandom,
  MiB,
  procCpuSeconds,
  type Row,
  ratioOf,
  sig,
  withTempDir,
} from './lib.ts'

export const description =
  'Shard transfer between two processes on loopback over one libp2p connection (TCP + Yamux + Noise or TLS 1.3), 15 `get` requests in flight, against one node:tls TLS 1.3 connection streaming the same bytes. MB/s = 10^6 bytes of shard data per second; CPU of both processes per GB.'

const SELF = fileURLToPath(import.meta.url)
const SHARDS = 16
const SHARD_BYTES = MiB

function shardBytes(i: number): Uint8Array {
  const b = new Uint8Array(SHARD_BYTES)
  fillPseudoRandom(b, 7000 + i)
  return b
}

/** Child: serve shards over libp2p with `encrypter`; print `{ peerId, addrs, cids }` once ready. */
async function serveLibp2p(encrypter: 'noise' | 'tls', withBulk: boolean): Promise<void> {
  const store = new MemoryStore()
  const cids: string[] = []
  for (let i = 0; i < SHARDS; i++) {
    const b = shardBytes(i)
    const cid = cidForBytes(b)
    await store.put(cid, b)
    cids.push(cid.toString())
  }
  const host = await createHost(await generateKeyPair('Ed25519'), { ...DEFAULT_HOST_OPTIONS, encrypter })
  const server = new ShardServer(
    {
      store,
      peerId: host.peerId.toString(),
      sign: async () => new Uint8Array(64),
      logger: { debug: () => {}, warn: () => {} },
      // This server only serves gets: it stores nothing for anyone.
      policy: {
        admitPut: () => {
          throw new NodusError('ORDER_INVALID', 'this benchmark server stores nothing')
        },
        commit: async () => [],
        pin: async () => [],
      },
    },
    DEFAULT_SHARD_SERVER_OPTIONS,
  )
  await host.start()
  await host.handle(SHARD_PROTOCOL, server.handler, server.handleOptions)
  if (withBulk) await bulkFor(host, server.bulkHandler).start()
  process.stdout.write(
    `${JSON.stringify({ peerId: host.peerId.toString(), addrs: host.getMultiaddrs().map(String), cids })}\n`,
  )
  process.on('disconnect', () => process.exit(0))
}

/** A bulk channel on `host` as the node wires it (src/node/node.ts). */
function bulkFor(host: NodusLibp2p, handler: BulkHandler): BulkChannel {
  return new BulkChannel(
    {
      handle: (protocol, h, o) => host.handle(protocol, h, o),
      dialProtocol: (peer, protocol, o) => host.dialProtocol(peer, protocol, o),
      remoteHost: () => '127.0.0.1',
      handler,
      logger: { debug: () => {} },
    },
    DEFAULT_BULK_OPTIONS,
  )
}

/** Child: a node:tls server that sends `total` bytes of shard data to the first client. */
async function serveTls(dir: string, total: number): Promise<void> {
  const key = readFileSync(join(dir, 'key.pem'))
  const cert = readFileSync(join(dir, 'cert.pem'))
  const chunks = Array.from({ length: SHARDS }, (_, i) => shardBytes(i))
  const server = createServer({ key, cert, minVersion: 'TLSv1.3' }, (socket) => {
    let sent = 0
    let i = 0
    const pump = (): void => {
      while (sent < total) {
        const c = chunks[i++ % SHARDS] as Uint8Array
        sent += c.byteLength
        if (!socket.write(c)) {
          socket.once('drain', pump)
          return
        }
      }
      socket.end()
    }
    pump()
  })
  server.listen(0, '127.0.0.1', () => {
    const a = server.address()
    process.stdout.write(`${JSON.stringify({ port: typeof a === 'object' && a !== null ? a.port : 0 })}\n`)
  })
  process.on('disconnect', () => process.exit(0))
}

async function startChild(args: string[]): Promise<{ proc: ChildProcess; info: Record<string, unknown> }> {
  const proc = spawn(process.execPath, [SELF, ...args], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let buf = ''
    const t = setTimeout(() => reject(new Error('server child did not start')), 60_000)
    proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString()
      const nl = buf.indexOf('\n')
      if (nl >= 0) {
        clearTimeout(t)
        resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>)
      }
    })
    proc.once('exit', (code) => reject(new Error(`server child exited with ${code}`)))
  })
  return { proc, info }
}

interface Transfer {
  MBps: number
  cpuSecPerGB: number
  clientCpuSecPerGB?: number
  serverCpuSecPerGB?: number
  bytes: number
  /** The connection encrypter libp2p negotiated (libp2p transfers). */
  negotiated?: string
}

async function libp2pTransfer(
  encrypter: 'noise' | 'tls',
  total: number,
  inFlight: number,
  withBulk = false,
): Promise<Transfer> {
  const { proc, info } = await startChild(['--serve-libp2p', encrypter, withBulk ? 'bulk' : 'libp2p'])
  const host = await createHost(await generateKeyPair('Ed25519'), { ...DEFAULT_HOST_OPTIONS, encrypter })
  let bulk: BulkChannel | undefined
  try {
    await host.start()
    await host.dial((info.addrs as string[]).map((a) => multiaddr(a)))
    if (withBulk) {
      bulk = bulkFor(host, async () => {
        throw new Error('the client serves nothing')
      })
      await bulk.start()
    }
    const client = new ShardClient(
      {
        dialProtocol: (p, proto, o) => host.dialProtocol(p, proto, o),
        ...(bulk === undefined ? {} : { bulk }),
      },
      { requestTimeoutMs: 60_000, maxShardBytes: 16 * MiB },
    )
    const peer = peerIdFromString(info.peerId as string)
    const negotiated = host.getConnections(peer)[0]?.encryption ?? '?'
    const cids = (info.cids as string[]).map((c) => parseCid(c))
    const requests = Math.ceil(total / SHARD_BYTES)
    // warm-up: rounds of every shard (the bulk channel keys its sockets in the background meanwhile)
    for (let round = 0; round < (bulk === undefined ? 1 : 4); round++) {
      await Promise.all(cids.map((c) => client.get(peer, c)))
      await bulk?.settled(peer)
    }
    const child0 = procCpuSeconds(proc.pid as number) ?? 0
    const self0 = cpuMs()
    const t0 = performance.now()
    let next = 0
    let bytes = 0
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < requests) {
          const c = cids[next++ % cids.length] as (typeof cids)[number]
          // (not `bytes += await …`: that reads `bytes` before the await and loses concurrent updates)
          const got = await client.get(peer, c)
          bytes += got.byteLength
        }
      }),
    )
    const ms = performance.now() - t0
    const clientCpu = cpuMs() - self0
    const serverCpu = ((procCpuSeconds(proc.pid as number) ?? 0) - child0) * 1000
    const cpu = clientCpu + serverCpu
    if (bulk !== undefined && bulk.sockets.outbound === 0) throw new Error('the bulk channel was not used')
    return {
      MBps: sig(bytes / 1e6 / (ms / 1000)),
      cpuSecPerGB: cpuSecPerGB(bytes, cpu),
      clientCpuSecPerGB: cpuSecPerGB(bytes, clientCpu),
      serverCpuSecPerGB: cpuSecPerGB(bytes, serverCpu),
      bytes,
      negotiated: bulk === undefined ? negotiated : `bulk channel: ${bulk.sockets.outbound} TLS 1.3 sockets`,
    }
  } finally {
    await bulk?.stop()
    await Promise.resolve(host.stop()).catch(() => {})
    proc.kill()
  }
}

async function tlsTransfer(dir: string, total: number): Promise<Transfer | string> {
  const gen = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
    ],
    { stdio: 'ignore' },
  )
  if (gen.status !== 0) return 'openssl (to make a test certificate) not available'
  const { proc, info } = await startChild(['--serve-tls', dir, String(total)])
  try {
    const child0 = procCpuSeconds(proc.pid as number) ?? 0
    const self0 = cpuMs()
    const t0 = performance.now()
    const bytes = await new Promise<number>((resolve, reject) => {
      let n = 0
      const s = connect({
        port: info.port as number,
        host: '127.0.0.1',
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
      })
      s.on('data', (d: Buffer) => {
        n += d.byteLength
      })
      s.once('end', () => resolve(n))
      s.once('error', reject)
    })
    const ms = performance.now() - t0
    const clientCpu = cpuMs() - self0
    const serverCpu = ((procCpuSeconds(proc.pid as number) ?? 0) - child0) * 1000
    const cpu = clientCpu + serverCpu
    return { MBps: sig(bytes / 1e6 / (ms / 1000)), cpuSecPerGB: cpuSecPerGB(bytes, cpu), bytes }
  } finally {
    proc.kill()
  }
}

export async function run(options: BenchOptions): Promise<Row[]> {
  return await withTempDir('dataplane', async (dir) => {
    const total = (options.quick ? 128 : 512) * MiB
    const peer = await tlsTransfer(dir, total)
    const peerName = 'node:tls TLS 1.3, one connection, raw bytes'
    const rows: Row[] = []
    const row = (name: string, t: Transfer, note: string): Row => ({
      name,
      ours_MBps: t.MBps,
      peer: typeof peer === 'string' ? `${peerName} (not run: ${peer})` : peerName,
      peer_MBps: typeof peer === 'string' ? null : peer.MBps,
      ratio: typeof peer === 'string' ? null : ratioOf(t.MBps, peer.MBps),
      ours_cpuSecPerGB: t.cpuSecPerGB,
      ...(typeof peer === 'string' ? {} : { peer_cpuSecPerGB: peer.cpuSecPerGB }),
      note: `${sig(t.bytes / MiB)} MiB of 1 MiB shards, each checked against its CID; ${note}${t.negotiated === undefined ? '' : ` (encrypter ${t.negotiated})`}`,
    })
    for (const encrypter of ['noise', 'tls'] as const) {
      const many = await libp2pTransfer(encrypter, total, 15)
      rows.push(
        row(
          `shard gets, TCP + ${encrypter === 'noise' ? 'Noise' : 'TLS 1.3'} + Yamux, 15 in flight`,
          many,
          'one libp2p connection',
        ),
      )
    }
    const viaBulk = await libp2pTransfer('noise', total, 15, true)
    rows.push(
      row(
        'shard gets, bulk channel (TLS 1.3 sockets keyed over libp2p), 15 in flight',
        viaBulk,
        'libp2p (Noise) only for the keys',
      ),
    )
    const one = await libp2pTransfer('noise', total / 4, 1)
    rows.push(
      row('shard gets, TCP + Noise + Yamux, 1 in flight', one, 'one request at a time (latency-bound)'),
    )
    return rows
  })
}

// Children exit cleanly on SIGTERM, so `NODE_OPTIONS=--cpu-prof` writes their profiles too.
if (process.argv[2]?.startsWith('--serve') === true) process.once('SIGTERM', () => process.exit(0))
if (process.argv[2] === '--serve-libp2p') {
  await serveLibp2p(process.argv[3] === 'tls' ? 'tls' : 'noise', process.argv[4] === 'bulk')
} else if (process.argv[2] === '--serve-tls') {
  await serveTls(process.argv[3] as string, Number(process.argv[4]))
} else if (process.argv[2] === '--one') {
  // One transfer alone, for profiling: --one tls|noise|bulk [inFlight]
  const mode = process.argv[3]
  const t = await libp2pTransfer(
    mode === 'noise' || mode === 'bulk' ? 'noise' : 'tls',
    512 * MiB,
    Number(process.argv[4] ?? 15),
    mode === 'bulk',
  )
  console.log(JSON.stringify(t))
} else if (import.meta.main) {
  for (const row of await run({ quick: process.argv.includes('--quick') })) console.log(JSON.stringify(row))
}
