/**
 * Encrypted direct messages that reach offline peers (docs/PROTOCOLS.md, "Direct messages"): the key
 * directory (key-directory.ts), the `/nodus/msg/1.0.0` protocol, the inbox and the mailbox
 * (direct-store.ts).
 *
 * `/nodus/msg/1.0.0`: one request per stream through `requestResponse` (src/net/request.ts): a
 * length-prefixed dag-cbor request frame of at most `directMaxBodyBytes + 8 KiB + 1 KiB`, one
 * length-prefixed dag-cbor reply `{ ok: true, ... }` or `{ ok: false, code, message }`. Ops:
 *
 * - `{ op: "key" }` → `{ ok, record }`: the server's current key record;
 * - `{ op: "deliver", msg }` → `{ ok }`: a sealed message for the server, opened, checked for replay
 *   and stored in its inbox (flushed to disk) before the answer;
 * - `{ op: "store", to, ttlMs, msg }` → `{ ok, expiresAtMs }`: keep a sealed message for `to` (the
 *   server is one of the peers XOR-closest to `to`), within the storing peer's quota;
 * - `{ op: "fetch", after? }` → `{ ok, messages: [{ id, msg }], more }`: the messages kept for the
 *   requesting peer (its PeerId is the connection's, authenticated by Noise/TLS);
 * - `{ op: "ack", to, keeper, at, ids, sig }` → `{ ok, removed }`: delete messages kept for `to`;
 *   `sig` is `to`'s Ed25519 signature over dag-cbor `{ domain: "nodus/mailbox-ack/v1", to, keeper,
 *   at, ids }`, `keeper` must be the server and `at` within 5 minutes of its clock.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { withDeadline } from '../common/abort.ts'
import type { Clock } from '../common/clock.ts'
import { type ErrorCode, isNodusError, NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import type { Random } from '../common/random.ts'
import {
  blake3,
  decodeSealedEnvelope,
  ed25519KeyOf,
  type NodeIdentity,
  openMessage,
  replayExpiryMs,
  SEALED_MESSAGE_OVERHEAD_BYTES,
  type SealedMessageLimits,
  sealMessage,
  signEd25519,
  verifyEd25519,
} from '../crypto/index.ts'
import {
  closestPeers as closestPeersOf,
  lengthPrefixed,
  type Reply,
  requestResponse,
  StreamReader,
} from '../net/index.ts'
import { DirectStore, type InboxMessage } from './direct-store.ts'
import { KeyDirectory, type KeyDirectoryDht } from './key-directory.ts'
import type { MessagingMetrics } from './metrics.ts'
import type { MessagingOptions } from './options.ts'

/** The protocol id. */
export const DIRECT_PROTOCOL = '/nodus/msg/1.0.0'
/** The domain of a mailbox acknowledgement's signature. */
export const MAILBOX_ACK_DOMAIN = 'nodus/mailbox-ack/v1'
/** Most ids in one acknowledgement. */
export const MAX_ACK_IDS = 1024
/** How far an acknowledgement's `at` may be from the keeper's clock, ms. */
export const ACK_SKEW_MS = 5 * 60 * 1000
/** How long a sender reuses the keepers it found for a recipient, ms. */
export const KEEPER_CACHE_MS = 60_000
/** Bytes a request frame carries besides its sealed message. */
const FRAME_SLACK_BYTES = 1024

/** Codes a server's refusal keeps on the client (others become PROTOCOL_ERROR). */
const REMOTE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'PEER_BUSY',
  'SEALED_MESSAGE_INVALID',
  'SEALED_MESSAGE_STALE',
  'SEALED_MESSAGE_REPLAYED',
  'SEALED_MESSAGE_FORGED',
  'DECRYPT_FAILED',
  'INBOX_FULL',
  'MAILBOX_FULL',
  'MAILBOX_RECIPIENT_FULL',
  'QUOTA_EXCEEDED',
  'MAILBOX_REQUEST_INVALID',
  'NOT_STARTED',
  'PEER_BANNED',
])

/** Online failures after which a message goes to the mailbox instead. */
const UNREACHABLE: ReadonlySet<string> = new Set([
  'PEER_UNREACHABLE',
  'TIMEOUT',
  'STREAM_CLOSED',
  'INBOX_FULL',
  'NOT_STARTED',
  'PEER_BUSY',
  'PROTOCOL_ERROR',
])

/** What the direct messages use of the libp2p host (net's `libp2p`). */
export interface DirectHost {
  readonly peerId: PeerId
  handle(
    protocol: string,
    handler: (stream: Stream, connection: Connection) => void,
    options: { maxInboundStreams: number; maxOutboundStreams: number },
  ): Promise<void>
  unhandle(protocol: string): Promise<void>
  dialProtocol(peer: PeerId, protocol: string, options: { signal: AbortSignal }): Promise<Stream>
  getConnections(peer?: PeerId): Connection[]
  addEventListener(type: 'peer:connect', listener: () => void): void
  removeEventListener(type: 'peer:connect', listener: () => void): void
  readonly services: { dht: KeyDirectoryDht & Pick<KadDHT, 'getClosestPeers'> }
}

/** What {@link createDirectMessaging} needs. */
export interface DirectComponents {
  logger: Logger
  clock: Clock
  random: Random
  metrics: MessagingMetrics
  identity: NodeIdentity
  /** The node's data directory: keys in `keys/`, messages in `messages/`. */
  dataDir: string
  host: DirectHost
  /** The trust area's peer actions: a peer whose request breaks the protocol is reported. */
  peers: { report(peer: string, err: unknown): unknown; isBanned(peer: string): boolean }
}

/** What {@link DirectMessaging.send} did. */
export interface SendReceipt {
  /** The message id, hex (16 bytes). */
  id: string
  to: string
  /** `online`: the recipient stored it; `mailbox`: `keepers` of its closest peers did. */
  via: 'online' | 'mailbox'
  /** Keepers that stored it (0 when online). */
  keepers: number
}

/** Encrypted direct messages (the messaging area's). */
export interface DirectMessaging {
  /**
   * Seal `body` to `peer` and deliver it: straight to it when reachable, else at the `mailboxReplicas`
   * peers XOR-closest to it.
   * @throws NodusError `INVALID_ARGUMENT` (bad PeerId, body over `directMaxBodyBytes`), `KEY_NOT_FOUND`,
   *   `MAILBOX_UNAVAILABLE` (unreachable and no keeper stored it), the recipient's refusal
   *   (`SEALED_MESSAGE_*`, `DECRYPT_FAILED`), `NOT_STARTED`, `ABORTED`
   */
  send(peer: string, body: Uint8Array, options?: { signal?: AbortSignal }): Promise<SendReceipt>
  /** Inbox messages in arrival order after id `after` (hex), at most `limit` (default 100). */
  inbox(options?: { after?: string | undefined; limit?: number | undefined }): InboxMessage[]
  /** Delete an inbox message. @returns whether it was there */
  deleteMessage(id: string): Promise<boolean>
  /** Be told of each message stored in the inbox from now on. @returns unsubscribe */
  onMessage(listener: (m: InboxMessage) => void): () => void
  /** Ask the keepers closest to this node for its messages. @returns how many were new */
  collect(options?: { signal?: AbortSignal }): Promise<number>
  /**
   * Publish this node's key record in the DHT (one put at a time: a call during one joins it).
   * Until one succeeds, every new connection tries again.
   * @throws NodusError `NOT_ENOUGH_PEERS` (no connection), what kad-dht's put throws, `TIMEOUT`
   */
  publishKey(options?: { signal?: AbortSignal }): Promise<void>
  /** Rotate the X-Wing key now (and publish the new record). */
  rotateKey(): Promise<void>
  /** Rotate when due, delete keys past grace, expire mailbox entries and replay-window ids, re-publish (the key timer's round, every `keyRepublishMs`). */
  maintain(): Promise<void>
  readonly keys: KeyDirectory
  readonly store: DirectStore
  beforeStart(): Promise<void>
  start(): Promise<void>
  afterStart(): void
  beforeStop(): Promise<void>
  stop(): Promise<void>
  afterStop(): Promise<void>
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

function invalid(message: string): NodusError {
  return new NodusError('MAILBOX_REQUEST_INVALID', `/nodus/msg/1.0.0: ${message}`, { peerAction: 'reject' })
}

/** dag-cbor bytes an acknowledgement signs. */
export function mailboxAckBytes(
  to: string,
  keeper: string,
  at: number,
  ids: readonly Uint8Array[],
): Uint8Array {
  return dagCbor.encode({ domain: MAILBOX_ACK_DOMAIN, to, keeper, at, ids })
}

function codeOf(err: unknown): string {
  return isNodusError(err) ? err.code : 'ERROR'
}

/** Build (not start) the direct messages of the messaging area. */
export function createDirectMessaging(
  components: DirectComponents,
  options: MessagingOptions,
): DirectMessaging {
  const { clock, random, metrics, identity, host, peers } = components
  const log = components.logger.child({ area: 'messaging', part: 'direct' })
  const self = identity.peerId.toString()
  const limits: SealedMessageLimits = {
    maxBodyBytes: options.directMaxBodyBytes,
    maxAgeMs: options.directMaxAgeMs,
    maxFutureSkewMs: options.directMaxFutureSkewMs,
  }
  const maxFrame = options.directMaxBodyBytes + SEALED_MESSAGE_OVERHEAD_BYTES + FRAME_SLACK_BYTES
  const maxReply = options.mailboxFetchBytes + 64 * 1024
  const store = new DirectStore(`${components.dataDir}/messages`, {
    maxInboxMessages: options.inboxMaxMessages,
    replayWindowIds: options.replayWindowIds,
    mailboxMaxMessages: options.mailboxMaxMessages,
    mailboxMaxBytes: options.mailboxMaxBytes,
    mailboxSenderMessages: options.mailboxSenderMessages,
    mailboxSenderBytes: options.mailboxSenderBytes,
    mailboxRecipientMessages: options.mailboxRecipientMessages,
    mailboxRecipientBytes: options.mailboxRecipientBytes,
  })
  const listeners = new Set<(m: InboxMessage) => void>()
  let started = false
  let lifetime = new AbortController()
  let keyTimer: ReturnType<typeof setInterval> | undefined
  let mailboxTimer: ReturnType<typeof setInterval> | undefined
  let collecting: Promise<number> | undefined
  /** The last collection asked fewer than `mailboxReplicas` keepers: the next new connection starts another. */
  let fewKeepers = false
  /** A peer connected while a collection ran: run another after it if that one asked too few keepers. */
  let connectedMeanwhile = false
  /** Requests being served now (bounded by `directMaxConcurrentRequests`). */
  let serving = 0

  const request = (
    peer: PeerId,
    frame: Record<string, unknown>,
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<Reply> =>
    requestResponse(
      host,
      peer,
      DIRECT_PROTOCOL,
      dagCbor.encode(frame),
      {
        signal,
        timeoutMs: options.directRequestTimeoutMs,
        what,
        maxReplyBytes: maxReply,
        remoteCodes: REMOTE_CODES,
      },
      (reply) => reply,
    )

  const keys = new KeyDirectory(
    {
      identity,
      dataDir: components.dataDir,
      store,
      clock,
      random,
      logger: log,
      dht: host.services.dht,
      askPeer: (peer, signal) => {
        const id = peerIdFromString(peer)
        if (host.getConnections(id).length === 0) return undefined
        return request(id, { op: 'key' }, 'key request', signal).then((r) => {
          if (!(r.record instanceof Uint8Array)) throw invalid('key reply without a record')
          return r.record
        })
      },
    },
    options,
  )

  /** A sealed message for this node, opened: what goes to the inbox, and until when its id is remembered. */
  interface Opened {
    m: InboxMessage
    expiresAtMs: number
  }

  /**
   * Open a sealed message for this node with every check but the replay window's: the store checks
   * and remembers the id in the commit that takes the message into the inbox (direct-store.ts).
   */
  const openFor = (msg: Uint8Array, via: 'online' | 'mailbox'): Opened => {
    const opened = openMessage(keys.recipientKeys(), msg, { clock, limits })
    const m: InboxMessage = {
      id: hex(opened.id),
      from: opened.from,
      sentAtMs: opened.sentAt,
      receivedAtMs: clock.now(),
      via,
      body: opened.body,
    }
    return { m, expiresAtMs: replayExpiryMs(opened.sentAt, limits) }
  }

  const replayed = (reason: 'seen' | 'below-floor'): NodusError =>
    new NodusError('SEALED_MESSAGE_REPLAYED', 'sealed message: id already received', {
      peerAction: 'ignore',
      details: { reason },
    })

  /** A message the inbox took: count it and tell the listeners. */
  const delivered = (m: InboxMessage): void => {
    metrics.directDelivered.inc({ via: m.via })
    for (const l of listeners) {
      try {
        l(m)
      } catch (err) {
        log.warn({ err }, 'inbox listener threw')
      }
    }
  }

  /**
   * Open a sealed message and store it in the inbox (durably, its id remembered).
   * @throws NodusError what {@link openMessage} throws, `SEALED_MESSAGE_REPLAYED` (its id was taken
   *   before, this run or an earlier one, even if the message was deleted since), `INBOX_FULL`
   */
  const receive = async (msg: Uint8Array, via: 'online' | 'mailbox'): Promise<InboxMessage> => {
    const o = openFor(msg, via)
    const r = await store.addMessage(o.m, o.expiresAtMs, clock.now())
    if (r !== 'added') throw replayed(r)
    delivered(o.m)
    return o.m
  }

  const refused = (err: unknown): void => {
    metrics.directRefused.inc({ reason: codeOf(err).toLowerCase() })
  }

  // ---- server ----

  const serveOp = async (req: Record<string, unknown>, remote: string): Promise<Record<string, unknown>> => {
    const op = req.op
    if (op === 'key') return { ok: true, record: keys.record.bytes }
    if (op === 'deliver') {
      if (!(req.msg instanceof Uint8Array)) throw invalid('deliver without msg')
      // The sender seals a new id for every attempt, so an id seen before is a replay.
      await receive(req.msg, 'online')
      return { ok: true }
    }
    if (op === 'store') {
      const { to, ttlMs, msg } = req
      if (typeof to !== 'string' || to.length > 128 || ed25519KeyOf(to) === undefined)
        throw invalid('store: to is not an Ed25519 PeerId')
      if (!Number.isSafeInteger(ttlMs) || (ttlMs as number) <= 0) throw invalid('store: bad ttlMs')
      if (!(msg instanceof Uint8Array)) throw invalid('store without msg')
      decodeSealedEnvelope(msg, limits)
      const now = clock.now()
      const expiresAtMs = now + Math.min(ttlMs as number, options.mailboxTtlMs)
      const put = await store.putMailbox(to, {
        id: hex(blake3(msg)),
        storer: remote,
        storedAtMs: now,
        expiresAtMs,
        msg,
      })
      if (put === 'stored') metrics.mailboxStored.inc()
      return { ok: true, expiresAtMs }
    }
    if (op === 'fetch') {
      const after = req.after
      if (after !== undefined && (typeof after !== 'string' || after.length !== 64))
        throw invalid('fetch: bad after')
      const { entries, more } = store.listMailbox(remote, {
        after: after as string | undefined,
        maxBytes: options.mailboxFetchBytes,
        nowMs: clock.now(),
      })
      return {
        ok: true,
        messages: entries.map((e) => ({ id: Buffer.from(e.id, 'hex'), msg: e.msg })),
        more,
      }
    }
    if (op === 'ack') {
      const { to, keeper, at, ids, sig } = req
      if (typeof to !== 'string' || to.length > 128) throw invalid('ack: bad to')
      const pub = ed25519KeyOf(to)
      if (pub === undefined) throw invalid('ack: to is not an Ed25519 PeerId')
      if (keeper !== self) throw invalid('ack: for another keeper')
      if (!Number.isSafeInteger(at) || Math.abs((at as number) - clock.now()) > ACK_SKEW_MS)
        throw invalid('ack: at is not within 5 minutes of the keeper’s clock')
      if (
        !Array.isArray(ids) ||
        ids.length > MAX_ACK_IDS ||
        !ids.every((i) => i instanceof Uint8Array && i.byteLength === 32)
      )
        throw invalid(`ack: ids must be at most ${MAX_ACK_IDS} ids of 32 bytes`)
      if (
        !(sig instanceof Uint8Array) ||
        !verifyEd25519(pub, mailboxAckBytes(to, self, at as number, ids), sig)
      )
        throw invalid('ack: the signature does not verify under to’s key')
      const removed = await store.removeMailbox(
        to,
        (ids as Uint8Array[]).map((i) => hex(i)),
      )
      if (removed > 0) metrics.mailboxRemoved.inc({ reason: 'acked' }, removed)
      return { ok: true, removed }
    }
    throw invalid(`unknown op ${String(op).slice(0, 32)}`)
  }

  const serve = async (stream: Stream, connection: Connection): Promise<void> => {
    const remote = connection.remotePeer.toString()
    using deadline = withDeadline(undefined, options.directRequestTimeoutMs, 'direct message request')
    const signal = deadline.signal
    let slot = false
    try {
      if (peers.isBanned(remote))
        throw new NodusError('PEER_BANNED', 'this node has banned the requesting peer', {
          details: { peer: remote },
        })
      if (!started) throw new NodusError('NOT_STARTED', 'direct messages are not running')
      if (serving >= options.directMaxConcurrentRequests)
        throw new NodusError('PEER_BUSY', `already serving ${serving} direct message requests`, {
          peerAction: 'ignore',
          details: { limit: 'global' },
        })
      serving++
      slot = true
      const reader = new StreamReader(stream, { signal })
      let req: unknown
      try {
        req = dagCbor.decode(await reader.readFrame(maxFrame))
      } catch (err) {
        if (isNodusError(err) && err.code !== 'DECODE_FAILED' && err.code !== 'MESSAGE_TOO_LARGE') throw err
        throw invalid(`request is not a dag-cbor frame of at most ${maxFrame} bytes`)
      }
      if (typeof req !== 'object' || req === null || Array.isArray(req)) throw invalid('request is not a map')
      const reply = await serveOp(req as Record<string, unknown>, remote)
      stream.send(lengthPrefixed(dagCbor.encode(reply)))
      await stream.close({ signal })
    } catch (err) {
      refused(err)
      log.debug({ peer: remote, err: (err as Error).message }, 'direct message request refused')
      try {
        if (stream.writeStatus === 'writable') {
          const code = isNodusError(err) ? err.code : 'PROTOCOL_ERROR'
          const message = err instanceof Error ? err.message : 'error'
          stream.send(lengthPrefixed(dagCbor.encode({ ok: false, code, message })))
          await stream.close({ signal })
        }
      } catch {
        stream.abort(err instanceof Error ? err : new Error('direct message request failed'))
      }
      if (isNodusError(err) && (err.peerAction === 'reject' || err.peerAction === 'ban'))
        peers.report(remote, err)
    } finally {
      if (slot) serving--
    }
  }

  // ---- client ----

  /** The up to `n` peers XOR-closest to `target`'s kad id (kad-dht lookup, else connected peers), never itself nor `exclude`. */
  const closestPeers = (target: PeerId, n: number, exclude: string, signal: AbortSignal): Promise<PeerId[]> =>
    closestPeersOf(host, target.toMultihash().bytes, n, {
      signal,
      timeoutMs: options.keyLookupTimeoutMs,
      exclude,
      onError: (err) => log.debug({ err: (err as Error).message }, 'closest peers lookup failed'),
    })

  /** Recipient → its keepers and when they were found; Map order is recency. */
  const keeperCache = new Map<string, { peers: PeerId[]; atMs: number }>()
  const keepersOf = async (to: PeerId, signal: AbortSignal): Promise<PeerId[]> => {
    const key = to.toString()
    const now = clock.now()
    const hit = keeperCache.get(key)
    keeperCache.delete(key)
    if (hit !== undefined && now - hit.atMs < KEEPER_CACHE_MS && hit.peers.length > 0) {
      keeperCache.set(key, hit)
      return hit.peers
    }
    const peers = await closestPeers(to, options.mailboxReplicas, key, signal)
    keeperCache.set(key, { peers, atMs: now })
    while (keeperCache.size > options.keeperCacheEntries) {
      const oldest = keeperCache.keys().next().value
      if (oldest === undefined) break
      keeperCache.delete(oldest)
    }
    return peers
  }

  const notStarted = (): NodusError => new NodusError('NOT_STARTED', 'direct messages are not running')

  const send = async (
    peer: string,
    body: Uint8Array,
    o: { signal?: AbortSignal } = {},
  ): Promise<SendReceipt> => {
    if (!started) throw notStarted()
    let to: PeerId
    try {
      to = peerIdFromString(peer)
    } catch (err) {
      throw new NodusError('INVALID_ARGUMENT', `not a PeerId: ${peer.slice(0, 128)}`, { cause: err })
    }
    if (ed25519KeyOf(peer) === undefined)
      throw new NodusError('INVALID_ARGUMENT', 'direct messages go to Ed25519 PeerIds only')
    const signal = AbortSignal.any([lifetime.signal, ...(o.signal === undefined ? [] : [o.signal])])
    const lookupSignal = AbortSignal.any([signal, AbortSignal.timeout(options.keyLookupTimeoutMs)])
    let record = await keys.lookup(peer, lookupSignal)
    let sealed = await sealMessage(identity, record, body, { clock, random, limits, signal })
    const id = hex(sealed.id)
    if (peer === self) {
      await receive(sealed.bytes, 'online')
      metrics.directSent.inc({ via: 'online' })
      return { id, to: peer, via: 'online', keepers: 0 }
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await request(to, { op: 'deliver', msg: sealed.bytes }, 'direct message', signal)
        metrics.directSent.inc({ via: 'online' })
        return { id, to: peer, via: 'online', keepers: 0 }
      } catch (err) {
        if (signal.aborted) throw signal.reason
        // A recipient that rotated its key refuses ours as unknown: look it up again, once.
        if (attempt === 0 && isNodusError(err, 'SEALED_MESSAGE_INVALID')) {
          keys.forget(peer)
          record = await keys.lookup(peer, lookupSignal)
          sealed = await sealMessage(identity, record, body, { clock, random, limits, signal })
          continue
        }
        if (!UNREACHABLE.has(codeOf(err))) throw err
        log.debug({ peer, err: (err as Error).message }, 'recipient unreachable: to its mailbox')
        break
      }
    }
    const keepers = await keepersOf(to, signal)
    const results = await Promise.allSettled(
      keepers.map((k) =>
        request(
          k,
          { op: 'store', to: peer, ttlMs: options.mailboxTtlMs, msg: sealed.bytes },
          'mailbox store',
          signal,
        ),
      ),
    )
    const stored = results.filter((r) => r.status === 'fulfilled').length
    if (stored < keepers.length) keeperCache.delete(peer)
    if (stored === 0) {
      const errors = results.map((r) => (r.status === 'rejected' ? codeOf(r.reason) : 'ok'))
      throw new NodusError('MAILBOX_UNAVAILABLE', `${peer} is unreachable and no keeper stored the message`, {
        details: { peer, keepers: keepers.length, errors },
      })
    }
    metrics.directSent.inc({ via: 'mailbox' })
    return { id: hex(sealed.id), to: peer, via: 'mailbox', keepers: stored }
  }

  /** Fetch, open and acknowledge everything one keeper holds for this node. @returns messages new to the inbox */
  const collectFrom = async (keeper: PeerId, signal: AbortSignal): Promise<number> => {
    let fresh = 0
    let after: string | undefined
    for (;;) {
      const reply = await request(
        keeper,
        after === undefined ? { op: 'fetch' } : { op: 'fetch', after },
        'mailbox fetch',
        signal,
      )
      const list = reply.messages
      if (!Array.isArray(list)) throw invalid('fetch reply without messages')
      const done: Uint8Array[] = []
      const openedPage: { keeperId: Uint8Array; o: Opened }[] = []
      for (const item of list as unknown[]) {
        const e = item as { id?: unknown; msg?: unknown }
        if (!(e.id instanceof Uint8Array) || e.id.byteLength !== 32 || !(e.msg instanceof Uint8Array))
          continue
        after = hex(e.id)
        try {
          openedPage.push({ keeperId: e.id, o: openFor(e.msg, 'mailbox') })
        } catch (err) {
          // It never opens here (garbage, too old, a key past its grace): delete it.
          refused(err)
          done.push(e.id)
        }
      }
      // One commit and one flush for the page.
      const results = await store.addMessages(
        openedPage.map((x) => x.o),
        clock.now(),
      )
      results.forEach((r, i) => {
        const x = openedPage[i] as { keeperId: Uint8Array; o: Opened }
        if (r === 'full') {
          // Left at the keeper, to open again once the inbox has room.
          refused(new NodusError('INBOX_FULL', 'inbox full'))
          return
        }
        if (r === 'added') {
          delivered(x.o.m)
          fresh++
        } else if (r === 'below-floor') refused(replayed(r))
        // `seen`: usually the copy another keeper gave first; a replay otherwise. Either way, delete it.
        done.push(x.keeperId)
      })
      for (let i = 0; i < done.length; i += MAX_ACK_IDS) {
        const ids = done.slice(i, i + MAX_ACK_IDS)
        const at = clock.now()
        const keeperId = keeper.toString()
        const sig = signEd25519(identity.ed25519, mailboxAckBytes(self, keeperId, at, ids))
        await request(keeper, { op: 'ack', to: self, keeper: keeperId, at, ids, sig }, 'mailbox ack', signal)
      }
      if (reply.more !== true || list.length === 0) return fresh
    }
  }

  const collect = (o: { signal?: AbortSignal } = {}): Promise<number> => {
    if (!started) return Promise.reject(notStarted())
    collecting ??= (async () => {
      const signal = AbortSignal.any([lifetime.signal, ...(o.signal === undefined ? [] : [o.signal])])
      const keepers = await closestPeers(identity.peerId, 2 * options.mailboxReplicas, self, signal)
      fewKeepers = keepers.length < options.mailboxReplicas
      const results = await Promise.allSettled(keepers.map((k) => collectFrom(k, signal)))
      let fresh = 0
      for (const r of results) {
        if (r.status === 'fulfilled') fresh += r.value
        else log.debug({ err: (r.reason as Error).message }, 'mailbox collection from a keeper failed')
      }
      return fresh
    })().finally(() => {
      collecting = undefined
      if (connectedMeanwhile && fewKeepers && started) {
        connectedMeanwhile = false
        background('mailbox collection', collect)
      }
      connectedMeanwhile = false
    })
    return collecting
  }

  /** The record is not in the DHT yet (never published, or the last put failed): the next connection publishes it. */
  let unpublished = true
  let publishing: Promise<void> | undefined
  const publishKey = (o: { signal?: AbortSignal } = {}): Promise<void> => {
    publishing ??= (async () => {
      if (host.getConnections().length === 0) {
        unpublished = true
        throw new NodusError('NOT_ENOUGH_PEERS', 'no peer to publish the key record to')
      }
      const signal = AbortSignal.any([
        lifetime.signal,
        AbortSignal.timeout(options.keyLookupTimeoutMs),
        ...(o.signal === undefined ? [] : [o.signal]),
      ])
      try {
        await keys.publish(signal)
        unpublished = false
      } catch (err) {
        unpublished = true
        throw err
      }
    })().finally(() => {
      publishing = undefined
    })
    return publishing
  }

  const onConnect = (): void => {
    if (!started) return
    if (unpublished && publishing === undefined) background('key publish', publishKey)
    if (collecting !== undefined) connectedMeanwhile = true
    else if (fewKeepers) background('mailbox collection', collect)
  }

  const background = (what: string, p: () => Promise<unknown>): void => {
    p().catch((err) => {
      if (!lifetime.signal.aborted) log.debug({ err: (err as Error).message }, `${what} failed`)
    })
  }

  const expire = async (): Promise<void> => {
    await store.pruneReplay(clock.now())
    const expired = await store.expireMailbox(clock.now())
    if (expired > 0) metrics.mailboxRemoved.inc({ reason: 'expired' }, expired)
  }

  const maintain = async (): Promise<void> => {
    if (await keys.maybeRotate()) log.info({ epoch: keys.epoch }, 'key rotated on schedule')
    await keys.prune()
    await expire()
    await publishKey()
  }

  return {
    keys,
    store,
    send,
    inbox: (o = {}) =>
      store.listMessages({ after: o.after, limit: Math.min(1000, Math.max(1, o.limit ?? 100)) }),
    deleteMessage: (id) => store.deleteMessage(id),
    onMessage(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    collect,
    publishKey,
    async rotateKey() {
      await keys.rotate()
      unpublished = true
      background('key publish', async () => {
        await publishing?.catch(() => {})
        await publishKey()
      })
    },
    maintain,
    async beforeStart() {
      store.open()
      await keys.load()
    },
    async start() {
      if (started) return
      lifetime = new AbortController()
      await host.handle(DIRECT_PROTOCOL, (stream, connection) => void serve(stream, connection), {
        maxInboundStreams: options.directMaxInboundStreams,
        maxOutboundStreams: 64,
      })
      started = true
      host.addEventListener('peer:connect', onConnect)
      keyTimer = setInterval(() => background('key maintenance', maintain), options.keyRepublishMs)
      keyTimer.unref()
      mailboxTimer = setInterval(() => {
        background('mailbox expiry', expire)
        background('mailbox collection', collect)
      }, options.mailboxCheckMs)
      mailboxTimer.unref()
    },
    afterStart() {
      background('key publish', publishKey)
      background('mailbox collection', collect)
    },
    async beforeStop() {
      host.removeEventListener('peer:connect', onConnect)
      clearInterval(keyTimer)
      clearInterval(mailboxTimer)
      lifetime.abort(new NodusError('ABORTED', 'the node is stopping'))
      await collecting?.catch(() => {})
    },
    async stop() {
      if (!started) return
      started = false
      await host.unhandle(DIRECT_PROTOCOL)
    },
    async afterStop() {
      await store.close()
    },
  }
}
