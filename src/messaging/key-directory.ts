/**
 * The key directory: this node's X-Wing keys (current and retired-but-in-grace), its hybrid-signed key
 * record published in the DHT, and other peers' key records found and verified.
 *
 * DHT record (docs/PROTOCOLS.md, "Key records in the DHT"): kad-dht key `/nodus-key/<PeerId>` (UTF-8),
 * value the key record bytes (src/crypto/key-record.ts). Every DHT node validates a put with
 * {@link keyRecordValidator} (structure, the PeerId in the key, validity on its clock, the hybrid
 * signature) and picks among several with {@link keyRecordSelector} (highest epoch, then latest
 * `notAfter`).
 *
 * Rotation: the key of epoch n is current for `messaging.keyRotationMs` from its creation, its record
 * valid for that plus `messaging.keyRepublishMs` (a copy fetched just before a rotation stays usable);
 * then the key of epoch n + 1 is made, published, and epoch n is kept `messaging.keyGraceMs` more so
 * messages sealed to it (in flight or waiting at keepers) still open, then deleted.
 *
 * Lookup of a peer's record: the cache (bounded, least recently used forgotten, entries dropped once
 * expired), then the peer itself when connected (the `key` op of `/nodus/msg/1.0.0`), then the DHT;
 * every record is opened with `openKeyRecord` (expected PeerId, validity, signature).
 */
import type { KadDHT } from '@libp2p/kad-dht'
import type { Clock } from '../common/clock.ts'
import { isNodusError, NodusError } from '../common/errors.ts'
import type { Logger } from '../common/logger.ts'
import type { Random } from '../common/random.ts'
import {
  createKeyRecord,
  deleteXWingKey,
  KEY_RECORD,
  type KeyRecord,
  listXWingKeys,
  loadXWingKey,
  type NodeIdentity,
  openKeyRecord,
  type RecipientKeys,
  saveXWingKey,
  XWING_SECRET_KEY_BYTES,
  type XWingKeyPair,
  xwingKeyPairFromSeed,
} from '../crypto/index.ts'
import type { DirectStore, KeyEpoch } from './direct-store.ts'

/** The kad-dht namespace of key records: keys are `/nodus-key/<PeerId>`. */
export const KEY_RECORD_DHT_NAMESPACE = 'nodus-key'

const PREFIX = `/${KEY_RECORD_DHT_NAMESPACE}/`

/** The DHT key of `peer`'s key record: UTF-8 of `/nodus-key/<PeerId>`. */
export function keyRecordDhtKey(peer: string): Uint8Array {
  return new TextEncoder().encode(PREFIX + peer)
}

function peerOfDhtKey(key: Uint8Array): string {
  const s = new TextDecoder().decode(key)
  if (!s.startsWith(PREFIX) || s.length === PREFIX.length || s.length > PREFIX.length + 128)
    throw new NodusError('KEY_RECORD_INVALID', 'key record: not a /nodus-key/<PeerId> DHT key', {
      peerAction: 'reject',
      details: { reason: 'dht-key' },
    })
  return s.slice(PREFIX.length)
}

/**
 * The kad-dht validator of namespace `nodus-key`: throws unless `value` is a key record for the PeerId
 * in `key`, valid now on `clock`, with a good hybrid signature.
 * @throws NodusError `KEY_RECORD_INVALID`, `SIGNATURE_INVALID`
 */
export function keyRecordValidator(clock: Clock): (key: Uint8Array, value: Uint8Array) => void {
  return (key, value) => {
    openKeyRecord(value, { peer: peerOfDhtKey(key), nowMs: clock.now() })
  }
}

/** The kad-dht selector of namespace `nodus-key`: the record of highest epoch, then latest `notAfter` (undecodable ones lose). */
export function keyRecordSelector(): (key: Uint8Array, records: Uint8Array[]) => number {
  return (_key, records) => {
    let best = 0
    let bestRank: [number, number] = [-1, -1]
    records.forEach((bytes, i) => {
      let rank: [number, number] = [-1, -1]
      try {
        const r = KEY_RECORD.decode(bytes).value
        rank = [r.epoch, r.notAfter]
      } catch {}
      if (rank[0] > bestRank[0] || (rank[0] === bestRank[0] && rank[1] > bestRank[1])) {
        best = i
        bestRank = rank
      }
    })
    return best
  }
}

/** What the directory uses of kad-dht. */
export type KeyDirectoryDht = Pick<KadDHT, 'put' | 'get'>

export interface KeyDirectoryDeps {
  identity: NodeIdentity
  /** The node's data directory (keys in `keys/`). */
  dataDir: string
  store: DirectStore
  clock: Clock
  random: Random
  logger: Logger
  dht: KeyDirectoryDht
  /** Ask a connected peer for its record (the `key` op); undefined when not connected. */
  askPeer(peer: string, signal: AbortSignal): Promise<Uint8Array> | undefined
}

export interface KeyDirectoryOptions {
  keyRotationMs: number
  keyGraceMs: number
  keyRepublishMs: number
  keyCacheEntries: number
  directMaxFutureSkewMs: number
}

interface LiveKey {
  epoch: KeyEpoch
  keyPair: XWingKeyPair
}

/** This node's keys and record, and the cache of others'. */
export class KeyDirectory {
  readonly #deps: KeyDirectoryDeps
  readonly #o: KeyDirectoryOptions
  readonly #live: LiveKey[] = []
  #record: { bytes: Uint8Array; value: KeyRecord } | undefined
  /** PeerId → verified record; Map order is recency (least recent first). */
  readonly #cache = new Map<string, KeyRecord>()

  constructor(deps: KeyDirectoryDeps, options: KeyDirectoryOptions) {
    this.#deps = deps
    this.#o = options
  }

  get #self(): string {
    return this.#deps.identity.peerId.toString()
  }

  /** Load the keys from disk (making the first one when there is none), rotate when due, sign the record. */
  async load(): Promise<void> {
    const { store, dataDir } = this.#deps
    const files = new Set(await listXWingKeys(dataDir))
    this.#live.length = 0
    for (const e of store.keyEpochs()) {
      if (!files.has(e.epoch)) {
        await store.removeKeyEpoch(e.epoch)
        continue
      }
      this.#live.push({ epoch: e, keyPair: await loadXWingKey(dataDir, e.epoch) })
      files.delete(e.epoch)
    }
    // A key file without its epoch entry (a crash between the two writes): adopt it as created now.
    for (const epoch of files) {
      const e = { epoch, createdAtMs: this.#deps.clock.now(), retiredAtMs: 0 }
      await store.putKeyEpoch(e)
      this.#live.push({ epoch: e, keyPair: await loadXWingKey(dataDir, epoch) })
    }
    this.#live.sort((a, b) => a.epoch.epoch - b.epoch.epoch)
    // Only the newest is current.
    for (const k of this.#live.slice(0, -1)) {
      if (k.epoch.retiredAtMs === 0) {
        k.epoch = { ...k.epoch, retiredAtMs: this.#deps.clock.now() }
        await store.putKeyEpoch(k.epoch)
      }
    }
    if (this.#live.length === 0) await this.#newKey(0)
    else if (!(await this.maybeRotate())) await this.#sign()
    await this.prune()
  }

  async #newKey(epoch: number): Promise<void> {
    const keyPair = xwingKeyPairFromSeed(this.#deps.random.bytes(XWING_SECRET_KEY_BYTES))
    await saveXWingKey(this.#deps.dataDir, epoch, keyPair)
    const e: KeyEpoch = { epoch, createdAtMs: this.#deps.clock.now(), retiredAtMs: 0 }
    await this.#deps.store.putKeyEpoch(e)
    this.#live.push({ epoch: e, keyPair })
    await this.#sign()
  }

  get #current(): LiveKey {
    const k = this.#live.at(-1)
    if (k === undefined) throw new NodusError('NOT_STARTED', 'the key directory is not loaded')
    return k
  }

  async #sign(): Promise<void> {
    const k = this.#current
    const notBefore = k.epoch.createdAtMs
    const record = await createKeyRecord(this.#deps.identity, k.keyPair, {
      epoch: k.epoch.epoch,
      notBefore,
      notAfter: notBefore + this.#o.keyRotationMs + this.#o.keyRepublishMs,
    })
    this.#record = { bytes: record.bytes, value: record.value }
  }

  /** This node's current key record (bytes to publish, and its value). */
  get record(): { bytes: Uint8Array; value: KeyRecord } {
    if (this.#record === undefined) throw new NodusError('NOT_STARTED', 'the key directory is not loaded')
    return this.#record
  }

  /** The current epoch. */
  get epoch(): number {
    return this.#current.epoch.epoch
  }

  /** The keys messages open with: the current one and those in their grace period. */
  recipientKeys(): RecipientKeys {
    return {
      peerId: this.#self,
      keys: this.#live.map((k) => ({ epoch: k.epoch.epoch, keyPair: k.keyPair })),
    }
  }

  /** Rotate when the current key is `keyRotationMs` old. @returns whether it rotated */
  async maybeRotate(): Promise<boolean> {
    const k = this.#current
    if (this.#deps.clock.now() < k.epoch.createdAtMs + this.#o.keyRotationMs) return false
    await this.rotate()
    return true
  }

  /** Make the next epoch's key current now; the previous one enters its grace period. */
  async rotate(): Promise<void> {
    const old = this.#current
    old.epoch = { ...old.epoch, retiredAtMs: this.#deps.clock.now() }
    await this.#deps.store.putKeyEpoch(old.epoch)
    await this.#newKey(old.epoch.epoch + 1)
    this.#deps.logger.info({ epoch: this.epoch }, 'X-Wing key rotated')
  }

  /** Delete the retired keys past their grace period. @returns the epochs deleted */
  async prune(): Promise<number[]> {
    const now = this.#deps.clock.now()
    const gone: number[] = []
    for (const k of [...this.#live]) {
      if (k.epoch.retiredAtMs === 0 || now < k.epoch.retiredAtMs + this.#o.keyGraceMs) continue
      await deleteXWingKey(this.#deps.dataDir, k.epoch.epoch)
      await this.#deps.store.removeKeyEpoch(k.epoch.epoch)
      this.#live.splice(this.#live.indexOf(k), 1)
      gone.push(k.epoch.epoch)
    }
    return gone
  }

  /** Put the current record in the DHT (at the peers closest to its key). @throws what kad-dht throws */
  async publish(signal: AbortSignal): Promise<void> {
    for await (const _ of this.#deps.dht.put(keyRecordDhtKey(this.#self), this.record.bytes, { signal })) {
      // drain the query events
    }
  }

  #open(bytes: Uint8Array, peer: string): KeyRecord {
    return openKeyRecord(bytes, {
      peer,
      nowMs: this.#deps.clock.now(),
      maxFutureSkewMs: this.#o.directMaxFutureSkewMs,
    }).value
  }

  #remember(r: KeyRecord): void {
    this.#cache.delete(r.peer)
    this.#cache.set(r.peer, r)
    while (this.#cache.size > this.#o.keyCacheEntries) {
      const oldest = this.#cache.keys().next().value
      if (oldest === undefined) break
      this.#cache.delete(oldest)
    }
  }

  /** Forget `peer`'s cached record (it refused a message sealed to it). */
  forget(peer: string): void {
    this.#cache.delete(peer)
  }

  /** Verified records cached now. */
  get cached(): number {
    return this.#cache.size
  }

  /**
   * `peer`'s current key record: cached, from the peer when connected, else from the DHT.
   * @throws NodusError `KEY_NOT_FOUND` (none found valid; `details.errors` says what was wrong),
   *   the signal's reason
   */
  async lookup(peer: string, signal: AbortSignal): Promise<KeyRecord> {
    if (peer === this.#self) return this.record.value
    const now = this.#deps.clock.now()
    const cached = this.#cache.get(peer)
    if (cached !== undefined) {
      if (now < cached.notAfter) {
        this.#remember(cached)
        return cached
      }
      this.#cache.delete(peer)
    }
    const errors: string[] = []
    const direct = this.#deps.askPeer(peer, signal)
    if (direct !== undefined) {
      try {
        const r = this.#open(await direct, peer)
        this.#remember(r)
        return r
      } catch (err) {
        if (signal.aborted) throw signal.reason
        errors.push(`peer: ${(err as Error).message}`)
      }
    }
    let best: KeyRecord | undefined
    try {
      for await (const ev of this.#deps.dht.get(keyRecordDhtKey(peer), { signal })) {
        if (ev.name !== 'VALUE') continue
        try {
          const r = this.#open(ev.value, peer)
          if (best === undefined || r.epoch > best.epoch) best = r
          break
        } catch (err) {
          errors.push(`dht: ${(err as Error).message}`)
        }
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason
      if (!isNodusError(err)) errors.push(`dht: ${(err as Error).message}`)
      else throw err
    }
    if (best !== undefined) {
      this.#remember(best)
      return best
    }
    throw new NodusError('KEY_NOT_FOUND', `no valid key record of ${peer} was found`, {
      details: { peer, errors: errors.slice(0, 8) },
    })
  }
}
