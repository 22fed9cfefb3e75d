/**
 * The DAG of vertices one validator holds (Mysticeti-C, Babel et al., arXiv 2310.14821, §3), in memory.
 *
 * - A vertex is accepted only once all its parents are (causal completeness): until then it waits in a
 *   bounded suspended set, and {@link Dag.add} reports the references still missing, so the caller
 *   can fetch them (request/response). Accepting a vertex may release suspended ones.
 * - Equivocation (two vertices by one author for one round) is detected when the second is accepted;
 *   both are kept, in the DAG (others may reference either, and the commit rule copes with them) and as
 *   {@link EquivocationEvidence} (both signed vertices), one pair per author.
 * - Garbage collection: {@link Dag.prune} drops every round below a floor (the committer sets it a
 *   fixed depth below the last committed leader). Parents below the floor count as present.
 *
 * Not checked here: signatures (vertex.ts, before a vertex is added) and the rules decode checks.
 * Checked here: a vertex's timestamp is at least each parent's (so commit timestamps are monotonic).
 */
import { NodusError } from '../common/errors.ts'
import type { Committee } from './committee.ts'
import { digestKey, genesisVertices, refOf, refString, type Vertex, type VertexRef } from './vertex.ts'

/** Two signed vertices of one author for one round: proof that it equivocated. */
export interface EquivocationEvidence {
  readonly author: number
  readonly round: number
  /** The vertex accepted first, and the other (both signed by `author`). */
  readonly vertices: readonly [Vertex, Vertex]
}

/** What {@link Dag.add} did. */
export interface AddResult {
  /** Vertices accepted by this call: the one added and those it released, parents before children. */
  readonly accepted: readonly Vertex[]
  /** References not held (not in the DAG and not suspended): fetch them. Empty when nothing waits. */
  readonly missing: readonly VertexRef[]
  /** Equivocations first seen in this call. */
  readonly equivocations: readonly EquivocationEvidence[]
  /** Vertices released by this call but refused (a timestamp before a parent's: `VERTEX_INVALID`, reject). */
  readonly rejected: readonly { vertex: Vertex; error: NodusError }[]
  /**
   * The vertex added: `accepted`; `suspended` (waits for parents); `rejected` (in `rejected`);
   * `duplicate` (already held); `stale` (below the GC floor); `dropped` (the suspended set was full).
   */
  readonly status: 'accepted' | 'suspended' | 'rejected' | 'duplicate' | 'stale' | 'dropped'
}

/** Bounds of a {@link Dag}. */
export interface DagOptions {
  /** Most vertices waiting for parents (`consensus.maxSuspendedVertices`). */
  maxSuspended: number
}

interface Suspended {
  vertex: Vertex
  /** Digest keys of parents not yet accepted. */
  waitingFor: Set<string>
}

/**
 * What the committer reads from (and prunes in) a DAG: the interface a persistent DAG store would
 * implement. {@link Dag} is the in-memory one.
 */
export interface DagView {
  readonly committee: Committee
  /** Lowest round held. */
  readonly floor: number
  /** Highest round with an accepted vertex. */
  readonly highestRound: number
  /** Authors seen equivocating, ascending. */
  readonly equivocators: number[]
  get(digest: Uint8Array): Vertex | undefined
  /** The accepted vertices of slot (round, author). */
  slot(round: number, author: number): readonly Vertex[]
  /** The accepted vertices of a round, by author ascending. */
  round(round: number): Vertex[]
  /** Forget every round below `round`. */
  prune(round: number): number
}

/** The DAG store of one validator for one epoch. */
export class Dag implements DagView {
  readonly committee: Committee
  readonly #maxSuspended: number
  readonly #byDigest = new Map<string, Vertex>()
  /** round → author → vertices of that slot (more than one: equivocation). */
  readonly #rounds = new Map<number, Map<number, Vertex[]>>()
  readonly #suspended = new Map<string, Suspended>()
  /** Digest key of a missing parent → digest keys of the suspended vertices waiting for it. */
  readonly #waiters = new Map<string, Set<string>>()
  /** Missing parent key → its reference. */
  readonly #missingRefs = new Map<string, VertexRef>()
  readonly #evidence = new Map<number, EquivocationEvidence>()
  #floor = 0
  #highest = 0

  constructor(committee: Committee, options: DagOptions) {
    this.committee = committee
    this.#maxSuspended = options.maxSuspended
    for (const g of genesisVertices(committee)) this.#insert(g)
  }

  /** Lowest round held (rounds below were garbage-collected). */
  get floor(): number {
    return this.#floor
  }

  /** Highest round with an accepted vertex. */
  get highestRound(): number {
    return this.#highest
  }

  /** Vertices held (accepted, not suspended). */
  get size(): number {
    return this.#byDigest.size
  }

  /** Vertices waiting for parents. */
  get suspendedCount(): number {
    return this.#suspended.size
  }

  /** Authors seen equivocating, ascending. */
  get equivocators(): number[] {
    return [...this.#evidence.keys()].sort((a, b) => a - b)
  }

  /** The evidence kept, one pair per equivocating author. */
  evidence(): EquivocationEvidence[] {
    return [...this.#evidence.values()]
  }

  /** The accepted vertex with this digest. */
  get(digest: Uint8Array): Vertex | undefined {
    return this.#byDigest.get(digestKey(digest))
  }

  /** True when the vertex is accepted, or its round is below the floor (treated as present). */
  has(ref: VertexRef): boolean {
    return ref.round < this.#floor || this.#byDigest.has(digestKey(ref.digest))
  }

  /** True when the vertex is accepted or waiting for parents. */
  holds(ref: VertexRef): boolean {
    const k = digestKey(ref.digest)
    return this.#byDigest.has(k) || this.#suspended.has(k)
  }

  /** The accepted vertices of one slot (round, author): none, one, or several (equivocation). */
  slot(round: number, author: number): readonly Vertex[] {
    return this.#rounds.get(round)?.get(author) ?? []
  }

  /** The accepted vertices of `round`, by author ascending, then in acceptance order. */
  round(round: number): Vertex[] {
    const m = this.#rounds.get(round)
    if (m === undefined) return []
    return [...m.keys()].sort((a, b) => a - b).flatMap((a) => m.get(a) ?? [])
  }

  /** Distinct authors with an accepted vertex at `round`. */
  authorsAt(round: number): number {
    return this.#rounds.get(round)?.size ?? 0
  }

  /** The references suspended vertices wait for and that nobody holds: what to fetch. */
  missing(): VertexRef[] {
    return [...this.#missingRefs.values()]
  }

  /**
   * Add a vertex whose signature verified. Accepted at once when every parent is, else suspended.
   *
   * @returns what happened (see {@link AddResult}); never throws for the peer's input: a vertex with a
   *   timestamp before a parent's is returned in `rejected`
   */
  add(vertex: Vertex): AddResult {
    const key = digestKey(vertex.digest)
    const base = { accepted: [], missing: [], equivocations: [], rejected: [] }
    if (this.#byDigest.has(key) || this.#suspended.has(key)) return { ...base, status: 'duplicate' }
    if (vertex.round < this.#floor) return { ...base, status: 'stale' }
    const waitingFor = new Set<string>()
    for (const p of vertex.parents) if (!this.has(p)) waitingFor.add(digestKey(p.digest))
    if (waitingFor.size > 0) {
      if (this.#suspended.size >= this.#maxSuspended) return { ...base, status: 'dropped' }
      this.#suspended.set(key, { vertex, waitingFor })
      this.#missingRefs.delete(key)
      for (const p of vertex.parents) {
        const pk = digestKey(p.digest)
        if (!waitingFor.has(pk)) continue
        const w = this.#waiters.get(pk) ?? new Set<string>()
        this.#waiters.set(pk, w)
        w.add(key)
        if (!this.#suspended.has(pk)) this.#missingRefs.set(pk, refOf(p))
      }
      return { ...base, missing: this.missing(), status: 'suspended' }
    }
    const accepted: Vertex[] = []
    const equivocations: EquivocationEvidence[] = []
    const rejected: { vertex: Vertex; error: NodusError }[] = []
    const queue: Vertex[] = [vertex]
    while (queue.length > 0) {
      const v = queue.shift() as Vertex
      const k = digestKey(v.digest)
      const late = v.parents.find((p) => (this.get(p.digest)?.timestampMs ?? 0) > v.timestampMs)
      if (late !== undefined) {
        const error = new NodusError(
          'VERTEX_INVALID',
          `vertex ${refString(v)}: timestamp before its parent ${refString(late)}`,
          {
            peerAction: 'reject',
            details: { reason: 'timestamp before a parent', author: v.author, round: v.round },
          },
        )
        rejected.push({ vertex: v, error })
        this.#releaseWaiters(k, undefined)
        continue
      }
      const ev = this.#insert(v)
      if (ev !== undefined) equivocations.push(ev)
      accepted.push(v)
      this.#releaseWaiters(k, queue)
    }
    const status = accepted[0] === vertex ? 'accepted' : 'rejected'
    return { accepted, missing: this.missing(), equivocations, rejected, status }
  }

  /**
   * Forget every vertex below `round` (accepted and suspended). Never lowers the floor.
   *
   * @returns how many vertices were dropped
   */
  prune(round: number): number {
    if (round <= this.#floor) return 0
    let dropped = 0
    for (let r = this.#floor; r < round; r++) {
      const m = this.#rounds.get(r)
      if (m === undefined) continue
      for (const vs of m.values())
        for (const v of vs) {
          this.#byDigest.delete(digestKey(v.digest))
          dropped++
        }
      this.#rounds.delete(r)
    }
    this.#floor = round
    for (const [k, s] of this.#suspended) {
      if (s.vertex.round >= round) {
        // Parents that are now below the floor count as present.
        for (const p of s.vertex.parents) if (p.round < round) s.waitingFor.delete(digestKey(p.digest))
        continue
      }
      this.#suspended.delete(k)
      dropped++
    }
    for (const [k, ref] of this.#missingRefs) if (ref.round < round) this.#missingRefs.delete(k)
    // Suspended vertices whose every parent is now present or below the floor.
    for (const [k, s] of [...this.#suspended]) {
      if (s.waitingFor.size > 0 || !this.#suspended.has(k)) continue
      this.#suspended.delete(k)
      this.add(s.vertex)
    }
    return dropped
  }

  /** Put an accepted vertex in the indexes; the evidence when it is its slot's second vertex. */
  #insert(v: Vertex): EquivocationEvidence | undefined {
    this.#byDigest.set(digestKey(v.digest), v)
    this.#missingRefs.delete(digestKey(v.digest))
    if (v.round > this.#highest) this.#highest = v.round
    const m = this.#rounds.get(v.round) ?? new Map<number, Vertex[]>()
    this.#rounds.set(v.round, m)
    const slot = m.get(v.author)
    if (slot === undefined) {
      m.set(v.author, [v])
      return undefined
    }
    slot.push(v)
    if (this.#evidence.has(v.author)) return undefined
    const ev: EquivocationEvidence = { author: v.author, round: v.round, vertices: [slot[0] as Vertex, v] }
    this.#evidence.set(v.author, ev)
    return ev
  }

  /** `key` was accepted (queue given) or refused (no queue): update the vertices waiting for it. */
  #releaseWaiters(key: string, queue: Vertex[] | undefined): void {
    const waiters = this.#waiters.get(key)
    this.#waiters.delete(key)
    this.#missingRefs.delete(key)
    if (waiters === undefined) return
    for (const wk of waiters) {
      const s = this.#suspended.get(wk)
      if (s === undefined) continue
      if (queue === undefined) {
        // A parent was refused: its children can never be accepted.
        this.#suspended.delete(wk)
        this.#releaseWaiters(wk, undefined)
        continue
      }
      s.waitingFor.delete(key)
      if (s.waitingFor.size === 0) {
        this.#suspended.delete(wk)
        queue.push(s.vertex)
      }
    }
  }
}
