/**
 * Where a validator keeps the last vertex it signed, so that after a crash it never signs a second
 * vertex for a round it already proposed in (equivocation). The core saves each vertex here, durably,
 * before the vertex leaves (core.ts); a restarted core loads it and proposes only above its round.
 */
import type { OrderedStore } from '../kv/index.ts'

/** The last-proposal store a core writes through. */
export interface ProposalStore {
  /** The bytes of the last vertex saved, or undefined for a new validator. */
  load(): Promise<Uint8Array | undefined>
  /** Keep `bytes` (a signed vertex of this validator) durably before resolving; replaces the last one. */
  save(bytes: Uint8Array): Promise<void>
}

/** A {@link ProposalStore} in memory (tests, the simulator): survives a core's restart, not the process's. */
export class MemoryProposalStore implements ProposalStore {
  bytes: Uint8Array | undefined
  async load(): Promise<Uint8Array | undefined> {
    return this.bytes
  }
  async save(bytes: Uint8Array): Promise<void> {
    this.bytes = bytes
  }
}

/** The key of the last proposal in an ordered store: `consensus/last-proposal/<epoch>`. */
export function lastProposalKey(epoch: number): Uint8Array {
  return new TextEncoder().encode(`consensus/last-proposal/${epoch}`)
}

/**
 * A {@link ProposalStore} on an ordered store (the kv area's LMDB store, durable once `write`
 * resolves; or `MemoryOrderedStore`), one key per epoch.
 */
export class OrderedProposalStore implements ProposalStore {
  readonly #store: OrderedStore
  readonly #key: Uint8Array

  constructor(store: OrderedStore, epoch: number) {
    this.#store = store
    this.#key = lastProposalKey(epoch)
  }

  async load(): Promise<Uint8Array | undefined> {
    return this.#store.get(this.#key)
  }

  async save(bytes: Uint8Array): Promise<void> {
    await this.#store.write((w) => w.put(this.#key, bytes))
  }
}
