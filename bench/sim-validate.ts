/**
 * Validate the DHT simulator against the real network: a devnet of real libp2p kad-dht nodes
 * (src/net/host.ts `createHost`: TCP, Noise, Yamux, kad-dht in server mode, k = 20, alpha = 3) split
 * across worker processes on loopback, running `getClosestPeers` lookups. kad-dht does not report hop
 * counts, so they are rebuilt from its query events (NOTES-libp2p.md, trap 7) by the simulator's own
 * rule: a peer from the initiator's routing table is at hop 1; a peer first named, closer to the key
 * than the peer naming it, in the PEER_RESPONSE of a peer at hop h is at hop h + 1. A lookup's hops
 * are the hop of the closest FINAL_PEER.
 *
 * Compared side by side:
 *   real      the real kad-dht lookups;
 *   replay    the simulator's lookup engine on the real routing tables, same initiators and keys;
 *   sim       the simulator at the same size with synthetic tables (models `kademlia` and `trie`).
 *
 * Usage: node bench/sim-validate.ts [--nodes 100] [--workers 2] [--lookups 300] [--seed 1] [--k 20]
 *        [--prefix-length 6] [--json]
 * A small k and prefix length (e.g. `--k 4 --prefix-length 2`) make lookups take several hops at
 * 100 nodes, so the check covers multi-hop routing and nodus's own-ID splitting (src/net/kad-table.ts).
 * Bounded: at most 200 nodes, 2,000 lookups, and a deadline (`--deadline-s`, default 600 s) after
 * which every worker is killed. Loopback only. Workers exit when this process goes away.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createHost, DEFAULT_HOST_OPTIONS, type NodusLibp2p } from '../src/net/host.ts'
import {
  buildLatencyModel,
  DEFAULT_DHT_SIM_OPTIONS,
  histogram,
  idSpaceFromSorted,
  LookupEngine,
  mean,
  percentile,
  Rng,
  runDhtSim,
  tablesFromLists,
} from '../src/sim/index.ts'

const SELF = fileURLToPath(import.meta.url)
/** Bucket size k and trie depth of the real nodes and the simulator (`--k`, `--prefix-length`). */
let K = 20
let PREFIX_LENGTH = 6
const ALPHA = 3

// ---------- shared helpers ----------

/** kad-dht's key for a peer: SHA-256 of the PeerId multihash bytes. */
function kadIdOfPeer(peer: PeerId): Uint8Array {
  return createHash('sha256').update(peer.toMultihash().bytes).digest()
}

function kadIdOfKey(key: Uint8Array): Uint8Array {
  return createHash('sha256').update(key).digest()
}

/** -1, 0, 1: XOR distance of a to target compared with b's. */
function xorCompare(target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const x = ((a[i] as number) ^ (target[i] as number)) - ((b[i] as number) ^ (target[i] as number))
    if (x !== 0) return x < 0 ? -1 : 1
  }
  return 0
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex')
}

interface NodeInfo {
  peerId: string
  addrs: string[]
}

interface LookupTask {
  node: number
  keyHex: string
}

interface LookupOutcome {
  from: string
  keyHex: string
  hops: number
  deepest: number
  queries: number
  final: string[]
  ms: number
  /** Responders that were neither starting peers nor named by an earlier response. */
  anomalies: number
}

type ToWorker =
  | { type: 'start'; count: number; k: number; prefixLength: number }
  | { type: 'connect'; peers: NodeInfo[]; bootstrap: number; seed: number }
  | { type: 'warm'; rounds: number }
  | { type: 'tables' }
  | { type: 'lookups'; tasks: LookupTask[] }
  | { type: 'stop' }

type FromWorker =
  | { type: 'started'; nodes: NodeInfo[] }
  | { type: 'connected' }
  | { type: 'warmed'; sizes: number[] }
  | { type: 'tables'; tables: { peerId: string; contacts: string[] }[] }
  | { type: 'lookups'; results: LookupOutcome[] }
  | { type: 'stopped' }
  | { type: 'error'; message: string }

// ---------- worker: hosts real kad-dht nodes ----------

/** The parts of kad-dht's (untyped) routing table this script reads. */
interface RoutingTableView {
  size: number
  closestPeers(kadId: Uint8Array, options: { count: number }): PeerId[]
  kb?: { toIterable(): Iterable<{ peerId: PeerId }> }
}

function routingTableOf(node: NodusLibp2p): RoutingTableView {
  const rt = (node.services.dht as unknown as { routingTable?: RoutingTableView }).routingTable
  if (rt === undefined || typeof rt.closestPeers !== 'function')
    throw new Error('kad-dht routing table not found')
  return rt
}

async function drain<T>(it: AsyncIterable<T>): Promise<void> {
  for await (const _ of it) {
    // consume
  }
}

async function runLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0
  const run = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T
      await fn(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run))
}

async function lookupOnce(node: NodusLibp2p, key: Uint8Array): Promise<LookupOutcome> {
  const self = node.peerId.toString()
  const target = kadIdOfKey(key)
  const start = new Set(
    routingTableOf(node)
      .closestPeers(target, { count: K })
      .map((p) => p.toString()),
  )
  const hop = new Map<string, number>()
  const kad = new Map<string, Uint8Array>()
  const kadOf = (p: PeerId): Uint8Array => {
    const s = p.toString()
    let v = kad.get(s)
    if (v === undefined) {
      v = kadIdOfPeer(p)
      kad.set(s, v)
    }
    return v
  }
  const final: PeerId[] = []
  let queries = 0
  let anomalies = 0
  const t0 = performance.now()
  for await (const ev of node.services.dht.getClosestPeers(key, { signal: AbortSignal.timeout(60_000) })) {
    if (ev.name === 'SEND_QUERY') queries++
    else if (ev.name === 'PEER_RESPONSE') {
      const from = ev.from.toString()
      let h = hop.get(from)
      if (h === undefined) {
        h = 1
        if (!start.has(from)) anomalies++
        hop.set(from, h)
      }
      const fromKad = kadOf(ev.from)
      for (const c of ev.closer) {
        const s = c.id.toString()
        if (s === self || hop.has(s) || start.has(s)) continue
        if (xorCompare(target, kadOf(c.id), fromKad) >= 0) continue
        hop.set(s, h + 1)
      }
    } else if (ev.name === 'FINAL_PEER') final.push(ev.peer.id)
  }
  const ms = performance.now() - t0
  for (const s of start) if (!hop.has(s)) hop.set(s, 1)
  final.sort((a, b) => xorCompare(target, kadOf(a), kadOf(b)))
  const hops = final.map((p) => hop.get(p.toString()) ?? 0)
  return {
    from: self,
    keyHex: hex(key),
    hops: hops[0] ?? 0,
    deepest: hops.length > 0 ? Math.max(...hops) : 0,
    queries,
    final: final.map((p) => p.toString()),
    ms,
    anomalies,
  }
}

async function worker(): Promise<void> {
  const nodes: NodusLibp2p[] = []
  const send = (m: FromWorker): void => {
    process.send?.(m)
  }
  const stopAll = async (): Promise<void> => {
    await Promise.allSettled(nodes.map((n) => n.stop()))
  }
  process.on('disconnect', () => {
    void stopAll().finally(() => process.exit(0))
  })
  process.on('message', (raw: unknown) => {
    const msg = raw as ToWorker
    const handle = async (): Promise<void> => {
      switch (msg.type) {
        case 'start': {
          K = msg.k
          PREFIX_LENGTH = msg.prefixLength
          for (let i = 0; i < msg.count; i++) {
            const key = await generateKeyPair('Ed25519')
            const node = await createHost(key, {
              ...DEFAULT_HOST_OPTIONS,
              listen: ['/ip4/127.0.0.1/tcp/0'],
              dhtKBucketSize: K,
              dhtPrefixLength: PREFIX_LENGTH,
            })
            await node.start()
            nodes.push(node)
          }
          send({
            type: 'started',
            nodes: nodes.map((n) => ({
              peerId: n.peerId.toString(),
              addrs: n.getMultiaddrs().map((a) => a.toString()),
            })),
          })
          return
        }
        case 'connect': {
          const rng = new Rng(msg.seed, 9)
          await runLimited(nodes, 4, async (node) => {
            const self = node.peerId.toString()
            const others = msg.peers.filter((p) => p.peerId !== self)
            for (let j = 0; j < msg.bootstrap && others.length > 0; j++) {
              const p = others.splice(rng.nextInt(others.length), 1)[0] as NodeInfo
              const addr = p.addrs[0]
              if (addr === undefined) continue
              try {
                await node.dial(multiaddr(addr.includes('/p2p/') ? addr : `${addr}/p2p/${p.peerId}`), {
                  signal: AbortSignal.timeout(20_000),
                })
              } catch {
                // a failed bootstrap dial is tolerated; others remain
              }
            }
          })
          send({ type: 'connected' })
          return
        }
        case 'warm': {
          for (let r = 0; r < msg.rounds; r++) {
            await runLimited(nodes, 3, async (node) => {
              const key =
                r === 0
                  ? node.peerId.toMultihash().bytes
                  : globalThis.crypto.getRandomValues(new Uint8Array(32))
              try {
                await drain(node.services.dht.getClosestPeers(key, { signal: AbortSignal.timeout(60_000) }))
              } catch {
                // tolerated during warm-up
              }
            })
          }
          send({ type: 'warmed', sizes: nodes.map((n) => routingTableOf(n).size) })
          return
        }
        case 'tables': {
          send({
            type: 'tables',
            tables: nodes.map((n) => {
              const kb = routingTableOf(n).kb
              const contacts = kb === undefined ? [] : [...kb.toIterable()].map((e) => e.peerId.toString())
              return { peerId: n.peerId.toString(), contacts }
            }),
          })
          return
        }
        case 'lookups': {
          const results: LookupOutcome[] = []
          for (const t of msg.tasks) {
            const node = nodes[t.node]
            if (node === undefined) continue
            try {
              results.push(await lookupOnce(node, Buffer.from(t.keyHex, 'hex')))
            } catch {
              // a failed lookup is left out (counted by the parent)
            }
          }
          send({ type: 'lookups', results })
          return
        }
        case 'stop': {
          await stopAll()
          send({ type: 'stopped' })
          process.exit(0)
        }
      }
    }
    handle().catch((err: unknown) => send({ type: 'error', message: String(err) }))
  })
}

// ---------- parent ----------

class WorkerHandle {
  readonly proc: ChildProcess
  #waiters: ((m: FromWorker) => void)[] = []

  constructor(index: number) {
    this.proc = fork(SELF, ['--worker', String(index)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.proc.on('message', (m: unknown) => {
      const w = this.#waiters.shift()
      w?.(m as FromWorker)
    })
  }

  async request(msg: ToWorker): Promise<FromWorker> {
    const reply = new Promise<FromWorker>((resolve) => this.#waiters.push(resolve))
    this.proc.send(msg)
    const m = await reply
    if (m.type === 'error') throw new Error(`worker: ${m.message}`)
    return m
  }
}

interface Dist {
  p50: number
  p99: number
  max: number
  mean: number
  histogram: number[]
}

function dist(values: number[]): Dist {
  return {
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    max: percentile(values, 100),
    mean: Math.round(mean(values) * 1000) / 1000,
    histogram: histogram(values),
  }
}

function top64(b: Uint8Array): [number, number] {
  const v = Buffer.from(b)
  return [v.readUInt32BE(0), v.readUInt32BE(4)]
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string' },
      workers: { type: 'string' },
      lookups: { type: 'string' },
      seed: { type: 'string' },
      bootstrap: { type: 'string' },
      'warm-rounds': { type: 'string' },
      'deadline-s': { type: 'string' },
      k: { type: 'string' },
      'prefix-length': { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
  })
  const int = (v: string | undefined, def: number, min: number, max: number, name: string): number => {
    const x = v === undefined ? def : Number(v)
    if (!Number.isSafeInteger(x) || x < min || x > max)
      throw new RangeError(`--${name} must be in [${min}, ${max}]`)
    return x
  }
  const N = int(values.nodes, 100, 2, 200, 'nodes')
  const W = int(values.workers, 2, 1, 8, 'workers')
  const L = int(values.lookups, 300, 1, 2000, 'lookups')
  const seed = int(values.seed, 1, 0, 2 ** 31, 'seed')
  const bootstrap = int(values.bootstrap, 3, 1, 20, 'bootstrap')
  const warmRounds = int(values['warm-rounds'], 3, 0, 20, 'warm-rounds')
  const deadlineS = int(values['deadline-s'], 600, 10, 3600, 'deadline-s')
  K = int(values.k, 20, 2, 64, 'k')
  PREFIX_LENGTH = int(values['prefix-length'], 6, 1, 16, 'prefix-length')
  const log = (s: string): void => {
    process.stderr.write(`${s}\n`)
  }
  const t0 = performance.now()
  const workers = Array.from({ length: W }, (_, i) => new WorkerHandle(i))
  const killAll = (): void => {
    for (const w of workers) if (w.proc.exitCode === null) w.proc.kill('SIGKILL')
  }
  const deadline = setTimeout(() => {
    log(`deadline of ${deadlineS} s reached: killing workers`)
    killAll()
    process.exit(1)
  }, deadlineS * 1000)
  deadline.unref()
  process.on('exit', killAll)
  try {
    const per = workers.map((_, i) => Math.floor(N / W) + (i < N % W ? 1 : 0))
    const started = await Promise.all(
      workers.map((w, i) =>
        w.request({ type: 'start', count: per[i] as number, k: K, prefixLength: PREFIX_LENGTH }),
      ),
    )
    const nodesOf: NodeInfo[][] = started.map((m) => (m.type === 'started' ? m.nodes : []))
    const all = nodesOf.flat()
    log(`${all.length} nodes started in ${W} workers (${((performance.now() - t0) / 1000).toFixed(1)} s)`)
    await Promise.all(workers.map((w) => w.request({ type: 'connect', peers: all, bootstrap, seed })))
    log('bootstrap dials done')
    let sizes: number[] = []
    for (let r = 0; r < warmRounds; r++) {
      const warmed = await Promise.all(workers.map((w) => w.request({ type: 'warm', rounds: 1 })))
      sizes = warmed.flatMap((m) => (m.type === 'warmed' ? m.sizes : []))
      log(`warm round ${r + 1}: routing table size p50 ${percentile(sizes, 50)}, min ${percentile(sizes, 0)}`)
    }
    const tablesMsg = await Promise.all(workers.map((w) => w.request({ type: 'tables' })))
    const tables = tablesMsg.flatMap((m) => (m.type === 'tables' ? m.tables : []))

    // lookups: random initiators and keys, spread over workers
    const rng = new Rng(seed, 3)
    const tasks: LookupTask[][] = workers.map(() => [])
    for (let i = 0; i < L; i++) {
      const w = rng.nextInt(W)
      const key = new Uint8Array(32)
      for (let b = 0; b < 32; b += 4) new DataView(key.buffer).setUint32(b, rng.nextU32())
      tasks[w]?.push({ node: rng.nextInt(per[w] as number), keyHex: hex(key) })
    }
    const t1 = performance.now()
    const results = (
      await Promise.all(workers.map((w, i) => w.request({ type: 'lookups', tasks: tasks[i] ?? [] })))
    ).flatMap((m) => (m.type === 'lookups' ? m.results : []))
    log(`${results.length}/${L} real lookups in ${((performance.now() - t1) / 1000).toFixed(1)} s`)
    const tablesAfterMsg = await Promise.all(workers.map((w) => w.request({ type: 'tables' })))
    const tablesAfter = tablesAfterMsg.flatMap((m) => (m.type === 'tables' ? m.tables : []))
    await Promise.all(workers.map((w) => w.request({ type: 'stop' })))

    // replay on the real tables with the simulator's lookup engine
    const entries = all
      .map((n) => ({ peerId: n.peerId, kad: top64(kadIdOfPeer(peerIdFromString(n.peerId))) }))
      .sort((a, b) => a.kad[0] - b.kad[0] || a.kad[1] - b.kad[1])
    const rank = new Map(entries.map((e, i) => [e.peerId, i]))
    const ids = idSpaceFromSorted(
      Uint32Array.from(entries, (e) => e.kad[0]),
      Uint32Array.from(entries, (e) => e.kad[1]),
    )
    const replay = (snapshot: { peerId: string; contacts: string[] }[]) => {
      const lists: number[][] = entries.map(() => [])
      for (const t of snapshot) {
        const x = rank.get(t.peerId)
        if (x === undefined) continue
        lists[x] = t.contacts.map((c) => rank.get(c)).filter((r): r is number => r !== undefined)
      }
      const engine = new LookupEngine(
        {
          ids,
          tables: tablesFromLists(lists, K),
          alive: new Uint8Array(ids.n).fill(1),
          latency: buildLatencyModel(ids.n, new Rng(seed, 4)),
        },
        { alpha: ALPHA, k: K, strategy: 'kad-dht', timeoutMs: 1000, rttsPerRpc: 1 },
      )
      const hops: number[] = []
      const deepest: number[] = []
      const rpcs: number[] = []
      let sameFinal = 0
      for (const r of results) {
        const src = rank.get(r.from)
        if (src === undefined) continue
        const [kh, kl] = top64(kadIdOfKey(Buffer.from(r.keyHex, 'hex')))
        const s = engine.lookup(src, kh, kl)
        hops.push(s.hops)
        deepest.push(s.deepestHop)
        rpcs.push(s.rpcs)
        const realFinal = new Set(r.final.map((p) => rank.get(p)))
        if (s.found.length === r.final.length && s.found.every((f) => realFinal.has(f))) sameFinal++
      }
      return {
        hops: dist(hops),
        deepest: dist(deepest),
        rpcs: dist(rpcs),
        sameFinalFraction: Math.round((sameFinal / Math.max(1, results.length)) * 1000) / 1000,
        tableSize: percentile(
          snapshot.map((t) => t.contacts.length),
          50,
        ),
      }
    }
    const replayBefore = replay(tables)
    const replayAfter = replay(tablesAfter)

    // the simulator at the same size with synthetic tables
    const synth = (table: 'kademlia' | 'trie' | 'nodus') =>
      runDhtSim({
        ...DEFAULT_DHT_SIM_OPTIONS,
        nodes: all.length,
        lookups: 2000,
        seed,
        k: K,
        alpha: ALPHA,
        table,
        prefixLength: PREFIX_LENGTH,
      })
    const simK = synth('kademlia')
    const simT = synth('trie')
    const simN = synth('nodus')
    const tableSizes = tables.map((t) => t.contacts.length)
    const report = {
      nodes: all.length,
      workers: W,
      lookups: results.length,
      k: K,
      prefixLength: PREFIX_LENGTH,
      alpha: ALPHA,
      seed,
      realTableSize: {
        p50: percentile(tableSizes, 50),
        min: percentile(tableSizes, 0),
        max: percentile(tableSizes, 100),
      },
      real: {
        hops: dist(results.map((r) => r.hops)),
        deepest: dist(results.map((r) => r.deepest)),
        queries: dist(results.map((r) => r.queries)),
        p50Ms: Math.round(
          percentile(
            results.map((r) => r.ms),
            50,
          ),
        ),
        p99Ms: Math.round(
          percentile(
            results.map((r) => r.ms),
            99,
          ),
        ),
        anomalies: results.reduce((s, r) => s + r.anomalies, 0),
      },
      replayBefore,
      replayAfter,
      simKademlia: {
        p50Hops: simK.p50Hops,
        p99Hops: simK.p99Hops,
        maxHops: simK.maxHops,
        meanHops: simK.meanHops,
        hopHistogram: simK.hopHistogram,
        p50Rpcs: simK.p50Rpcs,
        meanTableEntries: simK.meanTableEntries,
      },
      simTrie: {
        p50Hops: simT.p50Hops,
        p99Hops: simT.p99Hops,
        maxHops: simT.maxHops,
        meanHops: simT.meanHops,
        hopHistogram: simT.hopHistogram,
        p50Rpcs: simT.p50Rpcs,
        meanTableEntries: simT.meanTableEntries,
      },
      simNodus: {
        p50Hops: simN.p50Hops,
        p99Hops: simN.p99Hops,
        maxHops: simN.maxHops,
        meanHops: simN.meanHops,
        hopHistogram: simN.hopHistogram,
        p50Rpcs: simN.p50Rpcs,
        meanTableEntries: simN.meanTableEntries,
        exactKRate: simN.exactKRate,
      },
      seconds: Math.round((performance.now() - t0) / 100) / 10,
    }
    const share = (h: number[], i: number): string => {
      const total = h.reduce((a, b) => a + b, 0)
      return total === 0 ? '-' : `${(((h[i] ?? 0) / total) * 100).toFixed(1)}%`
    }
    const cols: [string, number[]][] = [
      ['real kad-dht', report.real.hops.histogram],
      ['sim engine, real tables before', replayBefore.hops.histogram],
      ['sim engine, real tables after', replayAfter.hops.histogram],
      ['sim, kademlia tables', simK.hopHistogram],
      ['sim, trie tables (kad-dht 16)', simT.hopHistogram],
      ['sim, nodus tables', simN.hopHistogram],
    ]
    const maxH = Math.max(...cols.map(([, h]) => h.length))
    const row = (label: string, cells: (string | number)[]): void =>
      console.log(`| ${label} | ${cells.join(' | ')} |`)
    console.log(
      `sim-validate: ${report.nodes} real kad-dht nodes in ${W} processes, k=${K}, prefixLength=${PREFIX_LENGTH}, alpha=${ALPHA}, seed ${seed}`,
    )
    console.log(
      `real routing tables: p50 ${report.realTableSize.p50} contacts (min ${report.realTableSize.min}, ` +
        `max ${report.realTableSize.max}) before the lookups, p50 ${replayAfter.tableSize} after`,
    )
    console.log('')
    row(
      'hops',
      cols.map(([name]) => name),
    )
    row(
      '---',
      cols.map(() => '--:'),
    )
    for (let h = 1; h < maxH; h++)
      row(
        String(h),
        cols.map(([, hist]) => share(hist, h)),
      )
    const p = (d: { p50: number; p99: number; max: number }): string => `${d.p50} / ${d.p99} / ${d.max}`
    row('p50 / p99 / max', [
      p(report.real.hops),
      p(replayBefore.hops),
      p(replayAfter.hops),
      `${simK.p50Hops} / ${simK.p99Hops} / ${simK.maxHops}`,
      `${simT.p50Hops} / ${simT.p99Hops} / ${simT.maxHops}`,
      `${simN.p50Hops} / ${simN.p99Hops} / ${simN.maxHops}`,
    ])
    row('mean', [
      report.real.hops.mean,
      replayBefore.hops.mean,
      replayAfter.hops.mean,
      simK.meanHops,
      simT.meanHops,
      simN.meanHops,
    ])
    row('requests per lookup, p50', [
      report.real.queries.p50,
      replayBefore.rpcs.p50,
      replayAfter.rpcs.p50,
      simK.p50Rpcs,
      simT.p50Rpcs,
      simN.p50Rpcs,
    ])
    row('table entries per node', [
      report.realTableSize.p50,
      report.realTableSize.p50,
      replayAfter.tableSize,
      simK.meanTableEntries,
      simT.meanTableEntries,
      simN.meanTableEntries,
    ])
    console.log('')
    console.log(
      `the sim engine returned the same k peers as the real lookup in ${(replayBefore.sameFinalFraction * 100).toFixed(1)}% ` +
        `(tables before) / ${(replayAfter.sameFinalFraction * 100).toFixed(1)}% (after) of lookups; real lookup wall time ` +
        `p50 ${report.real.p50Ms} ms, p99 ${report.real.p99Ms} ms (loopback, 2 cores); hop anomalies ${report.real.anomalies}; ${report.seconds} s`,
    )
    if (values.json === true) console.log(JSON.stringify(report))
  } finally {
    clearTimeout(deadline)
    killAll()
  }
}

if (process.argv.includes('--worker')) {
  void worker()
} else {
  main().catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}
