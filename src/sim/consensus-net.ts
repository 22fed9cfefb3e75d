/**
 * The simulated network of `nodus sim consensus`: a discrete-event queue on a simulated clock (ms from
 * the run's start), one-way delays drawn from a latency distribution, message loss, reordering,
 * scheduled partitions and down nodes. Both protocols (Mysticeti-C in consensus-sim.ts, Snowball in
 * snowball-sim.ts) run over it. Every draw comes from one seeded {@link Rng}, and events run one at a
 * time in (time, sequence) order, so a seed gives one run.
 *
 * - Latency (one way, ms): `fixed:MS`, `uniform:MIN-MAX`, `lognormal:MEDIAN,SIGMA` (median·e^(σ·N(0,1)),
 *   the usual heavy-tailed model of Internet delays), or `regions` (half the round-trip time of
 *   latency.ts's AWS region model; each node gets a region and a last-mile delay from the seed).
 * - Loss: each message is dropped with probability `loss`, independently.
 * - Reordering: with probability `reorder` a message gets an extra delay, uniform in [0, `reorderMaxMs`).
 *   (Independent delays reorder messages already; this adds stragglers.)
 * - Partitions `A/B[/C]@FROM-TO`: nodes split into consecutive index groups of those sizes; between
 *   FROM and TO a message between groups is dropped (checked when sent and when it would arrive).
 * - Down nodes: messages to a node that is down when they arrive are dropped; timers carry the node's
 *   incarnation and die with it.
 */
import { buildLatencyModel, type LatencyModel, rttMs } from './latency.ts'
import type { Rng } from './rng.ts'

/** A one-way delay distribution. */
export type LatencySpec =
  | { kind: 'fixed'; ms: number }
  | { kind: 'uniform'; minMs: number; maxMs: number }
  | { kind: 'lognormal'; medianMs: number; sigma: number }
  | { kind: 'regions' }

/** A scheduled partition: consecutive index groups of `sizes`, cut off from each other in [fromMs, toMs). */
export interface PartitionSpec {
  sizes: number[]
  fromMs: number
  toMs: number
}

/** `count` validators down from `fromMs` until `toMs` (never back when absent). */
export interface OutageSpec {
  count: number
  fromMs: number
  toMs?: number
}

/** The network model. */
export interface NetOptions {
  n: number
  latency: LatencySpec
  /** Probability a message is lost, in [0, 1). */
  loss: number
  /** Probability a message is delayed further, in [0, 1]. */
  reorder: number
  /** Upper bound of that extra delay, ms. */
  reorderMaxMs: number
  partitions: readonly PartitionSpec[]
}

/** A duration: `500ms`, `5s`, `2m`, or a bare number of ms. @throws RangeError */
export function parseDurationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim())
  if (m === null) throw new RangeError(`not a duration: ${text} (e.g. 500ms, 5s, 2m)`)
  const x = Number(m[1])
  const unit = m[2] ?? 'ms'
  return Math.round(unit === 'ms' ? x : unit === 's' ? x * 1000 : x * 60_000)
}

/** `fixed:20`, `uniform:5-40`, `lognormal:20,0.5`, `regions` (module doc). @throws RangeError */
export function parseLatency(text: string): LatencySpec {
  const [kind, arg = ''] = text.split(':', 2)
  const nums = arg.split(/[-,]/).map(Number)
  const ok = (k: number) => nums.length === k && nums.every((x) => Number.isFinite(x) && x >= 0)
  if (kind === 'regions' && arg === '') return { kind: 'regions' }
  if (kind === 'fixed' && ok(1)) return { kind: 'fixed', ms: nums[0] as number }
  if (kind === 'uniform' && ok(2) && (nums[0] as number) <= (nums[1] as number))
    return { kind: 'uniform', minMs: nums[0] as number, maxMs: nums[1] as number }
  if (kind === 'lognormal' && ok(2) && (nums[0] as number) > 0)
    return { kind: 'lognormal', medianMs: nums[0] as number, sigma: nums[1] as number }
  throw new RangeError(
    `not a latency model: ${text} (fixed:MS, uniform:MIN-MAX, lognormal:MEDIAN,SIGMA, regions)`,
  )
}

/** `6/4@5s-15s` (module doc), checked against `n` nodes. @throws RangeError */
export function parsePartition(text: string, n: number): PartitionSpec {
  const m = /^(\d+(?:\/\d+)+)@([^-]+)-(.+)$/.exec(text.trim())
  if (m === null) throw new RangeError(`not a partition: ${text} (e.g. 6/4@5s-15s)`)
  const sizes = (m[1] as string).split('/').map(Number)
  if (sizes.some((s) => s < 1) || sizes.reduce((a, b) => a + b, 0) !== n)
    throw new RangeError(`partition ${text}: group sizes must be ≥ 1 and sum to ${n}`)
  const fromMs = parseDurationMs(m[2] as string)
  const toMs = parseDurationMs(m[3] as string)
  if (toMs <= fromMs) throw new RangeError(`partition ${text}: it must heal after it starts`)
  return { sizes, fromMs, toMs }
}

/** `2@3s-8s` (2 nodes down from 3 s to 8 s) or `2@3s` (never back). @throws RangeError */
export function parseOutage(text: string): OutageSpec {
  const m = /^(\d+)@([^-]+)(?:-(.+))?$/.exec(text.trim())
  if (m === null) throw new RangeError(`not an outage: ${text} (e.g. 2@3s-8s)`)
  const count = Number(m[1])
  const fromMs = parseDurationMs(m[2] as string)
  if (m[3] === undefined) return { count, fromMs }
  const toMs = parseDurationMs(m[3])
  if (toMs <= fromMs) throw new RangeError(`outage ${text}: it must end after it starts`)
  return { count, fromMs, toMs }
}

/** An event: a message from `from`, or a timer of `to` (from === to, never lost). */
export interface NetEvent<M> {
  at: number
  seq: number
  from: number
  to: number
  msg: M
  timer: boolean
  /** The incarnation of `to` a timer belongs to. */
  incarnation: number
}

/** Message counters. */
export interface NetStats {
  sent: number
  delivered: number
  lost: number
  partitioned: number
  toDownNode: number
}

/** The event queue and network (module doc). `M`: the protocol's message type. */
export class SimNet<M> {
  readonly options: NetOptions
  readonly rng: Rng
  /** Simulated time, ms since the start. */
  now = 0
  /** up[i]: node i runs. */
  readonly up: boolean[]
  /** incarnation[i]: bumped by {@link setDown}; older timers are dropped. */
  readonly incarnation: number[]
  readonly stats: NetStats = { sent: 0, delivered: 0, lost: 0, partitioned: 0, toDownNode: 0 }
  readonly #heap: NetEvent<M>[] = []
  readonly #group: Int32Array[]
  readonly #regions: LatencyModel | undefined
  #seq = 0

  constructor(options: NetOptions, rng: Rng) {
    this.options = options
    this.rng = rng
    this.up = new Array<boolean>(options.n).fill(true)
    this.incarnation = new Array<number>(options.n).fill(0)
    this.#regions = options.latency.kind === 'regions' ? buildLatencyModel(options.n, rng.fork(1)) : undefined
    this.#group = options.partitions.map((p) => {
      const g = new Int32Array(options.n)
      let i = 0
      p.sizes.forEach((size, k) => {
        for (let j = 0; j < size; j++) g[i++] = k
      })
      return g
    })
  }

  /** Events waiting. */
  get pending(): number {
    return this.#heap.length
  }

  /** True when a partition active at `atMs` separates a and b. */
  cut(a: number, b: number, atMs: number): boolean {
    return this.options.partitions.some(
      (p, k) => atMs >= p.fromMs && atMs < p.toMs && this.#group[k]?.[a] !== this.#group[k]?.[b],
    )
  }

  /** A one-way delay from a to b, ms (0 to itself). */
  delay(a: number, b: number): number {
    if (a === b) return 0
    const l = this.options.latency
    let d: number
    if (l.kind === 'fixed') d = l.ms
    else if (l.kind === 'uniform') d = l.minMs + this.rng.nextFloat() * (l.maxMs - l.minMs)
    else if (l.kind === 'lognormal') d = l.medianMs * Math.exp(l.sigma * this.#normal())
    else d = rttMs(this.#regions as LatencyModel, a, b) / 2
    if (this.options.reorder > 0 && this.rng.nextFloat() < this.options.reorder)
      d += this.rng.nextFloat() * this.options.reorderMaxMs
    return d
  }

  /** Send `msg` from a to b now: lost, cut by a partition, or delivered after {@link delay}. */
  send(from: number, to: number, msg: M): void {
    this.stats.sent++
    if (from !== to && this.options.loss > 0 && this.rng.nextFloat() < this.options.loss) {
      this.stats.lost++
      return
    }
    if (this.cut(from, to, this.now)) {
      this.stats.partitioned++
      return
    }
    this.#push({ at: this.now + this.delay(from, to), from, to, msg, timer: false, incarnation: 0 })
  }

  /** A timer of node `to` at `atMs` (not before now); it dies if the node goes down first. */
  timer(to: number, atMs: number, msg: M): void {
    const at = Math.max(this.now, atMs)
    this.#push({ at, from: to, to, msg, timer: true, incarnation: this.incarnation[to] ?? 0 })
  }

  /** A global event (no node: runs even when node 0 is down). */
  control(atMs: number, msg: M): void {
    this.#push({ at: Math.max(this.now, atMs), from: -1, to: -1, msg, timer: true, incarnation: -1 })
  }

  /** Take node i down (its pending timers die) or bring it back. */
  setUp(i: number, up: boolean): void {
    if (!up) this.incarnation[i] = (this.incarnation[i] ?? 0) + 1
    this.up[i] = up
  }

  /**
   * The next event to run at or before `untilMs`, with the clock moved to it; dead events (to a down
   * node, a stale timer, or cut by a partition on arrival) are dropped on the way. Undefined when none.
   */
  next(untilMs: number): NetEvent<M> | undefined {
    for (;;) {
      const e = this.#heap[0]
      if (e === undefined || e.at > untilMs) return undefined
      this.#pop()
      this.now = Math.max(this.now, e.at)
      if (e.to < 0) return e
      if (e.timer) {
        if (this.up[e.to] === true && e.incarnation === this.incarnation[e.to]) return e
        continue
      }
      if (this.up[e.to] !== true) {
        this.stats.toDownNode++
        continue
      }
      if (this.cut(e.from, e.to, this.now)) {
        this.stats.partitioned++
        continue
      }
      this.stats.delivered++
      return e
    }
  }

  /** Standard normal sample (Box–Muller). */
  #normal(): number {
    return Math.sqrt(-2 * Math.log(this.rng.nextOpenFloat())) * Math.cos(2 * Math.PI * this.rng.nextFloat())
  }

  #less(a: NetEvent<M>, b: NetEvent<M>): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq)
  }

  #push(e: Omit<NetEvent<M>, 'seq'>): void {
    const h = this.#heap
    const ev = { ...e, seq: this.#seq++ }
    h.push(ev)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.#less(ev, h[p] as NetEvent<M>)) break
      h[i] = h[p] as NetEvent<M>
      i = p
    }
    h[i] = ev
  }

  #pop(): void {
    const h = this.#heap
    const last = h.pop() as NetEvent<M>
    if (h.length === 0) return
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= h.length) break
      const r = l + 1
      const c = r < h.length && this.#less(h[r] as NetEvent<M>, h[l] as NetEvent<M>) ? r : l
      if (!this.#less(h[c] as NetEvent<M>, last)) break
      h[i] = h[c] as NetEvent<M>
      i = c
    }
    h[i] = last
  }
}
