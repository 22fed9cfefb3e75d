/**
 * This node's pins: the files it put or pinned, kept in the file index (`<dataDir>/files`) and renewed
 * on their holders while they last. The HTTP API's upload, pin, unpin and grant routes and the node's
 * renewal timer go through here, so the index and the network stay in step.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import type { Clock } from '../../common/clock.ts'
import { isNodusError, NodusError } from '../../common/errors.ts'
import type { Logger } from '../../common/logger.ts'
import { cidToString, parseCid } from '../codec/cid.ts'
import { type Ed25519Sign, signGrant } from '../protocol/orders.ts'
import type { FileIndex, FileRecord } from './file-index.ts'
import type { FileService, PutResult } from './files.ts'
import type { Manifest, SignedManifest } from './manifest.ts'

/** How long resolving a manifest for a pin or a grant may take, ms. */
const RESOLVE_TIMEOUT_MS = 60_000
/** How long pinning a file on its holders may take, ms. */
const PIN_TIMEOUT_MS = 120_000
/** Pins read from the index at once while renewing. */
const RENEW_PAGE = 1000
/** A grant's lifetime when none is asked for, ms (30 days). */
const DEFAULT_GRANT_TTL_MS = 30 * 24 * 3600 * 1000

export interface PinServiceDeps {
  /** Puts, pins on the holders, manifest resolution. */
  files: Pick<FileService, 'put' | 'pin' | 'resolveManifest'>
  /** The file index (opened and closed by its owner). */
  index: Pick<FileIndex, 'put' | 'delete' | 'list'>
  /** This node's PeerId (string): the issuer of its grants and the uploader they are checked against. */
  selfPeerId: string
  /** Ed25519-sign with this node's key (its PeerId): pin grants. */
  signEd25519: Ed25519Sign
  /** Source of pin expiries and grant times. */
  clock: Clock
  logger: Pick<Logger, 'warn'>
}

/** What {@link PinService.put} stored. */
export interface PinnedPut {
  /** Manifest CID, base32. */
  cid: string
  /** The put's manifest and manifest holders. */
  put: PutResult
  /** When the pin expires, ms since the epoch; undefined: never. */
  expiresAt: number | undefined
}

/** What {@link PinService.pin} did. */
export interface PinOutcome {
  /** Manifest CID, base32. */
  cid: string
  /** The manifest as resolved (with its latest holder update). */
  manifest: SignedManifest
  /** When the pin expires, ms since the epoch; undefined: never (a lease this node renews). */
  expiresAt: number | undefined
  /** Shard copies extended (this node's included). */
  extended: number
  /** Holders that answered without the shard. */
  missing: number
  /** Holders that could not be reached. */
  unreachable: number
}

/** A signed pin grant, from {@link PinService.grant}. */
export interface SignedGrant {
  /** Manifest CID, base32. */
  cid: string
  /** The PeerId the grant lets pin. */
  pinner: string
  /** ms since the epoch. */
  expiresAt: number
  /** The encoded grant (orders.ts), to hand to the pinner. */
  grant: Uint8Array
}

/** The pins of this node: put and pin files, record them, renew and drop them. */
export class PinService {
  readonly #deps: PinServiceDeps

  constructor(deps: PinServiceDeps) {
    this.#deps = deps
  }

  /**
   * Store a file read from `source` (FileService.put, freeing each chunk once copied) and record its
   * pin; a `critical` one is pinned on its keepers at once (renewals repeat it). `ttlMs`: the pin
   * expires that long from now; absent: never. Throws what FileService.put and pin throw
   * (NOT_ENOUGH_PEERS, ABORTED, ...), and STORE_CLOSED when the index is closed.
   */
  async put(
    source: AsyncIterable<Uint8Array>,
    options: { name?: string; ttlMs?: number; critical?: boolean; signal?: AbortSignal } = {},
  ): Promise<PinnedPut> {
    const { name, critical = false } = options
    const expiresAt = this.#expiresAt(options.ttlMs)
    const put = await this.#deps.files.put(source, {
      // Nothing else reads the body's chunks: free each one as soon as it is copied.
      releaseChunks: true,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(name === undefined ? {} : { name }),
      ...(expiresAt === undefined ? {} : { expiresAt }),
    })
    const cid = cidToString(put.cid)
    // The manifest's name is `name` (FileService.put).
    await this.#record(cid, put.manifest, expiresAt, critical, undefined)
    // Tell the keepers now; renewals repeat it.
    if (critical) {
      await this.#deps.files.pin(put.cid, expiresAt, {
        signal: this.#signal(options.signal, PIN_TIMEOUT_MS),
        critical: true,
      })
    }
    return { cid, put, expiresAt }
  }

  /**
   * Pin the file of manifest `cid` on this node and on every holder of its shards, and record the pin
   * (replacing an earlier one). `ttlMs`: until that long from now; absent: for one lease at a time,
   * renewed while the pin lasts. `grant`: a pin grant from the uploader (base64), sent with the pin
   * and with every renewal. Throws MANIFEST_NOT_FOUND, MANIFEST_INVALID, SIGNATURE_INVALID, TIMEOUT
   * (resolving: 60 s; pinning: 120 s), STORE_CLOSED.
   */
  async pin(
    cid: CID,
    options: { ttlMs?: number; critical?: boolean; grant?: string; signal?: AbortSignal } = {},
  ): Promise<PinOutcome> {
    const { critical = false, grant } = options
    const expiresAt = this.#expiresAt(options.ttlMs)
    const signed = await this.#deps.files.resolveManifest(cid, {
      signal: this.#signal(options.signal, RESOLVE_TIMEOUT_MS),
    })
    const r = await this.#deps.files.pin(cid, expiresAt, {
      signal: this.#signal(options.signal, PIN_TIMEOUT_MS),
      manifest: signed,
      ...(critical ? { critical } : {}),
      ...(grant === undefined ? {} : { grant: Buffer.from(grant, 'base64') }),
    })
    const key = cidToString(signed.cid)
    await this.#record(key, signed.manifest, expiresAt, critical, grant)
    return { cid: key, manifest: signed, expiresAt, ...r }
  }

  /**
   * Drop this node's pin of manifest `cid` (base32); the holders keep the blocks until their leases
   * end. Throws MANIFEST_NOT_FOUND when this node has no such pin, STORE_CLOSED.
   */
  async unpin(cid: string): Promise<void> {
    if (!(await this.#deps.index.delete(cid)))
      throw new NodusError('MANIFEST_NOT_FOUND', `no pin for ${cid} on this node`, { details: { cid } })
  }

  /** This node's pins in CID order, at most `limit` (default 100, max 1,000), after CID `after`. */
  list(options: { limit?: number; after?: string } = {}): FileRecord[] {
    return this.#deps.index.list(options)
  }

  /**
   * Sign a grant that lets `pinner` (a PeerId string) extend this node's leases of the file of
   * manifest `cid` (a CID string, as the user gave it: errors quote it), which this node must have
   * uploaded, for `ttlMs` from now (default 30 days). Throws CID_INVALID, INVALID_ARGUMENT (`pinner`
   * is not a PeerId; this node is not the uploader), and what resolving the manifest throws
   * (MANIFEST_NOT_FOUND, MANIFEST_INVALID, SIGNATURE_INVALID, TIMEOUT after 60 s).
   */
  async grant(
    cid: string,
    pinner: string,
    options: { ttlMs?: number; signal?: AbortSignal } = {},
  ): Promise<SignedGrant> {
    const manifest = parseCid(cid)
    try {
      peerIdFromString(pinner)
    } catch {
      throw new NodusError('INVALID_ARGUMENT', 'pinner must be a PeerId', { details: { pinner } })
    }
    const { selfPeerId, clock } = this.#deps
    const signed = await this.#deps.files.resolveManifest(manifest, {
      signal: this.#signal(options.signal, RESOLVE_TIMEOUT_MS),
    })
    if (signed.manifest.uploader.peerId !== selfPeerId) {
      throw new NodusError('INVALID_ARGUMENT', "only the file's uploader can grant pins of it", {
        details: { cid, uploader: signed.manifest.uploader.peerId },
      })
    }
    const expiresAt = clock.now() + (options.ttlMs ?? DEFAULT_GRANT_TTL_MS)
    const grant = await signGrant(
      { issuer: selfPeerId, pinner, manifest: signed.cid, expiresAt, issuedAt: clock.now() },
      this.#deps.signEd25519,
    )
    return { cid: cidToString(signed.cid), pinner, expiresAt, grant }
  }

  /**
   * Renew this node's pins on their holders (leases) and drop the pins whose TTL passed by `now` (ms
   * since the epoch; default the clock's now). The node runs it every `storage.renewIntervalMs`.
   * Never throws: a pin that could not be renewed is counted in `failed` and logged.
   */
  async renew(now = this.#deps.clock.now()): Promise<{ renewed: number; expired: number; failed: number }> {
    const r = { renewed: 0, expired: 0, failed: 0 }
    let after: string | undefined
    for (let page = 0; page < 10_000; page++) {
      const pins = this.#deps.index.list({ limit: RENEW_PAGE, ...(after === undefined ? {} : { after }) })
      for (const pin of pins) {
        if (pin.expiresAt !== undefined && pin.expiresAt <= now) {
          await this.#deps.index.delete(pin.cid)
          r.expired++
          continue
        }
        try {
          await this.#deps.files.pin(parseCid(pin.cid), pin.expiresAt, {
            signal: AbortSignal.timeout(PIN_TIMEOUT_MS),
            ...(pin.critical === true ? { critical: true } : {}),
            ...(pin.grant === undefined ? {} : { grant: Buffer.from(pin.grant, 'base64') }),
          })
          r.renewed++
        } catch (err) {
          r.failed++
          this.#deps.logger.warn(
            { cid: pin.cid, code: isNodusError(err) ? err.code : 'unknown' },
            'pin renewal failed',
          )
        }
      }
      if (pins.length < RENEW_PAGE) break
      after = pins[pins.length - 1]?.cid
    }
    return r
  }

  /** Record (or replace) the pin of manifest `cid` (base32) in the file index; resolves once durable. */
  async #record(
    cid: string,
    m: Manifest,
    expiresAt: number | undefined,
    critical: boolean,
    grant: string | undefined,
  ): Promise<void> {
    await this.#deps.index.put({
      cid,
      name: m.name,
      bytes: m.fileSize,
      segments: m.segments.length,
      k: m.k,
      m: m.m,
      createdAt: m.createdAt,
      expiresAt,
      ...(critical ? { critical } : {}),
      ...(grant === undefined ? {} : { grant }),
    })
  }

  #expiresAt(ttlMs: number | undefined): number | undefined {
    return ttlMs === undefined ? undefined : this.#deps.clock.now() + ttlMs
  }

  /** A timeout of `timeoutMs`, and `signal` too when given. */
  #signal(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
    const timeout = AbortSignal.timeout(timeoutMs)
    return signal === undefined ? timeout : AbortSignal.any([signal, timeout])
  }
}
