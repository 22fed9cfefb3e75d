/**
 * An in-process driver for end-to-end tests (not the simulator): n cores over a seeded random-delay
 * message queue and a fake clock. Every vertex a core proposes is broadcast to every other core with
 * a delay drawn from [minDelayMs, maxDelayMs]; a core's missing references are fetched (from a map of
 * every vertex ever sent, as if from some peer) with the same delays; a core's `wakeAtMs` becomes an
 * event. Events run one at a time in (time, sequence) order, so a seed gives one run.
 */
import { mulberry32 } from '../../src/common/prng.ts'
import {
  type CommittedSubDag,
  type CommitterState,
  Core,
  type CoreOutput,
  DEFAULT_CONSENSUS_OPTIONS,
  digestKey,
  MemoryProposalStore,
  openVertex,
  type ProposalStore,
  signVertex,
  type Vertex,
  type VertexSigner,
} from '../../src/consensus/index.ts'
import { FakeClock } from '../utils/fake-clock.ts'
import { federation, type TestFederation } from './harness.ts'

type Event =
  | { at: number; seq: number; kind: 'deliver'; to: number; bytes: Uint8Array }
  | { at: number; seq: number; kind: 'fetch'; to: number; digest: string }
  | { at: number; seq: number; kind: 'wake'; to: number }

/** An event before it gets its sequence number. */
type NewEvent = Event extends infer E ? (E extends Event ? Omit<E, 'seq'> : never) : never

export interface DriverOptions {
  n: number
  seed: number
  minDelayMs?: number
  maxDelayMs?: number
  /** Validators that never start. */
  down?: number[]
  /**
   * Byzantine validators that equivocate: with every vertex they propose they sign a twin (same round
   * and parents, another transaction) and send one to the even-numbered validators, the other to the
   * odd-numbered ones.
   */
  equivocators?: number[]
  /** The cores' idle pacing (`idleRoundDelayMs`); default 0: rounds as fast as delivery allows. */
  idleRoundDelayMs?: number
}

export class Driver {
  readonly fed: TestFederation
  readonly clock = new FakeClock(10_000)
  readonly cores: (Core | undefined)[] = []
  readonly stores: ProposalStore[] = []
  /** Commits each validator emitted, in order (a restarted validator's list goes on from its first). */
  readonly commits: CommittedSubDag[][] = []
  /** Errors the cores raised on delivered vertices. */
  readonly errors: unknown[] = []
  readonly sent = new Map<string, Uint8Array>()
  readonly #events: Event[] = []
  readonly #rnd: () => number
  readonly #min: number
  readonly #max: number
  readonly #equivocators: number[]
  readonly #idleRoundDelayMs: number
  #seq = 0

  private constructor(fed: TestFederation, o: DriverOptions) {
    this.fed = fed
    this.#rnd = mulberry32(o.seed)
    this.#min = o.minDelayMs ?? 1
    this.#max = o.maxDelayMs ?? 40
    this.#equivocators = o.equivocators ?? []
    this.#idleRoundDelayMs = o.idleRoundDelayMs ?? 0
  }

  static async create(o: DriverOptions): Promise<Driver> {
    const d = new Driver(await federation(o.n), o)
    for (let i = 0; i < o.n; i++) {
      d.stores[i] = new MemoryProposalStore()
      d.commits[i] = []
      if (!(o.down ?? []).includes(i)) await d.start(i)
    }
    return d
  }

  /** Start (or restart) validator `i` on its store, with an empty DAG. */
  async start(
    i: number,
    store: ProposalStore = this.stores[i] as ProposalStore,
    restore?: CommitterState,
  ): Promise<void> {
    this.stores[i] = store
    const core = await Core.open(
      { committee: this.fed.committee, signer: this.fed.signers[i] as VertexSigner, store },
      {
        ...DEFAULT_CONSENSUS_OPTIONS,
        ...this.fed.limits,
        author: i,
        roundTimeoutMs: this.fed.genesis.body.roundTimeoutMs,
        initialTimestampMs: this.fed.genesis.body.createdAtMs,
        idleRoundDelayMs: this.#idleRoundDelayMs,
        ...(restore === undefined ? {} : { restore }),
      },
    )
    this.cores[i] = core
    this.commits[i] = []
    this.#handle(i, await core.start(this.clock.now()))
  }

  async #proposeAndHandle(i: number, core: Core, now: number): Promise<void> {
    const out = await core.propose(now)
    const v = out.proposed
    if (v === undefined || !this.#equivocators.includes(i)) return this.#handle(i, out)
    const twin = await signVertex(
      { ...v, txs: [Uint8Array.of(0xee, v.round % 256)] },
      this.fed.signers[i] as VertexSigner,
      this.fed.committee,
      this.fed.limits,
    )
    this.sent.set(digestKey(twin.digest), twin.bytes)
    const { proposed: _own, ...rest } = out
    this.#handle(i, rest, [v, twin])
  }

  /** Submit `tx` to validator `i` and let it propose now (as the area does after a submission). */
  submit(i: number, tx: Uint8Array): void {
    this.cores[i]?.submit(tx)
    this.#push({ at: this.clock.now(), kind: 'wake', to: i })
  }

  /** Validator `i` stops: its events are dropped until it starts again. */
  crash(i: number): void {
    this.cores[i] = undefined
  }

  /** Run events until the clock passes `untilMs` or nothing is left. */
  async runUntil(untilMs: number): Promise<void> {
    for (;;) {
      const e = this.#events[0]
      if (e === undefined || e.at > untilMs) break
      this.#events.shift()
      this.clock.ms = Math.max(this.clock.ms, e.at)
      const core = this.cores[e.to]
      if (core === undefined) continue
      const now = this.clock.now()
      if (e.kind === 'deliver' || e.kind === 'fetch') {
        const bytes = e.kind === 'deliver' ? e.bytes : this.sent.get(e.digest)
        if (bytes === undefined) continue
        try {
          this.#handle(e.to, core.addVertex(openVertex(bytes, this.fed.committee, this.fed.limits), now))
        } catch (err) {
          this.errors.push(err)
        }
      }
      if (this.cores[e.to] === core) await this.#proposeAndHandle(e.to, core, now)
    }
    this.clock.ms = Math.max(this.clock.ms, untilMs)
  }

  /** Insert in (time, sequence) order. */
  #push(e: NewEvent): void {
    const event = { ...e, seq: this.#seq++ } as Event
    let lo = 0
    let hi = this.#events.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((this.#events[mid] as Event).at <= event.at) lo = mid + 1
      else hi = mid
    }
    this.#events.splice(lo, 0, event)
  }

  #delay(): number {
    return this.#min + Math.floor(this.#rnd() * (this.#max - this.#min + 1))
  }

  /** Act on a core's output; `twins`: an equivocator's two versions of its proposal. */
  #handle(i: number, out: CoreOutput, twins?: [Vertex, Vertex]): void {
    const now = this.clock.now()
    this.commits[i]?.push(...out.commits)
    const versions = twins ?? (out.proposed === undefined ? undefined : [out.proposed, out.proposed])
    if (versions !== undefined) {
      for (const v of versions) this.sent.set(digestKey(v.digest), v.bytes)
      for (let j = 0; j < this.cores.length; j++)
        if (j !== i)
          this.#push({
            at: now + this.#delay(),
            kind: 'deliver',
            to: j,
            bytes: (versions[j % 2] as Vertex).bytes,
          })
    }
    for (const ref of out.missing)
      this.#push({ at: now + this.#delay(), kind: 'fetch', to: i, digest: digestKey(ref.digest) })
    if (out.wakeAtMs !== undefined) this.#push({ at: out.wakeAtMs, kind: 'wake', to: i })
  }
}

/** One line per commit: height, leader, timestamp, digests. */
export function commitLog(commits: readonly CommittedSubDag[]): string[] {
  return commits.map(
    (c) =>
      `${c.index} ${c.leader.author}@${c.leader.round} ${c.timestampMs} ${c.vertices.map((v) => digestKey(v.digest).slice(0, 8)).join(',')}`,
  )
}
