/**
 * Transaction load on a federation devnet (issue 21), shared by `nodus demo --scenario consensus` and
 * bench/consensus.bench.ts: senders sign mana transfers with their own node's key and submit them
 * through that node (`POST /ledger/tx`) at a paced offered rate; a {@link CommitWatch} follows
 * `GET /ledger/commits` (server-sent events) on chosen nodes and records when and how often each
 * transaction committed there. Finality of a transaction = from its submission to its commit seen at
 * every watched node (all in this process's clock).
 */

import type { Ed25519PrivateKey } from '@libp2p/interface'
import { NodusError } from '../common/errors.ts'
import { signEd25519 } from '../crypto/index.ts'
import { encodeTx } from '../ledger/index.ts'
import { type ApiTarget, getJson, postJson } from './client.ts'
import { sleep } from './demo-devnet.ts'
import { followEvents } from './sse.ts'

/** One `commit` event of `GET /ledger/commits` (the ledger area's AppliedCommit). */
interface CommitEvent {
  height: number
  root: string
  txs: { id: string; code?: string }[]
}

/** Where one transaction was seen committed. */
interface Seen {
  /** Watched node index → when it saw the commit (ms, this process's clock). */
  at: Map<number, number>
  /** Times it appeared in a commit, over all watched nodes. */
  count: number
  /** Refusal codes seen, if any. */
  codes: string[]
}

/** Follows the commits of some nodes. Bounded by the transactions it is told about. */
export class CommitWatch {
  readonly #seen = new Map<string, Seen>()
  readonly #nodes = new Set<number>()
  readonly #heights = new Map<number, number>()
  readonly #now: () => number
  /** Commit events that carried transactions this watch did not submit. */
  foreign = 0
  /** Transactions seen applied per watched node (any transaction, not only expected ones). */
  readonly appliedTxs = new Map<number, number>()
  #listeners = new Set<(id: string, node: number) => void>()

  constructor(now: () => number = () => performance.now()) {
    this.#now = now
  }

  /** Expect transaction `id` (hex): only expected ones are recorded. */
  expect(id: string): void {
    if (!this.#seen.has(id)) this.#seen.set(id, { at: new Map(), count: 0, codes: [] })
  }

  /** Called on every expected transaction seen committed at a node. Returns the unsubscribe. */
  onSeen(fn: (id: string, node: number) => void): () => void {
    this.#listeners.add(fn)
    return () => this.#listeners.delete(fn)
  }

  /**
   * Follow node `index`'s commits until `signal` aborts; resolves once the first commit event arrived
   * (so the stream is live), rejects if none within `timeoutMs`.
   */
  async follow(index: number, api: ApiTarget, signal: AbortSignal, timeoutMs = 30_000): Promise<void> {
    this.#nodes.add(index)
    let first: (() => void) | undefined
    const live = new Promise<void>((r) => {
      first = r
    })
    const headers = api.token === undefined ? {} : { authorization: `Bearer ${api.token}` }
    const done = followEvents(
      api,
      '/ledger/commits',
      headers,
      (name, data) => {
        if (name !== 'commit') return
        const c = JSON.parse(data) as CommitEvent
        this.#heights.set(index, c.height)
        const t = this.#now()
        const applied = c.txs.filter((tx) => tx.code === undefined).length
        this.appliedTxs.set(index, (this.appliedTxs.get(index) ?? 0) + applied)
        for (const tx of c.txs) {
          const s = this.#seen.get(tx.id)
          if (s === undefined) {
            this.foreign++
            continue
          }
          s.count++
          if (tx.code !== undefined) s.codes.push(tx.code)
          if (!s.at.has(index)) s.at.set(index, t)
          for (const fn of this.#listeners) fn(tx.id, index)
        }
        first?.()
      },
      `the commits of node ${index}`,
      signal,
    )
    done.catch(() => {})
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new NodusError('TIMEOUT', `node ${index}: no commit within ${timeoutMs} ms`)),
        timeoutMs,
      )
    })
    try {
      await Promise.race([live, timeout, done.then(() => Promise.reject(new Error('stream ended')))])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Last height seen at node `index`. */
  height(index: number): number {
    return this.#heights.get(index) ?? 0
  }

  /** Whether expected `id` committed at every watched node. */
  everywhere(id: string): boolean {
    const s = this.#seen.get(id)
    return s !== undefined && s.at.size === this.#nodes.size
  }

  /** ms from `sentAt` to `id` seen at every watched node, or undefined when not yet everywhere. */
  finalityMs(id: string, sentAt: number): number | undefined {
    const s = this.#seen.get(id)
    if (s === undefined || s.at.size < this.#nodes.size) return undefined
    return Math.max(...s.at.values()) - sentAt
  }

  /** Whether `id` committed exactly once, applied, at every watched node. */
  exactlyOnce(id: string): boolean {
    const s = this.#seen.get(id)
    return (
      s !== undefined &&
      s.at.size === this.#nodes.size &&
      s.count === this.#nodes.size &&
      s.codes.length === 0
    )
  }

  /** How `id` was seen: appearances over all watched nodes, nodes seen at, refusal codes. */
  seen(id: string): { count: number; nodes: number; codes: string[] } {
    const s = this.#seen.get(id)
    return { count: s?.count ?? 0, nodes: s?.at.size ?? 0, codes: s?.codes ?? [] }
  }
}

/** A sending account: its node's key, submitting through that node. */
interface Sender {
  node: number
  api: ApiTarget
  publicKey: Uint8Array
  sign: (m: Uint8Array) => Uint8Array | Promise<Uint8Array>
  nonce: number
  /** Nonces submitted and not yet seen committed at the sender's node. */
  open: Set<number>
  /** Lowest of `open` (or `nonce` when empty), advanced lazily. */
  low: number
  /** Transactions to send again (refused at the door: the nonce must not be skipped). */
  retry: { id: string; bytes: Uint8Array }[]
}

export interface TxLoadOptions {
  /** Offered transactions per second, all senders together. */
  rate: number
  /**
   * Most a sender's next nonce may run ahead of its lowest nonce not yet seen committed (< 32: the
   * ledger's nonce window, beyond which a transaction is refused `LEDGER_TX_BAD_NONCE`). Default 30.
   */
  maxNonceAhead?: number
}

/** A submitted transaction. */
export interface Submitted {
  id: string
  sender: number
  sentAt: number
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

/** Paced transfers from some nodes' keys, each submitted through its own node. */
export class TxLoad {
  readonly accepted: Submitted[] = []
  /** POSTs that failed (and were queued to be sent again). */
  failures = 0
  /** Failed POSTs by error code (the node's, or the client's for a connection error). */
  readonly failureCodes = new Map<string, number>()
  /** Ticks where every sender was at its nonce bound (offered load deferred). */
  deferred = 0
  readonly #senders: Sender[]
  readonly #chain: Uint8Array
  readonly #watch: CommitWatch
  readonly #to: Uint8Array
  readonly #max: number
  #rate: number
  #next = 0

  private constructor(
    senders: Sender[],
    chain: Uint8Array,
    to: Uint8Array,
    watch: CommitWatch,
    o: TxLoadOptions,
  ) {
    this.#senders = senders
    this.#chain = chain
    this.#to = to
    this.#watch = watch
    this.#rate = o.rate
    this.#max = Math.min(31, o.maxNonceAhead ?? 30)
    // A transaction committed at its sender's node closes its nonce.
    watch.onSeen((id, node) => {
      const mine = this.#mine.get(id)
      if (mine?.sender.node === node) {
        this.#mine.delete(id)
        mine.sender.open.delete(mine.nonce)
      }
    })
  }

  readonly #mine = new Map<string, { sender: Sender; nonce: number }>()

  /** Whether sender `s` may use its next nonce now. */
  #room(s: Sender): boolean {
    while (s.low < s.nonce && !s.open.has(s.low)) s.low++
    return s.retry.length > 0 || s.nonce - s.low < this.#max
  }

  /** Transactions submitted but not yet seen committed at their sender's node. */
  get uncommitted(): number {
    return this.#mine.size
  }

  /**
   * Senders: accounts (Ed25519 keys, each a genesis account) submitting through node `index` (which
   * `watch` must follow); transfers go to `to` (32-byte key).
   */
  static async open(
    senders: { index: number; api: ApiTarget; key: Ed25519PrivateKey }[],
    to: Uint8Array,
    watch: CommitWatch,
    o: TxLoadOptions,
  ): Promise<TxLoad> {
    const first = senders[0]
    if (first === undefined) throw new NodusError('INVALID_ARGUMENT', 'no senders')
    const info = await getJson<{ chain: string }>(first.api, '/ledger')
    const opened = await Promise.all(
      senders.map(async (n) => {
        const me = n.key.publicKey.raw
        const account = await getJson<{ nonce: number }>(n.api, `/ledger/accounts/${hex(me)}`)
        return {
          node: n.index,
          api: n.api,
          publicKey: me,
          sign: (m: Uint8Array) => signEd25519(n.key, m),
          nonce: account.nonce,
          open: new Set<number>(),
          low: account.nonce,
          retry: [],
        } satisfies Sender
      }),
    )
    return new TxLoad(opened, new Uint8Array(Buffer.from(info.chain, 'hex')), to, watch, o)
  }

  /** Change the offered rate (tx/s) from now on. */
  set rate(r: number) {
    this.#rate = r
  }

  async #send(s: Sender): Promise<void> {
    let item = s.retry.shift()
    if (item === undefined) {
      const nonce = s.nonce++
      s.open.add(nonce)
      const tx = await encodeTx(
        { chain: this.#chain, nonce, kind: 'transfer', to: this.#to, amount: 1 },
        { publicKey: s.publicKey, sign: s.sign },
      )
      item = { id: hex(tx.id), bytes: tx.bytes }
      this.#watch.expect(item.id)
      this.#mine.set(item.id, { sender: s, nonce })
    }
    const sentAt = performance.now()
    try {
      await postJson(s.api, '/ledger/tx', { tx: Buffer.from(item.bytes).toString('base64') })
      this.accepted.push({ id: item.id, sender: s.node, sentAt })
    } catch (err) {
      const code = err instanceof NodusError ? err.code : 'ERROR'
      this.failureCodes.set(code, (this.failureCodes.get(code) ?? 0) + 1)
      this.failures++
      s.retry.push(item)
    }
  }

  /**
   * Offer transactions at the current rate for `durationMs` (or until `signal` aborts), round-robin
   * over the senders; a sender at its nonce bound is skipped, so the offered rate is an upper bound.
   */
  async run(durationMs: number, signal: AbortSignal): Promise<void> {
    const t0 = performance.now()
    let offered = 0
    const pending = new Set<Promise<void>>()
    while (!signal.aborted) {
      const elapsed = performance.now() - t0
      if (elapsed >= durationMs) break
      const due = Math.floor((this.#rate * elapsed) / 1000) - offered
      for (let i = 0; i < due; i++) {
        let picked: Sender | undefined
        for (let j = 0; j < this.#senders.length && picked === undefined; j++) {
          const s = this.#senders[(this.#next + j) % this.#senders.length] as Sender
          if (this.#room(s)) picked = s
        }
        if (picked === undefined) {
          this.deferred++
          break
        }
        this.#next = (this.#senders.indexOf(picked) + 1) % this.#senders.length
        offered++
        const p = this.#send(picked)
        pending.add(p)
        void p.finally(() => pending.delete(p))
      }
      await sleep(5)
    }
    await Promise.all(pending)
    // Failed submissions go again (their nonces must not be skipped).
    for (let round = 0; round < 20 && this.#senders.some((s) => s.retry.length > 0); round++) {
      await Promise.all(this.#senders.map(async (s) => (s.retry.length > 0 ? this.#send(s) : undefined)))
      if (this.#senders.some((s) => s.retry.length > 0)) await sleep(250)
    }
  }
}
