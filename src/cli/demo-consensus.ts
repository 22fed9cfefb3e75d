/**
 * `nodus demo --scenario consensus`: agreement end to end (issue 21) on a devnet of validator processes.
 *
 * 1. Every node is a validator of a genesis built by `nodus genesis devnet`'s path ({@link writeDevnetGenesis}).
 * 2. `senders` nodes sign mana transfers with their own keys (and extra genesis accounts, one per
 *    25 tx/s offered: {@link demoAccounts}) and submit them through themselves at
 *    a steady offered `rate` (tx/s) for `seconds`; every node that is never killed follows
 *    `GET /ledger/commits`.
 * 3. A third of the way in, `kill` validators (the last ones; f = ⌊(n−1)/3⌋ at most) are SIGKILLed;
 *    submission goes on; two thirds in they restart.
 * 4. Checks: every accepted transaction committed exactly once (applied, at every watched node), and
 *    every node, the restarted ones too, has the same state root at a common height.
 * Finality: from a transaction's submission to its commit seen at every never-killed node.
 */
import { dirname, join } from 'node:path'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { isNodusError, NodusError } from '../common/errors.ts'
import { loadIdentity } from '../crypto/index.ts'
import { type ApiTarget, getJson } from './client.ts'
import { CommitWatch, TxLoad } from './consensus-load.ts'
import {
  apiOf,
  checkWhole,
  quantile,
  type ScenarioDevnetOptions,
  sleep,
  until,
  withDevnet,
} from './demo-devnet.ts'
import { writeDevnetGenesis } from './genesis.ts'

export interface ConsensusDemoOptions extends ScenarioDevnetOptions {
  /** Offered transactions per second, all senders together. Default 200. */
  rate: number
  /** Seconds of submission. Default 30. */
  seconds: number
  /** Validators SIGKILLed a third of the way in and restarted two thirds in. Default 3 (f of 10). */
  kill: number
  /** Nodes whose keys sign and submit (nodes 0 … senders−1). Default 4. */
  senders: number
  /** The genesis's round timeout, ms (how long a crashed leader's slot waits). Default 300. */
  roundTimeoutMs: number
}

export const CONSENSUS_DEMO_DEFAULTS = {
  nodes: 10,
  rate: 200,
  seconds: 30,
  kill: 3,
  senders: 4,
  roundTimeoutMs: 300,
} as const

export interface ConsensusDemoResult {
  ok: boolean
  scenario: 'consensus'
  validators: number
  killed: number
  /** Transactions accepted by a node (`POST /ledger/tx` answered 200). */
  txAccepted: number
  /** Accepted transactions committed exactly once, applied, at every never-killed node. */
  txCommitted: number
  /** Accepted transactions per second of submission. */
  acceptedPerSecond: number
  p50FinalityMs: number
  p99FinalityMs: number
  /** The height every node reached and compared at. */
  height: number
  /** The state root every node has at `height` (hex), or '' when they differ. */
  stateRoot: string
  seconds: number
}

/** Validate before anything starts. Throws INVALID_ARGUMENT. */
export function checkConsensusDemoOptions(o: ConsensusDemoOptions): void {
  checkWhole('nodes', o.nodes, 4)
  checkWhole('rate', o.rate, 1)
  checkWhole('seconds', o.seconds, 3)
  checkWhole('kill', o.kill, 0)
  checkWhole('senders', o.senders, 1)
  checkWhole('round-timeout-ms', o.roundTimeoutMs, 10)
  const f = Math.floor((o.nodes - 1) / 3)
  if (o.kill > f)
    throw new NodusError(
      'INVALID_ARGUMENT',
      `--kill ${o.kill}: ${o.nodes} validators tolerate f = ${f} crashed (n = 3f+1); more would stop commits`,
    )
  if (o.senders > o.nodes - o.kill)
    throw new NodusError('INVALID_ARGUMENT', '--senders must be nodes that are never killed')
}

/**
 * A devnet's `genesis` hook (every node a validator, large mana balances) writing `genesis.json` next to
 * the data directories; what both the demo and bench/consensus.bench.ts use.
 */
export function federationGenesis(
  roundTimeoutMs: number,
  accounts: Uint8Array[] = [],
  hybrid = false,
): (dirs: string[]) => Promise<string> {
  return async (dirs) =>
    (
      await writeDevnetGenesis({
        dirs,
        accounts,
        out: join(dirname(dirs[0] as string), 'genesis.json'),
        roundTimeoutMs,
        hybrid,
        // Enough for a long run of 1-mana transfers, and room in the recipient's capacity.
        balance: 100_000_000,
        capacity: 1_000_000_000,
      })
    ).out
}

/**
 * Extra sender accounts, deterministic (Ed25519 keys from seeds 1…n): each account keeps at most 30
 * nonces open (the ledger's window), so a load of r tx/s needs about r × finality ÷ 30 accounts.
 */
export async function extraSenderKeys(n: number): Promise<Ed25519PrivateKey[]> {
  return await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const seed = new Uint8Array(32).fill(0x21)
      new DataView(seed.buffer).setUint32(0, i + 1)
      return generateKeyPairFromSeed('Ed25519', seed)
    }),
  )
}

/** Accounts a demo of `rate` tx/s signs with: one per 25 tx/s offered, at least one per sender node. */
export const demoAccounts = (rate: number, senders: number): number => Math.max(senders, Math.ceil(rate / 25))

/** The Ed25519 public key (32 bytes) of the node whose data directory is `dataDir`. */
async function accountKey(dataDir: string): Promise<Uint8Array> {
  return (await loadIdentity(dataDir)).ed25519.publicKey.raw
}

/** The root every node in `nodes` has at `height`, or undefined when they differ or one lacks it. */
export async function commonRoot(apis: ApiTarget[], height: number): Promise<string | undefined> {
  const roots = await Promise.all(
    apis.map(async (a) => (await getJson<{ root: string }>(a, `/ledger/roots/${height}`)).root),
  )
  return new Set(roots).size === 1 ? roots[0] : undefined
}

/** Run the scenario. Resolves with the result (`ok` false when anything diverged); throws on setup errors. */
export async function runConsensusDemo(o: ConsensusDemoOptions): Promise<ConsensusDemoResult> {
  checkConsensusDemoOptions(o)
  const t0 = Date.now()
  // Genesis accounts beyond the sender nodes' own, so the offered rate is not capped by 30 open
  // nonces per account; each signs through one of the sender nodes.
  const extra = await extraSenderKeys(demoAccounts(o.rate, o.senders) - o.senders)
  return await withDevnet(
    {
      ...o,
      genesis: federationGenesis(
        o.roundTimeoutMs,
        extra.map((k) => k.publicKey.raw),
      ),
    },
    'nodus-demo-consensus-',
    async (net, signal) => {
      const victims = net.nodes.slice(o.nodes - o.kill).map((n) => n.index)
      const honest = net.nodes.filter((n) => !victims.includes(n.index))
      const watch = new CommitWatch()
      await Promise.all(honest.map((n) => watch.follow(n.index, apiOf(n), signal)))
      o.log(`${honest.length} never-killed nodes followed; commits flowing`)
      const own = await Promise.all(
        net.nodes.slice(0, o.senders).map(async (n) => ({
          index: n.index,
          api: apiOf(n),
          key: (await loadIdentity(n.dataDir)).ed25519 as Ed25519PrivateKey,
        })),
      )
      const more = extra.map((key, i) => ({ ...(own[i % own.length] as (typeof own)[number]), key }))
      const load = await TxLoad.open(
        [...own, ...more],
        // To the last validator's account (a genesis account: a new one would have no capacity).
        await accountKey(net.nodes[o.nodes - 1]?.dataDir as string),
        watch,
        { rate: o.rate },
      )
      const ms = o.seconds * 1000
      const tLoad = Date.now()
      const running = load.run(ms, signal)
      await until(() => Date.now() - tLoad >= ms / 3 || signal.aborted, ms, 50)
      for (const v of victims) {
        await net.kill(v)
        o.log(`SIGKILLed validator ${v}`)
      }
      await until(() => Date.now() - tLoad >= (2 * ms) / 3 || signal.aborted, ms, 50)
      await Promise.all(victims.map((v) => net.restart(v)))
      o.log(`restarted validators ${victims.join(', ')}`)
      await running
      const submitSeconds = (Date.now() - tLoad) / 1000
      o.log(
        `${load.accepted.length} transactions accepted (${load.failures} submissions failed and were resent)`,
      )

      // Every accepted transaction at every never-killed node.
      const all = await until(() => load.accepted.every((s) => watch.everywhere(s.id)), 60_000, 100)
      if (!all) o.log('NOT every accepted transaction committed everywhere within 60 s')
      const finality = load.accepted
        .map((s) => watch.finalityMs(s.id, s.sentAt))
        .filter((x): x is number => x !== undefined)
        .sort((a, b) => a - b)
      const once = load.accepted.filter((s) => watch.exactlyOnce(s.id)).length
      const bad = load.accepted
        .filter((s) => !watch.exactlyOnce(s.id))
        .sort((a, b) => watch.seen(a.id).count - watch.seen(b.id).count)
        .slice(0, 5)
      for (const s of bad) {
        const w = watch.seen(s.id)
        o.log(
          `tx ${s.id.slice(0, 16)}… from node ${s.sender}: ${w.count} appearances at ${w.nodes} nodes, codes [${w.codes.join(', ')}]`,
        )
      }

      // Every node, the restarted too, reaches a height the watched nodes passed, with one root there.
      const target = Math.max(...honest.map((n) => watch.height(n.index)))
      const apis = net.nodes.map((n) => apiOf(n))
      const caughtUp = await until(
        async () =>
          (await Promise.all(apis.map((a) => getJson<{ height: number }>(a, '/ledger', signal)))).every(
            (l) => l.height >= target,
          ),
        120_000,
        250,
      )
      if (!caughtUp) o.log(`NOT every node reached height ${target} within 120 s`)
      // Compare at the lowest height every node now has. A restarted validator that caught up from a
      // snapshot keeps roots only from the snapshot's height on: while one lacks that height
      // (LEDGER_NOT_FOUND), every node moves on (commits go on, idle or not) and the next try is higher.
      let root: string | undefined
      let height = target
      if (caughtUp) {
        const deadline = Date.now() + 60_000
        for (;;) {
          const heights = await Promise.all(
            apis.map((a) => getJson<{ height: number }>(a, '/ledger', signal)),
          )
          height = Math.max(target, Math.min(...heights.map((l) => l.height)))
          try {
            root = await commonRoot(apis, height)
            break
          } catch (err) {
            if (!isNodusError(err, 'LEDGER_NOT_FOUND') || Date.now() > deadline) throw err
            await sleep(250)
          }
        }
      }
      o.log(
        root === undefined
          ? `roots DIFFER at height ${height}`
          : `every node: root ${root} at height ${height}`,
      )
      return {
        ok: all && once === load.accepted.length && root !== undefined && load.accepted.length > 0,
        scenario: 'consensus',
        validators: o.nodes,
        killed: victims.length,
        txAccepted: load.accepted.length,
        txCommitted: once,
        acceptedPerSecond: Math.round(load.accepted.length / submitSeconds),
        p50FinalityMs: Math.round(quantile(finality, 0.5)),
        p99FinalityMs: Math.round(quantile(finality, 0.99)),
        height,
        stateRoot: root ?? '',
        seconds: Math.round((Date.now() - t0) / 100) / 10,
      }
    },
  )
}
