/**
 * The client side of bench/wan.bench.ts, run inside a network namespace (`ip netns exec NS node
 * bench/wan-client.ts …`): a node's API listens on its namespace's own 127.0.0.1, so the put, the get
 * and the DHT lookups are made from in there and timed here, without this process's start-up.
 *
 *   put DATA_DIR FILE PEERS    put FILE through the node of DATA_DIR, once it has PEERS connections
 *                              (waits up to 30 s, untimed)
 *   get DATA_DIR CID OUT       get CID through that node into OUT
 *   manifest DATA_DIR CID      GET /files/CID/manifest through that node (the manifest look-up alone)
 *   dht LISTEN_IP COUNT BOOTSTRAP...   a libp2p host of nodus's own kind (src/net createHost: TCP, the
 *                              nodus Kademlia protocol) joins through BOOTSTRAP and times COUNT lookups
 *                              of the peers closest to random keys (kad-dht getClosestPeers, drained)
 *
 * Prints JSON lines on stdout: `{"event":"progress","bytes":N,"seconds":S}` about every second during a
 * put or get, then one `{"event":"put"|"got"|"dht",…}`; on failure `{"event":"error","message":…}` and
 * exit code 1. Not a *.bench.ts: the harness does not run it.
 */
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { apiFromDataDir, getFile, getJson, putFile } from '../src/cli/client.ts'
import { createHost, DEFAULT_HOST_OPTIONS } from '../src/net/index.ts'

const out = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`)
}

/** When the first byte of a transfer moved, ms (performance.now), or undefined before. */
let firstByteAt: number | undefined

/** Reports bytes so far at most once a second; notes when the first byte moved. */
function progress(t0: number): (bytes: number) => void {
  let shown = t0
  return (bytes) => {
    const now = performance.now()
    if (bytes > 0) firstByteAt ??= now
    if (now - shown < 1000) return
    shown = now
    out({ event: 'progress', bytes, seconds: (now - t0) / 1000 })
  }
}

async function put(dataDir: string, file: string, minPeers: number): Promise<void> {
  const api = await apiFromDataDir(dataDir)
  const deadline = Date.now() + 30_000
  for (;;) {
    const { peers } = await getJson<{ peers: { peerId: string }[] }>(api, '/network/peers')
    if (new Set(peers.map((p) => p.peerId)).size >= minPeers || Date.now() > deadline) break
    await new Promise((r) => setTimeout(r, 250))
  }
  const t0 = performance.now()
  const r = await putFile(api, file, { onBytes: progress(t0) })
  out({
    event: 'put',
    cid: r.cid,
    bytes: r.bytes,
    seconds: (performance.now() - t0) / 1000,
    holders: r.holders.length,
    segments: r.segments,
  })
}

async function get(dataDir: string, cid: string, file: string): Promise<void> {
  const api = await apiFromDataDir(dataDir)
  const { peers } = await getJson<{ peers: { peerId: string }[] }>(api, '/network/peers')
  const t0 = performance.now()
  const r = await getFile(api, cid, file, { onBytes: progress(t0) })
  const seconds = (performance.now() - t0) / 1000
  out({
    event: 'got',
    bytes: r.bytes,
    seconds,
    firstByteSeconds: firstByteAt === undefined ? null : (firstByteAt - t0) / 1000,
    /** Peers the node was connected to when the get began. */
    connectedPeers: new Set(peers.map((p) => p.peerId)).size,
  })
}

async function manifest(dataDir: string, cid: string): Promise<void> {
  const api = await apiFromDataDir(dataDir)
  const t0 = performance.now()
  await getJson(api, `/files/${encodeURIComponent(cid)}/manifest`)
  out({ event: 'manifest', seconds: (performance.now() - t0) / 1000 })
}

/** Each lookup is cut off after this, ms (and counted as such). */
const LOOKUP_TIMEOUT_MS = 30_000

async function dht(listenIp: string, count: number, bootstrap: string[]): Promise<void> {
  const host = await createHost(await generateKeyPair('Ed25519'), {
    ...DEFAULT_HOST_OPTIONS,
    listen: [`/ip4/${listenIp}/tcp/0`],
  })
  await host.start()
  try {
    for (const b of bootstrap) await host.dial(multiaddr(b), { signal: AbortSignal.timeout(10_000) })
    // Fill the routing table the way a joining node does: a lookup of its own id.
    for await (const _ of host.services.dht.getClosestPeers(host.peerId.toMultihash().bytes, {
      signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS),
    })) {
      // drained
    }
    const ms: number[] = []
    let timedOut = 0
    let peersFound = 0
    for (let i = 0; i < count; i++) {
      const key = randomBytes(32)
      const t0 = performance.now()
      let found = 0
      try {
        for await (const ev of host.services.dht.getClosestPeers(key, {
          signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS),
        }))
          if (ev.name === 'FINAL_PEER') found++
      } catch {
        timedOut++
      }
      ms.push(performance.now() - t0)
      peersFound += found
    }
    out({
      event: 'dht',
      ms,
      timedOut,
      meanPeersFound: peersFound / count,
      connections: host.getConnections().length,
    })
  } finally {
    await host.stop()
  }
}

const [cmd, ...args] = process.argv.slice(2)
try {
  if (cmd === 'put' && args.length === 3) await put(args[0] as string, args[1] as string, Number(args[2]))
  else if (cmd === 'get' && args.length === 3)
    await get(args[0] as string, args[1] as string, args[2] as string)
  else if (cmd === 'manifest' && args.length === 2) await manifest(args[0] as string, args[1] as string)
  else if (cmd === 'dht' && args.length >= 3) await dht(args[0] as string, Number(args[1]), args.slice(2))
  else
    throw new Error(
      'usage: wan-client.ts put DATA_DIR FILE PEERS | get DATA_DIR CID OUT | manifest DATA_DIR CID | dht IP COUNT BOOT...',
    )
  process.exit(0)
} catch (err) {
  out({ event: 'error', message: err instanceof Error ? err.message : String(err) })
  process.exit(1)
}
