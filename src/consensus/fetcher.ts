/**
 * Fetching missing vertices (`/nodus/consensus-fetch/1.0.0`, docs/PROTOCOLS.md): a request is
 * `{ refs: [digest] }` (at most `consensus.fetchMaxRefs` 32-byte digests), the answer
 * `{ ok: true, vertices: [bytes] }`, the signed vertices of those the peer holds, within
 * `consensus.fetchMaxBytes`. A vertex is asked first from the peer that sent the vertex referring to
 * it, then from other peers of the topic; what is still missing is asked again every
 * `consensus.fetchRetryMs`. At most `consensus.fetchMaxInFlight` refs are in flight at once.
 * A peer that answers with a vertex it was not asked for is reported (reject).
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import type { Random } from '../common/random.ts'
import { blake3 } from '../crypto/index.ts'
import { digestKey, type VertexRef } from './vertex.ts'
import { type Wire, wireInvalid } from './wire.ts'

/** The protocol id. */
export const CONSENSUS_FETCH_PROTOCOL = '/nodus/consensus-fetch/1.0.0'

export interface FetcherDeps {
  wire: Wire
  log: Logger
  random: Random
  /** Peers that may hold vertices (the topic's, not banned), PeerId strings. */
  peers(): string[]
  /** True when the vertex needs no fetch (held, or below the floor). */
  held(ref: VertexRef): boolean
  /** What the DAG still misses (for the retry round). */
  missing(): VertexRef[]
  /** A fetched vertex, from `peer`: decode, verify, add. */
  deliver(bytes: Uint8Array, peer: string): Promise<void>
  report(peer: string, err: NodusError): void
  /** The area's lifetime. */
  signal(): AbortSignal
}

export interface FetcherOptions {
  maxRefs: number
  maxInFlight: number
}

interface Wanted {
  ref: VertexRef
  hint: string | undefined
  tried: Set<string>
}

/** Tracks what is missing and asks peers for it (module doc). */
export class Fetcher {
  readonly #d: FetcherDeps
  readonly #o: FetcherOptions
  readonly #wanted = new Map<string, Wanted>()
  readonly #inflight = new Set<string>()
  /** Requests sent, answered with vertices, failed. */
  readonly stats = { requests: 0, vertices: 0, failed: 0 }

  constructor(deps: FetcherDeps, options: FetcherOptions) {
    this.#d = deps
    this.#o = options
  }

  /** Refs wanted, and in flight. */
  get wanted(): number {
    return this.#wanted.size
  }
  get inFlight(): number {
    return this.#inflight.size
  }

  /** Fetch `refs`, from `hint` first (the peer that referred to them). */
  want(refs: readonly VertexRef[], hint?: string): void {
    for (const ref of refs) {
      const k = digestKey(ref.digest)
      if (this.#wanted.has(k) || this.#d.held(ref)) continue
      // Bounded: past 4 × maxInFlight the rest waits for the retry round (the DAG remembers it).
      if (this.#wanted.size >= this.#o.maxInFlight * 4) break
      this.#wanted.set(k, { ref, hint, tried: new Set() })
    }
    this.#pump()
  }

  /** The retry round: forget what arrived, take up what the DAG still misses, ask again. */
  /** Forget every ref wanted (an epoch ended: its vertices are no longer wanted). */
  clear(): void {
    this.#wanted.clear()
  }

  tick(): void {
    for (const [k, w] of this.#wanted) if (this.#d.held(w.ref)) this.#wanted.delete(k)
    this.want(this.#d.missing())
  }

  #pump(): void {
    const candidates = this.#d.peers()
    if (candidates.length === 0) return
    const groups = new Map<string, VertexRef[]>()
    let room = this.#o.maxInFlight - this.#inflight.size
    for (const [k, w] of this.#wanted) {
      if (room <= 0) break
      if (this.#inflight.has(k)) continue
      let peer = w.hint !== undefined && !w.tried.has(w.hint) ? w.hint : undefined
      if (peer === undefined) {
        const fresh = candidates.filter((p) => !w.tried.has(p))
        if (fresh.length === 0) w.tried.clear()
        const pool = fresh.length === 0 ? candidates : fresh
        peer = pool[Math.floor(this.#d.random.next() * pool.length)] as string
      }
      const g = groups.get(peer) ?? []
      groups.set(peer, g)
      g.push(w.ref)
      this.#inflight.add(k)
      room--
    }
    for (const [peer, refs] of groups)
      for (let i = 0; i < refs.length; i += this.#o.maxRefs)
        void this.#ask(peer, refs.slice(i, i + this.#o.maxRefs))
  }

  async #ask(peer: string, refs: VertexRef[]): Promise<void> {
    const asked = new Set(refs.map((r) => digestKey(r.digest)))
    this.stats.requests++
    try {
      const reply = await this.#d.wire.request(
        peerIdFromString(peer),
        { refs: refs.map((r) => r.digest) },
        this.#d.signal(),
      )
      const vertices = reply.vertices
      if (
        !Array.isArray(vertices) ||
        vertices.length > refs.length ||
        !vertices.every((v) => v instanceof Uint8Array)
      )
        throw wireInvalid(CONSENSUS_FETCH_PROTOCOL, 'vertices is not a list of at most the refs asked')
      for (const bytes of vertices as Uint8Array[]) {
        if (!asked.has(digestKey(blake3(bytes))))
          throw wireInvalid(CONSENSUS_FETCH_PROTOCOL, 'the peer sent a vertex it was not asked for')
        this.stats.vertices++
        await this.#d.deliver(bytes, peer)
      }
    } catch (err) {
      this.stats.failed++
      if (err instanceof NodusError && (err.peerAction === 'reject' || err.peerAction === 'ban'))
        this.#d.report(peer, err)
      else if (!this.#d.signal().aborted)
        this.#d.log.debug({ peer, err: (err as Error).message }, 'vertex fetch failed')
    } finally {
      for (const r of refs) {
        const k = digestKey(r.digest)
        this.#inflight.delete(k)
        const w = this.#wanted.get(k)
        if (w === undefined) continue
        if (this.#d.held(r)) this.#wanted.delete(k)
        else w.tried.add(peer)
      }
    }
  }
}
