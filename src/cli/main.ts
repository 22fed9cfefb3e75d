#!/usr/bin/env node
/**
 * The `nodus` command line. Run `node src/cli/main.ts help`.
 */
import { resolve } from 'node:path'
import { isNodusError, NodusError } from '../common/errors.ts'
import { apiTarget, CLIENT_FLAGS, COMMON, dataDirOf, type Flags, intFlag, out, parse } from './args.ts'
import { deleteJson, getFile, getJson, postJson, putFile, shownError } from './client.ts'
import type { DevnetNode } from './devnet.ts'
import { parseDuration } from './duration.ts'
import { collectStartupGarbage, STARTUP_GC_DELAY_MS, tuneGc } from './gc-tuning.ts'
import { Progress } from './progress.ts'

const USAGE = `nodus: a peer-to-peer node for erasure-coded, content-addressed storage

usage: nodus <command> [options]

commands:
  init   --data-dir DIR [--api-port N] [--listen MA]... [--bootstrap MA]...   create keys, token, config
  start  --data-dir DIR [--api-port N] [--listen MA]... [--bootstrap MA]...   run a node
  put    FILE [--ttl DURATION] [--critical] [--data-dir DIR | --api URL --token T]  store a file, print its CID
  pin    CID [--ttl DURATION] [--critical] [--grant G] [--data-dir DIR | --api URL]  keep a file (on every holder);
         --critical: keepers add repair.criticalExtraParity parity shards per segment (uploader or its grant);
         --grant: a grant from the uploader, so holders extend its leases instead of charging your quota
  grant  CID PEER_ID [--ttl DURATION] [--data-dir DIR | --api URL]            let PEER_ID pin a file you uploaded
  unpin  CID [--data-dir DIR | --api URL]                                      drop this node's pin
  get    CID -o FILE [--data-dir DIR | --api URL]                              fetch a file
  cid    FILE                                                                 CID of FILE as one raw block
  pub    TOPIC MESSAGE [--data-dir DIR | --api URL --token T]                 publish MESSAGE (text; - reads stdin) to TOPIC
  sub    TOPIC [--data-dir DIR | --api URL]                                   print TOPIC's messages, one a line (--json: with ids and times)
  send   PEER MESSAGE [--data-dir DIR | --api URL --token T]                  seal MESSAGE (text; - reads stdin) to PEER and deliver it
  inbox  [--follow] [--data-dir DIR | --api URL --token T]                    print this node's direct messages (FROM: TEXT; --json)
  kv     create|set|get|hset|zadd|zrange|grant|sync-status|… [--db DB]          a signed, replicated database
         (signed here with your key; \`nodus kv help\` lists every command)
  id     [--data-dir DIR] [--json]                                            this node's keys: PeerId, did:key, Ed25519 (--json: and ML-DSA-65)
  genesis init --federation NAME --member KEY… --out FILE                   an unsigned genesis for members on separate machines
  genesis sign FILE | verify FILE                                           add this member's signature; who signed, complete or not
  genesis devnet --member DIR… --out FILE                                   build a signed genesis (one machine holds all keys)
  start  … --genesis FILE                                                    run a validator (a member) or follower of the federation
  tx     transfer|create-token|mint|burn … [--no-wait]                        sign a ledger transaction here and submit it
  balance [ACCOUNT] [--of-token ID]                                          mana (and a token's balance) of an account (default yours)
  committee show|propose|vote …                                              the validator committee: show it, propose the next, vote (nodus committee)
  dag    status                                                              the DAG: role, round, commit index, ledger root
  status [--data-dir DIR | --api URL]                                         node info and usage
  devnet --nodes N --base-dir DIR [--base-port P]                             run N local node processes
  devnet --netns [--homes 2] [--symmetric 1] [--upnp 0] [--public 1] [--rtt 80ms] [--jitter 5ms] [--loss 0.5%]
         [--seed N] [--base-dir .devnet/netns]     (Linux, root) nodes in network namespaces: the bootstrap on
         a public segment, one node per home behind a NAT router (cone; the last --symmetric homes symmetric;
         the last --upnp homes' routers run a UPnP IGD, miniupnpd, and those nodes map their port),
         --rtt/--jitter/--loss between any two hosts; Ctrl-C removes every namespace
  devnet --netns --cleanup                                                    remove namespaces crashed runs left (nodus-*)
  sim    dht|placement|durability|consensus [--json] ...                    simulate networks and consensus
  chaos  [--nodes 12] [--duration S] [--kill-every S] [--seed N] [--quick] [--hostile] [--keep]
         kills, restarts and a wiped disk under load; checks every file and repair
         (--hostile: plus a peer attacking every node; no attack may succeed)
  demo   [--nodes 16] [--file F] [--kill 4] [--k 10 --m 4] [--segment-size B] [--base-port P] [--base-dir D] [--keep]
         the main job, end to end (--scenario storage, the default)
  demo   --scenario messaging [--nodes 16] [--messages 2000] [--publishers 4] [--rate 500] [--bytes 256] [--offline 10]
         every node subscribes; publishers publish; every message must reach every node; then sealed
         messages to a stopped node must reach it when it restarts
  demo   --scenario kv [--nodes 16] [--hosts 8] [--ops 3000] [--stop 4] [--batch 50]
         two devices of one owner write every value type to three databases; hosts stop, restart
         and must converge to identical state; unauthorized and replayed writes are refused
  demo   --scenario consensus [--nodes 10] [--rate 200] [--seconds 30] [--kill 3] [--senders 4] [--round-timeout-ms 300]
         every node a validator; transfers at a steady rate; f validators SIGKILLed and restarted;
         every transaction must commit exactly once and every node reach one state root
  demo   --scenario reach [--public 2] [--cone 3] [--symmetric 1] [--rtt 80ms] [--loss 0.5%] [--file F | --size B]
         [--kill 2] [--k 2 --m 2]   (Linux, root) nodes behind NATs on network namespaces: reachability,
         relay discovery through the DHT, hole punching, put and get across NATs, nothing left behind

common options: --json (machine-readable output), --log-level LEVEL, --help
data dir default: $NODUS_DATA_DIR or ~/.nodus`

/** Config overrides from the node flags shared by init and start. */
function nodeOverrides(f: Flags): Record<string, unknown> {
  const o: Record<string, unknown> = {}
  const net: Record<string, unknown> = {}
  if (Array.isArray(f.listen)) net.listen = f.listen
  if (Array.isArray(f.bootstrap)) net.bootstrap = f.bootstrap
  if (typeof f['dht-protocol'] === 'string') net.dhtProtocol = f['dht-protocol']
  if (Object.keys(net).length > 0) o.net = net
  if (f['api-port'] !== undefined) o.api = { port: intFlag(f, 'api-port', 0) }
  if (typeof f['log-level'] === 'string') o.log = { level: f['log-level'] }
  if (typeof f.genesis === 'string') o.consensus = { genesis: resolve(f.genesis) }
  return o
}

const NODE_FLAGS = {
  ...COMMON,
  'data-dir': { type: 'string' },
  'api-port': { type: 'string' },
  listen: { type: 'string', multiple: true },
  bootstrap: { type: 'string', multiple: true },
  'dht-protocol': { type: 'string' },
  genesis: { type: 'string' },
} as const

/** What `devnet` prints of a node. */
function nodeSummary(n: DevnetNode): Pick<DevnetNode, 'index' | 'peerId' | 'api' | 'dataDir' | 'multiaddrs'> {
  return { index: n.index, peerId: n.peerId, api: n.api, dataDir: n.dataDir, multiaddrs: n.multiaddrs }
}

/** Resolves at the first SIGINT or SIGTERM. */
async function untilSignal(): Promise<void> {
  await new Promise<void>((res) => {
    process.once('SIGINT', () => res())
    process.once('SIGTERM', () => res())
  })
}

/**
 * `nodus devnet --netns`: nodes on a topology of network namespaces (devnet-netns.ts). Ctrl-C (or
 * SIGTERM) at any point, even while building, stops the nodes and removes every namespace.
 * `--cleanup` removes what crashed runs left instead.
 */
async function devnetNetns(f: Flags): Promise<number> {
  const { createLogger } = await import('../common/logger.ts')
  const logger = createLogger(typeof f['log-level'] === 'string' ? f['log-level'] : 'info')
  const netns = await import('../netns/index.ts')
  if (f.cleanup === true) {
    await netns.assertNetnsAvailable()
    const removed = await netns.cleanupNetns(new netns.ExecFileRunner({ logger }))
    out(
      Boolean(f.json),
      { removed },
      removed.length === 0 ? 'nothing to remove' : `removed ${removed.join(' ')}`,
    )
    return 0
  }
  const { countersLine, measureRtts, parseLoss, parseMs, startNetnsDevnet } = await import(
    './devnet-netns.ts'
  )
  const homes = intFlag(f, 'homes', 2)
  const spec = {
    publicHosts: intFlag(f, 'public', 1),
    homes,
    symmetric: intFlag(f, 'symmetric', Math.min(1, homes)),
    upnp: intFlag(f, 'upnp', 0),
    rttMs: typeof f.rtt === 'string' ? parseMs('rtt', f.rtt) : 0,
    jitterMs: typeof f.jitter === 'string' ? parseMs('jitter', f.jitter) : 0,
    loss: typeof f.loss === 'string' ? parseLoss(f.loss) : 0,
    seed: intFlag(f, 'seed', 1),
  }
  const abort = new AbortController()
  const interrupted = untilSignal().then(() => abort.abort(new NodusError('ABORTED', 'interrupted')))
  const net = await startNetnsDevnet(spec, {
    logger,
    signal: abort.signal,
    baseDir: resolve(typeof f['base-dir'] === 'string' ? f['base-dir'] : '.devnet/netns'),
    basePort: 0,
    logLevel: typeof f['log-level'] === 'string' ? f['log-level'] : 'info',
    onEvent: (m) => process.stderr.write(`${m}\n`),
  })
  try {
    const rtts = abort.signal.aborted ? {} : await measureRtts(net)
    const nodes = net.devnet.nodes.map((n) => ({ ...net.hosts[n.index], ...nodeSummary(n) }))
    out(
      Boolean(f.json),
      { event: 'ready', runId: net.topology.plan.runId, link: net.topology.link, rttMs: rtts, nodes },
      [
        `run ${net.topology.plan.runId}: per link ${JSON.stringify(net.topology.link)}; measured TCP RTT home -> public (ms): ${JSON.stringify(rtts)}`,
        ...nodes.map(
          (n) =>
            `node ${n.index} ${n.kind} ${n.address} (seen as ${n.seenAs}) ${n.peerId}\n  ip netns exec ${n.netns} node bin/nodus.js status --data-dir ${n.dataDir}`,
        ),
      ].join('\n'),
    )
    process.stderr.write('devnet running; Ctrl-C stops it and removes every namespace\n')
    if (!abort.signal.aborted) await interrupted
  } finally {
    const report = await net.stop()
    for (const [role, c] of Object.entries(report.bridges)) process.stderr.write(`${countersLine(role, c)}\n`)
    process.stderr.write(
      `removed ${report.namespaces.length} namespaces${report.errors.length > 0 ? `; errors: ${report.errors.join('; ')}` : ''}\n`,
    )
  }
  return 0
}

/**
 * `nodus status`: connections counted by transport (tcp, quic, ws) and by direct or relayed, from
 * `GET /network/peers`.
 */
function connectionKinds(peers: readonly { transport?: string; relayed?: boolean }[]): {
  direct: number
  relayed: number
  byTransport: Record<string, number>
} {
  const byTransport: Record<string, number> = {}
  let relayed = 0
  for (const p of peers) {
    const t = p.transport ?? 'other'
    byTransport[t] = (byTransport[t] ?? 0) + 1
    if (p.relayed === true) relayed++
  }
  return { direct: peers.length - relayed, relayed, byTransport }
}

/** ` (tcp 2, quic 1; direct 3, relayed 0)`, or nothing without connections. */
function kindsLine(k: ReturnType<typeof connectionKinds>): string {
  const t = Object.entries(k.byTransport)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, n]) => `${name} ${n}`)
  return t.length === 0 ? '' : ` (${t.join(', ')}; direct ${k.direct}, relayed ${k.relayed})`
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    process.stdout.write(`${USAGE}\n`)
    return cmd === undefined ? 2 : 0
  }
  // Every nodus process moves data through Buffers: V8's default marking trigger would collect
  // continuously (gc-tuning.ts). A CLI get spent about a third of its CPU in marking without this.
  tuneGc()
  switch (cmd) {
    case 'init': {
      const { values: f } = parse(rest, NODE_FLAGS)
      const dir = dataDirOf(f)
      const { initNode } = await import('./init.ts')
      const r = await initNode(dir, nodeOverrides(f))
      out(
        Boolean(f.json),
        { peerId: r.peerId, did: r.did, dataDir: dir },
        `initialised ${dir}\npeerId ${r.peerId}\ndid    ${r.did}`,
      )
      return 0
    }
    case 'start': {
      const { values: f } = parse(rest, { ...NODE_FLAGS, 'exit-with-parent': { type: 'boolean' } })
      // Node modules load only for the commands that run a node: client commands (put, get, status, ...)
      // start in a fraction of the time (`nodus --help`: 0.42 → 0.06 CPU-s).
      const { loadConfig } = await import('../config/config.ts')
      const { createNode } = await import('../node/node.ts')
      const config = await loadConfig(dataDirOf(f), nodeOverrides(f))
      const node = await createNode(config)
      let stopping = false
      const stop = async (code: number): Promise<void> => {
        if (stopping) return
        stopping = true
        const t = setTimeout(() => process.exit(code), 10_000)
        t.unref()
        await node.stop().catch(() => {})
        process.stdin.destroy() // read for --exit-with-parent; would hold the event loop
        exitWith(code)
      }
      process.once('SIGINT', () => void stop(0))
      process.once('SIGTERM', () => void stop(0))
      if (f['exit-with-parent'] === true) {
        process.stdin.on('end', () => void stop(0))
        process.stdin.on('error', () => void stop(0))
        process.stdin.resume()
      }
      await node.start()
      const info = node.info()
      out(
        Boolean(f.json),
        { event: 'ready', ...info },
        `nodus node ready\npeerId ${info.peerId}\ndid    ${info.did}\nlisten ${info.multiaddrs.join(' ')}\nAPI    ${info.api}`,
      )
      // Give back the start-up garbage once the node has had a moment to settle (gc-tuning.ts), then
      // malloc's free pages, now and every 30 s (memory-trim.ts).
      const { startMallocTrimmer } = await import('./memory-trim.ts')
      // With --json it then reports {"event":"settled"}: a devnet waits for that before measuring.
      setTimeout(() => {
        collectStartupGarbage()
        startMallocTrimmer()
        if (f.json === true) out(true, { event: 'settled' }, '')
      }, STARTUP_GC_DELAY_MS).unref()
      await new Promise(() => {})
      return 0
    }
    case 'put': {
      const { values: f, positionals } = parse(rest, {
        ...CLIENT_FLAGS,
        ttl: { type: 'string' },
        critical: { type: 'boolean' },
      })
      const file = positionals[0]
      if (file === undefined) throw new NodusError('INVALID_ARGUMENT', 'usage: nodus put FILE')
      const api = await apiTarget(f)
      const { size } = await import('node:fs/promises').then((fs) =>
        fs.stat(file).catch(() => {
          throw new NodusError('FILE_NOT_FOUND', `no such file: ${file}`)
        }),
      )
      const bar = new Progress('put', size, !f.json && process.stderr.isTTY)
      const ttl = typeof f.ttl === 'string' ? parseDuration(f.ttl) : undefined
      const r = await putFile(api, file, {
        onBytes: (n) => bar.update(n),
        ...(ttl === undefined ? {} : { ttlSeconds: ttl }),
        ...(f.critical === true ? { critical: true } : {}),
      })
      bar.done()
      out(Boolean(f.json), { ...r, seconds: bar.seconds }, r.cid)
      return 0
    }
    case 'get': {
      const { values: f, positionals } = parse(rest, {
        ...CLIENT_FLAGS,
        output: { type: 'string', short: 'o' },
      })
      const cid = positionals[0]
      const o = f.output
      if (cid === undefined || typeof o !== 'string')
        throw new NodusError('INVALID_ARGUMENT', 'usage: nodus get CID -o FILE')
      const api = await apiTarget(f)
      const bar = new Progress('get', undefined, !f.json && process.stderr.isTTY)
      const r = await getFile(api, cid, o, { onBytes: (n) => bar.update(n) })
      bar.done()
      out(
        Boolean(f.json),
        { cid, file: resolve(o), bytes: r.bytes, seconds: bar.seconds },
        `wrote ${r.bytes} bytes to ${o}`,
      )
      return 0
    }
    case 'pin': {
      const { values: f, positionals } = parse(rest, {
        ...CLIENT_FLAGS,
        ttl: { type: 'string' },
        critical: { type: 'boolean' },
        grant: { type: 'string' },
      })
      const cid = positionals[0]
      if (cid === undefined)
        throw new NodusError(
          'INVALID_ARGUMENT',
          'usage: nodus pin CID [--ttl DURATION] [--critical] [--grant GRANT]',
        )
      const ttl = typeof f.ttl === 'string' ? parseDuration(f.ttl) : undefined
      const r = await postJson<{
        extended: number
        missing: number
        unreachable: number
        expiresAt: number | null
      }>(await apiTarget(f), `/files/${encodeURIComponent(cid)}/pin`, {
        ...(ttl === undefined ? {} : { ttl }),
        ...(f.critical === true ? { critical: true } : {}),
        ...(typeof f.grant === 'string' ? { grant: f.grant } : {}),
      })
      const until = r.expiresAt === null ? 'forever' : `until ${new Date(r.expiresAt).toISOString()}`
      out(
        Boolean(f.json),
        { cid, ...r },
        `pinned ${cid} ${until}: ${r.extended} shard copies extended, ${r.missing} missing, ${r.unreachable} holders unreachable`,
      )
      return 0
    }
    case 'grant': {
      const { values: f, positionals } = parse(rest, { ...CLIENT_FLAGS, ttl: { type: 'string' } })
      const [cid, pinner] = positionals
      if (cid === undefined || pinner === undefined)
        throw new NodusError('INVALID_ARGUMENT', 'usage: nodus grant CID PEER_ID [--ttl DURATION]')
      const ttl = typeof f.ttl === 'string' ? parseDuration(f.ttl) : undefined
      const r = await postJson<{ cid: string; pinner: string; expiresAt: number; grant: string }>(
        await apiTarget(f),
        `/files/${encodeURIComponent(cid)}/grant`,
        { pinner, ...(ttl === undefined ? {} : { ttl }) },
      )
      out(Boolean(f.json), r, r.grant)
      return 0
    }
    case 'unpin': {
      const { values: f, positionals } = parse(rest, CLIENT_FLAGS)
      const cid = positionals[0]
      if (cid === undefined) throw new NodusError('INVALID_ARGUMENT', 'usage: nodus unpin CID')
      const r = await deleteJson<{ cid: string }>(await apiTarget(f), `/files/${encodeURIComponent(cid)}`)
      out(Boolean(f.json), { cid: r.cid, unpinned: true }, `unpinned ${r.cid}`)
      return 0
    }
    case 'cid': {
      const { values: f, positionals } = parse(rest, COMMON)
      const file = positionals[0]
      if (file === undefined) throw new NodusError('INVALID_ARGUMENT', 'usage: nodus cid FILE')
      const { cidForFile, cidToString } = await import('../storage/index.ts')
      const cid = await cidForFile(file).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT')
          throw new NodusError('FILE_NOT_FOUND', `no such file: ${file}`)
        throw err
      })
      out(Boolean(f.json), { cid: cidToString(cid), file }, cidToString(cid))
      return 0
    }
    case 'pub': {
      const { values: f, positionals } = parse(rest, CLIENT_FLAGS)
      const [topic, message] = positionals
      if (topic === undefined || message === undefined)
        throw new NodusError(
          'INVALID_ARGUMENT',
          'usage: nodus pub TOPIC MESSAGE (- reads the message from stdin)',
        )
      const { publishMessage } = await import('./pubsub.ts')
      const data =
        message === '-'
          ? new Uint8Array(await new Response(process.stdin as unknown as ReadableStream).arrayBuffer())
          : new TextEncoder().encode(message)
      const r = await publishMessage(await apiTarget(f), topic, data)
      out(Boolean(f.json), r, `published ${r.topic} #${r.seq}`)
      return 0
    }
    case 'sub': {
      const { values: f, positionals } = parse(rest, CLIENT_FLAGS)
      const topic = positionals[0]
      if (topic === undefined) throw new NodusError('INVALID_ARGUMENT', 'usage: nodus sub TOPIC [--json]')
      const { followTopic } = await import('./pubsub.ts')
      const ac = new AbortController()
      process.once('SIGINT', () => ac.abort())
      process.once('SIGTERM', () => ac.abort())
      const json = f.json === true
      const ended = await followTopic(
        await apiTarget(f),
        topic,
        (m) => {
          process.stdout.write(
            json
              ? `${JSON.stringify(m)}\n`
              : `${Buffer.from(m.data, 'base64').toString('utf8').replaceAll('\n', ' ')}\n`,
          )
        },
        ac.signal,
      )
      if (ended === 'slow')
        throw new NodusError('QUEUE_FULL', 'this subscriber fell behind and the node dropped it')
      return 0
    }
    case 'send': {
      const { values: f, positionals } = parse(rest, CLIENT_FLAGS)
      const [peer, message] = positionals
      if (peer === undefined || message === undefined)
        throw new NodusError(
          'INVALID_ARGUMENT',
          'usage: nodus send PEER MESSAGE (- reads the message from stdin)',
        )
      const { sendDirect } = await import('./direct.ts')
      const body =
        message === '-'
          ? new Uint8Array(await new Response(process.stdin as unknown as ReadableStream).arrayBuffer())
          : new TextEncoder().encode(message)
      const r = await sendDirect(await apiTarget(f), peer, body)
      out(
        Boolean(f.json),
        { ...r },
        r.via === 'online'
          ? `delivered ${r.id} to ${r.to}`
          : `stored ${r.id} for ${r.to} at ${r.keepers} keepers`,
      )
      return 0
    }
    case 'inbox': {
      const { values: f } = parse(rest, { ...CLIENT_FLAGS, follow: { type: 'boolean' } })
      const { followInbox, listInbox } = await import('./direct.ts')
      const json = f.json === true
      const print = (m: { from: string; body: string }): void => {
        process.stdout.write(
          json
            ? `${JSON.stringify(m)}\n`
            : `${m.from}: ${Buffer.from(m.body, 'base64').toString('utf8').replaceAll('\n', ' ')}\n`,
        )
      }
      const api = await apiTarget(f)
      if (f.follow !== true) {
        for (const m of await listInbox(api)) print(m)
        return 0
      }
      const ac = new AbortController()
      process.once('SIGINT', () => ac.abort())
      process.once('SIGTERM', () => ac.abort())
      // Follow first, then list, so nothing arriving in between is missed (a message may print twice).
      const seen = new Set<string>()
      const once = (m: { id: string; from: string; body: string }): void => {
        if (seen.has(m.id)) return
        if (seen.size > 100_000) seen.clear()
        seen.add(m.id)
        print(m)
      }
      const following = followInbox(api, once, ac.signal)
      for (const m of await listInbox(api, ac.signal)) once(m)
      const ended = await following
      if (ended === 'slow')
        throw new NodusError('QUEUE_FULL', 'this client fell behind and the node dropped it')
      return 0
    }
    case 'kv': {
      const { kvCommand } = await import('./kv.ts')
      return await kvCommand(rest)
    }
    case 'id': {
      // What a member hands over for a genesis (`nodus genesis init --member FILE`): public keys only.
      const { values: f } = parse(rest, { ...COMMON, 'data-dir': { type: 'string' } })
      const { loadIdentity } = await import('../crypto/index.ts')
      const { publicKeysOf } = await import('./genesis-input.ts')
      const r = publicKeysOf(await loadIdentity(dataDirOf(f)))
      out(Boolean(f.json), r, `peerId  ${r.peerId}\ndid     ${r.did}\ned25519 ${r.ed25519}`)
      return 0
    }
    case 'genesis': {
      const { genesisCommand } = await import('./genesis.ts')
      return await genesisCommand(rest)
    }
    case 'tx': {
      const { txCommand } = await import('./ledger.ts')
      return await txCommand(rest)
    }
    case 'balance': {
      const { balanceCommand } = await import('./ledger.ts')
      return await balanceCommand(rest)
    }
    case 'committee': {
      const { committeeCommand } = await import('./committee.ts')
      return await committeeCommand(rest)
    }
    case 'dag': {
      const { dagCommand } = await import('./ledger.ts')
      return await dagCommand(rest)
    }
    case 'status': {
      const { values: f } = parse(rest, CLIENT_FLAGS)
      const api = await apiTarget(f)
      const info = await getJson<Record<string, unknown>>(api, '/system/info')
      const usage = await getJson<Record<string, unknown>>(api, '/storage/usage')
      const peers = await getJson<{ peers: { transport?: string; relayed?: boolean }[] }>(
        api,
        '/network/peers',
      )
      const kinds = connectionKinds(peers.peers)
      out(
        Boolean(f.json),
        { ...info, usage, connections: peers.peers.length, connectionKinds: kinds },
        `peerId ${String(info.peerId)}\nAPI    ${String(info.api)}\nconnections ${peers.peers.length}${kindsLine(kinds)}\nstored ${String(usage.shards)} shards, ${String(usage.bytes)} bytes of ${String(usage.capacityBytes)}`,
      )
      return 0
    }
    case 'devnet': {
      const { values: f } = parse(rest, {
        ...COMMON,
        nodes: { type: 'string' },
        'base-dir': { type: 'string' },
        'base-port': { type: 'string' },
        netns: { type: 'boolean' },
        cleanup: { type: 'boolean' },
        public: { type: 'string' },
        homes: { type: 'string' },
        symmetric: { type: 'string' },
        upnp: { type: 'string' },
        rtt: { type: 'string' },
        jitter: { type: 'string' },
        loss: { type: 'string' },
        seed: { type: 'string' },
      })
      if (f.netns === true) return await devnetNetns(f)
      if (typeof f['base-dir'] !== 'string')
        throw new NodusError('INVALID_ARGUMENT', 'usage: nodus devnet --nodes N --base-dir DIR')
      const { Devnet } = await import('./devnet.ts')
      const net = await Devnet.start({
        nodes: intFlag(f, 'nodes', 4),
        baseDir: resolve(f['base-dir']),
        basePort: intFlag(f, 'base-port', 0),
        logLevel: typeof f['log-level'] === 'string' ? f['log-level'] : 'info',
        onEvent: (m) => process.stderr.write(`${m}\n`),
      })
      const nodes = net.nodes.map(nodeSummary)
      out(
        Boolean(f.json),
        { event: 'ready', nodes },
        nodes.map((n) => `node ${n.index} ${n.peerId} ${n.api} ${n.dataDir}`).join('\n'),
      )
      process.stderr.write('devnet running; Ctrl-C stops it\n')
      await untilSignal()
      await net.stop()
      return 0
    }
    case 'demo': {
      const { values: f } = parse(rest, {
        ...COMMON,
        scenario: { type: 'string' },
        messages: { type: 'string' },
        publishers: { type: 'string' },
        rate: { type: 'string' },
        bytes: { type: 'string' },
        offline: { type: 'string' },
        hosts: { type: 'string' },
        ops: { type: 'string' },
        stop: { type: 'string' },
        batch: { type: 'string' },
        seconds: { type: 'string' },
        senders: { type: 'string' },
        'round-timeout-ms': { type: 'string' },
        nodes: { type: 'string' },
        file: { type: 'string' },
        kill: { type: 'string' },
        'base-port': { type: 'string' },
        'segment-size': { type: 'string' },
        k: { type: 'string' },
        m: { type: 'string' },
        'base-dir': { type: 'string' },
        keep: { type: 'boolean' },
        public: { type: 'string' },
        cone: { type: 'string' },
        symmetric: { type: 'string' },
        rtt: { type: 'string' },
        loss: { type: 'string' },
        size: { type: 'string' },
      })
      // What every scenario takes, and its one JSON line.
      const scenarioFlags = (g: Flags) => ({
        basePort: intFlag(g, 'base-port', 0),
        logLevel: typeof g['log-level'] === 'string' ? g['log-level'] : 'info',
        keep: g.keep === true,
        ...(typeof g['base-dir'] === 'string' ? { baseDir: resolve(g['base-dir']) } : {}),
        log: (m: string) => process.stderr.write(`[demo] ${m}\n`),
      })
      const printResult = (result: { ok: boolean }): number => {
        process.stdout.write(`${JSON.stringify(result)}\n`)
        return result.ok ? 0 : 1
      }
      const scenario = typeof f.scenario === 'string' ? f.scenario : 'storage'
      if (scenario === 'messaging') {
        const { MESSAGING_DEMO_DEFAULTS: d, runMessagingDemo } = await import('./demo-messaging.ts')
        const result = await runMessagingDemo({
          nodes: intFlag(f, 'nodes', d.nodes),
          messages: intFlag(f, 'messages', d.messages),
          publishers: intFlag(f, 'publishers', d.publishers),
          rate: intFlag(f, 'rate', d.rate),
          bytes: intFlag(f, 'bytes', d.bytes),
          offline: intFlag(f, 'offline', d.offline),
          ...scenarioFlags(f),
        })
        return printResult(result)
      }
      if (scenario === 'kv') {
        const { KV_DEMO_DEFAULTS: d, runKvDemo } = await import('./demo-kv.ts')
        const result = await runKvDemo({
          nodes: intFlag(f, 'nodes', d.nodes),
          hosts: intFlag(f, 'hosts', d.hosts),
          ops: intFlag(f, 'ops', d.ops),
          stop: intFlag(f, 'stop', d.stop),
          batch: intFlag(f, 'batch', d.batch),
          ...scenarioFlags(f),
        })
        return printResult(result)
      }
      if (scenario === 'consensus') {
        const { CONSENSUS_DEMO_DEFAULTS: d, runConsensusDemo } = await import('./demo-consensus.ts')
        const result = await runConsensusDemo({
          nodes: intFlag(f, 'nodes', d.nodes),
          rate: intFlag(f, 'rate', d.rate),
          seconds: intFlag(f, 'seconds', d.seconds),
          kill: intFlag(f, 'kill', d.kill),
          senders: intFlag(f, 'senders', d.senders),
          roundTimeoutMs: intFlag(f, 'round-timeout-ms', d.roundTimeoutMs),
          ...scenarioFlags(f),
        })
        return printResult(result)
      }
      const storage: Record<string, number> = {}
      if (f['segment-size'] !== undefined) storage.segmentSize = intFlag(f, 'segment-size', 0)
      if (f.k !== undefined) storage.k = intFlag(f, 'k', 10)
      if (f.m !== undefined) storage.m = intFlag(f, 'm', 4)
      if (scenario === 'reach') {
        const { REACH_DEMO_DEFAULTS: d, runReachDemo } = await import('./demo-reach.ts')
        const { parseLoss, parseMs } = await import('./devnet-netns.ts')
        const { createLogger } = await import('../common/logger.ts')
        const g = scenarioFlags(f)
        const result = await runReachDemo({
          publicHosts: intFlag(f, 'public', d.publicHosts),
          cone: intFlag(f, 'cone', d.cone),
          symmetric: intFlag(f, 'symmetric', d.symmetric),
          rttMs: typeof f.rtt === 'string' ? parseMs('rtt', f.rtt) : d.rttMs,
          loss: typeof f.loss === 'string' ? parseLoss(f.loss) : d.loss,
          ...(typeof f.file === 'string' ? { file: f.file } : {}),
          sizeBytes: intFlag(f, 'size', d.sizeBytes),
          kill: intFlag(f, 'kill', d.kill),
          ...(Object.keys(storage).length === 0 ? {} : { config: { storage } }),
          waitMs: d.waitMs,
          logLevel: g.logLevel,
          keep: g.keep,
          ...(g.baseDir === undefined ? {} : { baseDir: g.baseDir }),
          logger: createLogger('warn'),
          log: g.log,
        })
        return printResult(result)
      }
      if (scenario !== 'storage')
        throw new NodusError(
          'INVALID_ARGUMENT',
          `unknown scenario ${scenario}: storage, messaging, kv, consensus or reach`,
        )
      const { DEFAULT_DEMO_FILE, runDemo } = await import('./demo.ts')
      const result = await runDemo({
        nodes: intFlag(f, 'nodes', 16),
        file: typeof f.file === 'string' ? f.file : DEFAULT_DEMO_FILE,
        kill: intFlag(f, 'kill', 4),
        ...(Object.keys(storage).length === 0 ? {} : { config: { storage } }),
        progress: true,
        ...scenarioFlags(f),
      })
      return printResult(result)
    }
    case 'sim': {
      const { simCommand } = await import('./sim.ts')
      return await simCommand(rest)
    }
    case 'chaos': {
      const { values: f } = parse(rest, {
        ...COMMON,
        nodes: { type: 'string' },
        duration: { type: 'string' },
        'kill-every': { type: 'string' },
        seed: { type: 'string' },
        quick: { type: 'boolean' },
        hostile: { type: 'boolean' },
        keep: { type: 'boolean' },
      })
      const quick = f.quick === true
      const { runChaos } = await import('./chaos.ts')
      const result = await runChaos({
        nodes: intFlag(f, 'nodes', 12),
        durationSeconds: intFlag(f, 'duration', quick ? 30 : 180),
        killEverySeconds: intFlag(f, 'kill-every', quick ? 6 : 10),
        seed: intFlag(f, 'seed', Date.now() % 1_000_000),
        k: 6,
        m: 3,
        maxFileBytes: quick ? 1_500_000 : 4_000_000,
        healTimeoutSeconds: quick ? 60 : 120,
        keep: f.keep === true,
        hostile: f.hostile === true,
        log: (m) => process.stderr.write(`[chaos] ${m}\n`),
      })
      process.stdout.write(`${JSON.stringify(result)}\n`)
      return result.ok ? 0 : 1
    }
    default:
      throw new NodusError('INVALID_ARGUMENT', `unknown command "${cmd}"; run \`nodus help\``)
  }
}

/**
 * End the process with `code`: let it exit on its own once nothing is pending, and call process.exit
 * only if something still holds the event loop after 5 s. A natural exit disposes the V8 isolate before
 * Node stops its worker threads; process.exit() does not, and it can then wait forever for a concurrent
 * compile job that waits for a garbage collection (nodejs/node#54918; seen here in `nodus put`).
 */
function exitWith(code: number): void {
  process.exitCode = code
  setTimeout(() => process.exit(code), 5_000).unref()
}

main(process.argv.slice(2)).then(
  (code) => exitWith(code),
  (err: unknown) => {
    const json = process.argv.includes('--json')
    if (isNodusError(err)) {
      const shown = shownError(err)
      process.stderr.write(json ? `${JSON.stringify(shown)}\n` : `error ${shown.code}: ${shown.message}\n`)
      exitWith(err.code === 'INVALID_ARGUMENT' ? 2 : 1)
      return
    }
    process.stderr.write(
      json
        ? `${JSON.stringify({ code: 'INTERNAL', message: String(err) })}\n`
        : `error: ${(err as Error)?.stack ?? String(err)}\n`,
    )
    exitWith(1)
  },
)
