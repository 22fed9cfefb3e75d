/**
 * The hostile peer of `nodus chaos --hostile` (issue 17, "Trust no peer"): a stranger inside the chaos
 * process, with a libp2p host and an identity of its own (fresh each run), that attacks every live
 * devnet node for the whole run. In a bounded loop (at most `maxAttacks`, `attacksPerSecond` in all) it
 * takes turns at:
 *
 * - `unorderedPut`: a put without a storage order (expected: ORDER_INVALID);
 * - `provisionalPut`: puts under orders of its own, never committed, on one node after another until
 *   that node answers QUOTA_EXCEEDED (expected: accepted up to its quota, provisionally; then refused);
 * - `stalledPut`: a burst of put streams that declare 16 MiB and send no body (expected: PEER_BUSY, or
 *   another refusal, beyond its per-peer share; the streams that hold a slot cut off by the
 *   transfer-rate deadline well before the request timeout);
 * - `strangerPin`: pins of the honest files' blocks with a 10-year expiry and `critical: true`, without
 *   a grant (expected: refused, or a claim of its own that it pays for; never an extension of the
 *   uploader's claims nor a critical mark: src/cli/hostile-check.ts reads that from the data directories);
 * - `forgedUpdate`: holder updates of the honest manifests signed by its own key with revision 2^53 − 1
 *   (expected: not kept);
 * - `apiUnauthenticated`: `text/plain` POSTs and DELETEs to the mutating API routes without the token
 *   (expected: 401 or 429);
 * - `apiRebinding`: requests with a DNS-rebinding Host header (expected: 403).
 *
 * Each kind counts attempts, refusals, acceptances the defences allow, acceptances they should not
 * (`unexpected`: a defence failed) and errors (a node killed by the chaos loop mid-request). A live
 * node that refuses the connection (it banned or disconnected the hostile peer) counts as a refusal.
 */
import { randomBytes, randomFillSync } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import { isNodusError } from '../common/errors.ts'
import { generateIdentity, type NodeIdentity, signEd25519 } from '../crypto/index.ts'
import { createHost, DEFAULT_HOST_OPTIONS, type NodusLibp2p } from '../net/index.ts'
import {
  cidForBytes,
  cidToString,
  DEFAULT_SHARD_SERVER_OPTIONS,
  parseCid,
  SHARD_PROTOCOL,
  ShardClient,
  signOrder,
  signPin,
} from '../storage/index.ts'
import { getJson } from './client.ts'
import {
  blocksOf,
  exchange,
  forgedHolderUpdate,
  type HttpAttack,
  type ManifestView,
  rawPut,
  rebindingRequests,
  type StallOutcome,
  stalledPut,
  unauthenticatedRequests,
} from './hostile-wire.ts'

const MiB = 1024 * 1024
const TEN_YEARS_MS = 3650 * 24 * 3600 * 1000

export const ATTACK_KINDS = [
  'unorderedPut',
  'provisionalPut',
  'stalledPut',
  'strangerPin',
  'forgedUpdate',
  'apiUnauthenticated',
  'apiRebinding',
] as const
export type AttackKind = (typeof ATTACK_KINDS)[number]

/** What happened to the attempts of one kind of attack. */
export interface AttackCounts {
  attempts: number
  /** Refused as the defences should (including connections refused by a node that banned us). */
  refused: number
  /** Accepted within what the defences allow (provisional puts within quota, pins it pays for). */
  allowed: number
  /** Accepted although a defence should have refused it. */
  unexpected: number
  /** Failed otherwise: the node died mid-request, or did not answer in time. */
  errors: number
}

/** A live devnet node, as the hostile peer sees it. */
export interface HostileTarget {
  index: number
  peerId: string
  /** OS process id of the node's current process (a restart, which may follow a wipe, changes it). */
  pid: number
  /** libp2p multiaddrs, each ending in `/p2p/<peerId>`. */
  multiaddrs: readonly string[]
  /** HTTP API base URL. */
  api: string
  /** Whether this very process of the node still runs (false once killed, even if restarted since). */
  alive(): boolean
}

export interface HostilePeerDeps {
  /** The nodes running now. */
  targets(): readonly HostileTarget[]
  /** Manifest CIDs of the honest files acknowledged so far. */
  files(): readonly string[]
  log(msg: string): void
  clock: { now(): number }
}

export interface HostilePeerOptions {
  /** Attacks started per second, all kinds together. Default 3. */
  attacksPerSecond: number
  /** Most attacks in the whole run. Default 5,000. */
  maxAttacks: number
  /** Size of each provisional put, bytes. Default 8 MiB. */
  provisionalBytes: number
  /**
   * Most bytes the holder may keep for the hostile peer (its quota at full trust); a provisional put
   * accepted beyond it is a failed defence. Default: unbounded.
   */
  maxQuotaBytes: number
  /** Stalled put streams per burst (one burst at a time, to one node). Default 24. */
  stalledPerBurst: number
  /** Body size each stalled put declares, bytes. Default 16 MiB. */
  stalledDeclaredBytes: number
  /**
   * A stalled put still open after this long was not cut off by the transfer-rate deadline (a failed
   * defence), ms. Default 30,000 (half the 60 s request timeout).
   */
  stallCutoffMs: number
  /**
   * The holders' transfer-rate window (`stallWindowMs` of the shard server), ms: a stalled put cut off
   * after about this long held a slot until the deadline. Default 5,000.
   */
  stallWindowMs: number
  /** Time allowed for one request, ms. Default 20,000. */
  requestTimeoutMs: number
  /**
   * Index of the node whose API the owner uses (the chaos load's entry point): every unauthenticated
   * API attack also goes there, so its unauthenticated bucket runs out while the owner works. Default 0.
   */
  ownerNode: number
  /** Rounds of the unauthenticated requests (6 each) sent to the owner's node per turn. Default 3. */
  ownerFloodRounds: number
}

export const DEFAULT_HOSTILE_OPTIONS: Readonly<HostilePeerOptions> = Object.freeze({
  attacksPerSecond: 3,
  maxAttacks: 5_000,
  provisionalBytes: 8 * MiB,
  maxQuotaBytes: Number.MAX_SAFE_INTEGER,
  stalledPerBurst: 24,
  stalledDeclaredBytes: 16 * MiB,
  stallCutoffMs: 30_000,
  stallWindowMs: DEFAULT_SHARD_SERVER_OPTIONS.stallWindowMs,
  requestTimeoutMs: 20_000,
  ownerNode: 0,
  ownerFloodRounds: 3,
})

type Outcome = 'refused' | 'allowed' | 'unexpected'

/** The file-level facts an attack on one honest file needs, fetched once per file. */
interface FileFacts {
  manifest: CID
  /** The manifest's CID and every shard CID (at most 1,024). */
  blocks: CID[]
  /** The forged holder update (revision 2^53 − 1, signed by the hostile key). */
  forged: Uint8Array
}

const MAX_FILE_FACTS = 256
/** Statuses that refuse an unauthenticated request (401 without the token; 429 past its bucket). */
const UNAUTHENTICATED_REFUSALS: ReadonlySet<number> = new Set([401, 429])
/** The status that refuses a rebinding Host (403 HOST_NOT_ALLOWED). */
const REBINDING_REFUSALS: ReadonlySet<number> = new Set([403])
/** A CID for the API attacks before any honest file is acknowledged (the empty raw block). */
const NO_FILE = cidToString(cidForBytes(new Uint8Array(0)))

/** A stranger that attacks every devnet node; see the module doc. Create, `start()`, `stop()`. */
export class HostilePeer {
  readonly #deps: HostilePeerDeps
  readonly #options: HostilePeerOptions
  readonly #counts = new Map<AttackKind, AttackCounts>()
  /** Per kind, how often each refusal or error code was seen (for the log summary). */
  readonly #codes = new Map<AttackKind, Map<string, number>>()
  readonly #facts = new Map<string, FileFacts>()
  /** Bytes each holder process (`<PeerId>/<pid>`) accepted from the provisional puts. */
  readonly #accepted = new Map<string, number>()
  readonly #provisional: Array<{ holder: string; cid: string; atMs: number }> = []
  readonly #stop = new AbortController()
  #id: NodeIdentity | undefined
  #host: NodusLibp2p | undefined
  #client: ShardClient | undefined
  #loop: Promise<void> | undefined
  #stopped: Promise<void> | undefined
  #block: Uint8Array | undefined
  /** Node index the provisional puts go to until it refuses with QUOTA_EXCEEDED. */
  #quotaTarget = 0
  /** Per kind, its turns so far: which node and which file it attacks next. */
  readonly #turns = new Map<AttackKind, number>()
  #notes = 0
  /** Most stalled puts of one burst that were cut off only after a stall window. */
  #stallHeldMax = 0

  constructor(deps: HostilePeerDeps, options: Partial<HostilePeerOptions> = {}) {
    this.#deps = deps
    this.#options = { ...DEFAULT_HOSTILE_OPTIONS, ...options }
    for (const k of ATTACK_KINDS) {
      this.#counts.set(k, { attempts: 0, refused: 0, allowed: 0, unexpected: 0, errors: 0 })
      this.#codes.set(k, new Map())
    }
  }

  /** The hostile peer's PeerId string (undefined before `start()`). */
  get peerId(): string | undefined {
    return this.#id?.peerId.toString()
  }

  /** Provisional puts the holders accepted: holder PeerId, block CID, when (ms since the epoch). */
  get provisional(): ReadonlyArray<{ holder: string; cid: string; atMs: number }> {
    return this.#provisional
  }

  /** Counts per attack kind (a copy). */
  counts(): Record<AttackKind, AttackCounts> {
    const out = {} as Record<AttackKind, AttackCounts>
    for (const [k, c] of this.#counts) out[k] = { ...c }
    return out
  }

  /** One line per attack kind: counts and the codes seen. */
  summary(): string[] {
    return ATTACK_KINDS.map((k) => {
      const c = this.#counts.get(k) as AttackCounts
      const codes = [...(this.#codes.get(k) as Map<string, number>)].map(([code, n]) => `${code} ${n}`)
      const held =
        k === 'stalledPut' ? `; at most ${this.#stallHeldMax} of a burst cut off by the deadline` : ''
      return `${k}: ${c.attempts} attempts, ${c.refused} refused, ${c.allowed} allowed, ${c.unexpected} unexpected, ${c.errors} errors${codes.length > 0 ? ` (${codes.join(', ')}${held})` : ''}`
    })
  }

  /** Create the identity and host, dial every live node, start the attack loop. Idempotent. */
  async start(): Promise<void> {
    if (this.#host !== undefined) return
    const id = await generateIdentity()
    const host = await createHost(id.ed25519, { ...DEFAULT_HOST_OPTIONS })
    await host.start()
    this.#id = id
    this.#host = host
    this.#client = new ShardClient(
      { dialProtocol: (peer, protocol, o) => this.#dial(peer, protocol, o?.signal) },
      { requestTimeoutMs: this.#options.requestTimeoutMs, maxShardBytes: 16 * MiB },
    )
    for (const t of this.#deps.targets()) {
      await host
        .dial(
          t.multiaddrs.map((a) => multiaddr(a)),
          { signal: AbortSignal.timeout(10_000) },
        )
        .catch(() => {})
    }
    this.#deps.log(`hostile peer ${id.peerId.toString()} dialled ${host.getPeers().length} nodes`)
    this.#loop = this.#run(this.#stop.signal)
  }

  /** Stop attacking: ends the loop and the stalled streams, stops the host. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stop.abort()
      await this.#loop
      await this.#host?.stop()
    })()
    return this.#stopped
  }

  /**
   * Start one attack every 1/attacksPerSecond s, the kinds in turn; a kind whose previous attack still
   * runs (a stalled burst lasts until its streams are cut off) skips its turn, so at most one attack
   * per kind is in flight.
   */
  async #run(signal: AbortSignal): Promise<void> {
    const interval = 1000 / this.#options.attacksPerSecond
    const running = new Map<AttackKind, Promise<void>>()
    for (let i = 0; i < this.#options.maxAttacks && !signal.aborted; i++) {
      const kind = ATTACK_KINDS[i % ATTACK_KINDS.length] as AttackKind
      if (!running.has(kind)) {
        const attack = this.#attack(kind, signal)
          .catch((err: unknown) => {
            if (!signal.aborted) this.#note(`hostile ${kind} failed: ${(err as Error).message}`)
          })
          .finally(() => running.delete(kind))
        running.set(kind, attack)
      }
      await sleep(interval, undefined, { signal }).catch(() => {})
    }
    await Promise.all(running.values())
  }

  /** The live node `kind` attacks on this turn (each kind visits every node in turn), if any runs. */
  #next(kind: AttackKind): HostileTarget | undefined {
    const turn = this.#turns.get(kind) ?? 0
    this.#turns.set(kind, turn + 1)
    const ts = this.#deps.targets()
    return ts.length === 0 ? undefined : ts[turn % ts.length]
  }

  /** The honest file `kind` attacks on this turn, if one was acknowledged yet. */
  #file(kind: AttackKind): string | undefined {
    const files = this.#deps.files()
    return files.length === 0 ? undefined : files[(this.#turns.get(kind) ?? 0) % files.length]
  }

  async #attack(kind: AttackKind, signal: AbortSignal): Promise<void> {
    if (kind === 'provisionalPut') {
      const ts = this.#deps.targets()
      const t = ts.find((x) => x.index >= this.#quotaTarget) ?? ts[0]
      if (t !== undefined) await this.#provisionalPut(t, signal)
      return
    }
    const t = this.#next(kind)
    if (t === undefined) return
    if (kind === 'unorderedPut') await this.#unorderedPut(t, signal)
    else if (kind === 'stalledPut') await this.#stalledBurst(t, signal)
    else if (kind === 'strangerPin' || kind === 'forgedUpdate') {
      const file = this.#file(kind)
      const facts = file === undefined ? undefined : await this.#factsOf(file, t, signal)
      if (facts === undefined) return
      if (kind === 'strangerPin') await this.#strangerPin(t, facts, signal)
      else await this.#forgedUpdate(t, facts, signal)
    } else if (kind === 'apiUnauthenticated') {
      const requests = unauthenticatedRequests(this.#file(kind) ?? NO_FILE)
      // The owner's node too, every turn: enough to pass its unauthenticated rate limit.
      const owner = this.#deps.targets().find((x) => x.index === this.#options.ownerNode)
      for (let i = 0; owner !== undefined && i < this.#options.ownerFloodRounds; i++) {
        await this.#http(kind, owner, requests, UNAUTHENTICATED_REFUSALS, signal)
      }
      if (owner?.index !== t.index) await this.#http(kind, t, requests, UNAUTHENTICATED_REFUSALS, signal)
    } else {
      await this.#http(kind, t, rebindingRequests(new URL(t.api).port), REBINDING_REFUSALS, signal)
    }
  }

  #dial(peer: PeerId, protocol: string, signal: AbortSignal | undefined): Promise<Stream> {
    const host = this.#host as NodusLibp2p
    const t = this.#deps.targets().find((x) => x.peerId === peer.toString())
    const to = t === undefined ? peer : t.multiaddrs.map((a) => multiaddr(a))
    return host.dialProtocol(to, protocol, signal === undefined ? {} : { signal })
  }

  #tally(
    kind: AttackKind,
    outcome: Outcome | 'error',
    code: string,
    target: HostileTarget,
    detail = '',
  ): void {
    const c = this.#counts.get(kind) as AttackCounts
    c.attempts++
    if (outcome === 'error') c.errors++
    else c[outcome]++
    const codes = this.#codes.get(kind) as Map<string, number>
    codes.set(code, (codes.get(code) ?? 0) + 1)
    if (outcome === 'unexpected') {
      this.#deps.log(`DEFENCE FAILED: ${kind} on node ${target.index} (${target.peerId}): ${code} ${detail}`)
    }
  }

  /**
   * Classify a failed request: an error response from the node is a refusal (its code is counted); a
   * libp2p connection or stream that a live node refuses or resets is one too (it banned or
   * disconnected the hostile peer). A node that died meanwhile, an HTTP connection error and no
   * answer in time are errors.
   */
  #failed(kind: AttackKind, target: HostileTarget, err: unknown, signal: AbortSignal, http = false): void {
    if (signal.aborted) return
    const remote = isNodusError(err) ? err.details.remoteCode : undefined
    if (typeof remote === 'string') this.#tally(kind, 'refused', remote, target)
    else if (!target.alive()) this.#tally(kind, 'error', 'NODE_DOWN', target)
    else if (isNodusError(err, 'TIMEOUT') || (err as Error).name === 'TimeoutError') {
      this.#tally(kind, 'error', 'NO_ANSWER', target)
    } else if (!http) this.#tally(kind, 'refused', 'CONNECTION_REFUSED', target)
    else {
      const code = (err as NodeJS.ErrnoException).code ?? 'HTTP_ERROR'
      this.#tally(kind, 'error', code, target)
      this.#note(`hostile ${kind} on node ${target.index}: ${(err as Error).message}`)
    }
  }

  #note(msg: string): void {
    if (this.#notes++ < 20) this.#deps.log(msg)
  }

  #signal(signal: AbortSignal): AbortSignal {
    return AbortSignal.any([signal, AbortSignal.timeout(this.#options.requestTimeoutMs)])
  }

  #sign = (d: Uint8Array): Uint8Array => signEd25519((this.#id as NodeIdentity).ed25519, d)

  /** A storage order of ours for `cid` on `holder`, asking for ten years. */
  #order(holder: string, cid: CID, maxBytes: number): Promise<Uint8Array> {
    const now = this.#deps.clock.now()
    const uploader = (this.#id as NodeIdentity).peerId.toString()
    const expiresAt = now + TEN_YEARS_MS
    return signOrder({ uploader, holder, cids: [cid], maxBytes, expiresAt, issuedAt: now }, this.#sign)
  }

  async #unorderedPut(t: HostileTarget, signal: AbortSignal): Promise<void> {
    const bytes = randomBytes(64 * 1024)
    try {
      await (this.#client as ShardClient).put(peerIdFromString(t.peerId), cidForBytes(bytes), bytes, {
        signal: this.#signal(signal),
      })
      this.#tally('unorderedPut', 'unexpected', 'STORED', t, 'a put without a storage order was stored')
    } catch (err) {
      this.#failed('unorderedPut', t, err, signal)
    }
  }

  async #provisionalPut(t: HostileTarget, signal: AbortSignal): Promise<void> {
    this.#block ??= randomBytes(this.#options.provisionalBytes)
    const bytes = this.#block
    randomFillSync(bytes, 0, 32) // a new block each time, without refilling all of it
    const cid = cidForBytes(bytes)
    try {
      const order = await this.#order(t.peerId, cid, bytes.byteLength)
      const deadline = this.#signal(signal)
      const stream = await this.#dial(peerIdFromString(t.peerId), SHARD_PROTOCOL, deadline)
      const refused = await rawPut(stream, cid, bytes, order, deadline)
      if (refused !== undefined) {
        this.#tally('provisionalPut', 'refused', refused, t)
        if (refused === 'QUOTA_EXCEEDED') this.#quotaTarget = t.index + 1
        return
      }
      const key = `${t.peerId}/${t.pid}`
      const total = (this.#accepted.get(key) ?? 0) + bytes.byteLength
      this.#accepted.set(key, total)
      this.#provisional.push({ holder: t.peerId, cid: cidToString(cid), atMs: this.#deps.clock.now() })
      if (total > this.#options.maxQuotaBytes) {
        this.#tally('provisionalPut', 'unexpected', 'OVER_QUOTA', t, `${total} bytes accepted`)
      } else this.#tally('provisionalPut', 'allowed', 'STORED', t)
    } catch (err) {
      this.#failed('provisionalPut', t, err, signal)
      if (!t.alive()) this.#quotaTarget = t.index + 1
    }
  }

  /**
   * Open `stalledPerBurst` put streams to `t`, each declaring `stalledDeclaredBytes` under a valid
   * order and sending no body, and wait until every one is answered or cut off; one still open after
   * `stallCutoffMs` is a failed defence. How many held a slot until the transfer-rate deadline is only
   * reported: from outside, a stream's slot cannot be told apart from a late answer of a busy node
   * (test/security/stalled-puts.test.ts holds the per-peer share on in-process nodes).
   */
  async #stalledBurst(t: HostileTarget, signal: AbortSignal): Promise<void> {
    const o = this.#options
    const outcomes: Array<Promise<StallOutcome>> = []
    for (let i = 0; i < o.stalledPerBurst && !signal.aborted; i++) {
      const cid = cidForBytes(randomBytes(32))
      try {
        const order = await this.#order(t.peerId, cid, o.stalledDeclaredBytes)
        const stream = await this.#dial(peerIdFromString(t.peerId), SHARD_PROTOCOL, this.#signal(signal))
        outcomes.push(stalledPut(stream, cid, o.stalledDeclaredBytes, order, o.stallCutoffMs, signal))
      } catch (err) {
        this.#failed('stalledPut', t, err, signal) // over the stream limit, or a node that will not talk to us
      }
    }
    let held = 0
    for (const { code, ms } of await Promise.all(outcomes)) {
      if (signal.aborted) break
      if (code === 'CUT_OFF' && !t.alive()) this.#tally('stalledPut', 'error', 'NODE_DOWN', t)
      else if (code === 'STILL_OPEN') {
        this.#tally('stalledPut', 'unexpected', code, t, `not cut off after ${Math.round(ms)} ms`)
      } else if (code === 'ACCEPTED') this.#tally('stalledPut', 'unexpected', code, t, 'a put without a body')
      else {
        // Held a slot until the transfer-rate deadline (or answered TIMEOUT), or refused at once.
        if ((code === 'CUT_OFF' || code === 'TIMEOUT') && ms >= o.stallWindowMs - 1_000) held++
        this.#tally('stalledPut', 'refused', code, t)
      }
    }
    this.#stallHeldMax = Math.max(this.#stallHeldMax, held)
  }

  /** The attacks' material for the honest file `cid`, from a node's public manifest view; cached. */
  async #factsOf(cid: string, t: HostileTarget, signal: AbortSignal): Promise<FileFacts | undefined> {
    const known = this.#facts.get(cid)
    if (known !== undefined) return known
    let view: ManifestView
    try {
      const api = { url: t.api, token: undefined }
      view = await getJson<ManifestView>(api, `/files/${cid}/manifest`, this.#signal(signal))
    } catch {
      return undefined // the node is down or busy: try again on the next turn
    }
    const facts: FileFacts = {
      manifest: parseCid(view.cid),
      blocks: blocksOf(view),
      forged: await forgedHolderUpdate(view, this.#id as NodeIdentity, this.#deps.clock.now()),
    }
    if (this.#facts.size >= MAX_FILE_FACTS) this.#facts.delete(this.#facts.keys().next().value as string)
    this.#facts.set(cid, facts)
    return facts
  }

  async #strangerPin(t: HostileTarget, f: FileFacts, signal: AbortSignal): Promise<void> {
    const now = this.#deps.clock.now()
    try {
      const pin = await signPin(
        {
          pinner: (this.#id as NodeIdentity).peerId.toString(),
          holder: t.peerId,
          cids: f.blocks,
          expiresAt: now + TEN_YEARS_MS,
          issuedAt: now,
          manifest: f.manifest,
          critical: true,
        },
        this.#sign,
      )
      const client = this.#client as ShardClient
      const peer = peerIdFromString(t.peerId)
      const flags = await client.pin(peer, pin, f.blocks.length, { signal: this.#signal(signal) })
      // Extended: a claim the hostile peer pays for, within its quota (checked after the run).
      if (flags.some((x) => x)) this.#tally('strangerPin', 'allowed', 'PAID', t)
      else this.#tally('strangerPin', 'refused', 'NOT_EXTENDED', t)
    } catch (err) {
      this.#failed('strangerPin', t, err, signal)
    }
  }

  async #forgedUpdate(t: HostileTarget, f: FileFacts, signal: AbortSignal): Promise<void> {
    try {
      const client = this.#client as ShardClient
      const peer = peerIdFromString(t.peerId)
      const kept = await client.offerUpdate(peer, f.manifest, f.forged, { signal: this.#signal(signal) })
      if (kept) this.#tally('forgedUpdate', 'unexpected', 'KEPT', t, `revision 2^53 − 1 of ${f.manifest}`)
      else this.#tally('forgedUpdate', 'refused', 'NOT_KEPT', t)
    } catch (err) {
      this.#failed('forgedUpdate', t, err, signal)
    }
  }

  /** Send `requests` to `t`'s API; a status outside `refusals` is a failed defence. */
  async #http(
    kind: AttackKind,
    t: HostileTarget,
    requests: readonly HttpAttack[],
    refusals: ReadonlySet<number>,
    signal: AbortSignal,
  ): Promise<void> {
    for (const a of requests) {
      if (signal.aborted) return
      try {
        const status = await exchange(t.api, a, this.#signal(signal))
        if (refusals.has(status)) this.#tally(kind, 'refused', String(status), t)
        else
          this.#tally(
            kind,
            'unexpected',
            String(status),
            t,
            `${a.method} ${a.path} (${JSON.stringify(a.headers)})`,
          )
      } catch (err) {
        this.#failed(kind, t, err, signal, true)
      }
    }
  }
}
