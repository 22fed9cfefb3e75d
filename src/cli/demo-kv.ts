/**
 * `nodus demo --scenario kv`: the kv area end to end on a devnet of separate node processes.
 *
 * 1. The owner (a key made for the run) creates three databases; `hosts` nodes host all three.
 * 2. Two of the owner's devices write a mix of every value type at once, each through its own node
 *    (`POST /kv/ops`, signed in this process: no node sees the key). Probe writes measure how long a
 *    write takes to be readable on every hosting node.
 * 3. Four hosting nodes stop; the devices keep writing; the four restart and must catch up.
 * 4. Every hosting node must end with identical state (equal op-set fingerprints per database).
 * 5. A write signed by a key the owner never granted, and a replayed write, must both be refused.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { systemClock } from '../common/clock.ts'
import { NodusError } from '../common/errors.ts'
import {
  createArgs,
  ed25519OpSigner,
  encodeOp,
  formatDbId,
  HlcClock,
  type KvValue,
  type Op,
  type OpInput,
} from '../kv/index.ts'
import { type ApiTarget, getJson, postJson } from './client.ts'
import { apiOf, checkWhole, quantile, type ScenarioDevnetOptions, until, withDevnet } from './demo-devnet.ts'
import type { Devnet } from './devnet.ts'

export interface KvDemoOptions extends ScenarioDevnetOptions {
  /** Nodes hosting the three databases (nodes 0 … hosts−1). Default 8. */
  hosts: number
  /** Ops written by the two devices together, before and while nodes are down. Default 3000. */
  ops: number
  /** Hosting nodes stopped and restarted. Default 4. */
  stop: number
  /** Ops per POST /kv/ops. Default 50. */
  batch: number
}

export const KV_DEMO_DEFAULTS = { nodes: 16, hosts: 8, ops: 3000, stop: 4, batch: 50 } as const

export interface KvDemoResult {
  ok: boolean
  scenario: 'kv'
  nodes: number
  hosts: number
  databases: number
  /** Ops applied (creates, writes, probes). */
  ops: number
  /** Ops applied ÷ seconds of writing, both devices together (signing here, HTTP, the node's apply). */
  writesPerSecond: number
  /** p99 of the time from a probe write's answer to its value readable on every live hosting node. */
  p99ConvergenceMs: number
  /** Time from the restarted nodes being up to identical fingerprints on every hosting node. */
  catchUpMs: number
  /** Most reconciliation messages a restarted node sent in its last sync of a database. */
  catchUpRoundTrips: number
  /** Most reconciliation bytes (both ways) of such a sync. */
  catchUpBytes: number
  converged: boolean
  unauthorizedRefused: boolean
  replayRefused: boolean
  seconds: number
}

interface OpResult {
  id?: string
  status: string
  code?: string
}

interface DbStatus {
  ops: number
  fingerprint: string
  lastSync?: { rounds: number; reconBytes: number; fetched: number }
}

/** Validate before anything starts. Throws INVALID_ARGUMENT. */
export function checkKvDemoOptions(o: KvDemoOptions): void {
  checkWhole('nodes', o.nodes, 3)
  checkWhole('hosts', o.hosts, 2)
  checkWhole('ops', o.ops, 10)
  checkWhole('stop', o.stop, 0)
  checkWhole('batch', o.batch, 1)
  if (o.hosts > o.nodes) throw new NodusError('INVALID_ARGUMENT', '--hosts must be at most --nodes')
  if (o.stop > o.hosts - 2)
    throw new NodusError('INVALID_ARGUMENT', '--stop must leave the two writing hosts running')
}

/** A device of the owner: its key, its own HLC, the node it writes through. */
class Device {
  readonly #hlc = new HlcClock({ clock: systemClock }, { maxFutureSkewMs: 60_000 })
  readonly key: Ed25519PrivateKey
  readonly api: ApiTarget

  constructor(key: Ed25519PrivateKey, api: ApiTarget) {
    this.key = key
    this.api = api
  }

  sign(input: Omit<OpInput, 'hlc'>): Promise<Op> {
    return encodeOp({ ...input, hlc: this.#hlc.now() }, ed25519OpSigner(this.key))
  }

  async submit(ops: Op[]): Promise<OpResult[]> {
    const r = await postJson<{ results: OpResult[] }>(this.api, '/kv/ops', {
      ops: ops.map((op) => Buffer.from(op.bytes).toString('base64')),
    })
    return r.results
  }
}

/** The i-th op of the mix: every value type, over a few keys each. */
function mixed(db: string, i: number): Omit<OpInput, 'hlc'> {
  const kind = i % 9
  const k = (p: string, n: number): string => `${p}:${i % n}`
  const base = { db }
  if (kind === 0) return { ...base, type: 'string', op: 'set', key: k('s', 50), args: [`value ${i}`] }
  if (kind === 1)
    return { ...base, type: 'hash', op: 'hset', key: k('h', 10), field: `f${i % 20}`, args: [i] }
  if (kind === 2) return { ...base, type: 'list', op: 'rpush', key: k('l', 5), args: [`item ${i}`] }
  if (kind === 3) return { ...base, type: 'set', op: 'sadd', key: k('set', 5), args: [`m${i % 30}`] }
  if (kind === 4) return { ...base, type: 'zset', op: 'zadd', key: k('z', 5), args: [i, `m${i % 40}`] }
  if (kind === 5)
    return {
      ...base,
      type: 'json',
      op: 'json.set',
      key: k('j', 5),
      args: [{ n: i, tags: ['a', 'b'] } as KvValue],
    }
  if (kind === 6) return { ...base, type: 'stream', op: 'xadd', key: k('x', 3), args: ['*', 'n', i] }
  if (kind === 7) return { ...base, type: 'ts', op: 'ts.add', key: k('t', 3), args: ['*', i / 10] }
  return {
    ...base,
    type: 'geo',
    op: 'geoadd',
    key: 'places',
    args: [13 + (i % 100) / 100, 38 + (i % 50) / 100, `p${i % 60}`],
  }
}

/** Run the scenario. Resolves with the result (`ok` false when anything diverged); throws on setup errors. */
export async function runKvDemo(o: KvDemoOptions): Promise<KvDemoResult> {
  checkKvDemoOptions(o)
  const t0 = Date.now()
  return await withDevnet(o, 'nodus-demo-kv-', async (net, signal) => {
    const owner = (await generateKeyPair('Ed25519')) as Ed25519PrivateKey
    const dbs = ['sensors', 'profiles', 'chat'].map((n) => formatDbId(n, owner.publicKey.raw))
    const node = (i: number) => net.nodes[i] as Devnet['nodes'][number]
    const devices = [new Device(owner, apiOf(node(0))), new Device(owner, apiOf(node(1)))]
    const [a, b] = devices as [Device, Device]
    let applied = 0
    const submit = async (d: Device, ops: Op[]): Promise<void> => {
      const results = await d.submit(ops)
      for (const r of results) {
        if (r.status === 'applied') applied++
        else throw new NodusError('PROTOCOL_ERROR', `a write was not applied: ${r.code ?? r.status}`)
      }
    }

    // 1. Create and host.
    await submit(
      a,
      await Promise.all(
        dbs.map((db) => a.sign({ db, type: 'db', op: 'create', key: '', args: createArgs() })),
      ),
    )
    const hosts = net.nodes.slice(0, o.hosts)
    for (const h of hosts) for (const db of dbs) await postJson(apiOf(h), `/kv/${db}/host`, {})
    o.log(`${dbs.length} databases created; nodes 0…${o.hosts - 1} host them`)

    // Probes: a write, then the time until every live host reads it.
    const probeMs: number[] = []
    let probes = 0
    const probe = async (d: Device): Promise<void> => {
      const n = probes++
      const db = dbs[n % dbs.length] as string
      await submit(d, [await d.sign({ db, type: 'string', op: 'set', key: `probe:${n}`, args: [n] })])
      const t = Date.now()
      const live = hosts.filter((h) => h.alive)
      const seen = await until(
        async () => {
          for (const h of live) {
            const r = await fetch(`${h.api}/kv/${db}/probe:${n}`, { signal })
            if (r.status !== 200) return false
            await r.arrayBuffer()
          }
          return true
        },
        30_000,
        20,
      )
      if (seen) probeMs.push(Date.now() - t)
      o.log(`probe ${n}: ${seen ? `${Date.now() - t} ms to every live host` : 'not everywhere within 30 s'}`)
    }

    // 2. and 3. Two devices write at once; probes along the way; stop hosts midway.
    let writeMs = 0
    const writePhase = async (count: number, from: number): Promise<void> => {
      const t = Date.now()
      await Promise.all(
        devices.map(async (d, di) => {
          for (let i = from + di; i < from + count; ) {
            const ops: Op[] = []
            for (let j = 0; j < o.batch && i < from + count; j++, i += 2)
              ops.push(await d.sign(mixed(dbs[i % dbs.length] as string, i)))
            await submit(d, ops)
          }
        }),
      )
      writeMs += Date.now() - t
      for (let p = 0; p < 5; p++) await probe(devices[p % 2] as Device)
    }
    const half = Math.floor(o.ops / 2)
    await writePhase(half, 0)
    o.log(`wrote ${half} ops from two devices`)
    const stopped = hosts.slice(2, 2 + o.stop)
    for (const h of stopped) await net.stopNode(h.index)
    o.log(`stopped hosting nodes ${stopped.map((h) => h.index).join(', ')}; writing on`)
    await writePhase(o.ops - half, half)
    await Promise.all(stopped.map((h) => net.restart(h.index)))
    // Catch-up is timed from when the restarted processes are up (their start-up is not the sync's).
    const tRestart = Date.now()
    o.log(`restarted them; waiting for every host to hold identical state`)

    // 4. Convergence: every hosting node, every database, one fingerprint.
    const statuses = async (): Promise<Map<string, DbStatus[]>> => {
      const out = new Map<string, DbStatus[]>()
      for (const db of dbs)
        out.set(db, await Promise.all(hosts.map((h) => getJson<DbStatus>(apiOf(h), `/kv/${db}`, signal))))
      return out
    }
    const converged = await until(
      async () =>
        [...(await statuses()).values()].every((ss) => ss.every((s) => s.fingerprint === ss[0]?.fingerprint)),
      120_000,
      250,
    )
    const catchUpMs = Date.now() - tRestart
    const final = await statuses()
    let catchUpRoundTrips = 0
    let catchUpBytes = 0
    for (const ss of final.values()) {
      for (const h of stopped) {
        const s = ss[hosts.indexOf(h)]
        catchUpRoundTrips = Math.max(catchUpRoundTrips, s?.lastSync?.rounds ?? 0)
        catchUpBytes = Math.max(catchUpBytes, s?.lastSync?.reconBytes ?? 0)
      }
    }
    o.log(
      converged
        ? `every host holds identical state after ${catchUpMs} ms`
        : 'hosts did NOT converge within 120 s',
    )

    // 5. An unauthorized write and a replayed one.
    const before = final.get(dbs[0] as string)?.[0]?.fingerprint
    const stranger = new Device((await generateKeyPair('Ed25519')) as Ed25519PrivateKey, apiOf(node(0)))
    const [denied] = await stranger.submit([
      await stranger.sign({ db: dbs[0] as string, type: 'string', op: 'set', key: 's:0', args: ['defaced'] }),
    ])
    const mid = (await getJson<DbStatus>(apiOf(node(0)), `/kv/${dbs[0]}`, signal)).fingerprint
    const unauthorizedRefused =
      denied?.status === 'refused' && denied.code === 'KV_UNAUTHORIZED' && mid === before
    // A replay: an older write sent again, after a newer one reached the node, to the other node.
    const db0 = dbs[0] as string
    const older = await a.sign({ db: db0, type: 'string', op: 'set', key: 'replayed', args: ['older'] })
    const newer = await a.sign({ db: db0, type: 'string', op: 'set', key: 'replayed', args: ['newer'] })
    await submit(a, [older, newer])
    const read = async (): Promise<unknown> => {
      const r = await fetch(`${node(1).api}/kv/${db0}/replayed`, { signal })
      return r.status === 200 ? ((await r.json()) as { value: unknown }).value : undefined
    }
    await until(async () => (await read()) === 'newer', 30_000, 50)
    const [again] = await b.submit([older])
    const replayRefused = again?.status === 'duplicate' && (await read()) === 'newer'
    o.log(`unauthorized write: ${denied?.code ?? denied?.status}; replayed write: ${again?.status}`)

    probeMs.sort((x, y) => x - y)
    const ok = converged && unauthorizedRefused && replayRefused && probeMs.length === probes
    return {
      ok,
      scenario: 'kv',
      nodes: o.nodes,
      hosts: o.hosts,
      databases: dbs.length,
      ops: applied,
      writesPerSecond: Math.round((applied / Math.max(1, writeMs)) * 1000),
      p99ConvergenceMs: quantile(probeMs, 0.99),
      catchUpMs,
      catchUpRoundTrips,
      catchUpBytes,
      converged,
      unauthorizedRefused,
      replayRefused,
      seconds: Math.round((Date.now() - t0) / 100) / 10,
    }
  })
}
