/**
 * Applied kv operations routed to the GraphQL subscribers that watch them, before any GraphQL runs:
 * each subscriber watches one key, one key prefix of a database, or a whole database (the prefix ''),
 * and an operation is queued only to the subscribers of its own database whose key or prefix matches
 * (a hash lookup for the key; a lookup per prefix length of the key, or a scan of the database's
 * prefixes when fewer). So an operation costs nothing for subscribers of other keys and databases,
 * and GraphQL (mercurius) runs the selection set only of the subscribers that receive it.
 *
 * Every subscriber has a bounded queue (`kv.graphqlSubscriptionQueue`): one that falls further behind
 * is ended with `QUEUE_FULL` rather than silently missing events, so it knows to read what changed.
 */
import { NodusError } from '../common/errors.ts'
import type { AppliedEvent, OpSource } from './engine.ts'
import type { KvGraphqlMetrics } from './metrics.ts'
import type { Hlc, KvValue } from './op-types.ts'

/** What one subscriber watches. */
export type KvWatch =
  | { kind: 'key'; db: string; key: string }
  | { kind: 'db'; db: string }
  | { kind: 'prefix'; db: string; prefix: string }

/** An applied operation as subscribers see it. */
export interface KvEvent {
  db: string
  key: string
  field?: string
  /** The op's type (`string`, `hash`, …, or `db` for create, grant and revoke). */
  type: string
  op: string
  args: KvValue[]
  hlc: Hlc
  /** Unix ms from which what the op wrote is hidden. */
  expireAt?: number
  /** The op id, hex (64 characters). */
  id: string
  /** The signer's public key, base64 (32 bytes, or 1,984 for a hybrid key). */
  signer: string
  /** Where this node got it: `local` (its API), `gossip` or `sync`. */
  source: OpSource
  /** Whether the visible state changed (false: it lost to newer writes everywhere it wrote). */
  changed: boolean
}

export interface KvEventHubDeps {
  /** The kv area's applied-op events (`Kv.onApplied`); heard only while someone subscribes. */
  onApplied(listener: (e: AppliedEvent) => void): () => void
  metrics: Pick<
    KvGraphqlMetrics,
    'kvGraphqlSubscriptions' | 'kvGraphqlSubscriptionsEnded' | 'kvGraphqlEvents'
  >
  /** Turns the hub's NodusErrors into what the subscriber's iterator throws (default: as they are). */
  errorOf?(err: NodusError): Error
}

export interface KvEventHubOptions {
  /** Subscriptions at once (`kv.graphqlMaxSubscriptions`). */
  maxSubscriptions: number
  /** Subscriptions at once with one owner, a WebSocket connection (`kv.graphqlMaxSubscriptionsPerConnection`). */
  maxPerOwner: number
  /** Events queued per subscriber (`kv.graphqlSubscriptionQueue`). */
  queueMax: number
}

/** One database's subscribers: by key, and by key prefix (a whole-database watch is the prefix ''). */
interface DbRoutes {
  keys: Map<string, Set<Feed>>
  prefixes: Map<string, Set<Feed>>
  size: number
}

/** The table and name a watch is filed under. */
const filing = (routes: DbRoutes, w: KvWatch): [Map<string, Set<Feed>>, string] =>
  w.kind === 'key' ? [routes.keys, w.key] : [routes.prefixes, w.kind === 'db' ? '' : w.prefix]

const toEvent = (e: AppliedEvent): KvEvent => {
  const b = e.op.body
  return {
    db: b.db,
    key: b.key,
    ...(b.field === undefined ? {} : { field: b.field }),
    type: b.type,
    op: b.op,
    args: b.args,
    hlc: b.hlc,
    ...(b.expireAt === undefined ? {} : { expireAt: b.expireAt }),
    id: Buffer.from(e.op.id).toString('hex'),
    signer: Buffer.from(b.signer.buffer, b.signer.byteOffset, b.signer.byteLength).toString('base64'),
    source: e.source,
    changed: e.changed,
  }
}

/** The routing table and its subscribers. One per API server. */
export class KvEventHub {
  readonly #deps: KvEventHubDeps
  readonly #options: KvEventHubOptions
  readonly #dbs = new Map<string, DbRoutes>()
  readonly #perOwner = new WeakMap<object, number>()
  #size = 0
  #unlisten: (() => void) | undefined

  constructor(deps: KvEventHubDeps, options: KvEventHubOptions) {
    this.#deps = deps
    this.#options = options
  }

  /** Subscriptions open. */
  get size(): number {
    return this.#size
  }

  /**
   * Start watching: the events of operations applied from now on that match `watch`, in the order
   * they were applied, until the iterator is returned (or thrown into), the hub closes (done), or the
   * subscriber falls `queueMax` events behind (its `next()` rejects with QUEUE_FULL).
   *
   * @param owner - counts against `maxPerOwner` (the subscriber's connection); absent: not counted
   * @throws NodusError `QUEUE_FULL` when `maxSubscriptions` or `maxPerOwner` subscriptions are open
   */
  subscribe(watch: KvWatch, owner?: object): AsyncIterableIterator<KvEvent> {
    const { maxSubscriptions, maxPerOwner } = this.#options
    const owned = owner === undefined ? 0 : (this.#perOwner.get(owner) ?? 0)
    if (this.#size >= maxSubscriptions || owned >= maxPerOwner) {
      this.#deps.metrics.kvGraphqlSubscriptionsEnded.inc({ reason: 'refused' })
      throw new NodusError(
        'QUEUE_FULL',
        this.#size >= maxSubscriptions
          ? `this node has ${this.#size} subscriptions open (kv.graphqlMaxSubscriptions)`
          : `this connection has ${owned} subscriptions open (kv.graphqlMaxSubscriptionsPerConnection)`,
        { details: { maxSubscriptions, maxPerConnection: maxPerOwner } },
      )
    }
    const feed = new Feed(this, watch, owner, this.#options.queueMax)
    let routes = this.#dbs.get(watch.db)
    if (routes === undefined) {
      routes = { keys: new Map(), prefixes: new Map(), size: 0 }
      this.#dbs.set(watch.db, routes)
    }
    const [table, name] = filing(routes, watch)
    let feeds = table.get(name)
    if (feeds === undefined) {
      feeds = new Set()
      table.set(name, feeds)
    }
    feeds.add(feed)
    routes.size++
    if (owner !== undefined) this.#perOwner.set(owner, owned + 1)
    this.#size++
    this.#deps.metrics.kvGraphqlSubscriptions.set(this.#size)
    this.#unlisten ??= this.#deps.onApplied((e) => this.#dispatch(e))
    return feed
  }

  /** End every subscription (done) and stop listening. */
  close(): void {
    for (const routes of [...this.#dbs.values()])
      for (const set of [...routes.keys.values(), ...routes.prefixes.values()])
        for (const f of [...set]) f.end('closed')
  }

  /** Called by a feed once, when it ends. */
  remove(feed: Feed, reason: 'closed' | 'overflow'): void {
    const { watch } = feed
    const routes = this.#dbs.get(watch.db)
    if (routes === undefined) return
    const [table, name] = filing(routes, watch)
    const feeds = table.get(name)
    feeds?.delete(feed)
    if (feeds?.size === 0) table.delete(name)
    if (--routes.size === 0) this.#dbs.delete(watch.db)
    if (feed.owner !== undefined) this.#perOwner.set(feed.owner, (this.#perOwner.get(feed.owner) ?? 1) - 1)
    this.#size--
    this.#deps.metrics.kvGraphqlSubscriptions.set(this.#size)
    this.#deps.metrics.kvGraphqlSubscriptionsEnded.inc({ reason })
    if (this.#size === 0) {
      this.#unlisten?.()
      this.#unlisten = undefined
    }
  }

  /** The error a subscriber's iterator throws for `err`. */
  errorOf(err: NodusError): Error {
    return this.#deps.errorOf?.(err) ?? err
  }

  #dispatch(e: AppliedEvent): void {
    const routes = this.#dbs.get(e.op.body.db)
    if (routes === undefined) return
    const key = e.op.body.key
    let event: KvEvent | undefined
    let n = 0
    const deliver = (feeds: Iterable<Feed> | undefined): void => {
      if (feeds === undefined) return
      for (const f of feeds) {
        event ??= toEvent(e)
        if (f.push(event)) n++
      }
    }
    deliver(routes.keys.get(key))
    if (routes.prefixes.size > 0) {
      if (routes.prefixes.size <= key.length + 1) {
        for (const [prefix, feeds] of [...routes.prefixes]) if (key.startsWith(prefix)) deliver([...feeds])
      } else for (let i = 0; i <= key.length; i++) deliver(routes.prefixes.get(key.slice(0, i)))
    }
    if (n > 0) this.#deps.metrics.kvGraphqlEvents.inc(n)
  }
}

/** One subscriber: a bounded queue read as an async iterator. */
class Feed implements AsyncIterableIterator<KvEvent> {
  readonly watch: KvWatch
  readonly owner: object | undefined
  readonly #hub: KvEventHub
  readonly #max: number
  #queue: KvEvent[] = []
  #waiting: { resolve(r: IteratorResult<KvEvent>): void; reject(e: Error): void } | undefined
  #ended = false
  #error: Error | undefined

  constructor(hub: KvEventHub, watch: KvWatch, owner: object | undefined, max: number) {
    this.#hub = hub
    this.watch = watch
    this.owner = owner
    this.#max = max
  }

  /** Queue an event (or hand it to a waiting reader). False when ended (now or before). */
  push(e: KvEvent): boolean {
    if (this.#ended) return false
    if (this.#waiting !== undefined) {
      const w = this.#waiting
      this.#waiting = undefined
      w.resolve({ value: e, done: false })
      return true
    }
    if (this.#queue.length >= this.#max) {
      this.#error = this.#hub.errorOf(
        new NodusError(
          'QUEUE_FULL',
          `the subscriber fell ${this.#max} events behind (kv.graphqlSubscriptionQueue); resubscribe, then read what changed`,
          {
            details: { queueMax: this.#max },
          },
        ),
      )
      this.#queue = []
      this.end('overflow')
      return false
    }
    this.#queue.push(e)
    return true
  }

  /** Stop: a waiting reader gets done (or the overflow error); later reads get the same. */
  end(reason: 'closed' | 'overflow'): void {
    if (this.#ended) return
    this.#ended = true
    this.#hub.remove(this, reason)
    const w = this.#waiting
    this.#waiting = undefined
    if (w === undefined) return
    if (this.#error === undefined) w.resolve({ value: undefined, done: true })
    else {
      w.reject(this.#error)
      this.#error = undefined
    }
  }

  next(): Promise<IteratorResult<KvEvent>> {
    const e = this.#queue.shift()
    if (e !== undefined) return Promise.resolve({ value: e, done: false })
    if (this.#error !== undefined) {
      const err = this.#error
      this.#error = undefined
      return Promise.reject(err)
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject }
    })
  }

  return(): Promise<IteratorResult<KvEvent>> {
    this.#queue = []
    this.end('closed')
    return Promise.resolve({ value: undefined, done: true })
  }

  throw(err?: unknown): Promise<IteratorResult<KvEvent>> {
    this.#queue = []
    this.end('closed')
    return Promise.reject(err)
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<KvEvent> {
    return this
  }
}
