/**
 * The ledger state machine: committed batches in, per-transaction outcomes and a state root out.
 *
 * The consensus area hands it each committed batch once, in commit order: a height (the previous + 1;
 * genesis is height 0), a commit timestamp (Unix ms, never older than the previous batch's) and the
 * ordered transactions as opaque bytes. Everything it computes follows from those inputs and the
 * genesis: no clock, no randomness, no node config. Each batch is one atomic, durable write of an
 * {@link OrderedStore} (memory in tests, LMDB on disk): its entries, its bucket hashes, its root and the
 * head; a crash leaves the state at the previous height or this one, never between.
 *
 * Store layout (one store, its own prefixes): `S` ‖ bucket ‖ logical key: the state (codec.ts);
 * `B` ‖ bucket (u16): a non-empty bucket's hash (root.ts); `H`: the head (height u64, timestamp u64,
 * root); `R` ‖ height (u64): the root and timestamp of a height (the last `ledger.rootsKept`).
 */
import { type AbortOptions, throwIfAborted } from '../common/abort.ts'
import { bytesEqual, concatBytes } from '../common/bytes.ts'
import { NodusError } from '../common/errors.ts'
import type { SignatureCheck } from '../crypto/index.ts'
import type { OrderedStore, OrderedWriter } from '../kv/index.ts'
import { applyTx, bucketEntries, physicalKey, type RefusalCode, STATE_PREFIX, WorkingSet } from './apply.ts'
import {
  accountKey,
  balanceKey,
  CONFIG_KEY,
  decodeAccount,
  decodeAmount,
  decodeConfig,
  decodeSupply,
  decodeToken,
  encodeAmount,
  heightBytes,
  type LedgerConfig,
  readU64,
  SUPPLY_KEY,
  type SupplyCounters,
  type TokenEntry,
  tokenKey,
} from './codec.ts'
import {
  COMMITTEE_KEY,
  type CommitteeProposal,
  decodeEpochState,
  decodeProposal,
  type EpochState,
  proposalKey,
} from './committee.ts'
import { genesisEntries, type LedgerGenesis } from './genesis.ts'
import { type ManaAccount, manaAt } from './mana.ts'
import type { LedgerMetrics } from './metrics.ts'
import { DEFAULT_LEDGER_OPTIONS, type LedgerOptions } from './options.ts'
import { BucketTree, bucketOf, HASH_BYTES, hashBucket, type TreeUpdate } from './root.ts'
import { decodeTx, type Tx, txSignatureValid } from './tx.ts'

const HEAD_KEY = Uint8Array.of(0x48)
const BUCKET_PREFIX = 0x42
const ROOT_PREFIX = 0x52

/** One committed batch, as the consensus area hands it over. */
export interface LedgerBatch {
  /** The previous batch's height + 1 (genesis is 0). */
  height: number
  /** Commit timestamp, Unix ms, ≥ the previous batch's: the only time the ledger knows. */
  timestampMs: number
  /** The committed transactions in commit order: envelopes as bytes (tx.ts), unchecked. */
  txs: readonly Uint8Array[]
}

/** A transaction checked before application: decoded and its signature verified, or why not. */
export type CheckedTx =
  | { tx: Tx; refusal?: undefined }
  | { tx?: undefined; refusal: 'LEDGER_TX_INVALID' | 'SIGNATURE_INVALID'; id?: Uint8Array }

/** What became of a committed transaction: applied, or refused with a code (changing only its nonce). */
export interface TxOutcome {
  /** BLAKE3-256 of its bytes (absent only when it did not decode). */
  id: Uint8Array | undefined
  /** Absent: applied. */
  code?: RefusalCode
}

/** What a batch did. */
export interface BatchResult {
  height: number
  timestampMs: number
  /** The state root after the batch, 32 bytes. */
  root: Uint8Array
  /** One per transaction, in order. */
  outcomes: TxOutcome[]
  /**
   * The epoch this batch decided (committee.ts): its committee is the state's from the next height on,
   * and the batch is the last of the epoch before it.
   */
  decided?: EpochState
}

/** An account as read: its next nonce and its mana regenerated to the last commit time. */
export interface AccountView {
  nonce: number
  /** Used nonces above `nonce` (bit i: `nonce + i`). */
  nonceMask: number
  mana: ManaAccount
}

/** What {@link Ledger} needs. */
export interface LedgerDeps {
  store: OrderedStore
  metrics?: LedgerMetrics
}

/** Checks a signature: inline (default) or a VerifyPool's `verify`. */
export type VerifyFn = (check: SignatureCheck, options?: AbortOptions) => boolean | Promise<boolean>

/**
 * Decode `txs` and verify their signatures (through `verify`, e.g. a VerifyPool's, in parallel), so
 * {@link Ledger.applyBatch} only applies. A malformed transaction or a forged signature is a refusal,
 * not an error: the batch is committed anyway.
 *
 * @throws NodusError `ABORTED`; whatever `verify` throws (`QUEUE_FULL` from a pool)
 */
export async function checkTxs(
  txs: readonly Uint8Array[],
  options: AbortOptions & { verify?: VerifyFn } = {},
): Promise<CheckedTx[]> {
  const verify: VerifyFn = options.verify ?? ((check) => txSignatureValid({ check }))
  return Promise.all(
    txs.map(async (bytes): Promise<CheckedTx> => {
      let d: ReturnType<typeof decodeTx>
      try {
        d = decodeTx(bytes)
      } catch {
        return { refusal: 'LEDGER_TX_INVALID' }
      }
      const ok = await verify(d.check, options.signal === undefined ? {} : { signal: options.signal })
      return ok
        ? { tx: { body: d.body, id: d.id, bytes: d.bytes } }
        : { refusal: 'SIGNATURE_INVALID', id: d.id }
    }),
  )
}

function outOfOrder(message: string, details: Record<string, unknown>): NodusError {
  return new NodusError('LEDGER_BATCH_OUT_OF_ORDER', `ledger: ${message}`, { details })
}

interface Head {
  height: number
  timestampMs: number
  root: Uint8Array
}

function encodeHead(h: Head): Uint8Array {
  return concatBytes([heightBytes(h.height), encodeAmount(h.timestampMs), h.root])
}

/** The store key of height `h`'s root. */
function rootKey(h: number): Uint8Array {
  return concatBytes([Uint8Array.of(ROOT_PREFIX), heightBytes(h)])
}

/** Write the bucket hashes, the head and the height's root of a staged update. */
export function writeCommit(w: OrderedWriter, update: TreeUpdate, head: Head, rootsKept: number): void {
  for (const [b, h] of update.buckets) {
    const key = Uint8Array.of(BUCKET_PREFIX, b >> 8, b & 0xff)
    if (h.every((x) => x === 0)) w.del(key)
    else w.put(key, h)
  }
  w.put(HEAD_KEY, encodeHead(head))
  w.put(rootKey(head.height), concatBytes([head.root, encodeAmount(head.timestampMs)]))
  if (head.height >= rootsKept) w.del(rootKey(head.height - rootsKept))
}

/** The head of `store`, or undefined for a store without one. */
export function readHead(store: OrderedStore): Head | undefined {
  const raw = store.get(HEAD_KEY)
  if (raw === undefined) return undefined
  return {
    height: readU64(raw, 0),
    timestampMs: readU64(raw, 8),
    root: new Uint8Array(raw.subarray(16, 16 + HASH_BYTES)),
  }
}

/** The stored bucket hashes of `store`. */
function* storedBuckets(store: OrderedStore): Generator<[number, Uint8Array]> {
  for (const [k, v] of store.range({
    start: Uint8Array.of(BUCKET_PREFIX),
    end: Uint8Array.of(BUCKET_PREFIX + 1),
  }))
    yield [((k[1] as number) << 8) | (k[2] as number), v]
}

/** True when `store` holds any state entry. */
export function hasState(store: OrderedStore): boolean {
  for (const _ of store.range({
    start: Uint8Array.of(STATE_PREFIX),
    end: Uint8Array.of(STATE_PREFIX + 1),
    limit: 1,
  }))
    return true
  return false
}

/**
 * The ledger: open it on a store, hand it committed batches, read balances. See the module doc.
 */
export class Ledger {
  readonly #store: OrderedStore
  readonly #metrics: LedgerMetrics | undefined
  readonly #options: LedgerOptions
  readonly #tree: BucketTree
  readonly config: LedgerConfig
  #head: Head
  #tail: Promise<unknown> = Promise.resolve()

  private constructor(
    deps: LedgerDeps,
    options: LedgerOptions,
    tree: BucketTree,
    config: LedgerConfig,
    head: Head,
  ) {
    this.#store = deps.store
    this.#metrics = deps.metrics
    this.#options = options
    this.#tree = tree
    this.config = config
    this.#head = head
    this.#metrics?.ledgerHeight.set(head.height)
  }

  /**
   * Open the ledger on `deps.store`: an empty store starts from `genesis` (height 0, written at
   * once); a store with a head resumes at it (`genesis`, when given, must be the same chain's).
   *
   * @throws NodusError `LEDGER_GENESIS_INVALID` (an invalid genesis, none for an empty store, or
   *   another chain's); `LEDGER_STATE_INCOMPLETE` (state entries without a head: an interrupted import)
   */
  static async open(
    deps: LedgerDeps,
    init: { genesis?: LedgerGenesis; options?: Partial<LedgerOptions> } = {},
  ): Promise<Ledger> {
    const options = { ...DEFAULT_LEDGER_OPTIONS, ...init.options }
    const store = deps.store
    let head = readHead(store)
    if (head === undefined) {
      if (hasState(store))
        throw new NodusError('LEDGER_STATE_INCOMPLETE', 'ledger: the store holds state but no head')
      if (init.genesis === undefined)
        throw new NodusError('LEDGER_GENESIS_INVALID', 'ledger genesis: an empty store needs one', {
          details: { reason: 'missing' },
        })
      const entries = genesisEntries(init.genesis)
      const timestampMs = init.genesis.timestampMs
      head = await store.write((w) => {
        const byBucket = new Set<number>()
        for (const [k, v] of entries) {
          const b = bucketOf(k)
          w.put(physicalKey(b, k), v)
          byBucket.add(b)
        }
        const changed = new Map<number, Uint8Array>()
        for (const b of byBucket) changed.set(b, hashBucket(bucketEntries(w, b)))
        const update = new BucketTree().stage(changed)
        const h = { height: 0, timestampMs, root: update.root }
        writeCommit(w, update, h, options.rootsKept)
        return h
      })
    }
    const tree = new BucketTree(storedBuckets(store))
    if (!bytesEqual(tree.root, head.root))
      throw new NodusError('LEDGER_STATE_INCOMPLETE', 'ledger: the bucket hashes do not give the head’s root')
    const raw = store.get(physicalKey(bucketOf(CONFIG_KEY), CONFIG_KEY))
    const config = raw === undefined ? undefined : decodeConfig(raw)
    if (config === undefined) throw new NodusError('LEDGER_STATE_INCOMPLETE', 'ledger: no config entry')
    if (init.genesis !== undefined && !bytesEqual(init.genesis.chain, config.chain))
      throw new NodusError('LEDGER_GENESIS_INVALID', 'ledger genesis: the store belongs to another chain', {
        details: { reason: 'other chain' },
      })
    return new Ledger(deps, options, tree, config, head)
  }

  /** Height of the last applied batch (0: genesis). */
  get height(): number {
    return this.#head.height
  }

  /** Its commit timestamp, Unix ms. */
  get timestampMs(): number {
    return this.#head.timestampMs
  }

  /** The state root at {@link Ledger.height}, 32 bytes. */
  get root(): Uint8Array {
    return this.#head.root
  }

  /** The chain id, 32 bytes. */
  get chain(): Uint8Array {
    return this.config.chain
  }

  /**
   * Apply one committed batch: every transaction in order (decoded and verified here unless `checked`
   * gives them, from {@link checkTxs}), its outcome recorded; then one atomic write. Calls are
   * serialized in call order.
   *
   * @param options.checked - `batch.txs` already checked (same length and order), e.g. verified in a pool
   * @returns the new height's root and every transaction's outcome
   * @throws NodusError `LEDGER_BATCH_OUT_OF_ORDER` when `height` is not {@link Ledger.height} + 1 or
   *   the timestamp is older than the head's (nothing changes); `INVALID_ARGUMENT` when `checked`
   *   does not match `txs`; `ABORTED` before the write starts
   */
  async applyBatch(
    batch: LedgerBatch,
    options: AbortOptions & { checked?: readonly CheckedTx[] } = {},
  ): Promise<BatchResult> {
    const [r] = await this.applyBatches(
      [options.checked === undefined ? { batch } : { batch, checked: options.checked }],
      options,
    )
    return r as BatchResult
  }

  /**
   * Apply consecutive batches in one atomic write (one LMDB transaction and one sync for the group,
   * not one per batch): each batch's outcomes and root are what {@link applyBatch} would give, every
   * height's root is kept, and the head is the last batch's; a crash leaves the state at the height
   * before the group or at its last. Calls are serialized in call order with {@link applyBatch}.
   *
   * @param group - batches of heights {@link Ledger.height} + 1, + 2, …, each optionally `checked`
   * @returns one result per batch applied, in order: the group stops after a batch that decides the
   *   next epoch (`decided`; committee.ts), as the rest belongs to the epoch that ended
   * @throws as {@link applyBatch} (nothing of the group changes)
   */
  applyBatches(
    group: readonly { batch: LedgerBatch; checked?: readonly CheckedTx[] }[],
    options: AbortOptions = {},
  ): Promise<BatchResult[]> {
    const run = this.#tail.then(() => this.#apply(group, options))
    this.#tail = run.catch(() => undefined)
    return run
  }

  async #apply(
    group: readonly { batch: LedgerBatch; checked?: readonly CheckedTx[] }[],
    options: AbortOptions,
  ): Promise<BatchResult[]> {
    let prev = this.#head
    const checkedAll: (readonly CheckedTx[])[] = []
    for (const { batch, checked: given } of group) {
      if (!Number.isSafeInteger(batch.height) || batch.height !== prev.height + 1)
        throw outOfOrder(`batch height ${batch.height}, expected ${prev.height + 1}`, {
          height: batch.height,
          expected: prev.height + 1,
        })
      if (!Number.isSafeInteger(batch.timestampMs) || batch.timestampMs < prev.timestampMs)
        throw outOfOrder(`batch timestamp ${batch.timestampMs} is older than ${prev.timestampMs}`, {
          timestampMs: batch.timestampMs,
          previous: prev.timestampMs,
        })
      const checked = given ?? (await checkTxs(batch.txs, options))
      if (checked.length !== batch.txs.length)
        throw new NodusError('INVALID_ARGUMENT', 'ledger: checked transactions do not match the batch')
      checkedAll.push(checked)
      prev = { height: batch.height, timestampMs: batch.timestampMs, root: prev.root }
    }
    if (group.length === 0) return []
    throwIfAborted(options.signal)
    const t0 = performance.now()
    // Each batch's update is adopted as soon as it is staged, so the next one stages on top of it;
    // the undos put the tree back if the write fails.
    const undos: TreeUpdate[] = []
    let results: BatchResult[]
    try {
      results = await this.#store.write((w) => {
        const out: BatchResult[] = []
        for (const [i, { batch }] of group.entries()) {
          const now = batch.timestampMs
          const ws = new WorkingSet(w, this.config, batch.height)
          const outcomes: TxOutcome[] = (checkedAll[i] as readonly CheckedTx[]).map((c) => {
            if (c.tx === undefined) return { id: c.id, code: c.refusal }
            const code = applyTx(ws, c.tx.body, now)
            return code === undefined ? { id: c.tx.id } : { id: c.tx.id, code }
          })
          const update = this.#tree.stage(ws.flush(w))
          undos.push(this.#tree.adopt(update))
          writeCommit(
            w,
            update,
            { height: batch.height, timestampMs: now, root: update.root },
            this.#options.rootsKept,
          )
          const r: BatchResult = { height: batch.height, timestampMs: now, root: update.root, outcomes }
          out.push(r)
          if (ws.decided !== undefined) {
            // The epoch ends here: later batches of the group belong to it and are not applied.
            r.decided = ws.decided
            break
          }
        }
        return out
      })
    } catch (err) {
      for (const u of undos.reverse()) this.#tree.adopt(u)
      throw err
    }
    const last = results[results.length - 1] as BatchResult
    this.#head = { height: last.height, timestampMs: last.timestampMs, root: last.root }
    if (this.#metrics !== undefined) {
      this.#metrics.ledgerHeight.set(last.height)
      this.#metrics.ledgerBatchApplySeconds.observe((performance.now() - t0) / 1000)
      for (const r of results)
        for (const o of r.outcomes) this.#metrics.ledgerTxs.inc({ outcome: o.code ?? 'applied' })
    }
    return results
  }

  #get(logical: Uint8Array): Uint8Array | undefined {
    return this.#store.get(physicalKey(bucketOf(logical), logical))
  }

  /** An account (32-byte key) with its mana regenerated to the last commit time; undefined if never used. */
  account(key: Uint8Array): AccountView | undefined {
    const raw = this.#get(accountKey(key))
    const a = raw === undefined ? undefined : decodeAccount(raw)
    if (a === undefined) return undefined
    return { nonce: a.nonce, nonceMask: a.nonceMask, mana: manaAt(a.mana, this.#head.timestampMs) }
  }

  /** A token (32-byte id): issuer, supply, name; undefined if never created. */
  token(id: Uint8Array): TokenEntry | undefined {
    const raw = this.#get(tokenKey(id))
    return raw === undefined ? undefined : decodeToken(raw)
  }

  /** `holder`'s balance of `token` (0 when none). */
  tokenBalance(token: Uint8Array, holder: Uint8Array): number {
    const raw = this.#get(balanceKey(token, holder))
    return (raw === undefined ? undefined : decodeAmount(raw)) ?? 0
  }

  /**
   * The committee of the current epoch and the change in progress (committee.ts), as of the last
   * batch; undefined when the genesis had no committee.
   */
  committee(): EpochState | undefined {
    const raw = this.#get(COMMITTEE_KEY)
    return raw === undefined ? undefined : decodeEpochState(raw)
  }

  /** A pending committee proposal by its 32-byte hash, or undefined. */
  proposal(hash: Uint8Array): CommitteeProposal | undefined {
    if (!(hash instanceof Uint8Array) || hash.byteLength !== 32) return undefined
    const raw = this.#get(proposalKey(hash))
    return raw === undefined ? undefined : decodeProposal(raw)
  }

  /** The mana supply counters as of the last batch (the sum of balances, before lazy regeneration). */
  supply(): SupplyCounters {
    const raw = this.#get(SUPPLY_KEY)
    const s = raw === undefined ? undefined : decodeSupply(raw)
    if (s === undefined) throw new NodusError('LEDGER_STATE_INCOMPLETE', 'ledger: no supply counters')
    return s
  }

  /** The root and commit timestamp of `height`, while kept (`ledger.rootsKept`). */
  rootAt(height: number): { root: Uint8Array; timestampMs: number } | undefined {
    if (!Number.isSafeInteger(height) || height < 0) return undefined
    const raw = this.#store.get(rootKey(height))
    return raw === undefined
      ? undefined
      : { root: new Uint8Array(raw.subarray(0, HASH_BYTES)), timestampMs: readU64(raw, HASH_BYTES) }
  }

  /** The store (snapshot.ts exports from it). */
  get store(): OrderedStore {
    return this.#store
  }

  /** Wait for every batch handed over so far. */
  async settled(): Promise<void> {
    await this.#tail
  }
}
