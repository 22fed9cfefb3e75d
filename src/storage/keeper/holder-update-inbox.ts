/**
 * Holder updates offered by peers (the shard protocol's `update` op) to a keeper of a manifest.
 *
 * An update is kept only when all of this holds (docs/PROTOCOLS.md, "Holder updates"):
 * - this node watches the manifest and has it;
 * - it passes the signed-record-with-authority check (src/crypto/signed-record-inbox.ts): a valid hybrid
 *   signature by a key bound to the signer's PeerId; a signer that is the manifest's uploader or a
 *   peer responsible for the manifest as this node sees it ({@link HolderUpdateInboxDeps.responsible});
 *   a revision above the kept one by at most `maxRevisionStep`;
 * - it applies to the manifest (segment and shard counts, parity rows, PeerId holders).
 * Only then is it stored, so what repair loads is always an update that applied. A refusal raised
 * after the signature verified is reported to `onRefused` with the signer; an older or equal revision
 * is not an offence (an honest keeper that is behind) and resolves false.
 */
import type { CID } from 'multiformats/cid'
import { type ErrorCode, isNodusError } from '../../common/errors.ts'
import { accountableSigner } from '../../crypto/index.ts'
import { cidToString } from '../codec/cid.ts'
import { MAX_HOLDER_UPDATE_STEP, openHolderUpdate } from '../files/holder-update.ts'
import { decodeManifest } from '../files/manifest.ts'

export interface HolderUpdateInboxDeps {
  /** Local blocks (the manifests). */
  store: { get(cid: CID, options?: { signal?: AbortSignal }): Promise<Uint8Array>; has(cid: CID): boolean }
  watch: {
    has(cid: string): boolean
    latest(cid: string): { revision: number } | undefined
    offer(
      cid: string,
      revision: number,
      update: Uint8Array,
      now: number,
      options?: { expect?: number },
    ): Promise<boolean>
  }
  /**
   * The PeerIds responsible for `manifest` as this node sees them: the closest to its CID (XOR) among
   * this node and its connected peers, with slack ({@link responsibleFor}). Called once per offer.
   */
  responsible(manifest: CID): ReadonlySet<string>
  /** An update refused after its signature verified: `signer` signed something it should not have. */
  onRefused?(signer: string, code: ErrorCode): void
  clock: { now(): number }
  logger: { debug(obj: object, msg?: string): void; warn(obj: object, msg?: string): void }
}

export interface HolderUpdateInboxOptions {
  /** Largest revision jump past the kept revision. Default {@link MAX_HOLDER_UPDATE_STEP} (16). */
  maxRevisionStep: number
}

export const DEFAULT_HOLDER_UPDATE_INBOX_OPTIONS: Readonly<HolderUpdateInboxOptions> = Object.freeze({
  maxRevisionStep: MAX_HOLDER_UPDATE_STEP,
})

/** Checks holder updates offered by peers and keeps the ones that pass. */
export class HolderUpdateInbox {
  readonly #deps: HolderUpdateInboxDeps
  readonly #options: HolderUpdateInboxOptions

  constructor(
    deps: HolderUpdateInboxDeps,
    options: HolderUpdateInboxOptions = DEFAULT_HOLDER_UPDATE_INBOX_OPTIONS,
  ) {
    this.#deps = deps
    this.#options = options
  }

  /**
   * Check `bytes` as a holder update for `manifest` and keep it when it passes.
   *
   * @returns true when kept; false when this node does not keep the manifest (or cannot read its own
   *   copy), when the revision is not newer than the kept one, or when a newer one was kept meanwhile
   * @throws NodusError `MANIFEST_INVALID` (malformed, for another manifest, or does not apply),
   *   `SIGNATURE_INVALID`, `NOT_AUTHORIZED`, `REVISION_INVALID` (too far ahead); all with a peerAction
   */
  async offer(manifest: CID, bytes: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const key = cidToString(manifest)
    const { store, watch } = this.#deps
    if (!watch.has(key) || !store.has(manifest)) return false
    let signed: ReturnType<typeof decodeManifest>
    try {
      signed = decodeManifest(await store.get(manifest, options), manifest)
    } catch (err) {
      // Our own copy is unreadable: not the offering peer's fault.
      options.signal?.throwIfAborted()
      this.#deps.logger.warn({ manifest: key, code: errCode(err) }, 'cannot read a watched manifest')
      return false
    }
    const last = watch.latest(key)?.revision ?? 1
    const uploader = signed.manifest.uploader.peerId
    const responsible = this.#deps.responsible(manifest)
    let update: ReturnType<typeof openHolderUpdate>
    try {
      update = openHolderUpdate(bytes, signed, {
        authority: { has: (peer) => peer === uploader || responsible.has(peer) },
        sequence: { last, maxStep: this.#options.maxRevisionStep },
      })
    } catch (err) {
      if (isNodusError(err, 'REVISION_INVALID') && err.peerAction === 'ignore') return false
      const signer = accountableSigner(err)
      if (signer !== undefined && isNodusError(err)) {
        this.#deps.logger.warn({ manifest: key, signer, code: err.code }, 'holder update refused')
        this.#deps.onRefused?.(signer, err.code)
      }
      throw err
    }
    const kept = await watch.offer(key, update.update.revision, bytes, this.#deps.clock.now(), {
      expect: last,
    })
    this.#deps.logger.debug(
      { manifest: key, revision: update.update.revision, signer: update.update.signer.peerId, kept },
      'holder update offered',
    )
    return kept
  }
}

function errCode(err: unknown): string {
  return isNodusError(err) ? err.code : 'unknown'
}
