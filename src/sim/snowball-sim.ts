/**
 * `nodus sim consensus --protocol snowball`: Snowball (Team Rocket, Yin, Sekniqi, van Renesse, Sirer,
 * "Scalable and Probabilistic Leaderless BFT Consensus through Metastability", arXiv 1906.08936, §2,
 * Figure 3) with avalanchego's published parameters (snow/consensus/snowball/parameters.go,
 * DefaultParameters: K 20, AlphaPreference 15, AlphaConfidence 15, Beta 20, ConcurrentRepolls 4), over
 * the same simulated network as the Mysticeti run (consensus-net.ts): latency, loss, reordering,
 * partitions, crashes, late joiners.
 *
 * The decisions: a stream of conflict sets, each two transactions spending the same funds (a double
 * spend), submitted at one time from two random validators; a validator prefers the one that reaches it
 * first (or, when it first hears of the conflict in a query, the querier's preference). Each decision
 * is binary Snowball, as avalanchego's binary snowball and snowflake:
 * - a poll samples K validators with replacement (avalanchego samples K units of stake without
 *   replacement; with equal, large stakes that is sampling validators with replacement; a validator
 *   sampled twice answers once and counts twice; a node may sample itself), asking about every
 *   undecided conflict at once; it ends when every answer is in or after `pollTimeoutMs` (a missing
 *   answer is no vote);
 * - per conflict, the value c with most votes: with ≥ alphaPreference votes its preference strength
 *   grows and the preference moves to the stronger value; with ≥ alphaConfidence votes the confidence
 *   grows (restarts at 1 if c changed), else it resets to 0; at confidence ≥ beta the node finalizes c.
 * - Byzantine validators (the lowest indices) answer every query with the querier's own current
 *   preference, to lock honest validators into the split the network started with (an attack on
 *   safety), and never poll.
 * Finality: from submission until every correct validator (honest, never down, started at 0) finalized.
 * A safety violation: a conflict that two honest validators finalized differently.
 */
import type { NetOptions, OutageSpec } from './consensus-net.ts'
import { SimNet } from './consensus-net.ts'
import type { ProtocolReport } from './consensus-workload.ts'
import { Rng } from './rng.ts'
import { percentile, round } from './stats.ts'

/** avalanchego's default Snowball parameters (snow/consensus/snowball/parameters.go). */
export const AVALANCHEGO_SNOWBALL = Object.freeze({
  k: 20,
  alphaPreference: 15,
  alphaConfidence: 15,
  beta: 20,
  concurrentPolls: 4,
})

/** What a Snowball run simulates. */
export interface SnowballSimOptions extends Omit<NetOptions, 'n'> {
  validators: number
  seed: number
  durationMs: number
  drainMs: number
  byzantine: number
  crashes: OutageSpec[]
  late: OutageSpec[]
  /** Conflict sets submitted per simulated second (Poisson). */
  txPerSecond: number
  k: number
  alphaPreference: number
  alphaConfidence: number
  beta: number
  concurrentPolls: number
  /** A poll ends after this long even if answers are missing, ms. */
  pollTimeoutMs: number
}

type Msg =
  | { t: 'learn'; id: number; value: number }
  | { t: 'query'; poll: number; ids: Int32Array; weight: number }
  | { t: 'answer'; poll: number; prefs: Int8Array; weight: number }
  | { t: 'timeout'; poll: number }
  | { t: 'submit' }
  | { t: 'up'; node: number; up: boolean }

interface Poll {
  ids: Int32Array
  /** votes[2·j + v]: votes for value v of conflict ids[j]. */
  votes: Int32Array
  waiting: number
}

interface Choice {
  pref: number
  /** Successful polls per value (Snowball's d[v]). */
  strength: Int32Array
  last: number
  confidence: number
  decided: number
}

interface Node {
  honest: boolean
  correct: boolean
  /** conflict id → state. */
  choices: Map<number, Choice>
  polls: Map<number, Poll>
}

/** Run Snowball (module doc). */
export function runSnowballSim(o: SnowballSimOptions): ProtocolReport {
  const rng = new Rng(o.seed, 1906)
  const net = new SimNet<Msg>({ ...o, n: o.validators }, rng.fork(3))
  const r = rng.fork(2)
  const n = o.validators
  const nodes: Node[] = Array.from({ length: n }, (_, i) => ({
    honest: i >= o.byzantine,
    correct: i >= o.byzantine,
    choices: new Map(),
    polls: new Map(),
  }))
  let top = n - 1
  const late = new Set<number>()
  for (const [specs, isLate] of [
    [o.crashes, false],
    [o.late, true],
  ] as const)
    for (const s of specs)
      for (let c = 0; c < s.count; c++, top--) {
        const node = nodes[top]
        if (node === undefined || !node.honest) throw new RangeError('more outages than honest validators')
        node.correct = false
        if (isLate) late.add(top)
        net.control(s.fromMs, { t: 'up', node: top, up: isLate })
        if (!isLate && s.toMs !== undefined) net.control(s.toMs, { t: 'up', node: top, up: true })
      }
  const correct = nodes.filter((x) => x.correct).length
  const submittedAt: number[] = []
  const decidedBy: number[] = []
  const values: number[][] = []
  const finalityMs: number[] = []
  let violations = 0
  let pollSeq = 0
  let lastFinalAt = 0

  const decide = (i: number, id: number, c: Choice, value: number) => {
    c.decided = value
    const node = nodes[i] as Node
    if (!node.honest) return
    const vs = values[id] ?? []
    values[id] = vs
    if (vs.length > 0 && !vs.includes(value)) violations++
    if (!vs.includes(value)) vs.push(value)
    if (!node.correct) return
    decidedBy[id] = (decidedBy[id] ?? 0) + 1
    if (decidedBy[id] === correct) {
      finalityMs.push(net.now - (submittedAt[id] as number))
      lastFinalAt = net.now
    }
  }

  const learn = (i: number, id: number, value: number): Choice => {
    const node = nodes[i] as Node
    let c = node.choices.get(id)
    if (c === undefined) {
      c = { pref: value, strength: new Int32Array(2), last: -1, confidence: 0, decided: -1 }
      node.choices.set(id, c)
    }
    return c
  }

  const startPolls = (i: number) => {
    const node = nodes[i] as Node
    if (!node.honest || net.up[i] !== true) return
    while (node.polls.size < o.concurrentPolls) {
      const open: number[] = []
      for (const [id, c] of node.choices) if (c.decided < 0) open.push(id)
      if (open.length === 0) return
      const ids = Int32Array.from(open)
      const weights = new Map<number, number>()
      for (let s = 0; s < o.k; s++) {
        const peer = r.nextInt(n)
        weights.set(peer, (weights.get(peer) ?? 0) + 1)
      }
      const poll: Poll = { ids, votes: new Int32Array(2 * ids.length), waiting: weights.size }
      const id = pollSeq++
      node.polls.set(id, poll)
      for (const [peer, weight] of weights) {
        if (peer === i) {
          poll.waiting--
          for (let j = 0; j < ids.length; j++) {
            const c = node.choices.get(ids[j] as number) as Choice
            ;(poll.votes[2 * j + c.pref] as number) += weight
          }
        } else net.send(i, peer, { t: 'query', poll: id, ids, weight })
      }
      net.timer(i, net.now + o.pollTimeoutMs, { t: 'timeout', poll: id })
      if (poll.waiting === 0) finish(i, id)
    }
  }

  const finish = (i: number, pollId: number) => {
    const node = nodes[i] as Node
    const poll = node.polls.get(pollId)
    if (poll === undefined) return
    node.polls.delete(pollId)
    for (let j = 0; j < poll.ids.length; j++) {
      const id = poll.ids[j] as number
      const c = node.choices.get(id)
      if (c === undefined || c.decided >= 0) continue
      const v0 = poll.votes[2 * j] as number
      const v1 = poll.votes[2 * j + 1] as number
      const v = v1 > v0 ? 1 : 0
      const count = Math.max(v0, v1)
      if (count >= o.alphaPreference) {
        const s = ++(c.strength[v] as number)
        if (s > (c.strength[1 - v] as number)) c.pref = v
      }
      if (count >= o.alphaConfidence) {
        c.confidence = c.last === v ? c.confidence + 1 : 1
        c.last = v
        if (c.confidence >= o.beta) decide(i, id, c, v)
      } else c.confidence = 0
    }
    startPolls(i)
  }

  const submit = () => {
    net.control(net.now + r.nextExp(o.txPerSecond / 1000), { t: 'submit' })
    if (net.now >= o.durationMs) return
    const id = submittedAt.length
    submittedAt.push(net.now)
    const a = r.nextInt(n)
    const b = r.nextInt(n)
    for (let i = 0; i < n; i++) {
      net.send(a, i, { t: 'learn', id, value: 0 })
      net.send(b, i, { t: 'learn', id, value: 1 })
    }
  }

  for (const i of late) net.setUp(i, false)
  net.control(r.nextExp(o.txPerSecond / 1000), { t: 'submit' })
  const endMs = o.durationMs + o.drainMs
  for (;;) {
    const e = net.next(endMs)
    if (e === undefined) break
    const m = e.msg
    if (m.t === 'submit') {
      submit()
      continue
    }
    if (m.t === 'up') {
      net.setUp(m.node, m.up)
      if (m.up) startPolls(m.node)
      else (nodes[m.node] as Node).polls.clear()
      continue
    }
    const i = e.to
    const node = nodes[i] as Node
    if (m.t === 'learn') {
      learn(i, m.id, m.value)
      startPolls(i)
    } else if (m.t === 'query') {
      const prefs = new Int8Array(m.ids.length)
      const querier = nodes[e.from] as Node
      for (let j = 0; j < m.ids.length; j++) {
        const id = m.ids[j] as number
        // Byzantine: the querier's own preference; honest: its own (learning the conflict if new).
        const q = querier.choices.get(id)
        const c = node.honest ? learn(i, id, q?.pref ?? 0) : q
        prefs[j] = c === undefined ? -1 : c.decided >= 0 ? c.decided : c.pref
      }
      net.send(i, e.from, { t: 'answer', poll: m.poll, prefs, weight: m.weight })
      if (node.honest) startPolls(i)
    } else if (m.t === 'answer') {
      const poll = node.polls.get(m.poll)
      if (poll === undefined) continue
      const w = m.weight
      for (let j = 0; j < poll.ids.length; j++) {
        const v = m.prefs[j] as number
        if (v >= 0) (poll.votes[2 * j + v] as number) += w
      }
      if (--poll.waiting === 0) finish(i, m.poll)
    } else if (m.t === 'timeout') finish(i, m.poll)
  }

  const simulatedMs = Math.min(net.now, endMs)
  const workloadSeconds = Math.min(simulatedMs, o.durationMs) / 1000
  const final = finalityMs.length
  const stallMs = Math.max(2_000, 4 * o.pollTimeoutMs)
  const undecided = submittedAt.length - final
  return {
    protocol: 'snowball',
    validators: n,
    byzantine: o.byzantine,
    simulatedMs: round(simulatedMs, 0),
    p50FinalityMs: final === 0 ? null : round(percentile(finalityMs, 50), 1),
    p99FinalityMs: final === 0 ? null : round(percentile(finalityMs, 99), 1),
    commits: final,
    submittedTxs: submittedAt.length,
    committedTxs: final,
    committedTxsPerSecond: workloadSeconds > 0 ? round(final / workloadSeconds, 1) : 0,
    safetyViolations: violations,
    halted: submittedAt.length === 0 || (undecided > 0 && simulatedMs - lastFinalAt > stallMs),
    stateRootsEqual: null,
    details: {
      parameters: {
        k: o.k,
        alphaPreference: o.alphaPreference,
        alphaConfidence: o.alphaConfidence,
        beta: o.beta,
      },
      conflicts: submittedAt.length,
      undecidedAtEnd: undecided,
      polls: pollSeq,
      net: { ...net.stats },
    },
  }
}
