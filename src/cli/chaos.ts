/**
 * `nodus chaos`: a devnet of node processes under continuous put and get load, with random SIGKILLs
 * and restarts and one wiped data directory; at the end every acknowledged file must read back
 * byte-identical and repair must have brought every segment back to k+m healthy shards.
 * With `hostile`, a hostile peer (src/cli/hostile.ts) attacks every node for the whole run as well:
 * no attack may be accepted, and no honest request may be refused for want of service (PEER_BUSY,
 * 429) for longer than the request timeout.
 * Loopback only; every loop is bounded in count and time.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodusError } from '../common/errors.ts'
import { mulberry32 } from '../common/prng.ts'
import { type ApiTarget, getFile, getJson, putFile } from './client.ts'
import { Devnet, type DevnetNode } from './devnet.ts'
import { type AttackCounts, type AttackKind, HostilePeer, type HostileTarget } from './hostile.ts'
import {
  checkHolderState,
  type HolderState,
  holderStateFailures,
  isServiceRefusal,
  RefusalStretch,
} from './hostile-check.ts'

export interface ChaosOptions {
  nodes: number
  /** Seconds of load and chaos. */
  durationSeconds: number
  /** Seconds between kills. */
  killEverySeconds: number
  seed: number
  k: number
  m: number
  /** Largest file put, bytes. */
  maxFileBytes: number
  /** Seconds to wait at the end for repair to heal everything. */
  healTimeoutSeconds: number
  keep: boolean
  /** Add the hostile peer (src/cli/hostile.ts) for the whole run. */
  hostile: boolean
  log: (msg: string) => void
}

/** What the hostile run adds to the result. */
export interface HostileResult {
  peerId: string
  /** Per attack kind: attempts, refused, allowed (within the defences' bounds), unexpected, errors. */
  attacks: Record<AttackKind, AttackCounts>
  /** What the attacks left in the nodes' data directories (read after the run). */
  holderState: Omit<HolderState, 'problems' | 'hostileHeld'>
  /** Attacks accepted although a defence should have refused them, plus holder-state findings. */
  unexpectedAccepted: number
  /** Honest puts and gets refused for want of service (PEER_BUSY, 429). */
  honestRefused: number
  /** Longest stretch in which honest requests kept being refused, seconds. */
  honestRefusedLongestSeconds: number
  /** The bound on that stretch: the request timeout, seconds. */
  honestRefusedBoundSeconds: number
}

export interface ChaosResult {
  ok: boolean
  seed: number
  nodes: number
  seconds: number
  puts: number
  putFailures: number
  gets: number
  getFailures: number
  kills: number
  restarts: number
  wipes: number
  repairs: number
  files: number
  unreadable: number
  unhealthySegments: number
  hostile?: HostileResult
}

/** The request timeout of the chaos client, ms; also the fair-service bound of the hostile run. */
const REQUEST_TIMEOUT_MS = 60_000
const DAY_MS = 24 * 3600 * 1000
/**
 * Holder terms of the hostile run, set explicitly so the after-run check knows them. The quota lets
 * the hostile peer reach it in a quick run (10 provisional puts of 16 MiB per holder) while more than
 * one peer's share of slots (8) of stalled 16 MiB puts fit in it, so both limits are met; it is several
 * times what the honest uploader keeps on one holder in the full run. It does not scale with trust
 * here: in a young devnet EigenTrust rates a stranger about average (a quota ×4.5 with the default
 * multiplier), so the hostile peer would not reach it within the run.
 */
const HOSTILE_TERMS = {
  leaseMs: 30 * DAY_MS,
  maxLeaseMs: 90 * DAY_MS,
  provisionalLeaseMs: 3600_000,
  quotaBytes: 160 * 1024 * 1024,
  quotaTrustMultiplier: 1,
}
/** Size of each of the hostile peer's provisional puts, bytes (the largest shard a holder takes). */
const HOSTILE_PUT_BYTES = 16 * 1024 * 1024

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function sha256File(path: string): Promise<string> {
  const { readFile } = await import('node:fs/promises')
  return sha256(await readFile(path))
}

/** Run the chaos scenario. Resolves with counts; `ok` is the verdict. */
export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  if (o.nodes < o.k + o.m + 2) {
    throw new NodusError('INVALID_ARGUMENT', `--nodes must be at least k+m+2 = ${o.k + o.m + 2}`)
  }
  const rand = mulberry32(o.seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
  const base = await mkdtemp(join(tmpdir(), 'nodus-chaos-'))
  const started = performance.now()
  const r: ChaosResult = {
    ok: false,
    seed: o.seed,
    nodes: o.nodes,
    seconds: 0,
    puts: 0,
    putFailures: 0,
    gets: 0,
    getFailures: 0,
    kills: 0,
    restarts: 0,
    wipes: 0,
    repairs: 0,
    files: 0,
    unreadable: 0,
    unhealthySegments: 0,
  }
  const acked: { cid: string; sha: string; bytes: number }[] = []
  /** Each acknowledged file's manifest and shard CIDs, as last read (for the hostile run's check). */
  const blocks = new Map<string, string[]>()
  const fair = new RefusalStretch()
  /** Run an honest request and record whether it was served, refused for want of service, or failed. */
  const honest = async (req: () => Promise<unknown>): Promise<void> => {
    const t0 = performance.now()
    try {
      await req()
      fair.record('ok', t0, performance.now())
    } catch (err) {
      fair.record(isServiceRefusal(err) ? 'refused' : 'failed', t0, performance.now())
      throw err
    }
  }
  let net: Devnet | undefined
  let hostile: HostilePeer | undefined
  try {
    o.log(`seed ${o.seed}; starting ${o.nodes} nodes in ${base}`)
    net = await Devnet.start({
      nodes: o.nodes,
      baseDir: base,
      basePort: 0,
      logLevel: 'info',
      config: {
        storage: {
          k: o.k,
          m: o.m,
          segmentSize: 1024 * 1024,
          manifestReplicas: 4,
          ...(o.hostile ? HOSTILE_TERMS : {}),
        },
        repair: { intervalMs: 2_000, graceMs: 4_000 },
      },
    })
    const devnet = net
    const api = (n: DevnetNode): ApiTarget => ({ url: n.api, token: n.token })
    const alive = (): DevnetNode[] => devnet.nodes.filter((n) => n.alive)
    // Node 0 is the load's entry point and is never killed, so every put has a live uploader.
    const killable = (): DevnetNode[] => alive().filter((n) => n.index !== 0)
    const down = new Set<number>()
    const deadline = Date.now() + o.durationSeconds * 1000
    let wiped = false
    if (o.hostile) {
      hostile = new HostilePeer(
        {
          targets: () => alive().map(hostileTarget),
          files: () => acked.map((f) => f.cid),
          log: o.log,
          clock: Date,
        },
        {
          maxQuotaBytes: HOSTILE_TERMS.quotaBytes * HOSTILE_TERMS.quotaTrustMultiplier,
          provisionalBytes: HOSTILE_PUT_BYTES,
        },
      )
      await hostile.start()
    }

    // Chaos loop: kill one node at a time (at most m-1 down), restart it a few seconds later; wipe once.
    const chaos = (async () => {
      for (let round = 0; round < 10_000 && Date.now() < deadline; round++) {
        await new Promise((res) => setTimeout(res, o.killEverySeconds * 1000))
        if (Date.now() >= deadline) break
        if (down.size < o.m - 1) {
          const victim = pick(killable())
          await devnet.kill(victim.index)
          down.add(victim.index)
          r.kills++
          if (!wiped && round >= 1) {
            // Disk loss: the node comes back with its identity but none of its data.
            for (const sub of ['shards', 'watch', 'files'])
              await rm(join(victim.dataDir, sub), { recursive: true, force: true })
            wiped = true
            r.wipes++
            o.log(`killed node ${victim.index} and wiped its data`)
          } else o.log(`killed node ${victim.index}`)
        } else {
          const back = [...down][0] as number
          await devnet.restart(back)
          down.delete(back)
          r.restarts++
          o.log(`restarted node ${back}`)
        }
      }
    })()

    // Load loop: put a random file through node 0, then get a random acknowledged file from a random live node.
    const dir = join(base, 'files')
    const { mkdir } = await import('node:fs/promises')
    await mkdir(dir)
    for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
      const size = 1 + Math.floor(rand() * o.maxFileBytes)
      const bytes = new Uint8Array(size)
      for (let j = 0; j < size; j += 4096) bytes[j] = Math.floor(rand() * 256)
      bytes.set(new TextEncoder().encode(`chaos file ${o.seed}/${i}`), 0)
      const f = join(dir, `put-${i}.bin`)
      await writeFile(f, bytes)
      r.puts++
      try {
        await honest(async () => {
          const res = await putFile(api(devnet.nodes[0] as DevnetNode), f, {
            signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          })
          acked.push({ cid: res.cid, sha: sha256(bytes), bytes: size })
        })
      } catch (err) {
        r.putFailures++
        o.log(`put ${i} failed: ${(err as Error).message}`)
      }
      await rm(f, { force: true })
      if (acked.length > 0) {
        const want = pick(acked)
        const from = pick(alive())
        const out = join(dir, `get-${i}.bin`)
        r.gets++
        try {
          await honest(() =>
            getFile(api(from), want.cid, out, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }),
          )
          if ((await sha256File(out)) !== want.sha) throw new Error('bytes differ')
        } catch (err) {
          r.getFailures++
          o.log(`get of ${want.cid} from node ${from.index} failed: ${(err as Error).message}`)
        }
        await rm(out, { force: true })
      }
    }
    await chaos
    for (const i of [...down]) {
      await devnet.restart(i)
      r.restarts++
    }
    o.log(`load done: ${acked.length} files acknowledged; waiting for repair to heal every segment`)

    // Heal: every segment of every acknowledged file back to k+m shards with a live copy.
    const healDeadline = Date.now() + o.healTimeoutSeconds * 1000
    for (let round = 0; round < 1000; round++) {
      const where = new Map<string, number>()
      for (const n of alive()) {
        let after: string | undefined
        for (let page = 0; page < 1000; page++) {
          const q = after === undefined ? '' : `&after=${after}`
          const res = await getJson<{ shards: { cid: string }[]; next: string | null }>(
            api(n),
            `/storage/shards?limit=1000${q}`,
          )
          for (const s of res.shards) where.set(s.cid, (where.get(s.cid) ?? 0) + 1)
          if (res.next === null || res.shards.length < 1000) break
          after = res.next
        }
      }
      let unhealthy = 0
      for (const f of acked) {
        const man = await getJson<{ cid: string; segments: { shards: { cid: string }[] }[] }>(
          api(devnet.nodes[0] as DevnetNode),
          `/files/${f.cid}/manifest`,
        )
        blocks.set(f.cid, [man.cid, ...man.segments.flatMap((sg) => sg.shards.map((s) => s.cid))])
        for (const seg of man.segments) if (seg.shards.some((s) => (where.get(s.cid) ?? 0) === 0)) unhealthy++
      }
      r.unhealthySegments = unhealthy
      if (unhealthy === 0 || Date.now() > healDeadline) break
      await new Promise((res) => setTimeout(res, 2_000))
    }
    o.log(`unhealthy segments after healing: ${r.unhealthySegments}`)

    // Every acknowledged file reads back byte-identical.
    for (const f of acked) {
      const out = join(dir, 'final.bin')
      try {
        const from = pick(alive())
        await honest(() =>
          getFile(api(from), f.cid, out, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }),
        )
        if ((await sha256File(out)) !== f.sha) throw new Error('bytes differ')
      } catch (err) {
        r.unreadable++
        o.log(`final read of ${f.cid} failed: ${(err as Error).message}`)
      }
      await rm(out, { force: true })
    }
    for (const n of alive()) {
      const text = await (await fetch(`${n.api}/metrics`)).text()
      const m = /nodus_storage_repairs_total\{state="finished"\} (\d+)/.exec(text)
      r.repairs += Number(m?.[1] ?? 0)
    }
    r.files = acked.length
    r.ok = r.unreadable === 0 && r.unhealthySegments === 0 && acked.length > 0
    if (hostile !== undefined) {
      await logStanding(alive(), hostile.peerId as string, o.log)
      await hostile.stop()
      // The nodes' LMDB environments are read once the nodes have stopped.
      await devnet.stop()
      r.hostile = await hostileResult(hostile, devnet, acked, blocks, fair, o.log)
      r.ok &&=
        r.hostile.unexpectedAccepted === 0 &&
        r.hostile.honestRefusedLongestSeconds <= r.hostile.honestRefusedBoundSeconds
    }
    return r
  } finally {
    r.seconds = Math.round((performance.now() - started) / 100) / 10
    await hostile?.stop()
    await net?.stop()
    if (o.keep) o.log(`kept ${base}`)
    else await rm(base, { recursive: true, force: true })
  }
}

/** A devnet node as the hostile peer sees it; `alive` stays false once this process of it exits. */
function hostileTarget(n: DevnetNode): HostileTarget {
  const proc = n.proc
  return {
    index: n.index,
    peerId: n.peerId,
    pid: proc.pid ?? 0,
    multiaddrs: n.multiaddrs,
    api: n.api,
    alive: () => n.alive && n.proc === proc,
  }
}

/** The hostile run's result: the attack counts, the after-run holder-state check, fair service. */
async function hostileResult(
  hostile: HostilePeer,
  devnet: Devnet,
  acked: readonly { cid: string }[],
  blocks: ReadonlyMap<string, string[]>,
  fair: RefusalStretch,
  log: (msg: string) => void,
): Promise<HostileResult> {
  const peerId = hostile.peerId as string
  const state = await checkHolderState({
    nodes: devnet.nodes.map((n) => ({ index: n.index, peerId: n.peerId, dataDir: n.dataDir })),
    hostile: peerId,
    files: acked.map((f) => ({ manifest: f.cid, blocks: blocks.get(f.cid) ?? [f.cid] })),
    provisional: hostile.provisional,
    leaseMs: HOSTILE_TERMS.leaseMs,
    maxLeaseMs: HOSTILE_TERMS.maxLeaseMs,
    provisionalLeaseMs: HOSTILE_TERMS.provisionalLeaseMs,
    maxQuotaBytes: HOSTILE_TERMS.quotaBytes * HOSTILE_TERMS.quotaTrustMultiplier,
    nowMs: Date.now(),
  })
  const attacks = hostile.counts()
  const { problems, hostileHeld, ...holderState } = state
  const unexpectedAccepted =
    Object.values(attacks).reduce((sum, c) => sum + c.unexpected, 0) + holderStateFailures(state)
  log(`hostile peer ${peerId}:`)
  for (const line of hostile.summary()) log(`  ${line}`)
  log(`  holder state: ${JSON.stringify(holderState)}`)
  log(
    `  bytes the hostile peer holds, by node: ${hostileHeld.map((h) => `${h.index}: ${h.bytes}`).join(', ')}`,
  )
  for (const p of problems) log(`  DEFENCE FAILED: ${p}`)
  log(
    `  honest requests refused for want of service: ${fair.refused}, longest stretch ${fair.longestSeconds} s (bound ${REQUEST_TIMEOUT_MS / 1000} s)`,
  )
  return {
    peerId,
    attacks,
    holderState,
    unexpectedAccepted,
    honestRefused: fair.refused,
    honestRefusedLongestSeconds: fair.longestSeconds,
    honestRefusedBoundSeconds: REQUEST_TIMEOUT_MS / 1000,
  }
}

/**
 * Log how each live node rates the hostile peer: its EigenTrust score there and the trust t ∈ [0, 1]
 * that scales its quota by `1 + (quotaTrustMultiplier − 1) × t` (t = score × (peers + 1) / 4, as
 * src/node/node.ts computes it; the hostile run sets the multiplier to 1).
 */
async function logStanding(
  nodes: readonly DevnetNode[],
  peerId: string,
  log: (msg: string) => void,
): Promise<void> {
  const seen: string[] = []
  for (const n of nodes) {
    try {
      const { peers } = await getJson<{ peers: { peerId: string; trust: number }[] }>(
        { url: n.api, token: n.token },
        '/network/peers',
        AbortSignal.timeout(10_000),
      )
      const score = peers.find((p) => p.peerId === peerId)?.trust
      if (score === undefined) continue
      const t = Math.min(1, (score * (new Set(peers.map((p) => p.peerId)).size + 1)) / 4)
      seen.push(`${n.index}: ${score.toFixed(4)} (t ${t.toFixed(2)})`)
    } catch {
      // a node that does not answer is left out
    }
  }
  log(
    `trust in the hostile peer (EigenTrust score, t), by node: ${seen.join(', ') || 'not connected to any'}`,
  )
}
