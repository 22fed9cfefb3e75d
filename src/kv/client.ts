/**
 * A TypeScript client of a node's kv GraphQL interface (graphql.ts), exported by the package as
 * `nodus/client`. It signs operations here, with the caller's key (`OpSigner`: Ed25519, or hybrid
 * Ed25519 + ML-DSA-65), so the private key never leaves the client; it timestamps them with its own
 * hybrid logical clock (hlc.ts) and sends the signed envelopes with the `submitOperations` mutation
 * (which needs the node's API token). Reads are GraphQL queries over `fetch`; subscriptions use the
 * graphql-ws protocol over the platform's WebSocket (Node ≥ 22, browsers).
 *
 * ```ts
 * const client = new NodusKvClient({ url: 'http://127.0.0.1:7070', token, signer: ed25519OpSigner(key) })
 * const db = await client.createDb('notes')
 * await client.set(db, 'greeting', 'hello')
 * await client.get(db, 'greeting') // 'hello'
 * for await (const e of client.subscribe({ db, key: 'greeting' })) console.log(e.op, e.args)
 * ```
 *
 * Values: what an operation may carry (`KvValue`); bytes come back as `Uint8Array` (JSON documents
 * excepted, which hold no bytes).
 *
 * Private (sealed) databases (sealed.ts; client-sealed.ts): given the reader's X-Wing secret keys
 * (`readerKeys`), the client seals the values of its writes to a private database before signing
 * and opens them on read, with the database keys shared to those keys; `createDb(name, { sealed:
 * true })` makes the first key and shares it with the client's own reader key, `share` and `rotate`
 * hand keys to other readers. Neither the X-Wing keys nor the database keys leave the client.
 *
 * ```ts
 * const client = new NodusKvClient({ url, token, signer, readerKeys: { peerId, keys: [{ epoch: 0, keyPair }] } })
 * const db = await client.createDb('diary', { sealed: true })
 * await client.set(db, 'today', 'rain') // the node holds only ciphertext
 * await client.share(db, readerPeerId) // or the reader's { peer, keyId, xwing }
 * ```
 */
import { type Client, createClient } from 'graphql-ws/client'
import type { AbortOptions } from '../common/abort.ts'
import { systemClock } from '../common/clock.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import { type Random, systemRandom } from '../common/random.ts'
import { KvReadClient, type KvReadClientOptions } from './client-reads.ts'
import type { ReaderKeyRecord } from './client-sealed.ts'
import { errorOf, valueFromJson } from './client-transport.ts'
import { formatDbId } from './db-id.ts'
import { createArgs, type Grant, grantArgs, revokeArgs } from './db-ops.ts'
import type { KvEvent } from './graphql-events.ts'
import { HlcClock } from './hlc.ts'
import { indexesOption } from './index-spec.ts'
import { DEFAULT_OP_LIMITS, encodeOp, type OpInput, type OpLimits } from './op.ts'
import type { KvType, KvValue, Op } from './op-types.ts'
import { newestKey } from './sealed.ts'
import { newDbKey, sealDbKey, shareArgs } from './sealed-share.ts'
import type { OpSigner } from './signer.ts'
import type { IndexSpec } from './state/secondary.ts'

// What `readerKeys` is built from: a node's X-Wing key files (`<dataDir>/keys`) or a seed.
export {
  generateXWingKeyPair,
  listXWingKeys,
  loadXWingKey,
  type RecipientKeys,
  xwingKeyPairFromSeed,
} from '../crypto/index.ts'
export type {
  GeoSearchQuery,
  KvReadClientOptions,
  LoggedOp,
  ReaderKey,
  ZRangeOptions,
} from './client-reads.ts'
export type { ReaderKeyRecord } from './client-sealed.ts'
export { errorOf, valueFromJson } from './client-transport.ts'
export type { KvEvent, KvWatch } from './graphql-events.ts'
export type { KvValue, Op } from './op-types.ts'
export { ed25519OpSigner, hybridOpSigner, type OpSigner } from './signer.ts'
export type { IndexSpec } from './state/secondary.ts'

/** Options of {@link NodusKvClient}. */
export interface NodusKvClientOptions extends KvReadClientOptions {
  /** Signs every operation: `ed25519OpSigner(key)` or `hybridOpSigner(identity)` (signer.ts). */
  signer: OpSigner
  /** Draws database keys and the nonces of sealed values; default the system's CSPRNG. */
  random?: Random
  /** The node's `kv.maxFutureSkewMs`, ms; default 60,000. */
  maxFutureSkewMs?: number
  /** The bounds the node applies to operations (section `kv`); default the defaults. */
  limits?: OpLimits
  /** The WebSocket constructor for subscriptions; default `globalThis.WebSocket`. */
  webSocket?: unknown
  /** Events buffered per subscription before it ends with QUEUE_FULL; default 10,000. */
  subscriptionQueue?: number
}

/** What a submitted operation became (`applied`, `duplicate` or `refused` with `code` and `message`). */
export interface SubmitResult {
  /** The op id, hex; absent when the envelope did not decode. */
  id?: string
  status: 'applied' | 'duplicate' | 'refused'
  code?: string
  message?: string
}

/** Options of a write. */
export interface WriteOptions extends AbortOptions {
  /** Unix ms from which what the op writes is hidden (never replicated as a delete). */
  expireAt?: number
  /** The `grant` op id (hex or 32 bytes) that lets this client's key write, when it is not the owner's. */
  cap?: string | Uint8Array
}

const b64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')
const bytesOf = (x: string | Uint8Array): Uint8Array =>
  typeof x === 'string' ? new Uint8Array(Buffer.from(x, 'hex')) : x

const EVENT_FIELDS = 'db key field type op args hlc { ms c } expireAt id signer source changed'

/** The client. One per signer and node; `close()` ends its subscriptions. */
export class NodusKvClient extends KvReadClient {
  readonly #signer: OpSigner
  readonly #hlc: HlcClock
  readonly #limits: OpLimits
  readonly #webSocket: unknown
  readonly #queueMax: number
  readonly #random: Random
  #ws: Client | undefined

  constructor(options: NodusKvClientOptions) {
    super(options)
    this.#signer = options.signer
    this.#hlc = new HlcClock(
      { clock: options.clock ?? systemClock },
      { maxFutureSkewMs: options.maxFutureSkewMs ?? 60_000 },
    )
    this.#limits = options.limits ?? DEFAULT_OP_LIMITS
    this.#webSocket = options.webSocket ?? globalThis.WebSocket
    this.#queueMax = options.subscriptionQueue ?? 10_000
    this.#random = options.random ?? systemRandom
  }

  /** The id of this signer's database `name` (`<name>-<owner key id>`). @throws KV_DB_ID_INVALID */
  dbId(name: string): string {
    const pub = this.#signer.scheme === 'ed25519' ? this.#signer.publicKey : this.#signer.publicKey.ed25519
    return formatDbId(name, pub)
  }

  /**
   * Sign an operation with this client's key, timestamped by its HLC. Nothing is sent.
   * @throws NodusError `KV_OP_INVALID`, `KV_OP_TOO_LARGE` (as the node would refuse it), `KV_CLOCK_EXHAUSTED`
   */
  sign(input: Omit<OpInput, 'hlc'>, options: AbortOptions = {}): Promise<Op> {
    return encodeOp({ ...input, hlc: this.#hlc.now() }, this.#signer, { limits: this.#limits, ...options })
  }

  /** Submit signed operations (at most 1,024); each gets its own result. Needs the token. */
  async submit(ops: Op[], options: AbortOptions = {}): Promise<SubmitResult[]> {
    const data = await this.request<{ r: (SubmitResult & Record<string, unknown>)[] }>(
      'mutation($e: [String!]!) { r: submitOperations(envelopes: $e) { id status code message } }',
      { e: ops.map((o) => b64(o.bytes)) },
      options,
    )
    return data.r.map((x) => {
      const out: SubmitResult = { status: x.status }
      if (typeof x.id === 'string') out.id = x.id
      if (typeof x.code === 'string') out.code = x.code
      if (typeof x.message === 'string') out.message = x.message
      return out
    })
  }

  /**
   * Seal the values of a key operation when its database is private (asking the node whether it is,
   * cached): with the newest database key this client holds. Nothing is sent.
   * @returns the input, its values sealed when the database is private
   * @throws NodusError `KV_OP_INVALID` (`details.reason` `sealed-db`) for an operation that cannot work
   *   sealed (sets, sorted sets, geo, JSON, time series); `KV_DB_KEY_MISSING` when no share opens with
   *   the client's reader keys (or it has none)
   */
  seal<T extends Omit<OpInput, 'hlc'>>(input: T, options: AbortOptions = {}): Promise<T> {
    return this.keyring.seal(input, this.#random, options)
  }

  /**
   * Seal (when the database is private: {@link seal}), sign and submit one operation. When the node
   * refuses a plaintext value because the database became private since the client last asked, the
   * client asks again and retries once, sealed.
   * @returns its result (`applied` or `duplicate`)
   * @throws NodusError with the refusal's code (`KV_UNAUTHORIZED`, `KV_ARGS_INVALID`, …) when refused;
   *   what {@link seal} throws
   */
  async write(input: Omit<OpInput, 'hlc'>, options: AbortOptions = {}): Promise<SubmitResult> {
    const sealed = await this.seal(input, options)
    try {
      return await this.#writeOne(sealed, options)
    } catch (err) {
      if (sealed !== input || input.type === 'db' || !isNodusError(err, 'KV_OP_INVALID')) throw err
      if (!(await this.keyring.state(input.db, { ...options, fresh: true })).sealed) throw err
      return await this.#writeOne(await this.seal(input, options), options)
    }
  }

  async #writeOne(input: Omit<OpInput, 'hlc'>, options: AbortOptions): Promise<SubmitResult> {
    const op = await this.sign(input, options)
    const [r] = await this.submit([op], options)
    if (r === undefined) throw new NodusError('PROTOCOL_ERROR', 'no result for the operation')
    if (r.status === 'refused')
      throw errorOf({ message: r.message, extensions: { code: r.code, details: { id: r.id } } })
    return r
  }

  #op(db: string, key: string, type: KvType, op: string, args: KvValue[], o: WriteOptions, field?: string) {
    const input: Omit<OpInput, 'hlc'> = { db, key, type, op, args }
    if (field !== undefined) input.field = field
    if (o.expireAt !== undefined) input.expireAt = o.expireAt
    if (o.cap !== undefined) input.cap = bytesOf(o.cap)
    return this.write(input, o)
  }

  // Databases and writers.

  /**
   * Create this signer's database `name`; its id. With a hybrid signer the database is in hybrid mode
   * (every op must be hybrid-signed); `hybrid: true` asks for that and refuses an Ed25519 signer.
   * `indexes` declares secondary indexes (`{ name, type: 'hash', field }` or `{ name, type: 'json',
   * path }`, path an RFC 9535 singular query; at most 16; index-spec.ts), which `byIndex` reads; only
   * the database's first create (by HLC) declares them. `sealed: true` makes it private: values
   * sealed under a database key (epoch 0) that this client makes and shares with its own reader key
   * (`readerKeys`, which it needs, or the key would live only in this process).
   * @throws NodusError `INVALID_ARGUMENT` (hybrid without a hybrid signer; sealed without reader
   *   keys), `KV_OP_INVALID` (a bad index declaration; indexes beside sealed), or the refusal's code
   */
  async createDb(
    name: string,
    options: AbortOptions & {
      hybrid?: boolean
      sealed?: boolean
      indexes?: readonly IndexSpec[]
      options?: { [k: string]: KvValue }
    } = {},
  ): Promise<string> {
    if (options.hybrid === true && this.#signer.scheme !== 'hybrid')
      throw new NodusError('INVALID_ARGUMENT', 'a hybrid database needs a hybrid signer (hybridOpSigner)')
    if (options.sealed === true && this.keyring.ownRecord() === undefined)
      throw new NodusError(
        'INVALID_ARGUMENT',
        'a private (sealed) database needs the client’s reader keys (readerKeys), to share its key with',
      )
    const db = this.dbId(name)
    const args = createArgs({
      ...options.options,
      ...(options.sealed === true ? { sealed: true } : {}),
      ...indexesOption(options.indexes ?? []),
    })
    await this.write({ db, key: '', type: 'db', op: 'create', args }, options)
    if (options.sealed === true) await this.rotate(db, [], options)
    return db
  }

  /**
   * Share every key of the private database `db` this client holds with `reader`: a PeerId (its key
   * record looked up by the node: `readerKey`) or the reader's key record. Only the owner's shares
   * count. A share opens with that X-Wing key only: share again when the reader rotates it.
   * @returns the `share` op ids (hex)
   * @throws NodusError `KV_DB_KEY_MISSING` when this client holds no key of `db`; the lookup's errors;
   *   the refusal's code (`KV_UNAUTHORIZED` when the signer is not the owner)
   */
  async share(db: string, reader: string | ReaderKeyRecord, options: AbortOptions = {}): Promise<string[]> {
    const { keys } = await this.keyring.state(db, { ...options, fresh: true })
    if (keys.size === 0)
      throw new NodusError('KV_DB_KEY_MISSING', `this client holds no key of ${db} to share`, {
        details: { db },
      })
    return this.#shareKeys(db, keys, [reader], options)
  }

  /**
   * Make the next epoch's key of the private database `db` (0 when it has none) and share it with the
   * client's own reader key and `readers` (PeerIds or key records). New writes seal with it; a reader
   * left out keeps the older keys (and what they sealed) but gets no new one.
   * @returns the new epoch
   * @throws NodusError `INVALID_ARGUMENT` when the key would be shared with no one; as {@link share}
   */
  async rotate(
    db: string,
    readers: readonly (string | ReaderKeyRecord)[],
    options: AbortOptions = {},
  ): Promise<number> {
    const own = this.keyring.ownRecord()
    const to = own === undefined ? [...readers] : [own, ...readers]
    if (to.length === 0)
      throw new NodusError(
        'INVALID_ARGUMENT',
        'rotate: no reader to share the new key with (readerKeys or readers)',
      )
    const { keys } = await this.keyring.state(db, { ...options, fresh: true })
    const epoch = (newestKey(keys)?.epoch ?? -1) + 1
    const key = newDbKey(this.#random)
    await this.#shareKeys(db, new Map([[epoch, key]]), to, options)
    this.keyring.remember(db, epoch, key)
    return epoch
  }

  async #shareKeys(
    db: string,
    keys: ReadonlyMap<number, Uint8Array>,
    readers: readonly (string | ReaderKeyRecord)[],
    options: AbortOptions,
  ): Promise<string[]> {
    const ops: Op[] = []
    for (const reader of readers) {
      const record = typeof reader === 'string' ? await this.readerKey(reader, options) : reader
      for (const [epoch, key] of keys) {
        const args = shareArgs(sealDbKey(db, key, epoch, record))
        ops.push(await this.sign({ db, key: '', type: 'db', op: 'share', args }, options))
      }
    }
    const ids: string[] = []
    for (const r of await this.submit(ops, options)) {
      if (r.status === 'refused')
        throw errorOf({ message: r.message, extensions: { code: r.code, details: { id: r.id } } })
      ids.push(r.id as string)
    }
    return ids
  }

  /** Let `grant.writer` write to `db`; the grant's op id (hex), which the writer passes as `cap`. */
  async grant(db: string, grant: Grant, options: AbortOptions = {}): Promise<string> {
    const r = await this.write({ db, key: '', type: 'db', op: 'grant', args: grantArgs(grant) }, options)
    return r.id as string
  }

  /** Revoke the grant whose op id is `grantId` (hex or bytes). */
  revoke(db: string, grantId: string | Uint8Array, options: AbortOptions = {}): Promise<SubmitResult> {
    return this.write({ db, key: '', type: 'db', op: 'revoke', args: revokeArgs(bytesOf(grantId)) }, options)
  }

  // Writes (Redis's commands, resolved to absolute values: ops.ts).

  set = (db: string, key: string, value: KvValue, o: WriteOptions = {}) =>
    this.#op(db, key, 'string', 'set', [value], o)
  /** DEL: the whole key (any type). */
  del = (db: string, key: string, o: WriteOptions = {}) => this.#op(db, key, 'string', 'del', [], o)
  hset = (db: string, key: string, fields: { [f: string]: KvValue }, o: WriteOptions = {}) =>
    this.#op(db, key, 'hash', 'hset', Object.entries(fields).flat(), o)
  hdel = (db: string, key: string, fields: string[], o: WriteOptions = {}) =>
    this.#op(db, key, 'hash', 'hdel', fields, o)
  /** LPUSH a b c gives c b a. */
  lpush = (db: string, key: string, values: KvValue[], o: WriteOptions = {}) =>
    this.#op(db, key, 'list', 'lpush', values, o)
  rpush = (db: string, key: string, values: KvValue[], o: WriteOptions = {}) =>
    this.#op(db, key, 'list', 'rpush', values, o)
  /** Remove list elements by their ids (hex, from lrange). */
  lrem = (db: string, key: string, ids: string[], o: WriteOptions = {}) =>
    this.#op(db, key, 'list', 'lrem', ids.map(bytesOf), o)
  lset = (db: string, key: string, id: string, value: KvValue, o: WriteOptions = {}) =>
    this.#op(db, key, 'list', 'lset', [bytesOf(id), value], o)
  sadd = (db: string, key: string, members: string[], o: WriteOptions = {}) =>
    this.#op(db, key, 'set', 'sadd', members, o)
  srem = (db: string, key: string, members: string[], o: WriteOptions = {}) =>
    this.#op(db, key, 'set', 'srem', members, o)
  /** ZADD: `[score, member]` pairs; a score may be `'+inf'` or `'-inf'`. */
  zadd = (db: string, key: string, entries: [number | '+inf' | '-inf', string][], o: WriteOptions = {}) =>
    this.#op(db, key, 'zset', 'zadd', entries.flat(), o)
  zrem = (db: string, key: string, members: string[], o: WriteOptions = {}) =>
    this.#op(db, key, 'zset', 'zrem', members, o)
  geoadd = (
    db: string,
    key: string,
    entries: { lon: number; lat: number; member: string }[],
    o: WriteOptions = {},
  ) =>
    this.#op(
      db,
      key,
      'geo',
      'geoadd',
      entries.flatMap((e) => [e.lon, e.lat, e.member]),
      o,
    )
  /** JSON.SET of the document, or of one top-level member. */
  jsonSet = (db: string, key: string, value: KvValue, o: WriteOptions & { member?: string } = {}) =>
    this.#op(db, key, 'json', 'json.set', [value], o, o.member)
  jsonDel = (db: string, key: string, o: WriteOptions & { member?: string } = {}) =>
    this.#op(db, key, 'json', 'json.del', [], o, o.member)
  /** XADD with id `'*'` (from the op's HLC) or `'<ms>-<seq>'`. */
  xadd = (
    db: string,
    key: string,
    fields: { [f: string]: KvValue },
    o: WriteOptions & { id?: string } = {},
  ) => this.#op(db, key, 'stream', 'xadd', [o.id ?? '*', ...Object.entries(fields).flat()], o)
  xdel = (db: string, key: string, ids: string[], o: WriteOptions = {}) =>
    this.#op(db, key, 'stream', 'xdel', ids, o)
  /** TS.ADD at Unix ms `timestamp`, or `'*'` (the op's HLC ms). */
  tsAdd = (db: string, key: string, timestamp: number | '*', value: number, o: WriteOptions = {}) =>
    this.#op(db, key, 'ts', 'ts.add', [timestamp, value], o)
  tsDel = (db: string, key: string, from: number, to: number, o: WriteOptions = {}) =>
    this.#op(db, key, 'ts', 'ts.del', [from, to], o)

  /**
   * Watch a key (`{ db, key }`), a key prefix (`{ db, prefix }`) or a whole database (`{ db }`): the
   * operations applied on the node from when it registers the subscription (read the state after
   * subscribing, not before, to miss nothing). Ends when `signal` aborts or the loop breaks; throws
   * when the connection fails or the node ends the subscription (QUEUE_FULL: it fell behind), never
   * silently resubscribing.
   */
  subscribe(
    watch: { db: string; key?: string; prefix?: string },
    options: AbortOptions = {},
  ): AsyncIterableIterator<KvEvent> {
    const { db, key, prefix } = watch
    const [field, decl, call, variables] =
      key !== undefined
        ? ['keyChanged', '$db: String!, $key: String!', 'db: $db, key: $key', { db, key }]
        : prefix !== undefined
          ? ['pattern', '$db: String!, $prefix: String!', 'db: $db, prefix: $prefix', { db, prefix }]
          : ['dbChanged', '$db: String!', 'db: $db', { db }]
    this.#ws ??= createClient({
      url: `${this.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: this.#webSocket,
      retryAttempts: 0,
    })
    const queue: KvEvent[] = []
    let error: NodusError | undefined
    let done = false
    let wake: (() => void) | undefined
    const stop = (err?: NodusError) => {
      if (done) return
      done = true
      error = err
      wake?.()
    }
    const dispose = this.#ws.subscribe<{ e: KvEvent & { args: unknown } }>(
      { query: `subscription(${decl}) { e: ${field}(${call}) { ${EVENT_FIELDS} } }`, variables },
      {
        next: (r) => {
          if (r.errors?.[0] !== undefined) return stop(errorOf(r.errors[0]))
          const e = r.data?.e
          if (e === undefined) return
          if (queue.length >= this.#queueMax) {
            dispose()
            return stop(
              new NodusError('QUEUE_FULL', `more than ${this.#queueMax} events unread (subscriptionQueue)`),
            )
          }
          queue.push({ ...e, args: valueFromJson(e.args) as KvValue[] })
          wake?.()
        },
        error: (err) => {
          const first = Array.isArray(err) ? err[0] : undefined
          stop(
            first !== undefined
              ? errorOf(first)
              : new NodusError(
                  'NODE_UNREACHABLE',
                  `the subscription's connection failed: ${describeError(err)}`,
                ),
          )
        },
        complete: () => stop(),
      },
    )
    const onAbort = () => {
      dispose()
      stop()
    }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    const end = () => {
      options.signal?.removeEventListener('abort', onAbort)
      dispose()
      stop()
    }
    const iterator: AsyncIterableIterator<KvEvent> = {
      async next() {
        for (;;) {
          const e = queue.shift()
          if (e !== undefined) return { value: e, done: false }
          if (done) {
            end()
            const err = error
            error = undefined
            if (err !== undefined) throw err
            return { value: undefined, done: true }
          }
          await new Promise<void>((resolve) => {
            wake = resolve
          })
          wake = undefined
        }
      },
      async return() {
        queue.length = 0
        end()
        return { value: undefined, done: true }
      },
      [Symbol.asyncIterator]() {
        return iterator
      },
    }
    return iterator
  }

  /** Close the subscriptions' connection (their iterators end). */
  async close(): Promise<void> {
    const ws = this.#ws
    this.#ws = undefined
    await ws?.dispose()
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) return err.message
  const ev = err as { code?: unknown; reason?: unknown }
  return ev.code !== undefined ? `closed with ${String(ev.code)} ${String(ev.reason ?? '')}` : String(err)
}
