/**
 * The repairer's view of the manifests this node watches: each loaded with its kept holder update
 * applied; when that update does not load, the last good state (the update kept before it, else the
 * signed manifest alone), and when the manifest cannot be read, the view loaded last (in memory,
 * bounded). See src/storage/README.md ("Holder updates and their authority").
 */
import type { CID } from 'multiformats/cid'
import { isNodusError, NodusError } from '../../common/errors.ts'
import { parseCid } from '../codec/cid.ts'
import { applyHolderUpdate, decodeHolderUpdate } from '../files/holder-update.ts'
import { decodeManifest, type SignedManifest } from '../files/manifest.ts'

/** Bytes of last good manifest views kept in memory (encoded size), to fall back on. */
const LAST_GOOD_BYTES = 32 * 1024 * 1024

/** The holder updates kept for watched manifests (manifest-watch.ts `ManifestWatch`), as loading reads them. */
export interface KeptUpdates {
  latest(cid: string):
    | {
        revision: number
        update: Uint8Array | undefined
        previous?: { revision: number; update: Uint8Array } | undefined
      }
    | undefined
  /** Replace a kept update that cannot be loaded (revision `from`) by `to` (undefined: none). */
  fallBack?(
    cid: string,
    from: number,
    to: { revision: number; update: Uint8Array } | undefined,
  ): Promise<boolean>
}

/** What loading watched manifests needs. */
export interface ManifestLoaderDeps {
  /** Local blocks (the manifests). */
  store: { get(cid: CID, options?: { signal?: AbortSignal }): Promise<Uint8Array>; has(cid: CID): boolean }
  watch: KeptUpdates
  logger: { warn(obj: object, msg?: string): void }
  metrics?: {
    /** A watched manifest loaded from its last good state (`nodus_storage_manifest_fallbacks_total`). */
    manifestFallbacks?: { inc(): void }
  }
}

/** Loads the manifests the repairer watches (see the file comment). */
export class ManifestLoader {
  readonly #deps: ManifestLoaderDeps
  /** Manifest CID → the view loaded last (to fall back on when the manifest cannot be read). */
  readonly #lastGood = new Map<string, { view: SignedManifest; bytes: number }>()
  #lastGoodBytes = 0

  constructor(deps: ManifestLoaderDeps) {
    this.#deps = deps
  }

  /**
   * A watched manifest with its kept holder update applied, or undefined when this node no longer
   * has it (or has nothing to repair from). A kept update that does not load (it does not decode or
   * apply, or its revision is not the kept one) is replaced by the last good state: the update kept
   * before it, else the signed manifest alone; a manifest that cannot be read is replaced by the view
   * loaded last (in memory). Either way repair goes on, with a warning and
   * `nodus_storage_manifest_fallbacks_total`.
   */
  async load(c: string, signal: AbortSignal): Promise<SignedManifest | undefined> {
    let cid: CID
    try {
      cid = parseCid(c)
    } catch {
      this.#deps.logger.warn({ cid: c }, 'cannot load a watched manifest: bad CID')
      return undefined
    }
    if (!this.#deps.store.has(cid)) return undefined
    let signed: SignedManifest
    try {
      signed = decodeManifest(await this.#deps.store.get(cid, { signal }), cid)
    } catch (err) {
      if (signal.aborted) throw err
      const good = this.#lastGood.get(c)
      this.#fellBack(c, good === undefined ? 'none' : 'last loaded view', err)
      return good?.view
    }
    const latest = this.#deps.watch.latest(c)
    const apply = (bytes: Uint8Array, revision: number): SignedManifest => {
      const u = decodeHolderUpdate(bytes, signed).update
      if (u.revision !== revision) {
        throw new NodusError('MANIFEST_INVALID', 'kept holder update has another revision than its entry')
      }
      return { ...signed, manifest: applyHolderUpdate(signed.manifest, u) }
    }
    if (latest?.update === undefined) return this.#remember(c, signed, signed.bytes.byteLength)
    try {
      return this.#remember(
        c,
        apply(latest.update, latest.revision),
        signed.bytes.byteLength + latest.update.byteLength,
      )
    } catch (err) {
      let to = latest.previous
      let view = signed
      if (to !== undefined) {
        try {
          view = apply(to.update, to.revision)
        } catch {
          to = undefined
        }
      }
      // Kept, so the next update follows the good state; if that write fails, the next round retries.
      await this.#deps.watch.fallBack?.(c, latest.revision, to).catch((e: unknown) => {
        this.#deps.logger.warn({ cid: c, code: isNodusError(e) ? e.code : 'unknown' }, 'fallback not kept')
      })
      this.#fellBack(c, to === undefined ? 'signed manifest' : `revision ${to.revision}`, err)
      return this.#remember(c, view, signed.bytes.byteLength + (to?.update.byteLength ?? 0))
    }
  }

  /** Keep `view` as the last good view of `c` (bounded in bytes, least recently loaded dropped). */
  #remember(c: string, view: SignedManifest, bytes: number): SignedManifest {
    const had = this.#lastGood.get(c)
    if (had !== undefined) {
      this.#lastGoodBytes -= had.bytes
      this.#lastGood.delete(c)
    }
    if (bytes <= LAST_GOOD_BYTES / 4) {
      this.#lastGood.set(c, { view, bytes })
      this.#lastGoodBytes += bytes
    }
    for (const [k, v] of this.#lastGood) {
      if (this.#lastGoodBytes <= LAST_GOOD_BYTES) break
      this.#lastGood.delete(k)
      this.#lastGoodBytes -= v.bytes
    }
    return view
  }

  #fellBack(c: string, to: string, err: unknown): void {
    const code = isNodusError(err) ? err.code : 'unknown'
    if (to === 'none') {
      this.#deps.logger.warn({ cid: c, code }, 'cannot load a watched manifest')
      return
    }
    this.#deps.metrics?.manifestFallbacks?.inc()
    this.#deps.logger.warn({ cid: c, code, fallback: to }, 'cannot load a watched manifest: fell back')
  }
}
