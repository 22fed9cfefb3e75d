/**
 * Agreement on a devnet of validator processes on loopback (issue 21).
 *
 *   node bench/consensus.bench.ts [--quick] [--hybrid]
 *
 * Full: 10 validators (every node a member of a genesis built by `nodus genesis devnet`'s path,
 * round timeout 300 ms). Quick: 4 validators, lower rates, shorter phases. `--hybrid`: the genesis's
 * vertices signed Ed25519 + ML-DSA-65 (signatureMode hybrid).
 * Senders: the 10 nodes' own keys and 40 more genesis accounts (4 per node; quick 8) sign 1-mana
 * transfers and submit them through their node (`POST /ledger/tx`); each keeps at most 30 nonces open
 * (the ledger's window), so the offer is an upper bound.
 * 1. Steady: 500 tx/s offered in all (quick 150) for 20 s (quick 6). Finality of a
 *    transaction = from its submission to its commit seen on `GET /ledger/commits` at every node,
 *    all in the bench's clock; p50 and p99 over every accepted transaction. RSS of every validator
 *    (VmRSS) sampled at the middle and the end of the phase: the largest.
 * 2. Saturation: the same senders offer 5,000 tx/s (quick 1,500) for 15 s (quick 6); committed
 *    tx/s = transactions applied at node 0 between 3 s in and the end, per second (every node
 *    applies the same).
 * The load generator, its signing and its SSE readers share the machine with the validators.
 * Peer: none runnable here (Sui's Mysticeti and Aptos' Narwhal/Bullshark are Rust validators needing
 * their own deployments); the MB/s columns hold the figure the row names. `nodus sim consensus` does
 * not exist on this branch yet, so there is no simulator figure to compare with.
 */

import { getJson } from '../src/cli/client.ts'
import { CommitWatch, TxLoad } from '../src/cli/consensus-load.ts'
import { extraSenderKeys, federationGenesis } from '../src/cli/demo-consensus.ts'
import { apiOf, quantile, sleep, until, withDevnet } from '../src/cli/demo-devnet.ts'
import { procCpuSeconds, procPssBytes, procRssBytes } from '../src/common/proc.ts'
import { loadIdentity } from '../src/crypto/index.ts'
import type { BenchOptions, Row } from './lib.ts'
import { sig } from './lib.ts'

export const description =
  'Agreement on separate validator processes on loopback (issue 21): 10 validators (quick 4), every ' +
  'node a genesis member. Senders: the nodes’ keys and 40 more accounts (quick 8), through their node. ' +
  'Steady: 500 tx/s offered (quick 150); finality = submission to the commit seen at every node (GET /ledger/commits), p50/p99; ' +
  'largest validator RSS. Saturation: 5,000 tx/s offered (quick 1,500); ' +
  'committed tx/s = applied at node 0 per second. The load generator shares the 2 cores. The MB/s ' +
  'columns hold the figure each row names. No runnable peer (Mysticeti/Narwhal are Rust validators ' +
  'with their own deployments); no `nodus sim consensus` on this branch to compare with. Goals: ' +
  'finality p50 ≤ 25 ms, p99 ≤ 100 ms; ≥ 1,500 committed tx/s; RSS < 100 MB per validator.'

const NO_PEER = 'none runnable here (Sui Mysticeti, Aptos Narwhal/Bullshark: Rust, own deployments)'

function row(name: string, value: number, note: string): Row {
  return { name, ours_MBps: sig(value), peer: NO_PEER, peer_MBps: null, ratio: null, note }
}

export async function run({ quick }: BenchOptions): Promise<Row[]> {
  const nodes = quick ? 4 : 10
  const steady = { rate: quick ? 150 : 500, seconds: quick ? 6 : 20 }
  const sat = { rate: quick ? 1500 : 5000, seconds: quick ? 6 : 15, perNode: quick ? 2 : 4 }
  const extra = await extraSenderKeys(nodes * sat.perNode)
  const hybrid = process.argv.includes('--hybrid')
  // `--idle-delay MS`: the validators' consensus.idleRoundDelayMs (default: the node's default).
  const idleArg = process.argv.indexOf('--idle-delay')
  const idleDelay = idleArg < 0 ? undefined : Number(process.argv[idleArg + 1])
  const log = (m: string): void => {
    process.stderr.write(`[consensus bench] ${m}\n`)
  }
  return await withDevnet(
    {
      nodes,
      basePort: 0,
      logLevel: 'warn',
      keep: false,
      log,
      ...(idleDelay === undefined ? {} : { config: { consensus: { idleRoundDelayMs: idleDelay } } }),
      genesis: federationGenesis(
        300,
        extra.map((k) => k.publicKey.raw),
        hybrid,
      ),
    },
    'nodus-bench-consensus-',
    async (net, signal) => {
      const watch = new CommitWatch()
      await Promise.all(net.nodes.map((n) => watch.follow(n.index, apiOf(n), signal)))
      const to = (await loadIdentity(net.nodes[nodes - 1]?.dataDir as string)).ed25519.publicKey.raw
      const own = await Promise.all(
        net.nodes.map(async (n) => ({
          index: n.index,
          api: apiOf(n),
          key: (await loadIdentity(n.dataDir)).ed25519,
        })),
      )
      const more = extra.map((key, i) => {
        const n = net.nodes[i % nodes] as (typeof net.nodes)[number]
        return { index: n.index, api: apiOf(n), key }
      })
      // Every account keeps at most 30 nonces open: enough accounts that the offer is not capped by it.
      const senders = [...own, ...more]

      // The CPU budget: every validator's CPU seconds (/proc) and node 0's highest round, so a phase's
      // cost per round and per transaction shows what bounds it on this machine.
      const cpuAll = (): number =>
        net.nodes.reduce(
          (sum, n) => sum + (n.proc.pid === undefined ? 0 : (procCpuSeconds(n.proc.pid) ?? 0)),
          0,
        )
      const round0 = async (): Promise<number> =>
        (
          await getJson<{ highestRound: number }>(
            apiOf(net.nodes[0] as (typeof net.nodes)[number]),
            '/dag/status',
          )
        ).highestRound
      const budget = async <T>(fn: () => Promise<T>) => {
        const c = cpuAll()
        const r = await round0()
        const t = performance.now()
        const out = await fn()
        const seconds = (performance.now() - t) / 1000
        const rounds = (await round0()) - r
        const cpu = cpuAll() - c
        return { out, seconds, rounds, cpu, cores: cpu / seconds, roundsPerSec: rounds / seconds }
      }

      // 0. Idle: no transactions; what the validators cost and how fast rounds go with nothing to carry.
      const idle = await budget(() => sleep(5000))
      log(
        `idle: ${sig(idle.roundsPerSec)} rounds/s, ${sig(idle.cores)} cores for ${nodes} validators, ${sig((idle.cpu * 1000) / Math.max(1, idle.rounds))} CPU ms per round`,
      )

      // 1. Steady load: finality, RSS and PSS.
      const load = await TxLoad.open(senders, to, watch, { rate: steady.rate })
      const rss: number[] = []
      const pss: number[] = []
      const sampleRss = (): void => {
        for (const n of net.nodes) {
          const b = n.proc.pid === undefined ? undefined : procRssBytes(n.proc.pid)
          if (b !== undefined) rss.push(b / 1e6)
          const p = n.proc.pid === undefined ? undefined : procPssBytes(n.proc.pid)
          if (p !== undefined) pss.push(p / 1e6)
        }
      }
      const sampler = (async () => {
        await sleep((steady.seconds * 1000) / 2)
        sampleRss()
      })()
      const busy = await budget(() => load.run(steady.seconds * 1000, signal))
      const steadySeconds = busy.seconds
      log(
        `steady: ${sig(busy.roundsPerSec)} rounds/s, ${sig(busy.cores)} cores for ${nodes} validators, ${sig((busy.cpu * 1000) / Math.max(1, busy.rounds))} CPU ms per round, ${sig((busy.cpu * 1e6) / Math.max(1, load.accepted.length))} CPU µs per accepted tx`,
      )
      sampleRss()
      await sampler
      await until(() => load.accepted.every((s) => watch.everywhere(s.id)), 60_000, 100)
      const finality = load.accepted
        .map((s) => watch.finalityMs(s.id, s.sentAt))
        .filter((x): x is number => x !== undefined)
        .sort((a, b) => a - b)
      const accepted = load.accepted.length
      const everywhere = finality.length
      log(`steady: ${accepted} accepted, ${everywhere} committed everywhere`)

      // 2. Saturation.
      const satLoad = await TxLoad.open(senders, to, watch, { rate: sat.rate })
      const running = satLoad.run(sat.seconds * 1000, signal)
      await sleep(3000)
      const c0 = watch.appliedTxs.get(0) ?? 0
      const ts = performance.now()
      await running
      const committedPerSec = ((watch.appliedTxs.get(0) ?? 0) - c0) / ((performance.now() - ts) / 1000)
      log(
        `saturation: ${satLoad.accepted.length} accepted, ${Math.round(committedPerSec)} applied/s at node 0`,
      )

      const ctx = `${nodes} validators${hybrid ? ' (hybrid Ed25519 + ML-DSA-65 vertices)' : ''} on loopback, 2-core machine shared with the load generator`
      return [
        row(
          `consensus finality p50, ${steady.rate} tx/s offered (ms)`,
          quantile(finality, 0.5),
          `${ctx}; ${everywhere}/${accepted} transactions committed at every node; ${Math.round(accepted / steadySeconds)} tx/s accepted`,
        ),
        row(`consensus finality p99, ${steady.rate} tx/s offered (ms)`, quantile(finality, 0.99), ctx),
        row(
          `consensus committed tx/s at saturation (${sat.rate} offered)`,
          committedPerSec,
          `${ctx}; ${senders.length} accounts, ≤ 30 open nonces each; ${satLoad.accepted.length} accepted, ${satLoad.failures} submissions refused at the door and resent`,
        ),
        row(
          `consensus validators' CPU, idle (cores, all ${nodes})`,
          idle.cores,
          `${ctx}; ${sig(idle.roundsPerSec)} rounds/s with no transactions; ${sig((idle.cpu * 1000) / Math.max(1, idle.rounds))} CPU ms per round (all validators)`,
        ),
        row(
          `consensus validators' CPU at ${steady.rate} tx/s offered (cores, all ${nodes})`,
          busy.cores,
          `${ctx}; ${sig(busy.roundsPerSec)} rounds/s; ${sig((busy.cpu * 1000) / Math.max(1, busy.rounds))} CPU ms per round, ${sig((busy.cpu * 1e6) / Math.max(1, accepted))} CPU µs per accepted transaction (all validators)`,
        ),
        row(
          'consensus validator PSS at steady state, largest (MB)',
          Math.max(...pss),
          `${ctx}; proportional set size: the node binary's and libraries' pages shared by the ${nodes} processes counted once in all; median ${sig(
            quantile(
              [...pss].sort((a, b) => a - b),
              0.5,
            ),
          )} MB`,
        ),
        row(
          'consensus validator RSS at steady state, largest (MB)',
          Math.max(...rss),
          `${ctx}; median ${sig(
            quantile(
              [...rss].sort((a, b) => a - b),
              0.5,
            ),
          )} MB over ${rss.length} samples`,
        ),
      ]
    },
  )
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await run({ quick: process.argv.includes('--quick') }))
    process.stdout.write(`${JSON.stringify(r)}\n`)
}
