/**
 * The kv engine: where an operation's bytes become state. One per node, over one OrderedStore.
 *
 * For each submitted envelope, in order:
 * 1. decode and bound it (op.ts `decodeOp`: `KV_OP_INVALID`, `KV_OP_TOO_LARGE`);
 * 2. refuse a timestamp too far ahead of the clock (`KV_OP_FROM_FUTURE`);
 * 3. verify its signature in the verification pool (`SIGNATURE_INVALID`), many per task;
 * 4. in one atomic, durable store write: refuse a held id (`KV_OP_DUPLICATE`), authorize it
 *    (`KV_UNAUTHORIZED`), count its bytes against its database's and the node's quota (quota.ts:
 *    `KV_DB_FULL`), log it, fold it into the typed state (`KV_ARGS_INVALID`), bring a created
 *    database's declared secondary indexes up to date (index-defs.ts), and add it to its database's
 *    reconciliation set. A throwing step leaves nothing of that op behind.
 *
 * The writes of one event-loop turn share one commit (LmdbOrderedStore), so a burst of ops costs one
 * flush. `type: 'db'` ops (create, grant, revoke) go first within a submission, so an op and the
 * create or grant that authorizes it may arrive together in any order.
 *
 * A `revoke` that arrives after operations it voids (written under the revoked capability at or after
 * the revoke's HLC) removes them from the op log and the reconciliation set and rebuilds its database's
 * state from the ops that remain, so every node ends in the state of a node that saw the revoke first.
 * A `create` that puts a database in hybrid mode or makes it private (sealed.ts) does the same with
 * the ops the held creates no longer authorize (not hybrid-signed; plaintext values).
 */
import type { AbortOptions } from '@libp2p/interface'
import type { Clock } from '../common/clock.ts'
import { type ErrorCode, isNodusError, type NodusError } from '../common/errors.ts'
import type { Random } from '../common/random.ts'
import type { SignatureCheck } from '../crypto/index.ts'
import { authorize } from './auth.ts'
import { AuthState, admitOp, getOp, OP_LOG_PREFIX, removeOp } from './auth-store.ts'
import type { HlcClock } from './hlc.ts'
import { updateDeclaredIndexes } from './index-defs.ts'
import { type DecodedOp, decodeOp, type OpLimits, verifiedOp } from './op.ts'
import { compareHlc, type Op } from './op-types.ts'
import { type ByteQuota, chargeOp, refundOp } from './quota.ts'
import { itemKey } from './reconcile/fingerprint.ts'
import { dbScope, FingerprintIndex } from './reconcile/fingerprint-index.ts'
import { applyOp } from './state/apply.ts'
import { P_ELEM, P_IDX, P_META, P_ZIDX, prefixEnd, strComponent } from './state/keys.ts'
import type { OrderedReader, OrderedStore, OrderedWriter } from './store/ordered.ts'

/** Where an op came from (a metric label; `local`: this node's API). */
export type OpSource = 'local' | 'gossip' | 'sync'

/** What became of one submitted op. */
export type SubmitResult =
  | { status: 'applied'; id: Uint8Array; op: Op; changed: boolean }
  | { status: 'duplicate'; id: Uint8Array }
  | { status: 'refused'; id?: Uint8Array; code: ErrorCode; message: string; peerAction?: string }

/** An applied op, as listeners hear of it. */
export interface AppliedEvent {
  op: Op
  source: OpSource
  /** Whether the visible state changed (false: the op lost to a newer one everywhere it wrote). */
  changed: boolean
}

export interface KvEngineDeps {
  store: OrderedStore
  clock: Clock
  hlc: HlcClock
  random: Random
  /** Verify signatures (the verification pool): true when valid. */
  verify(check: SignatureCheck, options?: AbortOptions): Promise<boolean>
  /** Counts ops applied (by source) and refused (by code). */
  onResult?(result: SubmitResult, source: OpSource): void
}

export interface KvEngineOptions {
  limits: OpLimits
  /** Byte quotas of the ops held (`kv.maxDbBytes`, `kv.maxBytes`); default none. */
  quota?: ByteQuota
}

const UNBOUNDED: ByteQuota = { maxDbBytes: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER }

/** How many voided ops one revoke may remove before the rest wait for the next rebuild. */
const MAX_REBUILD_OPS = 1_000_000

/** The engine. Build with {@link KvEngine.open}. */
export class KvEngine {
  readonly #deps: KvEngineDeps
  readonly #options: KvEngineOptions
  readonly #indexes = new Map<string, FingerprintIndex>()
  readonly #listeners = new Set<(e: AppliedEvent) => void>()

  constructor(deps: KvEngineDeps, options: KvEngineOptions) {
    this.#deps = deps
    this.#options = options
  }

  /** The store, for reads (the state readers in state/ take it). */
  get reader(): OrderedReader {
    return this.#deps.store
  }

  /** The reconciliation index of database `db` (the store's salt is made on first use). */
  async index(db: string): Promise<FingerprintIndex> {
    let ix = this.#indexes.get(db)
    if (ix === undefined) {
      ix = await FingerprintIndex.open(
        this.#deps.store,
        { random: this.#deps.random },
        { scope: dbScope(db) },
      )
      if (this.#indexes.size >= 4096) this.#indexes.clear()
      this.#indexes.set(db, ix)
    }
    return ix
  }

  /** Hear of every applied op. @returns a function that stops it */
  onApplied(listener: (e: AppliedEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** The envelope of a held op, by id. */
  getOp(id: Uint8Array): Uint8Array | undefined {
    return getOp(this.#deps.store, id)
  }

  /**
   * Check, verify and apply envelopes (see the module doc). Never throws for a bad op: each gets its
   * result, in the order given.
   * @throws only the signal's reason, or a store failure (disk full, closed)
   */
  async submit(
    envelopes: Uint8Array[],
    source: OpSource,
    options: AbortOptions = {},
  ): Promise<SubmitResult[]> {
    const results: SubmitResult[] = new Array(envelopes.length)
    const decoded: { i: number; d: DecodedOp; valid: Promise<boolean> }[] = []
    for (let i = 0; i < envelopes.length; i++) {
      try {
        const d = decodeOp(envelopes[i] as Uint8Array, this.#options.limits)
        this.#deps.hlc.check(d.body.hlc)
        const valid = this.#deps.verify(d.check, options)
        valid.catch(() => {})
        decoded.push({ i, d, valid })
      } catch (err) {
        if (!isNodusError(err)) throw err
        results[i] = refusal(err)
      }
    }
    // Database ops first (an op's create or grant may come in the same submission), then by HLC.
    decoded.sort(
      (a, b) =>
        (a.d.body.type === 'db' ? 0 : 1) - (b.d.body.type === 'db' ? 0 : 1) ||
        compareHlc(a.d.body.hlc, b.d.body.hlc),
    )
    // Every signature checked (in parallel, in the pool), then every write issued in one turn, so
    // they share one commit and one flush (LmdbOrderedStore batches the writes of a turn).
    const checked = await Promise.all(
      decoded.map(async ({ i, d, valid }) => {
        try {
          return { i, d, op: verifiedOp(d, await valid) }
        } catch (err) {
          return { i, d, err }
        }
      }),
    )
    const indexes = new Map<string, FingerprintIndex>()
    for (const c of checked)
      if (c.op !== undefined && !indexes.has(c.op.body.db))
        indexes.set(c.op.body.db, await this.index(c.op.body.db))
    const writes = checked.map((c) =>
      c.op === undefined
        ? Promise.reject(c.err)
        : this.#apply(c.op, indexes.get(c.op.body.db) as FingerprintIndex),
    )
    const settled = await Promise.allSettled(writes)
    for (let k = 0; k < checked.length; k++) {
      const { i, d } = checked[k] as (typeof checked)[number]
      const s = settled[k] as PromiseSettledResult<SubmitResult>
      if (s.status === 'fulfilled') {
        results[i] = s.value
        continue
      }
      const err = s.reason
      options.signal?.throwIfAborted()
      // A store failure ends the submission; anything not a NodusError is a bug: it surfaces.
      if (!isNodusError(err) || STORE_FAILURES.has(err.code)) throw err
      results[i] = refusal(err, d.id)
    }
    for (let i = 0; i < results.length; i++) {
      const r = results[i] as SubmitResult
      this.#deps.onResult?.(r, source)
      if (r.status === 'applied') {
        try {
          this.#deps.hlc.receive(r.op.body.hlc)
        } catch {
          // checked before; the clock may have moved back since: nothing to merge
        }
        for (const l of this.#listeners) l({ op: r.op, source, changed: r.changed })
      }
    }
    return results
  }

  /** Apply one verified op in one store write (issued at once: no await before the write). */
  async #apply(op: Op, index: FingerprintIndex): Promise<SubmitResult> {
    const out = await this.#deps.store.write((w) => {
      let change: ReturnType<typeof admitOp>
      try {
        change = admitOp(w, op)
      } catch (err) {
        if (isNodusError(err) && err.code === 'KV_OP_DUPLICATE') return { duplicate: true as const }
        throw err
      }
      chargeOp(w, op, this.#options.quota ?? UNBOUNDED)
      const { changed } = applyOp(w, op)
      updateDeclaredIndexes(w, op)
      index.insert(w, itemKey(op.body.hlc, op.id))
      if (change.invalidated.length > 0 || change.becameHybrid || change.becameSealed)
        this.#rebuild(w, index, op.body.db, change.invalidated)
      return { duplicate: false as const, changed }
    })
    if (out.duplicate) return { status: 'duplicate', id: op.id }
    return { status: 'applied', id: op.id, op, changed: out.changed }
  }

  /**
   * Drop the voided ops of `db` and rebuild its state from the ops that remain in the log. Costs a
   * scan of the whole op log: revokes that void held ops are rare (a writer kept writing after its
   * capability was revoked and the revoke reached this node late).
   */
  #rebuild(w: OrderedWriter, index: FingerprintIndex, db: string, invalidated: Uint8Array[]): void {
    for (const id of invalidated.slice(0, MAX_REBUILD_OPS)) {
      const bytes = getOp(w, id)
      if (bytes === undefined) continue
      const op = decodeOp(bytes, { ...this.#options.limits, maxOpBytes: Number.MAX_SAFE_INTEGER })
      removeOp(w, op)
      refundOp(w, op)
      index.remove(w, itemKey(op.body.hlc, op.id))
    }
    const dbPart = strComponent(db)
    for (const p of [P_META, P_ELEM, P_ZIDX, P_IDX]) {
      const start = Uint8Array.from([p, ...dbPart])
      for (const [k] of [...w.range({ start, end: prefixEnd(start) })]) w.del(k)
    }
    const ops: Op[] = []
    for (const [, bytes] of w.range({
      start: Uint8Array.of(OP_LOG_PREFIX),
      end: Uint8Array.of(OP_LOG_PREFIX + 1),
    })) {
      const d = decodeOp(bytes, { ...this.#options.limits, maxOpBytes: Number.MAX_SAFE_INTEGER })
      if (d.body.db === db && d.body.type !== 'db') ops.push({ body: d.body, id: d.id, bytes: d.bytes })
    }
    // What the held creates, grants and revokes now refuse goes too (a hybrid or sealed create that
    // arrived late): a node that held it first never admitted those ops.
    const auth = new AuthState(w)
    for (const op of ops) {
      try {
        authorize(op, auth)
      } catch (err) {
        if (!isNodusError(err)) throw err
        removeOp(w, op)
        refundOp(w, op)
        index.remove(w, itemKey(op.body.hlc, op.id))
        continue
      }
      applyOp(w, op)
    }
  }
}

/** Errors of the store itself, not of the op: they end the submission. */
const STORE_FAILURES: ReadonlySet<string> = new Set(['STORE_FULL', 'NOT_STARTED', 'ABORTED'])

function refusal(err: NodusError, id?: Uint8Array): SubmitResult {
  return {
    status: 'refused',
    ...(id === undefined ? {} : { id }),
    code: err.code,
    message: err.message,
    ...(err.peerAction === undefined ? {} : { peerAction: err.peerAction }),
  }
}
