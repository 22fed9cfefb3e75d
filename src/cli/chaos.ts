/**
 * `nodus chaos`: a devnet of node processes under continuous put and get load, with random SIGKILLs
 * and restarts and one wiped data directory; at the end every acknowledged file must read back
 * byte-identical and repair must have brought every segment back to k+m healthy shards.
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
  log: (msg: string) => void
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
}

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
  let net: Devnet | undefined
  try {
    o.log(`seed ${o.seed}; starting ${o.nodes} nodes in ${base}`)
    net = await Devnet.start({
      nodes: o.nodes,
      baseDir: base,
      basePort: 0,
      logLevel: 'info',
      config: {
        storage: { k: o.k, m: o.m, segmentSize: 1024 * 1024, manifestReplicas: 4 },
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
        const res = await putFile(api(devnet.nodes[0] as DevnetNode), f, {
          signal: AbortSignal.timeout(60_000),
        })
        acked.push({ cid: res.cid, sha: sha256(bytes), bytes: size })
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
          await getFile(api(from), want.cid, out, { signal: AbortSignal.timeout(60_000) })
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
        const man = await getJson<{ segments: { shards: { cid: string }[] }[] }>(
          api(devnet.nodes[0] as DevnetNode),
          `/files/${f.cid}/manifest`,
        )
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
        await getFile(api(pick(alive())), f.cid, out, { signal: AbortSignal.timeout(60_000) })
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
    return r
  } finally {
    r.seconds = Math.round((performance.now() - started) / 100) / 10
    await net?.stop()
    if (o.keep) o.log(`kept ${base}`)
    else await rm(base, { recursive: true, force: true })
  }
}
