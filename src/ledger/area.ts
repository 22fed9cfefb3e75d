/**
 * The ledger area (README.md): the {@link Ledger} of a federation on LMDB (`<dataDir>/ledger`),
 * started from the consensus genesis's `ledger` section (section.ts), fed the consensus area's
 * commits in order ({@link LedgerArea.applyAll}: one batch per commit, height = the epoch's `base` +
 * commit index, so the last applied commit is stored atomically with the batch it applied; commits
 * queued together go in one write). The batch that decides a committee change ends the epoch: the
 * result says so (`decided`), and the consensus area switches to the next epoch's committee, whose
 * commit indexes start again at 1 above that height (consensus README, "Epoch changes").
 *
 * A commit's transactions are those of its vertices in commit order, a transaction id kept once
 * (a second copy within the commit is dropped; a copy in a later commit is refused by its nonce and
 * changes nothing). Signatures are verified in a VerifyPool before the batch is applied, or earlier:
 * when the transaction was submitted here or its vertex arrived ({@link LedgerArea.preverify}).
 */
import { join } from 'node:path'
import { NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import { VerifyPool } from '../crypto/index.ts'
import { LmdbOrderedStore, MemoryOrderedStore, type OrderedStore } from '../kv/index.ts'
import type { EpochState } from './committee.ts'
import type { LedgerMetrics } from './metrics.ts'
import type { LedgerOptions } from './options.ts'
import { ledgerGenesisOf } from './section.ts'
import { exportSnapshot, importSnapshot, type SnapshotInfo } from './snapshot.ts'
import { type CheckedTx, checkTxs, Ledger, type TxOutcome } from './state.ts'
import { decodeTx } from './tx.ts'

/** A commit as the ledger takes it (a consensus `CommittedSubDag`'s fields it reads). */
export interface LedgerCommit {
  /** The consensus epoch that committed it; default: the ledger's current epoch. */
  epoch?: number
  /** Commit index within the epoch (from 1): ledger height = the epoch's `base` + index. */
  index: number
  timestampMs: number
  leader: { author: number; round: number; digest: Uint8Array }
  vertices: readonly { txs: readonly Uint8Array[] }[]
}

/** What one applied commit did: `GET /ledger/commits` sends one per commit. */
export interface AppliedCommit {
  height: number
  timestampMs: number
  /** State root after it, hex. */
  root: string
  leader: { author: number; round: number; digest: string }
  /** Each transaction: its id (hex) and, when refused, the code. */
  txs: { id: string; code?: string }[]
  /** When this node applied it, Unix ms (its clock). */
  appliedAtMs: number
}

export interface LedgerComponents {
  logger: Logger
  metrics: LedgerMetrics
  clock: { now(): number }
  dataDir: string
  /** The consensus genesis (its id is the chain). */
  genesis: { id: Uint8Array; body: { createdAtMs: number; ledger: Record<string, unknown> } }
  /** Signature verification threads (0: inline). */
  verifyThreads: number
  /** Default LMDB at `<dataDir>/ledger`. */
  createStore?: () => OrderedStore
}

/** The ledger area's public services. */
export interface LedgerArea {
  /** The open ledger. @throws NodusError `NOT_STARTED` before the node started */
  readonly ledger: Ledger
  /** The signature pool of transactions (closed by this area's `afterStop`): others may share it. */
  readonly verifyPool: VerifyPool
  /** The last height applied (0: genesis; 0 also before start). */
  height(): number
  /**
   * The committee of the current epoch (ledger `committee()`): its `epoch`, `base` (the height before
   * its first commit), members, leader seed; undefined for a genesis without a committee or before start.
   */
  epoch(): EpochState | undefined
  /** Apply a commit ({@link LedgerArea.applyAll} of one). */
  apply(commit: LedgerCommit): Promise<AppliedGroup>
  /**
   * Apply consecutive commits of the current epoch in one write (height = `base` + index; those at or
   * below the height skipped): one LMDB transaction and sync for all of them, each its own height and
   * root; listeners hear each. Commits of another epoch are not applied (an epoch that ended: the
   * consensus area drops its later commits). The group stops at a batch that decides the next
   * epoch: the result's `decided` is that epoch's committee, and later commits of the group are not
   * applied.
   */
  applyAll(commits: readonly LedgerCommit[]): Promise<AppliedGroup>
  /**
   * Start checking (decode, signature) transactions of a vertex that arrived, so its commit finds
   * them checked. Keyed by the byte arrays themselves (a WeakMap): the commit must hand over the
   * same `Uint8Array`s (a consensus vertex's `txs`). Never throws; a failed check is redone at commit.
   */
  preverify(txs: readonly Uint8Array[]): void
  /**
   * Check a transaction before it is pooled: decodes, is this chain's, signature verifies.
   * @throws NodusError `LEDGER_TX_INVALID`, `LEDGER_TX_WRONG_CHAIN`, `SIGNATURE_INVALID`
   * @returns its id (32 bytes)
   */
  checkTx(bytes: Uint8Array): Promise<Uint8Array>
  /** Hear each applied commit. @returns a function that stops it */
  onApplied(listener: (c: AppliedCommit) => void): () => void
  /**
   * Wait until the transaction `id` is applied or refused in a commit (this node's view), or `signal` aborts.
   * @throws the signal's reason; `QUEUE_FULL` past 10,000 waiters
   */
  outcome(id: Uint8Array, signal: AbortSignal): Promise<{ height: number; outcome: TxOutcome; root: string }>
  /** The snapshot of the ledger at its height (snapshot.ts), chunks of `ledger.snapshotChunkBytes`. */
  exportSnapshot(signal?: AbortSignal): AsyncIterable<Uint8Array>
  /**
   * Replace the ledger by a snapshot: imported into memory first (every check of `importSnapshot`,
   * the root against `expectRoot`), then written over the store in one transaction.
   * @throws NodusError `LEDGER_SNAPSHOT_INVALID`, `LEDGER_SNAPSHOT_ROOT_MISMATCH` (the ledger unchanged)
   */
  installSnapshot(
    chunks: Iterable<Uint8Array>,
    options: { expectRoot: Uint8Array; expectHeight: number; signal?: AbortSignal },
  ): Promise<SnapshotInfo>
  beforeStart(): Promise<void>
  start(): Promise<void>
  stop(): Promise<void>
  afterStop(): Promise<void>
}

/** What {@link LedgerArea.applyAll} did. */
export interface AppliedGroup {
  /** Commits applied (a prefix of those above the height). */
  applied: number
  /** The next epoch's committee, when the last commit applied decided it (the epoch ended there). */
  decided?: EpochState
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
const MAX_WAITERS = 10_000

/** Build the ledger area. Nothing opens until `beforeStart`. */
export function createLedger(components: LedgerComponents, options: LedgerOptions): LedgerArea {
  const log = components.logger.child({ area: 'ledger' })
  const genesis = ledgerGenesisOf(components.genesis)
  // Shared with the consensus area (node.ts): one worker, not one per area. Batches of 1–2 checks
  // are verified inline (VerifyPool `inlineMaxBatch`; docs/BENCHMARKS.md, issue 21).
  const pool = new VerifyPool({
    threads: components.verifyThreads,
    maxBatch: 64,
    maxQueued: 65_536,
    inlineMaxBatch: 2,
  })
  const verify = (
    check: Parameters<VerifyPool['verify']>[0],
    o?: { signal?: AbortSignal },
  ): Promise<boolean> => pool.verify(check, o)
  let ledger: Ledger | undefined
  const listeners = new Set<(c: AppliedCommit) => void>()
  const waiters = new Map<string, Set<(r: { height: number; outcome: TxOutcome; root: string }) => void>>()
  let waiting = 0
  /** Transactions checked before their commit (module doc of `preverify`): freed with their bytes. */
  const checked = new WeakMap<Uint8Array, Promise<CheckedTx | undefined>>()
  const early = (t: Uint8Array): void => {
    if (checked.has(t)) return
    checked.set(
      t,
      checkTxs([t], { verify }).then(
        (r) => r[0],
        () => {
          checked.delete(t)
          return undefined
        },
      ),
    )
  }
  /** A committed transaction checked: early when it was, else now. */
  const checkOne = async (t: Uint8Array): Promise<CheckedTx> => {
    const c = await checked.get(t)
    if (c !== undefined) {
      components.metrics.ledgerTxChecks.inc({ when: 'early' })
      return c
    }
    components.metrics.ledgerTxChecks.inc({ when: 'at_commit' })
    return (await checkTxs([t], { verify }))[0] as CheckedTx
  }

  /** The transactions of a commit, a transaction id kept once (module doc). */
  const txsOf = (commit: LedgerCommit): Uint8Array[] => {
    const seen = new Set<string>()
    const txs: Uint8Array[] = []
    for (const v of commit.vertices)
      for (const t of v.txs) {
        // The id is BLAKE3 of the bytes: equal bytes, one transaction.
        const k = hex(t)
        if (seen.has(k)) continue
        seen.add(k)
        txs.push(t)
      }
    return txs
  }

  const applyAll = async (commits: readonly LedgerCommit[]): Promise<AppliedGroup> => {
    const l = open()
    const epoch = l.committee()
    const base = epoch?.base ?? 0
    const current = epoch?.epoch ?? 0
    const todo = commits.filter((c) => (c.epoch ?? current) === current && base + c.index > l.height)
    if (todo.length === 0) return { applied: 0 }
    const group = await Promise.all(
      todo.map(async (c) => {
        const txs = txsOf(c)
        return {
          batch: { height: base + c.index, timestampMs: c.timestampMs, txs },
          checked: await Promise.all(txs.map(checkOne)),
        }
      }),
    )
    const results = await l.applyBatches(group)
    const decided = results.at(-1)?.decided
    if (decided !== undefined)
      log.info(
        { height: results.at(-1)?.height, epoch: decided.epoch, members: decided.members.length },
        'the committee changed: the epoch ends at this height',
      )
    const appliedAtMs = components.clock.now()
    for (const [i, r] of results.entries()) {
      const commit = todo[i] as LedgerCommit
      const root = hex(r.root)
      const event: AppliedCommit = {
        height: r.height,
        timestampMs: r.timestampMs,
        root,
        leader: {
          author: commit.leader.author,
          round: commit.leader.round,
          digest: hex(commit.leader.digest),
        },
        txs: r.outcomes.map((o) => ({
          id: o.id === undefined ? '' : hex(o.id),
          ...(o.code === undefined ? {} : { code: o.code }),
        })),
        appliedAtMs,
      }
      for (const o of r.outcomes) {
        if (o.id === undefined) continue
        const ws = waiters.get(hex(o.id))
        if (ws === undefined) continue
        waiters.delete(hex(o.id))
        for (const w of ws) w({ height: r.height, outcome: o, root })
      }
      for (const fn of listeners) {
        try {
          fn(event)
        } catch (err) {
          log.debug({ err: (err as Error).message }, 'a commit listener failed')
        }
      }
    }
    return { applied: results.length, ...(decided === undefined ? {} : { decided }) }
  }

  const open = (): Ledger => {
    if (ledger === undefined)
      throw new NodusError('NOT_STARTED', 'the ledger is not open (the node has not started)')
    return ledger
  }

  return {
    get ledger() {
      return open()
    },
    verifyPool: pool,
    height: () => ledger?.height ?? 0,
    epoch: () => ledger?.committee(),
    apply: (commit) => applyAll([commit]),
    applyAll,
    preverify(txs) {
      for (const t of txs) early(t)
    },
    async checkTx(bytes) {
      const d = decodeTx(bytes)
      if (Buffer.compare(d.body.chain, genesis.chain) !== 0)
        throw new NodusError('LEDGER_TX_WRONG_CHAIN', 'the transaction is for another federation (chain)')
      if (!(await pool.verify(d.check)))
        throw new NodusError('SIGNATURE_INVALID', 'the transaction signature does not verify', {
          peerAction: 'ban',
        })
      // The same bytes go into this validator's vertex: the commit need not verify them again.
      if (!checked.has(bytes)) checked.set(bytes, Promise.resolve({ tx: { body: d.body, id: d.id, bytes } }))
      return d.id
    },
    onApplied(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    outcome(id, signal) {
      return new Promise((resolve, reject) => {
        if (signal.aborted) {
          reject(signal.reason)
          return
        }
        if (waiting >= MAX_WAITERS) {
          reject(new NodusError('QUEUE_FULL', 'too many requests wait for a commit'))
          return
        }
        const k = hex(id)
        const set = waiters.get(k) ?? new Set()
        waiters.set(k, set)
        waiting++
        const done = (r: { height: number; outcome: TxOutcome; root: string }): void => {
          waiting--
          signal.removeEventListener('abort', onAbort)
          resolve(r)
        }
        const onAbort = (): void => {
          waiting--
          set.delete(done)
          if (set.size === 0) waiters.delete(k)
          reject(signal.reason)
        }
        set.add(done)
        signal.addEventListener('abort', onAbort, { once: true })
      })
    },
    exportSnapshot(signal) {
      return exportSnapshot(open(), { chunkBytes: options.snapshotChunkBytes, ...(signal ? { signal } : {}) })
    },
    async installSnapshot(chunks, o) {
      const l = open()
      await l.settled()
      const staged = new MemoryOrderedStore()
      const info = await importSnapshot(staged, chunks, {
        ...o,
        chunkBytes: options.snapshotChunkBytes,
        rootsKept: options.rootsKept,
      })
      // One write replaces every key: a failure leaves the old ledger as it was, still open.
      const store = l.store
      await store.write((w) => {
        const old: Uint8Array[] = []
        for (const [k] of w.range({})) old.push(k.slice())
        for (const k of old) w.del(k)
        for (const [k, v] of staged.range({})) w.put(k, v)
      })
      ledger = await Ledger.open({ store, metrics: components.metrics }, { genesis, options })
      log.info({ height: info.height, root: hex(info.root) }, 'ledger replaced by a snapshot')
      return info
    },
    async beforeStart() {
      const store =
        components.createStore?.() ?? LmdbOrderedStore.open({ path: join(components.dataDir, 'ledger') })
      ledger = await Ledger.open({ store, metrics: components.metrics }, { genesis, options })
      log.info(
        { height: ledger.height, root: hex(ledger.root), epoch: ledger.committee()?.epoch },
        'ledger open',
      )
    },
    async start() {},
    async stop() {
      await ledger?.settled()
    },
    async afterStop() {
      await pool.close()
      await ledger?.store.close()
      ledger = undefined
    },
  }
}
